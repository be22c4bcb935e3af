//! The ingest ledger: per (table, sender IP, source name), how many lines and bytes of the source
//! are committed. Ingest resumes after the committed prefix, so re-sent or grown files add only
//! their new lines. A batch's ledger advances, new partitions and the list of staged files to
//! publish are committed in one transaction; publishing (renames) is rolled forward by whoever
//! finds it pending, so a crash at any point neither loses nor duplicates a line.

use rusqlite::{OptionalExtension, params};

use crate::error::{CatalogError, Result};
use crate::model::PartitionDef;
use crate::store::{Catalog, bump_version, insert_partition, now};

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

/// One source's advance within a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAdvance {
    pub source_id: i64,
    pub from_lines: u64,
    pub to_lines: u64,
    pub to_bytes: u64,
}

/// Committed progress of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProgress {
    /// Stable id of the source (used in file names).
    pub id: i64,
    pub lines: u64,
    pub bytes: u64,
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
            let (id, lines, bytes): (i64, i64, i64) = tx.query_row(
                "SELECT id, lines, bytes FROM ingest_sources
                 WHERE database = ?1 AND table_name = ?2 AND sender_ip = ?3 AND source = ?4",
                params![database, table, sender_ip, source],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            Ok(SourceProgress {
                id,
                lines: lines as u64,
                bytes: bytes as u64,
            })
        })
    }

    /// Commits one ingest batch atomically: advances every source (compare-and-set on its
    /// committed line count), registers the partitions written, and records the staged files to
    /// publish. `publish` maps the new batch id to `(staged path, final path)` pairs. Returns the
    /// batch id; the caller then renames the files and calls [`Catalog::finish_publish`].
    pub fn commit_ingest_batch(
        &self,
        database: &str,
        table: &str,
        advances: &[SourceAdvance],
        partitions: &[PartitionDef],
        publish: &dyn Fn(i64) -> Vec<(String, String)>,
    ) -> Result<(i64, Vec<(String, String)>)> {
        self.write(|tx| {
            for a in advances {
                let current: Option<i64> = tx
                    .query_row("SELECT lines FROM ingest_sources WHERE id = ?1", [a.source_id], |r| r.get(0))
                    .optional()?;
                if current != Some(a.from_lines as i64) {
                    return Err(CatalogError::invalid(format!(
                        "ingest source {} moved from line {} to {current:?} during this run; run the ingest again",
                        a.source_id, a.from_lines
                    )));
                }
                tx.execute(
                    "UPDATE ingest_sources SET lines = ?2, bytes = ?3, updated_at = ?4 WHERE id = ?1",
                    params![a.source_id, a.to_lines as i64, a.to_bytes as i64, now()],
                )?;
            }
            tx.execute(
                "INSERT INTO ingest_batches(database, table_name, created_at) VALUES (?1, ?2, ?3)",
                params![database, table, now()],
            )?;
            let batch_id = tx.last_insert_rowid();
            let files = publish(batch_id);
            for (staged, fin) in &files {
                tx.execute(
                    "INSERT INTO ingest_pending(batch_id, staged, final) VALUES (?1, ?2, ?3)",
                    params![batch_id, staged, fin],
                )?;
            }
            let table_id: i64 = tx.query_row(
                "SELECT id FROM tables WHERE database = ?1 AND name = ?2",
                params![database, table],
                |r| r.get(0),
            )?;
            let mut added = 0;
            for p in partitions {
                added += insert_partition(tx, table_id, p)?;
            }
            if added > 0 {
                bump_version(tx, table_id)?;
            }
            Ok((batch_id, files))
        })
    }

    /// Staged files of committed batches that are not yet published: `(batch, staged, final)`.
    pub fn pending_publishes(&self) -> Result<Vec<(i64, String, String)>> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT batch_id, staged, final FROM ingest_pending ORDER BY batch_id")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Marks a batch's files as published.
    pub fn finish_publish(&self, batch_id: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM ingest_pending WHERE batch_id = ?1", [batch_id])?;
            Ok(())
        })
    }
}
