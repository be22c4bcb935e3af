//! The ingest ledger: per (table, sender IP, source name), how many lines and bytes of the source
//! are committed. Ingest resumes after the committed prefix, so re-sent or grown files add only
//! their new lines. A batch's ledger advances are committed with its files in one transaction
//! (see [`crate::commits`]), so a crash at any point neither loses nor duplicates a line.

use rusqlite::params;

use crate::error::Result;
use crate::store::{Catalog, now};

/// Migration creating the ledger.
pub(crate) const MIGRATION: &str = r#"
    CREATE TABLE ingest_sources (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        database    TEXT NOT NULL,
        table_name  TEXT NOT NULL,
        sender_ip   TEXT NOT NULL,
        source      TEXT NOT NULL,
        lines       INTEGER NOT NULL DEFAULT 0,
        bytes       INTEGER NOT NULL DEFAULT 0,
        updated_at  TEXT NOT NULL,
        UNIQUE (database, table_name, sender_ip, source)
    );
    CREATE TABLE ingest_batches (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        database    TEXT NOT NULL,
        table_name  TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE ingest_pending (
        batch_id    INTEGER NOT NULL,
        staged      TEXT NOT NULL,
        final       TEXT NOT NULL,
        PRIMARY KEY (batch_id, staged)
    );
"#;

/// Migration: the fingerprint of each source's first bytes, to tell a file replaced under the
/// same name from one that grew.
pub(crate) const HEAD_MIGRATION: &str = r#"
    ALTER TABLE ingest_sources ADD COLUMN head_len INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE ingest_sources ADD COLUMN head_hash TEXT;
"#;

/// Bytes of a source's beginning its fingerprint covers.
pub const HEAD_BYTES: usize = 4096;

/// The fingerprint of a source's first bytes (SHA-256, hex).
pub fn fingerprint(head: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(head))
}

/// One source's advance within a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAdvance {
    pub source_id: i64,
    pub from_lines: u64,
    pub to_lines: u64,
    pub to_bytes: u64,
    /// The fingerprint of the source's first bytes (length, hash), recorded with the advance.
    pub head: Option<(u64, String)>,
    /// The committed ranges within `[from_lines, to_lines)` the reader skipped (the commit
    /// fails if others were committed meanwhile).
    pub skipped: Vec<(u64, u64)>,
}

/// Committed progress of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProgress {
    /// Stable id of the source (used in file names).
    pub id: i64,
    pub lines: u64,
    /// Byte offset of the end of the committed prefix; `None` when unknown (the prefix grew by
    /// lines that came over the network): a reader then skips `lines` lines from the start.
    pub bytes: Option<u64>,
    /// Fingerprint of its first bytes as committed: `(length, hash)`.
    pub head: Option<(u64, String)>,
    /// Committed line ranges above the prefix (see [`RangeAdvance`]).
    pub ranges: Vec<(u64, u64)>,
}

impl Catalog {
    /// The source's committed progress, registering it (at zero) the first time.
    pub fn ingest_source(
        &self,
        database: &str,
        table: &str,
        sender_ip: &str,
        source: &str,
    ) -> Result<SourceProgress> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO ingest_sources(database, table_name, sender_ip, source, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![database, table, sender_ip, source, now()],
            )?;
            let (id, lines, bytes, head_len, head_hash): (i64, i64, i64, i64, Option<String>) = tx.prepare_cached("SELECT id, lines, bytes, head_len, head_hash FROM ingest_sources
                 WHERE database = ?1 AND table_name = ?2 AND sender_ip = ?3 AND source = ?4")?.query_row(params![database, table, sender_ip, source],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
            Ok(SourceProgress {
                id,
                lines: lines as u64,
                bytes: (bytes >= 0).then_some(bytes as u64),
                head: head_hash.map(|h| (head_len as u64, h)),
                ranges: ranges_tx(tx, id)?,
            })
        })
    }
}

/// Migration: line ranges committed above a source's contiguous prefix (batches of one source
/// that arrive out of order over HTTP), and the ids of documents committed by id (the
/// Elasticsearch bulk endpoint's `_id`). A prefix whose byte offset is unknown (lines that came
/// over the network) has `bytes = -1`.
pub(crate) const RANGES_MIGRATION: &str = r#"
    CREATE TABLE ingest_ranges (
        source_id   INTEGER NOT NULL,
        from_line   INTEGER NOT NULL,
        to_line     INTEGER NOT NULL,
        PRIMARY KEY (source_id, from_line)
    ) WITHOUT ROWID;
    CREATE TABLE ingest_ids (
        database    TEXT NOT NULL,
        table_name  TEXT NOT NULL,
        id          TEXT NOT NULL,
        at          INTEGER NOT NULL,
        PRIMARY KEY (database, table_name, id)
    ) WITHOUT ROWID;
"#;

/// Committed lines `[from, to)` (0-based, half open: lines `from + 1 ..= to`) of one source,
/// added by a batch whatever the source's prefix (see [`Catalog::commit_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeAdvance {
    pub source_id: i64,
    pub ranges: Vec<(u64, u64)>,
}

