//! The SQLite catalog store: one file (`catalog.db`), WAL mode, schema versioned by migrations,
//! every change in one `BEGIN IMMEDIATE` transaction so concurrent CLI processes never corrupt it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::error::{CatalogError, Result};
use crate::model::{BucketSpec, ColumnDef, DatabaseDef, PartitionDef, StorageFormat, TableDef};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: databases, tables, columns, partitions.
    r#"
    CREATE TABLE databases (
        name        TEXT PRIMARY KEY,
        comment     TEXT,
        owner       TEXT,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE tables (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        database    TEXT NOT NULL REFERENCES databases(name),
        name        TEXT NOT NULL,
        format      TEXT NOT NULL,
        location    TEXT NOT NULL,
        external    INTEGER NOT NULL,
        comment     TEXT,
        bucket_spec TEXT,
        properties  TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        version     INTEGER NOT NULL DEFAULT 1,
        UNIQUE (database, name)
    );
    CREATE TABLE columns (
        table_id     INTEGER NOT NULL REFERENCES tables(id) ON DELETE CASCADE,
        position     INTEGER NOT NULL,
        name         TEXT NOT NULL,
        data_type    TEXT NOT NULL,
        comment      TEXT,
        sensitive    INTEGER NOT NULL DEFAULT 0,
        is_partition INTEGER NOT NULL,
        PRIMARY KEY (table_id, is_partition, position)
    );
    CREATE TABLE partitions (
        table_id    INTEGER NOT NULL REFERENCES tables(id) ON DELETE CASCADE,
        spec        TEXT NOT NULL,
        vals        TEXT NOT NULL,
        location    TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (table_id, spec)
    );
    "#,
];

/// Current time as an RFC 3339 string (UTC, seconds).
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The catalog: a handle on the SQLite file. Cheap to share behind an `Arc`.
pub struct Catalog {
    conn: Mutex<Connection>,
    /// Read-only connections for reads, so a write waiting for SQLite's lock (another process
    /// ingesting) never holds up lookups: in WAL mode readers do not wait for writers.
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    /// Where paths inside the warehouse are stored relative to.
    pub(crate) root: Root,
    /// Verified tickets by secret hash, with the ticket epoch they were read at.
    pub(crate) auth_cache: Mutex<std::collections::HashMap<String, (i64, crate::Ticket)>>,
    /// This catalog's object id (see [`Catalog::object_id`]), once read.
    pub(crate) object_id: std::sync::OnceLock<u32>,
    /// The background writer of statement records, once started ([`crate::recorder`]).
    pub(crate) recorder: std::sync::OnceLock<crate::recorder::Recorder>,
}

/// A connection that writes: WAL, a 30 s busy timeout, foreign keys on.
fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL + NORMAL: a crashed or killed process never corrupts or loses a committed
    // transaction; only a power loss may drop the last ones.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// The warehouse root (`<catalog dir>/warehouse`) paths are stored relative to, so a copied
/// home (`cp -r ~/.cuve /backup/cuve`) reads and writes its own files, never the original's.
/// Paths outside it (external tables) are stored as given.
#[derive(Debug, Clone, Default)]
pub(crate) struct Root(Option<PathBuf>);

impl Root {
    /// The stored form of `path`: relative to the root when inside it.
    pub(crate) fn enc(&self, path: &str) -> String {
        if let Some(root) = &self.0
            && let Ok(rel) = Path::new(path).strip_prefix(root)
        {
            return format!("{WAREHOUSE_PREFIX}{}", rel.display());
        }
        path.to_string()
    }

    /// The absolute form of a stored path.
    pub(crate) fn dec(&self, stored: String) -> String {
        match (&self.0, stored.strip_prefix(WAREHOUSE_PREFIX)) {
            (Some(root), Some("")) => root.display().to_string(),
            (Some(root), Some(rel)) => root.join(rel).display().to_string(),
            _ => stored,
        }
    }
}

/// Marks a stored path as relative to the warehouse root.
const WAREHOUSE_PREFIX: &str = "warehouse:";

