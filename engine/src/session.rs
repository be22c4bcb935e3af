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
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;

use crate::CATALOG_NAME;
use crate::access::AccessView;
use crate::catalog_view::{CatalogView, TableCache};
use crate::error::{EngineError, Result};
use crate::parse::{Statement, parse_statement};
use crate::table::{QueryScans, ScanReport};

/// A warehouse opened for queries: catalog, storage root and execution runtime.
#[derive(Debug)]
pub struct Engine {
    home: PathBuf,
    catalog: Arc<Catalog>,
    runtime: Arc<RuntimeEnv>,
    tables: Arc<TableCache>,
}

impl Engine {
    /// Opens (creating if needed) the warehouse under `home`: `catalog.db` and `warehouse/`.
    pub fn open(home: impl AsRef<Path>) -> Result<Arc<Engine>> {
        let home = home.as_ref().to_path_buf();
        let warehouse = home.join("warehouse");
        std::fs::create_dir_all(&warehouse).map_err(|e| EngineError::io(&warehouse, e))?;
        let home = home.canonicalize().map_err(|e| EngineError::io(&home, e))?;
        let catalog = Arc::new(Catalog::open(home.join("catalog.db"))?);
        // Finish publishing ingest batches a crashed process committed.
        crate::ingest::run::publish_pending(&catalog)?;
        let runtime = RuntimeEnvBuilder::new().build_arc()?;
        Ok(Arc::new(Engine {
            home,
            catalog,
            runtime,
            tables: Arc::new(TableCache::default()),
        }))
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Root of managed tables: `$CUVE_HOME/warehouse`.
    pub fn warehouse(&self) -> PathBuf {
        self.home.join("warehouse")
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Opens a session with the given access.
    pub fn session(self: &Arc<Self>, access: AccessView) -> Result<Session> {
        Session::new(self.clone(), Arc::new(access))
    }
}

/// Result of one statement, streaming.
pub struct StatementOutput {
    pub schema: SchemaRef,
    pub stream: SendableRecordBatchStream,
    /// What the statement's scans selected (known once planning is done).
    pub scans: Vec<ScanReport>,
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

/// One user's connection to the engine.
pub struct Session {
    pub(crate) engine: Arc<Engine>,
    pub(crate) ctx: SessionContext,
    pub(crate) access: Arc<AccessView>,
    pub(crate) scans: Arc<QueryScans>,
    pub(crate) current_db: String,
}

impl Session {
    fn new(engine: Arc<Engine>, access: Arc<AccessView>) -> Result<Session> {
        let scans = Arc::new(QueryScans::default());
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(CATALOG_NAME, "default")
            .with_extension(scans.clone());
        let opts = config.options_mut();
        opts.execution.parquet.pushdown_filters = true;
        opts.execution.parquet.reorder_filters = true;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(engine.runtime.clone())
            .with_default_features()
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_catalog(
            CATALOG_NAME,
            Arc::new(CatalogView {
                catalog: engine.catalog.clone(),
                access: access.clone(),
                cache: engine.tables.clone(),
            }),
        );
        cuve_udf::register_all(&ctx)?;
        Ok(Session {
            engine,
            ctx,
            access,
            scans,
            current_db: "default".into(),
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

    /// Runs one statement and collects its result.
    pub async fn execute(&mut self, sql: &str) -> Result<QueryOutput> {
        let out = self.execute_stream(sql).await?;
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

    /// Runs one statement, streaming its result.
    pub async fn execute_stream(&mut self, sql: &str) -> Result<StatementOutput> {
        self.scans.take();
        let stmt = parse_statement(sql)?;
        let batches = match stmt {
            Statement::Sql(sql) => return self.run_datafusion(&sql).await,
            Statement::Insert {
                table,
                overwrite,
                columns,
                partition,
                query,
            } => {
                let sql =
                    self.rewrite_insert(&table, overwrite, &columns, partition.as_ref(), &query)?;
                return self.run_datafusion(&sql).await;
            }
            other => self.run_front(other).await?,
        };
        Ok(batches_output(batches, self.scans.take()))
    }

    /// Plans and runs SQL through DataFusion.
    pub(crate) async fn run_datafusion(&mut self, sql: &str) -> Result<StatementOutput> {
        let state = self.ctx.state();
        let plan = state
            .create_logical_plan(sql)
            .await
            .map_err(EngineError::from_datafusion)?;
        self.check_plan(&plan)?;
        let explain = matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
        let df = self
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(EngineError::from_datafusion)?;
        if explain {
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let mut batches = df.collect().await.map_err(EngineError::from_datafusion)?;
            let scans = self.scans.take();
            if !scans.is_empty() && schema.fields().len() == 2 {
                let text: Vec<String> = scans.iter().map(|s| s.to_string()).collect();
                let extra = RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from(vec!["cuve_scan"])),
                        Arc::new(StringArray::from(vec![text.join("\n")])),
                    ],
                );
                if let Ok(extra) = extra {
                    batches.push(extra);
                }
            }
            let stream = MemoryStream::try_new(batches, schema.clone(), None)?;
            return Ok(StatementOutput {
                schema,
                stream: Box::pin(stream),
                scans,
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
        })
    }

    /// Statement kinds DataFusion would accept but Cuve does not (they would not persist or
    /// would bypass the catalog).
    fn check_plan(&self, plan: &LogicalPlan) -> Result<()> {
        use datafusion::logical_expr::DdlStatement as D;
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
