//! The one commit protocol for files of a table (ingest, INSERT, INSERT OVERWRITE, CTAS):
//!
//! 1. **Stage**: write every new file completely under a hidden, unique name in its directory.
//! 2. **Commit**: one catalog transaction records the new partitions and the journal of the
//!    commit: each staged file with its final name, and each file it replaces. Before this
//!    transaction nothing happened (staged files of a dead process are removed as orphans);
//!    after it, the commit *will* happen.
//! 3. **Publish**: rename staged files to their final names, sync the directories, then clear
//!    the journal. Whoever finds a journal left by a crashed process (every
//!    [`crate::Engine::open`], every ingest) finishes publishing it.
//!
//! Readers see a commit entirely or not at all: a scan takes the table's snapshot (generation,
//! partitions, unpublished files, tombstones), finishes any unpublished renames itself, lists
//! the directories, drops tombstoned files, and starts again if the generation moved meanwhile
//! (`table::provider`). Files a commit replaces are only tombstoned: [`vacuum`] (after each
//! commit, and when a query ends) deletes them once no running query reads the table as of an
//! earlier commit (read leases, `table::leases`), so queries planned before the commit still
//! read them.
//!
//! Final names are unique by construction (`<bucket>_<n>` with `n` from the commit's id), so
//! concurrent writers never collide and a publish can always be redone.
//!
//! **In an object store** (S3) there is no rename (it would be a copy and a delete, not atomic):
//! each file is written once under its final name (`<bucket>_<n>` with a random `n` from 2^41,
//! created with `If-None-Match: *`), and the commit's transaction, which records the files in
//! the catalog's file list, is the commit point. Readers of a managed table take its files from
//! that list, never from a listing of the bucket; listings (external tables, where other
//! programs write) leave out files of Cuve's naming the catalog does not know. So an object of
//! a writer that died before its commit is never read; `cuve warehouse vacuum` deletes it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cuve_catalog::{
    Catalog, FileCommit, FilesSnapshot, PartitionDef, RangeAdvance, SourceAdvance, TableDef,
};
use datafusion::arrow::record_batch::RecordBatch;

use super::layout::{DataFile, list_data_files};
use super::writer::{Layout, staging_name};
use crate::error::{EngineError, Result};
use crate::storage::ObjectLocation;

/// A file staged for a commit: its hidden path (in an object store: its final URL), its
/// directory and bucket.
#[derive(Debug, Clone)]
pub struct Staged {
    pub tmp: PathBuf,
    pub dir: PathBuf,
    pub bucket: u32,
    /// Written under its final name in an object store, with this size: nothing to publish.
    pub object: Option<u64>,
}

/// File numbers of the objects this catalog's writers put: 2^62, the catalog's object id
/// (22 bits, [`Catalog::object_id`]) from bit 40, and 40 random bits. Local commits number their
/// files from 2^40 (never near 2^62), other programs with small numbers or timestamps.
pub fn object_number(object_id: u32) -> u64 {
    (1u64 << 62) | (u64::from(object_id) << 40) | (rand::random::<u64>() >> 24)
}

/// Whether `name` is `<bucket>_<n>.parquet` with `n` an object number of the catalog with
/// `object_id`: a file one of its writers put (committed or not).
pub fn is_ours(name: &str, object_id: u32) -> bool {
    let Some(stem) = name.strip_suffix(".parquet") else {
        return false;
    };
    let Some((bucket, n)) = stem.split_once('_') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(bucket)
        && digits(n)
        && n.parse::<u64>().is_ok_and(|n| {
            n >> 62 == 1 && ((n >> 40) as u32 & cuve_catalog::OBJECT_ID_MASK) == object_id
        })
}

