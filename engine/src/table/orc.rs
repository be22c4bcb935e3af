//! ORC data files (Hive's refined tables), read through orc-rust's async reader.
//!
//! The source reads the table's data columns by name (or by position from files Hive wrote with
//! `_col0, _col1, ...` names), casts each to the table's declared type, fills columns a file
//! lacks with NULL, and leaves partition columns and any remaining projection to DataFusion's
//! `ProjectionOpener`, as DataFusion's CSV and JSON sources do. Files may be split by byte range
//! (stripes are assigned to the range holding their start). Lookups (`c = v`, `c IN (...)` on
//! string, integer, float and boolean columns) hand orc-rust a predicate, which skips the row
//! groups whose row-index statistics (and bloom filters) cannot hold the values; anything it
//! cannot evaluate keeps the rows, and the filter is applied above the scan in any case.
//! Writing ORC is not supported.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    FileOpenFuture, FileOpener, FileScanConfig, FileSource,
};
use datafusion::datasource::projection::{ProjectionOpener, SplitProjection};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryFutureExt};
use orc_rust::predicate::PredicateValue;
use orc_rust::projection::ProjectionMask;
use orc_rust::reader::AsyncChunkReader;
use orc_rust::{ArrowReaderBuilder, Predicate};

/// DataFusion file source of ORC files.
#[derive(Debug, Clone)]
pub struct OrcSource {
    table_schema: TableSchema,
    projection: SplitProjection,
    batch_size: usize,
    metrics: ExecutionPlanMetricsSet,
    predicate: Option<Predicate>,
    /// The scan's read lease (`leases.rs`), held while the plan lives.
    lease: Option<std::sync::Arc<super::leases::Lease>>,
}

impl OrcSource {
    pub fn new(table_schema: TableSchema) -> Self {
        let projection = SplitProjection::unprojected(&table_schema);
        OrcSource {
            table_schema,
            projection,
            batch_size: 8192,
            metrics: ExecutionPlanMetricsSet::new(),
            predicate: None,
            lease: None,
        }
    }

    pub fn with_lease(mut self, lease: std::sync::Arc<super::leases::Lease>) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Row groups that cannot match `predicate` are skipped (files with named columns only).
    pub fn with_predicate(mut self, predicate: Option<Predicate>) -> Self {
        self.predicate = predicate;
        self
    }
}

/// The orc-rust predicate of lookups in `filters` (unqualified) on the data columns of
/// `file_schema`: for each column pinned to a few values, `c = v1 OR c = v2 ...`, all ANDed.
pub fn lookup_predicate(
    filters: &[datafusion::logical_expr::Expr],
    file_schema: &Schema,
) -> Option<Predicate> {
    let mut per_column = Vec::new();
    for field in file_schema.fields() {
        let Some(values) = super::prune::allowed_values(filters, field.name()) else {
            continue;
        };
        let converted: Option<Vec<PredicateValue>> = values
            .iter()
            .map(|v| predicate_value(v, field.data_type()))
            .collect();
        let Some(converted) = converted.filter(|c| !c.is_empty()) else {
            continue;
        };
        per_column.push(Predicate::or(
            converted
                .into_iter()
                .map(|v| Predicate::eq(field.name(), v))
                .collect(),
        ));
    }
    match per_column.len() {
        0 => None,
        1 => per_column.pop(),
        _ => Some(Predicate::and(per_column)),
    }
}

/// A literal as orc-rust compares it with a column of type `column`; `None` for nulls and
/// types it does not compare.
fn predicate_value(v: &ScalarValue, column: &DataType) -> Option<PredicateValue> {
    let v = v.cast_to(column).ok()?;
    Some(match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => PredicateValue::Utf8(Some(s)),
        ScalarValue::Int8(Some(i)) => PredicateValue::Int64(Some(i as i64)),
        ScalarValue::Int16(Some(i)) => PredicateValue::Int64(Some(i as i64)),
        ScalarValue::Int32(Some(i)) => PredicateValue::Int64(Some(i as i64)),
        ScalarValue::Int64(Some(i)) => PredicateValue::Int64(Some(i)),
        ScalarValue::Float32(Some(f)) => PredicateValue::Float64(Some(f as f64)),
        ScalarValue::Float64(Some(f)) => PredicateValue::Float64(Some(f)),
        ScalarValue::Boolean(Some(b)) => PredicateValue::Boolean(Some(b)),
        _ => return None,
    })
}

