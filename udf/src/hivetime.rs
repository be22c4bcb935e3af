//! Hive's date and time functions. Values are `NaiveDateTime`s in UTC (Cuve's time zone), so
//! every year Hive handles (0001-9999) works: nothing goes through a nanosecond timestamp,
//! which only spans 1677-2262. Strings are read as Hive reads them (`yyyy-MM-dd` followed
//! optionally by ` ` or `T` and a possibly partial time, or RFC 3339); anything else, and any
//! result outside 0001-9999, is NULL.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Date32Array, Int32Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

use crate::javafmt::{self, Pattern};
use crate::udf::{HIVE, Returns, as_utf8, str_at, udf};

const EPOCH_CE_DAYS: i32 = 719_163;

fn in_range(t: NaiveDateTime) -> Option<NaiveDateTime> {
    (1..=9999).contains(&t.year()).then_some(t)
}

fn digits(b: &[u8], pos: &mut usize, min: usize, max: usize) -> Option<u32> {
    crate::javafmt::take_digits(b, pos, min, max)
}

/// A Hive date/timestamp string: `yyyy-M-d`, then optionally ` ` or `T` and `H[:m[:s[.f]]]`
/// (an unreadable time part is ignored, as Hive's date parsing does), or RFC 3339.
pub fn parse_lenient(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return in_range(t.with_timezone(&Utc).naive_utc());
    }
    let b = s.as_bytes();
    let mut pos = 0;
    let y = digits(b, &mut pos, 4, 4)?;
    (b.get(pos) == Some(&b'-')).then_some(())?;
    pos += 1;
    let m = digits(b, &mut pos, 1, 2)?;
    (b.get(pos) == Some(&b'-')).then_some(())?;
    pos += 1;
    let d = digits(b, &mut pos, 1, 2)?;
    let date = NaiveDate::from_ymd_opt(y as i32, m, d)?;
    let midnight = date.and_hms_opt(0, 0, 0)?;
    if pos == b.len() {
        return in_range(midnight);
    }
    if !matches!(b[pos], b' ' | b'T') {
        return None;
    }
    pos += 1;
    let time = (|| {
        let h = digits(b, &mut pos, 1, 2)?;
        let mut mi = 0;
        let mut sec = 0;
        let mut nano = 0;
        if b.get(pos) == Some(&b':') {
            pos += 1;
            mi = digits(b, &mut pos, 1, 2)?;
            if b.get(pos) == Some(&b':') {
                pos += 1;
                sec = digits(b, &mut pos, 1, 2)?;
                if b.get(pos) == Some(&b'.') {
                    pos += 1;
                    let start = pos;
                    let f = digits(b, &mut pos, 1, 9)?;
                    nano = f * 10u32.pow(9 - (pos - start) as u32);
                }
            }
        }
        date.and_hms_nano_opt(h, mi, sec, nano)
    })();
    in_range(time.unwrap_or(midnight))
}

fn from_epoch(secs: i64, nanos: u32) -> Option<NaiveDateTime> {
    in_range(DateTime::from_timestamp(secs, nanos)?.naive_utc())
}

/// Times of a timestamp, date or string column (strings read by [`parse_lenient`]).
pub fn times(a: &ArrayRef) -> Result<Vec<Option<NaiveDateTime>>> {
    Ok(match a.data_type() {
        DataType::Date32 => a
            .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
            .iter()
            .map(|d| {
                let d = NaiveDate::from_num_days_from_ce_opt(d?.checked_add(EPOCH_CE_DAYS)?)?;
                in_range(d.and_hms_opt(0, 0, 0)?)
            })
            .collect(),
        DataType::Date64 => {
            let ms = cast(a, &DataType::Int64)?;
            ms.as_primitive::<Int64Type>()
                .iter()
                .map(|v| {
                    let v = v?;
                    from_epoch(v.div_euclid(1000), (v.rem_euclid(1000) * 1_000_000) as u32)
                })
                .collect()
        }
        DataType::Timestamp(unit, _) => {
            let per_sec: i64 = match unit {
                TimeUnit::Second => 1,
                TimeUnit::Millisecond => 1_000,
                TimeUnit::Microsecond => 1_000_000,
                TimeUnit::Nanosecond => 1_000_000_000,
            };
            let raw = cast(a, &DataType::Int64)?;
            raw.as_primitive::<Int64Type>()
                .iter()
                .map(|v| {
                    let v = v?;
                    let nanos = v.rem_euclid(per_sec) * (1_000_000_000 / per_sec);
                    from_epoch(v.div_euclid(per_sec), nanos as u32)
                })
                .collect()
        }
        DataType::Null => vec![None; a.len()],
        _ => {
            let s = as_utf8(a)?;
            (0..s.len())
                .map(|i| str_at(&s, i).and_then(parse_lenient))
                .collect()
        }
    })
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - EPOCH_CE_DAYS
}

