//! Never trust a foreign bucket layout unverified. When files of a bucketed external table are
//! registered (CREATE EXTERNAL TABLE, MSCK REPAIR TABLE, ADD PARTITION, SET LOCATION), a sample
//! of each new file's rows is hashed under the declared `bucketing_version` and compared with the
//! bucket id in the file's name, and checked for the declared sort order. Results are recorded
//! in the catalog per file (path, size, modification time). Scans of an external table use
//! bucket pruning and co-located plans only when every file they read was checked unchanged and
//! matched; lookups pick pages by the sort key only in files checked sorted. A mismatch is also
//! recorded on the table (`cuve.bucketing.mismatch`), with the file, a value and the bucket each
//! version would give, so that DESCRIBE FORMATTED and SHOW TABLE STATS say why. A wrong
//! declaration costs speed, never rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cuve_catalog::{Catalog, FileCheck, StorageFormat, TableDef};
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::{SortOptions, cast};
use datafusion::arrow::util::display::ArrayFormatter;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::bucket::{BucketHash, TextKind, bucket_ids};
use super::layout::{DataFile, list_data_files};
use crate::error::{EngineError, Result};
use crate::types::arrow_type;

/// Table property holding why the table's bucket layout is not trusted (set by a check).
pub const MISMATCH_PROPERTY: &str = "cuve.bucketing.mismatch";

/// Rows sampled from the start of each file.
const SAMPLE_ROWS: usize = 4096;

