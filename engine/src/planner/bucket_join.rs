//! Co-located execution on Hive buckets.
//!
//! DataFusion repartitions by its own hash, which is not Hive's, so declaring bucket files as
//! `Partitioning::Hash` would silently lose rows (apache/datafusion#23436). Instead, this rule
//! finds a hash join whose two sides scan co-bucketed tables (same bucket count, same hash
//! version, join key = the bucket column on both sides), or an aggregation grouped by the
//! bucket key, and replaces the subtree with a [`BucketParallelExec`]: output partition `i`
//! runs a private copy of the subtree whose scans read only bucket `i`'s files, with every
//! repartition removed. Each copy is a plain single-partition plan, correct whatever DataFusion's
//! hash; runtime state (dynamic filters, shared build sides) is reset per copy. When anything
//! does not fit, the original plan is kept.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::sanity_checker::SanityCheckPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

use crate::table::bucket::BucketFile;

/// What a side of the subtree reads.
#[derive(Debug, Clone)]
struct Side {
    table: String,
    num_buckets: u32,
    version: u8,
    column_type: DataType,
}

pub(crate) fn bucket_of(f: &PartitionedFile) -> Option<&BucketFile> {
    f.extensions.get::<BucketFile>()
}

pub(crate) fn file_config(plan: &dyn ExecutionPlan) -> Option<&FileScanConfig> {
    let ds = (plan as &dyn Any).downcast_ref::<DataSourceExec>()?;
    (ds.data_source().as_ref() as &dyn Any).downcast_ref::<FileScanConfig>()
}

pub(crate) fn column_name(e: &Arc<dyn datafusion::physical_expr::PhysicalExpr>) -> Option<String> {
    (e.as_ref() as &dyn Any)
        .downcast_ref::<Column>()
        .map(|c| c.name().to_string())
}

/// Whether a projection passes `key` through under its own name (not renamed or computed).
pub(crate) fn passes_through(exprs: &[ProjectionExpr], key: &str) -> bool {
    exprs
        .iter()
        .any(|pe| pe.alias == key && column_name(&pe.expr).as_deref() == Some(key))
}

/// Executes a rebuilt copy of a subtree as one stream (merging it if it has several
/// partitions, e.g. a scan with no files).
pub(crate) fn execute_as_one(
    plan: Arc<dyn ExecutionPlan>,
    context: Arc<TaskContext>,
) -> Result<SendableRecordBatchStream> {
    if plan.properties().partitioning.partition_count() == 1 {
        return plan.execute(0, context);
    }
    Arc::new(CoalescePartitionsExec::new(plan)).execute(0, context)
}

