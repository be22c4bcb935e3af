//! Hive-compatible functions. `datafusion-spark` provides many (registered one by one, so
//! DataFusion's built-ins stay); Cuve writes the rest here and in [`crate::hivetime`] and
//! [`crate::hivejson`]. Where a Hive name clashes with a DataFusion built-in of different
//! meaning (`from_unixtime`, `date_format`, `to_date`, `lpad`, `parse_url`...), the Hive meaning
//! wins, and DataFusion's form still works when it can be told apart (a `%` format is chrono).
//! No function panics: bad input is NULL where Hive returns NULL, otherwise an error naming the
//! function.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::hivejson::{self, Json};
use crate::udf::{HIVE, Returns, as_utf8, str_at, udf};

fn regex_for(func: &str, pattern: &str) -> Result<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 24)
        .build()
        .map_err(|e| {
            DataFusionError::Execution(format!("{func}: bad regular expression '{pattern}': {e}"))
        })
}

fn split_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let s = as_utf8(&args[0])?;
    let p = as_utf8(&args[1])?;
    let mut b = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        true,
    )));
    let mut cache: Option<(String, regex::Regex)> = None;
    for i in 0..s.len() {
        match (str_at(&s, i), str_at(&p, i)) {
            (Some(v), Some(pat)) => {
                if cache.as_ref().map(|(k, _)| k != pat).unwrap_or(true) {
                    cache = Some((pat.to_string(), regex_for("split", pat)?));
                }
                let re = &cache.as_ref().expect("set above").1;
                for part in re.split(v) {
                    b.values().append_value(part);
                }
                b.append(true);
            }
            _ => b.append(false),
        }
    }
    Ok(Arc::new(b.finish()))
}