/// Prepared statements kept per connection (every query the catalog makes fits: statements
/// are parsed once per connection, not on every call).
const STATEMENT_CACHE: usize = 128;

/// Read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 8;

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("path", &self.path).finish()
    }
}

impl Catalog {
    /// Opens (creating if needed) the catalog at `path` and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Catalog> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CatalogError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let conn = open_writer(&path)?;
        let root = path
            .parent()
            .map(|d| d.join("warehouse"))
            .map(|w| w.canonicalize().unwrap_or(w));
        let catalog = Catalog {
            conn: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            path,
            root: Root(root),
            auth_cache: Mutex::default(),
            object_id: Default::default(),
            recorder: Default::default(),
        };
        catalog.migrate()?;
        Ok(catalog)
    }

    /// Another connection that writes, configured as the catalog's own.
    pub(crate) fn open_writer(&self) -> Result<Connection> {
        open_writer(&self.path)
    }

    /// Opens an in-memory catalog (tests).
    pub fn open_in_memory() -> Result<Catalog> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let catalog = Catalog {
            conn: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            path: PathBuf::from(":memory:"),
            root: Root::default(),
            auth_cache: Mutex::default(),
            object_id: Default::default(),
            recorder: Default::default(),
        };
        catalog.migrate()?;
        Ok(catalog)
    }

    /// The warehouse root of this catalog (`<catalog dir>/warehouse`; `None` in memory).
    pub fn warehouse(&self) -> Option<&Path> {
        self.root.0.as_deref()
    }

    /// Path of the catalog file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back on drop), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one immediate (write-locking) transaction, committed if `f` succeeds.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` on a read snapshot (one read transaction on a read-only connection; the
    /// in-memory catalog of tests has only its one connection).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.read_tx(|tx| f(tx))
    }

    /// Runs `f` in a read transaction: a consistent snapshot across several queries.
    pub(crate) fn read_tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        if self.path == Path::new(":memory:") {
            let mut conn = self.lock();
            let tx = conn.transaction()?;
            return f(&tx);
        }
        let mut conn = self.reader()?;
        let out = {
            let tx = conn.transaction()?;
            f(&tx)
        };
        self.give_back(conn);
        out
    }

    /// Runs `f`, one query, on a read connection without an explicit transaction (a single
    /// statement reads one snapshot by itself).
    pub(crate) fn read_one<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.path == Path::new(":memory:") {
            return f(&self.lock());
        }
        let conn = self.reader()?;
        let out = f(&conn);
        self.give_back(conn);
        out
    }

    fn reader(&self) -> Result<Connection> {
        if let Some(c) = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(c);
        }
        let c = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(Duration::from_secs(30))?;
        c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(c)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }

    fn migrate(&self) -> Result<()> {
        self.write(|tx| {
            let version: i64 = tx.prepare_cached("PRAGMA user_version")?.query_row([], |r| r.get(0))?;
            let known = MIGRATIONS.len() as i64 + crate::MIGRATIONS_EXTRA.len() as i64;
            if version > known {
                return Err(CatalogError::Corrupt(format!(
                    "catalog schema version {version} is newer than this cuve understands ({known}); upgrade cuve"
                )));
            }
            let all: Vec<&str> = MIGRATIONS
                .iter()
                .chain(crate::MIGRATIONS_EXTRA.iter())
                .copied()
                .collect();
            for (i, sql) in all.iter().enumerate().skip(version as usize) {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            }
            Ok(())
        })?;
        self.ensure_database("default", Some("Default database"))?;
        self.relativize_paths()?;
        Ok(())
    }

    /// Stores paths inside the warehouse relative to it (catalogs written before paths were
    /// stored that way held absolute ones).
    fn relativize_paths(&self) -> Result<()> {
        let Some(root) = &self.root.0 else {
            return Ok(());
        };
        let prefix = format!("{}/", root.display());
        let cols = [
            ("tables", "location"),
            ("partitions", "location"),
            ("ingest_pending", "staged"),
            ("ingest_pending", "final"),
            ("file_tombstones", "path"),
        ];
        // Read first: opening a catalog with nothing to change takes no write lock.
        let any = self.read(|c| {
            for (table, column) in cols {
                let n: i64 = c.query_row(
                    &format!("SELECT count(*) FROM {table} WHERE substr({column}, 1, ?1) = ?2"),
                    params![prefix.len() as i64, prefix],
                    |r| r.get(0),
                )?;
                if n > 0 {
                    return Ok(true);
                }
            }
            Ok(false)
        })?;
        if !any {
            return Ok(());
        }
        self.write(|tx| {
            for (table, column) in cols {
                tx.execute(
                    &format!(
                        "UPDATE {table} SET {column} = ?1 || substr({column}, ?2)
                         WHERE substr({column}, 1, ?3) = ?4"
                    ),
                    params![
                        WAREHOUSE_PREFIX,
                        prefix.len() as i64 + 1,
                        prefix.len() as i64,
                        prefix
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn ensure_database(&self, name: &str, comment: Option<&str>) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO databases(name, comment, owner, created_at) VALUES (?1, ?2, NULL, ?3)",
                params![name, comment, now()],
            )?;
            Ok(())
        })
    }

    /// Runs SQLite's integrity check and checks that every table record loads.
    pub fn integrity_check(&self) -> Result<()> {
        let report: String = self.read(|c| {
            Ok(c.prepare_cached("PRAGMA integrity_check")?
                .query_row([], |r| r.get(0))?)
        })?;
        if report != "ok" {
            return Err(CatalogError::Corrupt(format!("integrity check: {report}")));
        }
        for db in self.databases()? {
            for t in self.table_names(&db.name)? {
                self.table(&db.name, &t)?.ok_or_else(|| {
                    CatalogError::Corrupt(format!("table {}.{t} listed but not loadable", db.name))
                })?;
                self.partitions(&db.name, &t)?;
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- databases

    /// Creates a database; returns `false` if it existed and `if_not_exists` was set.
    pub fn create_database(&self, def: &DatabaseDef, if_not_exists: bool) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO databases(name, comment, owner, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![def.name, def.comment, def.owner, def.created_at],
            )?;
            if n == 0 && !if_not_exists {
                return Err(CatalogError::DatabaseExists(def.name.clone()));
            }
            Ok(n > 0)
        })
    }

    /// Looks a database up.
    pub fn database(&self, name: &str) -> Result<Option<DatabaseDef>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT name, comment, owner, created_at FROM databases WHERE name = ?1",
            )?
            .query_row([name], |r| {
                Ok(DatabaseDef {
                    name: r.get(0)?,
                    comment: r.get(1)?,
                    owner: r.get(2)?,
                    created_at: r.get(3)?,
                })
            })
            .optional()?)
        })
    }

    /// All databases, by name.
    pub fn databases(&self) -> Result<Vec<DatabaseDef>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, comment, owner, created_at FROM databases ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(DatabaseDef {
                    name: r.get(0)?,
                    comment: r.get(1)?,
                    owner: r.get(2)?,
                    created_at: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Drops a database. Without `cascade` it must be empty; with it, its tables go too and are
    /// returned so the caller can delete managed tables' files. `Ok(None)` when it did not exist.
    pub fn drop_database(&self, name: &str, cascade: bool) -> Result<Option<Vec<TableDef>>> {
        if name == "default" {
            return Err(CatalogError::invalid(
                "the 'default' database cannot be dropped",
            ));
        }
        self.write(|tx| {
            let exists: Option<String> = tx
                .prepare_cached("SELECT name FROM databases WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Ok(None);
            }
            let tables = table_names_tx(tx, name)?;
            if !tables.is_empty() && !cascade {
                return Err(CatalogError::DatabaseNotEmpty(name.to_string()));
            }
            let mut dropped = Vec::new();
            for t in tables {
                if let Some(def) = load_table_tx(tx, &self.root, name, &t)? {
                    dropped.push(def);
                }
            }
            // Managed tables' objects are deleted with them; files of external tables stay
            // known (Cuve-written files in a bucket another table may be defined over again).
            for def in dropped.iter().filter(|d| !d.external) {
                tx.execute(
                    "DELETE FROM table_files WHERE database = ?1 AND table_name = ?2",
                    params![name, def.name],
                )?;
            }
            tx.execute("DELETE FROM tables WHERE database = ?1", [name])?;
            tx.execute("DELETE FROM ingest_ranges WHERE source_id IN (SELECT id FROM ingest_sources WHERE database = ?1)", [name])?;
            tx.execute("DELETE FROM ingest_sources WHERE database = ?1", [name])?;
            tx.execute("DELETE FROM ingest_ids WHERE database = ?1", [name])?;
            tx.execute("DELETE FROM databases WHERE name = ?1", [name])?;
            Ok(Some(dropped))
        })
    }

    // ---------------------------------------------------------------- tables

    /// Registers a table; returns `false` if it existed and `if_not_exists` was set.
    pub fn create_table(&self, def: &TableDef, if_not_exists: bool) -> Result<bool> {
        self.write(|tx| match insert_table(tx, &self.root, def) {
            Ok(_) => Ok(true),
            Err(CatalogError::TableExists(..)) if if_not_exists => Ok(false),
            Err(e) => Err(e),
        })
    }

    /// Looks a table up.
    pub fn table(&self, database: &str, name: &str) -> Result<Option<TableDef>> {
        self.read_tx(|tx| load_table_tx(tx, &self.root, database, name))
    }

    /// Names of the tables of a database.
    pub fn table_names(&self, database: &str) -> Result<Vec<String>> {
        self.read_tx(|tx| table_names_tx(tx, database))
    }

    /// Current version of a table (bumped on every change), `None` if it does not exist.
    pub fn table_version(&self, database: &str, name: &str) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT version FROM tables WHERE database = ?1 AND name = ?2")?
                    .query_row(params![database, name], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    /// Identity and version of a table: `(row id, version)`. The id changes when a table is
    /// dropped and created again, the version on every change.
    pub fn table_stamp(&self, database: &str, name: &str) -> Result<Option<(i64, i64)>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, version FROM tables WHERE database = ?1 AND name = ?2",
            )?
            .query_row(params![database, name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
        })
    }

    /// Removes a table (and its partitions) from the catalog, returning its definition.
    pub fn drop_table(&self, database: &str, name: &str) -> Result<Option<TableDef>> {
        self.write(|tx| {
            let def = load_table_tx(tx, &self.root, database, name)?;
            if def.is_some() {
                tx.execute(
                    "DELETE FROM tables WHERE database = ?1 AND name = ?2",
                    params![database, name],
                )?;
                tx.execute(
                    "DELETE FROM ingest_ranges WHERE source_id IN (SELECT id FROM ingest_sources WHERE database = ?1 AND table_name = ?2)",
                    params![database, name],
                )?;
                tx.execute(
                    "DELETE FROM ingest_sources WHERE database = ?1 AND table_name = ?2",
                    params![database, name],
                )?;
                tx.execute(
                    "DELETE FROM ingest_ids WHERE database = ?1 AND table_name = ?2",
                    params![database, name],
                )?;
                if def.as_ref().is_some_and(|d| !d.external) {
                    tx.execute(
                        "DELETE FROM table_files WHERE database = ?1 AND table_name = ?2",
                        params![database, name],
                    )?;
                }
            }
            Ok(def)
        })
    }

    /// Replaces a table's definition (location, properties, columns, comment) in one transaction.
    /// The closure receives the current definition and edits it in place.
    pub fn alter_table(
        &self,
        database: &str,
        name: &str,
        edit: impl FnOnce(&mut TableDef) -> Result<()>,
    ) -> Result<TableDef> {
        self.write(|tx| {
            let mut def = load_table_tx(tx, &self.root, database, name)?
                .ok_or_else(|| CatalogError::TableNotFound(database.into(), name.into()))?;
            let layout = (def.bucketing_version(), def.bucket.clone());
            edit(&mut def)?;
            // Checks of the files' bucket layout hold only for the layout they were made under:
            // forgotten in the same transaction as the change.
            let relayout = layout != (def.bucketing_version(), def.bucket.clone());
            let id: i64 = tx.prepare_cached("SELECT id FROM tables WHERE database = ?1 AND name = ?2")?.query_row(params![database, name],
                |r| r.get(0),
            )?;
            tx.execute(
                "UPDATE tables SET format = ?2, location = ?3, external = ?4, comment = ?5, bucket_spec = ?6,
                        properties = ?7, updated_at = ?8, version = version + 1 WHERE id = ?1",
                params![
                    id,
                    def.format.as_str(),
                    self.root.enc(&def.location),
                    def.external,
                    def.comment,
                    bucket_json(&def.bucket)?,
                    props_json(&def.properties)?,
                    now(),
                ],
            )?;
            tx.execute("DELETE FROM columns WHERE table_id = ?1", [id])?;
            insert_columns(tx, id, &def)?;
            if relayout {
                tx.execute("DELETE FROM file_checks WHERE table_id = ?1", [id])?;
            }
            load_table_tx(tx, &self.root, database, name)?.ok_or_else(|| {
                CatalogError::Corrupt(format!("table {database}.{name} vanished during ALTER"))
            })
        })
    }

    /// Points a table at another root and replaces its registered partitions, in one
    /// transaction: the next query sees the new data, a running one finishes on the old files.
    pub fn relocate_table(
        &self,
        database: &str,
        name: &str,
        location: &str,
        partitions: &[PartitionDef],
    ) -> Result<()> {
        self.write(|tx| {
            let id = table_id(tx, database, name)?;
            tx.execute(
                "UPDATE tables SET location = ?2, updated_at = ?3, version = version + 1 WHERE id = ?1",
                params![id, self.root.enc(location), now()],
            )?;
            tx.execute("DELETE FROM partitions WHERE table_id = ?1", [id])?;
            for p in partitions {
                insert_partition(tx, &self.root, id, p)?;
            }
            Ok(())
        })
    }

    // ---------------------------------------------------------------- partitions

    /// Registers partitions; existing ones are skipped when `if_not_exists`, an error otherwise.
    /// Returns how many were added. Bumps the table version when any was.
    pub fn add_partitions(
        &self,
        database: &str,
        table: &str,
        parts: &[PartitionDef],
        if_not_exists: bool,
    ) -> Result<usize> {
        self.write(|tx| {
            let id = table_id(tx, database, table)?;
            let mut added = 0;
            for p in parts {
                let n = insert_partition(tx, &self.root, id, p)?;
                if n == 0 && !if_not_exists {
                    return Err(CatalogError::PartitionExists {
                        table: format!("{database}.{table}"),
                        spec: p.spec(),
                    });
                }
                added += n;
            }
            if added > 0 {
                bump_version(tx, id)?;
            }
            Ok(added)
        })
    }

    /// Unregisters a partition, returning it; `Ok(None)` if it was not registered.
    pub fn drop_partition(
        &self,
        database: &str,
        table: &str,
        spec: &str,
    ) -> Result<Option<PartitionDef>> {
        self.write(|tx| {
            let id = table_id(tx, database, table)?;
            let part = load_partition(tx, &self.root, id, spec)?;
            if part.is_some() {
                tx.execute(
                    "DELETE FROM partitions WHERE table_id = ?1 AND spec = ?2",
                    params![id, spec],
                )?;
                bump_version(tx, id)?;
            }
            Ok(part)
        })
    }

    /// Points a registered partition at another directory.
    pub fn set_partition_location(
        &self,
        database: &str,
        table: &str,
        spec: &str,
        location: &str,
    ) -> Result<()> {
        self.write(|tx| {
            let id = table_id(tx, database, table)?;
            let n = tx.execute(
                "UPDATE partitions SET location = ?3 WHERE table_id = ?1 AND spec = ?2",
                params![id, spec, self.root.enc(location)],
            )?;
            if n == 0 {
                return Err(CatalogError::PartitionNotFound {
                    table: format!("{database}.{table}"),
                    spec: spec.to_string(),
                });
            }
            bump_version(tx, id)?;
            Ok(())
        })
    }

    /// Registered partitions of a table, ordered by spec.
    pub fn partitions(&self, database: &str, table: &str) -> Result<Vec<PartitionDef>> {
        self.read_tx(|tx| partitions_tx(tx, &self.root, table_id(tx, database, table)?))
    }
}

