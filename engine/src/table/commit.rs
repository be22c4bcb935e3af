//! The one commit protocol for files of a table (ingest, INSERT, INSERT OVERWRITE, CTAS):
//!
//! 1. **Stage**: write every new file completely under a hidden, unique name in its directory.
//! 2. **Commit**: one catalog transaction records the new partitions and the journal of the
//!    commit: each staged file with its final name, and each file it replaces. Before this
//!    transaction nothing happened (staged files of a dead process are removed as orphans);
//!    after it, the commit *will* happen.
//! 3. **Publish**: rename staged files to their final names, remove replaced files, sync the
//!    directories, then clear the journal. Whoever finds a journal left by a crashed process
//!    (every [`crate::Engine::open`], every ingest) finishes publishing it.
//!
//! Final names are unique by construction (`<bucket>_<n>` with `n` from the commit's id), so
//! concurrent writers never collide and a publish can always be redone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cuve_catalog::{Catalog, PartitionDef, SourceAdvance, TableDef};

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

/// Commits `staged` files (and the removal of `replaced` ones, and `partitions`, and ingest
/// ledger `advances`) to `def` in one catalog transaction, then publishes. Returns the commit
/// id and the final paths of the new files. On an error before the commit, staged files are
/// removed and nothing changed.
pub fn commit(
    catalog: &Catalog,
    def: &TableDef,
    staged: &[Staged],
    replaced: &[PathBuf],
    partitions: &[PartitionDef],
    advances: &[SourceAdvance],
) -> Result<(i64, Vec<PathBuf>)> {
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
            .chain(
                replaced
                    .iter()
                    .map(|r| (r.display().to_string(), String::new())),
            )
            .collect()
    };
    let committed =
        catalog.commit_ingest_batch(&def.database, &def.name, advances, partitions, &names);
    let (id, files) = match committed {
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
    let finals = files
        .iter()
        .filter(|(_, f)| !f.is_empty())
        .map(|(_, f)| PathBuf::from(f))
        .collect();
    Ok((id, finals))
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
    catalog.finish_publish(id)?;
    Ok(())
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
