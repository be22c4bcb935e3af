//! One raw line → one typed row of the table. Columns are matched by name (case-insensitive)
//! and converted to the column's type; `log_time`, `sender_ip`, `line_no`, `log_key`, `raw` and
//! the `dt` partition are filled from the source and the log time when the line lacks them.
//! A line that cannot be converted is rejected with a reason naming the column.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int8Builder,
    Int16Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder, StringViewBuilder,
    TimestampNanosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit as ArrowTimeUnit};
use std::borrow::Cow;

use super::json::{JLine, JVal};
use crate::error::{EngineError, Result};

/// Format of the input lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Jsonl,
    Csv,
    Tsv,
}

impl InputFormat {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" => Ok(InputFormat::Jsonl),
            "csv" => Ok(InputFormat::Csv),
            "tsv" => Ok(InputFormat::Tsv),
            other => Err(EngineError::invalid(format!(
                "unknown input format '{other}': use jsonl, csv or tsv"
            ))),
        }
    }
}

/// Unit of integer log times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeUnit {
    S,
    Ms,
    Us,
    #[default]
    Ns,
}

impl TimeUnit {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "s" => Ok(TimeUnit::S),
            "ms" => Ok(TimeUnit::Ms),
            "us" => Ok(TimeUnit::Us),
            "ns" => Ok(TimeUnit::Ns),
            other => Err(EngineError::invalid(format!(
                "unknown time unit '{other}': use s, ms, us or ns"
            ))),
        }
    }
    fn to_ns(self, v: i64) -> Option<i64> {
        match self {
            TimeUnit::S => v.checked_mul(1_000_000_000),
            TimeUnit::Ms => v.checked_mul(1_000_000),
            TimeUnit::Us => v.checked_mul(1_000),
            TimeUnit::Ns => Some(v),
        }
    }
}

/// What fills a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Field,
    LogTime,
    SenderIp,
    LineNo,
    LogKey,
    Raw,
    /// `dt` partition computed from the log time.
    DtFromTime,
}