impl FileSource for OrcSource {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        _partition: usize,
    ) -> DfResult<Arc<dyn FileOpener>> {
        let file_schema = self.table_schema.file_schema();
        let wanted = Arc::new(file_schema.project(&self.projection.file_indices)?);
        let opener = Arc::new(OrcOpener {
            predicate: self.predicate.clone(),
            store: object_store,
            wanted,
            positions: self.projection.file_indices.clone(),
            batch_size: base_config.batch_size.unwrap_or(self.batch_size),
        });
        ProjectionOpener::try_new(self.projection.clone(), opener, file_schema)
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table_schema
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        Arc::new(OrcSource {
            batch_size,
            ..self.clone()
        })
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> DfResult<Option<Arc<dyn FileSource>>> {
        let merged = self.projection.source.try_merge(projection)?;
        let mut source = self.clone();
        source.projection = SplitProjection::new(self.table_schema.file_schema(), &merged);
        Ok(Some(Arc::new(source)))
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        Some(&self.projection.source)
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        "orc"
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        datafusion::physical_plan::apply_expression_roots(self.projection.source.iter(), f)
    }
}

/// Opens one ORC file and yields its batches in the wanted (table) schema.
struct OrcOpener {
    store: Arc<dyn ObjectStore>,
    /// The data columns to read, with the table's types.
    wanted: SchemaRef,
    /// Their positions among the table's data columns.
    positions: Vec<usize>,
    batch_size: usize,
    predicate: Option<Predicate>,
}

impl FileOpener for OrcOpener {
    fn open(&self, file: PartitionedFile) -> DfResult<FileOpenFuture> {
        let reader = StoreReader {
            store: self.store.clone(),
            meta: file.object_meta.clone(),
        };
        let wanted = self.wanted.clone();
        let positions = self.positions.clone();
        let predicate = self.predicate.clone();
        let batch_size = self.batch_size;
        let path = file.object_meta.location.to_string();
        let range = file.range.clone();
        Ok(Box::pin(async move {
            let not_orc = |e: orc_rust::error::OrcError| {
                DataFusionError::Execution(format!("/{path}: not a readable ORC file: {e}"))
            };
            let mut builder = ArrowReaderBuilder::try_new_async(reader)
                .await
                .map_err(not_orc)?;
            let root = builder.file_metadata().root_data_type().clone();
            let columns = FileColumns::of(&root);
            let picked: Vec<Option<usize>> = (wanted.fields().iter().zip(&positions))
                .map(|(f, &at)| columns.find(f.name(), at))
                .collect();
            let mask = ProjectionMask::roots(
                &root,
                picked
                    .iter()
                    .flatten()
                    .map(|&i| root.children()[i].data_type().column_index()),
            );
            if let Some(r) = range {
                builder = builder.with_file_byte_range(r.start as usize..r.end as usize);
            }
            // The predicate names columns; files with placeholder names are read whole.
            if let Some(p) = predicate
                && !columns.positional
            {
                builder = builder.with_predicate(p);
            }
            let stream = builder
                .with_batch_size(batch_size)
                .with_projection(mask)
                .build_async();
            let file_names: Vec<String> = root
                .children()
                .iter()
                .map(|c| c.name().to_string())
                .collect();
            let stream = stream.map(move |batch| {
                let batch = batch.map_err(|e| {
                    DataFusionError::Execution(format!("/{path}: reading ORC: {e}"))
                })?;
                adapt(&batch, &wanted, &picked, &file_names)
                    .map_err(|e| DataFusionError::Execution(format!("/{path}: {e}")))
            });
            Ok(stream.boxed())
        }))
    }
}

/// How a file's top-level columns are matched to the table's: by name (case-insensitive), or by
/// position when the file has Hive's placeholder names `_col0, _col1, ...`.
struct FileColumns {
    names: Vec<String>,
    positional: bool,
}

impl FileColumns {
    fn of(root: &orc_rust::schema::RootDataType) -> Self {
        let names: Vec<String> = root
            .children()
            .iter()
            .map(|c| c.name().to_lowercase())
            .collect();
        let positional = !names.is_empty()
            && names
                .iter()
                .enumerate()
                .all(|(i, n)| *n == format!("_col{i}"));
        FileColumns { names, positional }
    }

