//! `DELETE FROM db.t WHERE ...`: only files that can hold matching rows are read (partition
//! and bucket pruning, as a query's), only files that do hold some are rewritten without them,
//! all in one commit. The statement needs DELETE (or ALTER) on the table and is audited with
//! its predicate and the rows it deleted.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use cuve_catalog::{Catalog, TableDef};
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::{filter_record_batch, not, prep_null_mask_filter};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::DFSchema;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, create_physical_expr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

use super::rewrite::{self, Output};
use super::source::ParquetFile;
use crate::access::AccessView;
use crate::error::{EngineError, Result};

/// What a DELETE did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeleteReport {
    pub rows: u64,
    /// Files left by partition and bucket pruning.
    pub files_selected: usize,
    /// Of those, files with a row group that could match (by its statistics and bloom
    /// filters): the only files whose data was read.
    pub files_read: usize,
    /// Row groups of the selected files, and those read.
    pub row_groups_total: usize,
    pub row_groups_read: usize,
    /// Files rewritten (they held matching rows).
    pub files_rewritten: usize,
}

/// Deletes the rows of `def` (its full definition) matching every one of `filters`.
pub fn delete_rows(
    catalog: &Arc<Catalog>,
    def: &TableDef,
    filters: &[Expr],
) -> Result<DeleteReport> {
    rewrite::check_rewritable(def, "DELETE")?;
    let table = crate::table::CuveTable::try_new(def.clone(), catalog.clone())?;
    let filters: Vec<Expr> = filters.iter().map(crate::table::prune::unqualify).collect();
    let selection = table.select_files(&filters)?;
    let table_schema = table.schema();
    let df_schema = DFSchema::try_from(table_schema.as_ref().clone())?;
    let props = ExecutionProps::new();
    let predicates = filters
        .iter()
        .map(|f| create_physical_expr(f, &df_schema, &props, &Default::default()))
        .collect::<DfResult<Vec<_>>>()
        .map_err(|e| {
            EngineError::invalid(format!(
                "DELETE FROM {}: the WHERE clause cannot be evaluated row by row: {e}",
                def.qualified_name()
            ))
        })?;
    let layout = rewrite::layout(catalog, def)?;
    let file_schema = layout.file_schema.clone();
    let n_data = file_schema.fields().len();
    let mut report = DeleteReport {
        files_selected: selection.files.len(),
        ..Default::default()
    };
    let mut outputs = Vec::new();
    let mut replaced = Vec::new();
    for (f, values) in &selection.files {
        let file = ParquetFile::open(&f.path, Some(f.size))?;
        let groups = file.row_groups();
        report.row_groups_total += groups;
        // Row groups whose statistics or bloom filters prove no row matches are not read.
        let partition: Vec<(String, ScalarValue)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let field = table_schema.field(n_data + i);
                Ok((field.name().clone(), v.cast_to(field.data_type())?))
            })
            .collect::<DfResult<_>>()?;
        let candidates = file.candidates(&filters, &table_schema, &partition)?;
        if candidates.is_empty() {
            continue;
        }
        report.files_read += 1;
        report.row_groups_read += candidates.len();
        // Each row group's rows that stay (`None`: not read yet, none can match).
        let mut kept: Vec<Option<Vec<RecordBatch>>> = vec![None; groups];
        let mut deleted = 0u64;
        for &g in &candidates {
            let mut left = Vec::new();
            for batch in file.read(Some(vec![g]), &file_schema)? {
                let matched = matches(def, &predicates, &table_schema, n_data, values, &batch)?;
                let hits = matched.true_count() as u64;
                deleted += hits;
                left.push(if hits == 0 {
                    batch
                } else {
                    filter_record_batch(&batch, &not(&matched)?)?
                });
            }
            kept[g] = Some(left);
        }
        if deleted == 0 {
            continue;
        }
        let mut batches = Vec::new();
        for (g, k) in kept.into_iter().enumerate() {
            match k {
                Some(b) => batches.extend(b),
                None => batches.extend(file.read(Some(vec![g]), &file_schema)?),
            }
        }
        report.rows += deleted;
        report.files_rewritten += 1;
        replaced.push(f.path.clone());
        outputs.push(Output {
            dir: f
                .path
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(&def.location)),
            bucket: f.bucket.unwrap_or(0),
            batches,
        });
    }
    // Every file is read: the read lease goes before the commit, whose clean-up then deletes
    // the replaced files at once (unless another query reads them).
    drop(selection);
    if !replaced.is_empty() {
        rewrite::commit_rewrite(catalog, def, &layout, outputs, &replaced, &[], "delete")?;
    }
    Ok(report)
}

