//! `cuve cluster status`: the executors a scheduler knows and its recent jobs, read from the
//! scheduler's REST API (`/api/executors`, `/api/jobs`, `/api/job/{id}/stages`, served on its
//! gRPC port) and Cuve's `/cuve/jobs` there (which executor ran which tasks, bytes shuffled).

use std::time::{SystemTime, UNIX_EPOCH};

use cuve_engine::{EngineError, Result};
use serde_json::{Value, json};

use crate::jobs::JobSummary;
use crate::process::EXECUTOR_TIMEOUT_SECS;
use crate::secret::ClusterSecret;

/// Jobs listed, newest first.
pub const RECENT_JOBS: usize = 20;

/// One executor.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorStatus {
    pub id: String,
    /// `host:port` of its Flight endpoint.
    pub address: String,
    /// `up`, or `lost` after `EXECUTOR_TIMEOUT_SECS` without a heart-beat (the scheduler then
    /// removes it).
    pub state: String,
    pub task_slots: u64,
    /// Seconds since its last heart-beat.
    pub last_seen_secs: Option<u64>,
    /// Tasks it ran in the jobs the scheduler still holds (finished jobs are kept an hour).
    pub tasks_completed: u64,
}

/// One job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatus {
    pub id: String,
    /// `Queued`, `Running`, `Completed`, `Failed`.
    pub state: String,
    pub stages: u64,
    pub stages_done: u64,
    pub tasks: u64,
    pub tasks_done: u64,
    /// Milliseconds since 1970 (0 while queued).
    pub started_ms: u64,
    /// Milliseconds the job ran (for a finished job).
    pub elapsed_ms: Option<u64>,
    /// The failure, for a failed job.
    pub detail: Option<String>,
    /// Tasks per executor id.
    pub tasks_per_executor: std::collections::BTreeMap<String, usize>,
    /// Bytes its stages wrote for other stages (the shuffle).
    pub shuffle_bytes: u64,
}

/// What `cuve cluster status` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterStatus {
    pub scheduler: String,
    pub executors: Vec<ExecutorStatus>,
    pub jobs: Vec<JobStatus>,
}

fn unreachable(url: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(format!(
        "cannot read the cluster status at {url}: {e} (check that `cuve scheduler` runs there)"
    ))
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> Result<Value> {
    let url = format!("{base}{path}");
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable(&url, e))?;
    let code = response.status();
    if code == reqwest::StatusCode::UNAUTHORIZED {
        let why = response.text().await.unwrap_or_default();
        return Err(EngineError::invalid(format!(
            "cannot read the cluster status at {url}: {why}"
        )));
    }
    if !code.is_success() {
        return Err(unreachable(&url, format!("HTTP {code}")));
    }
    let body = response.bytes().await.map_err(|e| unreachable(&url, e))?;
    serde_json::from_slice(&body).map_err(|e| unreachable(&url, format!("not JSON: {e}")))
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn number(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn executor(v: &Value, now_ms: u128) -> ExecutorStatus {
    let last_seen_secs = v
        .get("last_seen")
        .and_then(Value::as_u64)
        .map(|ms| (now_ms.saturating_sub(ms as u128) / 1000) as u64);
    let up = last_seen_secs.is_some_and(|s| s < EXECUTOR_TIMEOUT_SECS);
    ExecutorStatus {
        id: text(v, "id"),
        address: format!("{}:{}", text(v, "host"), number(v, "port")),
        state: if up { "up" } else { "lost" }.into(),
        task_slots: v
            .get("specification")
            .map(|s| number(s, "vcores"))
            .unwrap_or(0),
        last_seen_secs,
        tasks_completed: 0,
    }
}

/// Tasks of a job and how many finished, from its stages.
fn tasks(stages: &Value) -> (u64, u64) {
    let mut all = 0;
    let mut done = 0;
    for stage in stages
        .get("stages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for task in stage
            .get("tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            all += 1;
            // A task not yet scheduled is null; a finished one has the status "Successful".
            if task.get("status") == Some(&json!("Successful")) {
                done += 1;
            }
        }
    }
    (all, done)
}

/// Task slots of the executors that are up at the scheduler at `base` (`http://host:port`).
pub async fn task_slots(client: &reqwest::Client, base: &str) -> Result<usize> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let listed = get(client, base, "/api/executors").await?;
    Ok(listed
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| executor(v, now_ms))
        .filter(|e| e.state == "up")
        .map(|e| e.task_slots as usize)
        .sum())
}

