//! The ingest run and its commit protocol (see the module doc of [`crate::ingest`]).
//!
//! Per worker: read lines of its sources from their committed prefix, decode, split by
//! (partition, bucket); every `batch_lines` lines, write each (partition, bucket) as one staged
//! Parquet file, then commit in one catalog transaction the sources' ledger advances, the new
//! partitions and the list of staged → final names; then publish by rename. Whoever finds a
//! committed batch unpublished (after a crash) publishes it. Uncommitted staged files of dead
//! processes are removed.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cuve_catalog::{Catalog, PartitionDef, SourceAdvance, TableDef};
use datafusion::arrow::array::RecordBatch;
use serde::Serialize;

use super::decode::{InputFormat, LineOrigin, RowDecoder, TimeUnit};
use super::source::{Source, expand_inputs};
use crate::access::Privilege;
use crate::error::{EngineError, Result};
use crate::parse::TableName;
use crate::session::Session;
use crate::table::commit::{Change, Staged, commit, discard, publish_pending, stage_file};
use crate::table::writer::{Layout, SliceKey};

/// Options of an ingest run.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub format: InputFormat,
    pub sender_ip: Option<String>,
    /// Source name for standard input.
    pub source_name: Option<String>,
    pub time_unit: TimeUnit,
    /// Fail (committing nothing more) once more than this many lines are rejected.
    pub max_errors: Option<u64>,
    /// Lines per committed batch (larger batches write fewer, larger files).
    pub batch_lines: u64,
    /// Worker threads (sources are spread over them).
    pub threads: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            format: InputFormat::Jsonl,
            sender_ip: None,
            source_name: None,
            time_unit: TimeUnit::Ns,
            max_errors: None,
            batch_lines: 2_000_000,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestSummary {
    pub table: String,
    pub sources: usize,
    /// Lines read in this run (new lines).
    pub lines_read: u64,
    /// Rows committed.
    pub written: u64,
    /// Lines skipped because an earlier run already committed them.
    pub duplicates_skipped: u64,
    /// Malformed lines sent to the dead-letter file.
    pub rejected: u64,
    /// Unterminated last lines that did not parse, left for the next run.
    pub incomplete: u64,
    pub bytes_read: u64,
    pub partitions: Vec<String>,
    pub files: usize,
    pub dead_letter: Option<String>,
    pub seconds: f64,
}

/// A rejected line.
#[derive(Debug, Serialize)]
pub(crate) struct DeadLetter {
    pub sender_ip: String,
    pub source: String,
    pub line: u64,
    pub reason: String,
    pub raw: String,
}

/// Shared state of one run.
struct Run<'a> {
    catalog: &'a Arc<Catalog>,
    def: Arc<TableDef>,
    layout: Layout,
    opts: &'a IngestOptions,
    target: super::Target,
    locks_dir: PathBuf,
    dead_letter_path: PathBuf,
    dead_letter: Mutex<Option<std::fs::File>>,
    summary: Mutex<IngestSummary>,
    rejected_total: AtomicU64,
    progress: &'a (dyn Fn(&IngestSummary) + Sync),
}

/// One worker's uncommitted batch.
#[derive(Default)]
struct Batch {
    slices: HashMap<SliceKey, Vec<RecordBatch>>,
    advances: Vec<SourceAdvance>,
    locks: Vec<std::fs::File>,
    lines: u64,
    rejects: Vec<DeadLetter>,
}

/// Ingests `inputs` into `table`. Needs WRITE on the table. Audited like a statement (with the
/// lines read and rows written), whatever the outcome.
pub fn ingest(
    session: &Session,
    table: &TableName,
    inputs: &[String],
    opts: &IngestOptions,
    progress: &(dyn Fn(&IngestSummary) + Sync),
) -> Result<IngestSummary> {
    let started = Instant::now();
    let result = ingest_inner(session, table, inputs, opts, progress, started);
    let statement = format!("INGEST INTO {table} FROM {}", inputs.join(" "));
    let (decision, reason, bytes, rows) = match &result {
        Ok(s) => ("allow", None, s.bytes_read, s.written),
        Err(e) if matches!(e.kind(), crate::ErrorKind::Denied) => {
            ("deny", Some(e.user_message()), 0, 0)
        }
        Err(e) => ("error", Some(e.user_message()), 0, 0),
    };
    crate::exec::record(
        session.engine().catalog(),
        session.access(),
        &statement,
        vec![table.to_string()],
        decision,
        reason,
        // Written bytes are not scanned bytes: nothing is charged to the scan quota.
        crate::exec::Admitted {
            bytes,
            charged: true,
        },
        rows,
        started,
    );
    result
}

