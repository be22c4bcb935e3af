//! One request's lines or documents: the table and the ticket's WRITE on it, which of them are
//! new, decoding (rejects are listed, dead-lettered and counted as consumed), then the WAL.

use std::io::Write;
use std::sync::Arc;

use serde::Serialize;

use super::Intake;
use super::dedupe::{Claim, IdClaim, SourceKey};
use super::wal::Record;
use crate::access::{AccessView, Privilege};
use crate::error::{EngineError, Result};
use crate::ingest::Target;
use crate::ingest::decode::{InputFormat, LineOrigin, TimeUnit};
use crate::ingest::run::DeadLetter;

/// Loads `db.table` (names as SQL gives them), if the caller may write to it.
pub fn load_target(
    engine: &Arc<crate::session::Engine>,
    access: &AccessView,
    name: &str,
) -> Result<Target> {
    {
        let (db, table) = name.split_once('.').ok_or_else(|| {
            EngineError::invalid(format!(
                "'{name}' is not a table name: write <database>.<table>, e.g. korea_naver_log.stream_log"
            ))
        })?;
        let db = cuve_catalog::names::database_name(db)?;
        let table = cuve_catalog::names::table_name(table)?;
        let catalog = engine.catalog();
        // WRITE on the table is what counts (it need not be readable); a ticket without it is
        // refused whether or not the table exists (the answer does not say).
        if !access.allows(Privilege::Write, &db, &table) {
            return Err(EngineError::Denied(format!(
                "writing to {db}.{table} needs a ticket with WRITE on it (or the table does not exist)"
            )));
        }
        let def = crate::threads::blocking(|| catalog.table(&db, &table))?
            .ok_or_else(|| EngineError::invalid(format!("table '{db}.{table}' does not exist")))?;
        Target::of(def, catalog, "intake")
    }
}

/// A line that was not stored, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LineError {
    pub line: u64,
    pub reason: String,
}

/// The answer to an NDJSON request (the interface contract's fields, then the rejects).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct LinesOutcome {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub committed_through_line: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LineError>,
}

/// Why a request was not (wholly) taken.
#[derive(Debug)]
pub enum SubmitError {
    /// Part of the range is being written by another request: retry it.
    Busy,
    Engine(EngineError),
}

impl From<EngineError> for SubmitError {
    fn from(e: EngineError) -> Self {
        SubmitError::Engine(e)
    }
}

/// An NDJSON request's identity.
pub struct LinesRequest<'a> {
    pub table: &'a str,
    pub sender: &'a str,
    pub source: &'a str,
    /// 1-based number of the body's first line.
    pub first_line: u64,
    pub time_unit: TimeUnit,
}

fn unit_name(u: TimeUnit) -> &'static str {
    match u {
        TimeUnit::S => "s",
        TimeUnit::Ms => "ms",
        TimeUnit::Us => "us",
        TimeUnit::Ns => "ns",
    }
}

