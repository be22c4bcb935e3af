//! Acknowledged rows into their tables: the WAL's sealed segments are read, each table's rows
//! decoded and split into one file per (partition, bucket), and committed with the sources'
//! line ranges and the documents' ids in one catalog transaction (through
//! [`crate::table::commit`]); only then are the segments deleted. A crash between the commit and
//! the delete replays the segments, and the ledger makes them no-ops; lines another writer
//! (`cuve ingest` of the same file) committed meanwhile are left out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use cuve_catalog::RangeAdvance;
use cuve_catalog::ledger::uncovered;
use datafusion::arrow::array::RecordBatch;
use serde::Serialize;

use super::Intake;
use super::dedupe::SourceKey;
use super::wal::{Record, read_segment};
use crate::error::{EngineError, Result};
use crate::ingest::Target;
use crate::ingest::decode::{InputFormat, LineOrigin, TimeUnit};
use crate::ingest::run::{DeadLetter, stage_slices};
use crate::table::commit::{Change, commit};
use crate::table::writer::SliceKey;

/// What one flush did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FlushReport {
    pub segments: usize,
    pub tables: usize,
    pub rows: u64,
    pub files: usize,
    /// Lines or documents found already committed (a replay after a crash).
    pub already_committed: u64,
}

impl Intake {
    /// Commits everything acknowledged so far (see the module doc).
    pub async fn flush(self: &Arc<Self>) -> Result<FlushReport> {
        let _one = self.flushing.lock().await;
        let mut sealed: Vec<PathBuf> = self.wal.seal().await?;
        {
            let mut replay = self.replay.lock().unwrap_or_else(|p| p.into_inner());
            for p in replay.drain(..) {
                if !sealed.contains(&p) {
                    sealed.push(p);
                }
            }
        }
        sealed.sort();
        let me = self.clone();
        let segs = sealed.clone();
        let report = tokio::task::spawn_blocking(move || me.flush_segments(&segs))
            .await
            .map_err(|e| EngineError::invalid(format!("intake flush stopped: {e}")))??;
        self.wal.remove(&sealed);
        Ok(report)
    }