/// One converted cell, borrowing from the line where it can.
#[derive(Debug, Clone)]
enum Cell<'a> {
    Null,
    Str(&'a str),
    Owned(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// The unique key: log time ns, sender, line number.
    Key(i64, &'a str, u64),
    /// A calendar day, written `YYYY-MM-DD`.
    Day(NaiveDate),
}

enum Builder {
    Str(StringBuilder),
    View(StringViewBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Ts(TimestampNanosecondBuilder, Option<Arc<str>>),
    Date(Date32Builder),
}

impl Builder {
    /// A builder for `t` with room for `rows` values.
    fn new(t: &DataType, rows: usize) -> Option<Builder> {
        Some(match t {
            DataType::Utf8 => Builder::Str(StringBuilder::with_capacity(rows, rows * 16)),
            DataType::Utf8View => Builder::View(StringViewBuilder::with_capacity(rows)),
            // Dictionary-encoded strings (partition columns) are built plain and cast at the end.
            DataType::Dictionary(_, v) if v.as_ref() == &DataType::Utf8 => {
                Builder::Str(StringBuilder::with_capacity(rows, rows * 16))
            }
            DataType::Int8 => Builder::I8(Int8Builder::with_capacity(rows)),
            DataType::Int16 => Builder::I16(Int16Builder::with_capacity(rows)),
            DataType::Int32 => Builder::I32(Int32Builder::with_capacity(rows)),
            DataType::Int64 => Builder::I64(Int64Builder::with_capacity(rows)),
            DataType::Float32 => Builder::F32(Float32Builder::with_capacity(rows)),
            DataType::Float64 => Builder::F64(Float64Builder::with_capacity(rows)),
            DataType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            DataType::Timestamp(ArrowTimeUnit::Nanosecond, tz) => {
                Builder::Ts(TimestampNanosecondBuilder::with_capacity(rows), tz.clone())
            }
            DataType::Date32 => Builder::Date(Date32Builder::with_capacity(rows)),
            _ => return None,
        })
    }

    /// Appends a cell; `scratch` is a reused buffer for text built here.
    fn append(&mut self, c: Cell<'_>, scratch: &mut String) {
        macro_rules! opt {
            ($b:expr, $v:expr) => {
                match $v {
                    Some(v) => $b.append_value(v),
                    None => $b.append_null(),
                }
            };
        }
        match self {
            Builder::Str(b) => opt!(b, cell_text(&c, scratch)),
            Builder::View(b) => opt!(b, cell_text(&c, scratch)),
            Builder::I8(b) => opt!(b, int(&c).map(|v| v as i8)),
            Builder::I16(b) => opt!(b, int(&c).map(|v| v as i16)),
            Builder::I32(b) => opt!(b, int(&c).map(|v| v as i32)),
            Builder::I64(b) => opt!(b, int(&c)),
            Builder::F32(b) => opt!(b, float(&c).map(|v| v as f32)),
            Builder::F64(b) => opt!(b, float(&c)),
            Builder::Bool(b) => opt!(b, if let Cell::Bool(v) = c { Some(v) } else { None }),
            Builder::Ts(b, _) => opt!(b, int(&c)),
            Builder::Date(b) => opt!(b, int(&c).map(|v| v as i32)),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::View(b) => Arc::new(b.finish()),
            Builder::I8(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Ts(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
            Builder::Date(b) => Arc::new(b.finish()),
        }
    }
}

/// A cell as text for a string column (numbers, the key and days are written into `scratch`).
fn cell_text<'s>(c: &'s Cell<'_>, scratch: &'s mut String) -> Option<&'s str> {
    use std::fmt::Write as _;
    scratch.clear();
    let _ = match c {
        Cell::Null => return None,
        Cell::Str(s) => return Some(s),
        Cell::Owned(s) => return Some(s),
        Cell::Int(i) => write!(scratch, "{i}"),
        Cell::Float(f) => write!(scratch, "{f}"),
        Cell::Bool(v) => write!(scratch, "{v}"),
        Cell::Key(ns, ip, line) => {
            let mut num = itoa::Buffer::new();
            scratch.push_str(num.format(*ns));
            scratch.push('-');
            scratch.push_str(ip);
            scratch.push('-');
            scratch.push_str(num.format(*line));
            Ok(())
        }
        // By hand: chrono's strftime formatter re-parses its pattern on every call (~4% of
        // ingest CPU when `dt` is derived on every line).
        Cell::Day(d) if (0..=9999).contains(&d.year()) => {
            let digits = |v: u32, width: u32| {
                (0..width)
                    .rev()
                    .map(move |k| char::from(b'0' + (v / 10u32.pow(k) % 10) as u8))
            };
            scratch.extend(digits(d.year() as u32, 4));
            scratch.push('-');
            scratch.extend(digits(d.month(), 2));
            scratch.push('-');
            scratch.extend(digits(d.day(), 2));
            Ok(())
        }
        Cell::Day(d) => write!(scratch, "{}", d.format("%Y-%m-%d")),
    };
    Some(scratch.as_str())
}

fn int(c: &Cell<'_>) -> Option<i64> {
    match c {
        Cell::Int(i) => Some(*i),
        _ => None,
    }
}

fn float(c: &Cell<'_>) -> Option<f64> {
    match c {
        Cell::Float(f) => Some(*f),
        Cell::Int(i) => Some(*i as f64),
        _ => None,
    }
}

/// Where a line came from.
#[derive(Debug, Clone, Copy)]
pub struct LineOrigin<'a> {
    pub sender_ip: &'a str,
    pub line_no: u64,
    /// A unique key given with the line (a bulk document's `_id`): stored as `log_key`, with
    /// no line number.
    pub key: Option<&'a str>,
}

/// Decodes lines into batches of the table schema.
pub struct RowDecoder {
    schema: SchemaRef,
    roles: Vec<Role>,
    names: Vec<String>,
    types: Vec<DataType>,
    builders: Vec<Builder>,
    rows: usize,
    format: InputFormat,
    time_unit: TimeUnit,
    tz: Tz,
    has_log_time: bool,
    /// CSV/TSV header names, lower-case.
    header: Vec<String>,
    scratch: String,
    /// The last (UTC second range of a day → local day) seen, for `dt`.
    day_cache: Option<(i64, i64, NaiveDate)>,
    /// Where each column's value was in the last line (see [`FieldSlots`]).
    slots: FieldSlots,
}

/// The keys of the last decoded line and, for each column (and `log_time`), the position of
/// its value among them. Log lines of one source almost always repeat the same keys in the
/// same order, so a line whose keys equal the last line's reuses the positions: one key
/// comparison per field instead of a search per column (~70 comparisons a line).
#[derive(Default)]
struct FieldSlots {
    keys: Vec<String>,
    columns: Vec<Option<usize>>,
    log_time: Option<usize>,
}

impl FieldSlots {
    /// Updates the positions for `line` unless its keys are the last line's.
    fn resolve(&mut self, line: &JLine<'_>, names: &[String]) {
        let same = self.keys.len() == line.fields.len()
            && self.keys.iter().zip(&line.fields).all(|(a, (b, _))| a == b);
        if same && self.columns.len() == names.len() {
            return;
        }
        self.keys = line.fields.iter().map(|(k, _)| k.to_string()).collect();
        self.columns = names.iter().map(|n| line.position(n)).collect();
        self.log_time = line.position("log_time");
    }
}

impl RowDecoder {
    /// A decoder for `schema` (data columns then partition columns).
    pub fn new(
        schema: SchemaRef,
        partition_columns: &[String],
        format: InputFormat,
        time_unit: TimeUnit,
        tz: Tz,
    ) -> Result<Self> {
        let has_log_time = schema.index_of("log_time").is_ok();
        let mut roles = Vec::new();
        let mut builders = Vec::new();
        for f in schema.fields() {
            let name = f.name().as_str();
            let role = match name {
                "log_time" => Role::LogTime,
                "sender_ip" => Role::SenderIp,
                "line_no" => Role::LineNo,
                "log_key" => Role::LogKey,
                "raw" => Role::Raw,
                "dt" if has_log_time && partition_columns.iter().any(|p| p == "dt") => {
                    Role::DtFromTime
                }
                _ => Role::Field,
            };
            if role == Role::LogTime
                && !matches!(
                    f.data_type(),
                    DataType::Timestamp(ArrowTimeUnit::Nanosecond, _) | DataType::Int64
                )
            {
                return Err(EngineError::invalid(format!(
                    "column log_time must be TIMESTAMP or BIGINT (nanoseconds) to ingest, not {}",
                    f.data_type()
                )));
            }
            roles.push(role);
            builders.push(Builder::new(f.data_type(), 1024).ok_or_else(|| {
                EngineError::Unsupported(format!(
                    "column '{name}' of type {} cannot be ingested from text lines",
                    f.data_type()
                ))
            })?);
        }
        Ok(RowDecoder {
            names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            types: schema
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect(),
            schema,
            roles,
            builders,
            rows: 0,
            format,
            time_unit,
            tz,
            has_log_time,
            header: vec![],
            scratch: String::new(),
            day_cache: None,
            slots: FieldSlots::default(),
        })
    }

    /// Sets the CSV/TSV header (the source's first line).
    pub fn set_header(&mut self, line: &str) {
        self.header = split_delimited(line, self.delimiter())
            .into_iter()
            .map(|s| s.trim().to_lowercase())
            .collect();
    }

    fn delimiter(&self) -> char {
        if self.format == InputFormat::Tsv {
            '\t'
        } else {
            ','
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Decodes one line; `Err(reason)` rejects it (nothing is appended).
    pub fn push(&mut self, line: &str, origin: LineOrigin<'_>) -> std::result::Result<(), String> {
        let text = self.format != InputFormat::Jsonl;
        let fields: JLine<'_> = if text {
            let vals = split_delimited(line, self.delimiter());
            if vals.len() != self.header.len() {
                return Err(format!(
                    "expected {} fields as in the header, found {}",
                    self.header.len(),
                    vals.len()
                ));
            }
            JLine {
                fields: self
                    .header
                    .iter()
                    .zip(vals)
                    .map(|(h, v)| (Cow::Borrowed(h.as_str()), JVal::Str(Cow::Owned(v))))
                    .collect(),
            }
        } else {
            JLine::parse(line)?
        };
        self.slots.resolve(&fields, &self.names);
        let slots = &self.slots;
        let value = |slot: Option<usize>| slot.map(|p| &fields.fields[p].1);
        // The log time first: the key and dt depend on it.
        let mut time_ns: Option<i64> = None;
        if self.has_log_time {
            let v = value(slots.log_time).filter(|v| !v.is_null() && v.as_str() != Some(""));
            let v = v.ok_or("missing required field log_time")?;
            time_ns = Some(parse_time(v, self.time_unit).map_err(|e| format!("log_time: {e}"))?);
        }
        let mut cells: Vec<Cell<'_>> = Vec::with_capacity(self.roles.len());
        for i in 0..self.roles.len() {
            let name = &self.names[i];
            let cell = match self.roles[i] {
                Role::LogTime => Cell::Int(time_ns.unwrap_or_default()),
                Role::SenderIp => match value(slots.columns[i]) {
                    Some(JVal::Str(s)) if !s.is_empty() => Cell::Str(s),
                    _ => Cell::Str(origin.sender_ip),
                },
                Role::LineNo if origin.key.is_some() => Cell::Null,
                Role::LineNo => Cell::Int(origin.line_no as i64),
                Role::LogKey => match origin.key {
                    Some(k) => Cell::Str(k),
                    None => Cell::Key(
                        time_ns.unwrap_or_default(),
                        origin.sender_ip,
                        origin.line_no,
                    ),
                },
                Role::Raw => Cell::Str(line),
                Role::DtFromTime => Cell::Day(local_day(
                    &mut self.day_cache,
                    self.tz,
                    time_ns.unwrap_or_default(),
                )?),
                Role::Field => match value(slots.columns[i]) {
                    None | Some(JVal::Null) => Cell::Null,
                    Some(v) => convert(v, &self.types[i], self.time_unit, text)
                        .map_err(|e| format!("column {name}: {e}"))?,
                },
            };
            cells.push(cell);
        }
        for (b, c) in self.builders.iter_mut().zip(cells) {
            b.append(c, &mut self.scratch);
        }
        self.rows += 1;
        Ok(())
    }

    /// Takes the rows decoded so far as a batch. The builders start the next batch with room
    /// for as many rows (growing them value by value re-faults fresh memory on every batch).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let rows = self.rows;
        let cols: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .zip(self.types.iter())
            .map(|(b, t)| {
                let a = b.finish();
                if let Some(fresh) = Builder::new(t, rows) {
                    *b = fresh;
                }
                if a.data_type() == t {
                    Ok(a)
                } else {
                    datafusion::arrow::compute::cast(&a, t)
                }
            })
            .collect::<std::result::Result<_, _>>()?;
        self.rows = 0;
        Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
    }
}

/// The local calendar day of `ns` in `tz`; `cache` keeps the last day's UTC second range, so
/// rows of the same day skip the time-zone lookup.
fn local_day(
    cache: &mut Option<(i64, i64, NaiveDate)>,
    tz: Tz,
    ns: i64,
) -> std::result::Result<NaiveDate, String> {
    let secs = ns.div_euclid(1_000_000_000);
    if let Some((lo, hi, day)) = *cache
        && secs >= lo
        && secs < hi
    {
        return Ok(day);
    }
    let dt = DateTime::from_timestamp(secs, ns.rem_euclid(1_000_000_000) as u32)
        .ok_or("log_time out of range")?;
    let day = dt.with_timezone(&tz).date_naive();
    // The UTC range of that local day (the offset may change at midnight only rarely; a range
    // computed at both ends keeps the cache exact).
    let bounds = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|m| tz.from_local_datetime(&m).earliest())
            .map(|t| t.timestamp())
    };
    match (bounds(day), day.succ_opt().and_then(bounds)) {
        (Some(lo), Some(hi)) if secs >= lo && secs < hi => *cache = Some((lo, hi, day)),
        _ => *cache = None,
    }
    Ok(day)
}

