//! The commit journal of table files, the catalog half of the engine's one commit protocol
//! (`engine/src/table/commit.rs`).
//!
//! A commit is one transaction: it records the commit (its id is the table's new
//! *generation*), the staged files to publish under their final names, the files it replaces
//! (as tombstones), new partitions, ingest ledger advances, and for `CREATE TABLE AS SELECT`
//! the table itself. Readers take a [`FilesSnapshot`] (generation, partitions, unpublished
//! files, tombstones) in one read transaction, list the directories, and check that the
//! generation did not move meanwhile; so a query sees a commit entirely or not at all.
//!
//! Replaced files stay on disk as tombstones until [`Catalog::expired_tombstones`] says they
//! are older than the retention, so queries planned before a commit can still read them.
//! (The `ingest_batches` and `ingest_pending` tables date from the ingest ledger's migration.)

use std::collections::HashSet;

use rusqlite::{OptionalExtension, Transaction, params};

use crate::error::{CatalogError, Result};
use crate::ledger::{RangeAdvance, SourceAdvance};
use crate::model::{PartitionDef, TableDef};
use crate::store::{Catalog, bump_version, insert_partition, insert_table, now, table_id};

/// Migration: commits looked up by table, and tombstones of replaced files.
pub(crate) const MIGRATION: &str = r#"
    CREATE INDEX ingest_batches_by_table ON ingest_batches(database, table_name, id);
    CREATE TABLE file_tombstones (
        path        TEXT PRIMARY KEY,
        database    TEXT NOT NULL,
        table_name  TEXT NOT NULL,
        since       INTEGER NOT NULL
    );
    CREATE INDEX file_tombstones_by_table ON file_tombstones(database, table_name);
"#;

/// Migration: the files of tables in object stores, where a commit writes each file once under
/// its final name and this list (not a listing of the bucket) says which files are the table's;
/// the objects writers are putting (intents, so a vacuum never deletes a running write's file);
/// and catalog settings.
pub(crate) const TRACKED_MIGRATION: &str = r#"
    CREATE TABLE table_files (
        database    TEXT NOT NULL,
        table_name  TEXT NOT NULL,
        path        TEXT NOT NULL,
        size        INTEGER NOT NULL,
        batch_id    INTEGER NOT NULL,
        PRIMARY KEY (database, table_name, path)
    );
    CREATE INDEX table_files_by_path ON table_files(path);
    CREATE TABLE object_intents (
        path        TEXT PRIMARY KEY,
        pid         INTEGER NOT NULL,
        since       INTEGER NOT NULL
    );
    CREATE TABLE settings (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL
    );
"#;

/// Migration: the commit that replaced each tombstoned file, so a file is deleted as soon as no
/// running query reads the table as of an earlier commit (the engine's read leases).
pub(crate) const LIFECYCLE_MIGRATION: &str = r#"
    ALTER TABLE file_tombstones ADD COLUMN batch_id INTEGER NOT NULL DEFAULT 0;
"#;

/// A file a commit removed from its table, still on storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub path: String,
    pub database: String,
    pub table: String,
    /// The commit that removed it (0: recorded before commits were kept with tombstones).
    pub batch_id: i64,
    /// When (Unix seconds).
    pub since: i64,
}

/// What one commit changes, besides the files it publishes.
#[derive(Debug, Clone, Copy)]
pub struct FileCommit<'a> {
    pub database: &'a str,
    pub table: &'a str,
    /// Creates the table in the same transaction (`CREATE TABLE AS SELECT`): the table appears
    /// with its rows or not at all.
    pub create: Option<&'a TableDef>,
    /// Fails unless the table's generation is still this one (`INSERT OVERWRITE`: nothing else
    /// was committed to the table since the files it replaces were listed).
    pub expect_generation: Option<i64>,
    pub advances: &'a [SourceAdvance],
    /// Line ranges committed out of order (HTTP intake).
    pub ranges: &'a [RangeAdvance],
    /// Document ids committed (the bulk endpoint's `_id`s); the commit fails if one is known.
    pub ids: &'a [String],
    pub partitions: &'a [PartitionDef],
    /// Files this commit removes from the table (kept on disk as tombstones).
    pub replaced: &'a [String],
    /// The replaced files must still be the table's (a rewrite of files: compaction, DELETE,
    /// expiry): the commit fails if another commit replaced one of them meanwhile, so two
    /// rewrites of the same files never both land.
    pub require_live: bool,
    /// Partitions (specs) this commit removes from the catalog, with their files in `replaced`.
    pub drop_partitions: &'a [String],
    /// Files written under their final names (object stores): `(path, size)`.
    pub added: &'a [(String, u64)],
}

