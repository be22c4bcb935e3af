//! Table statistics from storage: rows and bytes per partition and bucket (`SHOW TABLE STATS`,
//! so bucket skew is visible), and schema inference for external Parquet tables declared
//! without columns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cuve_catalog::{Catalog, ColumnDef, TableDef};
use datafusion::arrow::array::{RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::file::metadata::ParquetMetaDataReader;
use std::sync::Arc;

use crate::error::{EngineError, Result};
use crate::storage::{ObjectLocation, objects};
use crate::table::layout::{is_data_file_name, list_data_files, table_partitions};
use crate::table::verify;
use crate::types::hive_type_name;

/// The footer metadata of a Parquet file in an object store (two range requests).
fn object_parquet_metadata(
    url: &str,
) -> Result<datafusion::parquet::file::metadata::ParquetMetaData> {
    use datafusion::parquet::file::metadata::FooterTail;
    let bad = |m: String| EngineError::File {
        path: url.to_string(),
        message: format!("not a readable Parquet file: {m}"),
    };
    let size = objects::size_of(url)?;
    if size < 8 {
        return Err(bad(format!("{size} bytes is too short")));
    }
    let tail = objects::get_bytes(url, Some(size - 8..size))?;
    let tail: [u8; 8] = tail[..].try_into().map_err(|_| bad("short read".into()))?;
    let footer = FooterTail::try_new(&tail).map_err(|e| bad(e.to_string()))?;
    let len = footer.metadata_length() as u64;
    if len + 8 > size {
        return Err(bad(format!("a footer of {len} bytes in a file of {size}")));
    }
    let meta = objects::get_bytes(url, Some(size - 8 - len..size - 8))?;
    ParquetMetaDataReader::decode_metadata(&meta).map_err(|e| bad(e.to_string()))
}

/// Rows in a Parquet file, from its footer.
pub fn parquet_rows(path: &Path) -> Result<u64> {
    let url = path.display().to_string();
    if crate::storage::is_object(&url) {
        let meta = object_parquet_metadata(&url)?;
        return Ok(meta.file_metadata().num_rows().max(0) as u64);
    }
    let file = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|e| EngineError::File {
            path: path.display().to_string(),
            message: format!("not a readable Parquet file: {e}"),
        })?;
    Ok(meta.file_metadata().num_rows().max(0) as u64)
}

