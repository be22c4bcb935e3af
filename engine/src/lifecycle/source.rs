//! One Parquet file of a table, opened for a rewrite: its footer is read first, and row groups
//! only when asked for. [`ParquetFile::candidates`] names the row groups that can hold rows
//! matching a predicate (footer min/max and null counts, then the bloom filters the writer puts
//! on the bucket columns), so a DELETE reads no data of a file none of whose row groups can
//! match.

use std::fs::File;
use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::physical_plan::parquet::{
    BloomFilterStatistics, ParquetAccessPlan, ParquetFileMetrics, RowGroupAccessPlanFilter,
};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::utils::conjunction;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::file::reader::ChunkReader;
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;

use super::rewrite::conform;
use crate::error::{EngineError, Result};
use crate::storage::objects::RangedObject;

enum Input {
    Local(File),
    Object(RangedObject),
}

/// A table's Parquet file with its footer read.
pub struct ParquetFile {
    text: String,
    input: Input,
    meta: ArrowReaderMetadata,
}

impl ParquetFile {
    /// Opens `path` (a local path or an `s3://` URL of `size` bytes) and reads its footer.
    pub fn open(path: &Path, size: Option<u64>) -> Result<Self> {
        let text = path.display().to_string();
        let input = if crate::storage::is_object(&text) {
            let len = match size {
                Some(n) => n,
                None => crate::storage::objects::size_of(&text)?,
            };
            Input::Object(RangedObject::new(&text, len))
        } else {
            Input::Local(File::open(path).map_err(|e| EngineError::io(path, e))?)
        };
        let options = ArrowReaderOptions::new();
        let meta = match &input {
            Input::Local(f) => ArrowReaderMetadata::load(f, options),
            Input::Object(o) => ArrowReaderMetadata::load(o, options),
        }
        .map_err(|e| unreadable(&text, e))?;
        Ok(ParquetFile { text, input, meta })
    }

    pub fn row_groups(&self) -> usize {
        self.meta.metadata().num_row_groups()
    }

    /// The row groups that can hold rows for which every one of `filters` (over `schema`, the
    /// table's columns; the file's partition columns are `partition`) is true: the others are
    /// proven to hold none by their statistics or by the bloom filter of a column compared
    /// with a literal. Statistics are read in the file's own types: a filter on a column the
    /// file lacks or stores as another type than the table's (the reader casts it) prunes
    /// nothing.
    pub fn candidates(
        &self,
        filters: &[Expr],
        schema: &Schema,
        partition: &[(String, ScalarValue)],
    ) -> Result<Vec<usize>> {
        let metadata = self.meta.metadata();
        let groups = metadata.row_groups();
        let all = || (0..groups.len()).collect::<Vec<_>>();
        let file_schema = self.meta.schema();
        let Some(predicate) = conjunction(filters.iter().cloned()) else {
            return Ok(all());
        };
        let predicate = predicate
            .transform(|e| match &e {
                Expr::Column(c) => match partition.iter().find(|(name, _)| *name == c.name) {
                    Some((_, v)) => Ok(Transformed::yes(Expr::Literal(v.clone(), None))),
                    None => Ok(Transformed::no(e)),
                },
                _ => Ok(Transformed::no(e)),
            })?
            .data;
        let same_type = predicate.column_refs().iter().all(|c| {
            match (
                file_schema.field_with_name(&c.name),
                schema.field_with_name(&c.name),
            ) {
                (Ok(f), Ok(t)) => f.data_type() == t.data_type(),
                _ => false,
            }
        });
        if !same_type {
            return Ok(all());
        }
        let df_schema = DFSchema::try_from(file_schema.as_ref().clone())?;
        let Ok(physical) = create_physical_expr(
            &predicate,
            &df_schema,
            &ExecutionProps::new(),
            &Default::default(),
        ) else {
            return Ok(all());
        };
        let Some(predicate) = PruningPredicateBuilder::new()
            .with_file_schema(file_schema.clone())
            .build(physical)
        else {
            return Ok(all());
        };
        let mut filter = RowGroupAccessPlanFilter::new(ParquetAccessPlan::new_all(groups.len()));
        let metrics = ParquetFileMetrics::new(0, &self.text, &ExecutionPlanMetricsSet::new());
        let descr = metadata.file_metadata().schema_descr();
        filter.prune_by_statistics(file_schema, descr, groups, &predicate, &metrics);
        let bloom_columns: Vec<(String, usize)> = predicate
            .literal_columns()
            .into_iter()
            .filter_map(|name| {
                let i = descr
                    .columns()
                    .iter()
                    .position(|c| c.path().string() == name)?;
                Some((name, i))
            })
            .collect();
        if bloom_columns.is_empty() || filter.is_empty() {
            return Ok(filter.row_group_indexes().collect());
        }
        let mut blooms = vec![BloomFilterStatistics::new(); groups.len()];
        let scanned: Vec<usize> = filter.row_group_indexes().collect();
        for g in scanned {
            for (name, i) in &bloom_columns {
                let sbbf = match &self.input {
                    Input::Local(f) => self
                        .builder(f.try_clone().map_err(|e| self.io(e))?)
                        .get_row_group_column_bloom_filter(g, *i),
                    Input::Object(o) => self
                        .builder(o.clone())
                        .get_row_group_column_bloom_filter(g, *i),
                }
                .map_err(|e| unreadable(&self.text, e))?;
                if let Some(sbbf) = sbbf {
                    let column = descr.column(*i);
                    blooms[g].insert(
                        name.clone(),
                        sbbf,
                        column.physical_type(),
                        column.type_length(),
                    );
                }
            }
        }
        filter.prune_by_bloom_filters(&predicate, &metrics, &blooms);
        Ok(filter.row_group_indexes().collect())
    }

