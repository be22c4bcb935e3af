//! The five recurring analyses as SQL templates with typed parameters. Built-ins ship inside the
//! binary; `$CUVE_HOME/templates/*.sql` adds or overrides. Parameters are substituted as
//! literals or validated identifiers, never as raw SQL text.

use std::collections::BTreeMap;
use std::path::Path;

use crate::exit::{CliError, CliResult};

const BUILTIN: [(&str, &str); 5] = [
    ("ctr", include_str!("../templates/ctr.sql")),
    ("qc-uqc", include_str!("../templates/qc-uqc.sql")),
    (
        "exposed-docs",
        include_str!("../templates/exposed-docs.sql"),
    ),
    ("inflow", include_str!("../templates/inflow.sql")),
    ("age-gender", include_str!("../templates/age-gender.sql")),
];

/// Type of a template parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Date,
    String,
    Int,
    Column,
    Table,
    /// A SQL boolean expression (`--filter`), checked to be one expression.
    Expr,
}

/// A declared parameter: `-- param name: type [= default]`.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub ty: ParamType,
    pub default: Option<String>,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub description: String,
    pub params: Vec<Param>,
    pub sql: String,
    #[allow(dead_code)]
    pub origin: String,
}

impl Template {
    /// Parses a template file's text.
    pub fn parse(name_hint: &str, text: &str, origin: &str) -> CliResult<Template> {
        let mut t = Template {
            name: name_hint.to_string(),
            description: String::new(),
            params: vec![],
            sql: String::new(),
            origin: origin.to_string(),
        };
        let mut body = Vec::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(rest) = trimmed.strip_prefix("-- name:") {
                t.name = rest.trim().to_string();
            } else if let Some(rest) = trimmed.strip_prefix("-- description:") {
                t.description = rest.trim().to_string();
            } else if let Some(rest) = trimmed.strip_prefix("-- param ") {
                let (name, spec) = rest.split_once(':').ok_or_else(|| {
                    CliError::usage(format!("{origin}: bad parameter line '{line}'"))
                })?;
                let (ty, default) = match spec.split_once('=') {
                    Some((ty, d)) => (ty.trim(), Some(d.trim().to_string())),
                    None => (spec.trim(), None),
                };
                let ty = match ty {
                    "date" => ParamType::Date,
                    "string" => ParamType::String,
                    "int" => ParamType::Int,
                    "column" => ParamType::Column,
                    "table" => ParamType::Table,
                    "expr" => ParamType::Expr,
                    other => {
                        return Err(CliError::usage(format!(
                            "{origin}: unknown parameter type '{other}'"
                        )));
                    }
                };
                t.params.push(Param {
                    name: name.trim().to_string(),
                    ty,
                    default,
                });
            } else {
                body.push(line);
            }
        }
        t.sql = body.join("\n").trim().to_string();
        Ok(t)
    }

    /// The SQL with its fragment parameters (`column`, `table`, `expr`) replaced by their
    /// validated text, and the values of its literal parameters (`date`, `string`, `int`),
    /// which stay `${name}` and are bound as values when the script runs.
    pub fn render(
        &self,
        values: &BTreeMap<String, String>,
    ) -> CliResult<(String, BTreeMap<String, String>)> {
        for k in values.keys() {
            if !self.params.iter().any(|p| &p.name == k) {
                return Err(CliError::usage(format!(
                    "template {} has no parameter '{k}' (it takes: {})",
                    self.name,
                    self.params
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let mut sql = self.sql.clone();
        let mut literals = BTreeMap::new();
        for p in &self.params {
            let raw = values.get(&p.name).or(p.default.as_ref()).ok_or_else(|| {
                CliError::usage(format!(
                    "template {} needs --{} (or --param {}=...)",
                    self.name, p.name, p.name
                ))
            })?;
            let rendered = render_value(p, raw)?;
            if matches!(p.ty, ParamType::Date | ParamType::String | ParamType::Int) {
                literals.insert(p.name.clone(), rendered);
            } else {
                sql = sql.replace(&format!("${{{}}}", p.name), &rendered);
            }
        }
        Ok((sql, literals))
    }
}

/// A parameter value, validated: literals as the value to bind, identifiers quoted,
/// expressions re-printed from their parsed form.
pub fn render_value(p: &Param, raw: &str) -> CliResult<String> {
    let bad = |what: &str| CliError::usage(format!("parameter {}: '{raw}' is not {what}", p.name));
    Ok(match p.ty {
        ParamType::Date => {
            chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map_err(|_| bad("a YYYY-MM-DD date"))?;
            raw.to_string()
        }
        ParamType::String => raw.to_string(),
        ParamType::Int => raw
            .parse::<i64>()
            .map_err(|_| bad("an integer"))?
            .to_string(),
        ParamType::Column => ident(raw).ok_or_else(|| bad("a column name"))?,
        ParamType::Expr => {
            use datafusion::sql::sqlparser::dialect::GenericDialect;
            use datafusion::sql::sqlparser::parser::Parser;
            let mut parser = Parser::new(&GenericDialect {})
                .try_with_sql(raw)
                .map_err(|e| CliError::usage(format!("--filter '{raw}': {e}")))?;
            let expr = parser
                .parse_expr()
                .map_err(|e| CliError::usage(format!("--filter '{raw}': {e}")))?;
            if parser.peek_token().token != datafusion::sql::sqlparser::tokenizer::Token::EOF {
                return Err(CliError::usage(format!(
                    "--filter '{raw}': expected one expression"
                )));
            }
            expr.to_string()
        }
        ParamType::Table => {
            let parts: Vec<&str> = raw.split('.').collect();
            if parts.is_empty() || parts.len() > 2 {
                return Err(bad("a table name (db.table)"));
            }
            parts
                .iter()
                .map(|s| ident(s))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("a table name (db.table)"))?
                .join(".")
        }
    })
}

fn ident(s: &str) -> Option<String> {
    let ok = !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
    ok.then(|| format!("\"{}\"", s.to_lowercase()))
}

/// Built-in templates, overridden or extended by `$CUVE_HOME/templates/*.sql`.
pub fn all(home: &Path) -> CliResult<Vec<Template>> {
    let mut map: BTreeMap<String, Template> = BTreeMap::new();
    for (name, text) in BUILTIN {
        let t = Template::parse(name, text, "built-in")?;
        map.insert(t.name.clone(), t);
    }
    let dir = home.join("templates");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| CliError::io(format!("cannot read {}: {e}", p.display())))?;
            let stem = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            let t = Template::parse(&stem, &text, &p.display().to_string())?;
            map.insert(t.name.clone(), t);
        }
    }
    Ok(map.into_values().collect())
}

