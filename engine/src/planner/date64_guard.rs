//! An analyzer rule against a DataFusion panic: a constant cast to `Date64` that yields
//! `i64::MIN` milliseconds is folded into a literal DataFusion then panics formatting
//! (`TimeDelta` cannot hold it), e.g. `least(-9223372036854775808, arrow_cast(0, 'Date64'))`
//! after type coercion. Runs after the type coercion and applies
//! `cuve_udf::guards::checked_date64_cast` (which also guards the cast functions) to every
//! expression: such a cast is an error naming the value, a try-cast is NULL.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Date64Guard;

fn guard(expr: Expr) -> Result<Transformed<Expr>> {
    Ok(match cuve_udf::guards::checked_date64_cast(&expr, None)? {
        Some(null) => Transformed::yes(null),
        None => Transformed::no(expr),
    })
}

impl AnalyzerRule for Date64Guard {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| node.map_expressions(|e| e.transform_up(guard)))
            .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "cuve_date64_guard"
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    async fn run(sql: &str) -> std::result::Result<String, String> {
        let ctx = SessionContext::new();
        ctx.add_analyzer_rule(std::sync::Arc::new(super::Date64Guard));
        let batches = ctx
            .sql(sql)
            .await
            .map_err(|e| e.to_string())?
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .map_err(|e| e.to_string())?
                .to_string(),
        )
    }

    #[tokio::test]
    async fn coerced_constants_out_of_date64_range_are_errors_not_panics() {
        for sql in [
            "SELECT least(-9223372036854775808, arrow_cast(0, 'Date64'))",
            "SELECT nullif(-9223372036854775808, arrow_cast(0, 'Date64'))",
            "SELECT arrow_cast(0, 'Date64') = -9223372036854775807 - 1",
        ] {
            let err = run(sql).await.unwrap_err();
            assert!(err.contains("outside the range of Date64"), "{sql}: {err}");
        }
        let ok = run("SELECT least(0, arrow_cast(86400000, 'Date64')) AS d")
            .await
            .unwrap();
        assert!(ok.contains("1970-01-01"), "{ok}");
    }
}
