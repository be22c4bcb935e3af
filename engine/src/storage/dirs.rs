//! Directory operations over either kind of location, so DDL reads the same for both: a local
//! directory, or a prefix in a bucket (where "directories" exist only as key prefixes).

use std::path::Path;

use super::location::ObjectLocation;
use super::objects;
use crate::error::{EngineError, Result};

/// Whether `dir` can hold a table's files: a local directory that exists, or a prefix of a
/// bucket Cuve can list (a prefix needs no objects to exist; listing it checks the bucket, the
/// credentials and the endpoint, so a mistake is reported when the table is defined).
pub fn is_dir(dir: &Path) -> Result<bool> {
    match ObjectLocation::parse(&dir.display().to_string())? {
        Some(loc) => objects::exists_under(&loc).map(|_| true),
        None => Ok(dir.is_dir()),
    }
}

/// Makes `dir` (a local directory; a prefix needs nothing).
pub fn create_dir(dir: &Path) -> Result<()> {
    if super::is_object(&dir.display().to_string()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))
}

/// Deletes `dir` with everything in it (every object under the prefix); a missing one is fine.
/// (The caller forgets memory maps of local files.)
pub fn remove_dir(dir: &Path) -> Result<()> {
    if let Some(loc) = ObjectLocation::parse(&dir.display().to_string())? {
        objects::delete_prefix(&loc)?;
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    }
    Ok(())
}

/// The subdirectories of `dir` by name (hidden and `_` ones left out by the caller).
pub fn subdirs(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    if let Some(loc) = ObjectLocation::parse(&dir.display().to_string())? {
        return Ok(objects::list_dirs(&loc)?
            .into_iter()
            .map(|(name, l)| (name, std::path::PathBuf::from(l.display())))
            .collect());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| EngineError::io(dir, e))?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false)
            && let Some(name) = e.file_name().to_str()
        {
            out.push((name.to_string(), e.path()));
        }
    }
    out.sort();
    Ok(out)
}