fn convert<'a>(
    v: &'a JVal<'_>,
    t: &DataType,
    unit: TimeUnit,
    text: bool,
) -> std::result::Result<Cell<'a>, String> {
    if text
        && let JVal::Str(s) = v
        && s.is_empty()
        && !matches!(t, DataType::Utf8 | DataType::Utf8View)
    {
        return Ok(Cell::Null);
    }
    Ok(match t {
        DataType::Utf8 | DataType::Utf8View | DataType::Dictionary(_, _) => match v {
            JVal::Str(s) => Cell::Str(s),
            other => Cell::Owned(other.to_string()),
        },
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let i = match v {
                JVal::Int(i) => *i,
                JVal::Str(s) => s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("expected an integer, found \"{s}\""))?,
                JVal::Bool(b) => *b as i64,
                other => return Err(format!("expected an integer, found {other}")),
            };
            let (lo, hi) = match t {
                DataType::Int8 => (i8::MIN as i64, i8::MAX as i64),
                DataType::Int16 => (i16::MIN as i64, i16::MAX as i64),
                DataType::Int32 => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            if i < lo || i > hi {
                return Err(format!("{i} is out of range for {t}"));
            }
            Cell::Int(i)
        }
        DataType::Float32 | DataType::Float64 => match v {
            JVal::Int(i) => Cell::Float(*i as f64),
            JVal::UInt(u) => Cell::Float(*u as f64),
            JVal::Float(f) => Cell::Float(*f),
            JVal::Str(s) => Cell::Float(
                s.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("expected a number, found \"{s}\""))?,
            ),
            other => return Err(format!("expected a number, found {other}")),
        },
        DataType::Boolean => match v {
            JVal::Bool(b) => Cell::Bool(*b),
            JVal::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "t" | "yes" => Cell::Bool(true),
                "false" | "0" | "f" | "no" => Cell::Bool(false),
                _ => return Err(format!("expected true or false, found \"{s}\"")),
            },
            JVal::Int(i) => Cell::Bool(*i != 0),
            JVal::UInt(_) => Cell::Bool(true),
            JVal::Float(f) => Cell::Bool(*f != 0.0),
            other => return Err(format!("expected true or false, found {other}")),
        },
        DataType::Timestamp(_, _) => Cell::Int(parse_time(v, unit)?),
        DataType::Date32 => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("expected a date, found {v}"))?;
            let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map_err(|_| format!("expected YYYY-MM-DD, found \"{s}\""))?;
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
            Cell::Int((d - epoch).num_days())
        }
        other => return Err(format!("type {other} is not supported")),
    })
}