/// `SHOW TABLE STATS`: one row per (partition, bucket) with files, rows, bytes, layout, the small
/// files compaction would merge, and when the partition's rows and sensitive values expire
/// (`expires`, `sensitive_expires`: the first day they are removed, or `due`), then a total
/// (the earliest dates).
pub fn table_stats(catalog: &Catalog, def: &TableDef) -> Result<RecordBatch> {
    let registered = if def.partition_columns.is_empty() {
        vec![]
    } else {
        catalog.partitions(&def.database, &def.name)?
    };
    let checks = if verify::applies(catalog, def) {
        catalog.file_checks(&def.database, &def.name)?
    } else {
        Default::default()
    };
    let mismatch = def.properties.contains_key(verify::MISMATCH_PROPERTY);
    let root = verify::cuve_root(catalog, def);
    let mut groups: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    let mut layouts: BTreeMap<(String, String), &'static str> = BTreeMap::new();
    let parts = table_partitions(def, registered);
    // The catalog's file lists (object stores) and the files commits replaced, read once.
    let snapshot = catalog.files_snapshot(&def.database, &def.name)?;
    let policy = crate::lifecycle::policy::policy(def).ok();
    let today = crate::lifecycle::clock::today()?;
    let target = policy
        .as_ref()
        .map_or(crate::lifecycle::policy::DEFAULT_TARGET_BYTES, |p| {
            p.target_bytes
        });
    let mut small: BTreeMap<(String, String), u64> = BTreeMap::new();
    let compactable = !def.external && def.format == cuve_catalog::StorageFormat::Parquet;
    let mut expiry: BTreeMap<String, (String, String)> = BTreeMap::new();
    for p in parts {
        let spec = if p.values.is_empty() {
            String::new()
        } else {
            p.spec()
        };
        if let Some(date) = crate::lifecycle::policy::partition_date(&p.values) {
            let due = |days: Option<u32>| -> String {
                match days {
                    None => String::new(),
                    Some(d) if crate::lifecycle::policy::is_expired(date, today, d) => {
                        "due".to_string()
                    }
                    Some(d) => (date + chrono::Duration::days(i64::from(d) + 1)).to_string(),
                }
            };
            let (r, s) = policy
                .as_ref()
                .map(|p| (due(p.retention_days), due(p.sensitive_days)))
                .unwrap_or_default();
            expiry.insert(spec.clone(), (r, s));
        }
        let dir = PathBuf::from(&p.location);
        let files = if crate::storage::is_object(&p.location) {
            crate::table::commit::committed_files(
                &snapshot,
                &dir,
                catalog.object_id()?,
                def.external,
            )?
        } else if dir.exists() {
            let mut files = list_data_files(&dir)?;
            files.retain(|f| !snapshot.removed.contains(f.path.to_str().unwrap_or("")));
            files
        } else {
            continue;
        };
        for f in files {
            let rows = match def.format {
                cuve_catalog::StorageFormat::Parquet => parquet_rows(&f.path)?,
                cuve_catalog::StorageFormat::Orc => orc_rows(&f.path)?,
                _ => 0,
            };
            let bucket = f.bucket.map(|b| format!("{b:06}")).unwrap_or_default();
            let layout = file_layout(def, root.as_deref(), &checks, mismatch, &f);
            let l = layouts
                .entry((spec.clone(), bucket.clone()))
                .or_insert(layout);
            if layout_rank(layout) > layout_rank(l) {
                *l = layout;
            }
            if compactable
                && f.bucket.is_some()
                && crate::lifecycle::compact::is_small(f.size, target)
            {
                *small.entry((spec.clone(), bucket.clone())).or_default() += 1;
            }
            let e = groups.entry((spec.clone(), bucket)).or_default();
            e.0 += 1;
            e.1 += rows;
            e.2 += f.size;
        }
    }
    let (mut files, mut rows, mut bytes) = (0, 0, 0);
    let mut part_col = Vec::new();
    let mut bucket_col = Vec::new();
    let (mut fc, mut rc, mut bc) = (Vec::new(), Vec::new(), Vec::new());
    let mut layout_col = Vec::new();
    let (mut small_col, mut exp_col, mut sens_col) = (Vec::new(), Vec::new(), Vec::new());
    let mut worst = "";
    for ((p, b), (f, r, s)) in &groups {
        // Small files COMPACT would merge: two or more in the bucket.
        let n = small.get(&(p.clone(), b.clone())).copied().unwrap_or(0);
        small_col.push(if n >= 2 { n } else { 0 });
        let (e, se) = expiry.get(p).cloned().unwrap_or_default();
        exp_col.push(e);
        sens_col.push(se);
        let layout = layouts.get(&(p.clone(), b.clone())).copied().unwrap_or("");
        if layout_rank(layout) > layout_rank(worst) {
            worst = layout;
        }
        layout_col.push(layout);
        part_col.push(p.clone());
        bucket_col.push(b.clone());
        fc.push(*f);
        rc.push(*r);
        bc.push(*s);
        files += f;
        rows += r;
        bytes += s;
    }
    part_col.push("(total)".into());
    bucket_col.push(String::new());
    fc.push(files);
    rc.push(rows);
    bc.push(bytes);
    layout_col.push(worst);
    small_col.push(small.values().filter(|n| **n >= 2).sum());
    // The total row: the next day something expires ("due": maintenance has work now).
    let next = |pick: fn(&(String, String)) -> &String| -> String {
        let mut all: Vec<&String> = expiry
            .values()
            .map(pick)
            .filter(|v| !v.is_empty())
            .collect();
        // "due" first, then the earliest date.
        all.sort_by_key(|v| (v.as_str() != "due", v.to_string()));
        all.first().map(|v| v.to_string()).unwrap_or_default()
    };
    exp_col.push(next(|e| &e.0));
    sens_col.push(next(|e| &e.1));
    let schema = Arc::new(Schema::new(vec![
        Field::new("partition", DataType::Utf8, false),
        Field::new("bucket", DataType::Utf8, false),
        Field::new("files", DataType::UInt64, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("layout", DataType::Utf8, false),
        Field::new("small_files", DataType::UInt64, false),
        Field::new("expires", DataType::Utf8, false),
        Field::new("sensitive_expires", DataType::Utf8, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(part_col)),
            Arc::new(StringArray::from(bucket_col)),
            Arc::new(UInt64Array::from(fc)),
            Arc::new(UInt64Array::from(rc)),
            Arc::new(UInt64Array::from(bc)),
            Arc::new(StringArray::from(layout_col)),
            Arc::new(UInt64Array::from(small_col)),
            Arc::new(StringArray::from(exp_col)),
            Arc::new(StringArray::from(sens_col)),
        ],
    )
    .map_err(|e| EngineError::DataFusion(e.into()))
}

/// Rows in an ORC file, from its footer.
pub fn orc_rows(path: &Path) -> Result<u64> {
    let url = path.display().to_string();
    let bad = |e: orc_rust::error::OrcError| EngineError::File {
        path: url.clone(),
        message: format!("not a readable ORC file: {e}"),
    };
    if crate::storage::is_object(&url) {
        let builder =
            orc_rust::ArrowReaderBuilder::try_new(objects::get_bytes(&url, None)?).map_err(bad)?;
        return Ok(builder.file_metadata().number_of_rows());
    }
    let file = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    let builder = orc_rust::ArrowReaderBuilder::try_new(file).map_err(bad)?;
    Ok(builder.file_metadata().number_of_rows())
}

/// Whether a file's bucket layout is relied on: `cuve` (Cuve wrote it), `checked` (a foreign
/// file whose sample matched its bucket), `mismatch` (rows in another bucket than its name
/// says, or the table's layout is known wrong), `unchecked` (new or changed since the last
/// check: run MSCK REPAIR TABLE); empty for a table without buckets.
fn file_layout(
    def: &TableDef,
    cuve_root: Option<&Path>,
    checks: &std::collections::HashMap<String, cuve_catalog::FileCheck>,
    mismatch: bool,
    f: &crate::table::layout::DataFile,
) -> &'static str {
    if def.bucket.is_none() {
        return "";
    }
    if cuve_root.is_some_and(|r| f.path.starts_with(r)) {
        return "cuve";
    }
    match checks.get(&f.path.display().to_string()) {
        Some(c) if c.size == f.size && c.mtime_ns == verify::mtime_ns(f.modified) => {
            if c.buckets_ok && !mismatch {
                "checked"
            } else {
                "mismatch"
            }
        }
        _ => "unchecked",
    }
}

/// Which layout state a group reports when its files differ: the least trusted.
fn layout_rank(layout: &str) -> u8 {
    match layout {
        "mismatch" => 4,
        "unchecked" => 3,
        "checked" => 2,
        "cuve" => 1,
        _ => 0,
    }
}

fn first_parquet(dir: &Path, depth: usize) -> Option<PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in &entries {
        let name = e.file_name().to_string_lossy().to_string();
        if !is_data_file_name(&name) {
            continue;
        }
        if e.file_type().ok()?.is_file() {
            return Some(e.path());
        }
    }
    if depth > 4 {
        return None;
    }
    entries
        .iter()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .find_map(|e| first_parquet(&e.path(), depth + 1))
}

