//! Co-located plans as a distributed engine gets them.
//!
//! [`BucketParallelExec`](super::BucketParallelExec) and
//! [`PartitionParallelExec`](super::PartitionParallelExec) keep their subtree whole and pick each
//! partition's files when they run. A distributed engine (Ballista) instead splits a stage into
//! tasks by trimming the file groups of the scans it finds below each node, and walks into
//! children to cut stages at shuffles; and per-file tags (which bucket a file is) do not survive
//! plan serialisation. So for the cluster each such node becomes a [`SlicedExec`]: its children
//! are the subtree's file scans, each with one file group per output partition (group `i` = what
//! partition `i` reads: bucket `i`, or share `i` of the partition values), and the subtree itself
//! (join, aggregation) stays inside the node. Trimming every scan to the same group indexes
//! slices all sides alike, so a co-located join still runs bucket with bucket, with no shuffle.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, ReplaceChildrenOptions,
};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

use super::bucket_join::{BucketParallelExec, execute_as_one, file_config, rebuild};
use super::partition_agg::PartitionParallelExec;

/// A subtree run once per slice: output partition `i` runs it over file group `i` of every
/// scan (its children).
#[derive(Debug)]
pub struct SlicedExec {
    /// The subtree, its file scans reading nothing (they stand for the children).
    template: Arc<dyn ExecutionPlan>,
    /// The template's file scans, in pre-order, each with one file group per slice.
    scans: Vec<Arc<dyn ExecutionPlan>>,
    description: String,
    props: Arc<PlanProperties>,
}

/// The file scans of `plan`, in pre-order (children left to right).
fn file_scans(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<Arc<dyn ExecutionPlan>>) {
    if file_config(plan.as_ref()).is_some() {
        out.push(plan.clone());
        return;
    }
    for c in plan.children() {
        file_scans(c, out);
    }
}

/// `scan` reading only `groups`. `pinned`: the groups are declared as the scan's partitioning,
/// so that no optimizer regroups them (DataFusion's file-scan repartitioning, which Ballista's
/// planner runs again on each stage, would otherwise split or merge them by size); the declared
/// count is the slice count and stays as it was when Ballista trims the groups to a task's
/// slices (DataFusion then falls back to the group count, as wanted).
fn with_groups(
    scan: &Arc<dyn ExecutionPlan>,
    groups: Vec<FileGroup>,
    pinned: bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    let cfg = file_config(scan.as_ref())
        .ok_or_else(|| DataFusionError::Internal(format!("{} is not a file scan", scan.name())))?;
    let declared = pinned.then(|| Partitioning::UnknownPartitioning(groups.len()));
    let cfg = FileScanConfigBuilder::from(cfg.clone())
        .with_file_groups(groups)
        .with_output_partitioning(declared)
        .build();
    Ok(DataSourceExec::from_data_source(cfg))
}

/// `plan` with its file scans, in pre-order, replaced by what `next` gives, and runtime state
/// reset (as [`rebuild`] does).
fn substitute(
    plan: &Arc<dyn ExecutionPlan>,
    next: &mut dyn FnMut() -> Result<Arc<dyn ExecutionPlan>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    if file_config(plan.as_ref()).is_some() {
        return next();
    }
    let children = plan
        .children()
        .into_iter()
        .map(|c| substitute(c, next))
        .collect::<Result<Vec<_>>>()?;
    let rebuilt = if children.is_empty() {
        plan.clone()
    } else {
        plan.clone().replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?
    };
    rebuilt.reset_state()
}

