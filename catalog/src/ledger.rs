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
}

/// Committed progress of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProgress {
    /// Stable id of the source (used in file names).
    pub id: i64,
    pub lines: u64,
    pub bytes: u64,
    /// Fingerprint of its first bytes as committed: `(length, hash)`.
    pub head: Option<(u64, String)>,
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
                bytes: bytes as u64,
                head: head_hash.map(|h| (head_len as u64, h)),
            })
        })
    }
}
