//! Guards around DataFusion built-ins that panic on extreme arguments (found by the engine's
//! function fuzz test): the same function under the same name, with the argument checked first
//! and a clear error naming the function instead of a panic.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions_aggregate::approx_percentile_cont::ApproxPercentileCont;
use datafusion::functions_aggregate::approx_percentile_cont_with_weight::ApproxPercentileContWithWeight;
use datafusion::logical_expr::ColumnarValue;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature,
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
pub fn aggregates() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_shared_impl(Arc::new(ApproxPercentileGuard::default())),
        AggregateUDF::new_from_shared_impl(Arc::new(ApproxPercentileWeightGuard::default())),
    ]
}
