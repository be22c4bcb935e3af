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
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        eprintln!("shutting down: cancelling running queries");
    };
    serve(engine, listener, tls, shutdown)
        .await
        .map_err(|e| CliError::io(e.user_message()))?;
    Ok(())
}
