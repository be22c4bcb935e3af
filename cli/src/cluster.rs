//! `cuve scheduler` and `cuve executor`: the processes of a Ballista cluster with Cuve's
//! functions. They need no home: they hold no catalog and no tickets.

use std::io::Write;
use std::path::Path;

use crate::exit::{CliError, SQL};

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
