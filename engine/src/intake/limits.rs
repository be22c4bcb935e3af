//! Backpressure: a bounded amount of request bytes in flight for the whole server (waited for a
//! short time, then 503), and per ticket its write quota: requests at once, rows and bytes per
//! second (429 with the seconds to wait).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cuve_catalog::tickets::Quota;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a request was turned away, and when to come back.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// 429 (the ticket's quota) or 503 (the server is full).
    pub status: u16,
    pub retry_after_secs: u64,
    pub reason: String,
}

/// A token bucket holding at most one second of its rate; it may go into debt by one request
/// (a request larger than a second's quota still passes when the bucket is full).
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Bucket {
            rate: rate as f64,
            tokens: rate as f64,
            at: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        self.at = now;
    }

    /// Takes `n`, or says how many seconds until the bucket is positive again.
    fn take(&mut self, n: u64) -> Result<(), u64> {
        self.refill();
        if self.tokens <= 0.0 {
            return Err(((-self.tokens / self.rate).ceil() as u64).max(1));
        }
        self.tokens -= n as f64;
        Ok(())
    }
}

struct TicketLimits {
    quota: Quota,
    concurrent: Option<Arc<Semaphore>>,
    rows: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl TicketLimits {
    fn new(q: &Quota) -> Self {
        TicketLimits {
            quota: q.clone(),
            concurrent: q
                .max_concurrent_writes
                .map(|n| Arc::new(Semaphore::new(n.max(1) as usize))),
            rows: q
                .max_write_rows_per_second
                .filter(|&n| n > 0)
                .map(Bucket::new),
            bytes: q
                .max_write_bytes_per_second
                .filter(|&n| n > 0)
                .map(Bucket::new),
        }
    }
}

/// Held while a request runs.
pub struct Admission {
    _global: Option<OwnedSemaphorePermit>,
    _ticket: Option<OwnedSemaphorePermit>,
}

/// The server's limits.
pub struct Limits {
    /// Request bytes in flight, in KiB.
    global: Arc<Semaphore>,
    global_kib: u32,
    wait: Duration,
    tickets: Mutex<HashMap<String, TicketLimits>>,
}

impl Limits {
    pub fn new(max_inflight_bytes: u64, wait: Duration) -> Self {
        let kib = (max_inflight_bytes / 1024).clamp(1, u32::MAX as u64 / 2) as u32;
        Limits {
            global: Arc::new(Semaphore::new(kib as usize)),
            global_kib: kib,
            wait,
            tickets: Mutex::new(HashMap::new()),
        }
    }

    /// Admits a request of `bytes` bytes from `ticket`: its concurrency slot and byte rate
    /// first (answered at once), then room in the server's queue (waited for up to the limit).
    pub async fn admit(
        &self,
        ticket: &str,
        quota: &Quota,
        bytes: u64,
    ) -> Result<Admission, Refused> {
        let ticket_permit = {
            let mut map = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
            let t = map
                .entry(ticket.to_string())
                .or_insert_with(|| TicketLimits::new(quota));
            if &t.quota != quota {
                *t = TicketLimits::new(quota);
            }
            let permit = match &t.concurrent {
                Some(s) => match s.clone().try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        return Err(Refused {
                            status: 429,
                            retry_after_secs: 1,
                            reason: format!(
                                "ticket {ticket} already has {} write requests in flight (max_concurrent_writes); retry later",
                                quota.max_concurrent_writes.unwrap_or(0)
                            ),
                        });
                    }
                },
                None => None,
            };
            if let Some(b) = t.bytes.as_mut()
                && let Err(secs) = b.take(bytes)
            {
                return Err(Refused {
                    status: 429,
                    retry_after_secs: secs,
                    reason: format!(
                        "ticket {ticket} is over its write quota of {} bytes per second; retry in {secs} s",
                        quota.max_write_bytes_per_second.unwrap_or(0)
                    ),
                });
            }
            permit
        };
        let kib = (bytes.div_ceil(1024)).clamp(1, self.global_kib as u64) as u32;
        let global = match tokio::time::timeout(
            self.wait,
            self.global.clone().acquire_many_owned(kib),
        )
        .await
        {
            Ok(Ok(p)) => Some(p),
            _ => {
                return Err(Refused {
                    status: 503,
                    retry_after_secs: 1,
                    reason: "the server is receiving as much as it can hold; retry shortly".into(),
                });
            }
        };
        Ok(Admission {
            _global: global,
            _ticket: ticket_permit,
        })
    }

    /// Charges `rows` to the ticket's row rate (known once the body is read).
    pub fn charge_rows(&self, ticket: &str, quota: &Quota, rows: u64) -> Result<(), Refused> {
        let mut map = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = map.get_mut(ticket) else {
            return Ok(());
        };
        if let Some(b) = t.rows.as_mut()
            && let Err(secs) = b.take(rows)
        {
            return Err(Refused {
                status: 429,
                retry_after_secs: secs,
                reason: format!(
                    "ticket {ticket} is over its write quota of {} rows per second; retry in {secs} s",
                    quota.max_write_rows_per_second.unwrap_or(0)
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn quotas_refuse_with_retry_after() {
        let limits = Limits::new(1 << 20, Duration::from_millis(50));
        let q = Quota {
            max_concurrent_writes: Some(1),
            max_write_rows_per_second: Some(100),
            ..Default::default()
        };
        let a = limits.admit("t1", &q, 10).await.unwrap();
        let busy = limits.admit("t1", &q, 10).await.err().unwrap();
        assert_eq!(busy.status, 429);
        // Another ticket is not held up.
        let b = limits.admit("t2", &Quota::default(), 10).await.unwrap();
        drop((a, b));
        let a = limits.admit("t1", &q, 10).await.unwrap();
        limits.charge_rows("t1", &q, 500).unwrap();
        let over = limits.charge_rows("t1", &q, 1).err().unwrap();
        assert_eq!(over.status, 429);
        assert!(over.retry_after_secs >= 4, "{over:?}");
        drop(a);
        // The server's queue: 1 MiB in flight at most.
        let big = limits
            .admit("t3", &Quota::default(), 1 << 20)
            .await
            .unwrap();
        let full = limits
            .admit("t4", &Quota::default(), 1024)
            .await
            .err()
            .unwrap();
        assert_eq!(full.status, 503);
        drop(big);
        assert!(limits.admit("t4", &Quota::default(), 1024).await.is_ok());
    }
}
