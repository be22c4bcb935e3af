//! Writing a table's layout: rows are split by partition values and bucket id (Hive v2 hash),
//! sorted by the bucket (or `SORTED BY`) columns, and written as Parquet with statistics, page
//! index and a bloom filter on the bucket columns. Files are staged under hidden names and
//! published by a no-clobber link, so readers never see a partial file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cuve_catalog::{Catalog, PartitionDef, TableDef, partition_spec};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{
    SortColumn, cast, concat, concat_batches, interleave_record_batch, lexsort_to_indices,
    take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::sink::DataSink;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, GzipLevel, ZstdLevel};
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;

use super::bucket::{BucketHash, TextKind, bucket_ids};
use super::compressibility;
use super::layout::validate_partition_value;
use crate::error::{EngineError, Result};

/// Partition values as `(column, value)` pairs, in partition-column order.
pub type PartitionValues = Vec<(String, String)>;

/// A (partition, bucket) slice key.
pub type SliceKey = (PartitionValues, u32);

/// Rows buffered per (partition, bucket) before a file is written.
pub const ROWS_PER_FILE: usize = 4_000_000;

/// One (partition, bucket) slice of rows.
#[derive(Debug)]
pub struct Slice {
    /// Partition values as strings, in partition-column order (`""` = null).
    pub partition: Vec<(String, String)>,
    pub bucket: u32,
    /// Rows in file schema (no partition columns).
    pub batch: RecordBatch,
}

/// The codec a table's new files are written with: its `parquet.compression` property, or
/// LZ4 (the `LZ4_RAW` codec). LZ4 decompresses several times faster than zstd, and arrow-rs
/// builds a zstd compression and decompression context for every column chunk it reads, which
/// dominates a point lookup that reads a few pages from many files. Files are about 1.5× the
/// size of zstd level 1 ones; tables that favour size set `'parquet.compression'='zstd'`.
pub fn parquet_compression(def: &TableDef) -> Result<Compression> {
    let Some(raw) = def
        .properties
        .get(cuve_catalog::PARQUET_COMPRESSION_PROPERTY)
    else {
        return Ok(Compression::LZ4_RAW);
    };
    let v = raw.trim().to_ascii_lowercase();
    let (name, level) = match v.split_once('(') {
        Some((n, rest)) => match rest.strip_suffix(')').map(|l| l.trim().parse::<u32>()) {
            Some(Ok(l)) => (n.trim(), Some(l)),
            _ => return Err(bad_codec(raw)),
        },
        None => (v.as_str(), None),
    };
    let codec = match (name, level) {
        ("lz4" | "lz4_raw", None) => Compression::LZ4_RAW,
        ("snappy", None) => Compression::SNAPPY,
        ("uncompressed" | "none", None) => Compression::UNCOMPRESSED,
        ("zstd", l) => Compression::ZSTD(
            ZstdLevel::try_new(l.unwrap_or(1) as i32).map_err(|_| bad_codec(raw))?,
        ),
        ("gzip", l) => {
            Compression::GZIP(GzipLevel::try_new(l.unwrap_or(6)).map_err(|_| bad_codec(raw))?)
        }
        _ => return Err(bad_codec(raw)),
    };
    Ok(codec)
}

fn bad_codec(value: &str) -> EngineError {
    EngineError::invalid(format!(
        "'{}' = '{value}' is not a Parquet codec: use lz4, snappy, zstd, zstd(1..22), gzip, gzip(0..9) or uncompressed",
        cuve_catalog::PARQUET_COMPRESSION_PROPERTY
    ))
}

/// Knows how a table's rows are laid out: which partition and bucket each row goes to and how a
/// file is sorted and encoded. Shared by INSERT and ingest.
#[derive(Debug, Clone)]
pub struct Layout {
    pub def: Arc<TableDef>,
    /// Schema of incoming rows: data columns then partition columns.
    pub table_schema: SchemaRef,
    pub file_schema: SchemaRef,
    data_idx: Vec<usize>,
    partition_idx: Vec<usize>,
    bucket_idx: Vec<usize>,
    /// How each bucket column's strings are hashed (STRING, VARCHAR, CHAR).
    bucket_kinds: Vec<TextKind>,
    /// Sort key, indices in the file schema.
    sort_idx: Vec<usize>,
    /// Registered partition directories by spec (a partition may live anywhere).
    registered: HashMap<String, PathBuf>,
}