/// Follows `key` (a column name) down a chain of operators to one bucketed scan whose bucket
/// column it is. `shuffled` records whether a repartition was crossed. The error says why not
/// (EXPLAIN shows it).
fn analyze(plan: &Arc<dyn ExecutionPlan>, key: &str, shuffled: &mut bool) -> Result<Side, String> {
    let any = plan.as_ref() as &dyn Any;
    // A limit inside a side would be applied per bucket: keep the normal plan.
    if plan.fetch().is_some() {
        return Err(format!("a limit ({}) sits below it", plan.name()));
    }
    if let Some(cfg) = file_config(plan.as_ref()) {
        let files: Vec<&PartitionedFile> = cfg.file_groups.iter().flat_map(|g| g.files()).collect();
        let Some(first) = files.first() else {
            return Err("a scan selects no files".into());
        };
        let Some(first) = bucket_of(first).cloned() else {
            return Err("a scan reads a table that is not bucketed".into());
        };
        if first.column != key {
            return Err(format!(
                "{key} is not the bucket column of {} ({})",
                first.table, first.column
            ));
        }
        if cfg.limit.is_some() {
            return Err(format!("the scan of {} has a limit", first.table));
        }
        // The key must be the bucket column itself, not a renamed or computed column.
        if let Some(projection) = cfg.file_source().projection()
            && !passes_through(projection.as_ref(), key)
        {
            return Err(format!("{key} is computed or renamed in the scan"));
        }
        for f in &files {
            let ok = bucket_of(f).is_some_and(|b| {
                b.table == first.table
                    && b.num_buckets == first.num_buckets
                    && b.bucket < b.num_buckets
            });
            if !ok {
                return Err(format!(
                    "the files of {} are not all in its {} buckets",
                    first.table, first.num_buckets
                ));
            }
        }
        return Ok(Side {
            table: first.table,
            num_buckets: first.num_buckets,
            version: first.version,
            column_type: first.column_type,
        });
    }
    if let Some(b) = any.downcast_ref::<BucketParallelExec>() {
        // An already co-located subtree: rows are partitioned by bucket of its key.
        if b.key != key {
            return Err(format!("a co-located subtree below is keyed on {}", b.key));
        }
        *shuffled = true;
        return Ok(b.side.clone());
    }
    if plan.schema().field_with_name(key).is_err() {
        return Err(format!("{} does not pass {key} through", plan.name()));
    }
    if let Some(r) = any.downcast_ref::<RepartitionExec>() {
        match r.partitioning() {
            Partitioning::Hash(exprs, _) => {
                if exprs.len() != 1 || column_name(&exprs[0]).as_deref() != Some(key) {
                    return Err(format!("a repartition below is not on {key} alone"));
                }
                *shuffled = true;
            }
            Partitioning::RoundRobinBatch(_) => {}
            other => return Err(format!("a repartition below is {other}")),
        }
        return analyze(r.input(), key, shuffled);
    }
    if any.is::<FilterExec>()
        || any.is::<CoalescePartitionsExec>()
        || plan.name() == "CoalesceBatchesExec"
    {
        let Some(child) = plan.children().into_iter().next() else {
            return Err(format!("{} has no input", plan.name()));
        };
        return analyze(child, key, shuffled);
    }
    if let Some(p) = any.downcast_ref::<ProjectionExec>() {
        // The key must pass through under its own name.
        if !passes_through(p.expr(), key) {
            return Err(format!("{key} is computed or renamed by a projection"));
        }
        return analyze(p.input(), key, shuffled);
    }
    if let Some(a) = any.downcast_ref::<AggregateExec>() {
        let grouped = a
            .group_expr()
            .expr()
            .iter()
            .any(|(e, name)| name == key && column_name(e).as_deref() == Some(key));
        if !grouped || a.group_expr().expr().is_empty() {
            return Err(format!("an aggregation below does not group by {key}"));
        }
        return analyze(a.input(), key, shuffled);
    }
    Err(format!("{} sits between it and the scan", plan.name()))
}

/// A copy of `plan` that reads only `bucket`, with repartitions removed and runtime state reset.
fn for_bucket(plan: &Arc<dyn ExecutionPlan>, bucket: u32) -> Result<Arc<dyn ExecutionPlan>> {
    rebuild(plan, &|f| {
        bucket_of(f).map(|b| b.bucket == bucket).unwrap_or(false)
    })
}

