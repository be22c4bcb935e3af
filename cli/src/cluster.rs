//! `cuve scheduler` and `cuve executor`: the processes of a Ballista cluster with Cuve's
//! functions; `cuve cluster status`. They need no home: they hold no catalog and no tickets.

use std::io::Write;
use std::path::Path;

use crate::exit::{CliError, SQL, USAGE};

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCmd {
    /// The scheduler's executors (id, address, state, task slots, last heart-beat) and its
    /// recent jobs (id, state, stages and tasks done)
    Status {
        #[arg(long)]
        json: bool,
    },
}

fn report(e: cuve_engine::EngineError) -> u8 {
    CliError {
        code: SQL,
        message: e.user_message(),
    }
    .report()
}

pub async fn scheduler(addr: &str) -> u8 {
    let ready = |local: std::net::SocketAddr| {
        println!("cuve scheduler listening on {local}");
        let _ = std::io::stdout().flush();
    };
    match cuve_cluster::process::run_scheduler(addr, ready).await {
        Ok(()) => 0,
        Err(e) => report(e),
    }
}

pub async fn executor(scheduler: &str, addr: &str, work_dir: &Path, cores: Option<usize>) -> u8 {
    let cores = cores.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    println!("cuve executor on {addr} for the scheduler at {scheduler} ({cores} task slots)");
    let _ = std::io::stdout().flush();
    match cuve_cluster::process::run_executor(scheduler, addr, work_dir, cores).await {
        Ok(()) => 0,
        Err(e) => report(e),
    }
}

pub async fn command(cluster: Option<&str>, cmd: ClusterCmd) -> u8 {
    let Some(addr) = cluster else {
        return CliError {
            code: USAGE,
            message: "`cuve cluster` needs the scheduler: --cluster HOST:PORT (or CUVE_CLUSTER)"
                .into(),
        }
        .report();
    };
    let ClusterCmd::Status { json } = cmd;
    let secret = match cuve_cluster::secret::ClusterSecret::from_env() {
        Ok(s) => s,
        Err(e) => return report(e),
    };
    let status = match cuve_cluster::status::status(addr, secret.as_ref()).await {
        Ok(s) => s,
        Err(e) => return report(e),
    };
    if json {
        println!("{}", status.to_json());
        return 0;
    }
    println!("scheduler {}", status.scheduler);
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "#",
        "executor",
        "address",
        "state",
        "task slots",
        "last heart-beat",
        "tasks done",
    ]);
    for (i, e) in status.executors.iter().enumerate() {
        let seen = e
            .last_seen_secs
            .map(|s| format!("{s} s ago"))
            .unwrap_or_else(|| "never".into());
        t.add_row([
            format!("#{}", i + 1),
            e.id.clone(),
            e.address.clone(),
            e.state.clone(),
            e.task_slots.to_string(),
            seen,
            e.tasks_completed.to_string(),
        ]);
    }
    println!("{t}");
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "job",
        "state",
        "stages done",
        "tasks done",
        "tasks per executor",
        "shuffled",
        "elapsed",
    ]);
    // Executors by their position above (ids are long).
    let index = |id: &str| {
        status
            .executors
            .iter()
            .position(|e| e.id == id)
            .map_or_else(|| id.chars().take(8).collect(), |i| format!("#{}", i + 1))
    };
    for j in &status.jobs {
        // The detail of a failed job starts with its state already.
        let state = j.detail.clone().unwrap_or_else(|| j.state.clone());
        t.add_row([
            j.id.clone(),
            state,
            format!("{}/{}", j.stages_done, j.stages),
            format!("{}/{}", j.tasks_done, j.tasks),
            j.tasks_per_executor
                .iter()
                .map(|(e, n)| format!("{}: {n}", index(e)))
                .collect::<Vec<_>>()
                .join(", "),
            format!("{} B", j.shuffle_bytes),
            j.elapsed_ms
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("{t}");
    0
}