impl Layout {
    pub fn new(def: Arc<TableDef>, table_schema: SchemaRef) -> Result<Self> {
        let n_data = def.columns.len();
        let idx = |name: &str| -> Result<usize> {
            table_schema.index_of(name).map_err(|_| {
                EngineError::invalid(format!(
                    "table {} has no column '{name}'",
                    def.qualified_name()
                ))
            })
        };
        let bucket_idx = match &def.bucket {
            Some(b) => b
                .columns
                .iter()
                .map(|c| idx(c))
                .collect::<Result<Vec<_>>>()?,
            None => vec![],
        };
        let sort_names: Vec<String> = def
            .bucket
            .as_ref()
            .map(|b| b.sort_columns().to_vec())
            .unwrap_or_default();
        let sort_idx = sort_names
            .iter()
            .map(|c| idx(c))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|i| *i < n_data)
            .collect();
        let file_schema = Arc::new(table_schema.project(&(0..n_data).collect::<Vec<_>>())?);
        Ok(Layout {
            data_idx: (0..n_data).collect(),
            partition_idx: (n_data..table_schema.fields().len()).collect(),
            bucket_idx,
            bucket_kinds: TextKind::of_bucket_columns(&def),
            sort_idx,
            file_schema,
            table_schema,
            def,
            registered: HashMap::new(),
        })
    }

    /// Writes into the registered directories of existing partitions.
    pub fn with_registered(mut self, parts: Vec<PartitionDef>) -> Self {
        self.registered = parts
            .into_iter()
            .map(|p| (p.spec(), PathBuf::from(p.location)))
            .collect();
        self
    }

    /// Splits a batch (table schema) into per-(partition, bucket) slices.
    pub fn split(&self, batch: &RecordBatch) -> Result<Vec<Slice>> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(vec![]);
        }
        // Partition key per row.
        let part_strings: Vec<ArrayRef> = self
            .partition_idx
            .iter()
            .map(|i| cast(batch.column(*i), &DataType::Utf8))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| EngineError::DataFusion(e.into()))?;
        let buckets: Vec<u32> = match &self.def.bucket {
            Some(spec) => {
                let cols: Vec<ArrayRef> = self
                    .bucket_idx
                    .iter()
                    .map(|i| batch.column(*i).clone())
                    .collect();
                bucket_ids(
                    BucketHash::from_version(self.def.bucketing_version()),
                    &cols,
                    &self.bucket_kinds,
                    spec.num_buckets,
                )?
            }
            None => vec![0; rows],
        };
        // Partition of each row: rows come in time order, so a row almost always has the
        // previous row's partition, checked without building its key.
        let texts: Vec<_> = part_strings.iter().map(|a| a.as_string::<i32>()).collect();
        let value = |col: usize, row: usize| {
            let s = texts[col];
            if s.is_null(row) { "" } else { s.value(row) }
        };
        let n_buckets = self
            .def
            .bucket
            .as_ref()
            .map_or(1, |b| b.num_buckets as usize);
        let mut parts: Vec<Vec<String>> = Vec::new();
        let mut part_ids: HashMap<Vec<String>, usize> = HashMap::new();
        // Row numbers per partition, then per bucket.
        let mut groups: Vec<Vec<Vec<u32>>> = Vec::new();
        let mut last: Option<usize> = None;
        for (row, bucket) in buckets.iter().enumerate() {
            let same = last.filter(|&p| {
                parts[p]
                    .iter()
                    .enumerate()
                    .all(|(col, v)| value(col, row) == v)
            });
            let part = match same {
                Some(p) => p,
                None => {
                    let key: Vec<String> = (0..texts.len())
                        .map(|col| value(col, row).to_string())
                        .collect();
                    *part_ids.entry(key.clone()).or_insert_with(|| {
                        parts.push(key);
                        groups.push(vec![Vec::new(); n_buckets]);
                        parts.len() - 1
                    })
                }
            };
            last = Some(part);
            let bucket = *bucket as usize;
            if bucket >= groups[part].len() {
                groups[part].resize(bucket + 1, Vec::new());
            }
            groups[part][bucket].push(row as u32);
        }
        let data = batch.project(&self.data_idx)?;
        let mut out = Vec::new();
        for (part, by_bucket) in parts.into_iter().zip(groups) {
            let partition: Vec<(String, String)> = self
                .def
                .partition_columns
                .iter()
                .map(|c| c.name.clone())
                .zip(part)
                .collect();
            for (k, v) in &partition {
                validate_partition_value(k, v).map_err(EngineError::Invalid)?;
            }
            for (bucket, rows) in by_bucket.into_iter().enumerate() {
                if rows.is_empty() {
                    continue;
                }
                let indices = UInt32Array::from(rows);
                out.push(Slice {
                    partition: partition.clone(),
                    bucket: bucket as u32,
                    batch: take_record_batch(&data, &indices)?,
                });
            }
        }
        Ok(out)
    }

    /// Directory of a partition.
    pub fn partition_dir(&self, partition: &[(String, String)]) -> PathBuf {
        let root = PathBuf::from(&self.def.location);
        if partition.is_empty() {
            root
        } else {
            root.join(partition_spec(partition))
        }
    }

    /// The rows of `batches` in one batch sorted by the table's sort key, copied once: the
    /// sort key alone is concatenated and sorted, then every column is gathered in that order.
    pub fn sorted_rows(&self, batches: &[RecordBatch]) -> Result<RecordBatch> {
        let batches: Vec<&RecordBatch> = batches.iter().filter(|b| b.num_rows() > 0).collect();
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        if self.sort_idx.is_empty() || total < 2 {
            return Ok(concat_batches(&self.file_schema, batches)?);
        }
        let keys: Vec<SortColumn> = self
            .sort_idx
            .iter()
            .map(|i| {
                let parts: Vec<&dyn Array> =
                    batches.iter().map(|b| b.column(*i).as_ref()).collect();
                Ok(SortColumn {
                    values: concat(&parts)?,
                    options: None,
                })
            })
            .collect::<Result<_>>()?;
        let order = sort_order(&keys)?;
        // Row number in the concatenation → (batch, row in that batch).
        let starts: Vec<usize> = batches
            .iter()
            .scan(0, |acc, b| {
                let start = *acc;
                *acc += b.num_rows();
                Some(start)
            })
            .collect();
        let pairs: Vec<(usize, usize)> = order
            .iter()
            .map(|&g| {
                let g = g as usize;
                let b = starts.partition_point(|&s| s <= g) - 1;
                (b, g - starts[b])
            })
            .collect();
        Ok(interleave_record_batch(&batches, &pairs)?)
    }

    /// Parquet writer settings for a file of this table holding `batch` (the bloom filters
    /// on the bucket columns are sized for the values the file actually holds: the default
    /// sizing, a million values, would add about 1 MiB to every file and to every lookup).
    pub fn writer_properties(&self, batch: &RecordBatch) -> Result<WriterProperties> {
        let codec = parquet_compression(&self.def)?;
        // With LZ4 (the default, chosen for speed), columns it barely shrinks are stored
        // uncompressed (see compressibility.rs); other codecs are chosen for size and apply
        // to every column.
        let lz4 = codec == Compression::LZ4_RAW;
        let mut b = WriterProperties::builder()
            .set_compression(codec)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(1 << 20))
            // Small pages on a file sorted by the bucket key: the page index then narrows a
            // point lookup to about a thousand rows per file (1024 rows measured better than
            // 4096 for lookups and no worse for scans; see benches/RESULTS.md).
            .set_data_page_row_count_limit(1024)
            .set_created_by(format!("cuve {}", env!("CARGO_PKG_VERSION")));
        // Dictionary encoding only where values repeat: a near-unique column (timestamps, the
        // unique key, document ids) would carry a dictionary as large as its data, and a lookup
        // that reads one page of the column would have to read and decode all of it.
        // Min/max statistics on text only for the key columns (and for any text column of a
        // table whose files are not sorted, unless near-unique): in a file sorted by the key,
        // every page of another text column spans nearly its whole range, so they prune
        // nothing, and comparing every value took ~8% of ingest CPU.
        let sorted = !self.sort_idx.is_empty();
        for (i, field) in self.file_schema.fields().iter().enumerate() {
            let path = ColumnPath::from(field.name().clone());
            let unique = near_unique(batch.column(i))?;
            if unique {
                b = b.set_column_dictionary_enabled(path.clone(), false);
            }
            if lz4 && !compressibility::lz4_pays(batch.column(i), !unique)? {
                b = b.set_column_compression(path.clone(), Compression::UNCOMPRESSED);
            }
            let text = matches!(
                field.data_type(),
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            );
            let key = self.sort_idx.contains(&i) || self.bucket_idx.contains(&i);
            // A column with no values keeps its statistics (there is nothing to compare): its
            // null count is how expiry knows a file holds no sensitive value any more.
            let empty = batch.column(i).null_count() == batch.num_rows();
            if text && !key && (unique || sorted) && !empty {
                b = b.set_column_statistics_enabled(path, EnabledStatistics::None);
            }
        }
        for i in &self.bucket_idx {
            if *i < self.data_idx.len() {
                let name = self.table_schema.field(*i).name().clone();
                let path = ColumnPath::from(name);
                b = b
                    .set_column_bloom_filter_enabled(path.clone(), true)
                    .set_column_bloom_filter_max_ndv(
                        path.clone(),
                        distinct_values(batch.column(*i))?,
                    )
                    .set_column_bloom_filter_fpp(path, 0.01);
            }
        }
        if !self.sort_idx.is_empty() {
            b = b.set_sorting_columns(Some(
                self.sort_idx
                    .iter()
                    .map(|i| SortingColumn {
                        column_idx: *i as i32,
                        descending: false,
                        nulls_first: true,
                    })
                    .collect(),
            ));
        }
        Ok(b.build())
    }

    /// Writes sorted rows as one Parquet file into `sink`; returns it and the row count.
    fn write_parquet<W: std::io::Write + Send>(
        &self,
        sink: W,
        batches: &[RecordBatch],
    ) -> Result<(W, u64)> {
        let batch = self.sorted_rows(batches)?;
        let parquet =
            |e: datafusion::parquet::errors::ParquetError| EngineError::DataFusion(e.into());
        let mut w = ArrowWriter::try_new(
            sink,
            self.file_schema.clone(),
            Some(self.writer_properties(&batch)?),
        )
        .map_err(parquet)?;
        w.write(&batch).map_err(parquet)?;
        Ok((w.into_inner().map_err(parquet)?, batch.num_rows() as u64))
    }

    /// Sorted rows as the bytes of one Parquet file (for an object store, written in one put).
    pub fn encode(&self, batches: &[RecordBatch]) -> Result<(bytes::Bytes, u64)> {
        let (buf, rows) = self.write_parquet(Vec::new(), batches)?;
        Ok((buf.into(), rows))
    }

    /// Writes sorted rows to `path` (created new), fsynced.
    pub fn write_file(&self, path: &Path, batches: &[RecordBatch]) -> Result<u64> {
        let file = std::fs::File::create(path).map_err(|e| EngineError::io(path, e))?;
        let (file, rows) = self.write_parquet(file, batches)?;
        file.sync_all().map_err(|e| EngineError::io(path, e))?;
        Ok(rows)
    }
}

