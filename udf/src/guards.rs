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

/// The guarded built-ins, to register over DataFusion's.
/// A cast function (`arrow_cast`, `arrow_try_cast`, `cast_to_type`, `try_cast_to_type`) whose
/// constant argument may not become a `Date64` of `i64::MIN` milliseconds: DataFusion folds the
/// cast into that literal and then panics formatting it (`TimeDelta` cannot hold it).
#[derive(Debug, PartialEq, Eq, Hash, Default)]
pub struct CastGuard<T> {
    inner: T,
}

/// The cast `expr` (as simplified) would make a `Date64` literal DataFusion cannot display.
fn undisplayable_date64(expr: &Expr) -> Option<i64> {
    let (arg, field) = match expr {
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            (expr.as_ref(), field)
        }
        _ => return None,
    };
    if field.data_type() != &DataType::Date64 {
        return None;
    }
    let Expr::Literal(value, _) = arg else {
        return None;
    };
    match value.cast_to(&DataType::Date64) {
        Ok(ScalarValue::Date64(Some(i64::MIN))) => Some(i64::MIN),
        _ => None,
    }
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
            && let Some(v) = undisplayable_date64(e)
        {
            // A try-cast of a value it cannot hold is NULL; a cast is an error.
            if matches!(e, Expr::TryCast(_)) {
                return Ok(ExprSimplifyResult::Simplified(Expr::Literal(
                    ScalarValue::Date64(None),
                    None,
                )));
            }
            return Err(DataFusionError::Plan(format!(
                "{}: {v} is outside the range of Date64 (milliseconds since 1970-01-01, at \
                 least {})",
                self.inner.name(),
                i64::MIN + 1
            )));
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