impl SlicedExec {
    /// `template` run over slices of its scans: `scans` are the template's file scans (in
    /// pre-order), each with the same number of file groups, one per slice.
    pub fn try_new(
        template: Arc<dyn ExecutionPlan>,
        scans: Vec<Arc<dyn ExecutionPlan>>,
        description: String,
    ) -> Result<SlicedExec> {
        let mut placeholders = Vec::new();
        file_scans(&template, &mut placeholders);
        if placeholders.len() != scans.len() {
            return Err(DataFusionError::Internal(format!(
                "SlicedExec: the subtree has {} file scans but {} were given",
                placeholders.len(),
                scans.len()
            )));
        }
        let mut groups = Vec::with_capacity(scans.len());
        for s in &scans {
            let Some(cfg) = file_config(s.as_ref()) else {
                return Err(DataFusionError::Internal(format!(
                    "SlicedExec: {} is not a file scan",
                    s.name()
                )));
            };
            groups.push(cfg.file_groups.len());
        }
        let slices = groups.first().copied();
        if groups.iter().any(|&n| Some(n) != slices) {
            return Err(DataFusionError::Internal(format!(
                "SlicedExec ({description}): its scans are not sliced alike (file groups per \
                 scan: {groups:?})"
            )));
        }
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(template.schema()),
            Partitioning::UnknownPartitioning(slices.unwrap_or(1)),
            template.properties().emission_type,
            Boundedness::Bounded,
        ));
        Ok(SlicedExec {
            template,
            scans,
            description,
            props,
        })
    }

    /// `node`'s subtree run over `slices` slices; `select(file, i)`: whether slice `i` reads
    /// `file`. Repartitions inside are removed, as when the node runs in process.
    fn of(
        subtree: &Arc<dyn ExecutionPlan>,
        slices: usize,
        select: &dyn Fn(&PartitionedFile, usize) -> bool,
        description: String,
    ) -> Result<SlicedExec> {
        let whole = rebuild(subtree, &|_| true)?;
        let mut scans = Vec::new();
        file_scans(&whole, &mut scans);
        let sliced = scans
            .iter()
            .map(|scan| {
                let files: Vec<PartitionedFile> = file_config(scan.as_ref())
                    .map(|c| {
                        c.file_groups
                            .iter()
                            .flat_map(|g| g.files().to_vec())
                            .collect()
                    })
                    .unwrap_or_default();
                let groups = (0..slices)
                    .map(|i| {
                        FileGroup::new(files.iter().filter(|f| select(f, i)).cloned().collect())
                    })
                    .collect();
                with_groups(scan, groups, true)
            })
            .collect::<Result<Vec<_>>>()?;
        // Each placeholder keeps its own scan's settings (schema, projection, filters).
        let mut k = 0;
        let template = substitute(&whole, &mut || {
            let scan = scans
                .get(k)
                .ok_or_else(|| DataFusionError::Internal("SlicedExec: the scans changed".into()))?;
            k += 1;
            with_groups(scan, vec![FileGroup::new(vec![])], false)
        })?;
        SlicedExec::try_new(template, sliced, description)
    }

    /// The subtree each slice runs (its file scans reading nothing).
    pub fn template(&self) -> &Arc<dyn ExecutionPlan> {
        &self.template
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// Output partitions (slices).
    pub fn slices(&self) -> usize {
        self.props.partitioning.partition_count()
    }
}

impl DisplayAs for SlicedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SlicedExec: {}, slices={} (slice i of every scan together, no shuffle), runs {}",
            self.description,
            self.slices(),
            datafusion::physical_plan::displayable(self.template.as_ref())
                .one_line()
                .to_string()
                .trim_end()
        )
    }
}

impl ExecutionPlan for SlicedExec {
    fn name(&self) -> &str {
        "SlicedExec"
    }
    fn schema(&self) -> SchemaRef {
        self.template.schema()
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.scans.iter().collect()
    }
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false; self.scans.len()]
    }
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(SlicedExec::try_new(
            self.template.clone(),
            children,
            self.description.clone(),
        )?))
    }
    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut k = 0;
        let plan = substitute(&self.template, &mut || {
            let scan = self.scans.get(k).ok_or_else(|| {
                DataFusionError::Internal("SlicedExec: fewer scans than the subtree has".into())
            })?;
            k += 1;
            let group = file_config(scan.as_ref())
                .and_then(|c| c.file_groups.get(partition).cloned())
                .unwrap_or_else(|| FileGroup::new(vec![]));
            with_groups(scan, vec![group], false)
        })?;
        execute_as_one(plan, context)
    }
}

/// `plan` with every co-located node ([`BucketParallelExec`], [`PartitionParallelExec`])
/// reshaped as a [`SlicedExec`], for a distributed engine.
pub fn for_cluster(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let any = node.as_ref() as &dyn Any;
        let sliced = if let Some(b) = any.downcast_ref::<BucketParallelExec>() {
            b.sliced()?
        } else if let Some(p) = any.downcast_ref::<PartitionParallelExec>() {
            p.sliced()?
        } else {
            return Ok(Transformed::no(node));
        };
        Ok(Transformed::yes(Arc::new(sliced) as Arc<dyn ExecutionPlan>))
    })
    .map(|t| t.data)
}

impl BucketParallelExec {
    /// This node for a distributed engine: slice `i` is bucket `i` of every scan.
    pub(crate) fn sliced(&self) -> Result<SlicedExec> {
        use super::bucket_join::bucket_of;
        SlicedExec::of(
            self.template(),
            self.num_buckets() as usize,
            &|f, i| bucket_of(f).is_some_and(|b| b.bucket as usize == i),
            self.description().to_string(),
        )
    }
}

impl PartitionParallelExec {
    /// This node for a distributed engine: slice `i` is share `i` of the partition values.
    pub(crate) fn sliced(&self) -> Result<SlicedExec> {
        let shares = self.shares();
        SlicedExec::of(
            self.template(),
            shares.len(),
            &|f, i| shares[i].contains(&f.object_meta.location.to_string()),
            self.description().to_string(),
        )
    }
}