/// The row order of `keys` (ascending, nulls first, as `SortingColumn` records), ties in
/// arrival order. A single text key (the usual bucket column) is sorted by its first 16 bytes
/// as one integer, with the rest compared only where those are equal: comparing whole strings
/// was most of the sort's time in ingest profiles.
fn sort_order(keys: &[SortColumn]) -> Result<Vec<u32>> {
    if let [key] = keys
        && let Some(order) = text_order(&key.values)
    {
        return Ok(order);
    }
    Ok(lexsort_to_indices(keys, None)?.values().to_vec())
}

fn text_order(column: &ArrayRef) -> Option<Vec<u32>> {
    fn order<'a>(n: usize, value: impl Fn(usize) -> Option<&'a [u8]>) -> Vec<u32> {
        // (not null, first 16 bytes big-endian and zero-padded, length, row): for strings of at
        // most 16 bytes, comparing (prefix, length) is comparing the strings.
        let mut rows: Vec<(bool, u128, usize, u32)> = (0..n)
            .map(|i| match value(i) {
                None => (false, 0, 0, i as u32),
                Some(v) => {
                    let mut head = [0u8; 16];
                    let k = v.len().min(16);
                    head[..k].copy_from_slice(&v[..k]);
                    (true, u128::from_be_bytes(head), v.len(), i as u32)
                }
            })
            .collect();
        rows.sort_unstable_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| match (value(a.3 as usize), value(b.3 as usize)) {
                    (Some(x), Some(y)) if a.2 > 16 && b.2 > 16 => x[16..].cmp(&y[16..]),
                    _ => a.2.cmp(&b.2),
                })
                .then(a.3.cmp(&b.3))
        });
        rows.into_iter().map(|r| r.3).collect()
    }
    let n = column.len();
    if n > u32::MAX as usize {
        return None;
    }
    match column.data_type() {
        DataType::Utf8View => {
            let a = column.as_string_view();
            Some(order(n, |i| a.is_valid(i).then(|| a.value(i).as_bytes())))
        }
        DataType::Utf8 => {
            let a = column.as_string::<i32>();
            Some(order(n, |i| a.is_valid(i).then(|| a.value(i).as_bytes())))
        }
        DataType::LargeUtf8 => {
            let a = column.as_string::<i64>();
            Some(order(n, |i| a.is_valid(i).then(|| a.value(i).as_bytes())))
        }
        _ => None,
    }
}

