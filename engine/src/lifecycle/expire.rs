//! Retention (whole partitions dropped by date) and expiry of sensitive columns (rewritten as
//! NULL, rows kept).
//!
//! Design: expiry rewrites each file of an expired partition that still holds a sensitive value
//! (the footer's statistics tell: a column whose null count is the row count holds none), with
//! those columns NULL, in place of the old one: one commit per partition. The other design
//! (sensitive columns in their own files per bucket) would make expiry a deletion, but every
//! scan that reads a sensitive column would join two files row by row; logs are read far more
//! often than they expire, and a rewrite keeps every file a plain Hive bucket file that Spark,
//! Trino and DuckDB read. Until a partition is rewritten its sensitive columns read as NULL
//! anyway (`table::provider` masks them), so expiry is exact at the day boundary and the rewrite
//! only removes the bytes.

use std::path::PathBuf;
use std::sync::Arc;

use cuve_catalog::{Catalog, TableDef};
use datafusion::arrow::array::{RecordBatch, new_null_array};
use datafusion::parquet::file::metadata::ParquetMetaData;

use super::rewrite::{self, Output, PartitionFiles};
use crate::error::{EngineError, Result};
use crate::table::layout::DataFile;

/// Drops partitions in one commit: they leave the catalog, and their files (and, on local
/// disk, their directories) leave storage once no query reads them.
pub fn drop_partitions(
    catalog: &Arc<Catalog>,
    def: &TableDef,
    parts: &[&PartitionFiles],
) -> Result<usize> {
    if parts.is_empty() {
        return Ok(0);
    }
    let layout = rewrite::layout(catalog, def)?;
    let mut replaced: Vec<PathBuf> = Vec::new();
    let mut specs = Vec::new();
    for p in parts {
        specs.push(p.spec());
        // Files of a partition placed elsewhere (ADD PARTITION ... LOCATION) are not the
        // table's to delete: only the catalog forgets them.
        let location = &p.partition.location;
        if !location.starts_with(def.location.trim_end_matches('/')) {
            continue;
        }
        replaced.extend(p.files().map(|f| f.path.clone()));
        // The partition's directory goes too, once empty.
        if !crate::storage::is_object(location) {
            replaced.push(PathBuf::from(location));
        }
    }
    rewrite::commit_rewrite(
        catalog,
        def,
        &layout,
        vec![],
        &replaced,
        &specs,
        "retention",
    )?;
    Ok(specs.len())
}

/// Whether a file still holds a value in one of `columns` (from its footer's statistics; a
/// file without statistics for a column is taken to hold values).
pub fn holds_values(meta: &ParquetMetaData, columns: &[String]) -> bool {
    let schema = meta.file_metadata().schema_descr();
    for name in columns {
        let Some(idx) = (0..schema.num_columns()).find(|&i| schema.column(i).name() == name) else {
            continue;
        };
        for rg in meta.row_groups() {
            let rows = rg.num_rows().max(0) as u64;
            let nulls = rg.column(idx).statistics().and_then(|s| s.null_count_opt());
            if nulls != Some(rows) {
                return true;
            }
        }
    }
    false
}

/// The footer of a file of the table.
pub fn footer(f: &DataFile) -> Result<ParquetMetaData> {
    let text = f.path.display().to_string();
    let bad = |e: String| EngineError::File {
        path: text.clone(),
        message: format!("not a readable Parquet file: {e}"),
    };
    let reader = datafusion::parquet::file::metadata::ParquetMetaDataReader::new();
    if crate::storage::is_object(&text) {
        let bytes = crate::storage::objects::get_bytes(&text, None)?;
        return reader
            .parse_and_finish(&bytes)
            .map_err(|e| bad(e.to_string()));
    }
    let file = std::fs::File::open(&f.path).map_err(|e| EngineError::io(&f.path, e))?;
    reader
        .parse_and_finish(&file)
        .map_err(|e| bad(e.to_string()))
}

/// The files of a partition that still hold sensitive values.
pub fn dirty_files(def: &TableDef, p: &PartitionFiles) -> Result<Vec<(Option<u32>, DataFile)>> {
    let columns = super::policy::sensitive_columns(def);
    let mut out = Vec::new();
    for (bucket, files) in &p.buckets {
        for f in files {
            if holds_values(&footer(f)?, &columns) {
                out.push((*bucket, f.clone()));
            }
        }
    }
    Ok(out)
}

/// Rewrites `files` of a partition with the sensitive columns NULL, in one commit.
pub fn clear_sensitive(
    catalog: &Arc<Catalog>,
    def: &TableDef,
    p: &PartitionFiles,
    files: &[(Option<u32>, DataFile)],
) -> Result<usize> {
    if files.is_empty() {
        return Ok(0);
    }
    let layout = rewrite::layout(catalog, def)?;
    let columns = super::policy::sensitive_columns(def);
    let schema = layout.file_schema.clone();
    let clear: Vec<usize> = columns
        .iter()
        .filter_map(|c| schema.index_of(c).ok())
        .collect();
    let mut outputs = Vec::new();
    for (bucket, f) in files {
        let batches = rewrite::read_file(&f.path, &schema)?
            .into_iter()
            .map(|b| {
                let mut cols = b.columns().to_vec();
                for &i in &clear {
                    cols[i] = new_null_array(schema.field(i).data_type(), b.num_rows());
                }
                RecordBatch::try_new(schema.clone(), cols)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        outputs.push(Output {
            dir: PathBuf::from(&p.partition.location),
            bucket: bucket.unwrap_or(0),
            batches,
        });
    }
    let replaced: Vec<PathBuf> = files.iter().map(|(_, f)| f.path.clone()).collect();
    rewrite::commit_rewrite(catalog, def, &layout, outputs, &replaced, &[], "expiry")?;
    Ok(files.len())
}
