//! An analyzer rule against a DataFusion panic: a constant cast to `Date64` that yields
//! `i64::MIN` milliseconds is folded into a literal DataFusion then panics formatting
//! (`TimeDelta` cannot hold it), e.g. `least(-9223372036854775808, arrow_cast(0, 'Date64'))`
//! after type coercion. Runs after the type coercion: such a cast is an error naming the value,
//! a try-cast is NULL. (The cast functions themselves are guarded in `cuve_udf::guards`.)

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Cast, Expr, LogicalPlan, TryCast};
use datafusion::optimizer::AnalyzerRule;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Date64Guard;

/// The value of `expr` if it is a constant that folds to a literal (no columns, nothing
/// volatile); `None` when it is not constant or does not fold.
fn constant(expr: &Expr) -> Option<ScalarValue> {
    if let Expr::Literal(v, _) = expr {
        return Some(v.clone());
    }
    if !expr.column_refs().is_empty() || expr.is_volatile() {
        return None;
    }
    // An empty schema: the expression refers to no column.
    match ExprSimplifier::new(SimplifyContext::default()).simplify(expr.clone()) {
        Ok(Expr::Literal(v, _)) => Some(v),
        _ => None,
    }
}

fn guard(expr: Expr) -> Result<Transformed<Expr>> {
    let (input, field, try_cast) = match &expr {
        Expr::Cast(Cast { expr, field }) => (expr, field, false),
        Expr::TryCast(TryCast { expr, field }) => (expr, field, true),
        _ => return Ok(Transformed::no(expr)),
    };
    if field.data_type() != &DataType::Date64 {
        return Ok(Transformed::no(expr));
    }
    let Some(value) = constant(input) else {
        return Ok(Transformed::no(expr));
    };
    if !matches!(
        value.cast_to(&DataType::Date64),
        Ok(ScalarValue::Date64(Some(i64::MIN)))
    ) {
        return Ok(Transformed::no(expr));
    }
    if try_cast {
        return Ok(Transformed::yes(Expr::Literal(
            ScalarValue::Date64(None),
            None,
        )));
    }
    Err(DataFusionError::Plan(format!(
        "{value} is outside the range of Date64 (milliseconds since 1970-01-01, at least {})",
        i64::MIN + 1
    )))
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