/// Whether `column` looks near-unique: at least 80% distinct values in an evenly spaced sample
/// of up to 1024 rows (a third of the rows distinct, or more, typically).
fn near_unique(column: &ArrayRef) -> Result<bool> {
    const SAMPLE: usize = 1024;
    let n = column.len();
    if n < 64 {
        return Ok(false);
    }
    let step = n.div_ceil(SAMPLE);
    let picks = UInt32Array::from_iter_values((0..n).step_by(step).map(|r| r as u32));
    let sample = datafusion::arrow::compute::take(column.as_ref(), &picks, None)?;
    let distinct = distinct_values(&sample)? as usize;
    Ok(distinct * 10 >= picks.len() * 8)
}

/// Number of distinct values in `column` (by a 64-bit hash; at least 1).
fn distinct_values(column: &ArrayRef) -> Result<u64> {
    let state = datafusion::common::hash_utils::RandomState::with_seed(0);
    let n = datafusion::common::hash_utils::with_hashes([column], &state, |hashes| {
        Ok(hashes
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len())
    })?;
    Ok(n.max(1) as u64)
}

/// Name of a staging file: hidden, so no reader lists it.
pub fn staging_name(tag: &str) -> String {
    format!(".cuve-tmp-{}-{tag}.parquet", std::process::id())
}

