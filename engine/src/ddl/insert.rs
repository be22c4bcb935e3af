//! Hive `INSERT INTO|OVERWRITE [TABLE] t [PARTITION (...)] SELECT ...`, rewritten into
//! DataFusion's INSERT: static partition values become literal columns.

use crate::access;
use crate::error::{EngineError, Result};
use crate::parse::{PartitionSpec, TableName};
use crate::session::Session;
use crate::table::layout::validate_partition_value;

use super::{quote_ident, quote_literal};

impl Session {
    /// Hive INSERT → DataFusion INSERT: static partition values become literal columns.
    pub(crate) fn rewrite_insert(
        &self,
        table: &TableName,
        overwrite: bool,
        columns: &[String],
        partition: Option<&PartitionSpec>,
        query: &str,
    ) -> Result<String> {
        let def = self.visible_table(table)?;
        access::require_write(&self.access, &def)?;
        let target = format!("{}.{}", quote_ident(&def.database), quote_ident(&def.name));
        let verb = if overwrite {
            "INSERT OVERWRITE"
        } else {
            "INSERT INTO"
        };
        let statics: Vec<(String, String)> = partition
            .map(|spec| {
                spec.iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_lowercase(), v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(spec) = partition {
            for (k, v) in spec {
                let k = k.to_lowercase();
                if !def.partition_columns.iter().any(|c| c.name == k) {
                    return Err(EngineError::invalid(format!(
                        "PARTITION ({k}): '{k}' is not a partition column of {}",
                        def.qualified_name()
                    )));
                }
                if let Some(v) = v {
                    validate_partition_value(&k, v).map_err(EngineError::Invalid)?;
                }
            }
        }
        if statics.is_empty() {
            let cols = if columns.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    columns
                        .iter()
                        .map(|c| quote_ident(&c.to_lowercase()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Ok(format!("{verb} {target}{cols} {query}"));
        }
        // Columns the query provides: the named (or all data) columns, then dynamic partitions.
        let mut target_cols: Vec<String> = if columns.is_empty() {
            def.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            columns.iter().map(|c| c.to_lowercase()).collect()
        };
        for p in &def.partition_columns {
            if !statics.iter().any(|(k, _)| *k == p.name) {
                target_cols.push(p.name.clone());
            }
        }
        let cols = |extra: &[(String, String)]| {
            target_cols
                .iter()
                .chain(extra.iter().map(|(k, _)| k))
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // `VALUES (...)`: the static values join each row (DataFusion types a VALUES inside an
        // INSERT by the table's columns, so it cannot be wrapped in a SELECT).
        if let Some(rows) = values_with(query, &statics) {
            return Ok(format!("{verb} {target} ({}) {rows}", cols(&statics)));
        }
        let mut select = vec!["__cuve_src.*".to_string()];
        for (k, v) in &statics {
            target_cols.push(k.clone());
            select.push(format!("{} AS {}", quote_literal(v), quote_ident(k)));
        }
        Ok(format!(
            "{verb} {target} ({}) SELECT {} FROM ({query}) AS __cuve_src",
            target_cols
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", "),
            select.join(", ")
        ))
    }
}

/// `query` with `statics` appended to every row, when it is a plain `VALUES` list.
fn values_with(query: &str, statics: &[(String, String)]) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{Expr, SetExpr, Statement, Value};
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    let mut parsed = Parser::parse_sql(&GenericDialect {}, query).ok()?;
    if parsed.len() != 1 {
        return None;
    }
    let Statement::Query(q) = &mut parsed[0] else {
        return None;
    };
    if q.order_by.is_some() || q.limit_clause.is_some() || q.with.is_some() {
        return None;
    }
    let SetExpr::Values(values) = q.body.as_mut() else {
        return None;
    };
    for row in &mut values.rows {
        for (_, v) in statics {
            row.push(Expr::value(Value::SingleQuotedString(v.clone())));
        }
    }
    Some(parsed[0].to_string())
}