/// Rebuilds `plan` with each scan reading one file group (the files `keep` accepts),
/// repartitions removed and runtime state reset.
pub(crate) fn rebuild(
    plan: &Arc<dyn ExecutionPlan>,
    keep: &dyn Fn(&PartitionedFile) -> bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(cfg) = file_config(plan.as_ref()) {
        let files: Vec<PartitionedFile> = cfg
            .file_groups
            .iter()
            .flat_map(|g| g.files().iter().cloned())
            .filter(|f| keep(f))
            .collect();
        let new_cfg = FileScanConfigBuilder::from(cfg.clone())
            .with_file_groups(vec![FileGroup::new(files)])
            .build();
        return Ok(DataSourceExec::from_data_source(new_cfg));
    }
    let any = plan.as_ref() as &dyn Any;
    if let Some(b) = any.downcast_ref::<BucketParallelExec>() {
        return rebuild(&b.template, keep);
    }
    if let Some(r) = any.downcast_ref::<RepartitionExec>() {
        return rebuild(r.input(), keep);
    }
    if any.is::<CoalescePartitionsExec>()
        && let Some(child) = plan.children().into_iter().next()
    {
        return rebuild(child, keep);
    }
    let children = plan
        .children()
        .into_iter()
        .map(|c| rebuild(c, keep))
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

/// Runs a subtree once per bucket; output partition `i` is bucket `i`.
#[derive(Debug)]
pub struct BucketParallelExec {
    template: Arc<dyn ExecutionPlan>,
    num_buckets: u32,
    /// The bucket key's column name in the output, and what was read.
    key: String,
    side: Side,
    description: String,
    props: Arc<PlanProperties>,
}

/// The subtree as every bucket runs it (one file group per scan, no repartitions); this is
/// also what EXPLAIN shows.
fn strip_repartitions(plan: &Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    rebuild(plan, &|_| true)
}

impl BucketParallelExec {
    /// The subtree every bucket runs.
    pub fn template(&self) -> &Arc<dyn ExecutionPlan> {
        &self.template
    }

    pub fn num_buckets(&self) -> u32 {
        self.num_buckets
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    fn new(
        template: Arc<dyn ExecutionPlan>,
        num_buckets: u32,
        key: String,
        side: Side,
        description: String,
    ) -> Self {
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(template.schema()),
            Partitioning::UnknownPartitioning(num_buckets as usize),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        BucketParallelExec {
            template,
            num_buckets,
            key,
            side,
            description,
            props,
        }
    }
}

impl DisplayAs for BucketParallelExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BucketParallelExec: {}, buckets={} (bucket i with bucket i only, no repartition)",
            self.description, self.num_buckets
        )
    }
}

impl ExecutionPlan for BucketParallelExec {
    fn name(&self) -> &str {
        "BucketParallelExec"
    }
    fn schema(&self) -> SchemaRef {
        self.template.schema()
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.template]
    }
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let template = children
            .into_iter()
            .next()
            .unwrap_or_else(|| self.template.clone());
        Ok(Arc::new(BucketParallelExec::new(
            template,
            self.num_buckets,
            self.key.clone(),
            self.side.clone(),
            self.description.clone(),
        )))
    }
    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        execute_as_one(for_bucket(&self.template, partition as u32)?, context)
    }
}

/// The bucket-parallel subtree at the bottom of a single-child chain, if any.
fn inner_bucket_plan(plan: &Arc<dyn ExecutionPlan>) -> Option<&BucketParallelExec> {
    if let Some(b) = (plan.as_ref() as &dyn Any).downcast_ref::<BucketParallelExec>() {
        return Some(b);
    }
    let children = plan.children();
    if children.len() == 1 {
        inner_bucket_plan(children[0])
    } else {
        None
    }
}

/// A subtree the rule can run bucket by bucket: bucket count, key column, what it reads, and
/// the description EXPLAIN shows.
type Candidate = (u32, String, Side, String);

/// The physical optimizer rule that introduces [`BucketParallelExec`].
#[derive(Debug, Default)]
pub struct BucketJoinRule;

