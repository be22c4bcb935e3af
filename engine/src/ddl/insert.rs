//! Hive `INSERT INTO|OVERWRITE [TABLE] t [PARTITION (...)] SELECT ...`, rewritten into
//! DataFusion's INSERT as a syntax tree: static partition values become literal columns.

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Ident, Query, SetExpr};

use crate::access;
use crate::error::{EngineError, Result};
use crate::parse::compose::{self, ident, string};
use crate::parse::{PartitionSpec, TableName};
use crate::session::Session;
use crate::table::layout::validate_partition_value;

impl Session {
    /// Hive INSERT → DataFusion INSERT: static partition values become literal columns.
    pub(crate) fn rewrite_insert(
        &self,
        table: &TableName,
        overwrite: bool,
        columns: &[String],
        partition: Option<&PartitionSpec>,
        source: Box<Query>,
    ) -> Result<DfStatement> {
        let def = self.visible_table(table)?;
        access::require_write(&self.access, &def)?;
        let target = compose::table_name(&def.database, &def.name);
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
            let cols = columns.iter().map(|c| ident(&c.to_lowercase())).collect();
            return compose::insert(target, cols, overwrite, source);
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
        target_cols.extend(statics.iter().map(|(k, _)| k.clone()));
        let idents: Vec<Ident> = target_cols.iter().map(|c| ident(c)).collect();
        // `VALUES (...)`: the static values join each row (DataFusion types a VALUES inside an
        // INSERT by the table's columns, so it cannot be wrapped in a SELECT).
        let source = match values_with(source, &statics) {
            Ok(rows) => rows,
            Err(source) => compose::select_from(
                source,
                "__cuve_src",
                None,
                statics.iter().map(|(k, v)| (string(v), ident(k))).collect(),
            )?,
        };
        compose::insert(target, idents, overwrite, source)
    }
}

/// `query` with `statics` appended to every row when it is a plain `VALUES` list; otherwise
/// the query back, unchanged.
fn values_with(
    mut query: Box<Query>,
    statics: &[(String, String)],
) -> std::result::Result<Box<Query>, Box<Query>> {
    if query.order_by.is_some() || query.limit_clause.is_some() || query.with.is_some() {
        return Err(query);
    }
    let SetExpr::Values(values) = query.body.as_mut() else {
        return Err(query);
    };
    for row in &mut values.rows {
        row.extend(statics.iter().map(|(_, v)| string(v)));
    }
    Ok(query)
}
