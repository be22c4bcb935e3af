//! What Cuve verified of a foreign table's files: whether each file's rows are in the bucket its
//! name says, under the table's declared hash, and sorted by the declared key. Bucket pruning and
//! co-located plans trust an external table's layout only for files recorded here unchanged.

use std::collections::HashMap;

use rusqlite::params;

use crate::error::Result;
use crate::store::{Catalog, table_id};

/// Migration creating the file checks.
pub(crate) const MIGRATION: &str = r#"
    CREATE TABLE file_checks (
        table_id    INTEGER NOT NULL REFERENCES tables(id) ON DELETE CASCADE,
        path        TEXT NOT NULL,
        size        INTEGER NOT NULL,
        mtime_ns    INTEGER NOT NULL,
        buckets_ok  INTEGER NOT NULL,
        sorted_ok   INTEGER NOT NULL,
        checked_at  TEXT NOT NULL,
        PRIMARY KEY (table_id, path)
    );
"#;

/// The result of checking one data file, valid while its size and modification time hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    /// Every sampled row is in the bucket the file name says.
    pub buckets_ok: bool,
    /// The sampled rows are sorted by the table's sort key.
    pub sorted_ok: bool,
}

impl Catalog {
    /// Records checks of a table's files (replacing earlier checks of the same paths).
    pub fn record_file_checks(
        &self,
        database: &str,
        table: &str,
        checks: &[FileCheck],
    ) -> Result<()> {
        self.write(|tx| {
            let id = table_id(tx, database, table)?;
            let now = crate::store::now();
            for c in checks {
                tx.execute(
                    "INSERT OR REPLACE INTO file_checks(table_id, path, size, mtime_ns, buckets_ok, sorted_ok, checked_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![id, c.path, c.size as i64, c.mtime_ns, c.buckets_ok, c.sorted_ok, now],
                )?;
            }
            Ok(())
        })
    }

    /// Forgets every check of a table (its declared layout changed).
    pub fn clear_file_checks(&self, database: &str, table: &str) -> Result<()> {
        self.write(|tx| {
            let id = table_id(tx, database, table)?;
            tx.execute("DELETE FROM file_checks WHERE table_id = ?1", [id])?;
            Ok(())
        })
    }

    /// The recorded checks of a table's files, by path.
    pub fn file_checks(&self, database: &str, table: &str) -> Result<HashMap<String, FileCheck>> {
        self.read(|conn| {
            let id: Option<i64> = conn
                .prepare_cached("SELECT id FROM tables WHERE database = ?1 AND name = ?2")?
                .query_row(params![database, table],
                    |r| r.get(0),
                )
                .ok();
            let Some(id) = id else {
                return Ok(HashMap::new());
            };
            let mut stmt = conn.prepare_cached("SELECT path, size, mtime_ns, buckets_ok, sorted_ok FROM file_checks WHERE table_id = ?1",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok(FileCheck {
                    path: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    mtime_ns: r.get(2)?,
                    buckets_ok: r.get(3)?,
                    sorted_ok: r.get(4)?,
                })
            })?;
            let mut out = HashMap::new();
            for row in rows {
                let c = row?;
                out.insert(c.path.clone(), c);
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ColumnDef, StorageFormat, TableDef};

    #[test]
    fn records_replaces_and_clears_checks() {
        let c = Catalog::open_in_memory().unwrap();
        let def = TableDef {
            database: "default".into(),
            name: "t".into(),
            columns: vec![ColumnDef::new("a", "STRING")],
            partition_columns: vec![],
            bucket: None,
            format: StorageFormat::Parquet,
            location: "/tmp/t".into(),
            external: true,
            comment: None,
            properties: Default::default(),
            created_at: String::new(),
            updated_at: String::new(),
            version: 1,
        };
        c.create_table(&def, false).unwrap();
        let check = |ok| FileCheck {
            path: "/tmp/t/000001_0".into(),
            size: 10,
            mtime_ns: 5,
            buckets_ok: ok,
            sorted_ok: true,
        };
        c.record_file_checks("default", "t", &[check(false)])
            .unwrap();
        c.record_file_checks("default", "t", &[check(true)])
            .unwrap();
        let got = c.file_checks("default", "t").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got["/tmp/t/000001_0"], check(true));
        c.clear_file_checks("default", "t").unwrap();
        assert!(c.file_checks("default", "t").unwrap().is_empty());
        assert!(c.file_checks("default", "nope").unwrap().is_empty());
    }
}