fn ingest_inner(
    session: &Session,
    table: &TableName,
    inputs: &[String],
    opts: &IngestOptions,
    progress: &(dyn Fn(&IngestSummary) + Sync),
    started: Instant,
) -> Result<IngestSummary> {
    let visible = session.visible_table(table)?;
    if !session
        .access()
        .allows(Privilege::Write, &visible.database, &visible.name)
    {
        return Err(EngineError::Denied(format!(
            "ingest into {} needs a ticket with WRITE on it",
            visible.qualified_name()
        )));
    }
    let engine = session.engine();
    let catalog = engine.catalog();
    let def = catalog
        .table(&visible.database, &visible.name)?
        .ok_or_else(|| {
            EngineError::invalid(format!(
                "table '{}' does not exist",
                visible.qualified_name()
            ))
        })?;
    let target = super::Target::of(def, catalog, "ingest")?;
    let layout = target.layout(catalog)?;
    let def = target.def.clone();
    let sources = expand_inputs(
        inputs,
        opts.sender_ip.as_deref(),
        opts.source_name.as_deref(),
    )?;

    crate::table::commit::check_owned(catalog, &def)?;
    publish_pending(catalog)?;
    crate::table::commit::remove_orphans(
        Path::new(&def.location),
        def.partition_columns.len(),
        &catalog.pending_publishes()?,
    );

    let locks_dir = engine.home().join("locks");
    std::fs::create_dir_all(&locks_dir).map_err(|e| EngineError::io(&locks_dir, e))?;
    let dl_dir = engine.home().join("deadletter").join(def.qualified_name());
    let run = Run {
        catalog,
        layout,
        opts,
        target,
        locks_dir,
        dead_letter_path: dl_dir.join(format!(
            "{}-{}.jsonl",
            chrono::Utc::now().format("%Y%m%dT%H%M%S"),
            std::process::id()
        )),
        dead_letter: Mutex::new(None),
        summary: Mutex::new(IngestSummary {
            table: def.qualified_name(),
            sources: sources.len(),
            ..Default::default()
        }),
        rejected_total: AtomicU64::new(0),
        progress,
        def,
    };
    // Sources in (name, sender) order — for `<sender>/<YYYYMMDD>` layouts, day by day — and
    // contiguous runs of them per worker, so a batch covers few partitions and each
    // (partition, bucket) gets few, large files.
    let mut sources = sources;
    sources.sort_by(|a, b| (&a.name, &a.sender_ip).cmp(&(&b.name, &b.sender_ip)));
    let workers = opts.threads.max(1).min(sources.len().max(1));
    let per = sources.len().div_ceil(workers).max(1);
    let queues: Vec<Mutex<VecDeque<Source>>> = sources
        .chunks(per)
        .map(|c| Mutex::new(c.iter().cloned().collect()))
        .collect();
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = queues.iter().map(|q| s.spawn(|| run.worker(q))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(EngineError::invalid("an ingest worker panicked")))
            })
            .collect()
    });
    let mut summary = run.summary.lock().map(|s| s.clone()).unwrap_or_default();
    summary.seconds = started.elapsed().as_secs_f64();
    for r in results {
        r?;
    }
    Ok(summary)
}