/// Columns of an external Parquet table declared without a column list, from its first file.
pub fn infer_parquet_columns(location: &Path, partition: &[ColumnDef]) -> Result<Vec<ColumnDef>> {
    let none = || {
        EngineError::invalid(format!(
            "no column list given and no Parquet file under {} to infer it from",
            location.display()
        ))
    };
    let schema = if let Some(loc) = ObjectLocation::parse(&location.display().to_string())? {
        // The first data object in key order whose path holds no hidden or marker segment.
        let first = objects::list_all(&loc)?
            .into_iter()
            .filter(|m| {
                let rest = m
                    .location
                    .as_ref()
                    .strip_prefix(loc.key.as_ref())
                    .unwrap_or("");
                m.size > 0
                    && rest
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .all(is_data_file_name)
            })
            .min_by(|a, b| a.location.cmp(&b.location))
            .ok_or_else(none)?;
        let url = crate::storage::location::object_url(&loc.bucket, &first.location);
        let meta = object_parquet_metadata(&url)?;
        datafusion::parquet::arrow::parquet_to_arrow_schema(
            meta.file_metadata().schema_descr(),
            meta.file_metadata().key_value_metadata(),
        )
        .map_err(|e| EngineError::File {
            path: url.clone(),
            message: format!("not a readable Parquet schema: {e}"),
        })?
    } else {
        let file = first_parquet(location, 0).ok_or_else(none)?;
        let f = std::fs::File::open(&file).map_err(|e| EngineError::io(&file, e))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| EngineError::File {
                path: file.display().to_string(),
                message: format!("not a readable Parquet file: {e}"),
            })?;
        builder.schema().as_ref().clone()
    };
    schema
        .fields()
        .iter()
        .filter(|f| !partition.iter().any(|p| p.name == f.name().to_lowercase()))
        .map(|f| {
            Ok(ColumnDef::new(
                f.name().to_lowercase(),
                hive_type_name(f.data_type())?,
            ))
        })
        .collect()
}