/// What a write produced.
#[derive(Debug, Default, Clone)]
pub struct WriteSummary {
    pub rows: u64,
    pub files: Vec<PathBuf>,
    pub partitions: Vec<PartitionDef>,
}

/// How a write commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// `INSERT INTO`: adds files.
    Append,
    /// `INSERT OVERWRITE`: replaces the partitions written (the whole table when
    /// unpartitioned), failing if another write committed to the table meanwhile.
    Overwrite,
    /// `CREATE TABLE AS SELECT`: the table is created by the same commit as its rows.
    Create,
}

/// INSERT's writer: buffers slices, writes staged files, and on success commits them,
/// registers new partitions and (for OVERWRITE) removes the files they replace.
#[derive(Debug)]
pub struct TableWriter {
    layout: Layout,
    catalog: Arc<Catalog>,
    mode: WriteMode,
    /// For OVERWRITE: the table's files as the statement started.
    start: Option<cuve_catalog::FilesSnapshot>,
    buffers: HashMap<SliceKey, (Vec<RecordBatch>, usize)>,
    /// Staged files with their partition.
    staged: Vec<(super::commit::Staged, PartitionValues)>,
    rows: u64,
    token: String,
}

impl TableWriter {
    pub fn new(layout: Layout, catalog: Arc<Catalog>, mode: WriteMode) -> Result<Self> {
        super::commit::check_owned(&catalog, &layout.def)?;
        let token: u64 = rand::random();
        let start = match mode {
            WriteMode::Overwrite => {
                let def = &layout.def;
                let snapshot = catalog.files_snapshot(&def.database, &def.name)?;
                // Files committed before the statement are what it replaces: publish them now.
                super::commit::settle(&snapshot)?;
                Some(snapshot)
            }
            _ => None,
        };
        Ok(TableWriter {
            layout,
            catalog,
            mode,
            start,
            buffers: HashMap::new(),
            staged: vec![],
            rows: 0,
            token: format!("{token:016x}"),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        for s in self.layout.split(batch)? {
            let key = (s.partition, s.bucket);
            let entry = self.buffers.entry(key.clone()).or_default();
            entry.1 += s.batch.num_rows();
            entry.0.push(s.batch);
            if entry.1 >= ROWS_PER_FILE {
                let (batches, _) = self.buffers.remove(&key).unwrap_or_default();
                self.stage(key.0, key.1, batches)?;
            }
        }
        Ok(())
    }

    fn stage(
        &mut self,
        partition: Vec<(String, String)>,
        bucket: u32,
        batches: Vec<RecordBatch>,
    ) -> Result<()> {
        let dir = self.layout.partition_dir(&partition);
        let tag = format!("{}-{}-{bucket}", self.token, self.staged.len());
        let (staged, rows) =
            super::commit::stage_file(&self.catalog, &self.layout, &dir, bucket, &batches, &tag)?;
        self.rows += rows;
        self.staged.push((staged, partition));
        Ok(())
    }

    /// Writes what is buffered and publishes everything.
    pub fn finish(mut self) -> Result<WriteSummary> {
        let keys: Vec<_> = self.buffers.keys().cloned().collect();
        for key in keys {
            let (batches, _) = self.buffers.remove(&key).unwrap_or_default();
            if let Err(e) = self.stage(key.0, key.1, batches) {
                self.abort();
                return Err(e);
            }
        }
        let def = self.layout.def.clone();
        // OVERWRITE replaces the partitions written (the whole table when unpartitioned): the
        // files they held when the statement started, and nothing committed since.
        let mut replaced: Vec<PathBuf> = Vec::new();
        if let Some(start) = &self.start {
            let mut dirs: Vec<PathBuf> = self.staged.iter().map(|s| s.0.dir.clone()).collect();
            if def.partition_columns.is_empty() {
                dirs = vec![PathBuf::from(&def.location)];
            }
            dirs.sort();
            dirs.dedup();
            for d in dirs {
                replaced.extend(
                    super::commit::committed_files(start, &d, self.catalog.object_id()?, true)?
                        .into_iter()
                        .map(|f| f.path),
                );
            }
        }
        let mut summary = WriteSummary {
            rows: self.rows,
            ..Default::default()
        };
        let mut parts: Vec<PartitionDef> = Vec::new();
        let mut staged = Vec::new();
        for (file, partition) in std::mem::take(&mut self.staged) {
            if !partition.is_empty() && !parts.iter().any(|p| p.values == partition) {
                parts.push(PartitionDef {
                    values: partition,
                    location: file.dir.display().to_string(),
                });
            }
            staged.push(file);
        }
        crate::faults::crash_point("after-stage");
        // One catalog transaction adds the files and partitions and removes the replaced
        // files; a crash after it is finished by the next process (see `table::commit`).
        let change = super::commit::Change {
            replaced: &replaced,
            partitions: &parts,
            create: self.mode == WriteMode::Create,
            expect_generation: self.start.as_ref().map(|s| s.generation),
            ..Default::default()
        };
        let (_, files) = super::commit::commit(&self.catalog, &def, &staged, change)?;
        // Staged files of writers that died before committing, in the directories written.
        let mut dirs: Vec<&PathBuf> = staged.iter().map(|s| &s.dir).collect();
        dirs.sort();
        dirs.dedup();
        if !dirs.is_empty() {
            let pending = self.catalog.pending_publishes()?;
            for d in dirs {
                super::commit::remove_orphans(d, 0, &pending);
            }
        }
        summary.files = files;
        // Files Cuve wrote into a table whose other files are checked are trusted as written.
        super::verify::record_written(&self.catalog, &def, &summary.files)?;
        summary.partitions = parts;
        Ok(summary)
    }

    /// Removes staged files after a failure.
    pub fn abort(&mut self) {
        let staged: Vec<_> = self.staged.drain(..).map(|(s, _)| s).collect();
        super::commit::discard(&self.catalog, &staged);
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        self.abort();
    }
}

/// The DataFusion sink behind `INSERT INTO` a Cuve table.
#[derive(Debug)]
pub struct CuveSink {
    def: Arc<TableDef>,
    catalog: Arc<Catalog>,
    schema: SchemaRef,
    mode: WriteMode,
}

impl CuveSink {
    pub fn new(
        def: Arc<TableDef>,
        catalog: Arc<Catalog>,
        schema: SchemaRef,
        mode: WriteMode,
    ) -> Self {
        CuveSink {
            def,
            catalog,
            schema,
            mode,
        }
    }
}

impl DisplayAs for CuveSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CuveSink: table={}, mode={}",
            self.def.qualified_name(),
            match self.mode {
                WriteMode::Append => "append",
                WriteMode::Overwrite => "overwrite",
                WriteMode::Create => "create",
            }
        )
    }
}