impl Run<'_> {
    fn worker(&self, queue: &Mutex<VecDeque<Source>>) -> Result<()> {
        let mut decoder = self.target.decoder(self.opts.format, self.opts.time_unit)?;
        let mut batch = Batch::default();
        loop {
            let next = queue.lock().ok().and_then(|mut q| q.pop_front());
            let Some(src) = next else { break };
            self.read_source(&src, &mut decoder, &mut batch)?;
        }
        self.commit(&mut decoder, &mut batch)
    }

    /// Locks a source against concurrent ingests of it. Never waits while holding other
    /// sources' locks: if the lock is busy, the current batch is committed (releasing them) first.
    fn lock_source(
        &self,
        src: &Source,
        decoder: &mut RowDecoder,
        batch: &mut Batch,
    ) -> Result<std::fs::File> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.def.qualified_name(), &src.sender_ip, &src.name).hash(&mut h);
        let path = self
            .locks_dir
            .join(format!("ingest-{:016x}.lock", h.finish()));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| EngineError::io(&path, e))?;
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(EngineError::io(&path, e)),
        }
        self.commit(decoder, batch)?;
        f.lock().map_err(|e| EngineError::io(&path, e))?;
        Ok(f)
    }

    fn read_source(&self, src: &Source, decoder: &mut RowDecoder, batch: &mut Batch) -> Result<()> {
        let lock = self.lock_source(src, decoder, batch)?;
        let db = &self.def.database;
        let table = &self.def.name;
        let progress = self
            .catalog
            .ingest_source(db, table, &src.sender_ip, &src.name)?;
        let label = match &src.path {
            Some(p) => p.display().to_string(),
            None => format!("stdin ({})", src.name),
        };
        let mut head: Option<(u64, String)> = None;
        let mut resume_bytes: Option<u64> = None;
        let mut reader: Box<dyn BufRead> = match &src.path {
            Some(path) => {
                let mut f = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
                let len = f.metadata().map_err(|e| EngineError::io(path, e))?.len();
                if len < progress.bytes.unwrap_or(0) {
                    return Err(EngineError::File {
                        path: label,
                        message: format!(
                            "the file is shorter ({len} bytes) than what was already ingested from it ({} bytes): it was replaced or truncated; give it a new name to ingest it as a new source",
                            progress.bytes.unwrap_or(0)
                        ),
                    });
                }
                // The file is the one ingested before only if it begins with the same bytes
                // (a log rotated or rewritten under the same name does not).
                let mut start = vec![0u8; (len as usize).min(cuve_catalog::ledger::HEAD_BYTES)];
                f.read_exact(&mut start)
                    .map_err(|e| EngineError::io(path, e))?;
                if let Some((n, hash)) = &progress.head {
                    let n = *n as usize;
                    if n > start.len() || cuve_catalog::ledger::fingerprint(&start[..n]) != *hash {
                        return Err(EngineError::File {
                            path: label,
                            message: format!(
                                "the file does not begin with the bytes ingested from it before ({} lines, {} bytes committed): it was replaced under the same name; nothing was read. Give the new file another name to ingest it as a new source",
                                progress.lines,
                                progress.bytes.unwrap_or(0)
                            ),
                        });
                    }
                }
                if progress
                    .head
                    .as_ref()
                    .is_none_or(|(n, _)| (*n as usize) < start.len())
                {
                    head = Some((
                        start.len() as u64,
                        cuve_catalog::ledger::fingerprint(&start),
                    ));
                }
                f.seek(SeekFrom::Start(0))
                    .map_err(|e| EngineError::io(path, e))?;
                if self.opts.format != InputFormat::Jsonl {
                    // CSV/TSV: the header is the first line.
                    let mut first = String::new();
                    BufReader::new(&mut f)
                        .read_line(&mut first)
                        .map_err(|e| EngineError::io(path, e))?;
                    decoder.set_header(
                        first
                            .trim_start_matches('\u{feff}')
                            .trim_end_matches(['\n', '\r']),
                    );
                }
                let mut r: Box<dyn BufRead> = match progress.bytes {
                    Some(at) => {
                        f.seek(SeekFrom::Start(at))
                            .map_err(|e| EngineError::io(path, e))?;
                        Box::new(BufReader::with_capacity(1 << 20, f))
                    }
                    // Lines that came over the network: where they end in this file is found by
                    // reading their lines again.
                    None => Box::new(BufReader::with_capacity(1 << 20, f)),
                };
                if progress.bytes.is_none() {
                    resume_bytes = Some(skip_lines(&mut r, progress.lines, &label)?);
                }
                r
            }
            None => {
                let mut r: Box<dyn BufRead> =
                    Box::new(BufReader::with_capacity(1 << 20, std::io::stdin()));
                let mut buf = Vec::new();
                for i in 0..progress.lines {
                    buf.clear();
                    let n = r
                        .read_until(b'\n', &mut buf)
                        .map_err(|e| EngineError::io("stdin", e))?;
                    if n == 0 {
                        return Err(EngineError::invalid(format!(
                            "standard input has {i} lines, but {} were already ingested from source '{}'",
                            progress.lines, src.name
                        )));
                    }
                    if i == 0 && self.opts.format != InputFormat::Jsonl {
                        decoder.set_header(
                            String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']),
                        );
                    }
                }
                r
            }
        };
        self.add_summary(|s| s.duplicates_skipped += progress.lines);
        let mut from_lines = progress.lines;
        let mut lines = progress.lines;
        let mut bytes = progress.bytes.or(resume_bytes).unwrap_or(0);
        // Ranges above the prefix committed out of order (HTTP intake): their lines are skipped.
        let above = &progress.ranges;
        let mut skipped: Vec<(u64, u64)> = Vec::new();
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut since_progress = 0u64;
        let mut pending_bytes = 0u64;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| EngineError::io(&label, e))?;
            if n == 0 {
                break;
            }
            let terminated = buf.last() == Some(&b'\n');
            // Validated once (SIMD); a valid line is borrowed, not copied.
            let (text, utf8_ok): (std::borrow::Cow<'_, str>, bool) =
                match simdutf8::basic::from_utf8(&buf) {
                    Ok(t) => (t.trim_end_matches(['\n', '\r']).into(), true),
                    Err(_) => (
                        String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .to_string()
                            .into(),
                        false,
                    ),
                };
            let line_no = lines + 1;
            // A UTF-8 byte order mark before the first line is not part of it.
            let text = match text {
                std::borrow::Cow::Borrowed(t) if line_no == 1 => {
                    std::borrow::Cow::Borrowed(t.trim_start_matches('\u{feff}'))
                }
                std::borrow::Cow::Owned(t) if line_no == 1 && t.starts_with('\u{feff}') => {
                    std::borrow::Cow::Owned(t.trim_start_matches('\u{feff}').to_string())
                }
                other => other,
            };
            if !terminated && src.path.is_some() && self.opts.format != InputFormat::Jsonl {
                // A CSV/TSV line without its newline may still be being written (a truncated
                // field would still parse): leave it for the next run.
                self.add_summary(|s| s.incomplete += 1);
                break;
            }
            let is_header = line_no == 1 && self.opts.format != InputFormat::Jsonl;
            let committed = above.iter().find(|&&(a, b)| a < line_no && line_no <= b);
            if let Some(&r) = committed {
                if !skipped.contains(&r) {
                    skipped.push(r);
                }
                self.add_summary(|s| s.duplicates_skipped += 1);
            } else if is_header {
                decoder.set_header(&text);
            } else if !text.trim().is_empty() {
                let result = if utf8_ok {
                    decoder.push(
                        &text,
                        LineOrigin {
                            key: None,
                            sender_ip: &src.sender_ip,
                            line_no,
                        },
                    )
                } else {
                    Err("line is not valid UTF-8".to_string())
                };
                if let Err(reason) = result {
                    if !terminated && src.path.is_some() && self.opts.format == InputFormat::Jsonl {
                        // Probably a line still being written: leave it for the next run.
                        self.add_summary(|s| s.incomplete += 1);
                        break;
                    }
                    batch.rejects.push(DeadLetter {
                        sender_ip: src.sender_ip.clone(),
                        source: src.name.clone(),
                        line: line_no,
                        reason,
                        raw: text.to_string(),
                    });
                }
            }
            lines += 1;
            bytes += n as u64;
            batch.lines += 1;
            since_progress += 1;
            // Counted locally, added to the shared summary every 50,000 lines and at the end
            // (a lock per line showed up in profiles with two workers).
            pending_bytes += n as u64;
            if decoder.rows() >= 65_536 {
                self.flush_decoder(decoder, batch)?;
            }
            if since_progress >= 50_000 {
                self.add_summary(|s| {
                    s.lines_read += since_progress;
                    s.bytes_read += pending_bytes;
                });
                (since_progress, pending_bytes) = (0, 0);
                if let Ok(s) = self.summary.lock() {
                    (self.progress)(&s);
                }
            }
            // A batch does not end inside a committed range (the commit absorbs the whole range).
            if batch.lines >= self.opts.batch_lines && committed.is_none() {
                batch.advances.push(SourceAdvance {
                    source_id: progress.id,
                    from_lines,
                    to_lines: lines,
                    to_bytes: bytes,
                    head: head.take(),
                    skipped: std::mem::take(&mut skipped),
                });
                self.commit(decoder, batch)?;
                from_lines = lines;
            }
        }
        self.add_summary(|s| {
            s.lines_read += since_progress;
            s.bytes_read += pending_bytes;
        });
        if lines > from_lines {
            batch.advances.push(SourceAdvance {
                source_id: progress.id,
                from_lines,
                to_lines: lines,
                to_bytes: bytes,
                head: head.take(),
                skipped,
            });
        }
        batch.locks.push(lock);
        Ok(())
    }

    fn add_summary(&self, f: impl FnOnce(&mut IngestSummary)) {
        if let Ok(mut s) = self.summary.lock() {
            f(&mut s);
        }
    }

    fn flush_decoder(&self, decoder: &mut RowDecoder, batch: &mut Batch) -> Result<()> {
        if decoder.rows() == 0 {
            return Ok(());
        }
        let rows = decoder.finish()?;
        for s in self.layout.split(&rows)? {
            batch
                .slices
                .entry((s.partition, s.bucket))
                .or_default()
                .push(s.batch);
        }
        Ok(())
    }

    fn write_dead_letters(&self, rejects: &[DeadLetter]) -> Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        let mut guard = self
            .dead_letter
            .lock()
            .map_err(|_| EngineError::invalid("dead-letter lock poisoned"))?;
        if guard.is_none() {
            if let Some(dir) = self.dead_letter_path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.dead_letter_path)
                .map_err(|e| EngineError::io(&self.dead_letter_path, e))?;
            *guard = Some(f);
        }
        let f = guard.as_mut().expect("opened above");
        let mut text = String::new();
        for r in rejects {
            text.push_str(&serde_json::to_string(r).unwrap_or_default());
            text.push('\n');
        }
        f.write_all(text.as_bytes())
            .map_err(|e| EngineError::io(&self.dead_letter_path, e))?;
        f.sync_data()
            .map_err(|e| EngineError::io(&self.dead_letter_path, e))?;
        Ok(())
    }

    /// Writes, commits and publishes the batch (see the module doc).
    fn commit(&self, decoder: &mut RowDecoder, batch: &mut Batch) -> Result<()> {
        self.flush_decoder(decoder, batch)?;
        let rejected = batch.rejects.len() as u64;
        let total_rejected = self.rejected_total.load(Ordering::SeqCst) + rejected;
        if let Some(max) = self.opts.max_errors
            && total_rejected > max
        {
            let first = batch
                .rejects
                .first()
                .map(|r| format!(" (first: {} line {}: {})", r.source, r.line, r.reason))
                .unwrap_or_default();
            *batch = Batch::default();
            return Err(EngineError::invalid(format!(
                "more than --max-errors {max} lines rejected ({total_rejected}){first}; this batch was not committed"
            )));
        }
        if batch.advances.is_empty() && batch.slices.is_empty() {
            *batch = Batch::default();
            return Ok(());
        }
        let (staged, partitions, rows) = stage_slices(
            self.catalog,
            &self.layout,
            std::mem::take(&mut batch.slices),
        )?;
        self.write_dead_letters(&batch.rejects)?;
        let change = Change {
            partitions: &partitions,
            advances: &batch.advances,
            ..Default::default()
        };
        let (_, files) = commit(self.catalog, &self.def, &staged, change)?;
        self.rejected_total.fetch_add(rejected, Ordering::SeqCst);
        self.add_summary(|s| {
            s.written += rows;
            s.rejected += rejected;
            s.files += files.len();
            for p in &partitions {
                let spec = p.spec();
                if !s.partitions.contains(&spec) {
                    s.partitions.push(spec);
                }
            }
            s.partitions.sort();
            if rejected > 0 {
                s.dead_letter = Some(self.dead_letter_path.display().to_string());
            }
        });
        *batch = Batch::default();
        Ok(())
    }
}

