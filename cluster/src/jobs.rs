//! What ran where: per job, the tasks each executor ran and the bytes its stages wrote for
//! other stages (the shuffle) and for the client (the result), from the scheduler's execution
//! graphs. Ballista 55's REST API does not say which executor ran a task, so the scheduler
//! serves this itself (`GET /cuve/jobs`, `GET /cuve/jobs/named/{name}`, behind the cluster
//! secret);
//! `cuve cluster status` and the gateway's summary line read it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::serde::protobuf::{job_status, task_status};
use ballista_scheduler::cluster::JobState;
use ballista_scheduler::scheduler_server::SchedulerServer;
use ballista_scheduler::state::execution_graph::ExecutionGraph;
use ballista_scheduler::state::execution_stage::ExecutionStage;
use cuve_engine::{EngineError, Result};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use serde_json::{Value, json};

use crate::secret::ClusterSecret;

/// One job: where its tasks ran and what its stages wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSummary {
    pub job_id: String,
    /// The name the gateway gave the job (`ballista.job.name`, one per query).
    pub name: String,
    /// `Queued`, `Running`, `Completed` or `Failed`.
    pub state: String,
    pub stages: usize,
    /// Tasks that ran (or run) per executor id (successful and running tasks of the stages'
    /// latest attempts; a task re-run elsewhere after an executor loss counts where it ran last).
    pub tasks_per_executor: BTreeMap<String, usize>,
    /// Bytes the stages wrote for other stages to read.
    pub shuffle_bytes: u64,
    /// Bytes the final stage wrote for the client.
    pub result_bytes: u64,
}

impl JobSummary {
    pub fn tasks(&self) -> usize {
        self.tasks_per_executor.values().sum()
    }

    fn of(graph: &dyn ExecutionGraph) -> JobSummary {
        let state = match &graph.status().status {
            Some(job_status::Status::Queued(_)) | None => "Queued",
            Some(job_status::Status::Running(_)) => "Running",
            Some(job_status::Status::Successful(_)) => "Completed",
            Some(job_status::Status::Failed(_)) => "Failed",
        };
        let mut s = JobSummary {
            job_id: graph.job_id().to_string(),
            name: graph.job_name().to_string(),
            state: state.to_string(),
            stages: graph.stages().len(),
            ..JobSummary::default()
        };
        for stage in graph.stages().values() {
            let (tasks, last) = match stage {
                ExecutionStage::Running(r) => (&r.task_infos, r.output_links.is_empty()),
                ExecutionStage::Successful(d) => (&d.task_infos, d.output_links.is_empty()),
                _ => continue,
            };
            for t in tasks {
                let (executor, written) = match &t.task_status {
                    task_status::Status::Running(r) => (&r.executor_id, 0),
                    task_status::Status::Successful(d) => (
                        &d.executor_id,
                        d.partitions.iter().map(|p| p.num_bytes).sum::<u64>(),
                    ),
                    task_status::Status::Failed(_) => continue,
                };
                *s.tasks_per_executor.entry(executor.clone()).or_default() += 1;
                if last {
                    s.result_bytes += written;
                } else {
                    s.shuffle_bytes += written;
                }
            }
        }
        s
    }

    pub fn to_json(&self) -> Value {
        json!({
            "job_id": self.job_id,
            "name": self.name,
            "state": self.state,
            "stages": self.stages,
            "tasks_per_executor": self.tasks_per_executor,
            "shuffle_bytes": self.shuffle_bytes,
            "result_bytes": self.result_bytes,
        })
    }

    pub fn from_json(v: &Value) -> JobSummary {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let number = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        JobSummary {
            job_id: text("job_id"),
            name: text("name"),
            state: text("state"),
            stages: number("stages") as usize,
            tasks_per_executor: v
                .get("tasks_per_executor")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0) as usize))
                        .collect()
                })
                .unwrap_or_default(),
            shuffle_bytes: number("shuffle_bytes"),
            result_bytes: number("result_bytes"),
        }
    }

    /// The gateway's summary line: `job J: 3 stages, 6 tasks on 2 executors, 12.3 KiB
    /// shuffled, 1.0 KiB of results`.
    pub fn line(&self) -> String {
        format!(
            "job {}: {}, {} on {}, {} shuffled, {} of results",
            self.job_id,
            count(self.stages, "stage"),
            count(self.tasks(), "task"),
            count(self.tasks_per_executor.len(), "executor"),
            bytes(self.shuffle_bytes),
            bytes(self.result_bytes)
        )
    }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