/// Writes one file of `batches` for bucket `bucket` of directory `dir`: on local disk under a
/// hidden staging name (renamed when published), in an object store once under its final
/// name, announced in the catalog first (so no vacuum deletes it while it is being committed).
/// Returns it and its row count.
pub fn stage_file(
    catalog: &Catalog,
    layout: &Layout,
    dir: &Path,
    bucket: u32,
    batches: &[RecordBatch],
    tag: &str,
) -> Result<(Staged, u64)> {
    let dir_text = dir.display().to_string();
    if let Some(loc) = ObjectLocation::parse(&dir_text)? {
        let (bytes, rows) = layout.encode(batches)?;
        let size = bytes.len() as u64;
        let id = catalog.object_id()?;
        let name = || super::bucket::bucket_file_name(bucket, object_number(id), "parquet");
        let announce = |url: &str| Ok(crate::exec::blocking(|| catalog.add_object_intent(url))?);
        let url = crate::storage::objects::put_new(&loc, name, announce, bytes)?;
        crate::faults::crash_point("after-object-put");
        crate::faults::pause_point("after-object-put");
        let staged = Staged {
            tmp: PathBuf::from(url),
            dir: dir.to_path_buf(),
            bucket,
            object: Some(size),
        };
        return Ok((staged, rows));
    }
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    let tmp = dir.join(staging_name(tag));
    let rows = layout.write_file(&tmp, batches)?;
    let staged = Staged {
        tmp,
        dir: dir.to_path_buf(),
        bucket,
        object: None,
    };
    Ok((staged, rows))
}

/// Removes staged files of a write that will not commit (best effort).
pub fn discard(catalog: &Catalog, staged: &[Staged]) {
    let mut gone = Vec::new();
    for s in staged {
        if s.object.is_some() {
            let url = s.tmp.display().to_string();
            match crate::storage::objects::delete(&url) {
                Ok(()) => gone.push(url),
                Err(e) => log::warn!("removing an uncommitted object: {e}"),
            }
        } else {
            let _ = std::fs::remove_file(&s.tmp);
        }
    }
    if let Err(e) = catalog.forget_object_intents(&gone) {
        log::warn!("forgetting removed objects: {e}");
    }
}

