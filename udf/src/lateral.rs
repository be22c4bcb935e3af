//! Hive's table-generating functions, which DataFusion rejects, rewritten to DataFusion's
//! `unnest` and to scalar functions:
//!
//! `SELECT a, w FROM t LATERAL VIEW explode(split(s, ' ')) v AS w`
//! → `SELECT a, w FROM (SELECT t.*, unnest(split(s, ' ')) AS w FROM t) AS t`.
//!
//! - `LATERAL VIEW explode(map) v AS k, v` → `unnest(map_keys(m)) AS k, unnest(map_values(m)) AS v`
//!   (two unnests in one projection are zipped);
//! - `LATERAL VIEW posexplode(arr) v AS pos, x` → `unnest(range(0, cardinality(arr)))` and
//!   `unnest(arr)`;
//! - `LATERAL VIEW json_tuple(j, 'k1', 'k2') v AS a, b` → `json_tuple_value(j, 'k1') AS a, ...`
//!   (one row per input row);
//! - in a select list, `json_tuple(j, 'k1', 'k2')` becomes columns `c0, c1`, `posexplode(arr)`
//!   columns `pos, col`, `explode(map(...))` columns `key, value`, `explode(x)` column `col`;
//! - Hive's empty `map()` becomes an empty `map<string,string>`.
//!
//! `OUTER` keeps rows whose array is empty or null (with a null element).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, ObjectNamePart,
    Query, Select, SelectItem, SetExpr, Statement, TableFactor, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::{GenericDialect, HiveDialect};
use datafusion::sql::sqlparser::parser::Parser;

/// The statement rewritten when it uses LATERAL VIEW or explode; `Ok(None)` when untouched.
pub fn rewrite_hive_sql(sql: &str) -> Result<Option<String>, String> {
    let lower = sql.to_ascii_lowercase();
    if !["lateral", "explode", "json_tuple", "map("]
        .iter()
        .any(|k| lower.contains(k))
    {
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
            Expr::Function(f)
                if f.name.to_string().eq_ignore_ascii_case("map")
                    && let Some((_, args)) = call(&Expr::Function(f.clone()))
                    && args.len() >= 2
                    && args.len() % 2 == 0
                    && (args.len() > 2 || args.iter().all(|a| matches!(a, Expr::Value(_)))) =>
            {
                // Hive's map(k1, v1, k2, v2): keys and values coerced as Hive's array() does
                let keys: Vec<String> = args.iter().step_by(2).map(|a| a.to_string()).collect();
                let values: Vec<String> = args
                    .iter()
                    .skip(1)
                    .step_by(2)
                    .map(|a| a.to_string())
                    .collect();
                if let Ok(m) = parse_expr(&format!(
                    "map(array({}), array({}))",
                    keys.join(", "),
                    values.join(", ")
                )) {
                    *e = m;
                    exploded = true;
                }
            }
            Expr::Function(f)
                if f.name.to_string().eq_ignore_ascii_case("map")
                    && match &f.args {
                        FunctionArguments::List(l) => l.args.is_empty(),
                        FunctionArguments::None => true,
                        _ => false,
                    } =>
            {
                if let Ok(empty) = parse_expr(
                    "map(CAST(make_array() AS VARCHAR[]), CAST(make_array() AS VARCHAR[]))",
                ) {
                    *e = empty;
                    exploded = true;
                }
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

fn parse_expr(sql: &str) -> Result<Expr, String> {
    Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("Hive function rewrite failed: {e}"))
}

/// The name and plain arguments of a function call.
fn call(e: &Expr) -> Option<(String, Vec<Expr>)> {
    let Expr::Function(f) = e else { return None };
    let args = match &f.args {
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x.clone()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?,
        FunctionArguments::None => vec![],
        _ => return None,
    };
    Some((f.name.to_string().to_ascii_lowercase(), args))
}

/// `OUTER`: an empty or null list becomes a list of one null.
fn outer(list: &str, is_outer: bool) -> String {
    if is_outer {
        format!("CASE WHEN cardinality({list}) > 0 THEN {list} ELSE make_array(NULL) END")
    } else {
        list.to_string()
    }
}

/// The columns (SQL expression, name) a generator call produces, given its column names
/// (`None`: Hive's default names). `Ok(None)` when `e` is not a generator.
fn generator(
    e: &Expr,
    names: Option<&[String]>,
    is_outer: bool,
) -> Result<Option<Vec<(String, String)>>, String> {
    let Some((name, args)) = call(e) else {
        return Ok(None);
    };
    let pick = |defaults: &[&str]| -> Result<Vec<String>, String> {
        match names {
            None => Ok(defaults.iter().map(|s| s.to_string()).collect()),
            Some(n) if n.len() == defaults.len() => Ok(n.to_vec()),
            Some(n) => Err(format!(
                "{name}(...) produces {} columns but {} aliases were given",
                defaults.len(),
                n.len()
            )),
        }
    };
    match (name.as_str(), args.as_slice()) {
        ("explode", [arg]) => {
            let is_map =
                call(arg).is_some_and(|(n, _)| n == "map") || names.is_some_and(|n| n.len() == 2);
            if is_map {
                let n = pick(&["key", "value"])?;
                Ok(Some(vec![
                    (
                        format!("unnest({})", outer(&format!("map_keys({arg})"), is_outer)),
                        n[0].clone(),
                    ),
                    (
                        format!("unnest({})", outer(&format!("map_values({arg})"), is_outer)),
                        n[1].clone(),
                    ),
                ]))
            } else {
                let n = pick(&["col"])?;
                Ok(Some(vec![(
                    format!("unnest({})", outer(&arg.to_string(), is_outer)),
                    n[0].clone(),
                )]))
            }
        }
        ("posexplode", [arg]) => {
            let n = pick(&["pos", "col"])?;
            let list = outer(&arg.to_string(), is_outer);
            Ok(Some(vec![
                (
                    format!("unnest(range(0, cardinality({list})))"),
                    n[0].clone(),
                ),
                (format!("unnest({list})"), n[1].clone()),
            ]))
        }
        ("json_tuple", [json, keys @ ..]) if !keys.is_empty() => {
            let defaults: Vec<String> = (0..keys.len()).map(|i| format!("c{i}")).collect();
            let d: Vec<&str> = defaults.iter().map(|s| s.as_str()).collect();
            let n = pick(&d)?;
            Ok(Some(
                keys.iter()
                    .zip(n)
                    .map(|(k, n)| (format!("json_tuple_value({json}, {k})"), n))
                    .collect(),
            ))
        }
        ("explode" | "posexplode" | "json_tuple", _) => {
            Err(format!("{name}(...): wrong number of arguments"))
        }
        _ => Ok(None),
    }
}

/// Select-list generators (`json_tuple`, `posexplode`, `explode(map(...))`, unaliased
/// `explode`) expanded to their columns.
fn rewrite_projection(sel: &mut Select) -> Result<bool, String> {
    let mut changed = false;
    let mut out = Vec::with_capacity(sel.projection.len());
    for item in std::mem::take(&mut sel.projection) {
        let (expr, alias) = match &item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(vec![alias.value.clone()])),
            _ => {
                out.push(item);
                continue;
            }
        };
        let is_plain_explode = call(expr).is_some_and(|(n, a)| {
            n == "explode" && a.len() == 1 && call(&a[0]).is_none_or(|(inner, _)| inner != "map")
        });
        if alias.is_some() && is_plain_explode {
            out.push(item);
            continue;
        }
        match generator(expr, alias.as_deref(), false)? {
            Some(cols) => {
                for (sql, name) in cols {
                    out.push(SelectItem::ExprWithAlias {
                        expr: parse_expr(&sql)?,
                        alias: Ident::new(name),
                    });
                }
                changed = true;
            }
            None => out.push(item),
        }
    }
    sel.projection = out;
    Ok(changed)
}