impl BucketJoinRule {
    fn try_join(join: &HashJoinExec) -> Result<Candidate, String> {
        use datafusion::common::JoinType as J;
        // Null-aware anti joins (NOT IN) look at the whole other side: not per bucket.
        if join.null_aware
            || !matches!(
                join.join_type(),
                J::Inner | J::Left | J::Right | J::Full | J::LeftSemi | J::RightSemi
            )
        {
            return Err(format!(
                "a {} join needs the whole other side",
                join.join_type()
            ));
        }
        let [(l, r)] = join.on() else {
            return Err("the join has more than one key".into());
        };
        let (Some(lk), Some(rk)) = (column_name(l), column_name(r)) else {
            return Err("a join key is computed".into());
        };
        let (mut s1, mut s2) = (false, false);
        let left = analyze(join.left(), &lk, &mut s1).map_err(|e| format!("left side: {e}"))?;
        let right = analyze(join.right(), &rk, &mut s2).map_err(|e| format!("right side: {e}"))?;
        if left.num_buckets != right.num_buckets
            || left.version != right.version
            || left.column_type != right.column_type
        {
            return Err(format!(
                "{} ({} buckets) and {} ({} buckets) are not bucketed alike",
                left.table, left.num_buckets, right.table, right.num_buckets
            ));
        }
        // The join's output keeps the left key's name when it is projected.
        let key = if join.schema().field_with_name(&lk).is_ok() {
            lk.clone()
        } else {
            rk.clone()
        };
        let description = format!(
            "co-located join of {} and {} on {lk}",
            left.table, right.table
        );
        Ok((left.num_buckets, key, left, description))
    }

    fn try_aggregate(agg: &AggregateExec) -> Result<Candidate, String> {
        if !matches!(
            agg.mode(),
            AggregateMode::FinalPartitioned
                | AggregateMode::SinglePartitioned
                | AggregateMode::Final
                | AggregateMode::Single
        ) {
            return Err("a partial aggregation".into());
        }
        let candidates: Vec<String> = agg
            .group_expr()
            .expr()
            .iter()
            .filter_map(|(e, _)| column_name(e))
            .collect();
        let mut why: Vec<String> = Vec::new();
        for key in candidates {
            let mut shuffled = false;
            match analyze(agg.input(), &key, &mut shuffled) {
                Ok(side) if shuffled => {
                    let description = match inner_bucket_plan(agg.input()) {
                        Some(inner) => format!("{}, then aggregation by {key}", inner.description),
                        None => format!("per-bucket aggregation of {} by {key}", side.table),
                    };
                    return Ok((side.num_buckets, key, side, description));
                }
                Ok(_) => why.push(format!("rows are not repartitioned on {key} below it")),
                Err(e) => why.push(e),
            }
        }
        Err(why.join("; "))
    }

    /// The rule's decision for one node: `None` if it is not a hash join or a grouped final
    /// aggregation; otherwise the bucket-parallel plan's parameters, or why not (the pattern,
    /// then the estimate). The rewrite and EXPLAIN both ask this, so they cannot disagree.
    fn decide(
        node: &Arc<dyn ExecutionPlan>,
        partitions: usize,
    ) -> Option<(&'static str, Result<Candidate, String>)> {
        let any = node.as_ref() as &dyn Any;
        let (what, found) = if let Some(j) = any.downcast_ref::<HashJoinExec>() {
            ("join", Self::try_join(j))
        } else if let Some(a) = any.downcast_ref::<AggregateExec>() {
            // Partial aggregations, and aggregations with no GROUP BY (one row), are never
            // candidates.
            if matches!(a.mode(), AggregateMode::Partial) || a.group_expr().expr().is_empty() {
                return None;
            }
            ("aggregation", Self::try_aggregate(a))
        } else {
            return None;
        };
        let found = found.and_then(|f| estimate(node, f.0, partitions).map(|()| f));
        Some((what, found))
    }

    /// Why each hash join and final aggregation of a finished plan is or is not co-located,
    /// for EXPLAIN (`partitions`: the session's target partitions, as the rule saw them).
    pub fn explain(plan: &Arc<dyn ExecutionPlan>, partitions: usize) -> Vec<String> {
        let mut notes = Vec::new();
        explain_into(plan, partitions, &mut notes);
        notes
    }
}