/// The table's files in `dir` as of `snapshot`: on local disk the directory's data files; in
/// an object store the files the catalog recorded there and, with `list`, what other writers
/// put there (a listing without the uncommitted objects of this catalog, `object_id`). Files
/// removed by a commit are left out. A missing local directory has no files.
pub fn committed_files(
    snapshot: &FilesSnapshot,
    dir: &Path,
    object_id: u32,
    list: bool,
) -> Result<Vec<DataFile>> {
    let dir_text = dir.display().to_string();
    let Some(loc) = ObjectLocation::parse(&dir_text)? else {
        if !dir.exists() {
            return Ok(vec![]);
        }
        let mut files = list_data_files(dir)?;
        files.retain(|f| !snapshot.removed.contains(f.path.to_str().unwrap_or("")));
        return Ok(files);
    };
    let prefix = format!("{}/", loc.display());
    let tracked = snapshot.tracked.iter().filter(|(p, _)| {
        p.strip_prefix(&prefix)
            .is_some_and(|rest| !rest.contains('/'))
    });
    let mut files: Vec<DataFile> = tracked
        .map(|(p, size)| DataFile {
            path: PathBuf::from(p),
            size: *size,
            modified: None,
            bucket: p
                .rsplit('/')
                .next()
                .and_then(super::bucket::bucket_of_file_name),
        })
        .collect();
    if list {
        let known: std::collections::HashSet<&str> =
            snapshot.tracked.iter().map(|(p, _)| p.as_str()).collect();
        for f in crate::storage::objects::list_files(&loc)? {
            if known.contains(f.url.as_str())
                || snapshot.removed.contains(&f.url)
                || is_ours(&f.name, object_id)
            {
                continue;
            }
            files.push(DataFile {
                bucket: super::bucket::bucket_of_file_name(&f.name),
                path: PathBuf::from(f.url),
                size: f.size,
                modified: Some(f.modified),
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    Ok(files)
}

/// Makes the files other writers put in `dirs` (object stores) files of managed table `def`:
/// a managed table there reads only what the catalog lists, so `SET LOCATION`, `ADD PARTITION
/// ... LOCATION` and `MSCK REPAIR TABLE` record what they find, in one commit (before they
/// point the table there, so a crash in between leaves the table as it was). Returns how many.
pub fn adopt(catalog: &Catalog, def: &TableDef, dirs: &[PathBuf]) -> Result<usize> {
    if def.external {
        return Ok(0);
    }
    let snapshot = catalog.files_snapshot(&def.database, &def.name)?;
    let known: std::collections::HashSet<&str> =
        snapshot.tracked.iter().map(|(p, _)| p.as_str()).collect();
    let id = catalog.object_id()?;
    let mut added: Vec<(String, u64)> = Vec::new();
    for dir in dirs {
        let Some(loc) = ObjectLocation::parse(&dir.display().to_string())? else {
            continue;
        };
        for f in crate::storage::objects::list_files(&loc)? {
            if !known.contains(f.url.as_str())
                && !snapshot.removed.contains(&f.url)
                && !is_ours(&f.name, id)
            {
                added.push((f.url, f.size));
            }
        }
    }
    if added.is_empty() {
        return Ok(0);
    }
    let spec = FileCommit {
        database: &def.database,
        table: &def.name,
        create: None,
        expect_generation: None,
        advances: &[],
        ranges: &[],
        ids: &[],
        partitions: &[],
        replaced: &[],
        require_live: false,
        drop_partitions: &[],
        added: &added,
    };
    let (id, _) = crate::exec::blocking(|| catalog.commit_files(&spec, &|_| vec![]))?;
    crate::exec::blocking(|| catalog.finish_publish(id))?;
    Ok(added.len())
}

/// The file number of the `k`-th file of commit `id` (from 2^40 up: never a number a
/// writer of Hive's `<bucket>_<n>` names picks).
pub fn file_number(id: i64, k: usize) -> u64 {
    (1u64 << 40) + ((id as u64) << 20) + k as u64
}

/// Refuses to write a managed table whose files are in *another* Cuve home's warehouse: its
/// catalog was copied from that home (by an older Cuve, which stored paths absolute), and
/// writing would change the other home's table. (A managed table placed elsewhere with
/// `LOCATION` is written as usual.)
pub fn check_owned(catalog: &Catalog, def: &TableDef) -> Result<()> {
    if def.external {
        return Ok(());
    }
    let Some(root) = catalog.warehouse() else {
        return Ok(());
    };
    if crate::storage::is_object(&def.location) {
        return Ok(());
    }
    let location = Path::new(&def.location);
    if location.starts_with(root) {
        return Ok(());
    }
    let other = location.ancestors().find(|a| {
        a.file_name().is_some_and(|n| n == "warehouse")
            && a.parent()
                .is_some_and(|home| home.join("catalog.db").is_file())
    });
    match other {
        Some(other) => Err(EngineError::invalid(format!(
            "managed table {} keeps its files at {}, in another Cuve home's warehouse ({}), \
             not this one ({}): the catalog was copied from that home; nothing was written. \
             Copy the files into this warehouse and ALTER TABLE ... SET LOCATION, or make the \
             table EXTERNAL",
            def.qualified_name(),
            def.location,
            other.display(),
            root.display()
        ))),
        None => Ok(()),
    }
}

/// What a commit changes besides adding its staged files.
#[derive(Debug, Default, Clone, Copy)]
pub struct Change<'a> {
    /// Files it removes from the table (they stay on disk for [`retention_secs`]).
    pub replaced: &'a [PathBuf],
    pub partitions: &'a [PartitionDef],
    pub advances: &'a [SourceAdvance],
    /// Line ranges committed out of order and document ids (HTTP intake).
    pub ranges: &'a [RangeAdvance],
    pub ids: &'a [String],
    /// Creates the table in the commit (`CREATE TABLE AS SELECT`).
    pub create: bool,
    /// The replaced files must still be the table's (rewrites: compaction, DELETE, expiry).
    pub require_live: bool,
    /// Partitions (specs) the commit removes, their files in `replaced` (retention).
    pub drop_partitions: &'a [String],
    /// The table's generation the statement started from (`INSERT OVERWRITE`): the commit
    /// fails if anything else was committed since.
    pub expect_generation: Option<i64>,
}

/// Commits `staged` files and `change` to `def` in one catalog transaction, then publishes.
/// Returns the commit id and the final paths of the new files. On an error before the commit,
/// staged files are removed and nothing changed.
pub fn commit(
    catalog: &Catalog,
    def: &TableDef,
    staged: &[Staged],
    change: Change<'_>,
) -> Result<(i64, Vec<PathBuf>)> {
    if let Err(e) = check_owned(catalog, def) {
        discard(catalog, staged);
        return Err(e);
    }
    let added: Vec<(String, u64)> = staged
        .iter()
        .filter_map(|s| s.object.map(|size| (s.tmp.display().to_string(), size)))
        .collect();
    let names = |id: i64| -> Vec<(String, String)> {
        staged
            .iter()
            .enumerate()
            .filter(|(_, s)| s.object.is_none())
            .map(|(k, s)| {
                (
                    s.tmp.display().to_string(),
                    s.dir
                        .join(super::bucket::bucket_file_name(
                            s.bucket,
                            file_number(id, k),
                            "parquet",
                        ))
                        .display()
                        .to_string(),
                )
            })
            .collect()
    };
    let replaced: Vec<String> = change
        .replaced
        .iter()
        .map(|r| r.display().to_string())
        .collect();
    let spec = FileCommit {
        database: &def.database,
        table: &def.name,
        create: change.create.then_some(def),
        expect_generation: change.expect_generation,
        advances: change.advances,
        ranges: change.ranges,
        ids: change.ids,
        partitions: change.partitions,
        replaced: &replaced,
        require_live: change.require_live,
        drop_partitions: change.drop_partitions,
        added: &added,
    };
    let (id, files) = match crate::exec::blocking(|| catalog.commit_files(&spec, &names)) {
        Ok(x) => x,
        Err(e) => {
            discard(catalog, staged);
            return Err(e.into());
        }
    };
    crate::faults::crash_point("after-commit");
    publish(catalog, id, &files)?;
    vacuum(catalog);
    let finals = files
        .iter()
        .map(|(_, f)| PathBuf::from(f))
        .chain(added.iter().map(|(p, _)| PathBuf::from(p)))
        .collect();
    Ok((id, finals))
}

/// How long files replaced by commits of an older Cuve (recorded without the commit that
/// replaced them, so no read lease can tell whether they are in use) stay on disk:
/// `CUVE_FILE_RETENTION_SECS`, one hour by default.
pub fn retention_secs() -> u64 {
    std::env::var("CUVE_FILE_RETENTION_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3600)
}

/// Deletes the files commits replaced or dropped that no running query reads (read leases of
/// every process of the home, `leases.rs`), and the directories of dropped partitions once
/// empty. Best effort: a failure is logged and retried by the next commit or release. Returns
/// how many files were deleted.
pub fn vacuum(catalog: &Catalog) -> usize {
    let tombstones = match catalog.tombstones() {
        Ok(t) => t,
        Err(e) => {
            log::warn!("listing replaced files to delete: {e}");
            return 0;
        }
    };
    if tombstones.is_empty() {
        return 0;
    }
    let reading = super::leases::oldest_read(catalog);
    let old = chrono::Utc::now().timestamp() - retention_secs() as i64;
    let free = |t: &cuve_catalog::Tombstone| {
        if t.batch_id == 0 {
            return t.since <= old;
        }
        reading
            .get(&(t.database.clone(), t.table.clone()))
            .is_none_or(|&g| g >= t.batch_id)
    };
    let mut gone = Vec::new();
    let mut dirs = Vec::new();
    for t in tombstones.iter().filter(|t| free(t)) {
        let path = &t.path;
        if crate::storage::is_object(path) {
            match crate::storage::objects::delete(path) {
                Ok(()) => gone.push(path.clone()),
                Err(e) => log::warn!("deleting replaced file: {e}"),
            }
            continue;
        }
        if Path::new(path).is_dir() {
            dirs.push(path.clone());
            continue;
        }
        match std::fs::remove_file(path) {
            Ok(()) => {
                super::mapped::forget(Path::new(path));
                gone.push(path.clone());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone.push(path.clone()),
            Err(e) => log::warn!("deleting replaced file {path}: {e}"),
        }
    }
    let n = gone.len();
    // Directories of dropped partitions, after their files: removed when nothing but marker
    // files other programs leave (`_SUCCESS`, `.crc`) remains, unless the partition was made
    // again meanwhile (a writer's staged file keeps it too).
    for dir in dirs {
        if !catalog.is_table_location(&dir).unwrap_or(true) {
            remove_dropped_dir(Path::new(&dir));
        }
        gone.push(dir);
    }
    if let Err(e) = catalog.forget_tombstones(&gone) {
        log::warn!("forgetting deleted files: {e}");
    }
    n
}

fn remove_dropped_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let marker = name == "_SUCCESS"
                || name.starts_with("_committed_")
                || name.starts_with("_started_")
                || (name.starts_with('.') && name.ends_with(".crc"));
            if marker && e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => super::mapped::forget(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::info!("dropped partition directory {} kept: {e}", dir.display()),
    }
}

/// Renames the committed but unpublished files of a snapshot (a reader finishing a writer's
/// publish, so its listing shows the whole commit). Safe alongside the writer doing the same.
pub fn settle(snapshot: &FilesSnapshot) -> Result<()> {
    for (staged, fin) in &snapshot.unpublished {
        publish_one(Path::new(staged), Path::new(fin))?;
    }
    Ok(())
}

/// Carries out a committed journal: renames, removals, directory syncs; then clears it.
fn publish(catalog: &Catalog, id: i64, files: &[(String, String)]) -> Result<()> {
    let mut dirs = BTreeSet::new();
    for (from, to) in files {
        publish_one(Path::new(from), Path::new(to))?;
        if let Some(d) = Path::new(from).parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    for d in dirs {
        if let Ok(f) = std::fs::File::open(&d) {
            let _ = f.sync_all();
        }
    }
    crate::exec::blocking(|| catalog.finish_publish(id))?;
    Ok(())
}

/// Removes staged files of dead processes (not part of a pending commit) in `dir` and, `depth`
/// levels down, in its subdirectories (a table's partition directories). Returns how many.
pub fn remove_orphans(dir: &Path, depth: usize, pending: &[(i64, String, String)]) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if depth > 0 && !name.starts_with('.') {
                removed += remove_orphans(&path, depth - 1, pending);
            }
            continue;
        }
        let Some(rest) = name.strip_prefix(".cuve-tmp-") else {
            continue;
        };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        let is_pending = pending.iter().any(|(_, s, _)| Path::new(s) == path);
        if let Some(pid) = pid
            && !crate::exec::pid_alive(pid)
            && !is_pending
            && std::fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Publishes committed batches left unpublished (after a crash).
pub fn publish_pending(catalog: &Catalog) -> Result<usize> {
    let pending = catalog.pending_publishes()?;
    let mut batches = BTreeSet::new();
    for (batch, staged, fin) in &pending {
        publish_one(Path::new(staged), Path::new(fin))?;
        if let Some(dir) = Path::new(fin).parent()
            && let Ok(f) = std::fs::File::open(dir)
        {
            let _ = f.sync_all();
        }
        batches.insert(*batch);
    }
    for b in &batches {
        catalog.finish_publish(*b)?;
    }
    Ok(pending.len())
}

pub fn publish_one(staged: &Path, fin: &Path) -> Result<()> {
    if fin.as_os_str().is_empty() {
        // A file the commit replaced: removed (already gone is fine).
        return match std::fs::remove_file(staged) {
            Ok(()) => {
                super::mapped::forget(staged);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::io(staged, e)),
        };
    }
    match std::fs::rename(staged, fin) {
        Ok(()) => Ok(()),
        // Already published by someone else.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && fin.exists() => Ok(()),
        // Both gone: the partition or table was dropped since; nothing left to publish.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && !staged.parent().is_some_and(|d| d.exists()) =>
        {
            log::warn!(
                "pending ingest file {} vanished with its directory; skipping",
                staged.display()
            );
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::warn!(
                "pending ingest file {} is gone (dropped or overwritten since); skipping",
                staged.display()
            );
            Ok(())
        }
        Err(e) => Err(EngineError::io(staged, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_of_this_catalog_are_told_from_others() {
        let name = |id| super::super::bucket::bucket_file_name(3, object_number(id), "parquet");
        assert!(is_ours(&name(77), 77));
        // Another Cuve home on the same bucket: not ours, so never hidden nor deleted here.
        assert!(!is_ours(&name(78), 77));
        assert!(!is_ours("000003_0.parquet", 77));
        assert!(!is_ours("00000_0_part-00000-abc.c000.snappy.parquet", 77));
        // A local commit's numbers, and other writers' timestamps in nanoseconds.
        let local = super::super::bucket::bucket_file_name(3, file_number(1 << 30, 5), "parquet");
        assert!(!is_ours(&local, 0));
        assert!(!is_ours("events_1800000000000000000.parquet", 0));
        assert!(!is_ours(
            &format!("{}.orc", name(77).trim_end_matches(".parquet")),
            77
        ));
    }
}