    /// Index of the file column holding table column `name`, the `at`-th data column.
    fn find(&self, name: &str, at: usize) -> Option<usize> {
        if self.positional {
            return (at < self.names.len()).then_some(at);
        }
        let lower = name.to_lowercase();
        self.names.iter().position(|n| *n == lower)
    }
}

/// The batch in the wanted schema: columns picked by name, cast to the table's types, NULL
/// where the file has no such column.
fn adapt(
    batch: &RecordBatch,
    wanted: &SchemaRef,
    picked: &[Option<usize>],
    file_names: &[String],
) -> Result<RecordBatch, String> {
    let rows = batch.num_rows();
    let read = batch.schema();
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let mut out: Vec<ArrayRef> = Vec::with_capacity(wanted.fields().len());
    for (field, pick) in wanted.fields().iter().zip(picked) {
        let column = pick.and_then(|i| {
            let name = &file_names[i];
            read.index_of(name).ok().map(|j| batch.column(j))
        });
        let array = match column {
            None => new_null_array(field.data_type(), rows),
            Some(c) if c.data_type() == field.data_type() => c.clone(),
            Some(c) => cast_with_options(c, field.data_type(), &options).map_err(|e| {
                format!(
                    "column '{}' is {} in the file and cannot be read as the table's {}: {e}",
                    field.name(),
                    c.data_type(),
                    field.data_type()
                )
            })?,
        };
        out.push(array);
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(wanted.fields().clone())),
        out,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| e.to_string())
}

/// ORC reads through DataFusion's object store (local files today, object storage later).
struct StoreReader {
    store: Arc<dyn ObjectStore>,
    meta: ObjectMeta,
}

impl AsyncChunkReader for StoreReader {
    fn len(&mut self) -> BoxFuture<'_, std::io::Result<u64>> {
        let size = self.meta.size;
        async move { Ok(size) }.boxed()
    }

    fn get_bytes(&mut self, offset: u64, length: u64) -> BoxFuture<'_, std::io::Result<Bytes>> {
        self.store
            .get_range(&self.meta.location, offset..offset + length)
            .map_err(std::io::Error::other)
            .boxed()
    }
}

/// Reads up to `limit` rows of the given columns (name, and position among the table's data
/// columns) of a local ORC file, for layout checks: one array per column, in the order given;
/// `None` for a file without rows.
pub fn sample_columns(
    path: &std::path::Path,
    columns: &[(String, usize)],
    limit: usize,
) -> Result<Option<Vec<ArrayRef>>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let builder =
        ArrowReaderBuilder::try_new(file).map_err(|e| format!("not a readable ORC file: {e}"))?;
    let root = builder.file_metadata().root_data_type().clone();
    let found = FileColumns::of(&root);
    let mut names = Vec::new();
    let mut indices = Vec::new();
    for (c, at) in columns {
        let i = found
            .find(c, *at)
            .ok_or_else(|| format!("the file has no column '{c}'"))?;
        names.push(root.children()[i].name().to_string());
        indices.push(root.children()[i].data_type().column_index());
    }
    let mut reader = builder
        .with_batch_size(limit.max(1))
        .with_projection(ProjectionMask::roots(&root, indices))
        .build();
    let Some(batch) = reader
        .next()
        .transpose()
        .map_err(|e| format!("reading ORC: {e}"))?
    else {
        return Ok(None);
    };
    names
        .iter()
        .map(|n| {
            batch
                .column_by_name(n)
                .cloned()
                .ok_or_else(|| format!("reading ORC: column '{n}' missing from the batch"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};

    #[test]
    fn adapt_casts_fills_and_names_the_column() {
        let read = RecordBatch::try_from_iter(vec![
            ("n", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
            ("s", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
        ])
        .unwrap();
        let wanted = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8View, true),
            Field::new("n", DataType::Int64, true),
            Field::new("gone", DataType::Utf8View, true),
        ]));
        let names = vec!["n".to_string(), "s".to_string()];
        let out = adapt(&read, &wanted, &[Some(1), Some(0), None], &names).unwrap();
        assert_eq!(out.schema(), wanted);
        assert_eq!(out.column(2).null_count(), 2);
        let bad = Arc::new(Schema::new(vec![Field::new("s", DataType::Int64, true)]));
        let e = adapt(&read, &bad, &[Some(1)], &names).unwrap_err();
        assert!(e.contains("column 's'"), "{e}");
    }
}
