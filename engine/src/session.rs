//! The engine and its sessions. An [`Engine`] owns the warehouse (catalog, storage, runtime); a
//! [`Session`] is one user's connection: its access view, current database and DataFusion
//! context. Every front end (CLI, REPL, Flight SQL) runs statements through
//! [`Session::execute_stream`], so parsing, access checks and metering happen in one place.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cuve_catalog::Catalog;
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use futures::TryStreamExt;

use crate::CATALOG_NAME;
use crate::access::AccessView;
use crate::catalog_view::{CatalogView, TableCache};
use crate::error::{EngineError, Result};
use crate::exec;
use crate::parse::{Params, Statement, parse_statement};
use crate::table::{QueryScans, ScanReport};
use std::time::Instant;

/// A warehouse opened for queries: catalog, storage root and execution runtime.
#[derive(Debug)]
pub struct Engine {
    home: PathBuf,
    /// Root of managed tables: `$CUVE_HOME/warehouse`, or an `s3://bucket/prefix`.
    warehouse: PathBuf,
    catalog: Arc<Catalog>,
    runtime: Arc<RuntimeEnv>,
    tables: Arc<TableCache>,
    /// Where every session's queries run when not in process (`--cluster`).
    remote: std::sync::OnceLock<Arc<dyn crate::remote::Remote>>,
}

impl Engine {
    /// Opens (creating if needed) the warehouse under `home`: `catalog.db` and `warehouse/`.
    pub fn open(home: impl AsRef<Path>) -> Result<Arc<Engine>> {
        Engine::open_with(home, None)
    }