/// Looks a template up by name.
pub fn find(home: &Path, name: &str) -> CliResult<Template> {
    let all = all(home)?;
    let names: Vec<String> = all.iter().map(|t| t.name.clone()).collect();
    all.into_iter().find(|t| t.name == name).ok_or_else(|| {
        CliError::usage(format!(
            "no template '{name}' (templates: {})",
            names.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_values_safely() {
        let t = find(Path::new("/nonexistent"), "exposed-docs").unwrap();
        let mut v = BTreeMap::new();
        v.insert("from".to_string(), "2019-10-01".to_string());
        v.insert("to".to_string(), "2019-10-02".to_string());
        v.insert("query".to_string(), "x' OR '1'='1".to_string());
        let (sql, literals) = t.render(&v).unwrap();
        // Literal values stay placeholders and are bound as values.
        assert!(sql.contains("${query}"), "{sql}");
        assert_eq!(literals["query"], "x' OR '1'='1");
        assert!(sql.contains("\"korea_naver_log\".\"stream_log\""), "{sql}");
        v.insert("from".to_string(), "2019-10-01; DROP TABLE x".to_string());
        assert!(t.render(&v).is_err());
        v.insert("from".to_string(), "2019-10-01".to_string());
        v.insert("limit".to_string(), "1; DROP".to_string());
        assert!(t.render(&v).is_err());
    }
}
