//! The engine's `Remote` over a Ballista scheduler: plans are encoded with Ballista's physical
//! codec (DataFusion's nodes plus Ballista's shuffles) and submitted as physical plans
//! (`execute_physical_plan`), so the scheduler never plans against a catalog it does not have.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballista_core::execution_plans::execute_physical_plan;
use ballista_core::extension::SessionConfigExt;
use cuve_engine::remote::{JobReport, Remote};
use cuve_engine::{EngineError, Result};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion_proto::physical_plan::{AsExecutionPlan, PhysicalExtensionCodec};
use datafusion_proto::protobuf::PhysicalPlanNode;
use futures::future::BoxFuture;

use crate::secret::{ClusterSecret, ENV};

/// A Ballista scheduler queries run on.
#[derive(Debug, Clone)]
pub struct BallistaRemote {
    /// `http://host:port` of the scheduler.
    scheduler_url: String,
    codec: Arc<dyn PhysicalExtensionCodec>,
    /// Jobs submitted so far.
    submitted: Arc<AtomicUsize>,
    /// The cluster's secret, shown to the scheduler and the executors.
    secret: Option<ClusterSecret>,
    /// The executors' task slots (`None` while the scheduler never answered), and when they
    /// were last asked for.
    slots: Arc<Mutex<Option<SlotCount>>>,
    /// Whether a count of the slots runs in the background.
    counting: Arc<AtomicBool>,
}

/// A count of the cluster's task slots (`None`: never answered) and when it was asked for.
type SlotCount = (Option<usize>, Instant);

/// How long a count of the cluster's task slots is used.
const SLOTS_TTL: Duration = Duration::from_secs(5);

impl BallistaRemote {
    /// The scheduler at `addr` (`host:port` or a URL).
    pub fn new(addr: &str) -> BallistaRemote {
        let scheduler_url = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        BallistaRemote {
            scheduler_url,
            codec: crate::codec::CuveCodec::shared(),
            submitted: Arc::default(),
            secret: None,
            slots: Arc::default(),
            counting: Arc::default(),
        }
    }

    /// The task slots of the cluster's executors. The first statement waits for the count (2 s
    /// at most); later ones take the last count and, when it is older than 5 s, start a new one
    /// in the background, so a slow or gone scheduler never delays planning.
    fn cluster_slots(&self) -> Option<usize> {
        let cached = *self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match cached {
            None => {
                let n = self.count_slots();
                self.store_slots(n);
                n
            }
            Some((n, at)) => {
                if at.elapsed() >= SLOTS_TTL && !self.counting.swap(true, Ordering::SeqCst) {
                    let this = self.clone();
                    let spawned =
                        std::thread::Builder::new()
                            .name("cuve-slots".into())
                            .spawn(move || {
                                let n = this.count_slots();
                                this.store_slots(n);
                                this.counting.store(false, Ordering::SeqCst);
                            });
                    if spawned.is_err() {
                        self.counting.store(false, Ordering::SeqCst);
                    }
                }
                n
            }
        }
    }

    /// Keeps a count (a failed one keeps the last good count, and is not asked again for 5 s).
    fn store_slots(&self, counted: Option<usize>) {
        let mut cache = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let last = cache.and_then(|(n, _)| n);
        *cache = Some((counted.or(last), Instant::now()));
    }

    /// Asks the scheduler for its executors' task slots, on a thread of its own (sessions are
    /// prepared outside any runtime's reach), 2 s at most.
    fn count_slots(&self) -> Option<usize> {
        let (base, secret) = (&self.scheduler_url, self.secret.as_ref());
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                let n = rt.block_on(async {
                    let client = crate::jobs::client(secret).ok()?;
                    let ask = crate::status::task_slots(&client, base);
                    tokio::time::timeout(Duration::from_secs(2), ask)
                        .await
                        .ok()?
                        .ok()
                });
                // A name look-up still running must not hold the statement up.
                rt.shutdown_background();
                n
            })
            .join()
            .ok()
            .flatten()
        })
    }

    /// Shows the cluster's secret to the scheduler and the executors (`CUVE_CLUSTER_SECRET`).
    pub fn with_secret(mut self, secret: Option<ClusterSecret>) -> BallistaRemote {
        self.secret = secret;
        self
    }

    /// How many jobs this remote submitted.
    pub fn submitted(&self) -> usize {
        self.submitted.load(Ordering::SeqCst)
    }
}

impl Remote for BallistaRemote {
    fn prepare(&self, config: SessionConfig) -> SessionConfig {
        // Ballista's settings (no round-robin repartition, sort-merge joins that spill, no
        // dynamic filters across stages, ...) and its config extension; but hash joins, as in
        // process: Cuve's co-located joins are hash joins (per bucket, so their build sides are
        // small), and a ticket's memory limit bounds the others as on one node.
        // Plans are cut for the cluster's task slots (DataFusion's target partitions: file
        // groups per scan, shuffle partitions), not the gateway's cores, when it has more.
        let local = config.target_partitions();
        let partitions = self.cluster_slots().map_or(local, |n| n.max(local));
        let config = config
            .upgrade_for_ballista()
            .with_target_partitions(partitions)
            .set_bool("datafusion.optimizer.prefer_hash_join", true);
        match &self.secret {
            // The connections to the scheduler and to the executors the results come from.
            Some(s) => {
                config.with_ballista_override_create_grpc_client_endpoint(s.endpoint_override())
            }
            None => config,
        }
    }