/// A table's registered partitions, in spec order.
pub(crate) fn partitions_tx(
    tx: &Transaction<'_>,
    root: &Root,
    id: i64,
) -> Result<Vec<PartitionDef>> {
    let mut stmt = tx.prepare_cached(
        "SELECT vals, location FROM partitions WHERE table_id = ?1 ORDER BY spec",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (vals, location) = row?;
        out.push(PartitionDef {
            values: serde_json::from_str(&vals)
                .map_err(|e| CatalogError::Corrupt(format!("partition values '{vals}': {e}")))?,
            location: root.dec(location),
        });
    }
    Ok(out)
}

/// Inserts a table record (and its columns); returns its row id. Fails when the database does
/// not exist or the table does.
pub(crate) fn insert_table(tx: &Transaction<'_>, root: &Root, def: &TableDef) -> Result<i64> {
    let db: Option<String> = tx
        .prepare_cached("SELECT name FROM databases WHERE name = ?1")?
        .query_row([&def.database], |r| r.get(0))
        .optional()?;
    if db.is_none() {
        return Err(CatalogError::DatabaseNotFound(def.database.clone()));
    }
    if load_table_tx(tx, root, &def.database, &def.name)?.is_some() {
        return Err(CatalogError::TableExists(
            def.database.clone(),
            def.name.clone(),
        ));
    }
    tx.execute(
        "INSERT INTO tables(database, name, format, location, external, comment, bucket_spec, properties, created_at, updated_at, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 1)",
        params![
            def.database,
            def.name,
            def.format.as_str(),
            root.enc(&def.location),
            def.external,
            def.comment,
            bucket_json(&def.bucket)?,
            props_json(&def.properties)?,
            now(),
        ],
    )?;
    let id = tx.last_insert_rowid();
    insert_columns(tx, id, def)?;
    Ok(id)
}

