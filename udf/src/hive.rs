//! Hive-compatible functions. `datafusion-spark` provides most (registered one by one, so
//! DataFusion's built-ins stay); Cuve writes the rest here. Where a Hive name clashes with a
//! DataFusion built-in of different meaning (`from_unixtime`, `date_format`), the Hive meaning
//! wins, and DataFusion's form still works when it can be told apart (a `%` format is chrono).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int32Array, Int64Array, ListBuilder, StringArray,
    StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, TimeUnit};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};
use datafusion::prelude::SessionContext;
use serde_json::Value;

use crate::javafmt::to_chrono;
use crate::udf::{HIVE, Returns, as_utf8, str_at, udf};

/// `get_json_object(json, '$.a.b[0]')`: the value at a JSON path; strings unquoted, objects and
/// arrays as JSON text; null when missing or not JSON.
pub fn get_json_object(json: &str, path: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(json).ok()?;
    let p = path.trim().strip_prefix('$')?;
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            v = v.get(key)?.clone();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            if let Ok(i) = inner.parse::<usize>() {
                v = v.get(i)?.clone();
            } else if inner == "*" {
                // all elements: keep the array
            } else {
                let key = inner.trim_matches(['\'', '"']);
                v = v.get(key)?.clone();
            }
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn format_arg(args: &[ArrayRef], i: usize, default: &str) -> Result<Vec<Option<String>>> {
    match args.get(i) {
        None => Ok(vec![Some(default.to_string()); args[0].len()]),
        Some(a) => {
            let a = as_utf8(a)?;
            (0..a.len())
                .map(|r| {
                    str_at(&a, r)
                        .map(|p| to_chrono(p).map_err(DataFusionError::Plan))
                        .transpose()
                })
                .collect()
        }
    }
}

fn from_unixtime_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let secs = cast(&args[0], &DataType::Int64)?;
    let secs = secs.as_primitive::<Int64Type>();
    let fmts = format_arg(args, 1, "%Y-%m-%d %H:%M:%S")?;
    let out: StringArray = secs
        .iter()
        .zip(fmts.iter())
        .map(|(s, f)| {
            let (s, f) = (s?, f.as_ref()?);
            let t = DateTime::from_timestamp(s, 0)?;
            Some(t.format(f).to_string())
        })
        .collect();
    Ok(Arc::new(out))
}

/// Parses a time string with a chrono pattern (date-only patterns allowed), as UTC.
fn parse_with(s: &str, fmt: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
        return Some(Utc.from_utc_datetime(&t));
    }
    if let Ok(t) = DateTime::parse_from_str(s, fmt) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, fmt)
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}

/// Times of a timestamp, date or string column (strings as `yyyy-MM-dd[ HH:mm:ss]` or RFC 3339).
fn times(a: &ArrayRef) -> Result<Vec<Option<DateTime<Utc>>>> {
    match a.data_type() {
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            let ns = cast(a, &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
            let ns = cast(&ns, &DataType::Int64)?;
            Ok(ns
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(DateTime::from_timestamp_nanos))
                .collect())
        }
        _ => {
            let s = as_utf8(a)?;
            Ok((0..s.len())
                .map(|i| {
                    let v = str_at(&s, i)?.trim();
                    DateTime::parse_from_rfc3339(v)
                        .map(|t| t.with_timezone(&Utc))
                        .ok()
                        .or_else(|| parse_with(v, "%Y-%m-%d %H:%M:%S%.f"))
                        .or_else(|| parse_with(v, "%Y-%m-%dT%H:%M:%S%.f"))
                        .or_else(|| parse_with(v, "%Y-%m-%d"))
                })
                .collect())
        }
    }
}

fn unix_timestamp_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    if args.is_empty() {
        return Ok(Arc::new(Int64Array::from(vec![Utc::now().timestamp()])));
    }
    if args.len() == 1 {
        let t = times(&args[0])?;
        return Ok(Arc::new(
            t.into_iter()
                .map(|t| t.map(|t| t.timestamp()))
                .collect::<Int64Array>(),
        ));
    }
    let s = as_utf8(&args[0])?;
    let fmts = format_arg(args, 1, "%Y-%m-%d %H:%M:%S")?;
    let out: Int64Array = (0..s.len())
        .map(|i| parse_with(str_at(&s, i)?.trim(), fmts[i].as_ref()?).map(|t| t.timestamp()))
        .collect();
    Ok(Arc::new(out))
}

