//! The write-ahead log of HTTP intake: acknowledged batches, durable before the answer.
//!
//! Segments `<home>/wal/<seq>.wal` hold records `CUVW | len u32 | crc32 u32 | payload`. One
//! writer thread appends the records of all requests waiting at that moment and syncs once
//! (group commit), then answers each. The flusher seals the current segment (the writer opens
//! the next) and deletes sealed segments once their rows are committed to the table. On start,
//! segments left by a previous process are replayed; a torn record at the end of a segment (a
//! crash during the append, never acknowledged) ends that segment.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::error::{EngineError, Result};

const MAGIC: &[u8; 4] = b"CUVW";
/// A record larger than this is corrupt (bodies are limited far below).
const MAX_RECORD: u32 = 1 << 30;

/// What one acknowledged request adds to one table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub database: String,
    pub table: String,
    pub sender: String,
    /// The source of NDJSON lines (`None` for bulk documents, which carry ids).
    pub source: Option<String>,
    /// Lines of the source this record commits (0-based, half open), rejected ones included.
    #[serde(default)]
    pub ranges: Vec<(u64, u64)>,
    /// Line numbers (1-based) of `lines`, for NDJSON records.
    #[serde(default)]
    pub line_nos: Vec<u64>,
    /// Ids of `lines`, for bulk documents.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Unit of integer log times (`s`, `ms`, `us`, `ns`).
    pub time_unit: String,
    /// The lines (documents) to store.
    #[serde(skip)]
    pub lines: Vec<String>,
}

impl Record {
    /// The record as WAL bytes.
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(self).unwrap_or_default();
        let body_len: usize = self.lines.iter().map(|l| l.len() + 1).sum();
        let mut payload = Vec::with_capacity(4 + header.len() + body_len);
        payload.extend_from_slice(&(header.len() as u32).to_le_bytes());
        payload.extend_from_slice(&header);
        for l in &self.lines {
            payload.extend_from_slice(l.as_bytes());
            payload.push(b'\n');
        }
        let mut out = Vec::with_capacity(12 + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    fn decode(payload: &[u8]) -> std::result::Result<Record, String> {
        if payload.len() < 4 {
            return Err("short payload".into());
        }
        let hl = u32::from_le_bytes(payload[..4].try_into().unwrap_or_default()) as usize;
        let header = payload.get(4..4 + hl).ok_or("short header")?;
        let mut r: Record = serde_json::from_slice(header).map_err(|e| e.to_string())?;
        let body = std::str::from_utf8(&payload[4 + hl..]).map_err(|e| e.to_string())?;
        r.lines = body
            .strip_suffix('\n')
            .map(|b| b.split('\n').map(str::to_string).collect())
            .unwrap_or_default();
        Ok(r)
    }
}

/// Reads the records of one segment, stopping at a torn or corrupt record (with a warning
/// naming the file and offset).
pub fn read_segment(path: &Path) -> Result<Vec<Record>> {
    let f = File::open(path).map_err(|e| EngineError::io(path, e))?;
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    let mut offset = 0u64;
    loop {
        let mut head = [0u8; 12];
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(EngineError::io(path, e)),
        }
        let len = u32::from_le_bytes(head[4..8].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(head[8..12].try_into().unwrap_or_default());
        if &head[..4] != MAGIC || len > MAX_RECORD {
            log::warn!(
                "{}: no record at byte {offset}: the rest of the segment is ignored",
                path.display()
            );
            break;
        }
        let mut payload = vec![0u8; len as usize];
        if r.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
            log::warn!(
                "{}: torn record at byte {offset} (a write never acknowledged): ignored",
                path.display()
            );
            break;
        }
        match Record::decode(&payload) {
            Ok(rec) => out.push(rec),
            Err(e) => {
                log::warn!("{}: bad record at byte {offset}: {e}", path.display());
                break;
            }
        }
        offset += 12 + len as u64;
    }
    Ok(out)
}

enum Op {
    Append(Vec<u8>, oneshot::Sender<Result<()>>),
    Seal(oneshot::Sender<Result<Vec<PathBuf>>>),
}

