//! Statement records (a ticket's usage and the audit entry) written off the caller's path, for
//! servers: another process holding the catalog's write lock (an ingest, a long DDL) must not
//! hold up the end of every query's result. [`Catalog::record_in_background`] starts one writer
//! thread with its own connection; records queue to it (bounded) and are written in batches,
//! one transaction each. [`Catalog::flush_records`] waits for the queue; dropping the catalog
//! flushes it too. Without a background writer, records are written by the caller.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::Result;
use crate::store::Catalog;
use crate::tickets::{AuditEntry, add_usage, insert_audit};

/// Records queued at most; past it, callers write their own (and wait, as without a writer).
const QUEUE: usize = 10_000;
/// Records written in one transaction at most.
const BATCH: usize = 512;

/// One finished statement: usage (ticket, queries, bytes, rows) and its audit entry.
pub(crate) struct Record {
    pub(crate) usage: Option<(String, u64, u64, u64)>,
    pub(crate) entry: AuditEntry,
}

pub(crate) enum Message {
    Record(Box<Record>),
    /// Answered once every record queued before it is written.
    Flush(SyncSender<()>),
}

/// The queue to the writer thread and its handle (joined on drop, after the queue drains).
pub(crate) struct Recorder {
    tx: Option<SyncSender<Message>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    pub(crate) fn start(conn: Connection) -> std::io::Result<Recorder> {
        let (tx, rx) = sync_channel(QUEUE);
        let worker = std::thread::Builder::new()
            .name("cuve-audit".into())
            .spawn(move || run(conn, rx))?;
        Ok(Recorder {
            tx: Some(tx),
            worker: Some(worker),
        })
    }

    /// Queues a record; gives it back when the queue is full or the writer is gone.
    pub(crate) fn send(&self, record: Box<Record>) -> Option<Box<Record>> {
        let tx = self.tx.as_ref()?;
        match tx.try_send(Message::Record(record)) {
            Ok(()) => None,
            Err(TrySendError::Full(Message::Record(r)))
            | Err(TrySendError::Disconnected(Message::Record(r))) => Some(r),
            Err(_) => None,
        }
    }

    /// Waits until every record queued so far is written.
    pub(crate) fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = sync_channel(1);
        if tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

fn run(mut conn: Connection, rx: Receiver<Message>) {
    while let Ok(first) = rx.recv() {
        let mut records = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Message::Record(r) => records.push(r),
                Message::Flush(done) => flushes.push(done),
            }
            if records.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        // A failed batch is retried a few times (the lock may be held past the busy timeout),
        // then reported; records are never written twice (one transaction per batch).
        let mut tries = 0;
        loop {
            match write(&mut conn, &records) {
                Ok(()) => break,
                Err(e) if tries < 3 => {
                    tries += 1;
                    eprintln!(
                        "cuve: writing {} audit records (retrying): {e}",
                        records.len()
                    );
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => {
                    eprintln!("cuve: {} audit records not written: {e}", records.len());
                    break;
                }
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

fn write(conn: &mut Connection, records: &[Box<Record>]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for r in records {
        if let Some((id, q, b, rows)) = &r.usage {
            add_usage(&tx, id, *q, *b, *rows)?;
        }
        insert_audit(&tx, &r.entry)?;
    }
    tx.commit()?;
    Ok(())
}

impl Catalog {
    /// From now on, statement records are written by a background thread (see the module
    /// documentation); for servers. No effect on an in-memory catalog.
    pub fn record_in_background(&self) -> Result<()> {
        if self.recorder.get().is_some() || self.path().as_os_str() == ":memory:" {
            return Ok(());
        }
        let recorder =
            Recorder::start(self.open_writer()?).map_err(|source| crate::CatalogError::Io {
                path: self.path().display().to_string(),
                source,
            })?;
        // A racing second start keeps the first writer (the second is dropped, unused).
        let _ = self.recorder.set(recorder);
        Ok(())
    }

    /// Waits until the statement records queued so far are written.
    pub fn flush_records(&self) {
        if let Some(r) = self.recorder.get() {
            r.flush();
        }
    }

    /// Queues a record to the background writer; gives it back without one.
    pub(crate) fn queue_record(&self, record: Box<Record>) -> Option<Box<Record>> {
        match self.recorder.get() {
            Some(r) => r.send(record),
            None => Some(record),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(statement: &str) -> AuditEntry {
        AuditEntry {
            statement: statement.into(),
            decision: "allow".into(),
            ..AuditEntry::default()
        }
    }

    /// With the write lock held by another connection, recording returns at once; the
    /// records are written (in order, once) when the lock is free, and a flush waits for them.
    #[test]
    fn records_wait_in_the_background_not_in_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let c = Catalog::open(&path).unwrap();
        c.record_in_background().unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        for i in 0..50 {
            c.record_statement(None, &entry(&format!("SELECT {i}")))
                .unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "recording waited for the lock: {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(300));
        other.execute_batch("COMMIT").unwrap();
        c.flush_records();
        let got: Vec<String> = c
            .audit_entries(None, None, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.statement)
            .collect();
        assert_eq!(got.len(), 50, "{got:?}");
        assert!(got.contains(&"SELECT 0".to_string()) && got.contains(&"SELECT 49".to_string()));
        // Dropping the catalog writes what is still queued.
        c.record_statement(None, &entry("SELECT last")).unwrap();
        drop(c);
        let c = Catalog::open(&path).unwrap();
        let got = c.audit_entries(None, None, 100).unwrap();
        assert_eq!(got.len(), 51);
    }
}