/// Compiled patterns of a pattern column, one per distinct value in a row run (patterns are
/// almost always constant). Invalid Java patterns are NULL (Hive); invalid chrono patterns are
/// an error naming `func`.
fn patterns(
    func: &str,
    args: &[ArrayRef],
    i: usize,
    default: &str,
) -> Result<Vec<Option<Pattern>>> {
    let n = args.first().map(|a| a.len()).unwrap_or(0);
    let Some(a) = args.get(i) else {
        let p = javafmt::pattern(default).ok();
        return Ok(vec![p; n]);
    };
    let a = as_utf8(a)?;
    let mut out = Vec::with_capacity(a.len());
    let mut last: Option<(String, Option<Pattern>)> = None;
    for r in 0..a.len() {
        let Some(p) = str_at(&a, r) else {
            out.push(None);
            continue;
        };
        if last.as_ref().map(|(k, _)| k != p).unwrap_or(true) {
            let compiled = if javafmt::is_chrono(p) {
                Some(
                    javafmt::pattern(p)
                        .map_err(|e| DataFusionError::Execution(format!("{func}: {e}")))?,
                )
            } else {
                javafmt::pattern(p).ok()
            };
            last = Some((p.to_string(), compiled));
        }
        out.push(last.as_ref().and_then(|(_, c)| c.clone()));
    }
    Ok(out)
}

fn from_unixtime_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let secs = cast(&args[0], &DataType::Int64)?;
    let secs = secs.as_primitive::<Int64Type>();
    let fmts = patterns("from_unixtime", args, 1, "yyyy-MM-dd HH:mm:ss")?;
    let out: datafusion::arrow::array::StringArray = secs
        .iter()
        .zip(fmts.iter())
        .map(|(s, f)| javafmt::format_with(f.as_ref()?, &from_epoch(s?, 0)?))
        .collect();
    Ok(Arc::new(out))
}

fn parse_with(p: &Pattern, s: &str) -> Option<NaiveDateTime> {
    let t = match p {
        Pattern::Java(toks) => javafmt::parse(toks, s),
        Pattern::Chrono(items) => {
            let mut parsed = chrono::format::Parsed::new();
            chrono::format::parse(&mut parsed, s, items.iter()).ok()?;
            parsed
                .to_naive_datetime_with_offset(0)
                .ok()
                .or_else(|| {
                    parsed
                        .to_naive_date()
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                })
                .map(|t| {
                    let off = parsed.offset.unwrap_or(0) as i64;
                    t - chrono::Duration::seconds(off)
                })
        }
    }?;
    in_range(t)
}

fn unix_timestamp_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    if args.is_empty() {
        return Ok(Arc::new(Int64Array::from(vec![Utc::now().timestamp()])));
    }
    let is_text = matches!(
        args[0].data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    if !is_text && args.len() == 1 {
        let t = times(&args[0])?;
        return Ok(Arc::new(
            t.into_iter()
                .map(|t| t.map(|t| t.and_utc().timestamp()))
                .collect::<Int64Array>(),
        ));
    }
    let s = as_utf8(&args[0])?;
    let fmts = patterns("unix_timestamp", args, 1, "yyyy-MM-dd HH:mm:ss")?;
    let out: Int64Array = (0..s.len())
        .map(|i| {
            let t = parse_with(fmts[i].as_ref()?, str_at(&s, i)?.trim())?;
            Some(t.and_utc().timestamp())
        })
        .collect();
    Ok(Arc::new(out))
}

fn date_format_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let t = times(&args[0])?;
    let fmts = patterns("date_format", args, 1, "yyyy-MM-dd")?;
    let out: datafusion::arrow::array::StringArray = t
        .iter()
        .zip(fmts.iter())
        .map(|(t, f)| javafmt::format_with(f.as_ref()?, t.as_ref()?))
        .collect();
    Ok(Arc::new(out))
}