fn rewrite_select(sel: &mut Select, renames: &mut Vec<(String, String)>) -> Result<bool, String> {
    // Subqueries in FROM first.
    let mut changed = false;
    for twj in sel.from.iter_mut() {
        if let TableFactor::Derived { subquery, .. } = &mut twj.relation {
            changed |= rewrite_query(subquery, renames)?;
        }
    }
    changed |= rewrite_projection(sel)?;
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
        let mut view = lv.lateral_view.clone();
        let _ = visit_expressions_mut(&mut view, |e| {
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
        let names: Vec<String> = lv
            .lateral_col_alias
            .iter()
            .map(|i| i.value.clone())
            .collect();
        let cols = generator(&view, Some(&names), lv.outer)?.ok_or_else(|| {
            format!("LATERAL VIEW {view} is not supported: use explode, posexplode or json_tuple")
        })?;
        let cols: Vec<String> = cols
            .into_iter()
            .map(|(sql, name)| format!("{sql} AS {}", Ident::new(name)))
            .collect();
        let sub = format!(
            "(SELECT {alias}.*, {} FROM {relation}) AS {alias}",
            cols.join(", ")
        );
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
        let out = rewrite_hive_sql("SELECT k, v FROM t LATERAL VIEW explode(m) x AS k, v")
            .unwrap()
            .unwrap();
        assert!(out.contains("unnest(map_keys(m)) AS k"), "{out}");
        let out = rewrite_hive_sql("SELECT json_tuple(j, 'a', 'b') FROM t")
            .unwrap()
            .unwrap();
        assert!(out.contains("json_tuple_value(j, 'b') AS c1"), "{out}");
        assert!(
            rewrite_hive_sql("SELECT * FROM t LATERAL VIEW posexplode(a) x AS p")
                .unwrap_err()
                .contains("2 columns")
        );
    }
}
