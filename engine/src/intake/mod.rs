//! Network intake: log lines over HTTP into a table, acknowledged only once durable, stored
//! exactly once.
//!
//! The path of a request: [`http`] (routes, credentials, status codes; [`es`] for the
//! Elasticsearch bulk format) → [`limits`] (server queue, ticket write quotas) →
//! [`submit`] (the table and its WRITE grant, which lines are new — [`dedupe`] against the
//! ledger and what is in flight —, decoding as `cuve ingest --format jsonl` does,
//! dead letters) → [`wal`] (appended and synced, then acknowledged) → [`flush`] (every
//! `flush_interval`, or sooner when the WAL grows: one file per (partition, bucket) committed
//! with the ledger's line ranges and document ids in one catalog transaction; then the WAL
//! segments go).

pub mod dedupe;
pub mod es;
pub mod flush;
pub mod http;
pub mod limits;
pub mod submit;
pub mod wal;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::session::Engine;

/// Days a bulk document's id is remembered.
const ID_DAYS: i64 = 7;

/// Settings of `cuve serve --http`.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// Acknowledged rows are committed to their table at least this often.
    pub flush_interval: Duration,
    /// A flush starts sooner once this many bytes are acknowledged and not yet committed.
    pub flush_bytes: u64,
    /// Largest request body (413 beyond).
    pub max_body_bytes: u64,
    /// Request bytes the server holds in flight at once (503 beyond, after `queue_wait`).
    pub max_inflight_bytes: u64,
    pub queue_wait: Duration,
    /// Acknowledged bytes not yet committed beyond which requests get 503 (a flush is failing).
    pub max_unflushed_bytes: u64,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            flush_interval: Duration::from_secs(5),
            flush_bytes: 64 << 20,
            max_body_bytes: 32 << 20,
            max_inflight_bytes: 256 << 20,
            queue_wait: Duration::from_secs(1),
            max_unflushed_bytes: 2 << 30,
        }
    }
}

/// The intake of one server.
pub struct Intake {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: IntakeConfig,
    pub(crate) wal: wal::Wal,
    pub(crate) holdings: dedupe::Holdings,
    pub(crate) limits: limits::Limits,
    /// Sealed segments of a previous process, flushed first.
    pub(crate) replay: std::sync::Mutex<Vec<PathBuf>>,
    pub(crate) flushing: tokio::sync::Mutex<()>,
    pub(crate) flush_now: tokio::sync::Notify,
    pub(crate) dead_letters: std::sync::Mutex<()>,
}

impl Intake {
    /// Opens the WAL under the engine's home and takes over what a previous process
    /// acknowledged (replayed into the holdings, flushed by the first flush).
    pub fn open(engine: Arc<Engine>, config: IntakeConfig) -> Result<Arc<Intake>> {
        let dir = engine.home().join("wal");
        let (wal, sealed) = wal::Wal::open(&dir)?;
        let intake = Intake {
            limits: limits::Limits::new(config.max_inflight_bytes, config.queue_wait),
            engine,
            config,
            wal,
            holdings: dedupe::Holdings::default(),
            replay: std::sync::Mutex::new(sealed.clone()),
            flushing: tokio::sync::Mutex::new(()),
            flush_now: tokio::sync::Notify::new(),
            dead_letters: std::sync::Mutex::new(()),
        };
        for seg in &sealed {
            for r in wal::read_segment(seg)? {
                intake.hold_replayed(&r);
            }
        }
        Ok(Arc::new(intake))
    }

    fn hold_replayed(&self, r: &wal::Record) {
        match &r.source {
            Some(source) => self.holdings.replayed(
                &dedupe::SourceKey::of(&r.database, &r.table, &r.sender, source),
                &r.ranges,
            ),
            None => self
                .holdings
                .replayed_ids(&(r.database.clone(), r.table.clone()), &r.ids),
        }
    }

    /// Runs the flusher until the process ends: every `flush_interval`, and when the WAL grows
    /// past `flush_bytes`.
    pub fn spawn_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut pruned = std::time::Instant::now();
            loop {
                // Bulk document ids are kept for a week (a shipper retries within minutes).
                if pruned.elapsed() > Duration::from_secs(3600) {
                    pruned = std::time::Instant::now();
                    let catalog = me.engine.catalog().clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        catalog.forget_ids_older_than(ID_DAYS * 86_400)
                    })
                    .await;
                }
                match me.flush().await {
                    Ok(r) if r.rows > 0 => log::info!("intake flush: {r:?}"),
                    Ok(_) => {}
                    Err(e) => log::warn!("intake flush failed (retried): {}", e.user_message()),
                }
                tokio::select! {
                    _ = tokio::time::sleep(me.config.flush_interval) => {}
                    _ = me.flush_now.notified() => {}
                }
            }
        })
    }
}