fn date_format_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let t = times(&args[0])?;
    let fmts = format_arg(args, 1, "%Y-%m-%d")?;
    let out: StringArray = t
        .iter()
        .zip(fmts.iter())
        .map(|(t, f)| Some(t.as_ref()?.format(f.as_ref()?).to_string()))
        .collect();
    Ok(Arc::new(out))
}

fn regex_for(pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(pattern)
        .map_err(|e| DataFusionError::Plan(format!("bad regular expression '{pattern}': {e}")))
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
                    cache = Some((pat.to_string(), regex_for(pat)?));
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
                    cache = Some((pat.to_string(), regex_for(pat)?));
                }
                let re = &cache.as_ref().expect("set above").1;
                if g < 0 || g as usize > re.captures_len() - 1 {
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
        .map(|i| get_json_object(str_at(&j, i)?, str_at(&p, i)?))
        .collect();
    Ok(Arc::new(out))
}

fn days(t: &DateTime<Utc>) -> i32 {
    (t.date_naive() - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

fn date_shift(args: &[ArrayRef], sign: i64) -> Result<ArrayRef> {
    let t = times(&args[0])?;
    let n = cast(&args[1], &DataType::Int64)?;
    let n = n.as_primitive::<Int64Type>();
    let out: Date32Array = t
        .iter()
        .zip(n.iter())
        .map(|(t, n)| Some(days(t.as_ref()?) + (sign * n?) as i32))
        .collect();
    Ok(Arc::new(out))
}

fn datediff_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let a = times(&args[0])?;
    let b = times(&args[1])?;
    let out: Int32Array = a
        .iter()
        .zip(b.iter())
        .map(|(a, b)| Some(days(a.as_ref()?) - days(b.as_ref()?)))
        .collect();
    Ok(Arc::new(out))
}

fn strings(n: usize) -> TypeSignature {
    TypeSignature::String(n)
}

/// Cuve's own Hive functions.
pub fn functions() -> Vec<ScalarUDF> {
    let s = || Returns::Fixed(DataType::Utf8);
    vec![
        udf(
            "get_json_object",
            Signature::one_of(vec![strings(2)], Volatility::Immutable),
            s(),
            get_json_body,
            HIVE,
            "Hive: the value at a JSON path ($, .key, ['key'], [n]); strings unquoted, objects and arrays as JSON text; null when missing or not JSON.",
            "get_json_object(json, path)",
            "SELECT get_json_object('{\"a\":{\"b\":[10,20]}}', '$.a.b[1]') -- '20'",
        ),
        udf(
            "from_unixtime",
            Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Immutable,
            ),
            s(),
            from_unixtime_body,
            HIVE,
            "Hive: formats epoch seconds as text (UTC) with a Java pattern (default 'yyyy-MM-dd HH:mm:ss'). Clash: DataFusion's from_unixtime returns a timestamp; Cuve follows Hive. A format containing % is read as a chrono pattern. For a timestamp use to_timestamp_seconds(n).",
            "from_unixtime(seconds [, pattern])",
            "SELECT from_unixtime(1569888000, 'yyyy-MM-dd') -- '2019-10-01'",
        ),
        udf(
            "unix_timestamp",
            Signature::one_of(
                vec![
                    TypeSignature::Nullary,
                    TypeSignature::Any(1),
                    TypeSignature::Any(2),
                ],
                Volatility::Volatile,
            ),
            Returns::Fixed(DataType::Int64),
            unix_timestamp_body,
            HIVE,
            "Hive: epoch seconds of now, of a timestamp/date, or of a string parsed with a Java pattern (default 'yyyy-MM-dd HH:mm:ss', UTC); null when it does not parse.",
            "unix_timestamp([time [, pattern]])",
            "SELECT unix_timestamp('2019-10-01 00:00:00') -- 1569888000",
        ),
        udf(
            "date_format",
            Signature::one_of(vec![TypeSignature::Any(2)], Volatility::Immutable),
            s(),
            date_format_body,
            HIVE,
            "Hive: formats a timestamp, date or date string with a Java pattern (yyyy-MM-dd HH:mm:ss ...). Clash: DataFusion's date_format (alias of to_char) takes chrono patterns; a pattern containing % is still read as chrono.",
            "date_format(time, pattern)",
            "SELECT date_format('2019-10-01 13:45:00', 'yyyy/MM/dd HH') -- '2019/10/01 13'",
        ),
        udf(
            "date_add",
            Signature::one_of(vec![TypeSignature::Any(2)], Volatility::Immutable),
            Returns::Fixed(DataType::Date32),
            |a| date_shift(a, 1),
            HIVE,
            "Hive: the date n days after a date, timestamp or 'yyyy-MM-dd' string.",
            "date_add(date, n)",
            "SELECT date_add('2019-10-01', 3) -- 2019-10-04",
        ),
        udf(
            "date_sub",
            Signature::one_of(vec![TypeSignature::Any(2)], Volatility::Immutable),
            Returns::Fixed(DataType::Date32),
            |a| date_shift(a, -1),
            HIVE,
            "Hive: the date n days before a date, timestamp or 'yyyy-MM-dd' string.",
            "date_sub(date, n)",
            "SELECT date_sub('2019-10-01', 1) -- 2019-09-30",
        ),
        udf(
            "datediff",
            Signature::one_of(vec![TypeSignature::Any(2)], Volatility::Immutable),
            Returns::Fixed(DataType::Int32),
            datediff_body,
            HIVE,
            "Hive: days from start to end (end - start) of dates, timestamps or 'yyyy-MM-dd' strings.",
            "datediff(end, start)",
            "SELECT datediff('2019-10-10', '2019-10-01') -- 9",
        ),
        udf(
            "split",
            Signature::one_of(vec![strings(2)], Volatility::Immutable),
            Returns::Fixed(DataType::List(Arc::new(Field::new(
                "item",
                DataType::Utf8,
                true,
            )))),
            split_body,
            HIVE,
            "Hive: splits text around matches of a regular expression into an array (trailing empty strings kept).",
            "split(text, regex)",
            "SELECT split('a1b22c', '[0-9]+') -- [a, b, c]",
        ),
        udf(
            "regexp_extract",
            Signature::one_of(
                vec![strings(2), TypeSignature::Any(3)],
                Volatility::Immutable,
            ),
            s(),
            regexp_extract_body,
            HIVE,
            "Hive: the text matched by capture group idx (default 1; 0 is the whole match) of a regular expression; '' when it does not match.",
            "regexp_extract(text, regex [, idx])",
            "SELECT regexp_extract('query=날씨&x=1', 'query=([^&]*)', 1) -- '날씨'",
        ),
    ]
}

