//! Hive's table-generating functions, which DataFusion rejects, rewritten in the parsed
//! statement to DataFusion's `unnest` and to scalar functions (the syntax tree is edited; no
//! SQL text is printed and parsed again):
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
//! - Hive's `map(k1, v1, ...)` becomes `map(array(k1, ...), array(v1, ...))` and its empty
//!   `map()` an empty `map<string,string>`.
//!
//! `OUTER` keeps rows whose array is empty or null (with a null element).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, ObjectNamePart,
    Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableFactor,
    visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Rewrites Hive's generators in `stmt` in place; `Ok(true)` when something changed.
pub fn rewrite_hive(stmt: &mut Statement) -> Result<bool, String> {
    let mut renames: Vec<(Ident, Ident)> = Vec::new();
    let changed = match stmt {
        Statement::Query(q) => rewrite_query(q, &mut renames)?,
        Statement::Insert(ins) => match ins.source.as_mut() {
            Some(q) => rewrite_query(q, &mut renames)?,
            None => false,
        },
        _ => false,
    };
    let mut exploded = false;
    let mut failed: Option<String> = None;
    let _ = visit_expressions_mut(stmt, |e| {
        match rewrite_call(e, &renames) {
            Ok(true) => exploded = true,
            Ok(false) => {}
            Err(msg) => {
                failed = Some(msg);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    if let Some(msg) = failed {
        return Err(msg);
    }
    Ok(changed || exploded)
}

/// One expression node: a lateral view's name in `v.col` becomes the rewritten relation's,
/// `explode` becomes `unnest`, Hive's `map(...)` DataFusion's.
fn rewrite_call(e: &mut Expr, renames: &[(Ident, Ident)]) -> Result<bool, String> {
    match e {
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
            if let Some((_, alias)) = renames
                .iter()
                .find(|(lv, _)| lv.value.eq_ignore_ascii_case(&parts[0].value))
            {
                parts[0] = alias.clone();
            }
            Ok(false)
        }
        Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("explode") => {
            f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new("unnest"))]);
            Ok(true)
        }
        Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("map") => {
            let Some((_, args)) = call(e) else {
                return Ok(false);
            };
            if args.is_empty() {
                *e = parse_expr(
                    "map(CAST(make_array() AS VARCHAR[]), CAST(make_array() AS VARCHAR[]))",
                )?;
                return Ok(true);
            }
            if args.len() % 2 != 0
                || (args.len() == 2 && !args.iter().all(|a| matches!(a, Expr::Value(_))))
            {
                // DataFusion's own map(keys, values).
                return Ok(false);
            }
            // Hive's map(k1, v1, k2, v2): keys and values coerced as Hive's array() does.
            let keys = args.iter().step_by(2).cloned().collect();
            let values = args.iter().skip(1).step_by(2).cloned().collect();
            *e = func("map", vec![func("array", keys)?, func("array", values)?])?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn rewrite_query(q: &mut Query, renames: &mut Vec<(Ident, Ident)>) -> Result<bool, String> {
    rewrite_set_expr(&mut q.body, renames)
}

fn rewrite_set_expr(body: &mut SetExpr, renames: &mut Vec<(Ident, Ident)>) -> Result<bool, String> {
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

/// A fixed expression (Cuve's own text, never the user's).
fn parse_expr(sql: &str) -> Result<Expr, String> {
    Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("internal: Hive function rewrite of {sql:?}: {e}"))
}

/// A fixed query (Cuve's own text).
fn parse_query(sql: &str) -> Result<Query, String> {
    Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_query())
        .map(|q| *q)
        .map_err(|e| format!("internal: LATERAL VIEW rewrite of {sql:?}: {e}"))
}

/// `name(args...)`: the call node of a fixed one-argument call, with `args` put in.
fn func(name: &str, args: Vec<Expr>) -> Result<Expr, String> {
    let mut e = parse_expr(&format!("{name}(NULL)"))?;
    if let Expr::Function(f) = &mut e
        && let FunctionArguments::List(list) = &mut f.args
    {
        list.args = args
            .into_iter()
            .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
            .collect();
        return Ok(e);
    }
    Err(format!("internal: {name}(...) did not parse as a call"))
}

/// A fixed expression whose identifiers `__1`, `__2`, ... stand for `args` (replaced after
/// parsing, so the arguments are never printed).
fn template(sql: &str, args: &[Expr]) -> Result<Expr, String> {
    let mut e = parse_expr(sql)?;
    let _ = visit_expressions_mut(&mut e, |x| {
        if let Expr::Identifier(i) = x
            && let Some(n) = i.value.strip_prefix("__")
            && let Ok(n) = n.parse::<usize>()
            && let Some(arg) = n.checked_sub(1).and_then(|k| args.get(k))
        {
            *x = arg.clone();
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(e)
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
fn outer(list: Expr, is_outer: bool) -> Result<Expr, String> {
    if is_outer {
        template(
            "CASE WHEN cardinality(__1) > 0 THEN __1 ELSE make_array(NULL) END",
            &[list],
        )
    } else {
        Ok(list)
    }
}

fn unnest(list: Expr) -> Result<Expr, String> {
    func("unnest", vec![list])
}

/// The columns (expression, name) a generator call produces, given its column names
/// (`None`: Hive's default names). `Ok(None)` when `e` is not a generator.
fn generator(
    e: &Expr,
    names: Option<&[Ident]>,
    is_outer: bool,
) -> Result<Option<Vec<(Expr, Ident)>>, String> {
    let Some((name, args)) = call(e) else {
        return Ok(None);
    };
    let pick = |defaults: &[&str]| -> Result<Vec<Ident>, String> {
        match names {
            None => Ok(defaults.iter().map(|s| Ident::new(*s)).collect()),
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
                let keys = outer(func("map_keys", vec![arg.clone()])?, is_outer)?;
                let values = outer(func("map_values", vec![arg.clone()])?, is_outer)?;
                Ok(Some(vec![
                    (unnest(keys)?, n[0].clone()),
                    (unnest(values)?, n[1].clone()),
                ]))
            } else {
                let n = pick(&["col"])?;
                let list = outer(arg.clone(), is_outer)?;
                Ok(Some(vec![(unnest(list)?, n[0].clone())]))
            }
        }
        ("posexplode", [arg]) => {
            let n = pick(&["pos", "col"])?;
            let list = outer(arg.clone(), is_outer)?;
            Ok(Some(vec![
                (
                    template(
                        "unnest(range(0, cardinality(__1)))",
                        std::slice::from_ref(&list),
                    )?,
                    n[0].clone(),
                ),
                (unnest(list)?, n[1].clone()),
            ]))
        }
        ("json_tuple", [json, keys @ ..]) if !keys.is_empty() => {
            let defaults: Vec<String> = (0..keys.len()).map(|i| format!("c{i}")).collect();
            let d: Vec<&str> = defaults.iter().map(|s| s.as_str()).collect();
            let n = pick(&d)?;
            keys.iter()
                .zip(n)
                .map(|(k, n)| Ok((func("json_tuple_value", vec![json.clone(), k.clone()])?, n)))
                .collect::<Result<Vec<_>, String>>()
                .map(Some)
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
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(vec![alias.clone()])),
            SelectItem::ExprWithAliases { expr, aliases } => (expr, Some(aliases.clone())),
            _ => {
                out.push(item);
                continue;
            }
        };
        let is_plain_explode = call(expr).is_some_and(|(n, a)| {
            n == "explode" && a.len() == 1 && call(&a[0]).is_none_or(|(inner, _)| inner != "map")
        });
        if matches!(item, SelectItem::ExprWithAlias { .. }) && is_plain_explode {
            out.push(item);
            continue;
        }
        match generator(expr, alias.as_deref(), false)? {
            Some(cols) => {
                for (expr, alias) in cols {
                    out.push(SelectItem::ExprWithAlias { expr, alias });
                }
                changed = true;
            }
            None => out.push(item),
        }
    }
    sel.projection = out;
    Ok(changed)
}

/// `(SELECT alias.*, cols FROM relation) AS alias`, built from a fixed template.
fn wrap(
    relation: TableFactor,
    alias: &Ident,
    cols: Vec<(Expr, Ident)>,
) -> Result<TableFactor, String> {
    let mut outer_q = parse_query("SELECT * FROM (SELECT __a.* FROM __t) AS __a")?;
    let SetExpr::Select(outer_sel) = outer_q.body.as_mut() else {
        return Err("internal: LATERAL VIEW template".into());
    };
    let Some(mut derived) = outer_sel.from.pop().map(|t| t.relation) else {
        return Err("internal: LATERAL VIEW template".into());
    };
    let TableFactor::Derived {
        subquery,
        alias: Some(derived_alias),
        ..
    } = &mut derived
    else {
        return Err("internal: LATERAL VIEW template".into());
    };
    derived_alias.name = alias.clone();
    let SetExpr::Select(inner) = subquery.body.as_mut() else {
        return Err("internal: LATERAL VIEW template".into());
    };
    if let Some(SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _)) =
        inner.projection.first_mut()
    {
        *n = ObjectName(vec![ObjectNamePart::Identifier(alias.clone())]);
    }
    for (expr, alias) in cols {
        inner
            .projection
            .push(SelectItem::ExprWithAlias { expr, alias });
    }
    match inner.from.first_mut() {
        Some(twj) => twj.relation = relation,
        None => return Err("internal: LATERAL VIEW template".into()),
    }
    Ok(derived)
}

fn rewrite_select(sel: &mut Select, renames: &mut Vec<(Ident, Ident)>) -> Result<bool, String> {
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
            a.name.clone()
        }
        TableFactor::Table { name, .. } => name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .cloned()
            .ok_or("LATERAL VIEW: cannot name the base table")?,
        _ => return Err("LATERAL VIEW: give the subquery in FROM an alias".into()),
    };
    let mut relation = sel.from[0].relation.clone();
    if let TableFactor::Table {
        alias: a @ None, ..
    } = &mut relation
    {
        // `t` becomes `t AS t`, so the wrapped relation keeps its name.
        let mut named = parse_query("SELECT * FROM __t AS __a")?;
        if let SetExpr::Select(s) = named.body.as_mut()
            && let Some(TableFactor::Table {
                alias: Some(mut template_alias),
                ..
            }) = s.from.pop().map(|t| t.relation)
        {
            template_alias.name = alias.clone();
            *a = Some(template_alias);
        }
    }
    for lv in std::mem::take(&mut sel.lateral_views) {
        let mut view = lv.lateral_view.clone();
        let _ = visit_expressions_mut(&mut view, |e| {
            if let Expr::CompoundIdentifier(parts) = e
                && parts.len() == 2
                && let Some((_, a)) = renames
                    .iter()
                    .find(|(l, _)| l.value.eq_ignore_ascii_case(&parts[0].value))
            {
                parts[0] = a.clone();
            }
            ControlFlow::<()>::Continue(())
        });
        let cols = generator(&view, Some(&lv.lateral_col_alias), lv.outer)?.ok_or_else(|| {
            format!("LATERAL VIEW {view} is not supported: use explode, posexplode or json_tuple")
        })?;
        let view_name = lv
            .lateral_view_name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .cloned()
            .unwrap_or_else(|| Ident::new(lv.lateral_view_name.to_string()));
        renames.push((view_name, alias.clone()));
        relation = wrap(relation, &alias, cols)?;
    }
    sel.from[0].relation = relation;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statement printed after the rewrite; `None` when nothing changed.
    fn rw(sql: &str) -> Result<Option<String>, String> {
        let mut stmt = Parser::parse_sql(&GenericDialect {}, sql)
            .map_err(|e| e.to_string())?
            .remove(0);
        Ok(rewrite_hive(&mut stmt)?.then(|| stmt.to_string()))
    }

    #[test]
    fn rewrites_lateral_view() {
        let out =
            rw("SELECT a, w FROM t LATERAL VIEW explode(split(s, ' ')) v AS w WHERE v.w <> ''")
                .unwrap()
                .unwrap();
        assert!(
            out.contains("unnest(split(s, ' ')) AS w FROM t AS t) AS t"),
            "{out}"
        );
        assert!(out.contains("t.w <> ''"), "{out}");
        let out = rw("SELECT explode(arr) FROM t").unwrap().unwrap();
        assert!(out.to_lowercase().contains("unnest(arr)"), "{out}");
        assert!(rw("SELECT 1").unwrap().is_none());
        assert!(
            rw("SELECT * FROM a JOIN b ON a.x = b.x LATERAL VIEW explode(a.arr) v AS w").is_err()
        );
        let out = rw("SELECT w FROM t LATERAL VIEW OUTER explode(arr) v AS w")
            .unwrap()
            .unwrap();
        assert!(out.contains("make_array(NULL)"), "{out}");
        let out = rw("SELECT k, v FROM t LATERAL VIEW explode(m) x AS k, v")
            .unwrap()
            .unwrap();
        assert!(out.contains("unnest(map_keys(m)) AS k"), "{out}");
        let out = rw("SELECT json_tuple(j, 'a', 'b') FROM t")
            .unwrap()
            .unwrap();
        assert!(out.contains("json_tuple_value(j, 'b') AS c1"), "{out}");
        assert!(
            rw("SELECT * FROM t LATERAL VIEW posexplode(a) x AS p")
                .unwrap_err()
                .contains("2 columns")
        );
    }
}