    /// Opens the catalog under `home` with managed tables under `warehouse` (a local
    /// directory, `file:///dir` or `s3://bucket/prefix`; default `<home>/warehouse`).
    pub fn open_with(home: impl AsRef<Path>, warehouse: Option<&str>) -> Result<Arc<Engine>> {
        let home = home.as_ref().to_path_buf();
        let local = home.join("warehouse");
        std::fs::create_dir_all(&local).map_err(|e| EngineError::io(&local, e))?;
        let home = home.canonicalize().map_err(|e| EngineError::io(&home, e))?;
        let catalog = Arc::new(Catalog::open(home.join("catalog.db"))?);
        // The home remembers the warehouse it was last given (so DROP deletes, and new tables
        // go, where the earlier commands put them).
        let given = warehouse.map(str::trim).filter(|w| !w.is_empty());
        let warehouse = match given {
            Some(w) => {
                crate::storage::location::check_scheme(w)?;
                let root = if let Some(loc) = crate::storage::ObjectLocation::parse(w)? {
                    PathBuf::from(loc.display())
                } else {
                    let dir = PathBuf::from(w.strip_prefix("file://").unwrap_or(w));
                    std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
                    dir.canonicalize().map_err(|e| EngineError::io(&dir, e))?
                };
                let text = root.display().to_string();
                if catalog.setting("warehouse")?.as_deref() != Some(&text) {
                    // A new bucket is listed once, so a wrong name, endpoint or key is reported
                    // here rather than by the first write (not on every start).
                    crate::storage::dirs::is_dir(&root)?;
                    catalog.set_setting("warehouse", &text)?;
                }
                root
            }
            None => match catalog.setting("warehouse")? {
                Some(w) => PathBuf::from(w),
                None => home.join("warehouse"),
            },
        };
        // Finish publishing ingest batches a crashed process committed.
        crate::table::commit::publish_pending(&catalog)?;
        // Delete files commits replaced, once no query can still be reading them.
        crate::table::commit::vacuum(&catalog);
        // Parquet footers and page indexes stay cached across queries (256 MiB, LRU).
        let runtime = RuntimeEnvBuilder::new()
            .with_metadata_cache_limit(256 << 20)
            .with_object_store_registry(crate::storage::StoreRegistry::global())
            .build_arc()?;
        Ok(Arc::new(Engine {
            home,
            warehouse,
            catalog,
            runtime,
            tables: Arc::new(TableCache::default()),
            remote: Default::default(),
        }))
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Root of managed tables: `$CUVE_HOME/warehouse` unless `--warehouse` said otherwise.
    pub fn warehouse(&self) -> PathBuf {
        self.warehouse.clone()
    }

    /// Whether managed tables go to an object store.
    pub fn warehouse_is_object(&self) -> bool {
        crate::storage::is_object(&self.warehouse.display().to_string())
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Opens a session with the given access (on the engine's cluster, if it has one).
    pub fn session(self: &Arc<Self>, access: AccessView) -> Result<Session> {
        let mut s = Session::new(self.clone(), Arc::new(access))?;
        if let Some(remote) = self.remote.get() {
            s.set_remote(remote.clone());
        }
        Ok(s)
    }

    /// Runs the queries of every session opened from now on on `remote` (a cluster); set once.
    pub fn set_remote(&self, remote: Arc<dyn crate::remote::Remote>) -> Result<()> {
        self.remote
            .set(remote)
            .map_err(|_| EngineError::invalid("this engine already runs its queries on a cluster"))
    }
}

/// Result of one statement, streaming.
pub struct StatementOutput {
    pub schema: SchemaRef,
    pub stream: SendableRecordBatchStream,
    /// What the statement's scans selected (known once planning is done).
    pub scans: Vec<ScanReport>,
    /// For a statement run on a cluster: what ran where, once the stream has ended.
    pub job: Option<crate::remote::JobReport>,
}

/// Result of one statement, collected.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub scans: Vec<ScanReport>,
}

impl QueryOutput {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// Placeholder names (`$1`, ...) and the types the plan gives them.
pub type ParameterTypes = Vec<(String, Option<DataType>)>;

/// One user's connection to the engine.
pub struct Session {
    pub(crate) engine: Arc<Engine>,
    pub(crate) ctx: SessionContext,
    pub(crate) access: Arc<AccessView>,
    pub(crate) scans: Arc<QueryScans>,
    pub(crate) current_db: String,
    /// The bound logical plan the last `plan_schema` made, taken by the next run of the same
    /// statement and values, so a front end that announces a schema before it streams (Flight
    /// SQL's GetFlightInfo, then DoGet) plans a statement once. Files are listed when the plan
    /// is executed, never here.
    pub(crate) described: Option<Described>,
    /// Where queries run when not in process (`--cluster`).
    pub(crate) remote: Option<Arc<dyn crate::remote::Remote>>,
}

/// A logical plan kept between describing a statement and running it.
pub(crate) struct Described {
    sql: String,
    params: Params,
    plan: LogicalPlan,
    at: Instant,
}

/// How long a described plan waits for its run.
const DESCRIBED_TTL: std::time::Duration = std::time::Duration::from_secs(10);

impl Session {
    fn new(engine: Arc<Engine>, access: Arc<AccessView>) -> Result<Session> {
        let scans = Arc::new(QueryScans::default());
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(CATALOG_NAME, "default")
            .with_extension(scans.clone())
            // Who runs the statement, for what Cuve's own plans audit (DELETE).
            .with_extension(access.clone());
        let opts = config.options_mut();
        opts.execution.parquet.pushdown_filters = false;
        opts.execution.parquet.reorder_filters = true;
        let runtime = match access.quota.max_memory {
            // A ticket's memory limit: operators that can spill do so under it.
            // (The engine's caches, e.g. Parquet footers, are shared.)
            Some(limit) => RuntimeEnvBuilder::from_runtime_env(&engine.runtime)
                .with_memory_pool(Arc::new(FairSpillPool::new(limit as usize)))
                .build_arc()?,
            None => engine.runtime.clone(),
        };
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(crate::planner::BucketJoinRule))
            .with_physical_optimizer_rule(Arc::new(crate::planner::PartitionAggregateRule))
            .build();
        let ctx = SessionContext::new_with_state(state);
        // After DataFusion's own analyzer rules (type coercion inserts the casts it checks).
        ctx.add_analyzer_rule(Arc::new(crate::planner::Date64Guard));
        ctx.register_catalog(
            CATALOG_NAME,
            Arc::new(CatalogView {
                catalog: engine.catalog.clone(),
                access: access.clone(),
                cache: engine.tables.clone(),
            }),
        );
        cuve_udf::register_all(&ctx)?;
        if crate::faults::enabled() {
            ctx.register_udf(crate::faults::panic_udf());
        }
        Ok(Session {
            engine,
            ctx,
            access,
            scans,
            current_db: "default".into(),
            described: None,
            remote: None,
        })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn access(&self) -> &AccessView {
        &self.access
    }

    /// The DataFusion context (for front ends that need its state, e.g. completion).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The database unqualified names resolve in (`USE db`).
    pub fn current_database(&self) -> &str {
        &self.current_db
    }

    pub(crate) fn set_current_database(&mut self, db: &str) {
        self.current_db = db.to_string();
        self.ctx
            .state_ref()
            .write()
            .config_mut()
            .options_mut()
            .catalog
            .default_schema = db.to_string();
    }

    /// The databases this session may see, sorted.
    pub fn databases(&self) -> Vec<String> {
        let mut names = self
            .ctx
            .catalog(CATALOG_NAME)
            .map(|c| c.schema_names())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The tables of `db` this session may see, sorted, with their schemas.
    pub async fn tables(&self, db: &str) -> Vec<(String, SchemaRef)> {
        let Some(schema) = self.ctx.catalog(CATALOG_NAME).and_then(|c| c.schema(db)) else {
            return vec![];
        };
        let mut names = schema.table_names();
        names.sort();
        let mut out = Vec::new();
        for t in names {
            if let Ok(Some(p)) = schema.table(&t).await {
                out.push((t, p.schema()));
            }
        }
        out
    }

    /// Runs this session's queries on `remote` (a cluster): its settings and the ticket's memory
    /// limit (for the executors) are applied. Co-located plans go as
    /// [`SlicedExec`](crate::planner::SlicedExec)s.
    pub fn set_remote(&mut self, remote: Arc<dyn crate::remote::Remote>) {
        let state = self.ctx.state_ref();
        let mut state = state.write();
        let job = crate::remote::JobOptions {
            memory_limit: self.access.quota.max_memory.unwrap_or(0) as usize,
        };
        let config = remote
            .prepare(state.config().clone())
            .with_option_extension(job);
        *state.config_mut() = config;
        drop(state);
        self.remote = Some(remote);
    }

    /// Turns co-located (bucket-by-bucket) joins and aggregations on or off for this session
    /// (on by default; off gives DataFusion's normal repartitioned plans).
    pub fn set_bucket_optimizations(&mut self, on: bool) {
        self.ctx
            .state_ref()
            .write()
            .config_mut()
            .set_extension(Arc::new(crate::table::provider::BucketSettings {
                colocated: on,
            }));
    }

    /// Runs one statement and collects its result.
    pub async fn execute(&mut self, sql: &str) -> Result<QueryOutput> {
        self.execute_with(sql, &Params::None).await
    }

    /// Runs one statement with parameter values and collects its result.
    pub async fn execute_with(&mut self, sql: &str, params: &Params) -> Result<QueryOutput> {
        let out = self.execute_stream_with(sql, params).await?;
        let batches: Vec<RecordBatch> = out
            .stream
            .try_collect()
            .await
            .map_err(EngineError::from_datafusion)?;
        Ok(QueryOutput {
            schema: out.schema,
            batches,
            scans: out.scans,
        })
    }

    /// Runs one statement, streaming its result. Every statement is admitted, metered and
    /// audited here, whatever the front end.
    pub async fn execute_stream(&mut self, sql: &str) -> Result<StatementOutput> {
        self.execute_stream_with(sql, &Params::None).await
    }

    /// Runs one statement with values for its placeholders (`$name`, `$1`), streaming.
    /// Values are bound into the plan, never pasted into the text (see [`crate::parse::params`]).
    pub async fn execute_stream_with(
        &mut self,
        sql: &str,
        params: &Params,
    ) -> Result<StatementOutput> {
        let started = Instant::now();
        self.scans.take();
        let result = crate::error::catch_panic(self.execute_inner(sql, params, started)).await;
        if let Err(e) = &result {
            let decision = match e.kind() {
                crate::error::ErrorKind::Denied | crate::error::ErrorKind::Quota => "deny",
                _ => "error",
            };
            let resources = self.scans.take().into_iter().map(|s| s.table).collect();
            exec::record(
                self.engine.catalog(),
                &self.access,
                sql,
                resources,
                decision,
                Some(e.user_message()),
                exec::Admitted {
                    bytes: 0,
                    charged: false,
                },
                0,
                started,
            );
        }
        result
    }

    async fn execute_inner(
        &mut self,
        sql: &str,
        params: &Params,
        started: Instant,
    ) -> Result<StatementOutput> {
        let stmt = parse_with(sql, params)?;
        let df_stmt = match stmt {
            Statement::Sql(stmt) => *stmt,
            Statement::Insert {
                table,
                overwrite,
                columns,
                partition,
                source,
            } => self.rewrite_insert(&table, overwrite, &columns, partition.as_ref(), source)?,
            other => {
                let batches = self.run_front(other).await?;
                let scans = self.scans.take();
                let resources = scans.iter().map(|s| s.table.clone()).collect();
                let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
                exec::record(
                    self.engine.catalog(),
                    &self.access,
                    sql,
                    resources,
                    "allow",
                    None,
                    exec::Admitted {
                        bytes: 0,
                        charged: false,
                    },
                    rows,
                    started,
                );
                return Ok(batches_output(batches, scans));
            }
        };
        self.run_admitted(sql, df_stmt, params, started).await
    }

    /// Runs a DataFusion statement under the ticket's limits: a concurrency slot, the byte
    /// quota checked against what the plan will scan, the run-time limit, and usage and audit
    /// recorded (as `audit_sql`, the text the statement came from) when the stream ends.
    /// Statements Cuve runs itself use it for the queries inside them (CTAS), so none escapes
    /// the limits.
    pub(crate) async fn run_admitted(
        &mut self,
        audit_sql: &str,
        stmt: DfStatement,
        params: &Params,
        started: Instant,
    ) -> Result<StatementOutput> {
        let slot = exec::acquire_slot(self.engine.catalog(), &self.access).await?;
        let out = self.run_datafusion(audit_sql, stmt, params).await?;
        let bytes = exec::admit_bytes(self.engine.catalog(), &self.access, &out.scans)?;
        let resources = out.scans.iter().map(|s| s.table.clone()).collect();
        let stream = exec::MeteredStream::new(
            out.stream,
            self.engine.catalog().clone(),
            self.access.clone(),
            audit_sql.to_string(),
            resources,
            bytes,
            started,
            slot,
        );
        Ok(StatementOutput {
            schema: out.schema,
            stream: Box::pin(stream),
            scans: out.scans,
            job: out.job,
        })
    }

    /// The schema a statement's result will have, without running it (metadata statements are
    /// cheap and run; statements that change something are not run and report no columns).
    /// Front ends that announce a schema before streaming (Flight SQL) use this.
    pub async fn plan_schema(&mut self, sql: &str, params: &Params) -> Result<SchemaRef> {
        Ok(crate::error::catch_panic(self.describe_inner(sql, params))
            .await?
            .0)
    }

    /// The schema of a statement not bound yet and the types its placeholders take (`$1`,
    /// `$2`, ... in order; `None` where the plan does not tell), from one logical plan.
    pub async fn describe(&mut self, sql: &str) -> Result<(SchemaRef, ParameterTypes)> {
        crate::error::catch_panic(self.describe_inner(sql, &Params::None)).await
    }

    async fn describe_inner(
        &mut self,
        sql: &str,
        params: &Params,
    ) -> Result<(SchemaRef, ParameterTypes)> {
        let none = |schema| Ok((schema, Vec::new()));
        self.scans.take();
        let df_stmt = match parse_with(sql, params)? {
            Statement::Sql(stmt) => *stmt,
            Statement::Insert {
                table,
                overwrite,
                columns,
                partition,
                source,
            } => {
                // Validated now; a write reports no columns (front ends run it eagerly).
                self.rewrite_insert(&table, overwrite, &columns, partition.as_ref(), source)?;
                return none(Arc::new(Schema::empty()));
            }
            stmt @ (Statement::ShowDatabases { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowPartitions(_)
            | Statement::ShowCreateTable(_)
            | Statement::ShowTableStats(_)
            | Statement::ShowFunctions { .. }
            | Statement::DescribeFunction(_)
            | Statement::Describe { .. }) => {
                let batches = self.run_front(stmt).await?;
                return none(batches_output(batches, vec![]).schema);
            }
            _ => return none(Arc::new(Schema::empty())),
        };
        let plan = self.plan_statement(df_stmt).await?;
        let mut types: ParameterTypes = plan
            .get_parameter_types()
            .map(|t| t.into_iter().collect())
            .unwrap_or_default();
        types.sort_by_key(|(k, _)| k.trim_start_matches('$').parse::<usize>().unwrap_or(0));
        // Bound when values came, or when the statement has no placeholders to bind.
        let bound = !params.is_none() || plan.get_parameter_types().is_ok_and(|p| p.is_empty());
        let plan = if bound {
            crate::parse::params::bind(plan, params)?
        } else {
            // Not bound yet (a prepared statement): the schema is what the plan says so far.
            plan
        };
        self.check_plan(&plan)?;
        if matches!(
            plan,
            LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_)
        ) {
            return Ok((Arc::new(Schema::empty()), types));
        }
        // The logical plan's schema is the result's: no physical plan (no file listing or
        // footer reads) just to announce it.
        self.scans.take();
        let schema = Arc::new(plan.schema().as_arrow().clone());
        if bound {
            self.described = Some(Described {
                sql: sql.to_string(),
                params: params.clone(),
                plan,
                at: Instant::now(),
            });
        }
        Ok((schema, types))
    }

    /// Why Cuve's co-located and per-partition plans were or were not used, for EXPLAIN: from
    /// the executed plan under EXPLAIN ANALYZE, from the statement's own physical plan (planned
    /// again, its scan reports dropped) under EXPLAIN.
    async fn plan_notes(
        &self,
        physical: &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        df: &datafusion::dataframe::DataFrame,
    ) -> Vec<String> {
        let partitions = self.ctx.state().config().target_partitions();
        let Some(inner) = self.explained_plan(physical, df).await else {
            return Vec::new();
        };
        let mut notes = crate::planner::BucketJoinRule::explain(&inner, partitions);
        if let Some(remote) = &self.remote {
            match crate::planner::for_cluster(inner.clone()) {
                Ok(sliced) => notes.extend(remote.stages(&sliced, self.ctx.state().config())),
                Err(e) => notes.push(format!("cannot reshape the plan for the cluster: {e}")),
            }
        }
        notes
    }

    /// The physical plan an EXPLAIN (ANALYZE) describes.
    async fn explained_plan(
        &self,
        physical: &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        df: &datafusion::dataframe::DataFrame,
    ) -> Option<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        if let Some(input) = physical.children().first() {
            return Some((*input).clone());
        }
        let LogicalPlan::Explain(e) = df.logical_plan() else {
            return None;
        };
        let planned = self.ctx.state().create_physical_plan(&e.plan).await;
        self.scans.take();
        planned.ok()
    }

    /// DataFusion's logical plan of one parsed statement: checked against the size limits
    /// ([`crate::parse::limits`]), Hive's `LATERAL VIEW` / `explode` rewritten in the tree into
    /// DataFusion's `unnest`, then planned from the tree (never from re-printed text).
    pub(crate) async fn plan_statement(&self, mut stmt: DfStatement) -> Result<LogicalPlan> {
        crate::parse::limits::check(&stmt)?;
        rewrite_hive(&mut stmt)?;
        self.ctx
            .state()
            .statement_to_plan(stmt)
            .await
            .map_err(EngineError::from_datafusion)
    }

    /// Plans and runs a statement through DataFusion; `sql` is the text it was parsed from.
    pub(crate) async fn run_datafusion(
        &mut self,
        sql: &str,
        stmt: DfStatement,
        params: &Params,
    ) -> Result<StatementOutput> {
        let plan = match self.described.take() {
            // Planned (and checked) a moment ago by `plan_schema` for this very statement.
            Some(d) if d.sql == sql && d.at.elapsed() < DESCRIBED_TTL && d.params == *params => {
                d.plan
            }
            _ => {
                let plan = self.plan_statement(stmt).await?;
                let plan = crate::parse::params::bind(plan, params)?;
                self.check_plan(&plan)?;
                plan
            }
        };
        let explain = matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
        let analyze = matches!(plan, LogicalPlan::Analyze(_));
        let df = self
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(EngineError::from_datafusion)?;
        if explain {
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let task = Arc::new(df.task_ctx());
            let physical = df
                .create_physical_plan()
                .await
                .map_err(EngineError::from_datafusion)?;
            let scans = self.scans.take();
            let notes = self.plan_notes(&physical, &df).await;
            let run = datafusion::physical_plan::collect(physical, task);
            // EXPLAIN ANALYZE runs the query: the byte quota is checked before, and the run
            // time limit applies, as for the query itself.
            let mut batches = if analyze {
                exec::check_bytes(self.engine.catalog(), &self.access, &scans)?;
                match self.access.quota.max_runtime_secs {
                    Some(secs) => tokio::time::timeout(
                        std::time::Duration::from_secs_f64(secs.max(0.0)),
                        run,
                    )
                    .await
                    .map_err(|_| {
                        EngineError::Quota(format!(
                            "the query ran longer than the ticket's max_runtime ({secs}s) and was cancelled"
                        ))
                    })?,
                    None => run.await,
                }
            } else {
                run.await
            }
            .map_err(EngineError::from_datafusion)?;
            if schema.fields().len() == 2 {
                let text: Vec<String> = scans.iter().map(|s| s.to_string()).collect();
                for (kind, lines) in [("cuve_scan", text), ("cuve_plan", notes)] {
                    if lines.is_empty() {
                        continue;
                    }
                    let extra = RecordBatch::try_new(
                        schema.clone(),
                        vec![
                            Arc::new(StringArray::from(vec![kind])),
                            Arc::new(StringArray::from(vec![lines.join("\n")])),
                        ],
                    );
                    if let Ok(extra) = extra {
                        batches.push(extra);
                    }
                }
            }
            let stream = MemoryStream::try_new(batches, schema.clone(), None)?;
            return Ok(StatementOutput {
                schema,
                stream: Box::pin(stream),
                scans,
                job: None,
            });
        }
        if let Some(remote) = self.remote.clone() {
            let task = Arc::new(df.task_ctx());
            let config = self.ctx.state().config().clone();
            let physical = df
                .create_physical_plan()
                .await
                .map_err(EngineError::from_datafusion)?;
            let physical =
                crate::planner::for_cluster(physical).map_err(EngineError::from_datafusion)?;
            let (stream, job) = if remote.accepts(&physical) {
                let (stream, job) = remote.execute(physical, config).await?;
                (stream, Some(job))
            } else {
                let stream = datafusion::physical_plan::execute_stream(physical, task)
                    .map_err(EngineError::from_datafusion)?;
                (stream, None)
            };
            return Ok(StatementOutput {
                schema: stream.schema(),
                stream,
                scans: self.scans.take(),
                job,
            });
        }
        let stream = df
            .execute_stream()
            .await
            .map_err(EngineError::from_datafusion)?;
        Ok(StatementOutput {
            schema: stream.schema(),
            stream,
            scans: self.scans.take(),
            job: None,
        })
    }

    /// Statement kinds DataFusion would accept but Cuve does not (they would not persist or
    /// would bypass the catalog).
    fn check_plan(&self, plan: &LogicalPlan) -> Result<()> {
        use datafusion::common::tree_node::TreeNodeRecursion;
        use datafusion::logical_expr::DdlStatement as D;
        if !self.access.admin {
            let mut denial: Option<EngineError> = None;
            plan.apply_with_subqueries(|node| {
                let deny = match node {
                    LogicalPlan::Statement(
                        datafusion::logical_expr::Statement::SetVariable(_)
                        | datafusion::logical_expr::Statement::ResetVariable(_),
                    ) => Some("SET or RESET of engine settings needs an admin ticket".to_string()),
                    LogicalPlan::Copy(_) => Some("COPY ... TO needs an admin ticket".to_string()),
                    LogicalPlan::Dml(dml) => {
                        let (db, t) = match (dml.table_name.schema(), dml.table_name.table()) {
                            (Some(db), t) => (db.to_string(), t.to_string()),
                            (None, t) => (self.current_db.clone(), t.to_string()),
                        };
                        if dml.op == datafusion::logical_expr::WriteOp::Delete {
                            let may = self.access.allows(crate::access::Privilege::Delete, &db, &t)
                                || self.access.allows(crate::access::Privilege::Alter, &db, &t);
                            (!may).then(|| {
                                format!("DELETE FROM {db}.{t} needs a ticket with DELETE (or ALTER) on it")
                            })
                        } else {
                            (!self.access.allows(crate::access::Privilege::Write, &db, &t))
                                .then(|| format!("writing to {db}.{t} needs a ticket with WRITE on it"))
                        }
                    }
                    _ => None,
                };
                if let Some(msg) = deny {
                    denial = Some(EngineError::Denied(msg));
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .map_err(EngineError::from_datafusion)?;
            if let Some(e) = denial {
                return Err(e);
            }
        }
        if let LogicalPlan::Ddl(ddl) = plan {
            let what = match ddl {
                D::CreateExternalTable(_) => "this form of CREATE EXTERNAL TABLE",
                D::CreateMemoryTable(_) => "CREATE TABLE without Hive options",
                D::CreateView(_) => "CREATE VIEW",
                D::CreateCatalogSchema(_) | D::CreateCatalog(_) => "CREATE SCHEMA",
                D::DropTable(_) | D::DropView(_) | D::DropCatalogSchema(_) => "this DROP",
                _ => "this DDL statement",
            };
            return Err(EngineError::Unsupported(format!(
                "{what} is not supported: use Hive DDL (CREATE [EXTERNAL] TABLE db.t (...) [PARTITIONED BY ...] STORED AS PARQUET, DROP TABLE db.t)"
            )));
        }
        Ok(())
    }
}

/// Parses a statement. Statements Cuve runs itself (DDL, partition specs, Hive INSERT) have
/// no plan to bind values into: their placeholders become single literal tokens first.
/// Hive's `LATERAL VIEW` / `explode` rewritten into DataFusion's `unnest` (under `EXPLAIN`
/// too).
fn rewrite_hive(stmt: &mut DfStatement) -> Result<()> {
    match stmt {
        DfStatement::Statement(s) => {
            cuve_udf::rewrite_hive(s).map_err(EngineError::Unsupported)?;
        }
        DfStatement::Explain(e) => rewrite_hive(&mut e.statement)?,
        _ => {}
    }
    Ok(())
}

fn parse_with(sql: &str, params: &Params) -> Result<Statement> {
    let stmt = parse_statement(sql);
    if !matches!(stmt, Ok(Statement::Sql(_)))
        && !params.is_none()
        && crate::parse::params::has_placeholders(sql)
    {
        return parse_statement(&crate::parse::params::inline_literals(sql, params)?);
    }
    stmt
}

/// Wraps ready batches as a statement output.
pub(crate) fn batches_output(batches: Vec<RecordBatch>, scans: Vec<ScanReport>) -> StatementOutput {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    let stream = MemoryStream::try_new(batches, schema.clone(), None)
        .expect("batches share the first batch's schema");
    StatementOutput {
        schema,
        stream: Box::pin(stream),
        scans,
        job: None,
    }
}

/// A batch of string columns (SHOW / DESCRIBE output).
pub(crate) fn string_batch(columns: &[&str], rows: Vec<Vec<String>>) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays = (0..columns.len())
        .map(|i| {
            Arc::new(StringArray::from(
                rows.iter()
                    .map(|r| r.get(i).cloned())
                    .collect::<Vec<Option<String>>>(),
            )) as _
        })
        .collect();
    RecordBatch::try_new(schema, arrays).map_err(|e| EngineError::DataFusion(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::scalar::ScalarValue;

    fn first_int(out: &QueryOutput) -> i64 {
        let c = out.batches[0].column(0);
        c.as_any().downcast_ref::<Int64Array>().unwrap().value(0)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_described_statement_runs_on_the_plan_it_was_described_with() {
        let home = tempfile::tempdir().unwrap();
        let engine = Engine::open(home.path()).unwrap();
        let mut s = engine.session(AccessView::admin("t")).unwrap();
        let sql = "SELECT $1 + 1 AS x";
        let p41 = Params::Positional(vec![ScalarValue::Int64(Some(41))]);
        let schema = s.plan_schema(sql, &p41).await.unwrap();
        assert_eq!(schema.field(0).name(), "x");
        // The run takes the described plan (swapped here for a plan that answers 7, to tell).
        let Statement::Sql(stmt) = parse_statement("SELECT CAST(7 AS BIGINT) AS x").unwrap() else {
            panic!("a query is DataFusion's")
        };
        let seven = s.plan_statement(*stmt).await.unwrap();
        s.described.as_mut().unwrap().plan = seven;
        assert_eq!(first_int(&s.execute_with(sql, &p41).await.unwrap()), 7);
        assert!(s.described.is_none(), "a described plan is used once");
        // Other values, or no describe before, plan afresh.
        s.plan_schema(sql, &p41).await.unwrap();
        let p1 = Params::Positional(vec![ScalarValue::Int64(Some(1))]);
        assert_eq!(first_int(&s.execute_with(sql, &p1).await.unwrap()), 2);
        assert_eq!(first_int(&s.execute_with(sql, &p41).await.unwrap()), 42);
    }
}
