//! Every Cuve scalar function is called with odd arguments (NULL, '', 1 MB strings, every Java
//! pattern letter alone, doubled and quadrupled, `%` patterns, extreme numbers, negative
//! lengths, extreme dates); each call must return `Ok` or `Err`, never panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::logical_expr::type_coercion::functions::fields_with_udf;
use datafusion::logical_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF};

fn odd_values() -> Vec<ScalarValue> {
    let s = |v: &str| ScalarValue::Utf8(Some(v.to_string()));
    let mut v = vec![
        ScalarValue::Utf8(None),
        ScalarValue::Null,
        s(""),
        s(&"a".repeat(1 << 20)),
        s(&"가 ".repeat(1 << 18)),
        s(&"[".repeat(1 << 16)),
        ScalarValue::Int64(Some(i64::MIN)),
        ScalarValue::Int64(Some(i64::MAX)),
        ScalarValue::Int64(Some(-1)),
        ScalarValue::Int64(Some(0)),
        ScalarValue::Int64(Some(i32::MAX as i64 + 1)),
        ScalarValue::Int64(None),
        ScalarValue::Int32(Some(i32::MIN)),
        ScalarValue::Float64(Some(f64::NAN)),
        ScalarValue::Float64(Some(f64::INFINITY)),
        ScalarValue::Float64(Some(-1e300)),
        ScalarValue::Boolean(Some(true)),
        ScalarValue::Date32(Some(i32::MIN)),
        ScalarValue::Date32(Some(i32::MAX)),
        ScalarValue::Date32(Some(-700_000)),
        ScalarValue::TimestampNanosecond(Some(i64::MIN), None),
        ScalarValue::TimestampNanosecond(Some(i64::MAX), None),
        ScalarValue::TimestampSecond(Some(i64::MAX), None),
        ScalarValue::TimestampMicrosecond(Some(i64::MIN), Some("UTC".into())),
    ];
    for p in [
        "%",
        "%%",
        "%Q",
        "%-",
        "%.3f",
        "%9f",
        "%:::z",
        "%Y-%m-%d",
        "yyyy'%'MM",
        "'",
        "''",
        "'a",
        "[",
        "]",
        "[]",
        "{",
        "}",
        "#",
        "$",
        "$[",
        "$.",
        "$.a[*].b",
        "$.[0]",
        "$[*][*]",
        "[*]",
        "$..a",
        "$.a[99999999999999999999]",
        "2015-04-08 10:30:45.123",
        "2015-04-08 10:30",
        "0109-06-20",
        "9999-12-31 23:59:59",
        "0000-00-00",
        "10000-01-01",
        "-1",
        "{\"a\":1}",
        "[1,2,3]",
        "http://[::1",
        "http://a b/c?d=e#f",
        "a:1,b",
        "(",
        "\\",
        "ab\0cd",
    ] {
        v.push(s(p));
    }
    for c in ('A'..='Z').chain('a'..='z') {
        for n in [1, 2, 4, 5, 10] {
            v.push(s(&c.to_string().repeat(n)));
        }
    }
    v
}

fn base_values() -> Vec<ScalarValue> {
    let s = |v: &str| ScalarValue::Utf8(Some(v.to_string()));
    vec![
        ScalarValue::Utf8(None),
        s("2015-04-08 10:30:45.123"),
        ScalarValue::Int64(Some(5)),
        s("yyyy-MM-dd"),
        s("{\"a\":[1,2]}"),
    ]
}

/// Calls `f` once; `Some(message)` when it panicked.
fn call(f: &ScalarUDF, args: &[ScalarValue]) -> Option<String> {
    let fields: Vec<FieldRef> = args
        .iter()
        .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
        .collect();
    let Ok(coerced) = fields_with_udf(&fields, f) else {
        return None;
    };
    let Ok(args) = args
        .iter()
        .zip(&coerced)
        .map(|(a, t)| a.cast_to(t.data_type()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return None;
    };
    let scalars: Vec<Option<&ScalarValue>> = args.iter().map(Some).collect();
    let run = || {
        let return_field = f.return_field_from_args(ReturnFieldArgs {
            arg_fields: &coerced,
            scalar_arguments: &scalars,
        })?;
        // once as scalars, once as arrays of two rows
        for as_array in [false, true] {
            let values = args
                .iter()
                .map(|a| {
                    if as_array {
                        a.to_array_of_size(2).map(ColumnarValue::Array)
                    } else {
                        Ok(ColumnarValue::Scalar(a.clone()))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let _ = f.invoke_with_args(ScalarFunctionArgs {
                args: values,
                arg_fields: coerced.clone(),
                number_rows: if as_array { 2 } else { 1 },
                return_field: return_field.clone(),
                config_options: Arc::new(ConfigOptions::default()),
            });
        }
        Ok::<_, datafusion::error::DataFusionError>(())
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(_) => None,
        Err(p) => Some(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        ),
    }
}

#[test]
fn no_function_panics_on_odd_arguments() {
    let mut funcs = crate::hive::functions();
    funcs.extend(crate::search::functions());
    let odd = odd_values();
    let base = base_values();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut panics = Vec::new();
    for f in &funcs {
        for arity in 0..=3usize {
            if arity == 0 {
                if let Some(m) = call(f, &[]) {
                    panics.push(format!("{}(): {m}", f.name()));
                }
                continue;
            }
            // every odd value at each position, the others from a small base set
            for pos in 0..arity {
                let others = arity - 1;
                let combos = base.len().pow(others as u32);
                for o in &odd {
                    for c in 0..combos {
                        let mut k = c;
                        let mut args = Vec::with_capacity(arity);
                        for i in 0..arity {
                            if i == pos {
                                args.push(o.clone());
                            } else {
                                args.push(base[k % base.len()].clone());
                                k /= base.len();
                            }
                        }
                        if let Some(m) = call(f, &args) {
                            let shown: Vec<String> = args
                                .iter()
                                .map(|a| {
                                    let s = format!("{a:?}");
                                    s.chars().take(60).collect()
                                })
                                .collect();
                            panics.push(format!("{}({}): {m}", f.name(), shown.join(", ")));
                        }
                    }
                }
            }
        }
    }
    std::panic::set_hook(prev);
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.into_iter().take(40).collect::<Vec<_>>().join("\n")
    );
}