#[async_trait]
impl DataSink for CuveSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _ctx: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        let summary = write_stream(
            self.def.clone(),
            self.catalog.clone(),
            self.schema.clone(),
            self.mode,
            data,
        )
        .await?;
        Ok(summary.rows)
    }
}

/// Writes a stream of rows into `def` (whose columns `schema` lists, data then partition
/// columns, matched by position) and commits them.
pub async fn write_stream(
    def: Arc<TableDef>,
    catalog: Arc<Catalog>,
    schema: SchemaRef,
    mode: WriteMode,
    mut data: SendableRecordBatchStream,
) -> Result<WriteSummary> {
    let registered = if def.partition_columns.is_empty() || mode == WriteMode::Create {
        vec![]
    } else {
        catalog.partitions(&def.database, &def.name)?
    };
    let layout = Layout::new(def.clone(), schema.clone())?.with_registered(registered);
    let mut writer = TableWriter::new(layout, catalog, mode)?;
    while let Some(batch) = data.next().await {
        let batch = batch.map_err(EngineError::from_datafusion)?;
        // Incoming batches may carry other field names, nullability or string flavours
        // (Utf8View): adopt the table's.
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c.clone())
                } else {
                    cast(c, f.data_type())
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        writer.write(&batch)?;
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use cuve_catalog::{BucketSpec, ColumnDef, StorageFormat};
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn def_with(properties: &[(&str, &str)]) -> TableDef {
        TableDef {
            database: "d".into(),
            name: "t".into(),
            columns: vec![ColumnDef::new("k", "STRING")],
            partition_columns: vec![],
            bucket: None,
            format: StorageFormat::Parquet,
            location: "/nowhere".into(),
            external: false,
            comment: None,
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            created_at: String::new(),
            updated_at: String::new(),
            version: 1,
        }
    }

    #[test]
    fn parquet_compression_property_picks_the_codec() {
        let codec = |v: &str| parquet_compression(&def_with(&[("parquet.compression", v)]));
        assert_eq!(
            parquet_compression(&def_with(&[])).unwrap(),
            Compression::LZ4_RAW
        );
        assert_eq!(codec("SNAPPY").unwrap(), Compression::SNAPPY);
        assert_eq!(codec(" lz4 ").unwrap(), Compression::LZ4_RAW);
        assert_eq!(codec("uncompressed").unwrap(), Compression::UNCOMPRESSED);
        assert_eq!(
            codec("zstd").unwrap(),
            Compression::ZSTD(ZstdLevel::try_new(1).unwrap())
        );
        assert_eq!(
            codec("zstd(9)").unwrap(),
            Compression::ZSTD(ZstdLevel::try_new(9).unwrap())
        );
        assert_eq!(
            codec("gzip").unwrap(),
            Compression::GZIP(GzipLevel::try_new(6).unwrap())
        );
        for bad in ["brotli", "zstd(99)", "zstd(", "lz4(1)", "gzip(x)", ""] {
            let e = codec(bad).unwrap_err().to_string();
            assert!(e.contains("is not a Parquet codec"), "{bad}: {e}");
            assert!(e.contains("parquet.compression"), "{bad}: {e}");
        }
    }

    #[test]
    fn sorted_rows_gathers_every_row_in_key_order() {
        let def = TableDef {
            columns: vec![ColumnDef::new("k", "STRING"), ColumnDef::new("v", "BIGINT")],
            bucket: Some(BucketSpec {
                columns: vec!["k".into()],
                sorted_by: vec![],
                num_buckets: 2,
            }),
            ..def_with(&[])
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let layout = Layout::new(Arc::new(def), schema.clone()).unwrap();
        let batch = |keys: &[&str], vals: &[i64]| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(keys.to_vec())),
                    Arc::new(Int64Array::from(vals.to_vec())),
                ],
            )
            .unwrap()
        };
        let out = layout
            .sorted_rows(&[
                batch(&["c", "a"], &[1, 2]),
                batch(&[], &[]),
                batch(&["b", "a", "d"], &[3, 4, 5]),
            ])
            .unwrap();
        let keys: Vec<&str> = out.column(0).as_string::<i32>().iter().flatten().collect();
        assert_eq!(keys, ["a", "a", "b", "c", "d"]);
        let mut vals: Vec<i64> = out
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec();
        // Rows stay whole: each key keeps its value.
        assert_eq!(&vals[2..], &[3, 1, 5]);
        vals.sort();
        assert_eq!(vals, [1, 2, 3, 4, 5]);
        assert_eq!(layout.sorted_rows(&[]).unwrap().num_rows(), 0);
    }

    #[test]
    fn text_order_matches_lexsort_with_ties_in_arrival_order() {
        let values: Vec<Option<&str>> = vec![
            Some("b"),
            None,
            Some("ab"),
            Some("ab\0"),
            Some("a"),
            Some("0123456789abcdefZ"),
            Some("0123456789abcdef"),
            Some("0123456789abcdefA"),
            Some("0123456789abcdefA"),
            Some(""),
            None,
            Some("ab"),
            Some("가나다"),
            Some("0123456789abcdef\0"),
        ];
        let column: ArrayRef = Arc::new(StringArray::from(values.clone()));
        let got = text_order(&column).unwrap();
        let sorted: Vec<Option<&str>> = got.iter().map(|&i| values[i as usize]).collect();
        let mut want = values.clone();
        want.sort(); // None first, then byte order
        assert_eq!(sorted, want);
        // Equal keys keep their arrival order.
        let ab: Vec<u32> = got
            .iter()
            .copied()
            .filter(|&i| values[i as usize] == Some("ab"))
            .collect();
        assert_eq!(ab, [2, 11]);
        let view: ArrayRef = Arc::new(datafusion::arrow::array::StringViewArray::from(values));
        assert_eq!(text_order(&view).unwrap(), got);
    }
}