/// The status of the scheduler at `addr` (`host:port` or a URL).
pub async fn status(addr: &str, secret: Option<&ClusterSecret>) -> Result<ClusterStatus> {
    let base = if addr.contains("://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{addr}")
    };
    let client = crate::jobs::client(secret)?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut executors: Vec<ExecutorStatus> = get(&client, &base, "/api/executors")
        .await?
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| executor(v, now_ms))
        .collect();
    executors.sort_by(|a, b| a.address.cmp(&b.address));
    let mut listed: Vec<Value> = get(&client, &base, "/api/jobs")
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Job ids are time-ordered; the newest first.
    listed.sort_by_key(|j| std::cmp::Reverse(text(j, "job_id")));
    listed.truncate(RECENT_JOBS);
    // A plain Ballista scheduler has no `/cuve/jobs`: its jobs are listed without placements.
    let placed: Vec<JobSummary> = get(&client, &base, "/cuve/jobs")
        .await
        .ok()
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(JobSummary::from_json)
        .collect();
    for e in &mut executors {
        e.tasks_completed = placed
            .iter()
            .filter_map(|j| j.tasks_per_executor.get(&e.id))
            .sum::<usize>() as u64;
    }
    let mut jobs = Vec::with_capacity(listed.len());
    for j in &listed {
        let id = text(j, "job_id");
        let (tasks, tasks_done) = match get(&client, &base, &format!("/api/job/{id}/stages")).await
        {
            Ok(stages) => tasks(&stages),
            // A job can leave the scheduler's memory between the two calls.
            Err(_) => (0, 0),
        };
        let state = text(j, "status");
        let (started, ended) = (number(j, "start_time"), number(j, "end_time"));
        let summary = placed
            .iter()
            .find(|p| p.job_id == id)
            .cloned()
            .unwrap_or_default();
        jobs.push(JobStatus {
            tasks_per_executor: summary.tasks_per_executor,
            shuffle_bytes: summary.shuffle_bytes,
            detail: (state == "Failed").then(|| text(j, "job_status")),
            id,
            state,
            stages: number(j, "num_stages"),
            stages_done: number(j, "completed_stages"),
            tasks,
            tasks_done,
            started_ms: started,
            elapsed_ms: (ended >= started && ended > 0).then(|| ended - started),
        });
    }
    Ok(ClusterStatus {
        scheduler: addr.to_string(),
        executors,
        jobs,
    })
}

impl ClusterStatus {
    /// The `--json` form: one object with `scheduler`, `executors` and `jobs`.
    pub fn to_json(&self) -> Value {
        json!({
            "scheduler": self.scheduler,
            "executors": self.executors.iter().map(|e| json!({
                "id": e.id,
                "address": e.address,
                "state": e.state,
                "task_slots": e.task_slots,
                "last_seen_secs": e.last_seen_secs,
                "tasks_completed": e.tasks_completed,
            })).collect::<Vec<_>>(),
            "jobs": self.jobs.iter().map(|j| json!({
                "id": j.id,
                "state": j.state,
                "stages": j.stages,
                "stages_done": j.stages_done,
                "tasks": j.tasks,
                "tasks_done": j.tasks_done,
                "started_ms": j.started_ms,
                "elapsed_ms": j.elapsed_ms,
                "detail": j.detail,
                "tasks_per_executor": j.tasks_per_executor,
                "shuffle_bytes": j.shuffle_bytes,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executors_and_tasks_are_read_from_the_api_shapes() {
        let now = 1_000_000_000u128;
        let up = executor(
            &json!({"id": "e1", "host": "127.0.0.1", "port": 50061, "last_seen": 999_998_000u64,
                    "specification": {"vcores": 2}}),
            now,
        );
        assert_eq!(up.address, "127.0.0.1:50061");
        assert_eq!((up.state.as_str(), up.task_slots), ("up", 2));
        assert_eq!(up.last_seen_secs, Some(2));
        let lost = executor(
            &json!({"id": "e2", "host": "h", "port": 1, "last_seen": 900_000_000u64}),
            now,
        );
        assert_eq!(lost.state, "lost");
        let stages = json!({"stages": [
            {"tasks": [{"status": "Successful"}, {"status": "Running"}]},
            {"tasks": [null, {"status": {"Failed": {"reason": "x", "error": "y"}}}]},
        ]});
        assert_eq!(tasks(&stages), (4, 1));
    }
}