/// Registers one partition; returns 0 when it was already registered.
pub(crate) fn insert_partition(
    tx: &Transaction<'_>,
    root: &Root,
    table_id: i64,
    p: &PartitionDef,
) -> Result<usize> {
    Ok(tx.execute(
        "INSERT OR IGNORE INTO partitions(table_id, spec, vals, location, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            table_id,
            p.spec(),
            serde_json::to_string(&p.values).map_err(|e| CatalogError::Corrupt(e.to_string()))?,
            root.enc(&p.location),
            now()
        ],
    )?)
}

pub(crate) fn bump_version(tx: &Transaction<'_>, id: i64) -> Result<()> {
    tx.execute(
        "UPDATE tables SET version = version + 1, updated_at = ?2 WHERE id = ?1",
        params![id, now()],
    )?;
    Ok(())
}

pub(crate) fn table_id(tx: &Transaction<'_>, database: &str, table: &str) -> Result<i64> {
    tx.prepare_cached("SELECT id FROM tables WHERE database = ?1 AND name = ?2")?
        .query_row(params![database, table], |r| r.get(0))
        .optional()?
        .ok_or_else(|| CatalogError::TableNotFound(database.into(), table.into()))
}

fn load_partition(
    tx: &Transaction<'_>,
    root: &Root,
    id: i64,
    spec: &str,
) -> Result<Option<PartitionDef>> {
    let row: Option<(String, String)> = tx
        .prepare_cached("SELECT vals, location FROM partitions WHERE table_id = ?1 AND spec = ?2")?
        .query_row(params![id, spec], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(vals, location)| {
        Ok(PartitionDef {
            values: serde_json::from_str(&vals)
                .map_err(|e| CatalogError::Corrupt(format!("partition values '{vals}': {e}")))?,
            location: root.dec(location),
        })
    })
    .transpose()
}