/// A log time: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` (UTC) or an integer epoch in `unit`.
pub fn parse_time(v: &JVal<'_>, unit: TimeUnit) -> std::result::Result<i64, String> {
    match v {
        JVal::Int(i) => unit.to_ns(*i).ok_or_else(|| format!("{i} is out of range")),
        JVal::UInt(u) => Err(format!("{u} is out of range")),
        JVal::Float(f) => Err(format!("expected an integer epoch, found {f}")),
        JVal::Str(s) => {
            let s = s.trim();
            if !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                && !s.contains("--")
                && s.len() > 4
                && !s[1..].contains('-')
            {
                let i: i64 = s
                    .parse()
                    .map_err(|_| format!("cannot parse time \"{s}\""))?;
                return unit.to_ns(i).ok_or_else(|| format!("{i} is out of range"));
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return t
                    .timestamp_nanos_opt()
                    .ok_or_else(|| format!("time \"{s}\" is out of range"));
            }
            for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
                if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
                    return chrono::Utc
                        .from_utc_datetime(&t)
                        .timestamp_nanos_opt()
                        .ok_or_else(|| format!("time \"{s}\" is out of range"));
                }
            }
            Err(format!(
                "cannot parse time \"{s}\" (use RFC 3339 or an integer epoch)"
            ))
        }
        other => Err(format!("expected a time, found {other}")),
    }
}