    fn accepts(&self, plan: &Arc<dyn ExecutionPlan>) -> bool {
        // Writes commit through the catalog here; plans that read no table gain nothing.
        let mut reads = false;
        let mut writes = false;
        let _ = plan.apply(|node| {
            let any = node.as_ref() as &dyn std::any::Any;
            if any.is::<DataSinkExec>() {
                writes = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            reads |= any.is::<DataSourceExec>();
            Ok(TreeNodeRecursion::Continue)
        });
        if writes || !reads {
            return false;
        }
        match PhysicalPlanNode::try_from_physical_plan(plan.clone(), self.codec.as_ref()) {
            Ok(_) => true,
            Err(e) => {
                log::debug!("runs in process (the plan does not travel): {e}");
                false
            }
        }
    }

    fn stages(&self, plan: &Arc<dyn ExecutionPlan>, config: &SessionConfig) -> Vec<String> {
        use ballista_scheduler::planner::{DefaultDistributedPlanner, DistributedPlanner};
        use datafusion::physical_plan::displayable;
        if !self.accepts(plan) {
            return vec![format!(
                "runs at the gateway, not on the cluster at {} (a write, no table read, or a \
                 node that does not travel)",
                self.scheduler_url
            )];
        }
        let job = ballista_core::JobId::new("explain");
        let stages = DefaultDistributedPlanner::new().plan_query_stages(
            &job,
            plan.clone(),
            config.options(),
        );
        match stages {
            Ok(stages) => {
                let mut out = vec![format!(
                    "runs on the cluster at {}: {} stages",
                    self.scheduler_url,
                    stages.len()
                )];
                for s in &stages {
                    let shuffle = match s.shuffle_output_partitioning() {
                        Some(p) => format!("shuffle {p}"),
                        None => "result".to_string(),
                    };
                    let node: &dyn ExecutionPlan = s.as_ref();
                    out.push(format!(
                        "stage {} ({} tasks, {shuffle}):\n{}",
                        s.stage_id(),
                        s.input_partition_count(),
                        displayable(node).indent(false)
                    ));
                }
                out
            }
            Err(e) => vec![format!("cannot split into stages: {e}")],
        }
    }

    fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: SessionConfig,
    ) -> BoxFuture<'static, Result<(SendableRecordBatchStream, JobReport)>> {
        let this = self.clone();
        this.submitted.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let session_id = format!("cuve-{:016x}", rand::random::<u64>());
            // The scheduler gives the job a session of its own; the name finds it again.
            let config = config.with_ballista_job_name(&session_id);
            let report: JobReport = {
                let (base, name) = (this.scheduler_url.clone(), session_id.clone());
                let secret = this.secret.clone();
                Arc::new(move || {
                    let (base, name) = (base.clone(), name.clone());
                    let client = crate::jobs::client(secret.as_ref());
                    Box::pin(async move {
                        let job = crate::jobs::named(&client.ok()?, &base, &name).await;
                        job.map(|j| j.line())
                    })
                })
            };
            let ballista = config.ballista_config();
            let limit = config
                .options()
                .extensions
                .get::<cuve_engine::remote::JobOptions>()
                .map_or(0, |o| o.memory_limit);
            execute_physical_plan::<PhysicalPlanNode>(
                this.scheduler_url.clone(),
                &ballista,
                plan,
                this.codec.as_ref(),
                session_id,
                config,
            )
            .await
            .map(|stream| (stream, report))
            .map_err(|e| match EngineError::from_datafusion(e) {
                // Out of memory on an executor (Ballista passes the executor's error on as text):
                // the ticket's limit, or the executor's memory.
                EngineError::DataFusion(d) if d.to_string().contains("ResourcesExhausted") => {
                    if limit > 0 {
                        EngineError::Quota(format!(
                            "the query needs more memory than the ticket's limit (max_memory \
                             {limit} bytes, for each query's tasks on each executor) on the \
                             cluster at {}: {d}",
                            this.scheduler_url
                        ))
                    } else {
                        EngineError::invalid(format!(
                            "the query needs more memory than an executor of the cluster at {} \
                             has for it ({:.0}% of its memory, shared by the queries running \
                             there): {d}",
                            this.scheduler_url,
                            crate::process::EXECUTOR_MEMORY_SHARE * 100.0
                        ))
                    }
                }
                EngineError::DataFusion(d) if d.to_string().contains("Unauthenticated") => {
                    EngineError::invalid(format!(
                        "the cluster at {} refused the query: {}",
                        this.scheduler_url,
                        if this.secret.is_some() {
                            format!("{ENV} here differs from the cluster's")
                        } else {
                            format!("it requires its secret; set {ENV} to the cluster's")
                        }
                    ))
                }
                EngineError::DataFusion(d) => EngineError::invalid(format!(
                    "the cluster at {} did not run the query: {d} (check that `cuve scheduler` \
                     runs there and its executors are up)",
                    this.scheduler_url
                )),
                ours => ours,
            })
        })
    }
}