fn bucket_json(b: &Option<BucketSpec>) -> Result<Option<String>> {
    b.as_ref()
        .map(|b| serde_json::to_string(b).map_err(|e| CatalogError::Corrupt(e.to_string())))
        .transpose()
}

fn props_json(p: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(p).map_err(|e| CatalogError::Corrupt(e.to_string()))
}

fn insert_columns(tx: &Transaction<'_>, id: i64, def: &TableDef) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO columns(table_id, position, name, data_type, comment, sensitive, is_partition)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (is_partition, cols) in [(false, &def.columns), (true, &def.partition_columns)] {
        for (i, c) in cols.iter().enumerate() {
            stmt.execute(params![
                id,
                i as i64,
                c.name,
                c.data_type,
                c.comment,
                c.sensitive,
                is_partition
            ])?;
        }
    }
    Ok(())
}

fn table_names_tx(tx: &Transaction<'_>, database: &str) -> Result<Vec<String>> {
    let mut stmt =
        tx.prepare_cached("SELECT name FROM tables WHERE database = ?1 ORDER BY name")?;
    let rows = stmt.query_map([database], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<String>, _>>()?)
}

fn load_table_tx(
    tx: &Transaction<'_>,
    root: &Root,
    database: &str,
    name: &str,
) -> Result<Option<TableDef>> {
    type Row = (
        i64,
        String,
        String,
        bool,
        Option<String>,
        Option<String>,
        String,
        String,
        String,
        i64,
    );
    let row: Option<Row> = tx
        .prepare_cached("SELECT id, format, location, external, comment, bucket_spec, properties, created_at, updated_at, version
             FROM tables WHERE database = ?1 AND name = ?2")?
        .query_row(params![database, name],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ))
            },
        )
        .optional()?;
    let Some((id, format, location, external, comment, bucket, props, created, updated, version)) =
        row
    else {
        return Ok(None);
    };
    let mut stmt = tx.prepare_cached(
        "SELECT name, data_type, comment, sensitive, is_partition FROM columns WHERE table_id = ?1
         ORDER BY is_partition, position",
    )?;
    let mut columns = Vec::new();
    let mut partition_columns = Vec::new();
    let rows = stmt.query_map([id], |r| {
        Ok((
            ColumnDef {
                name: r.get(0)?,
                data_type: r.get(1)?,
                comment: r.get(2)?,
                sensitive: r.get(3)?,
            },
            r.get::<_, bool>(4)?,
        ))
    })?;
    for row in rows {
        let (c, is_partition) = row?;
        if is_partition {
            partition_columns.push(c)
        } else {
            columns.push(c)
        }
    }
    let corrupt = |what: &str, e: serde_json::Error| {
        CatalogError::Corrupt(format!("{what} of table {database}.{name}: {e}"))
    };
    let mut def = TableDef {
        database: database.to_string(),
        name: name.to_string(),
        columns,
        partition_columns,
        bucket: bucket
            .map(|b| serde_json::from_str(&b).map_err(|e| corrupt("bucket spec", e)))
            .transpose()?,
        format: StorageFormat::parse(&format)?,
        location: root.dec(location),
        external,
        comment,
        properties: serde_json::from_str(&props).map_err(|e| corrupt("properties", e))?,
        created_at: created,
        updated_at: updated,
        version,
    };
    def.derive_sensitive();
    Ok(Some(def))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write waiting for SQLite's lock (held here by another connection, as an ingest in
    /// another process holds it) must not hold up reads.
    #[test]
    fn reads_do_not_wait_behind_a_blocked_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let c = std::sync::Arc::new(Catalog::open(&path).unwrap());
        c.create_database(&db("d"), false).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || c.create_database(&db("e"), false))
        };
        std::thread::sleep(Duration::from_millis(200)); // the write is now waiting
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let c = c.clone();
            std::thread::spawn(move || {
                let _ = tx.send(c.database("d").map(|d| d.is_some()));
            })
        };
        let read = rx.recv_timeout(Duration::from_secs(10));
        other.execute_batch("COMMIT").unwrap();
        assert!(
            matches!(read, Ok(Ok(true))),
            "read waited behind the write: {read:?}"
        );
        reader.join().unwrap();
        assert!(
            writer.join().unwrap().unwrap(),
            "the write went through afterwards"
        );
    }

    fn table(db: &str, name: &str) -> TableDef {
        TableDef {
            database: db.into(),
            name: name.into(),
            columns: vec![
                ColumnDef::new("user_id", "STRING"),
                ColumnDef::new("n", "BIGINT"),
            ],
            partition_columns: vec![ColumnDef::new("dt", "STRING")],
            bucket: Some(BucketSpec {
                columns: vec!["user_id".into()],
                sorted_by: vec!["user_id".into()],
                num_buckets: 4,
            }),
            format: StorageFormat::Parquet,
            location: format!("/w/{db}/{name}"),
            external: false,
            comment: Some("c".into()),
            properties: BTreeMap::from([("k".to_string(), "v".to_string())]),
            created_at: now(),
            updated_at: now(),
            version: 1,
        }
    }

    fn db(name: &str) -> DatabaseDef {
        DatabaseDef {
            name: name.into(),
            comment: None,
            owner: None,
            created_at: now(),
        }
    }

    #[test]
    fn round_trips_tables_and_partitions() {
        let c = Catalog::open_in_memory().unwrap();
        assert!(c.create_database(&db("korea"), false).unwrap());
        assert!(!c.create_database(&db("korea"), true).unwrap());
        assert!(matches!(
            c.create_database(&db("korea"), false),
            Err(CatalogError::DatabaseExists(_))
        ));
        let t = table("korea", "stream_log");
        assert!(c.create_table(&t, false).unwrap());
        let back = c.table("korea", "stream_log").unwrap().unwrap();
        assert_eq!(back.columns, t.columns);
        assert_eq!(back.bucket, t.bucket);
        assert_eq!(back.properties, t.properties);
        let p = PartitionDef {
            values: vec![("dt".into(), "2019-10-01".into())],
            location: "/w/korea/stream_log/dt=2019-10-01".into(),
        };
        assert_eq!(
            c.add_partitions("korea", "stream_log", std::slice::from_ref(&p), false)
                .unwrap(),
            1
        );
        assert_eq!(
            c.add_partitions("korea", "stream_log", std::slice::from_ref(&p), true)
                .unwrap(),
            0
        );
        assert!(
            c.add_partitions("korea", "stream_log", std::slice::from_ref(&p), false)
                .is_err()
        );
        assert_eq!(c.partitions("korea", "stream_log").unwrap(), vec![p]);
        assert!(matches!(
            c.drop_database("korea", false),
            Err(CatalogError::DatabaseNotEmpty(_))
        ));
        let dropped = c.drop_database("korea", true).unwrap().unwrap();
        assert_eq!(dropped.len(), 1);
        assert!(c.table("korea", "stream_log").unwrap().is_none());
    }

    #[test]
    fn alter_bumps_version_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        {
            let c = Catalog::open(&path).unwrap();
            c.create_database(&db("d"), false).unwrap();
            c.create_table(&table("d", "t"), false).unwrap();
            let t = c
                .alter_table("d", "t", |t| {
                    t.location = "/elsewhere".into();
                    Ok(())
                })
                .unwrap();
            assert_eq!(t.version, 2);
        }
        let c = Catalog::open(&path).unwrap();
        let t = c.table("d", "t").unwrap().unwrap();
        assert_eq!(t.location, "/elsewhere");
        assert_eq!(c.table_version("d", "t").unwrap(), Some(2));
    }
}
