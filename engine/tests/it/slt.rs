//! Runs every `tests/slt/*.slt` file against a fresh warehouse. Test-only sugar:
//! `EXPLAIN SCANS <query>` returns just the pruning lines of `EXPLAIN <query>` (no paths), so
//! pruning can be asserted exactly.

use std::path::PathBuf;
use std::sync::Arc;

use cuve_engine::{AccessView, Engine, EngineError, Session};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{DBOutput, DefaultColumnType};

pub struct CuveDb {
    engine: Arc<Engine>,
    session: Session,
}

#[derive(Debug)]
pub struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SltError {}

impl From<EngineError> for SltError {
    fn from(e: EngineError) -> Self {
        SltError(e.user_message())
    }
}

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(_, _) => {
            DefaultColumnType::FloatingPoint
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DefaultColumnType::Text,
        DataType::Dictionary(_, v) if v.as_ref() == &DataType::Utf8 => DefaultColumnType::Text,
        _ => DefaultColumnType::Any,
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for CuveDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let trimmed = sql.trim();
        if let Some(rest) = trimmed.strip_prefix("CONNECT AS ") {
            self.session = connect_as(&self.engine, rest)?;
            return Ok(DBOutput::StatementComplete(0));
        }
        if let Some(q) = trimmed.strip_prefix("EXPLAIN SCANS ") {
            let out = self.session.execute(&format!("EXPLAIN {q}")).await?;
            let mut rows = Vec::new();
            for b in &out.batches {
                let kind = b.column(0).as_string::<i32>();
                let plan = b.column(1).as_string::<i32>();
                for i in 0..b.num_rows() {
                    if kind.value(i) == "cuve_scan" {
                        for line in plan.value(i).lines() {
                            // bytes depend on the Parquet writer version: drop them
                            let line = line.split(", bytes read").next().unwrap_or(line);
                            rows.push(vec![line.to_string()]);
                        }
                    }
                }
            }
            return Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Text],
                rows,
            });
        }
        let out = self.session.execute(sql).await?;
        if out.schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = out
            .schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let opts = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for b in &out.batches {
            let fmts: Vec<ArrayFormatter> = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                .collect::<Result<_, _>>()
                .map_err(|e| SltError(e.to_string()))?;
            for r in 0..b.num_rows() {
                rows.push(
                    fmts.iter()
                        .zip(b.columns())
                        .map(|(f, c)| {
                            let s = f.value(r).to_string();
                            if s.is_empty() && !c.is_null(r) {
                                "(empty)".to_string()
                            } else {
                                s
                            }
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "cuve"
    }
}

/// Test-only sugar: `CONNECT AS admin`, or `CONNECT AS <user> [GRANTS 'PRIV:db.t ...']
/// [QUOTA '<json>']` issues a ticket for an analyst and switches the session to it.
fn connect_as(engine: &Arc<Engine>, rest: &str) -> Result<Session, SltError> {
    let rest = rest.trim();
    if rest == "admin" {
        return Ok(engine.session(AccessView::admin("slt"))?);
    }
    let user = rest.split_whitespace().next().unwrap_or("analyst");
    let quoted = |kw: &str| -> Option<String> {
        let i = rest.find(kw)? + kw.len();
        let after = rest[i..].trim_start().strip_prefix('\'')?;
        Some(after[..after.find('\'')?].to_string())
    };
    let grants: Vec<cuve_catalog::Grant> = quoted("GRANTS")
        .unwrap_or_default()
        .split_whitespace()
        .map(cuve_catalog::Grant::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| SltError(e.to_string()))?;
    let quota: cuve_catalog::Quota = match quoted("QUOTA") {
        Some(q) => serde_json::from_str(&q).map_err(|e| SltError(e.to_string()))?,
        None => Default::default(),
    };
    let catalog = engine.catalog();
    if catalog
        .user(user)
        .map_err(|e| SltError(e.to_string()))?
        .is_none()
    {
        catalog
            .add_user(user, cuve_catalog::Role::Analyst, None)
            .map_err(|e| SltError(e.to_string()))?;
    }
    let (_, secret) = catalog
        .create_ticket(user, None, None, &grants, &quota)
        .map_err(|e| SltError(e.to_string()))?;
    let ticket = catalog
        .authenticate(&secret)
        .map_err(|e| SltError(e.to_string()))?;
    Ok(engine.session(AccessView::from_ticket(&ticket, "slt"))?)
}

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files() {
    let files = slt_files();
    assert!(!files.is_empty(), "no slt files found");
    let filter = std::env::var("SLT_FILTER").ok();
    let mut failures = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let home = tempfile::tempdir().unwrap();
        let engine: Arc<Engine> = Engine::open(home.path()).unwrap();
        let mut runner = sqllogictest::Runner::new(move || {
            let engine = engine.clone();
            async move {
                Ok::<_, SltError>(CuveDb {
                    session: engine.session(AccessView::admin("slt"))?,
                    engine,
                })
            }
        });
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{name}: {e}"));
        }
        drop(home);
    }
    assert!(
        failures.is_empty(),
        "sqllogictest failures:\n{}",
        failures.join("\n\n")
    );
}