    /// Reads the file (or only `groups`, in file order) as batches of `file_schema`: columns
    /// matched by name, cast to the table's types; columns the file lacks are NULL.
    pub fn read(
        &self,
        groups: Option<Vec<usize>>,
        file_schema: &SchemaRef,
    ) -> Result<Vec<RecordBatch>> {
        let batches = match (&self.input, groups) {
            (Input::Local(f), g) => self.read_from(f.try_clone().map_err(|e| self.io(e))?, g),
            (Input::Object(o), Some(g)) => self.read_from(o.clone(), Some(g)),
            // The whole object: one GET, not one per column chunk.
            (Input::Object(_), None) => {
                let bytes = crate::storage::objects::get_bytes(&self.text, None)?;
                self.read_from(bytes, None)
            }
        }?;
        batches
            .iter()
            .map(|b| {
                conform(b, file_schema).map_err(|e| EngineError::File {
                    path: self.text.clone(),
                    message: format!("not a readable Parquet file: {}", e.user_message()),
                })
            })
            .collect()
    }

    fn builder<R: ChunkReader + 'static>(&self, input: R) -> ParquetRecordBatchReaderBuilder<R> {
        ParquetRecordBatchReaderBuilder::new_with_metadata(input, self.meta.clone())
    }

    fn read_from<R: ChunkReader + 'static>(
        &self,
        input: R,
        groups: Option<Vec<usize>>,
    ) -> Result<Vec<RecordBatch>> {
        let mut builder = self.builder(input);
        if let Some(g) = groups {
            builder = builder.with_row_groups(g);
        }
        builder
            .build()
            .map_err(|e| unreadable(&self.text, e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| unreadable(&self.text, e))
    }

    fn io(&self, e: std::io::Error) -> EngineError {
        EngineError::io(Path::new(&self.text), e)
    }
}

fn unreadable(path: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::File {
        path: path.to_string(),
        message: format!("not a readable Parquet file: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use datafusion::prelude::{col, lit};

    use super::*;

    /// Three row groups of 100 rows: `n` 0..300, `u` one of `a0`..`a9` in group 0, `b*` in
    /// group 1, `c*` in group 2, with a bloom filter on `u`.
    fn file(dir: &Path) -> (std::path::PathBuf, SchemaRef) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("u", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let path = dir.join("0_0.parquet");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(100))
            .set_column_bloom_filter_enabled("u".into(), true)
            .build();
        let mut w = ArrowWriter::try_new(File::create(&path).unwrap(), schema.clone(), Some(props))
            .unwrap();
        for (g, prefix) in ["a", "b", "c"].iter().enumerate() {
            let u: StringArray = (0..100)
                .map(|i| Some(format!("{prefix}{}", i % 10)))
                .collect();
            let n = Int64Array::from_iter_values((0..100).map(|i| g as i64 * 100 + i));
            let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(u), Arc::new(n)]).unwrap();
            w.write(&b).unwrap();
            w.flush().unwrap();
        }
        w.close().unwrap();
        (path, schema)
    }

    fn candidates(f: &ParquetFile, schema: &SchemaRef, e: Expr) -> Vec<usize> {
        f.candidates(&[e], schema, &[]).unwrap()
    }

    #[test]
    fn row_groups_that_cannot_match_are_named_by_statistics_and_bloom_filters() {
        let dir = tempfile::tempdir().unwrap();
        let (path, schema) = file(dir.path());
        let f = ParquetFile::open(&path, None).unwrap();
        assert_eq!(f.row_groups(), 3);
        // min/max of n.
        assert_eq!(
            candidates(&f, &schema, col("n").gt_eq(lit(250i64))),
            vec![2]
        );
        assert_eq!(
            candidates(&f, &schema, col("n").lt(lit(0i64))),
            Vec::<usize>::new()
        );
        // Only group 1's min/max ("b0".."b9") hold "b5".
        assert_eq!(candidates(&f, &schema, col("u").eq(lit("b5"))), vec![1]);
        // "a55" is within group 0's min/max ("a0".."a9") but not in its bloom filter.
        assert_eq!(
            candidates(&f, &schema, col("u").eq(lit("a55"))),
            Vec::<usize>::new()
        );
        // Undecidable by statistics: every group.
        assert_eq!(
            candidates(&f, &schema, (col("n") % lit(7i64)).eq(lit(3i64))),
            vec![0, 1, 2]
        );
        // Reading one group gives its rows only.
        let rows: usize = f
            .read(Some(vec![1]), &schema)
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows, 100);
    }

    #[test]
    fn a_column_of_another_type_than_the_tables_is_not_pruned_on() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = file(dir.path());
        let f = ParquetFile::open(&path, None).unwrap();
        // The table says n is a string: the file's Int64 statistics are not used.
        let table = Arc::new(Schema::new(vec![
            Field::new("u", DataType::Utf8, true),
            Field::new("n", DataType::Utf8, true),
        ]));
        assert_eq!(
            candidates(&f, &table, col("n").eq(lit("zzz"))),
            vec![0, 1, 2]
        );
    }
}