/// What a reader needs to see a table's files as of one commit.
#[derive(Debug, Clone, Default)]
pub struct FilesSnapshot {
    /// Id of the table's last commit (0 before the first).
    pub generation: i64,
    pub partitions: Vec<PartitionDef>,
    /// Committed files not yet renamed to their final names: `(staged, final)`.
    pub unpublished: Vec<(String, String)>,
    /// Files removed by commits but still on disk.
    pub removed: HashSet<String>,
    /// The table's files in object stores, as commits recorded them: `(path, size)`.
    pub tracked: Vec<(String, u64)>,
}

/// A source's prefix, its byte offset (if known) and its ranges.
type Progress = (u64, Option<u64>, Vec<(u64, u64)>);

fn progress_tx(tx: &Transaction<'_>, source_id: i64) -> Result<Progress> {
    let row: Option<(i64, i64)> = tx
        .prepare_cached("SELECT lines, bytes FROM ingest_sources WHERE id = ?1")?
        .query_row([source_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((lines, bytes)) = row else {
        return Err(CatalogError::invalid(format!(
            "ingest source {source_id} is not in the catalog (its table was dropped?)"
        )));
    };
    Ok((
        lines as u64,
        (bytes >= 0).then_some(bytes as u64),
        crate::ledger::ranges_tx(tx, source_id)?,
    ))
}

fn generation_tx(tx: &Transaction<'_>, database: &str, table: &str) -> Result<i64> {
    Ok(tx.prepare_cached("SELECT coalesce(max(id), 0) FROM ingest_batches WHERE database = ?1 AND table_name = ?2")?.query_row(params![database, table],
        |r| r.get(0),
    )?)
}

pub(crate) fn tracked_tx(
    tx: &Transaction<'_>,
    database: &str,
    table: &str,
) -> Result<Vec<(String, u64)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT path, size FROM table_files WHERE database = ?1 AND table_name = ?2 ORDER BY path",
    )?;
    let rows = stmt
        .query_map(params![database, table], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The bits of [`Catalog::object_id`].
pub const OBJECT_ID_MASK: u32 = (1 << 22) - 1;

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Catalog {
    /// Commits files to a table in one transaction (see the module doc). `publish` maps the new
    /// commit id to `(staged path, final path)` pairs. Returns the id and the pairs; the caller
    /// then renames the files and calls [`Catalog::finish_publish`].
    pub fn commit_files(
        &self,
        c: &FileCommit<'_>,
        publish: &dyn Fn(i64) -> Vec<(String, String)>,
    ) -> Result<(i64, Vec<(String, String)>)> {
        self.write(|tx| {
            if let Some(expected) = c.expect_generation {
                let now_at = generation_tx(tx, c.database, c.table)?;
                if now_at != expected {
                    return Err(CatalogError::invalid(format!(
                        "table {}.{} changed while this statement ran (another write committed to \
                         it); nothing was written: run the statement again",
                        c.database, c.table
                    )));
                }
            }
            for a in c.advances {
                let (prefix, bytes, ranges) = progress_tx(tx, a.source_id)?;
                let seen: Vec<(u64, u64)> = ranges
                    .iter()
                    .copied()
                    .filter(|&(x, y)| x < a.to_lines && a.from_lines < y)
                    .collect();
                if prefix != a.from_lines || seen != a.skipped {
                    return Err(CatalogError::invalid(format!(
                        "ingest source {} moved from line {} to {prefix} during this run (another ingest committed lines of it); run the ingest again",
                        a.source_id, a.from_lines
                    )));
                }
                let _ = bytes;
                let (new_prefix, rest) = crate::ledger::merge_ranges(
                    a.to_lines,
                    &ranges,
                );
                let to_bytes = (new_prefix == a.to_lines).then_some(a.to_bytes);
                crate::ledger::store_progress_tx(tx, a.source_id, new_prefix, to_bytes, &rest)?;
                if let Some((len, hash)) = &a.head {
                    tx.execute(
                        "UPDATE ingest_sources SET head_len = ?2, head_hash = ?3 WHERE id = ?1",
                        params![a.source_id, *len as i64, hash],
                    )?;
                }
            }
            for r in c.ranges {
                let (prefix, bytes, ranges) = progress_tx(tx, r.source_id)?;
                if let Some(&(a, b)) = r
                    .ranges
                    .iter()
                    .find(|&&(a, b)| crate::ledger::overlaps(prefix, &ranges, a, b))
                {
                    return Err(CatalogError::invalid(format!(
                        "lines {}..{} of ingest source {} were committed by another writer meanwhile; nothing was written",
                        a + 1,
                        b,
                        r.source_id
                    )));
                }
                let all: Vec<(u64, u64)> = ranges.iter().chain(r.ranges.iter()).copied().collect();
                let (new_prefix, rest) = crate::ledger::merge_ranges(prefix, &all);
                let bytes = if new_prefix == prefix { bytes } else { None };
                crate::ledger::store_progress_tx(tx, r.source_id, new_prefix, bytes, &rest)?;
            }
            if !c.ids.is_empty() {
                let at = unix_now();
                let mut stmt = tx.prepare_cached(
                    "INSERT OR IGNORE INTO ingest_ids(database, table_name, id, at) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for id in c.ids {
                    if stmt.execute(params![c.database, c.table, id, at])? == 0 {
                        return Err(CatalogError::invalid(format!(
                            "document id '{id}' was committed to {}.{} by another writer meanwhile; nothing was written",
                            c.database, c.table
                        )));
                    }
                }
            }
            let table_id = match c.create {
                Some(def) => insert_table(tx, &self.root, def)?,
                None => table_id(tx, c.database, c.table)?,
            };
            tx.execute(
                "INSERT INTO ingest_batches(database, table_name, created_at) VALUES (?1, ?2, ?3)",
                params![c.database, c.table, now()],
            )?;
            let batch_id = tx.last_insert_rowid();
            let files = publish(batch_id);
            for (staged, fin) in &files {
                tx.execute(
                    "INSERT INTO ingest_pending(batch_id, staged, final) VALUES (?1, ?2, ?3)",
                    params![batch_id, self.root.enc(staged), self.root.enc(fin)],
                )?;
            }
            for (path, size) in c.added {
                tx.execute(
                    "INSERT OR REPLACE INTO table_files(path, database, table_name, size, batch_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![path, c.database, c.table, *size as i64, batch_id],
                )?;
                tx.execute("DELETE FROM object_intents WHERE path = ?1", [path])?;
            }
            let since = unix_now();
            for r in c.replaced {
                if c.require_live {
                    let tombstoned: bool = tx
                        .prepare_cached("SELECT count(*) > 0 FROM file_tombstones WHERE path = ?1")?
                        .query_row([self.root.enc(r)], |row| row.get(0))?;
                    let present = if r.contains("://") {
                        tx.prepare_cached(
                            "SELECT count(*) > 0 FROM table_files WHERE database = ?1 AND table_name = ?2 AND path = ?3",
                        )?
                        .query_row(params![c.database, c.table, r], |row| row.get(0))?
                    } else {
                        std::path::Path::new(r).exists()
                    };
                    if tombstoned || !present {
                        return Err(CatalogError::invalid(format!(
                            "file {r} of {}.{} was replaced or removed by another commit while this one ran; nothing was changed: run it again",
                            c.database, c.table
                        )));
                    }
                }
                tx.execute(
                    "INSERT OR REPLACE INTO file_tombstones(path, database, table_name, since, batch_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![self.root.enc(r), c.database, c.table, since, batch_id],
                )?;
                tx.execute(
                    "DELETE FROM table_files WHERE database = ?1 AND table_name = ?2 AND path = ?3",
                    params![c.database, c.table, r],
                )?;
            }
            let mut dropped = 0;
            for spec in c.drop_partitions {
                dropped += tx.execute(
                    "DELETE FROM partitions WHERE table_id = ?1 AND spec = ?2",
                    params![table_id, spec],
                )?;
            }
            let mut added = 0;
            for p in c.partitions {
                added += insert_partition(tx, &self.root, table_id, p)?;
            }
            if added > 0 || dropped > 0 {
                bump_version(tx, table_id)?;
            }
            Ok((batch_id, files))
        })
    }

    /// Staged files of committed batches that are not yet published: `(batch, staged, final)`.
    pub fn pending_publishes(&self) -> Result<Vec<(i64, String, String)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT batch_id, staged, final FROM ingest_pending ORDER BY batch_id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let rows: Vec<(i64, String, String)> = rows.collect::<Result<_, _>>()?;
            Ok(rows
                .into_iter()
                .map(|(b, s, f)| (b, self.root.dec(s), self.root.dec(f)))
                .collect())
        })
    }

    /// Marks a batch's files as published.
    pub fn finish_publish(&self, batch_id: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM ingest_pending WHERE batch_id = ?1", [batch_id])?;
            Ok(())
        })
    }

    /// Id of the table's last commit (0 before the first).
    pub fn table_generation(&self, database: &str, table: &str) -> Result<i64> {
        self.read_tx(|tx| generation_tx(tx, database, table))
    }

    /// The table's generation, partitions, unpublished and removed files, as of one moment.
    pub fn files_snapshot(&self, database: &str, table: &str) -> Result<FilesSnapshot> {
        self.read_tx(|tx| {
            let generation = generation_tx(tx, database, table)?;
            let partitions =
                crate::store::partitions_tx(tx, &self.root, table_id(tx, database, table)?)?;
            let mut stmt = tx.prepare_cached(
                "SELECT p.staged, p.final FROM ingest_pending p
                 JOIN ingest_batches b ON b.id = p.batch_id
                 WHERE b.database = ?1 AND b.table_name = ?2 AND p.final <> ''",
            )?;
            let unpublished = stmt
                .query_map(params![database, table], |r| Ok((r.get(0)?, r.get(1)?)))?
                .map(|r| r.map(|(s, f)| (self.root.dec(s), self.root.dec(f))))
                .collect::<Result<Vec<_>, _>>()?;
            let mut stmt = tx.prepare_cached(
                "SELECT path FROM file_tombstones WHERE database = ?1 AND table_name = ?2",
            )?;
            let removed = stmt
                .query_map(params![database, table], |r| r.get(0))?
                .map(|r| r.map(|p| self.root.dec(p)))
                .collect::<Result<HashSet<String>, _>>()?;
            let tracked = tracked_tx(tx, database, table)?;
            Ok(FilesSnapshot {
                generation,
                partitions,
                unpublished,
                removed,
                tracked,
            })
        })
    }

    /// A setting of this catalog (e.g. `warehouse`, the root of managed tables it was last
    /// opened with).
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT value FROM settings WHERE key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    /// Records a setting.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    /// A random number (22 bits) naming this catalog in the names of the objects its writers
    /// put, so Cuve tells its own uncommitted objects from the files of other writers (other
    /// programs, and other Cuve homes on the same bucket, whose objects it never deletes).
    pub fn object_id(&self) -> Result<u32> {
        if let Some(id) = self.object_id.get() {
            return Ok(*id);
        }
        let fresh = rand::random::<u32>() & OBJECT_ID_MASK;
        let id = self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO settings(key, value) VALUES ('object_id', ?1)",
                [fresh.to_string()],
            )?;
            let v: String = tx
                .prepare_cached("SELECT value FROM settings WHERE key = 'object_id'")?
                .query_row([], |r| r.get(0))?;
            v.parse::<u32>()
                .map(|v| v & OBJECT_ID_MASK)
                .map_err(|_| CatalogError::Corrupt(format!("setting object_id is '{v}'")))
        })?;
        Ok(*self.object_id.get_or_init(|| id))
    }

    /// Records that this process is about to put `path` (see [`Catalog::object_intents`]).
    pub fn add_object_intent(&self, path: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO object_intents(path, pid, since) VALUES (?1, ?2, ?3)",
                params![path, std::process::id() as i64, unix_now()],
            )?;
            Ok(())
        })
    }

    /// Forgets intents (the object was deleted, or its write failed and was cleaned up).
    pub fn forget_object_intents(&self, paths: &[String]) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for p in paths {
                tx.execute("DELETE FROM object_intents WHERE path = ?1", [p])?;
            }
            Ok(())
        })
    }

    /// Objects writers announced and have not committed: path → process id. A commit clears
    /// its files' intents; those of a process that died stay until a vacuum removes the object.
    pub fn object_intents(&self) -> Result<std::collections::HashMap<String, u32>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT path, pid FROM object_intents")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = std::collections::HashMap::new();
            for row in rows {
                let (p, pid) = row?;
                out.insert(p, pid as u32);
            }
            Ok(out)
        })
    }

    /// Whether any table's file list or the tombstones name `path` (asked again just before a
    /// vacuum deletes an object, so a commit that landed meanwhile keeps its file).
    pub fn knows_object_file(&self, path: &str) -> Result<bool> {
        self.read(|c| {
            let n: i64 = c
                .prepare_cached(
                    "SELECT (SELECT count(*) FROM table_files WHERE path = ?1)
                          + (SELECT count(*) FROM file_tombstones WHERE path = ?1)",
                )?
                .query_row([path], |r| r.get(0))?;
            Ok(n > 0)
        })
    }

    /// Forgets a table's recorded files under `prefix` (a dropped partition whose objects were
    /// deleted).
    pub fn forget_files_under(&self, database: &str, table: &str, prefix: &str) -> Result<()> {
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        self.write(|tx| {
            tx.execute(
                "DELETE FROM table_files WHERE database = ?1 AND table_name = ?2
                 AND substr(path, 1, length(?3)) = ?3",
                params![database, table, prefix],
            )?;
            Ok(())
        })
    }

    /// Every file the catalog knows of in object stores: a table's or tombstoned (vacuum keeps
    /// these; tombstones go after their retention).
    pub fn known_object_files(&self) -> Result<HashSet<String>> {
        self.read(|c| {
            let mut out = HashSet::new();
            for sql in [
                "SELECT path FROM table_files",
                "SELECT path FROM file_tombstones",
            ] {
                let mut stmt = c.prepare_cached(sql)?;
                for p in stmt.query_map([], |r| r.get::<_, String>(0))? {
                    out.insert(p?);
                }
            }
            Ok(out)
        })
    }

    /// Every tombstone: files commits removed that are still on storage.
    pub fn tombstones(&self) -> Result<Vec<Tombstone>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT path, database, table_name, batch_id, since FROM file_tombstones ORDER BY path",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Tombstone {
                    path: self.root.dec(r.get(0)?),
                    database: r.get(1)?,
                    table: r.get(2)?,
                    batch_id: r.get(3)?,
                    since: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Whether some table's partition (or table) is at `location`.
    pub fn is_table_location(&self, location: &str) -> Result<bool> {
        let enc = self.root.enc(location);
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT (SELECT count(*) FROM partitions WHERE location = ?1) + (SELECT count(*) FROM tables WHERE location = ?1) > 0",
            )?
            .query_row([enc], |r| r.get(0))?)
        })
    }

    /// Tombstoned files removed at least `retention_secs` ago (safe to delete).
    pub fn expired_tombstones(&self, retention_secs: u64) -> Result<Vec<String>> {
        let before = unix_now().saturating_sub(retention_secs as i64);
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT path FROM file_tombstones WHERE since <= ?1")?;
            let rows = stmt.query_map([before], |r| r.get(0))?;
            Ok(rows
                .map(|r| r.map(|p| self.root.dec(p)))
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Forgets tombstones whose files were deleted.
    pub fn forget_tombstones(&self, paths: &[String]) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for p in paths {
                tx.execute(
                    "DELETE FROM file_tombstones WHERE path = ?1",
                    [self.root.enc(p)],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ColumnDef, DatabaseDef, StorageFormat};

    fn table(name: &str) -> TableDef {
        TableDef {
            database: "d".into(),
            name: name.into(),
            columns: vec![ColumnDef::new("a", "INT")],
            partition_columns: vec![],
            bucket: None,
            format: StorageFormat::Parquet,
            location: format!("/w/d/{name}"),
            external: false,
            comment: None,
            properties: Default::default(),
            created_at: String::new(),
            updated_at: String::new(),
            version: 1,
        }
    }

    #[test]
    fn commits_advance_the_generation_and_record_tombstones() {
        let c = Catalog::open_in_memory().unwrap();
        c.create_database(
            &DatabaseDef {
                name: "d".into(),
                comment: None,
                owner: None,
                created_at: String::new(),
            },
            false,
        )
        .unwrap();
        let def = table("t");
        let commit = FileCommit {
            database: "d",
            table: "t",
            create: Some(&def),
            expect_generation: None,
            advances: &[],
            ranges: &[],
            ids: &[],
            partitions: &[],
            replaced: &[],
            require_live: false,
            drop_partitions: &[],
            added: &[],
        };
        // CREATE TABLE AS SELECT: the table exists only once the commit is in.
        assert!(c.table("d", "t").unwrap().is_none());
        let (id, files) = c
            .commit_files(&commit, &|id| {
                vec![("/w/d/t/.s".into(), format!("/w/d/t/{id}"))]
            })
            .unwrap();
        assert!(c.table("d", "t").unwrap().is_some());
        assert_eq!(c.table_generation("d", "t").unwrap(), id);
        let snap = c.files_snapshot("d", "t").unwrap();
        assert_eq!(snap.unpublished, files);
        c.finish_publish(id).unwrap();
        assert!(c.files_snapshot("d", "t").unwrap().unpublished.is_empty());
        // A second create fails and changes nothing.
        assert!(matches!(
            c.commit_files(&commit, &|_| vec![]),
            Err(CatalogError::TableExists(..))
        ));
        assert_eq!(c.table_generation("d", "t").unwrap(), id);

        // OVERWRITE: compare-and-set on the generation; replaced files become tombstones.
        let replaced = vec![format!("/w/d/t/{id}")];
        let overwrite = FileCommit {
            create: None,
            expect_generation: Some(id - 1),
            replaced: &replaced,
            require_live: false,
            drop_partitions: &[],
            ..commit
        };
        let err = c.commit_files(&overwrite, &|_| vec![]).unwrap_err();
        assert!(err.to_string().contains("run the statement again"), "{err}");
        assert!(c.files_snapshot("d", "t").unwrap().removed.is_empty());
        let (id2, _) = c
            .commit_files(
                &FileCommit {
                    expect_generation: Some(id),
                    ..overwrite
                },
                &|_| vec![],
            )
            .unwrap();
        assert!(id2 > id);
        let snap = c.files_snapshot("d", "t").unwrap();
        assert!(snap.removed.contains(&replaced[0]));
        assert!(c.expired_tombstones(3600).unwrap().is_empty());
        assert_eq!(c.expired_tombstones(0).unwrap(), replaced);
        c.forget_tombstones(&replaced).unwrap();
        assert!(c.files_snapshot("d", "t").unwrap().removed.is_empty());
    }

    #[test]
    fn a_rewrite_of_a_file_another_commit_replaced_changes_nothing() {
        let c = Catalog::open_in_memory().unwrap();
        c.create_database(
            &DatabaseDef {
                name: "d".into(),
                comment: None,
                owner: None,
                created_at: String::new(),
            },
            false,
        )
        .unwrap();
        let def = table("t");
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("000000_0.parquet");
        std::fs::write(&a, b"x").unwrap();
        let base = FileCommit {
            database: "d",
            table: "t",
            create: Some(&def),
            expect_generation: None,
            advances: &[],
            ranges: &[],
            ids: &[],
            partitions: &[],
            replaced: &[],
            require_live: false,
            drop_partitions: &[],
            added: &[],
        };
        c.commit_files(&base, &|_| vec![]).unwrap();
        let replaced = vec![a.display().to_string()];
        let rewrite = FileCommit {
            create: None,
            replaced: &replaced,
            require_live: true,
            ..base
        };
        // Compaction replaces A; a DELETE that read A before then must not commit.
        let (first, _) = c.commit_files(&rewrite, &|_| vec![]).unwrap();
        let err = c.commit_files(&rewrite, &|_| vec![]).unwrap_err();
        assert!(
            err.to_string()
                .contains("was replaced or removed by another commit"),
            "{err}"
        );
        assert_eq!(c.table_generation("d", "t").unwrap(), first);
        // A file that is gone from disk is not live either.
        let b = vec![dir.path().join("000001_0.parquet").display().to_string()];
        let err = c
            .commit_files(
                &FileCommit {
                    replaced: &b,
                    ..rewrite
                },
                &|_| vec![],
            )
            .unwrap_err();
        assert!(err.to_string().contains("run it again"), "{err}");
    }
}