fn date_shift(args: &[ArrayRef], sign: i64) -> Result<ArrayRef> {
    let t = times(&args[0])?;
    let n = cast(&args[1], &DataType::Int64)?;
    let n = n.as_primitive::<Int64Type>();
    let out: Date32Array = t
        .iter()
        .zip(n.iter())
        .map(|(t, n)| {
            let days = days_since_epoch(t.as_ref()?.date()) as i64;
            let shifted = days.checked_add(n?.checked_mul(sign)?)?;
            let ce = shifted.checked_add(EPOCH_CE_DAYS as i64)?;
            let d = NaiveDate::from_num_days_from_ce_opt(i32::try_from(ce).ok()?)?;
            (1..=9999).contains(&d.year()).then(|| days_since_epoch(d))
        })
        .collect();
    Ok(Arc::new(out))
}

fn datediff_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let a = times(&args[0])?;
    let b = times(&args[1])?;
    let out: Int32Array = a
        .iter()
        .zip(b.iter())
        .map(|(a, b)| {
            Some(days_since_epoch(a.as_ref()?.date()) - days_since_epoch(b.as_ref()?.date()))
        })
        .collect();
    Ok(Arc::new(out))
}

fn field_body(args: &[ArrayRef], f: fn(&NaiveDateTime) -> i32) -> Result<ArrayRef> {
    let t = times(&args[0])?;
    let out: Int32Array = t.iter().map(|t| t.as_ref().map(f)).collect();
    Ok(Arc::new(out))
}

fn to_date_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let t = times(&args[0])?;
    let out: Date32Array = t
        .iter()
        .map(|t| t.as_ref().map(|t| days_since_epoch(t.date())))
        .collect();
    Ok(Arc::new(out))
}

/// Hive's `to_date(x)` (one argument: the date part of a date, timestamp or string), with
/// DataFusion's `to_date(text, format...)` kept for two or more arguments or numbers.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToDate {
    signature: Signature,
    doc: Documentation,
}

fn datafusion_to_date() -> Arc<ScalarUDF> {
    datafusion::functions::datetime::to_date()
}

impl ScalarUDFImpl for ToDate {
    fn name(&self) -> &str {
        "to_date"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let hive = args.args.len() == 1
            && matches!(
                args.args[0].data_type(),
                DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Date32
                    | DataType::Date64
                    | DataType::Timestamp(_, _)
                    | DataType::Null
            );
        if !hive {
            return datafusion_to_date().invoke_with_args(args);
        }
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let a = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let out = to_date_body(&[a])?;
        if scalar {
            Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&out, 0)?,
            ))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.doc)
    }
}

fn to_date() -> ScalarUDF {
    let doc = Documentation::builder(
        HIVE,
        "Hive: the date part of a date, timestamp or 'yyyy-MM-dd[ HH:mm:ss]' string (years 0001-9999; NULL when it does not parse). With format arguments, DataFusion's to_date(text, chrono_format...).".to_string(),
        "to_date(time) | to_date(text, format...)".to_string(),
    )
    .with_sql_example("SELECT to_date('2009-07-30 04:17:52') -- 2009-07-30".to_string())
    .build();
    ScalarUDF::new_from_impl(ToDate {
        signature: Signature::variadic_any(Volatility::Immutable),
        doc,
    })
}

fn int32_field(
    name: &'static str,
    body: fn(&[ArrayRef]) -> Result<ArrayRef>,
    what: &str,
) -> ScalarUDF {
    let description = format!(
        "Hive: the {what} of a date, timestamp or 'yyyy-MM-dd[ HH:mm:ss]' string; NULL when it does not parse."
    );
    let syntax = format!("{name}(time)");
    let example = format!("SELECT {name}('2008-11-01 15:32:20')");
    udf(
        name,
        Signature::any(1, Volatility::Immutable),
        Returns::Fixed(DataType::Int32),
        body,
        HIVE,
        &description,
        &syntax,
        &example,
    )
}