/// Reads past the first `n` lines; returns their length in bytes.
fn skip_lines(r: &mut dyn BufRead, n: u64, label: &str) -> Result<u64> {
    let mut buf = Vec::new();
    let mut bytes = 0u64;
    for i in 0..n {
        buf.clear();
        let k = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| EngineError::io(label, e))?;
        if k == 0 {
            return Err(EngineError::File {
                path: label.to_string(),
                message: format!(
                    "the file has {i} lines, but {n} lines of this source were already committed (sent over HTTP?): it is not the same source; give it another name"
                ),
            });
        }
        bytes += k as u64;
    }
    Ok(bytes)
}

/// Stages one file per (partition, bucket) of `slices`, in key order; returns the staged files,
/// the partitions they are in and the rows. On an error, what was staged is removed.
pub(crate) fn stage_slices(
    catalog: &Arc<Catalog>,
    layout: &Layout,
    mut slices: HashMap<SliceKey, Vec<RecordBatch>>,
) -> Result<(Vec<Staged>, Vec<PartitionDef>, u64)> {
    let mut staged: Vec<Staged> = Vec::new();
    let mut partitions: Vec<PartitionDef> = Vec::new();
    let mut rows = 0u64;
    let result = (|| -> Result<()> {
        let mut keys: Vec<_> = slices.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let batches = slices.remove(&key).unwrap_or_default();
            let dir = layout.partition_dir(&key.0);
            let token: u64 = rand::random();
            let (file, n) = stage_file(
                catalog,
                layout,
                &dir,
                key.1,
                &batches,
                &format!("{token:016x}"),
            )?;
            rows += n;
            staged.push(file);
            if !key.0.is_empty() && !partitions.iter().any(|p| p.values == key.0) {
                partitions.push(PartitionDef {
                    values: key.0.clone(),
                    location: dir.display().to_string(),
                });
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        discard(catalog, &staged);
        return Err(e);
    }
    Ok((staged, partitions, rows))
}
