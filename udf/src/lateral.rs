//! Hive's `LATERAL VIEW [OUTER] explode(array) t AS col` and `explode(...)` in a select list,
//! which DataFusion rejects, rewritten to DataFusion's `unnest`:
//!
//! `SELECT a, w FROM t LATERAL VIEW explode(split(s, ' ')) v AS w`
//! → `SELECT a, w FROM (SELECT t.*, unnest(split(s, ' ')) AS w FROM t) AS t`.
//!
//! `OUTER` keeps rows whose array is empty or null (with a null element).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, ObjectNamePart,
    Query, Select, SetExpr, Statement, TableFactor, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::{GenericDialect, HiveDialect};
use datafusion::sql::sqlparser::parser::Parser;

/// The statement rewritten when it uses LATERAL VIEW or explode; `Ok(None)` when untouched.
pub fn rewrite_hive_sql(sql: &str) -> Result<Option<String>, String> {
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("lateral") && !lower.contains("explode") {
        return Ok(None);
    }
    let Ok(mut stmts) = Parser::parse_sql(&HiveDialect {}, sql) else {
        return Ok(None);
    };
    if stmts.len() != 1 {
        return Ok(None);
    }
    let mut renames: Vec<(String, String)> = Vec::new();
    let changed = match &mut stmts[0] {
        Statement::Query(q) => rewrite_query(q, &mut renames)?,
        Statement::Insert(ins) => match ins.source.as_mut() {
            Some(q) => rewrite_query(q, &mut renames)?,
            None => false,
        },
        _ => false,
    };
    let mut exploded = false;
    let _ = visit_expressions_mut(&mut stmts[0], |e| {
        match e {
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                if let Some((_, alias)) = renames
                    .iter()
                    .find(|(lv, _)| lv.eq_ignore_ascii_case(&parts[0].value))
                {
                    parts[0] = Ident::new(alias.clone());
                }
            }
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("explode") => {
                f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new("unnest"))]);
                exploded = true;
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    if !changed && !exploded {
        return Ok(None);
    }
    Ok(Some(stmts[0].to_string()))
}

fn rewrite_query(q: &mut Query, renames: &mut Vec<(String, String)>) -> Result<bool, String> {
    rewrite_set_expr(&mut q.body, renames)
}

fn rewrite_set_expr(
    body: &mut SetExpr,
    renames: &mut Vec<(String, String)>,
) -> Result<bool, String> {
    match body {
        SetExpr::Select(s) => rewrite_select(s, renames),
        SetExpr::Query(q) => rewrite_query(q, renames),
        SetExpr::SetOperation { left, right, .. } => {
            let l = rewrite_set_expr(left, renames)?;
            let r = rewrite_set_expr(right, renames)?;
            Ok(l || r)
        }
        _ => Ok(false),
    }
}

fn explode_arg(e: &Expr) -> Result<Expr, String> {
    if let Expr::Function(f) = e {
        let name = f.name.to_string().to_ascii_lowercase();
        if name == "explode"
            && let FunctionArguments::List(list) = &f.args
            && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = list.args.as_slice()
        {
            return Ok(arg.clone());
        }
        return Err(format!(
            "LATERAL VIEW {name}(...) is not supported: use LATERAL VIEW [OUTER] explode(array) t AS col"
        ));
    }
    Err(format!(
        "LATERAL VIEW {e} is not supported: use LATERAL VIEW [OUTER] explode(array) t AS col"
    ))
}

fn rewrite_select(sel: &mut Select, renames: &mut Vec<(String, String)>) -> Result<bool, String> {
    // Subqueries in FROM first.
    let mut changed = false;
    for twj in sel.from.iter_mut() {
        if let TableFactor::Derived { subquery, .. } = &mut twj.relation {
            changed |= rewrite_query(subquery, renames)?;
        }
    }
    if sel.lateral_views.is_empty() {
        return Ok(changed);
    }
    if sel.from.len() != 1 || !sel.from[0].joins.is_empty() {
        return Err("LATERAL VIEW needs one table in FROM: put joins in a subquery".into());
    }
    let alias = match &sel.from[0].relation {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            a.name.value.clone()
        }
        TableFactor::Table { name, .. } => name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.clone())
            .ok_or("LATERAL VIEW: cannot name the base table")?,
        _ => return Err("LATERAL VIEW: give the subquery in FROM an alias".into()),
    };
    let mut relation = match &sel.from[0].relation {
        TableFactor::Table {
            alias: None, name, ..
        } => format!("{name} AS {alias}"),
        other => other.to_string(),
    };
    for lv in std::mem::take(&mut sel.lateral_views) {
        if lv.lateral_col_alias.len() != 1 {
            return Err(
                "LATERAL VIEW with several column aliases (explode of a map, posexplode) is not supported: explode one array"
                    .into(),
            );
        }
        let mut arg = explode_arg(&lv.lateral_view)?;
        let _ = visit_expressions_mut(&mut arg, |e| {
            if let Expr::CompoundIdentifier(parts) = e
                && parts.len() == 2
                && let Some((_, a)) = renames
                    .iter()
                    .find(|(l, _)| l.eq_ignore_ascii_case(&parts[0].value))
            {
                parts[0] = Ident::new(a.clone());
            }
            ControlFlow::<()>::Continue(())
        });
        let col = &lv.lateral_col_alias[0];
        let arg_sql = if lv.outer {
            format!("CASE WHEN cardinality({arg}) > 0 THEN {arg} ELSE make_array(NULL) END")
        } else {
            arg.to_string()
        };
        let sub =
            format!("(SELECT {alias}.*, unnest({arg_sql}) AS {col} FROM {relation}) AS {alias}");
        renames.push((lv.lateral_view_name.to_string(), alias.clone()));
        relation = sub;
    }
    let parsed = Parser::parse_sql(&GenericDialect {}, &format!("SELECT * FROM {relation}"))
        .map_err(|e| format!("LATERAL VIEW rewrite failed: {e}"))?;
    if let Some(Statement::Query(q)) = parsed.into_iter().next()
        && let SetExpr::Select(s) = *q.body
        && let Some(twj) = s.from.into_iter().next()
    {
        sel.from[0].relation = twj.relation;
        return Ok(true);
    }
    Err("LATERAL VIEW rewrite failed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_lateral_view() {
        let out = rewrite_hive_sql(
            "SELECT a, w FROM t LATERAL VIEW explode(split(s, ' ')) v AS w WHERE v.w <> ''",
        )
        .unwrap()
        .unwrap();
        assert!(
            out.contains("unnest(split(s, ' ')) AS w FROM t AS t) AS t"),
            "{out}"
        );
        assert!(out.contains("t.w <> ''"), "{out}");
        let out = rewrite_hive_sql("SELECT explode(arr) FROM t")
            .unwrap()
            .unwrap();
        assert!(out.to_lowercase().contains("unnest(arr)"), "{out}");
        assert!(rewrite_hive_sql("SELECT 1").unwrap().is_none());
        assert!(
            rewrite_hive_sql(
                "SELECT * FROM a JOIN b ON a.x = b.x LATERAL VIEW explode(a.arr) v AS w"
            )
            .is_err()
        );
        let out = rewrite_hive_sql("SELECT w FROM t LATERAL VIEW OUTER explode(arr) v AS w")
            .unwrap()
            .unwrap();
        assert!(out.contains("make_array(NULL)"), "{out}");
    }
}
