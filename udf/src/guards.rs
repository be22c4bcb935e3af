//! Guards around DataFusion built-ins that panic on extreme arguments (found by the engine's
//! function fuzz test): the same function under the same name, with the argument checked first
//! and a clear error naming the function instead of a panic.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions::core::arrow_cast::ArrowCastFunc;
use datafusion::functions::core::arrow_try_cast::ArrowTryCastFunc;
use datafusion::functions::core::cast_to_type::CastToTypeFunc;
use datafusion::functions::core::try_cast_to_type::TryCastToTypeFunc;
use datafusion::functions_aggregate::approx_percentile_cont::ApproxPercentileCont;
use datafusion::functions_aggregate::approx_percentile_cont_with_weight::ApproxPercentileContWithWeight;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Cast, ColumnarValue, Documentation, Expr,
    ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TryCast,
};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;

/// Largest t-digest size `approx_percentile_cont` accepts (DataFusion allocates it up front and
/// panics with "capacity overflow" on `i64::MAX`; the default is 100).
pub const MAX_CENTROIDS: u64 = 100_000;

/// A t-digest aggregate with its centroid count (argument `ARG`) bounded.
#[derive(Debug, PartialEq, Eq, Hash, Default)]
pub struct CentroidGuard<T, const ARG: usize> {
    inner: T,
}

/// `approx_percentile_cont(x, p, centroids)`.
pub type ApproxPercentileGuard = CentroidGuard<ApproxPercentileCont, 2>;
/// `approx_percentile_cont_with_weight(x, w, p, centroids)`.
pub type ApproxPercentileWeightGuard = CentroidGuard<ApproxPercentileContWithWeight, 3>;

impl<T, const ARG: usize> AggregateUDFImpl for CentroidGuard<T, ARG>
where
    T: AggregateUDFImpl + PartialEq + Eq + std::hash::Hash,
{
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        // The centroid count is a literal: evaluated on an empty batch, as DataFusion does.
        let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
        if let Some(e) = acc_args.exprs.get(ARG)
            && let Ok(ColumnarValue::Scalar(value)) = e.evaluate(&empty)
        {
            let n = match value {
                ScalarValue::Int8(Some(v)) => Some(v as i128),
                ScalarValue::Int16(Some(v)) => Some(v as i128),
                ScalarValue::Int32(Some(v)) => Some(v as i128),
                ScalarValue::Int64(Some(v)) => Some(v as i128),
                ScalarValue::UInt8(Some(v)) => Some(v as i128),
                ScalarValue::UInt16(Some(v)) => Some(v as i128),
                ScalarValue::UInt32(Some(v)) => Some(v as i128),
                ScalarValue::UInt64(Some(v)) => Some(v as i128),
                _ => None,
            };
            if let Some(n) = n
                && !(1..=MAX_CENTROIDS as i128).contains(&n)
            {
                return Err(DataFusionError::Plan(format!(
                    "{}: the number of centroids must be between 1 and {MAX_CENTROIDS}, not {n}",
                    self.inner.name()
                )));
            }
        }
        self.inner.accumulator(acc_args)
    }

    fn supports_within_group_clause(&self) -> bool {
        self.inner.supports_within_group_clause()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// A cast function (`arrow_cast`, `arrow_try_cast`, `cast_to_type`, `try_cast_to_type`) whose
/// constant argument may not become an [`undisplayable_date64`]: DataFusion folds the cast into
/// that literal and then panics formatting it.
#[derive(Debug, PartialEq, Eq, Hash, Default)]
pub struct CastGuard<T> {
    inner: T,
}

/// The milliseconds of a `Date64` value DataFusion panics formatting wherever it prints it
/// (plan names, EXPLAIN, errors): one a `TimeDelta` cannot hold (only `i64::MIN`).
pub fn undisplayable_date64(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Date64(Some(ms)) if chrono::TimeDelta::try_milliseconds(*ms).is_none() => {
            Some(*ms)
        }
        _ => None,
    }
}

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

/// `expr` checked before DataFusion folds it: a cast (or try-cast) of a constant to `Date64`
/// whose value would be [`undisplayable_date64`] is an error naming the value (after `who: `,
/// the function, if given), and a try-cast of one is NULL (`Some`). Anything else is `None`.
pub fn checked_date64_cast(expr: &Expr, who: Option<&str>) -> Result<Option<Expr>> {
    let (input, field, try_cast) = match expr {
        Expr::Cast(Cast { expr, field }) => (expr, field, false),
        Expr::TryCast(TryCast { expr, field }) => (expr, field, true),
        _ => return Ok(None),
    };
    if field.data_type() != &DataType::Date64 {
        return Ok(None);
    }
    let Some(ms) = constant(input)
        .and_then(|v| v.cast_to(&DataType::Date64).ok())
        .as_ref()
        .and_then(undisplayable_date64)
    else {
        return Ok(None);
    };
    if try_cast {
        return Ok(Some(Expr::Literal(ScalarValue::Date64(None), None)));
    }
    let who = who.map(|w| format!("{w}: ")).unwrap_or_default();
    Err(DataFusionError::Plan(format!(
        "{who}{ms} is outside the range of Date64 (milliseconds since 1970-01-01, at least {})",
        i64::MIN + 1
    )))
}

impl<T> ScalarUDFImpl for CastGuard<T>
where
    T: ScalarUDFImpl + PartialEq + Eq + std::hash::Hash,
{
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let simplified = self.inner.simplify(args, info)?;
        if let ExprSimplifyResult::Simplified(e) = &simplified
            && let Some(null) = checked_date64_cast(e, Some(self.inner.name()))?
        {
            return Ok(ExprSimplifyResult::Simplified(null));
        }
        Ok(simplified)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// The guarded scalar built-ins, under their own names.
pub fn scalars() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_shared_impl(Arc::new(CastGuard::<ArrowCastFunc>::default())),
        ScalarUDF::new_from_shared_impl(Arc::new(CastGuard::<ArrowTryCastFunc>::default())),
        ScalarUDF::new_from_shared_impl(Arc::new(CastGuard::<CastToTypeFunc>::default())),
        ScalarUDF::new_from_shared_impl(Arc::new(CastGuard::<TryCastToTypeFunc>::default())),
    ]
}

/// The guarded aggregate built-ins, under their own names.
pub fn aggregates() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_shared_impl(Arc::new(ApproxPercentileGuard::default())),
        AggregateUDF::new_from_shared_impl(Arc::new(ApproxPercentileWeightGuard::default())),
    ]
}