/// Registers the Hive functions `datafusion-spark` provides (one by one: its `register_all`
/// would replace DataFusion built-ins) and Cuve's own.
pub fn register(ctx: &SessionContext) -> Result<()> {
    use datafusion_spark::function as sp;
    for f in [
        sp::url::parse_url(),
        sp::url::url_decode(),
        sp::url::url_encode(),
        sp::json::json_tuple(),
        sp::map::str_to_map(),
        sp::collection::size(),
    ] {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in [sp::aggregate::collect_list(), sp::aggregate::collect_set()] {
        ctx.register_udaf(f.as_ref().clone());
    }
    for f in functions() {
        ctx.register_udf(f);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let j = r#"{"a":{"b":[10,{"c":"x"}]},"s":"t"}"#;
        assert_eq!(get_json_object(j, "$.a.b[0]").as_deref(), Some("10"));
        assert_eq!(get_json_object(j, "$.a.b[1].c").as_deref(), Some("x"));
        assert_eq!(get_json_object(j, "$.s").as_deref(), Some("t"));
        assert_eq!(get_json_object(j, "$['s']").as_deref(), Some("t"));
        assert_eq!(
            get_json_object(j, "$.a.b").as_deref(),
            Some(r#"[10,{"c":"x"}]"#)
        );
        assert_eq!(get_json_object(j, "$.nope"), None);
        assert_eq!(get_json_object("not json", "$.a"), None);
        assert_eq!(get_json_object(j, "a"), None);
    }
}