fn regexp_extract_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let s = as_utf8(&args[0])?;
    let p = as_utf8(&args[1])?;
    let idx: Vec<Option<i64>> = match args.get(2) {
        Some(a) => cast(a, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .iter()
            .collect(),
        None => vec![Some(1); s.len()],
    };
    let mut cache: Option<(String, regex::Regex)> = None;
    let mut out = StringBuilder::new();
    for (i, g) in idx.iter().enumerate() {
        match (str_at(&s, i), str_at(&p, i), *g) {
            (Some(v), Some(pat), Some(g)) => {
                if cache.as_ref().map(|(k, _)| k != pat).unwrap_or(true) {
                    cache = Some((pat.to_string(), regex_for("regexp_extract", pat)?));
                }
                let re = &cache.as_ref().expect("set above").1;
                if g < 0 || g as usize >= re.captures_len() {
                    return Err(DataFusionError::Execution(format!(
                        "regexp_extract: group {g} does not exist in '{pat}'"
                    )));
                }
                let m = re
                    .captures(v)
                    .and_then(|c| c.get(g as usize))
                    .map(|m| m.as_str())
                    .unwrap_or("");
                out.append_value(m);
            }
            _ => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

fn get_json_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let j = as_utf8(&args[0])?;
    let p = as_utf8(&args[1])?;
    let out: StringArray = (0..j.len())
        .map(|i| hivejson::get_json_object(str_at(&j, i)?, str_at(&p, i)?))
        .collect();
    Ok(Arc::new(out))
}

fn json_tuple_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let j = as_utf8(&args[0])?;
    let k = as_utf8(&args[1])?;
    let mut last: Option<(String, Option<Json>)> = None;
    let mut out = StringBuilder::new();
    for i in 0..j.len() {
        let (Some(js), Some(key)) = (str_at(&j, i), str_at(&k, i)) else {
            out.append_null();
            continue;
        };
        if last.as_ref().map(|(s, _)| s != js).unwrap_or(true) {
            last = Some((js.to_string(), Json::parse(js)));
        }
        match last
            .as_ref()
            .and_then(|(_, v)| v.as_ref())
            .and_then(|v| hivejson::json_tuple_value(v, key))
        {
            Some(v) => out.append_value(v),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Hive's lpad/rpad: NULL for a negative length or an empty pad; the text is cut to `len`
/// characters when longer.
fn pad_body(args: &[ArrayRef], left: bool) -> Result<ArrayRef> {
    let s = as_utf8(&args[0])?;
    let n = cast(&args[1], &DataType::Int64)?;
    let n = n.as_primitive::<Int64Type>();
    let p = as_utf8(&args[2])?;
    const LIMIT: i64 = 1 << 28;
    let mut out = StringBuilder::new();
    for i in 0..s.len() {
        let (Some(v), Some(len), Some(pad)) = (
            str_at(&s, i),
            n.is_valid(i).then(|| n.value(i)),
            str_at(&p, i),
        ) else {
            out.append_null();
            continue;
        };
        if len < 0 || pad.is_empty() {
            out.append_null();
            continue;
        }
        if len > LIMIT {
            let f = if left { "lpad" } else { "rpad" };
            return Err(DataFusionError::Execution(format!(
                "{f}: length {len} is over the limit of {LIMIT} characters"
            )));
        }
        let len = len as usize;
        let have = v.chars().count();
        if have >= len {
            out.append_value(v.chars().take(len).collect::<String>());
            continue;
        }
        let fill: String = pad.chars().cycle().take(len - have).collect();
        if left {
            out.append_value(format!("{fill}{v}"));
        } else {
            out.append_value(format!("{v}{fill}"));
        }
    }
    Ok(Arc::new(out.finish()))
}

/// A function registered under another name (e.g. Spark's `try_parse_url` as Hive's
/// `parse_url`, which returns NULL for a malformed URL instead of failing the query).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Renamed {
    name: &'static str,
    inner: Arc<ScalarUDF>,
    doc: Option<Documentation>,
    /// Hive's coercion: from this argument on, a mix of strings and other types is all strings
    /// (`array(1, 'a')` is `array<string>`, `if(c, 1, 'x')` a string).
    strings_from: Option<usize>,
}

impl ScalarUDFImpl for Renamed {
    fn name(&self) -> &str {
        self.name
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
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text =
            |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
        if let Some(from) = self.strings_from {
            let rest = arg_types.get(from..).unwrap_or(&[]);
            let mixed = rest.iter().any(text)
                && rest
                    .iter()
                    .any(|t| !text(t) && *t != DataType::Null && t.is_primitive());
            if mixed {
                let types: Vec<DataType> = arg_types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        if i >= from && *t != DataType::Null {
                            DataType::Utf8
                        } else {
                            t.clone()
                        }
                    })
                    .collect();
                return self.inner.coerce_types(&types);
            }
        }
        self.inner.coerce_types(arg_types)
    }
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args).map_err(|e| {
            DataFusionError::Execution(format!("{}: {}", self.name, e.strip_backtrace()))
        })
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.doc.as_ref().or_else(|| self.inner.documentation())
    }
}

fn renamed(
    name: &'static str,
    inner: Arc<ScalarUDF>,
    description: Option<&str>,
    strings_from: Option<usize>,
) -> ScalarUDF {
    let doc = description
        .map(|d| Documentation::builder(HIVE, d.to_string(), format!("{name}(...)")).build());
    ScalarUDF::new_from_impl(Renamed {
        name,
        inner,
        doc,
        strings_from,
    })
}