/// Splits a CSV/TSV line; double quotes group (with `""` for a quote) in CSV.
pub fn split_delimited(line: &str, delim: char) -> Vec<String> {
    if delim == '\t' {
        return line.split('\t').map(|s| s.to_string()).collect();
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == delim && !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(
                "log_time",
                DataType::Timestamp(ArrowTimeUnit::Nanosecond, None),
                true,
            ),
            Field::new("sender_ip", DataType::Utf8, true),
            Field::new("line_no", DataType::Int64, true),
            Field::new("log_key", DataType::Utf8, true),
            Field::new("user_id", DataType::Utf8, true),
            Field::new("rank", DataType::Int32, true),
            Field::new("dt", DataType::Utf8, true),
        ]))
    }

    /// A JSON-lines decoder for [`schema`] with `dt` from the log time in `tz`.
    fn json_decoder(tz: &str) -> RowDecoder {
        RowDecoder::new(
            schema(),
            &["dt".into()],
            InputFormat::Jsonl,
            TimeUnit::Ns,
            tz.parse().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn decodes_json_lines_with_key_and_dt() {
        let mut d = json_decoder("Asia/Seoul");
        let o = LineOrigin {
            key: None,
            sender_ip: "10.0.0.1",
            line_no: 7,
        };
        d.push(
            r#"{"log_time":"2019-10-01T16:00:00Z","user_id":"u1","rank":"3"}"#,
            o,
        )
        .unwrap();
        let e = d
            .push(r#"{"log_time":"2019-10-01T16:00:00Z","rank":"x"}"#, o)
            .unwrap_err();
        assert!(e.contains("column rank"), "{e}");
        assert!(
            d.push(r#"{"user_id":"u1"}"#, o)
                .unwrap_err()
                .contains("log_time")
        );
        assert!(d.push("not json", o).unwrap_err().contains("bad JSON"));
        let b = d.finish().unwrap();
        assert_eq!(b.num_rows(), 1);
        // 16:00 UTC is the next day in Seoul.
        assert_eq!(b.column(6).as_string::<i32>().value(0), "2019-10-02");
        assert_eq!(b.column(1).as_string::<i32>().value(0), "10.0.0.1");
        assert!(
            b.column(3)
                .as_string::<i32>()
                .value(0)
                .ends_with("-10.0.0.1-7")
        );
    }

    #[test]
    fn lines_with_other_key_orders_find_their_values() {
        let mut d = json_decoder("UTC");
        let o = LineOrigin {
            key: None,
            sender_ip: "10.0.0.1",
            line_no: 1,
        };
        let t = r#""log_time":"2019-10-01T00:00:00Z""#;
        for line in [
            format!(r#"{{{t},"user_id":"a","rank":1}}"#),
            format!(r#"{{{t},"user_id":"b","rank":2}}"#),
            format!(r#"{{"rank":3,"user_id":"c",{t}}}"#),
            format!(r#"{{{t},"USER_ID":"d","rank":4}}"#),
            format!(r#"{{{t},"user_id":"x","rank":5,"user_id":"e"}}"#),
            format!(r#"{{{t},"rank":6}}"#),
            format!(r#"{{{t},"user_id":"g","rank":7}}"#),
        ] {
            d.push(&line, o).unwrap();
        }
        let b = d.finish().unwrap();
        let users: Vec<Option<&str>> = b.column(4).as_string::<i32>().iter().collect();
        assert_eq!(
            users,
            [
                Some("a"),
                Some("b"),
                Some("c"),
                Some("d"),
                Some("e"),
                None,
                Some("g")
            ]
        );
        let ranks: Vec<Option<i32>> = b
            .column(5)
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
            .iter()
            .collect();
        assert_eq!(ranks, (1..=7).map(Some).collect::<Vec<_>>());
    }

    #[test]
    fn local_day_cache_matches_direct_conversion() {
        for tz in ["Asia/Seoul", "America/New_York", "UTC"] {
            let tz: Tz = tz.parse().unwrap();
            let mut cache = None;
            // Every 17 minutes across the 2019 US daylight-saving end (3 November).
            let start = 1_572_652_800i64; // 2019-11-02T00:00:00Z
            for k in 0..400 {
                let secs = start + k * 17 * 60;
                let got = local_day(&mut cache, tz, secs * 1_000_000_000).unwrap();
                let want = DateTime::from_timestamp(secs, 0)
                    .unwrap()
                    .with_timezone(&tz)
                    .date_naive();
                assert_eq!(got, want, "{tz} at {secs}");
            }
        }
    }

    #[test]
    fn parses_times_and_csv() {
        assert_eq!(
            parse_time(&JVal::Int(1), TimeUnit::S).unwrap(),
            1_000_000_000
        );
        assert_eq!(
            parse_time(&JVal::Str("1970-01-01 00:00:01".into()), TimeUnit::Ns).unwrap(),
            1_000_000_000
        );
        assert!(parse_time(&JVal::Str("yesterday".into()), TimeUnit::Ns).is_err());
        assert_eq!(
            split_delimited(r#"a,"b,c","d""e""#, ','),
            vec!["a", "b,c", "d\"e"]
        );
    }
}