/// Which rows of `batch` (in the file schema; the file's partition `values` added) every one
/// of `predicates` is true for. NULL (unknown) is not a match.
fn matches(
    def: &TableDef,
    predicates: &[Arc<dyn PhysicalExpr>],
    table_schema: &SchemaRef,
    n_data: usize,
    values: &[ScalarValue],
    batch: &RecordBatch,
) -> Result<BooleanArray> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (i, v) in values.iter().enumerate() {
        let field = table_schema.field(n_data + i);
        let a = v.to_array_of_size(n)?;
        columns.push(datafusion::arrow::compute::cast(&a, field.data_type())?);
    }
    let full = RecordBatch::try_new(table_schema.clone(), columns)?;
    let mut matched = BooleanArray::from(vec![true; n]);
    for p in predicates {
        let m = p.evaluate(&full)?.into_array(n)?;
        let m = m.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| {
            EngineError::invalid(format!(
                "DELETE FROM {}: the WHERE clause is not a condition (it gives {})",
                def.qualified_name(),
                m.data_type()
            ))
        })?;
        let m = if m.null_count() > 0 {
            prep_null_mask_filter(m)
        } else {
            m.clone()
        };
        matched = datafusion::arrow::compute::and(&matched, &m)?;
    }
    Ok(matched)
}

/// The plan DataFusion runs for `DELETE FROM` a Cuve table: deletes when executed (never when
/// planned, so `EXPLAIN DELETE` changes nothing) and returns one row, `count`.
#[derive(Debug)]
pub struct DeleteExec {
    catalog: Arc<Catalog>,
    /// The table's full definition (every column, whatever the session sees).
    def: TableDef,
    filters: Vec<Expr>,
    access: Option<Arc<AccessView>>,
    props: Arc<PlanProperties>,
}

impl DeleteExec {
    pub fn new(
        catalog: Arc<Catalog>,
        def: TableDef,
        filters: Vec<Expr>,
        access: Option<Arc<AccessView>>,
    ) -> Self {
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(count_schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        DeleteExec {
            catalog,
            def,
            filters,
            access,
            props,
        }
    }
}

fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

impl DisplayAs for DeleteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CuveDeleteExec: table={}", self.def.qualified_name())?;
        for e in &self.filters {
            write!(f, ", where {e}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for DeleteExec {
    fn name(&self) -> &str {
        "CuveDeleteExec"
    }
    fn schema(&self) -> SchemaRef {
        count_schema()
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }
    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let catalog = self.catalog.clone();
        let def = self.def.clone();
        let filters = self.filters.clone();
        let access = self.access.clone();
        let run = async move {
            let started = std::time::Instant::now();
            let where_text = filters
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" AND ");
            let (c, d, f) = (catalog.clone(), def.clone(), filters.clone());
            let result = tokio::task::spawn_blocking(move || delete_rows(&c, &d, &f))
                .await
                .map_err(|e| EngineError::invalid(format!("DELETE stopped: {e}")))
                .and_then(|r| r);
            let view = access
                .as_deref()
                .cloned()
                .unwrap_or_else(|| AccessView::admin("cuve"));
            let (decision, reason, rows) = match &result {
                Ok(r) => ("allow", None, r.rows),
                Err(e) => ("error", Some(e.user_message()), 0),
            };
            crate::exec::record(
                &catalog,
                &view,
                &format!("DELETE FROM {} WHERE {where_text}", def.qualified_name()),
                vec![def.qualified_name()],
                decision,
                reason,
                crate::exec::Admitted {
                    bytes: 0,
                    charged: false,
                },
                rows,
                started,
            );
            let report = result.map_err(datafusion::error::DataFusionError::from)?;
            log::info!(
                "DELETE FROM {}: {} rows from {} files rewritten; {} of {} files read ({} of {} row groups)",
                def.qualified_name(),
                report.rows,
                report.files_rewritten,
                report.files_read,
                report.files_selected,
                report.row_groups_read,
                report.row_groups_total
            );
            Ok(RecordBatch::try_new(
                count_schema(),
                vec![Arc::new(UInt64Array::from(vec![report.rows]))],
            )?)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            count_schema(),
            futures::stream::once(run),
        )))
    }
}