/// The WAL: a writer thread and the segments it wrote.
pub struct Wal {
    tx: mpsc::Sender<Op>,
    /// Bytes in segments not yet deleted (what is acknowledged but not yet in the table).
    unflushed: Arc<AtomicU64>,
    dir: PathBuf,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// Segments in the directory, oldest first.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))? {
        let p = e.map_err(|e| EngineError::io(dir, e))?.path();
        if let Some(seq) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            v.push((seq, p));
        }
    }
    v.sort();
    Ok(v)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Wal {
    /// Opens the WAL in `dir`: segments already there are sealed (returned, for replay), new
    /// records go to a new segment.
    pub fn open(dir: &Path) -> Result<(Wal, Vec<PathBuf>)> {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        let existing = segments(dir)?;
        let mut seq = existing.last().map(|(s, _)| s + 1).unwrap_or(1);
        let sealed: Vec<PathBuf> = existing.into_iter().map(|(_, p)| p).collect();
        let unflushed = Arc::new(AtomicU64::new(
            sealed
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum(),
        ));
        let owned_dir = dir.to_path_buf();
        let open = move |seq: u64| -> Result<(File, PathBuf)> {
            let dir = owned_dir.as_path();
            let p = segment_path(dir, seq);
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| EngineError::io(&p, e))?;
            sync_dir(dir);
            Ok((f, p))
        };
        let (mut file, mut path) = open(seq)?;
        let (tx, rx) = mpsc::channel::<Op>();
        let counter = unflushed.clone();
        let wal_dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("cuve-wal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut ops = vec![first];
                    while let Ok(op) = rx.try_recv() {
                        ops.push(op);
                    }
                    let mut waiting: Vec<oneshot::Sender<Result<()>>> = Vec::new();
                    let mut buf: Vec<u8> = Vec::new();
                    let mut seals = Vec::new();
                    for op in ops {
                        match op {
                            Op::Append(bytes, reply) => {
                                buf.extend_from_slice(&bytes);
                                waiting.push(reply);
                            }
                            Op::Seal(reply) => seals.push(reply),
                        }
                    }
                    if !waiting.is_empty() {
                        crate::faults::pause_point("wal-append");
                        let written = file.write_all(&buf).and_then(|_| file.sync_data());
                        match written {
                            Ok(()) => {
                                counter.fetch_add(buf.len() as u64, Ordering::SeqCst);
                                for w in waiting {
                                    let _ = w.send(Ok(()));
                                }
                            }
                            Err(e) => {
                                let msg = format!(
                                    "cannot write the write-ahead log {}: {e}",
                                    path.display()
                                );
                                for w in waiting {
                                    let _ = w.send(Err(EngineError::invalid(msg.clone())));
                                }
                                // A failed append may have left a partial record: continue in
                                // a new segment (replay stops at the torn record of this one).
                                seq += 1;
                                if let Ok((f, p)) = open(seq) {
                                    (file, path) = (f, p);
                                }
                            }
                        }
                    }
                    for reply in seals {
                        let before = path.clone();
                        seq += 1;
                        let result = open(seq).map(|(f, p)| {
                            (file, path) = (f, p);
                            segments(&wal_dir)
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(_, p)| p)
                                .filter(|p| *p <= before)
                                .collect()
                        });
                        let _ = reply.send(result);
                    }
                }
            })
            .map_err(|e| EngineError::invalid(format!("cannot start the WAL writer: {e}")))?;
        Ok((
            Wal {
                tx,
                unflushed,
                dir: dir.to_path_buf(),
            },
            sealed,
        ))
    }

    /// Appends a record and waits until it is on disk (synced).
    pub async fn append(&self, bytes: Vec<u8>) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Op::Append(bytes, reply))
            .map_err(|_| EngineError::invalid("the write-ahead log writer stopped"))?;
        rx.await
            .map_err(|_| EngineError::invalid("the write-ahead log writer stopped"))?
    }

    /// Seals the current segment; returns every sealed segment (oldest first).
    pub async fn seal(&self) -> Result<Vec<PathBuf>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Op::Seal(reply))
            .map_err(|_| EngineError::invalid("the write-ahead log writer stopped"))?;
        rx.await
            .map_err(|_| EngineError::invalid("the write-ahead log writer stopped"))?
    }

    /// Deletes sealed segments whose rows are committed.
    pub fn remove(&self, sealed: &[PathBuf]) {
        for p in sealed {
            let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            if std::fs::remove_file(p).is_ok() {
                self.unflushed.fetch_sub(
                    len.min(self.unflushed.load(Ordering::SeqCst)),
                    Ordering::SeqCst,
                );
            }
        }
        sync_dir(&self.dir);
    }

    /// Bytes acknowledged but not yet committed to tables.
    pub fn unflushed_bytes(&self) -> u64 {
        self.unflushed.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: usize) -> Record {
        Record {
            database: "d".into(),
            table: "t".into(),
            sender: "10.0.0.1".into(),
            source: Some("a.log".into()),
            ranges: vec![(0, n as u64)],
            line_nos: (1..=n as u64).collect(),
            ids: vec![],
            time_unit: "ns".into(),
            lines: (0..n)
                .map(|i| format!("{{\"i\":{i},\"s\":\"탭\\t\"}}"))
                .collect(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_survive_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, sealed) = Wal::open(dir.path()).unwrap();
        assert!(sealed.is_empty());
        wal.append(rec(3).encode()).await.unwrap();
        wal.append(rec(0).encode()).await.unwrap();
        let sealed = wal.seal().await.unwrap();
        assert_eq!(sealed.len(), 1);
        let got = read_segment(&sealed[0]).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].lines, rec(3).lines);
        assert_eq!(got[0].ranges, vec![(0, 3)]);
        assert!(got[1].lines.is_empty());
        // A torn record after good ones.
        let mut bytes = rec(2).encode();
        bytes.truncate(bytes.len() - 3);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&sealed[0])
            .unwrap();
        f.write_all(&bytes).unwrap();
        assert_eq!(read_segment(&sealed[0]).unwrap().len(), 2);
        drop(wal);
        let (_wal, again) = Wal::open(dir.path()).unwrap();
        assert_eq!(again.len(), 2, "both segments are sealed on reopen");
    }
}
