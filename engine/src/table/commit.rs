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
//! (`table::provider`). Files a commit replaces are only tombstoned: they are deleted
//! [`retention_secs`] later ([`vacuum`], after each commit), so queries planned before the
//! commit still read them.
//!
//! Final names are unique by construction (`<bucket>_<n>` with `n` from the commit's id), so
//! concurrent writers never collide and a publish can always be redone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cuve_catalog::{Catalog, FileCommit, FilesSnapshot, PartitionDef, SourceAdvance, TableDef};

use crate::error::{EngineError, Result};

/// A file staged for a commit: its hidden path, its directory and bucket.
pub struct Staged {
    pub tmp: PathBuf,
    pub dir: PathBuf,
    pub bucket: u32,
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
    /// Creates the table in the commit (`CREATE TABLE AS SELECT`).
    pub create: bool,
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
        for s in staged {
            let _ = std::fs::remove_file(&s.tmp);
        }
        return Err(e);
    }
    let names = |id: i64| -> Vec<(String, String)> {
        staged
            .iter()
            .enumerate()
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
        partitions: change.partitions,
        replaced: &replaced,
    };
    let (id, files) = match crate::exec::blocking(|| catalog.commit_files(&spec, &names)) {
        Ok(x) => x,
        Err(e) => {
            for s in staged {
                let _ = std::fs::remove_file(&s.tmp);
            }
            return Err(e.into());
        }
    };
    crate::faults::crash_point("after-commit");
    publish(catalog, id, &files)?;
    vacuum(catalog, retention_secs());
    let finals = files.iter().map(|(_, f)| PathBuf::from(f)).collect();
    Ok((id, finals))
}

/// How long files a commit replaced stay on disk, so queries planned before the commit can
/// still read them: `CUVE_FILE_RETENTION_SECS`, one hour by default.
pub fn retention_secs() -> u64 {
    std::env::var("CUVE_FILE_RETENTION_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3600)
}

/// Deletes replaced files older than the retention (best effort; a failure is logged and
/// retried by the next commit). Returns how many were deleted.
pub fn vacuum(catalog: &Catalog, retention_secs: u64) -> usize {
    let expired = match catalog.expired_tombstones(retention_secs) {
        Ok(e) => e,
        Err(e) => {
            log::warn!("listing replaced files to delete: {e}");
            return 0;
        }
    };
    let mut gone = Vec::new();
    for path in expired {
        match std::fs::remove_file(&path) {
            Ok(()) => {
                super::mapped::forget(Path::new(&path));
                gone.push(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone.push(path),
            Err(e) => log::warn!("deleting replaced file {path}: {e}"),
        }
    }
    let n = gone.len();
    if let Err(e) = catalog.forget_tombstones(&gone) {
        log::warn!("forgetting deleted files: {e}");
    }
    n
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
