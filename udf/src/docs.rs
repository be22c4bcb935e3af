//! `SHOW FUNCTIONS [LIKE ...]` and `DESCRIBE FUNCTION f` over every function registered on a
//! context: DataFusion's built-ins and Cuve's own, each with signature, description and example.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Documentation;
use datafusion::prelude::SessionContext;

/// One function as listed.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub name: String,
    pub kind: &'static str,
    pub syntax: String,
    pub description: String,
    pub example: String,
}

fn info(name: &str, kind: &'static str, doc: Option<&Documentation>) -> FunctionInfo {
    FunctionInfo {
        name: name.to_string(),
        kind,
        syntax: doc
            .map(|d| d.syntax_example.clone())
            .unwrap_or_else(|| format!("{name}(...)")),
        description: doc
            .map(|d| d.description.trim().to_string())
            .unwrap_or_else(|| "(no description)".into()),
        example: doc.and_then(|d| d.sql_example.clone()).unwrap_or_default(),
    }
}

/// Every function registered on `ctx`, sorted by name.
pub fn all_functions(ctx: &SessionContext) -> Vec<FunctionInfo> {
    let state = ctx.state();
    let mut out: Vec<FunctionInfo> = Vec::new();
    for (name, f) in state.scalar_functions() {
        out.push(info(name, "scalar", f.documentation()));
    }
    for (name, f) in state.aggregate_functions() {
        out.push(info(name, "aggregate", f.documentation()));
    }
    for (name, f) in state.window_functions() {
        out.push(info(name, "window", f.documentation()));
    }
    for name in state.table_functions().keys() {
        out.push(info(name, "table", None));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.kind.cmp(b.kind)));
    out.dedup_by(|a, b| a.name == b.name && a.kind == b.kind);
    out
}

fn pattern_matches(pattern: &str, name: &str) -> bool {
    let p = pattern.to_lowercase();
    let re = format!(
        "^{}$",
        regex::escape(&p)
            .replace(r"\*", ".*")
            .replace('%', ".*")
            .replace('_', ".")
    );
    regex::Regex::new(&re)
        .map(|r| r.is_match(name))
        .unwrap_or(false)
}

/// `SHOW FUNCTIONS [LIKE pattern]`.
pub fn show_functions(ctx: &SessionContext, like: Option<&str>) -> Result<RecordBatch> {
    let fns: Vec<FunctionInfo> = all_functions(ctx)
        .into_iter()
        .filter(|f| like.map(|p| pattern_matches(p, &f.name)).unwrap_or(true))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("function", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("syntax", DataType::Utf8, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                fns.iter().map(|f| f.name.clone()),
            )),
            Arc::new(StringArray::from_iter_values(fns.iter().map(|f| f.kind))),
            Arc::new(StringArray::from_iter_values(
                fns.iter().map(|f| f.syntax.clone()),
            )),
        ],
    )?)
}

/// `DESCRIBE FUNCTION name`.
pub fn describe_function(ctx: &SessionContext, name: &str) -> Result<RecordBatch> {
    let name = name.to_lowercase();
    let found: Vec<FunctionInfo> = all_functions(ctx)
        .into_iter()
        .filter(|f| f.name == name)
        .collect();
    if found.is_empty() {
        return Err(DataFusionError::Plan(format!(
            "function '{name}' does not exist (SHOW FUNCTIONS LIKE '{}*' lists similar ones)",
            name.chars().take(3).collect::<String>()
        )));
    }
    let mut rows: Vec<(String, String)> = Vec::new();
    for f in found {
        rows.push(("function".into(), format!("{} ({})", f.name, f.kind)));
        rows.push(("syntax".into(), f.syntax));
        rows.push(("description".into(), f.description));
        if !f.example.is_empty() {
            rows.push(("example".into(), f.example));
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("property", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.0.clone()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.1.clone()),
            )),
        ],
    )?)
}