/// Cuve's own Hive functions (the date functions are in [`crate::hivetime`]).
pub fn functions() -> Vec<ScalarUDF> {
    let s = || Returns::Fixed(DataType::Utf8);
    let mut v = vec![
        udf(
            "get_json_object",
            Signature::any(2, Volatility::Immutable),
            s(),
            get_json_body,
            HIVE,
            "Hive: the value at a JSONPath ($, .key, [n], [*] wildcards, $[n] on a root array); strings unquoted, objects and arrays as JSON text (keys in input order); NULL when missing, not JSON or an unsupported path.",
            "get_json_object(json, path)",
            "SELECT get_json_object('{\"a\":[{\"b\":1},{\"b\":2}]}', '$.a[*].b') -- '[1,2]'",
        ),
        udf(
            "json_tuple_value",
            Signature::any(2, Volatility::Immutable),
            s(),
            json_tuple_body,
            HIVE,
            "One column of Hive's json_tuple: the top-level field key of a JSON object as text (NULL when missing, null or not JSON). SELECT json_tuple(j, 'a', 'b') and LATERAL VIEW json_tuple(j, 'a', 'b') t AS a, b are rewritten to it.",
            "json_tuple_value(json, key)",
            "SELECT json_tuple_value('{\"f1\": 3}', 'f1') -- '3'",
        ),
        udf(
            "split",
            Signature::any(2, Volatility::Immutable),
            Returns::Fixed(DataType::List(Arc::new(Field::new(
                "item",
                DataType::Utf8,
                true,
            )))),
            split_body,
            HIVE,
            "Hive: splits text around matches of a regular expression into an array (trailing empty strings kept; numbers are read as text).",
            "split(text, regex)",
            "SELECT split('a1b22c', '[0-9]+') -- [a, b, c]",
        ),
        udf(
            "regexp_extract",
            Signature::one_of(
                vec![TypeSignature::Any(2), TypeSignature::Any(3)],
                Volatility::Immutable,
            ),
            s(),
            regexp_extract_body,
            HIVE,
            "Hive: the text matched by capture group idx (default 1; 0 is the whole match) of a regular expression; '' when it does not match.",
            "regexp_extract(text, regex [, idx])",
            "SELECT regexp_extract('query=날씨&x=1', 'query=([^&]*)', 1) -- '날씨'",
        ),
        udf(
            "lpad",
            Signature::any(3, Volatility::Immutable),
            s(),
            |a| pad_body(a, true),
            HIVE,
            "Hive: text left-padded with pad (repeated) to len characters, or cut to len when longer; NULL when len < 0 or pad is ''.",
            "lpad(text, len, pad)",
            "SELECT lpad('hi', 5, '??') -- '???hi'",
        ),
        udf(
            "rpad",
            Signature::any(3, Volatility::Immutable),
            s(),
            |a| pad_body(a, false),
            HIVE,
            "Hive: text right-padded with pad (repeated) to len characters, or cut to len when longer; NULL when len < 0 or pad is ''.",
            "rpad(text, len, pad)",
            "SELECT rpad('hi', 5, '??') -- 'hi???'",
        ),
    ];
    v.extend(crate::hivetime::functions());
    v
}

/// Registers the Hive functions `datafusion-spark` provides (one by one: its `register_all`
/// would replace DataFusion built-ins) and Cuve's own.
pub fn register(ctx: &SessionContext) -> Result<()> {
    use datafusion_spark::function as sp;
    for f in [
        sp::url::url_decode(),
        sp::url::url_encode(),
        sp::json::json_tuple(),
        sp::map::str_to_map(),
        sp::collection::size(),
        sp::string::concat_ws(),
    ] {
        ctx.register_udf(f.as_ref().clone());
    }
    ctx.register_udf(renamed(
        "parse_url",
        sp::url::try_parse_url(),
        Some("Hive: a part of a URL (HOST, PATH, QUERY, REF, PROTOCOL, AUTHORITY, FILE, USERINFO), or the value of a query key with QUERY and a key; NULL for a malformed URL or a missing part."),
        None,
    ));
    ctx.register_udf(renamed("if", sp::conditional::r#if(), None, Some(1)));
    ctx.register_udf(renamed("array", sp::array::array(), None, Some(0)));
    for f in [sp::aggregate::collect_list(), sp::aggregate::collect_set()] {
        ctx.register_udaf(f.as_ref().clone());
    }
    for f in functions() {
        ctx.register_udf(f);
    }
    Ok(())
}