/// Nanoseconds since the epoch of a modification time (0 when unknown).
pub fn mtime_ns(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// The directory under which Cuve wrote a table's files itself: a managed table at its default
/// warehouse location (`<home>/warehouse/<db>/<table>`, next to the catalog), bucketed with
/// version 2. `None` for anything else (external tables, managed tables given a LOCATION,
/// version 1, which older Cuve wrote with another seed): their files, and files of partitions
/// placed elsewhere, are trusted only as far as they were checked.
pub fn cuve_root(catalog: &Catalog, def: &TableDef) -> Option<PathBuf> {
    let default = catalog
        .path()
        .parent()?
        .join("warehouse")
        .join(&def.database)
        .join(&def.name);
    (!def.external && def.bucketing_version() == 2 && Path::new(&def.location) == default)
        .then_some(default)
}

/// Whether a table's files may need checks: bucketed, and not all written by Cuve at its own
/// location.
pub fn applies(catalog: &Catalog, def: &TableDef) -> bool {
    def.bucket.is_some() && cuve_root(catalog, def).is_none()
}

/// Records that Cuve wrote `files` of `def` in its layout (INSERT into a table whose files are
/// checked, or into a partition outside the table's own directory), so they are trusted without
/// a sample.
pub fn record_written(catalog: &Catalog, def: &TableDef, files: &[PathBuf]) -> Result<()> {
    if def.bucket.is_none() {
        return Ok(());
    }
    let root = cuve_root(catalog, def);
    let mut checks = Vec::new();
    for f in files
        .iter()
        .filter(|f| !root.as_ref().is_some_and(|r| f.starts_with(r)))
        // Files Cuve wrote to an object store are known by their names (trust above).
        .filter(|f| !crate::storage::is_object(&f.display().to_string()))
    {
        let meta = std::fs::metadata(f).map_err(|e| EngineError::io(f, e))?;
        checks.push(FileCheck {
            path: f.display().to_string(),
            size: meta.len(),
            mtime_ns: mtime_ns(meta.modified().ok()),
            buckets_ok: true,
            sorted_ok: true,
        });
    }
    catalog.record_file_checks(&def.database, &def.name, &checks)?;
    Ok(())
}

/// Checks the files in `dirs` that were not checked before (or changed since), records the
/// results, and records a mismatch on the table. Returns warnings for the user.
pub fn check_dirs(catalog: &Catalog, def: &TableDef, dirs: &[PathBuf]) -> Result<Vec<String>> {
    if !applies(catalog, def) {
        return Ok(vec![]);
    }
    let known = catalog.file_checks(&def.database, &def.name)?;
    let root = cuve_root(catalog, def);
    let mut checks = Vec::new();
    let mut warnings = Vec::new();
    let mut mismatch: Option<String> = None;
    for dir in dirs {
        if !dir.is_dir() {
            continue;
        }
        for f in list_data_files(dir)? {
            if root.as_ref().is_some_and(|r| f.path.starts_with(r)) {
                continue;
            }
            let path = f.path.display().to_string();
            let mtime = mtime_ns(f.modified);
            if known
                .get(&path)
                .is_some_and(|k| k.size == f.size && k.mtime_ns == mtime)
            {
                continue;
            }
            let outcome = check_file(def, &f);
            if let Some(problem) = &outcome.bucket_problem {
                if mismatch.is_none() {
                    mismatch = Some(problem.clone());
                }
                warnings.push(format!("warning: {problem}"));
            }
            checks.push(FileCheck {
                path,
                size: f.size,
                mtime_ns: mtime,
                buckets_ok: outcome.bucket_problem.is_none() && outcome.buckets_ok,
                sorted_ok: outcome.sorted_ok,
            });
        }
    }
    catalog.record_file_checks(&def.database, &def.name, &checks)?;
    // The table's layout is wrong while any file recorded as wrong is still there (one replaced
    // and checked again clears it).
    let still_wrong = mismatch.is_some()
        || catalog
            .file_checks(&def.database, &def.name)?
            .values()
            .any(|c| !c.buckets_ok && Path::new(&c.path).exists());
    let recorded = def.properties.get(MISMATCH_PROPERTY).cloned();
    let wanted = match (&mismatch, still_wrong) {
        (Some(m), _) => Some(m.clone()),
        (None, true) => recorded.clone(),
        (None, false) => None,
    };
    if wanted.is_some() && recorded.is_none() || wanted.is_none() && recorded.is_some() {
        catalog.alter_table(&def.database, &def.name, |d| {
            match &wanted {
                Some(m) => d.properties.insert(MISMATCH_PROPERTY.into(), m.clone()),
                None => d.properties.remove(MISMATCH_PROPERTY),
            };
            Ok(())
        })?;
    }
    if warnings.len() > 5 {
        let more = warnings.len() - 5;
        warnings.truncate(5);
        warnings.push(format!("warning: ... and {more} more files"));
    }
    if !warnings.is_empty() {
        warnings.push(format!(
            "warning: bucket pruning and co-located plans are off for {}; results stay correct",
            def.qualified_name()
        ));
        for w in &warnings {
            log::warn!("{}", w.trim_start_matches("warning: "));
        }
    }
    Ok(warnings)
}

/// What one file's sample showed.
#[derive(Debug, Default)]
struct Outcome {
    /// Every sampled row is in the file's bucket (false also when it could not be checked).
    buckets_ok: bool,
    /// Why the layout is wrong, when a row is in another bucket than the name says.
    bucket_problem: Option<String>,
    sorted_ok: bool,
}

fn check_file(def: &TableDef, f: &DataFile) -> Outcome {
    let Some(spec) = &def.bucket else {
        return Outcome::default();
    };
    let Some(named) = f.bucket else {
        return Outcome::default();
    };
    let path = f.path.display().to_string();
    if named >= spec.num_buckets {
        return Outcome {
            bucket_problem: Some(format!(
                "file {path} is named for bucket {named}, but {} has {} buckets",
                def.qualified_name(),
                spec.num_buckets
            )),
            ..Default::default()
        };
    }
    let mut wanted: Vec<String> = spec.columns.clone();
    let sort_lead = spec.sorted_by.first().cloned();
    if let Some(s) = &sort_lead
        && !wanted.contains(s)
    {
        wanted.push(s.clone());
    }
    let sample = match sample(def, &f.path, &wanted) {
        Ok(Some(s)) => s,
        // an empty file holds no row in a wrong bucket
        Ok(None) => {
            return Outcome {
                buckets_ok: true,
                sorted_ok: true,
                ..Default::default()
            };
        }
        Err(e) => {
            log::warn!("cannot check the bucket layout of {path}: {e}");
            return Outcome::default();
        }
    };
    let keys: Vec<ArrayRef> = spec
        .columns
        .iter()
        .map(|c| sample[wanted.iter().position(|w| w == c).unwrap_or(0)].clone())
        .collect();
    let declared = BucketHash::from_version(def.bucketing_version());
    let mut outcome = Outcome {
        buckets_ok: true,
        ..Default::default()
    };
    let kinds = TextKind::of_bucket_columns(def);
    match bucket_ids(declared, &keys, &kinds, spec.num_buckets) {
        Ok(ids) => {
            if let Some(row) = ids.iter().position(|&b| b != named) {
                outcome.buckets_ok = false;
                outcome.bucket_problem = Some(describe_mismatch(
                    def,
                    &path,
                    &keys,
                    row,
                    named,
                    spec.num_buckets,
                ));
            }
        }
        Err(e) => {
            log::warn!(
                "cannot check the bucket layout of {path}: {}",
                e.user_message()
            );
            outcome.buckets_ok = false;
        }
    }
    outcome.sorted_ok = match &sort_lead {
        Some(s) => is_sorted(&sample[wanted.iter().position(|w| w == s).unwrap_or(0)]),
        None => false,
    };
    outcome
}

/// "file F: user_id = 'x' belongs in bucket 7 under bucketing_version 2 (the table's) and
/// bucket 8 under 1, but the file name says bucket 8: looks like v1: set ..."
fn describe_mismatch(
    def: &TableDef,
    path: &str,
    keys: &[ArrayRef],
    row: usize,
    named: u32,
    n: u32,
) -> String {
    let one: Vec<ArrayRef> = keys.iter().map(|k| k.slice(row, 1)).collect();
    let value = one
        .iter()
        .map(|a| {
            if a.is_null(0) {
                return "NULL".to_string();
            }
            ArrayFormatter::try_new(a.as_ref(), &Default::default())
                .map(|f| f.value(0).to_string())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(", ");
    let columns = def
        .bucket
        .as_ref()
        .map(|b| b.columns.join(", "))
        .unwrap_or_default();
    let declared = def.bucketing_version();
    let other = if declared == 1 { 2 } else { 1 };
    let bucket_of = |v: u8| {
        bucket_ids(
            BucketHash::from_version(v),
            &one,
            &TextKind::of_bucket_columns(def),
            n,
        )
        .ok()
        .and_then(|b| b.first().copied())
    };
    let (mine, theirs) = (bucket_of(declared), bucket_of(other));
    let show = |b: Option<u32>| b.map(|b| b.to_string()).unwrap_or("?".into());
    let advice = if theirs == Some(named) {
        format!("looks like v{other}: set TBLPROPERTIES ('bucketing_version'='{other}')")
    } else {
        "neither Hive hash puts it there: the files were not bucketed the Hive way (e.g. Spark's own bucketBy); the table is read without bucket optimisations".to_string()
    };
    format!(
        "file {path}: {columns} = '{value}' belongs in bucket {} under bucketing_version {declared} (the table's) and {} under {other}, but the file name says bucket {named}; {advice}",
        show(mine),
        show(theirs),
    )
}

/// Whether a sampled column is in ascending order (nulls first, as Hive and Spark sort).
fn is_sorted(a: &ArrayRef) -> bool {
    let options = SortOptions {
        descending: false,
        nulls_first: true,
    };
    let Ok(cmp) = datafusion::arrow::array::make_comparator(a.as_ref(), a.as_ref(), options) else {
        return false;
    };
    (1..a.len()).all(|i| cmp(i - 1, i).is_le())
}

/// The first rows of the named columns of a data file, cast to the table's declared types;
/// `None` for a file without rows.
fn sample(def: &TableDef, path: &Path, columns: &[String]) -> Result<Option<Vec<ArrayRef>>> {
    let file_err = |message: String| EngineError::File {
        path: path.display().to_string(),
        message,
    };
    let arrays: Vec<ArrayRef> = match def.format {
        StorageFormat::Parquet => {
            let file = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| file_err(format!("not a readable Parquet file: {e}")))?;
            let schema = builder.schema().clone();
            let mut roots = Vec::new();
            for c in columns {
                let i = schema
                    .fields()
                    .iter()
                    .position(|f| f.name().eq_ignore_ascii_case(c))
                    .ok_or_else(|| file_err(format!("the file has no column '{c}'")))?;
                roots.push(i);
            }
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots.clone());
            let mut reader = builder
                .with_projection(mask)
                .with_batch_size(SAMPLE_ROWS)
                .build()
                .map_err(|e| file_err(e.to_string()))?;
            let Some(batch) = reader
                .next()
                .transpose()
                .map_err(|e| file_err(e.to_string()))?
            else {
                return Ok(None);
            };
            let read = batch.schema();
            columns
                .iter()
                .map(|c| {
                    let i = read
                        .fields()
                        .iter()
                        .position(|f| f.name().eq_ignore_ascii_case(c))
                        .ok_or_else(|| file_err(format!("the file has no column '{c}'")))?;
                    Ok(batch.column(i).clone())
                })
                .collect::<Result<_>>()?
        }
        StorageFormat::Orc => {
            let positions: Vec<(String, usize)> = columns
                .iter()
                .map(|c| {
                    let at = def.columns.iter().position(|d| &d.name == c).unwrap_or(0);
                    (c.clone(), at)
                })
                .collect();
            match super::orc::sample_columns(path, &positions, SAMPLE_ROWS).map_err(file_err)? {
                Some(a) => a,
                None => return Ok(None),
            }
        }
        StorageFormat::Csv | StorageFormat::Json => {
            return Err(file_err(format!(
                "the bucket layout of {} files is not checked",
                def.format.as_str()
            )));
        }
    };
    if arrays.first().is_none_or(|a| a.is_empty()) {
        return Ok(None);
    }
    columns
        .iter()
        .zip(arrays)
        .map(|(c, a)| {
            let declared = def
                .column(c)
                .map(|d| arrow_type(&d.data_type))
                .transpose()?
                .ok_or_else(|| file_err(format!("no column '{c}'")))?;
            if a.data_type() == &declared {
                return Ok(a);
            }
            cast(&a, &declared).map_err(|e| {
                file_err(format!(
                    "column '{c}' is {} and cannot be read as {declared}: {e}",
                    a.data_type()
                ))
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Whether the files a scan reads may be trusted for bucket pruning and co-located plans
/// (`buckets`), and for picking pages by the sort key (`sorted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trust {
    pub buckets: bool,
    pub sorted: bool,
}

/// Trust in `files` of `def`: files Cuve wrote at the table's own location are trusted; any
/// other file only as far as its recorded check shows, for the file as it is now (its size and
/// modification time are read again: a listing may be cached).
pub fn trust<'a>(
    catalog: &Catalog,
    def: &TableDef,
    files: impl Iterator<Item = &'a DataFile>,
) -> Result<Trust> {
    let mut t = Trust {
        buckets: !def.properties.contains_key(MISMATCH_PROPERTY),
        sorted: true,
    };
    let mut checks: Option<HashMap<String, FileCheck>> = None;
    let root = cuve_root(catalog, def);
    for f in files {
        if root.as_ref().is_some_and(|r| f.path.starts_with(r)) {
            continue;
        }
        let path = f.path.display().to_string();
        if crate::storage::is_object(&path) {
            // In an object store, files of Cuve's naming are listed only when a commit recorded
            // them: Cuve wrote them in the table's layout. Other programs' files there are not
            // checked (that would read them from the bucket): bucket optimisations are off.
            let name = path.rsplit('/').next().unwrap_or("");
            if super::commit::is_ours(name, catalog.object_id()?) && def.bucketing_version() == 2 {
                continue;
            }
            return Ok(Trust {
                buckets: false,
                sorted: false,
            });
        }
        if def.bucket.as_ref().is_some_and(|b| b.sorted_by.is_empty()) {
            t.sorted = false;
        }
        if checks.is_none() {
            checks = Some(catalog.file_checks(&def.database, &def.name)?);
        }
        let path = f.path.display().to_string();
        let now = std::fs::metadata(&f.path).ok();
        let current = now.as_ref().map(|m| (m.len(), mtime_ns(m.modified().ok())));
        match checks.as_ref().and_then(|c| c.get(&path)) {
            Some(c) if current == Some((c.size, c.mtime_ns)) => {
                t.buckets &= c.buckets_ok;
                t.sorted &= c.sorted_ok;
            }
            _ => {
                if t.buckets {
                    log::warn!(
                        "table {}: file {path} was not checked against its bucket (new or changed since); bucket optimisations are off for this scan: run MSCK REPAIR TABLE {} to check it",
                        def.qualified_name(),
                        def.qualified_name()
                    );
                }
                return Ok(Trust {
                    buckets: false,
                    sorted: false,
                });
            }
        }
        if !t.buckets && !t.sorted {
            break;
        }
    }
    Ok(t)
}