type Scheduler = SchedulerServer<LogicalPlanNode, PhysicalPlanNode>;

/// Every job the scheduler holds: running ones from its cache, finished ones (kept an hour)
/// from the job state.
async fn all(scheduler: &Scheduler, finished: &dyn JobState) -> Vec<JobSummary> {
    let mut out = vec![];
    let running = scheduler.state.task_manager.get_running_job_cache();
    for cached in running.values() {
        out.push(JobSummary::of(cached.execution_graph.read().await.as_ref()));
    }
    for id in finished.get_all_jobs().await.unwrap_or_default() {
        if running.contains_key(&id) {
            continue;
        }
        if let Ok(Some(graph)) = finished.get_execution_graph(&id).await {
            out.push(JobSummary::of(graph.as_ref()));
        }
    }
    out.sort_by(|a, b| a.job_id.cmp(&b.job_id));
    out
}

/// `GET /cuve/jobs` and `GET /cuve/jobs/named/{name}` on the scheduler.
pub fn routes(scheduler: Scheduler, finished: Arc<dyn JobState>) -> axum::Router {
    use axum::extract::{Path, State};
    use axum::routing::get;
    type St = State<(Arc<Scheduler>, Arc<dyn JobState>)>;
    async fn jobs(State((s, f)): St) -> axum::Json<Value> {
        let all = all(&s, f.as_ref()).await;
        axum::Json(Value::Array(all.iter().map(JobSummary::to_json).collect()))
    }
    async fn named(State((s, f)): St, Path(name): Path<String>) -> axum::Json<Value> {
        let all = all(&s, f.as_ref()).await;
        let of = all.iter().filter(|j| j.name == name);
        axum::Json(Value::Array(of.map(JobSummary::to_json).collect()))
    }
    axum::Router::new()
        .route("/cuve/jobs", get(jobs))
        .route("/cuve/jobs/named/{name}", get(named))
        .with_state((Arc::new(scheduler), finished))
}

/// An HTTP client for the scheduler's APIs, showing the cluster's secret.
pub fn client(secret: Option<&ClusterSecret>) -> Result<reqwest::Client> {
    let mut client = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(s) = secret {
        client = client.user_agent(s.user_agent());
    }
    client
        .build()
        .map_err(|e| EngineError::invalid(format!("an HTTP client: {e}")))
}

/// The finished job named `name` on the scheduler at `base` (`http://host:port`): asked a few
/// times, as the scheduler files a job as finished just after telling the client.
pub async fn named(client: &reqwest::Client, base: &str, name: &str) -> Option<JobSummary> {
    // The scheduler marks the job finished a moment after its last result went out: 3 s at most.
    for _ in 0..60 {
        let url = format!("{base}/cuve/jobs/named/{name}");
        let body = client.get(&url).send().await.ok()?.bytes().await.ok()?;
        let v: Value = serde_json::from_slice(&body).ok()?;
        let job = v
            .as_array()
            .and_then(|a| a.last())
            .map(JobSummary::from_json);
        match job {
            Some(j) if j.state == "Completed" || j.state == "Failed" => return Some(j),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_round_trips_and_reads() {
        let s = JobSummary {
            job_id: "j1".into(),
            name: "cuve-1".into(),
            state: "Completed".into(),
            stages: 2,
            tasks_per_executor: [("a".to_string(), 3), ("b".to_string(), 1)].into(),
            shuffle_bytes: 2048,
            result_bytes: 10,
        };
        assert_eq!(JobSummary::from_json(&s.to_json()), s);
        assert_eq!(
            s.line(),
            "job j1: 2 stages, 4 tasks on 2 executors, 2.0 KiB shuffled, 10 B of results"
        );
    }
}