/// Splits a body into lines (without their `\n` / `\r\n`); a last line without newline counts.
pub fn body_lines(body: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v.into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

impl Intake {
    /// Stores the lines of an NDJSON request (see the module doc).
    pub async fn submit_lines(
        &self,
        access: &AccessView,
        req: &LinesRequest<'_>,
        body: &[u8],
    ) -> std::result::Result<LinesOutcome, SubmitError> {
        let target = load_target(&self.engine, access, req.table)?;
        let lines = body_lines(body);
        let n = lines.len() as u64;
        let first = req.first_line - 1;
        let key = SourceKey {
            database: target.def.database.clone(),
            table: target.def.name.clone(),
            sender: req.sender.to_string(),
            source: req.source.to_string(),
        };
        let catalog = self.engine.catalog().clone();
        let (progress, claimed, read_at) = loop {
            let epoch = self.holdings.epoch();
            let progress = crate::threads::blocking(|| {
                catalog.ingest_source(&key.database, &key.table, &key.sender, &key.source)
            })
            .map_err(EngineError::from)?;
            let (prefix, ranges) = (progress.lines, &progress.ranges);
            match self
                .holdings
                .claim(&key, epoch, prefix, ranges, first, first + n)
            {
                Claim::New(parts) => break (progress, parts, epoch),
                Claim::Busy => return Err(SubmitError::Busy),
                Claim::Stale => continue,
            }
        };
        let result = self.store_lines(&target, req, &key, &lines, &claimed).await;
        self.holdings.settle(&key, &claimed, result.is_ok());
        let mut outcome = result?;
        let new: u64 = claimed.iter().map(|(a, b)| b - a).sum();
        outcome.duplicates = n - new;
        // A flush may have moved lines from the holdings to the catalog since the ledger was
        // read: read it again until no flush landed in between.
        let (mut progress, mut read_at) = (progress, read_at);
        outcome.committed_through_line = loop {
            let through = self
                .holdings
                .through(&key, progress.lines, &progress.ranges);
            if self.holdings.epoch() == read_at {
                break through;
            }
            read_at = self.holdings.epoch();
            progress = crate::threads::blocking(|| {
                catalog.ingest_source(&key.database, &key.table, &key.sender, &key.source)
            })
            .map_err(EngineError::from)?;
        };
        Ok(outcome)
    }

    async fn store_lines(
        &self,
        target: &Target,
        req: &LinesRequest<'_>,
        key: &SourceKey,
        lines: &[&[u8]],
        claimed: &[(u64, u64)],
    ) -> Result<LinesOutcome> {
        let first = req.first_line - 1;
        let mut decoder = target.decoder(InputFormat::Jsonl, req.time_unit)?;
        let mut record = Record {
            database: key.database.clone(),
            table: key.table.clone(),
            sender: key.sender.clone(),
            source: Some(key.source.clone()),
            ranges: claimed.to_vec(),
            line_nos: Vec::new(),
            ids: Vec::new(),
            time_unit: unit_name(req.time_unit).into(),
            lines: Vec::new(),
        };
        let mut outcome = LinesOutcome::default();
        let mut dead = Vec::new();
        for &(a, b) in claimed {
            for i in a..b {
                let raw = lines[(i - first) as usize];
                let line_no = i + 1;
                let text = match std::str::from_utf8(raw) {
                    Ok(t) if line_no == 1 => t.trim_start_matches('\u{feff}'),
                    Ok(t) => t,
                    Err(_) => {
                        let reason = "line is not valid UTF-8".to_string();
                        outcome.errors.push(LineError {
                            line: line_no,
                            reason: reason.clone(),
                        });
                        dead.push(dead_letter(
                            key,
                            line_no,
                            reason,
                            &String::from_utf8_lossy(raw),
                        ));
                        continue;
                    }
                };
                if text.trim().is_empty() {
                    continue;
                }
                let origin = LineOrigin {
                    sender_ip: &key.sender,
                    line_no,
                    key: None,
                };
                match decoder.push(text, origin) {
                    Ok(()) => {
                        record.line_nos.push(line_no);
                        record.lines.push(text.to_string());
                    }
                    Err(reason) => {
                        outcome.errors.push(LineError {
                            line: line_no,
                            reason: reason.clone(),
                        });
                        dead.push(dead_letter(key, line_no, reason, text));
                    }
                }
            }
        }
        let total: u64 = claimed.iter().map(|(a, b)| b - a).sum();
        if total > 0 && record.lines.is_empty() && outcome.errors.len() as u64 == total {
            // Nothing in the body decoded: not NDJSON (or not for this table) at all.
            let first = &outcome.errors[0];
            return Err(EngineError::invalid(format!(
                "the body is not NDJSON for table {}: no line could be read (line {}: {})",
                target.def.qualified_name(),
                first.line,
                first.reason
            )));
        }
        outcome.accepted = record.lines.len() as u64;
        outcome.rejected = outcome.errors.len() as u64;
        self.write_dead_letters(&target.def.qualified_name(), &dead)?;
        if !claimed.is_empty() {
            self.append(&record).await?;
        }
        Ok(outcome)
    }

    /// Appends to the WAL (synced) and wakes the flusher when enough waits.
    pub(crate) async fn append(&self, record: &Record) -> Result<()> {
        self.wal.append(record.encode()).await?;
        if self.wal.unflushed_bytes() >= self.config.flush_bytes {
            self.flush_now.notify_one();
        }
        Ok(())
    }

    /// Whether acknowledged data waits beyond the bound (flushes are failing): 503.
    pub fn overloaded(&self) -> bool {
        self.wal.unflushed_bytes() > self.config.max_unflushed_bytes
    }

    pub(crate) fn write_dead_letters(&self, table: &str, dead: &[DeadLetter]) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        let _g = self.dead_letters.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self.engine.home().join("deadletter").join(table);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        let path = dir.join(format!(
            "http-{}.jsonl",
            chrono::Utc::now().format("%Y%m%d")
        ));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| EngineError::io(&path, e))?;
        let mut text = String::new();
        for d in dead {
            text.push_str(&serde_json::to_string(d).unwrap_or_default());
            text.push('\n');
        }
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| EngineError::io(&path, e))?;
        Ok(())
    }

    /// Stores bulk documents of one table: `docs` are `(id, source)`; returns each one's fate
    /// in order.
    pub async fn submit_docs(
        &self,
        target: &Target,
        sender: &str,
        docs: &[(String, String)],
    ) -> Result<Vec<DocOutcome>> {
        let table = (target.def.database.clone(), target.def.name.clone());
        let catalog = self.engine.catalog().clone();
        let ids: Vec<String> = docs.iter().map(|(id, _)| id.clone()).collect();
        let claims = loop {
            let epoch = self.holdings.epoch();
            let known = crate::threads::blocking(|| {
                let refs: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
                catalog.known_ids(&table.0, &table.1, &refs)
            })?;
            if let Some(c) = self.holdings.claim_ids(&table, epoch, &ids, &known) {
                break c;
            }
        };
        let mut decoder = target.decoder(InputFormat::Jsonl, TimeUnit::Ns)?;
        let mut record = Record {
            database: table.0.clone(),
            table: table.1.clone(),
            sender: sender.to_string(),
            source: None,
            ranges: Vec::new(),
            line_nos: Vec::new(),
            ids: Vec::new(),
            time_unit: "ns".into(),
            lines: Vec::new(),
        };
        let mut out = Vec::with_capacity(docs.len());
        let mut claimed = Vec::new();
        let mut dead = Vec::new();
        for ((id, doc), claim) in docs.iter().zip(&claims) {
            match claim {
                IdClaim::Held => out.push(DocOutcome::Duplicate),
                IdClaim::Busy => out.push(DocOutcome::Busy),
                IdClaim::New => {
                    claimed.push(id.clone());
                    let origin = LineOrigin {
                        sender_ip: sender,
                        line_no: 0,
                        key: Some(id),
                    };
                    match decoder.push(doc, origin) {
                        Ok(()) => {
                            record.ids.push(id.clone());
                            record.lines.push(doc.clone());
                            out.push(DocOutcome::Stored);
                        }
                        Err(reason) => {
                            dead.push(DeadLetter {
                                sender_ip: sender.to_string(),
                                source: format!("_bulk _id {id}"),
                                line: 0,
                                reason: reason.clone(),
                                raw: doc.clone(),
                            });
                            out.push(DocOutcome::Rejected(reason));
                        }
                    }
                }
            }
        }
        // Rejected documents are not held: a corrected resend with the same id is stored.
        let rejected: Vec<String> = claimed
            .iter()
            .filter(|id| !record.ids.contains(id))
            .cloned()
            .collect();
        self.holdings.settle_ids(&table, &rejected, false);
        let stored = async {
            self.write_dead_letters(&target.def.qualified_name(), &dead)?;
            if !record.ids.is_empty() {
                self.append(&record).await?;
            }
            Ok::<_, EngineError>(())
        }
        .await;
        self.holdings
            .settle_ids(&table, &record.ids, stored.is_ok());
        stored?;
        Ok(out)
    }
}

/// The fate of one bulk document.
#[derive(Debug, Clone, PartialEq)]
pub enum DocOutcome {
    Stored,
    /// Its id was stored before.
    Duplicate,
    /// Its id is being written by another request right now: retry it.
    Busy,
    Rejected(String),
}

fn dead_letter(key: &SourceKey, line: u64, reason: String, raw: &str) -> DeadLetter {
    DeadLetter {
        sender_ip: key.sender.clone(),
        source: key.source.clone(),
        line,
        reason,
        raw: raw.to_string(),
    }
}
