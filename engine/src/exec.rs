//! Admission and metering, the same for every front end: a ticket's concurrency slots (a
//! semaphore with a timeout, shared across processes through the catalog), a byte estimate from
//! the pruned file list checked against the per-query and daily quotas before anything runs, a
//! time limit, and usage + audit recorded when the statement ends (or is dropped).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cuve_catalog::{AuditEntry, Catalog};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use futures::{Future, Stream, StreamExt};

use crate::access::AccessView;
use crate::error::{EngineError, Result};
use crate::table::ScanReport;

pub(crate) use crate::threads::{blocking, pid_alive};

/// A held concurrency slot; released on drop.
pub struct SlotGuard {
    catalog: Arc<Catalog>,
    slot: i64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Err(e) = blocking(|| self.catalog.release_slot(self.slot)) {
            log::error!("releasing query slot {}: {e}", self.slot);
        }
    }
}

/// Waits for one of the ticket's concurrency slots, up to its `max_wait`.
pub async fn acquire_slot(
    catalog: &Arc<Catalog>,
    access: &AccessView,
) -> Result<Option<SlotGuard>> {
    let (Some(ticket), Some(max)) = (&access.ticket_id, access.quota.max_concurrent) else {
        return Ok(None);
    };
    let wait = Duration::from_secs_f64(access.quota.max_wait_secs.unwrap_or(0.0).max(0.0));
    let started = Instant::now();
    loop {
        if let Some(slot) = blocking(|| catalog.try_acquire_slot(ticket, max, &pid_alive))? {
            return Ok(Some(SlotGuard {
                catalog: catalog.clone(),
                slot,
            }));
        }
        if started.elapsed() >= wait {
            return Err(EngineError::Quota(format!(
                "ticket {ticket} already runs {max} queries (max_concurrent {max}); no slot freed within {:.1}s (max_wait). Retry later or ask the ticket's owner to raise the quota",
                wait.as_secs_f64()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The bytes a statement will scan, checked against the ticket's quotas.
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    /// The estimate (the pruned files' sizes).
    pub bytes: u64,
    /// Already charged to today's usage (tickets with a daily limit are charged at admission).
    pub charged: bool,
}

fn per_query_check(access: &AccessView, bytes: u64) -> Result<()> {
    if let Some(max) = access.quota.max_scan_bytes_per_query
        && bytes > max
    {
        return Err(EngineError::Quota(format!(
            "this query would scan {bytes} bytes, more than the ticket's max_scan_bytes_per_query ({max}); narrow the dt range or filter on the bucket column"
        )));
    }
    Ok(())
}

fn day_exceeded(ticket: &str, bytes: u64, max: u64, used: u64) -> EngineError {
    EngineError::Quota(format!(
        "this query would scan {bytes} bytes; ticket {ticket} has {} of its {max} bytes per day left",
        max.saturating_sub(used)
    ))
}

/// Checks the bytes a statement will scan against the ticket's quotas and, under a daily
/// limit, reserves them at once (charged whether or not the statement then finishes).
pub fn admit_bytes(
    catalog: &Catalog,
    access: &AccessView,
    scans: &[ScanReport],
) -> Result<Admitted> {
    let bytes: u64 = scans.iter().map(|s| s.bytes_read).sum();
    let Some(ticket) = &access.ticket_id else {
        return Ok(Admitted {
            bytes,
            charged: false,
        });
    };
    per_query_check(access, bytes)?;
    if let Some(max) = access.quota.max_scan_bytes_per_day {
        if let Err(used) = blocking(|| catalog.charge_bytes(ticket, bytes, max))? {
            return Err(day_exceeded(ticket, bytes, max, used));
        }
        return Ok(Admitted {
            bytes,
            charged: true,
        });
    }
    Ok(Admitted {
        bytes,
        charged: false,
    })
}

/// The same checks without reserving anything (for a check before a later admission).
pub fn check_bytes(catalog: &Catalog, access: &AccessView, scans: &[ScanReport]) -> Result<u64> {
    let bytes: u64 = scans.iter().map(|s| s.bytes_read).sum();
    let Some(ticket) = &access.ticket_id else {
        return Ok(bytes);
    };
    per_query_check(access, bytes)?;
    if let Some(max) = access.quota.max_scan_bytes_per_day {
        let used = catalog.bytes_today(ticket)?;
        if used + bytes > max {
            return Err(day_exceeded(ticket, bytes, max, used));
        }
    }
    Ok(bytes)
}

/// Records usage and an audit entry for a finished statement.
#[allow(clippy::too_many_arguments)]
pub fn record(
    catalog: &Catalog,
    access: &AccessView,
    statement: &str,
    resources: Vec<String>,
    decision: &str,
    reason: Option<String>,
    bytes: Admitted,
    rows: u64,
    started: Instant,
) {
    let charge = if bytes.charged { 0 } else { bytes.bytes };
    let bytes = bytes.bytes;
    let entry = AuditEntry {
        at: String::new(),
        ticket_id: access.ticket_id.clone(),
        user: Some(access.user.clone()),
        client: Some(access.client.clone()),
        statement: statement.chars().take(4000).collect(),
        resources,
        decision: decision.to_string(),
        reason,
        bytes,
        rows,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    // Usage and audit in one catalog transaction.
    let usage = access
        .ticket_id
        .as_deref()
        .filter(|_| decision != "deny")
        .map(|t| (t, 1, charge, rows));
    if let Err(e) = catalog.record_statement(usage, &entry) {
        log::error!("recording usage and audit: {e}");
    }
}

/// A result stream that enforces the time limit, counts rows, and records usage and audit
/// when it ends or is dropped (a client that goes away cancels the query).
pub struct MeteredStream {
    inner: SendableRecordBatchStream,
    schema: SchemaRef,
    deadline: Option<(Pin<Box<tokio::time::Sleep>>, f64)>,
    catalog: Arc<Catalog>,
    access: Arc<AccessView>,
    statement: String,
    resources: Vec<String>,
    bytes: Admitted,
    rows: u64,
    started: Instant,
    outcome: Option<(String, Option<String>)>,
    _slot: Option<SlotGuard>,
}

impl MeteredStream {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        inner: SendableRecordBatchStream,
        catalog: Arc<Catalog>,
        access: Arc<AccessView>,
        statement: String,
        resources: Vec<String>,
        bytes: Admitted,
        started: Instant,
        slot: Option<SlotGuard>,
    ) -> Self {
        let deadline = access.quota.max_runtime_secs.map(|s| {
            (
                Box::pin(tokio::time::sleep_until(
                    (started + Duration::from_secs_f64(s.max(0.0))).into(),
                )),
                s,
            )
        });
        let schema = inner.schema();
        // With a time limit, run the plan in its own task so the limit fires even while an
        // operator computes without yielding; dropping the receiver aborts the task.
        let inner: SendableRecordBatchStream = if deadline.is_some() {
            let mut builder = RecordBatchReceiverStream::builder(schema.clone(), 2);
            let tx = builder.tx();
            let mut source = inner;
            builder.spawn(async move {
                while let Some(item) = source.next().await {
                    if tx.send(item).await.is_err() {
                        break;
                    }
                }
                Ok(())
            });
            builder.build()
        } else {
            inner
        };
        MeteredStream {
            schema,
            inner,
            deadline,
            catalog,
            access,
            statement,
            resources,
            bytes,
            rows: 0,
            started,
            outcome: None,
            _slot: slot,
        }
    }

    fn finish(&mut self, decision: &str, reason: Option<String>) {
        if self.outcome.is_none() {
            self.outcome = Some((decision.to_string(), reason));
        }
    }
}

impl Stream for MeteredStream {
    type Item = DfResult<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.outcome.is_some() {
            return Poll::Ready(None);
        }
        if let Some((sleep, secs)) = &mut self.deadline {
            let secs = *secs;
            if sleep.as_mut().poll(cx).is_ready() {
                let msg = format!(
                    "quota exceeded: the query ran longer than the ticket's max_runtime ({secs}s) and was cancelled"
                );
                self.finish("error", Some(msg.clone()));
                return Poll::Ready(Some(Err(DataFusionError::External(Box::new(
                    EngineError::Quota(msg.trim_start_matches("quota exceeded: ").to_string()),
                )))));
            }
        }
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.inner.as_mut().poll_next(cx)
        }));
        let polled = match polled {
            Ok(p) => p,
            Err(payload) => {
                let e = EngineError::Internal(crate::error::panic_message(payload.as_ref()));
                self.finish("error", Some(e.user_message()));
                return Poll::Ready(Some(Err(DataFusionError::External(Box::new(e)))));
            }
        };
        match polled {
            Poll::Ready(Some(Ok(b))) => {
                self.rows += b.num_rows() as u64;
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.finish(
                    "error",
                    Some(EngineError::from_datafusion(e.clone_shallow()).user_message()),
                );
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.finish("allow", None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// `DataFusionError` is not `Clone`; keep the message.
trait CloneShallow {
    fn clone_shallow(&self) -> DataFusionError;
}

impl CloneShallow for DataFusionError {
    fn clone_shallow(&self) -> DataFusionError {
        DataFusionError::Execution(self.to_string())
    }
}

impl RecordBatchStream for MeteredStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        let (decision, reason) = self.outcome.take().unwrap_or_else(|| {
            (
                "allow".into(),
                Some("cancelled before the end of the result".into()),
            )
        });
        let decision = if decision == "error" {
            "error"
        } else {
            "allow"
        };
        let resources = std::mem::take(&mut self.resources);
        blocking(|| {
            record(
                &self.catalog,
                &self.access,
                &self.statement,
                resources,
                decision,
                reason,
                self.bytes,
                self.rows,
                self.started,
            )
        });
    }
}