/// Merges `ranges` into a committed prefix and the ranges above it: overlapping and adjacent
/// ranges coalesce, and ranges reaching the prefix extend it. Returns the new prefix and the
/// disjoint, sorted ranges that remain above it.
pub fn merge_ranges(prefix: u64, ranges: &[(u64, u64)]) -> (u64, Vec<(u64, u64)>) {
    let mut v: Vec<(u64, u64)> = ranges.iter().copied().filter(|(a, b)| a < b).collect();
    v.sort();
    let mut prefix = prefix;
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in v {
        if a <= prefix {
            prefix = prefix.max(b);
            continue;
        }
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    // Ranges that the prefix grew into.
    let mut rest = Vec::new();
    for (a, b) in out {
        if a <= prefix {
            prefix = prefix.max(b);
        } else {
            rest.push((a, b));
        }
    }
    (prefix, rest)
}

/// Whether `[a, b)` meets the committed prefix or any of `ranges`.
pub fn overlaps(prefix: u64, ranges: &[(u64, u64)], a: u64, b: u64) -> bool {
    a < b && (a < prefix || ranges.iter().any(|&(x, y)| a < y && x < b))
}

/// `[a, b)` minus the prefix and `ranges`: the parts not yet committed.
pub fn uncovered(prefix: u64, ranges: &[(u64, u64)], a: u64, b: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = a.max(prefix);
    let mut sorted: Vec<(u64, u64)> = ranges.to_vec();
    sorted.sort();
    for (x, y) in sorted {
        if at >= b {
            break;
        }
        if y <= at {
            continue;
        }
        if x > at {
            out.push((at, x.min(b)));
        }
        at = at.max(y);
    }
    if at < b {
        out.push((at, b));
    }
    out
}

pub(crate) fn ranges_tx(tx: &rusqlite::Transaction<'_>, source_id: i64) -> Result<Vec<(u64, u64)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT from_line, to_line FROM ingest_ranges WHERE source_id = ?1 ORDER BY from_line",
    )?;
    let rows = stmt
        .query_map([source_id], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Stores a source's new prefix and ranges (`bytes` `None`: the prefix's byte offset is unknown).
pub(crate) fn store_progress_tx(
    tx: &rusqlite::Transaction<'_>,
    source_id: i64,
    prefix: u64,
    bytes: Option<u64>,
    ranges: &[(u64, u64)],
) -> Result<()> {
    tx.execute(
        "UPDATE ingest_sources SET lines = ?2, bytes = ?3, updated_at = ?4 WHERE id = ?1",
        params![
            source_id,
            prefix as i64,
            bytes.map(|b| b as i64).unwrap_or(-1),
            now()
        ],
    )?;
    tx.execute(
        "DELETE FROM ingest_ranges WHERE source_id = ?1",
        [source_id],
    )?;
    for (a, b) in ranges {
        tx.execute(
            "INSERT INTO ingest_ranges(source_id, from_line, to_line) VALUES (?1, ?2, ?3)",
            params![source_id, *a as i64, *b as i64],
        )?;
    }
    Ok(())
}

impl Catalog {
    /// The ids among `ids` already committed to the table by the bulk endpoint.
    pub fn known_ids(
        &self,
        database: &str,
        table: &str,
        ids: &[&str],
    ) -> Result<std::collections::HashSet<String>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT 1 FROM ingest_ids WHERE database = ?1 AND table_name = ?2 AND id = ?3",
            )?;
            let mut out = std::collections::HashSet::new();
            for id in ids {
                if stmt.exists(params![database, table, id])? {
                    out.insert(id.to_string());
                }
            }
            Ok(out)
        })
    }

    /// Forgets committed document ids older than `secs` seconds (a shipper's retries come within
    /// minutes; the ids of older documents only grow the catalog). Returns how many went.
    pub fn forget_ids_older_than(&self, secs: i64) -> Result<usize> {
        let before = chrono::Utc::now().timestamp() - secs;
        self.write(|tx| Ok(tx.execute("DELETE FROM ingest_ids WHERE at < ?1", [before])?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_into_the_prefix() {
        assert_eq!(merge_ranges(0, &[(0, 10)]), (10, vec![]));
        assert_eq!(merge_ranges(0, &[(10, 20)]), (0, vec![(10, 20)]));
        assert_eq!(merge_ranges(0, &[(10, 20), (0, 10)]), (20, vec![]));
        assert_eq!(
            merge_ranges(5, &[(30, 40), (10, 20), (20, 25), (2, 7)]),
            (7, vec![(10, 25), (30, 40)])
        );
        assert_eq!(merge_ranges(5, &[(4, 4)]), (5, vec![]));
    }

    #[test]
    fn uncovered_parts() {
        assert_eq!(uncovered(0, &[], 0, 10), vec![(0, 10)]);
        assert_eq!(uncovered(5, &[], 0, 10), vec![(5, 10)]);
        assert_eq!(
            uncovered(0, &[(3, 5), (7, 8)], 0, 10),
            vec![(0, 3), (5, 7), (8, 10)]
        );
        assert_eq!(uncovered(10, &[], 0, 10), vec![]);
        assert_eq!(uncovered(0, &[(0, 20)], 5, 10), vec![]);
        assert!(overlaps(0, &[(3, 5)], 4, 6));
        assert!(!overlaps(0, &[(3, 5)], 5, 6));
        assert!(overlaps(5, &[], 4, 6));
    }
}
