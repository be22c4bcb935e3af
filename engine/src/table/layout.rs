//! Where a table's files are: the warehouse layout (`<db>/<table>/dt=.../<bucket:06>_<n>.parquet`),
//! listing a directory's data files, and reading partition values back from directory names.

use std::path::{Path, PathBuf};

use cuve_catalog::{HIVE_DEFAULT_PARTITION, PartitionDef, TableDef, unescape_path_name};

use super::bucket::bucket_of_file_name;
use crate::error::{EngineError, Result};

/// One data file of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    pub path: PathBuf,
    pub size: u64,
    /// Modification time (keys the Parquet footer cache together with the size).
    pub modified: Option<std::time::SystemTime>,
    /// Bucket id from the file name, if it carries one.
    pub bucket: Option<u32>,
}

pub use crate::storage::location::is_data_file_name;

/// Lists the data files directly inside `dir`, sorted by name. A missing directory is an error
/// that names it.
pub fn list_data_files(dir: &Path) -> Result<Vec<DataFile>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            EngineError::File {
                path: dir.display().to_string(),
                message: "directory does not exist (drop the partition, fix the LOCATION, or run MSCK REPAIR TABLE)".into(),
            }
        } else {
            EngineError::io(dir, e)
        }
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_data_file_name(name) {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) => m,
            // Deleted between the directory read and now: a commit replaced it (readers check
            // the table's generation after listing, and list again if it moved on).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(EngineError::io(entry.path(), e)),
        };
        if !meta.is_file() {
            continue;
        }
        out.push(DataFile {
            path: entry.path(),
            size: meta.len(),
            modified: meta.modified().ok(),
            bucket: bucket_of_file_name(name),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The directories a table's data lives in: its registered partitions, or its root when it is not
/// partitioned.
pub fn table_partitions(def: &TableDef, registered: Vec<PartitionDef>) -> Vec<PartitionDef> {
    if def.partition_columns.is_empty() {
        vec![PartitionDef {
            values: vec![],
            location: def.location.clone(),
        }]
    } else {
        registered
    }
}

/// A problem found while scanning a table directory for partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPartitionDir {
    pub path: String,
    pub reason: String,
}

/// Walks `root` for `k=v[/k2=v2]` directories matching the table's partition columns (MSCK).
/// Returns the partitions found and the directories whose names do not fit.
pub fn discover_partitions(def: &TableDef) -> Result<(Vec<PartitionDef>, Vec<BadPartitionDir>)> {
    let root = PathBuf::from(&def.location);
    let cols: Vec<&str> = def
        .partition_columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let mut found = Vec::new();
    let mut bad = Vec::new();
    if !crate::storage::is_object(&def.location) && !root.exists() {
        return Ok((found, bad));
    }
    walk(&root, &cols, 0, &mut vec![], &mut found, &mut bad)?;
    found.sort_by_key(|p: &PartitionDef| p.spec());
    Ok((found, bad))
}

fn walk(
    dir: &Path,
    cols: &[&str],
    depth: usize,
    values: &mut Vec<(String, String)>,
    found: &mut Vec<PartitionDef>,
    bad: &mut Vec<BadPartitionDir>,
) -> Result<()> {
    if depth == cols.len() {
        found.push(PartitionDef {
            values: values.clone(),
            location: dir.display().to_string(),
        });
        return Ok(());
    }
    for (name, path) in crate::storage::dirs::subdirs(dir)? {
        if !is_data_file_name(&name) {
            continue;
        }
        let expected = cols[depth];
        let parsed = name.split_once('=').and_then(|(k, v)| {
            let k = unescape_path_name(k)?;
            let v = unescape_path_name(v)?;
            Some((k.to_lowercase(), v))
        });
        match parsed {
            Some((k, v)) if k == expected => {
                let v = if v == HIVE_DEFAULT_PARTITION {
                    String::new()
                } else {
                    v
                };
                if let Err(reason) = validate_partition_value(expected, &v) {
                    bad.push(BadPartitionDir {
                        path: path.display().to_string(),
                        reason,
                    });
                    continue;
                }
                values.push((k, v));
                walk(&path, cols, depth + 1, values, found, bad)?;
                values.pop();
            }
            Some((k, _)) => bad.push(BadPartitionDir {
                path: path.display().to_string(),
                reason: format!("expected partition column '{expected}', found '{k}'"),
            }),
            None => bad.push(BadPartitionDir {
                path: path.display().to_string(),
                reason: format!("directory name is not of the form {expected}=value"),
            }),
        }
    }
    Ok(())
}

/// Checks a partition value; `dt` must be a real `YYYY-MM-DD` date.
pub fn validate_partition_value(column: &str, value: &str) -> std::result::Result<(), String> {
    if value == HIVE_DEFAULT_PARTITION {
        return Err(format!(
            "partition value '{HIVE_DEFAULT_PARTITION}' of '{column}' is reserved: it is the \
             directory of empty (NULL) values; use another value"
        ));
    }
    if column == "dt"
        && !value.is_empty()
        && chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_err()
    {
        return Err(format!("dt value '{value}' is not a YYYY-MM-DD date"));
    }
    Ok(())
}

/// Resolves a user-given location to an absolute, normalised path (no `..`, symlinks resolved
/// when the path exists).
pub fn resolve_location(location: &str) -> Result<PathBuf> {
    let raw = location.strip_prefix("file://").unwrap_or(location);
    if raw.trim().is_empty() {
        return Err(EngineError::invalid(
            "LOCATION '' is empty: give a directory, or leave LOCATION out for a managed table",
        ));
    }
    crate::storage::location::check_scheme(raw)?;
    if let Some(loc) = crate::storage::ObjectLocation::parse(raw)? {
        return Ok(PathBuf::from(loc.display()));
    }
    let p = PathBuf::from(raw);
    let abs = if p.is_absolute() {
        p
    } else {
        std::env::current_dir()
            .map_err(|e| EngineError::io(".", e))?
            .join(p)
    };
    if abs.exists() {
        return abs.canonicalize().map_err(|e| EngineError::io(&abs, e));
    }
    // Normalise lexically for paths that do not exist yet.
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_dt() {
        assert!(validate_partition_value("dt", "2019-10-01").is_ok());
        assert!(validate_partition_value("dt", "2019-13-01").is_err());
        assert!(validate_partition_value("region", "anything").is_ok());
    }

    #[test]
    fn lists_only_data_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("000001_0.parquet"), b"x").unwrap();
        std::fs::write(d.path().join(".000002_0.parquet.tmp"), b"x").unwrap();
        std::fs::write(d.path().join("_SUCCESS"), b"").unwrap();
        let files = list_data_files(d.path()).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].bucket, Some(1));
        let e = list_data_files(&d.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
