//! `cuve serve`: the Arrow Flight SQL endpoint for notebooks (ADBC) and BI tools (JDBC).

use std::io::Write;
use std::path::PathBuf;

use cuve_engine::flight::{TlsFiles, bind, serve};

use crate::context::CliContext;
use crate::exit::{CliError, CliResult};

pub async fn run(
    ctx: &CliContext,
    addr: &str,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
) -> CliResult {
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => return Err(CliError::usage("--tls-cert and --tls-key go together")),
    };
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    let engine = ctx.engine()?;
    let (listener, local) = bind(addr)
        .await
        .map_err(|e| CliError::usage(e.user_message()))?;
    println!(
        "cuve Flight SQL listening on {scheme}://{local} (warehouse {})",
        ctx.home.display()
    );
    let _ = std::io::stdout().flush();
    // The vacuum of `cuve warehouse vacuum --older-than 1h`, every 15 minutes
    // (`CUVE_VACUUM_INTERVAL_SECS`, `CUVE_VACUUM_OLDER_THAN` change them).
    let interval = std::env::var("CUVE_VACUUM_INTERVAL_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(15 * 60);
    let older_than = match std::env::var("CUVE_VACUUM_OLDER_THAN") {
        Ok(v) => cuve_engine::table::vacuum::parse_duration(&v)
            .map_err(|e| CliError::usage(format!("CUVE_VACUUM_OLDER_THAN: {e}")))?,
        Err(_) => std::time::Duration::from_secs(3600),
    };
    let vacuuming = engine.clone();
    let vacuum = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(interval));
        every.tick().await;
        loop {
            every.tick().await;
            let e = vacuuming.clone();
            let done = tokio::task::spawn_blocking(move || {
                let warehouse = e.warehouse().display().to_string();
                cuve_engine::table::vacuum::vacuum(e.catalog(), &warehouse, older_than)
            })
            .await;
            match done {
                Ok(Ok(r)) if r.orphans_deleted + r.replaced_deleted + r.staging_removed > 0 => {
                    log::info!("vacuum: {r:?}")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("vacuum: {}", e.user_message()),
                Err(e) => log::warn!("vacuum: {e}"),
            }
        }
    });
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        eprintln!("shutting down: cancelling running queries");
    };
    let served = serve(engine, listener, tls, shutdown).await;
    vacuum.abort();
    served.map_err(|e| CliError::io(e.user_message()))?;
    Ok(())
}