    fn flush_segments(&self, sealed: &[PathBuf]) -> Result<FlushReport> {
        let mut by_table: BTreeMap<(String, String), Vec<Record>> = BTreeMap::new();
        for seg in sealed {
            for r in read_segment(seg)? {
                by_table
                    .entry((r.database.clone(), r.table.clone()))
                    .or_default()
                    .push(r);
            }
        }
        let mut report = FlushReport {
            segments: sealed.len(),
            ..Default::default()
        };
        let mut first_error = None;
        for ((db, table), records) in by_table {
            match self.flush_table(&db, &table, &records, &mut report) {
                Ok(()) => report.tables += 1,
                Err(e) => {
                    log::warn!("intake flush of {db}.{table}: {}", e.user_message());
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            // The segments stay (what did commit is a no-op on the retry).
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn flush_table(
        &self,
        db: &str,
        table: &str,
        records: &[Record],
        report: &mut FlushReport,
    ) -> Result<()> {
        let catalog = self.engine.catalog();
        let Some(def) = catalog.table(db, table)? else {
            // Dropped since: its rows have nowhere to go; they are kept as dead letters.
            let dead: Vec<DeadLetter> = records
                .iter()
                .flat_map(|r| {
                    r.lines.iter().map(|l| DeadLetter {
                        sender_ip: r.sender.clone(),
                        source: r.source.clone().unwrap_or_else(|| "_bulk".into()),
                        line: 0,
                        reason: format!(
                            "table {db}.{table} was dropped before the row was flushed"
                        ),
                        raw: l.clone(),
                    })
                })
                .collect();
            return self.write_dead_letters(&format!("{db}.{table}"), &dead);
        };
        let target = Target::of(def, catalog, "intake")?;
        let layout = target.layout(catalog)?;
        // What the catalog already has.
        let mut sources: HashMap<SourceKey, cuve_catalog::SourceProgress> = HashMap::new();
        let mut all_ids: Vec<&str> = Vec::new();
        for r in records {
            if let Some(source) = &r.source {
                let key = SourceKey::of(db, table, &r.sender, source);
                if let std::collections::hash_map::Entry::Vacant(e) = sources.entry(key) {
                    e.insert(catalog.ingest_source(db, table, &r.sender, source)?);
                }
            } else {
                all_ids.extend(r.ids.iter().map(|s| s.as_str()));
            }
        }
        let known = catalog.known_ids(db, table, &all_ids)?;
        let mut decoders = HashMap::new();
        let mut slices: HashMap<SliceKey, Vec<RecordBatch>> = HashMap::new();
        let mut advances: HashMap<i64, (SourceKey, Vec<(u64, u64)>)> = HashMap::new();
        let mut ids: Vec<String> = Vec::new();
        let mut seen_ids: HashSet<&str> = HashSet::new();
        let mut dead = Vec::new();
        for r in records {
            let unit = TimeUnit::parse(&r.time_unit).unwrap_or_default();
            if !decoders.contains_key(&r.time_unit) {
                decoders.insert(
                    r.time_unit.clone(),
                    target.decoder(InputFormat::Jsonl, unit)?,
                );
            }
            let decoder = decoders.get_mut(&r.time_unit).expect("inserted");
            let mut push = |line: &str, origin: LineOrigin<'_>, source: &str| {
                if let Err(reason) = decoder.push(line, origin) {
                    dead.push(DeadLetter {
                        sender_ip: r.sender.clone(),
                        source: source.to_string(),
                        line: origin.line_no,
                        reason,
                        raw: line.to_string(),
                    });
                }
            };
            match &r.source {
                Some(source) => {
                    let key = SourceKey::of(db, table, &r.sender, source);
                    let p = &sources[&key];
                    let (id, prefix, committed) = (&p.id, &p.lines, &p.ranges);
                    let mut keep = Vec::new();
                    for &(a, b) in &r.ranges {
                        let new = uncovered(*prefix, committed, a, b);
                        report.already_committed +=
                            (b - a) - new.iter().map(|(x, y)| y - x).sum::<u64>();
                        keep.extend(new);
                    }
                    for (line_no, text) in r.line_nos.iter().zip(&r.lines) {
                        let i = line_no - 1;
                        if keep.iter().any(|&(a, b)| a <= i && i < b) {
                            let origin = LineOrigin {
                                sender_ip: &r.sender,
                                line_no: *line_no,
                                key: None,
                            };
                            push(text, origin, source);
                        }
                    }
                    advances
                        .entry(*id)
                        .or_insert_with(|| (key.clone(), Vec::new()))
                        .1
                        .extend(keep);
                }
                None => {
                    for (id, text) in r.ids.iter().zip(&r.lines) {
                        if known.contains(id) || !seen_ids.insert(id) {
                            report.already_committed += 1;
                            continue;
                        }
                        ids.push(id.clone());
                        let origin = LineOrigin {
                            sender_ip: &r.sender,
                            line_no: 0,
                            key: Some(id),
                        };
                        push(text, origin, "_bulk");
                    }
                }
            }
            if decoder.rows() >= 65_536 {
                for s in layout.split(&decoder.finish()?)? {
                    slices
                        .entry((s.partition, s.bucket))
                        .or_default()
                        .push(s.batch);
                }
            }
        }
        for decoder in decoders.values_mut() {
            if decoder.rows() > 0 {
                for s in layout.split(&decoder.finish()?)? {
                    slices
                        .entry((s.partition, s.bucket))
                        .or_default()
                        .push(s.batch);
                }
            }
        }
        let ranges: Vec<RangeAdvance> = advances
            .iter()
            .filter(|(_, (_, r))| !r.is_empty())
            .map(|(id, (_, r))| RangeAdvance {
                source_id: *id,
                ranges: r.clone(),
            })
            .collect();
        if !(ranges.is_empty() && ids.is_empty()) {
            self.write_dead_letters(&target.def.qualified_name(), &dead)?;
            let (staged, partitions, rows) = stage_slices(catalog, &layout, slices)?;
            crate::faults::crash_point("intake-before-commit");
            let change = Change {
                partitions: &partitions,
                ranges: &ranges,
                ids: &ids,
                ..Default::default()
            };
            let (_, files) = commit(catalog, &target.def, &staged, change)?;
            crate::faults::crash_point("intake-after-commit");
            report.rows += rows;
            report.files += files.len();
        }
        for (key, r) in advances.values() {
            self.holdings.committed(key, r);
        }
        // Ranges found already committed are no longer pending either.
        for r in records {
            if let Some(source) = &r.source {
                let key = SourceKey::of(db, table, &r.sender, source);
                self.holdings.committed(&key, &r.ranges);
            }
        }
        let table_key = (db.to_string(), table.to_string());
        for r in records.iter().filter(|r| r.source.is_none()) {
            self.holdings.committed_ids(&table_key, &r.ids);
        }
        Ok(())
    }
}
