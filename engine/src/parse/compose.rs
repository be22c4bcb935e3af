//! Statements Cuve builds for DataFusion's planner (Hive `INSERT ... PARTITION`, CTAS), as
//! syntax trees: fixed templates parsed once, with the user's already-parsed query and
//! validated names put into them as nodes. User text is never printed and parsed again, so a
//! name or value cannot change what the statement means.

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, Query, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    Statement, TableFactor, TableObject, Value,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{EngineError, Result};

/// A name as one quoted identifier (its case and characters kept).
pub fn ident(name: &str) -> Ident {
    Ident::with_quote('"', name)
}

/// `"db"."table"`.
pub fn table_name(database: &str, table: &str) -> ObjectName {
    ObjectName::from(vec![ident(database), ident(table)])
}

/// A string literal.
pub fn string(value: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(value.to_string()))
}

fn internal(what: &str) -> EngineError {
    EngineError::Internal(format!("the {what} template did not parse as expected"))
}

fn parse_template(sql: &str) -> Result<Statement> {
    let mut parsed = Parser::parse_sql(&GenericDialect {}, sql)
        .map_err(|e| EngineError::Internal(format!("template {sql:?}: {e}")))?;
    match parsed.len() {
        1 => Ok(parsed.remove(0)),
        _ => Err(internal(sql)),
    }
}

/// `INSERT INTO|OVERWRITE target (columns) source`; no column list when `columns` is empty.
pub fn insert(
    target: ObjectName,
    columns: Vec<Ident>,
    overwrite: bool,
    source: Box<Query>,
) -> Result<DfStatement> {
    let template = if overwrite {
        "INSERT OVERWRITE TABLE t SELECT 1"
    } else {
        "INSERT INTO t SELECT 1"
    };
    let mut stmt = parse_template(template)?;
    let Statement::Insert(ins) = &mut stmt else {
        return Err(internal("INSERT"));
    };
    ins.table = TableObject::TableName(target);
    ins.columns = columns
        .into_iter()
        .map(|c| ObjectName::from(vec![c]))
        .collect();
    ins.source = Some(source);
    Ok(DfStatement::Statement(Box::new(stmt)))
}

/// `SELECT __cuve_src.*, extra... FROM (inner) AS __cuve_src`, or with `columns` in place of
/// `__cuve_src.*` when given.
pub fn select_from(
    inner: Box<Query>,
    alias: &str,
    columns: Option<Vec<Ident>>,
    extra: Vec<(Expr, Ident)>,
) -> Result<Box<Query>> {
    let alias = ident(alias);
    let Statement::Query(mut q) = parse_template("SELECT s.* FROM (SELECT 1) AS s")? else {
        return Err(internal("SELECT"));
    };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return Err(internal("SELECT"));
    };
    let Some(from) = select.from.first_mut() else {
        return Err(internal("SELECT"));
    };
    let TableFactor::Derived {
        subquery,
        alias: Some(table_alias),
        ..
    } = &mut from.relation
    else {
        return Err(internal("SELECT"));
    };
    *subquery = inner;
    table_alias.name = alias.clone();
    match columns {
        Some(cols) => {
            select.projection = cols
                .into_iter()
                .map(|c| SelectItem::UnnamedExpr(Expr::CompoundIdentifier(vec![alias.clone(), c])))
                .collect();
        }
        // The template's `s.*`, requalified.
        None => match select.projection.first_mut() {
            Some(SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(name),
                _,
            )) => *name = ObjectName::from(vec![alias.clone()]),
            _ => return Err(internal("SELECT")),
        },
    }
    for (expr, name) in extra {
        select
            .projection
            .push(SelectItem::ExprWithAlias { expr, alias: name });
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sql: &str) -> Box<Query> {
        Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_query()
            .unwrap()
    }

    #[test]
    fn names_and_values_stay_nodes() {
        let src = query("SELECT a FROM \"로그\".\"it\"\"s\"");
        let q = select_from(
            src,
            "__cuve_src",
            None,
            vec![(string("x'); DROP TABLE t; --"), ident("dt"))],
        )
        .unwrap();
        let stmt = insert(
            table_name("d\"b", "t"),
            vec![ident("a"), ident("dt")],
            true,
            q,
        )
        .unwrap();
        assert_eq!(
            stmt.to_string(),
            "INSERT OVERWRITE TABLE \"d\"\"b\".\"t\" (\"a\", \"dt\") SELECT \"__cuve_src\".*, \
             'x''); DROP TABLE t; --' AS \"dt\" FROM (SELECT a FROM \"로그\".\"it\"\"s\") AS \"__cuve_src\""
        );
        let q = select_from(
            query("VALUES (1)"),
            "__cuve_ctas",
            Some(vec![ident("x")]),
            vec![],
        )
        .unwrap();
        assert_eq!(
            q.to_string(),
            "SELECT \"__cuve_ctas\".\"x\" FROM (VALUES (1)) AS \"__cuve_ctas\""
        );
    }
}
