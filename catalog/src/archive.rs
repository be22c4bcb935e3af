//! The SQL archive: the SQL that answered each analysis request, kept under the request's
//! issue number. Saving under an existing number adds a version; nothing is overwritten.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::error::{CatalogError, Result};
use crate::store::{Catalog, now};

/// Migration creating the archive.
pub(crate) const MIGRATION: &str = r#"
    CREATE TABLE sql_archive (
        issue        INTEGER NOT NULL,
        version      INTEGER NOT NULL,
        title        TEXT NOT NULL,
        sql          TEXT NOT NULL,
        author       TEXT,
        ticket_id    TEXT,
        created_at   TEXT NOT NULL,
        last_run_at  TEXT,
        last_run     TEXT,
        PRIMARY KEY (issue, version)
    );
"#;

/// One archived version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    pub issue: i64,
    pub version: i64,
    pub title: String,
    pub sql: String,
    pub author: Option<String>,
    pub ticket_id: Option<String>,
    pub created_at: String,
    pub last_run_at: Option<String>,
    /// Summary of the last run (rows, seconds, outcome).
    pub last_run: Option<String>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArchiveEntry> {
    Ok(ArchiveEntry {
        issue: r.get(0)?,
        version: r.get(1)?,
        title: r.get(2)?,
        sql: r.get(3)?,
        author: r.get(4)?,
        ticket_id: r.get(5)?,
        created_at: r.get(6)?,
        last_run_at: r.get(7)?,
        last_run: r.get(8)?,
    })
}

const COLS: &str =
    "issue, version, title, sql, author, ticket_id, created_at, last_run_at, last_run";

impl Catalog {
    /// Saves SQL under an issue number as its next version.
    pub fn archive_save(
        &self,
        issue: i64,
        title: &str,
        sql: &str,
        author: Option<&str>,
        ticket: Option<&str>,
    ) -> Result<ArchiveEntry> {
        if issue <= 0 {
            return Err(CatalogError::invalid("the issue number must be positive"));
        }
        if sql.trim().is_empty() {
            return Err(CatalogError::invalid(
                "nothing to archive: the SQL is empty",
            ));
        }
        let version = self.write(|tx| {
            let v: i64 = tx.prepare_cached("SELECT COALESCE(MAX(version), 0) + 1 FROM sql_archive WHERE issue = ?1")?.query_row([issue],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO sql_archive(issue, version, title, sql, author, ticket_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![issue, v, title, sql, author, ticket, now()],
            )?;
            Ok(v)
        })?;
        self.archive_get(issue, Some(version))?
            .ok_or_else(|| CatalogError::Corrupt("archived entry vanished".into()))
    }

    /// An issue's latest version, or a given one.
    pub fn archive_get(&self, issue: i64, version: Option<i64>) -> Result<Option<ArchiveEntry>> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLS} FROM sql_archive WHERE issue = ?1 AND (?2 IS NULL OR version = ?2) ORDER BY version DESC LIMIT 1"
            ))?;
            let mut rows = stmt.query_map(params![issue, version], row)?;
            Ok(rows.next().transpose()?)
        })
    }

    /// Every version of an issue, oldest first.
    pub fn archive_history(&self, issue: i64) -> Result<Vec<ArchiveEntry>> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLS} FROM sql_archive WHERE issue = ?1 ORDER BY version"
            ))?;
            let rows = stmt.query_map([issue], row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// The latest version of every issue, or of those whose title or SQL contains `text`.
    pub fn archive_list(&self, text: Option<&str>) -> Result<Vec<ArchiveEntry>> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLS} FROM sql_archive a WHERE version = (SELECT MAX(version) FROM sql_archive b WHERE b.issue = a.issue)
                 AND (?1 IS NULL OR instr(lower(title), lower(?1)) > 0 OR instr(lower(sql), lower(?1)) > 0) ORDER BY issue"
            ))?;
            let rows = stmt.query_map([text], row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Records the summary of a run of an archived version.
    pub fn archive_record_run(&self, issue: i64, version: i64, summary: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE sql_archive SET last_run_at = ?3, last_run = ?4 WHERE issue = ?1 AND version = ?2",
                params![issue, version, now(), summary],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_accumulate() {
        let c = Catalog::open_in_memory().unwrap();
        let a = c
            .archive_save(42, "CTR of 날씨", "SELECT 1", Some("kim"), None)
            .unwrap();
        let b = c
            .archive_save(42, "CTR of 날씨 (fixed)", "SELECT 2", Some("kim"), None)
            .unwrap();
        assert_eq!((a.version, b.version), (1, 2));
        assert_eq!(c.archive_get(42, None).unwrap().unwrap().sql, "SELECT 2");
        assert_eq!(c.archive_get(42, Some(1)).unwrap().unwrap().sql, "SELECT 1");
        assert_eq!(c.archive_history(42).unwrap().len(), 2);
        assert_eq!(c.archive_list(Some("날씨")).unwrap().len(), 1);
        assert!(c.archive_list(Some("nothing")).unwrap().is_empty());
        c.archive_record_run(42, 2, "3 rows").unwrap();
        assert_eq!(
            c.archive_get(42, None)
                .unwrap()
                .unwrap()
                .last_run
                .as_deref(),
            Some("3 rows")
        );
        assert!(c.archive_save(0, "x", "SELECT 1", None, None).is_err());
    }
}