/// Bytes the scans below `plan` read, per bucket.
fn bucket_bytes(plan: &Arc<dyn ExecutionPlan>, out: &mut [u64]) {
    if let Some(cfg) = file_config(plan.as_ref()) {
        for f in cfg.file_groups.iter().flat_map(|g| g.files()) {
            if let Some(b) = bucket_of(f)
                && let Some(slot) = out.get_mut(b.bucket as usize)
            {
                *slot += f.object_meta.size;
            }
        }
        return;
    }
    for c in plan.children() {
        bucket_bytes(c, out);
    }
}

/// Whether running `plan` bucket by bucket on `partitions` partitions is expected to be no
/// slower than the normal plan. Bucket by bucket, the longest partition does at least the
/// largest bucket's share of the bytes read (after partition and bucket pruning), and at least
/// 1/min(buckets, partitions) of them; the normal plan spreads the work evenly over all
/// partitions but repartitions both sides, so up to 1.5× its even share is accepted.
fn estimate(plan: &Arc<dyn ExecutionPlan>, buckets: u32, partitions: usize) -> Result<(), String> {
    let mut bytes = vec![0u64; buckets as usize];
    bucket_bytes(plan, &mut bytes);
    let total: u64 = bytes.iter().sum();
    if total == 0 || partitions <= 1 || buckets == 0 {
        return Ok(());
    }
    let largest = bytes.iter().copied().max().unwrap_or(0);
    let share = largest as f64 / total as f64;
    let longest = share.max(1.0 / (buckets as usize).min(partitions) as f64);
    let even = 1.0 / partitions as f64;
    if longest <= 1.5 * even {
        return Ok(());
    }
    Err(format!(
        "by estimate: bucket by bucket the longest of {partitions} partitions would do {:.0}% of the {:.1} MiB read (the largest of {buckets} buckets holds {:.0}%), against {:.0}% each with a repartition",
        longest * 100.0,
        total as f64 / 1048576.0,
        share * 100.0,
        even * 100.0
    ))
}

fn explain_into(plan: &Arc<dyn ExecutionPlan>, partitions: usize, notes: &mut Vec<String>) {
    let any = plan.as_ref() as &dyn Any;
    if let Some(b) = any.downcast_ref::<BucketParallelExec>() {
        notes.push(format!(
            "used: {} ({} buckets, no repartition)",
            b.description, b.num_buckets
        ));
        return;
    }
    if any.is::<super::PartitionParallelExec>() {
        notes.push("used: one-phase aggregation per share of partition values".into());
        return;
    }
    if let Some((what, Err(why))) = BucketJoinRule::decide(plan, partitions) {
        notes.push(format!("not co-located ({what}): {why}"));
    }
    for c in plan.children() {
        explain_into(c, partitions, notes);
    }
}

impl PhysicalOptimizerRule for BucketJoinRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let original = plan.clone();
        let partitions = config.execution.target_partitions.max(1);
        let rewritten = plan
            .transform_up(|node| {
                let found = Self::decide(&node, partitions).and_then(|(_, f)| f.ok());
                match found {
                    Some((n, key, side, description)) => match strip_repartitions(&node) {
                        Ok(template) => Ok(Transformed::yes(Arc::new(BucketParallelExec::new(
                            template,
                            n,
                            key,
                            side,
                            description,
                        ))
                            as Arc<dyn ExecutionPlan>)),
                        Err(_) => Ok(Transformed::no(node)),
                    },
                    None => Ok(Transformed::no(node)),
                }
            })?
            .data;
        if Arc::ptr_eq(&rewritten, &original) {
            return Ok(original);
        }
        // Keep the rewrite only if every parent's distribution requirement still holds.
        match SanityCheckPlan::new().optimize(rewritten.clone(), config) {
            Ok(_) => Ok(rewritten),
            Err(e) => {
                log::debug!("bucket-parallel plan rejected, keeping the normal plan: {e}");
                Ok(original)
            }
        }
    }

    fn name(&self) -> &str {
        "cuve_bucket_join"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