/// The date and time functions.
pub fn functions() -> Vec<ScalarUDF> {
    let s = || Returns::Fixed(DataType::Utf8);
    vec![
        udf(
            "from_unixtime",
            Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Immutable,
            ),
            s(),
            from_unixtime_body,
            HIVE,
            "Hive: formats epoch seconds as text (UTC) with a Java DateTimeFormatter pattern (default 'yyyy-MM-dd HH:mm:ss'); NULL for an invalid pattern or a year outside 0001-9999. Clash: DataFusion's from_unixtime returns a timestamp; Cuve follows Hive. A format with % outside quotes is a chrono pattern. For a timestamp use to_timestamp_seconds(n).",
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
            "Hive: epoch seconds of now, of a timestamp/date, or of a string parsed whole with a Java pattern (default 'yyyy-MM-dd HH:mm:ss', UTC); NULL when it does not parse.",
            "unix_timestamp([time [, pattern]])",
            "SELECT unix_timestamp('2019-10-01 00:00:00') -- 1569888000",
        ),
        udf(
            "to_unix_timestamp",
            Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Immutable,
            ),
            Returns::Fixed(DataType::Int64),
            unix_timestamp_body,
            HIVE,
            "Hive: epoch seconds of a timestamp/date, or of a string parsed whole with a Java pattern (default 'yyyy-MM-dd HH:mm:ss', UTC); NULL when it does not parse.",
            "to_unix_timestamp(time [, pattern])",
            "SELECT to_unix_timestamp('2019-10-01 00:00:00') -- 1569888000",
        ),
        udf(
            "date_format",
            Signature::one_of(vec![TypeSignature::Any(2)], Volatility::Immutable),
            s(),
            date_format_body,
            HIVE,
            "Hive: formats a timestamp, date or date string with a Java DateTimeFormatter pattern (yyyy-MM-dd HH:mm:ss, EEEE, w, SSS ...); NULL for an invalid pattern. Clash: DataFusion's date_format (alias of to_char) takes chrono patterns; a pattern with % outside quotes is still read as chrono.",
            "date_format(time, pattern)",
            "SELECT date_format('2019-10-01 13:45:00', 'yyyy/MM/dd HH') -- '2019/10/01 13'",
        ),
        udf(
            "date_add",
            Signature::one_of(vec![TypeSignature::Any(2)], Volatility::Immutable),
            Returns::Fixed(DataType::Date32),
            |a| date_shift(a, 1),
            HIVE,
            "Hive: the date n days after a date, timestamp or 'yyyy-MM-dd' string; NULL outside 0001-9999.",
            "date_add(date, n)",
            "SELECT date_add('2019-10-01', 3) -- 2019-10-04",
        ),
        udf(
            "date_sub",
            Signature::one_of(vec![TypeSignature::Any(2)], Volatility::Immutable),
            Returns::Fixed(DataType::Date32),
            |a| date_shift(a, -1),
            HIVE,
            "Hive: the date n days before a date, timestamp or 'yyyy-MM-dd' string; NULL outside 0001-9999.",
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
        to_date(),
        int32_field("year", |a| field_body(a, |t| t.year()), "year"),
        int32_field(
            "quarter",
            |a| field_body(a, |t| t.month0() as i32 / 3 + 1),
            "quarter (1-4)",
        ),
        int32_field("month", |a| field_body(a, |t| t.month() as i32), "month"),
        int32_field("day", |a| field_body(a, |t| t.day() as i32), "day of month"),
        int32_field(
            "dayofmonth",
            |a| field_body(a, |t| t.day() as i32),
            "day of month",
        ),
        int32_field("hour", |a| field_body(a, |t| t.hour() as i32), "hour"),
        int32_field("minute", |a| field_body(a, |t| t.minute() as i32), "minute"),
        int32_field("second", |a| field_body(a, |t| t.second() as i32), "second"),
        int32_field(
            "weekofyear",
            |a| field_body(a, |t| t.iso_week().week() as i32),
            "ISO week of the year",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_strings() {
        let p = |s: &str| parse_lenient(s).map(|t| t.to_string());
        assert_eq!(p("2015-04-08").unwrap(), "2015-04-08 00:00:00");
        assert_eq!(p("2015-04-08 10:30").unwrap(), "2015-04-08 10:30:00");
        assert_eq!(p("2015-04-08 10").unwrap(), "2015-04-08 10:00:00");
        assert_eq!(p("2015-04-08T10:30:45").unwrap(), "2015-04-08 10:30:45");
        assert_eq!(
            p("2015-04-08 10:30:45.123").unwrap(),
            "2015-04-08 10:30:45.123"
        );
        assert_eq!(p("0109-06-20").unwrap(), "0109-06-20 00:00:00");
        assert_eq!(p("9999-12-31 23:59:59").unwrap(), "9999-12-31 23:59:59");
        assert_eq!(p("2015-02-30"), None);
        assert_eq!(p("2015-04-08x"), None);
        assert_eq!(p("random_string"), None);
        assert_eq!(p(""), None);
    }
}
