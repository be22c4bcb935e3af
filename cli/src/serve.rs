//! `cuve serve`: the Arrow Flight SQL endpoint for notebooks (ADBC) and BI tools (JDBC).

use std::io::Write;
use std::path::PathBuf;

use cuve_engine::flight::{TlsFiles, bind, serve};

use crate::context::CliContext;
use crate::exit::{CliError, CliResult};

/// HTTP log intake beside Flight SQL.
#[derive(Debug, clap::Args, Clone)]
pub struct HttpArgs {
    /// Also accept logs over HTTP on this address: POST /v1/logs/{db}.{table} (NDJSON) and the
    /// Elasticsearch bulk API (POST /_bulk)
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Acknowledged rows are written to their tables at least this often (queryable after it)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub flush_interval: std::time::Duration,
    /// Flush sooner once this many acknowledged bytes wait
    #[arg(long, value_name = "B", default_value = "64MiB", value_parser = crate::admin::parse_size)]
    pub flush_bytes: u64,
    /// Largest HTTP request body (413 beyond)
    #[arg(long, value_name = "B", default_value = "32MiB", value_parser = crate::admin::parse_size)]
    pub max_body: u64,
    /// Request bytes held in flight at once, all clients together (503 with Retry-After beyond)
    #[arg(long, value_name = "B", default_value = "256MiB", value_parser = crate::admin::parse_size)]
    pub max_inflight: u64,
}

/// Background lifecycle work (what `cuve table maintain` does once).
#[derive(Debug, clap::Args, Clone)]
pub struct MaintainArgs {
    /// Run compaction and expiry of every table this often
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub maintain_interval: std::time::Duration,
    /// Do not run compaction and expiry in the background
    #[arg(long)]
    pub no_maintain: bool,
}

/// `500ms`, or what `--older-than` takes (`30s`, `10m`, `1h`, `1d`).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    match s.trim().strip_suffix("ms").map(|n| n.parse::<u64>()) {
        Some(Ok(ms)) => Ok(std::time::Duration::from_millis(ms)),
        Some(Err(_)) => Err(format!("'{s}' is not a duration (e.g. 500ms, 5s, 1m)")),
        None => cuve_engine::table::vacuum::parse_duration(s),
    }
}

pub async fn run(
    ctx: &CliContext,
    addr: &str,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    http: &HttpArgs,
    maintain: &MaintainArgs,
) -> CliResult {
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => return Err(CliError::usage("--tls-cert and --tls-key go together")),
    };
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    let engine = ctx.engine()?;
    // Usage and audit records are written by a background thread: another process holding
    // the catalog's write lock does not hold up the end of every result.
    engine
        .catalog()
        .record_in_background()
        .map_err(|e| CliError::io(e.to_string()))?;
    let records = engine.catalog().clone();
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
    let maintenance = (!maintain.no_maintain).then(|| {
        let e = engine.clone();
        let every = maintain
            .maintain_interval
            .max(std::time::Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let c = e.catalog().clone();
                let done = tokio::task::spawn_blocking(move || {
                    let who = cuve_engine::AccessView::admin("cuve-serve-maintenance");
                    cuve_engine::lifecycle::maintain::maintain_all(&c, None, false, &who)
                })
                .await;
                match done {
                    Ok(Ok(cuve_engine::lifecycle::maintain::Report { actions, errors })) => {
                        for a in actions {
                            log::info!("maintenance: {a}");
                        }
                        for (t, err) in errors {
                            log::warn!("maintenance of {t}: {}", err.user_message());
                        }
                    }
                    Ok(Err(err)) => log::warn!("maintenance: {}", err.user_message()),
                    Err(err) => log::warn!("maintenance: {err}"),
                }
            }
        })
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
    let mut intake_tasks = Vec::new();
    let mut intake_final = None;
    if let Some(http_addr) = &http.http {
        use cuve_engine::intake::{Intake, IntakeConfig, http as ih};
        let config = IntakeConfig {
            flush_interval: http
                .flush_interval
                .max(std::time::Duration::from_millis(50)),
            flush_bytes: http.flush_bytes,
            max_body_bytes: http.max_body,
            max_inflight_bytes: http.max_inflight,
            ..IntakeConfig::default()
        };
        let intake =
            Intake::open(engine.clone(), config).map_err(|e| CliError::io(e.user_message()))?;
        let (l, local) = ih::bind(http_addr)
            .await
            .map_err(|e| CliError::usage(e.user_message()))?;
        println!("cuve HTTP intake listening on http://{local}");
        let _ = std::io::stdout().flush();
        intake_tasks.push(intake.spawn_flusher());
        let serving = intake.clone();
        intake_tasks.push(tokio::spawn(async move {
            if let Err(e) = ih::serve(serving, l, std::future::pending()).await {
                log::error!("{}", e.user_message());
            }
        }));
        // The last acknowledged rows are committed before the process ends (a kill -9 leaves
        // them in the WAL for the next start).
        intake_final = Some(intake);
    }
    let served = serve(engine, listener, tls, shutdown).await;
    if let Some(m) = &maintenance {
        m.abort();
    }
    for t in &intake_tasks {
        t.abort();
    }
    if let Some(intake) = intake_final
        && let Err(e) = intake.flush().await
    {
        eprintln!("final flush of HTTP intake: {}", e.user_message());
    }
    vacuum.abort();
    // The records of the last statements are written before the process ends.
    let _ = tokio::task::spawn_blocking(move || records.flush_records()).await;
    served.map_err(|e| CliError::io(e.user_message()))?;
    Ok(())
}
