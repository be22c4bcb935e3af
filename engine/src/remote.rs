//! Running a session's queries on a distributed engine (a Ballista cluster, `cuve-cluster`):
//! Cuve stays the only planner and the only holder of tickets. The session parses, checks the
//! ticket's view and quotas and plans as always, reshapes its co-located nodes for a distributed
//! engine ([`SlicedExec`](crate::planner::SlicedExec)), then hands the **physical plan**, which
//! names concrete files only, to the [`Remote`]. What it does not accept (writes, plans with
//! nodes it cannot send) runs here.

use std::sync::Arc;

use datafusion::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use futures::future::BoxFuture;

use crate::error::Result;

/// Cuve's settings a job carries to the executors, next to DataFusion's and Ballista's, as
/// `cuve.*` keys.
#[derive(Debug, Clone, Default)]
pub struct JobOptions {
    /// The ticket's memory limit for one query, in bytes (0: none). An executor gives each
    /// query's tasks a pool of at most this size.
    pub memory_limit: usize,
}

/// Whether plans of a session with these settings may run on a cluster (its session carries
/// [`JobOptions`], which only a session attached to a remote has): per-file extensions such as
/// row selections do not travel, so scans must not depend on them.
pub fn for_cluster(options: &datafusion::config::ConfigOptions) -> bool {
    options.extensions.get::<JobOptions>().is_some()
}

impl ConfigExtension for JobOptions {
    const PREFIX: &'static str = "cuve";
}

impl ExtensionOptions for JobOptions {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> datafusion::error::Result<()> {
        match key {
            "memory_limit" => {
                self.memory_limit = value.parse().map_err(|_| {
                    DataFusionError::Configuration(format!(
                        "cuve.memory_limit must be a number of bytes, not {value:?}"
                    ))
                })?;
                Ok(())
            }
            _ => Err(DataFusionError::Configuration(format!(
                "no setting cuve.{key}"
            ))),
        }
    }

    /// With the prefix: a job sends these entries as they are, and the executor sets them by
    /// their full key (DataFusion's `extensions_options!` leaves the prefix out).
    fn entries(&self) -> Vec<ConfigEntry> {
        vec![ConfigEntry {
            key: format!("{}.memory_limit", Self::PREFIX),
            value: Some(self.memory_limit.to_string()),
            description: "the ticket's memory limit for one query, in bytes (0: none)",
        }]
    }
}

/// What a cluster's scheduler and executors plan and run stages with: Cuve's functions (the
/// same set, in the same order, as every session: names resolve to the same code) and object
/// stores, and no catalog.
pub fn worker_state() -> Result<datafusion::execution::SessionState> {
    let config = SessionConfig::new().with_option_extension(JobOptions::default());
    worker_state_with(config, worker_runtime()?)
}

/// The runtime of [`worker_state`]: Cuve's object stores and a Parquet footer cache.
pub fn worker_runtime() -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    Ok(datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_metadata_cache_limit(256 << 20)
        .with_object_store_registry(crate::storage::StoreRegistry::global())
        .build_arc()?)
}

/// [`worker_state`] with `config` (a job's settings) on `runtime`: built afresh, so Cuve's
/// functions are registered in their one order (names that are also a built-in's alias, such
/// as Hive's `date_format`, keep Cuve's code).
pub fn worker_state_with(
    config: SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> Result<datafusion::execution::SessionState> {
    use datafusion::execution::session_state::SessionStateBuilder;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    let ctx = datafusion::prelude::SessionContext::new_with_state(state);
    cuve_udf::register_all(&ctx)?;
    Ok(ctx.state())
}

/// A distributed engine a session submits physical plans to.
pub trait Remote: Send + Sync + std::fmt::Debug {
    /// The session settings its plans need (applied when the session is attached).
    fn prepare(&self, config: SessionConfig) -> SessionConfig;

    /// Whether it runs `plan` (else the session runs it in process).
    fn accepts(&self, plan: &Arc<dyn ExecutionPlan>) -> bool;

    /// What EXPLAIN says of `plan` on this remote: where it runs, and its stages.
    fn stages(&self, plan: &Arc<dyn ExecutionPlan>, config: &SessionConfig) -> Vec<String>;

    /// Runs `plan` and streams its result, with what the remote can tell of the job after.
    fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: SessionConfig,
    ) -> BoxFuture<'static, Result<(SendableRecordBatchStream, JobReport)>>;
}

/// Asked once a remote job's stream has ended: a line saying what ran where (for the summary
/// after a result), or `None` when the remote cannot tell.
pub type JobReport = Arc<dyn Fn() -> BoxFuture<'static, Option<String>> + Send + Sync>;
