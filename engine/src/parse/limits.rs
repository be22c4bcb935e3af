//! Size limits of a parsed statement, checked before planning: how deeply expressions nest
//! (`1+1+…+1` is a chain as deep as it is long), how many expression nodes a statement has, and
//! how many `UNION`/`INTERSECT`/`EXCEPT` branches a query chains. Planning and evaluating such
//! trees recurses once per level, and DataFusion's optimizer passes grow with their size; past
//! these limits the statement is refused with an error saying which limit, instead of running
//! for minutes or exhausting the thread's stack.

use std::ops::ControlFlow;

use datafusion::sql::parser::{CopyToSource, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Statement, Visit, Visitor};

use crate::error::{EngineError, Result};

/// Deepest expression nesting accepted (an operator chain of this many terms).
pub const MAX_EXPR_DEPTH: usize = 1000;
/// Expression nodes accepted in one statement.
pub const MAX_EXPR_NODES: usize = 100_000;
/// Branches of one chain of set operations (`UNION ALL` ...).
pub const MAX_SET_BRANCHES: usize = 1000;

#[derive(Default)]
struct Sizes {
    depth: usize,
    max_depth: usize,
    nodes: usize,
    branches: usize,
}

impl Visitor for Sizes {
    type Break = ();

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.depth += 1;
        self.nodes += 1;
        self.max_depth = self.max_depth.max(self.depth);
        if self.depth > MAX_EXPR_DEPTH || self.nodes > MAX_EXPR_NODES {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.branches = self.branches.max(set_branches(&query.body));
        if self.branches > MAX_SET_BRANCHES {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// Branches of the longest chain of set operations in `body` (without recursing: a chain of
/// 100,000 `UNION ALL` is counted in constant stack).
fn set_branches(body: &SetExpr) -> usize {
    let mut max = 1;
    let mut stack = vec![(body, 1usize)];
    while let Some((e, n)) = stack.pop() {
        match e {
            SetExpr::SetOperation { left, right, .. } => {
                stack.push((left, n + 1));
                stack.push((right, n + 1));
                max = max.max(n + 1);
            }
            SetExpr::Query(q) => stack.push((&q.body, n)),
            _ => {}
        }
    }
    max
}

/// Refuses a statement past the limits, naming the limit and what to do.
pub fn check(statement: &DfStatement) -> Result<()> {
    let mut sizes = Sizes::default();
    // The set-operation count first: it needs no recursion, and visiting a chain that long
    // would recurse once per branch.
    if let Some(body) = query_body(statement) {
        sizes.branches = set_branches(body);
    }
    if sizes.branches <= MAX_SET_BRANCHES {
        visit(statement, &mut sizes);
    }
    if sizes.branches > MAX_SET_BRANCHES {
        return Err(EngineError::invalid(format!(
            "statement too large: a chain of more than {MAX_SET_BRANCHES} UNION/INTERSECT/EXCEPT \
             branches (limit {MAX_SET_BRANCHES}); split it into several statements or load the \
             rows into a table"
        )));
    }
    if sizes.max_depth > MAX_EXPR_DEPTH {
        return Err(EngineError::invalid(format!(
            "expression too deep: more than {MAX_EXPR_DEPTH} nested terms (limit \
             {MAX_EXPR_DEPTH}); use IN (...) instead of long OR chains, or split the expression"
        )));
    }
    if sizes.nodes > MAX_EXPR_NODES {
        return Err(EngineError::invalid(format!(
            "statement too large: more than {MAX_EXPR_NODES} expression nodes (limit \
             {MAX_EXPR_NODES}); split it into several statements"
        )));
    }
    Ok(())
}

fn query_body(statement: &DfStatement) -> Option<&SetExpr> {
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            Statement::Query(q) => Some(&q.body),
            Statement::Insert(i) => i.source.as_ref().map(|q| q.body.as_ref()),
            _ => None,
        },
        DfStatement::Explain(e) => query_body(&e.statement),
        DfStatement::CopyTo(c) => match &c.source {
            CopyToSource::Query(q) => Some(&q.body),
            _ => None,
        },
        _ => None,
    }
}

fn visit(statement: &DfStatement, sizes: &mut Sizes) {
    match statement {
        DfStatement::Statement(s) => {
            let _ = s.visit(sizes);
        }
        DfStatement::Explain(e) => visit(&e.statement, sizes),
        DfStatement::CopyTo(c) => {
            if let CopyToSource::Query(q) = &c.source {
                let _ = q.visit(sizes);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParserBuilder;

    fn parse(sql: &str) -> DfStatement {
        DFParserBuilder::new(sql)
            .with_recursion_limit(100)
            .build()
            .unwrap()
            .parse_statement()
            .unwrap()
    }

    #[test]
    fn deep_wide_and_long_statements_are_refused_by_name() {
        let chain = |n: usize, op: &str| {
            let terms: Vec<String> = (0..n).map(|i| i.to_string()).collect();
            format!("SELECT {}", terms.join(op))
        };
        assert!(check(&parse(&chain(500, " + "))).is_ok());
        let err = check(&parse(&chain(3000, " + "))).unwrap_err().to_string();
        assert!(err.contains("expression too deep"), "{err}");
        let err = check(&parse(&chain(2000, " AND ")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expression too deep"), "{err}");
        let unions: Vec<String> = (0..3000).map(|i| format!("SELECT {i}")).collect();
        let err = check(&parse(&unions.join(" UNION ALL ")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("UNION"), "{err}");
        let unions: Vec<String> = (0..100).map(|i| format!("SELECT {i}")).collect();
        assert!(check(&parse(&unions.join(" UNION ALL "))).is_ok());
        // A long IN list is one node with many values, not a deep tree.
        let list: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
        assert!(check(&parse(&format!("SELECT 1 WHERE 1 IN ({})", list.join(",")))).is_ok());
    }
}
