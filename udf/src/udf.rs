//! A small frame for Cuve's scalar functions: a name, a signature, a return type, a vectorised
//! body over Arrow arrays and its documentation. Scalar-only calls are evaluated once and
//! returned as scalars.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

/// The body of a function: input arrays (all of the same length) → output array.
pub type ArrayFn = fn(&[ArrayRef]) -> Result<ArrayRef>;

/// Return type rule.
#[derive(Debug, Clone)]
pub enum Returns {
    Fixed(DataType),
    /// Same type as argument `n`.
    Arg(usize),
}

/// One Cuve scalar function.
#[derive(Debug)]
pub struct CuveUdf {
    name: &'static str,
    signature: Signature,
    returns: Returns,
    body: ArrayFn,
    doc: Documentation,
}

impl PartialEq for CuveUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for CuveUdf {}
impl Hash for CuveUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

/// Documentation section of Cuve's search-log functions.
pub const SEARCH: DocSection = DocSection {
    include: true,
    label: "Cuve search-log functions",
    description: None,
};

/// Documentation section of Hive-compatible functions.
pub const HIVE: DocSection = DocSection {
    include: true,
    label: "Hive-compatible functions",
    description: None,
};

/// Builds a function.
#[allow(clippy::too_many_arguments)]
pub fn udf(
    name: &'static str,
    signature: Signature,
    returns: Returns,
    body: ArrayFn,
    section: DocSection,
    description: &str,
    syntax: &str,
    example: &str,
) -> ScalarUDF {
    let doc = Documentation::builder(section, description.to_string(), syntax.to_string())
        .with_sql_example(example.to_string())
        .build();
    ScalarUDF::new_from_impl(CuveUdf {
        name,
        signature,
        returns,
        body,
        doc,
    })
}

impl ScalarUDFImpl for CuveUdf {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match &self.returns {
            Returns::Fixed(t) => t.clone(),
            Returns::Arg(n) => arg_types.get(*n).cloned().unwrap_or(DataType::Null),
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if all_scalar { 1 } else { args.number_rows };
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<_>>()?;
        let out = (self.body)(&arrays)?;
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.doc)
    }
}

/// Any string array as `Utf8`.
pub fn as_utf8(a: &ArrayRef) -> Result<ArrayRef> {
    if a.data_type() == &DataType::Utf8 {
        return Ok(a.clone());
    }
    Ok(cast(a, &DataType::Utf8)?)
}

/// Maps a string column through `f` (null in → null out).
pub fn map_str(a: &ArrayRef, f: impl Fn(&str) -> Option<String>) -> Result<ArrayRef> {
    let a = as_utf8(a)?;
    let s = a.as_string::<i32>();
    let out: StringArray = s.iter().map(|v| v.and_then(&f)).collect();
    Ok(Arc::new(out))
}

/// The string value at `i`, or `None` when null.
pub fn str_at(a: &ArrayRef, i: usize) -> Option<&str> {
    let s = a.as_string::<i32>();
    if s.is_null(i) { None } else { Some(s.value(i)) }
}
