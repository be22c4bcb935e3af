//! A JSON line as a flat list of (key, value) pairs that borrow from the line where they can
//! (strings without escapes), so decoding a log line allocates almost nothing. Nested objects
//! and arrays are kept as their JSON text.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, Deserialize, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// One top-level value of a JSON line (or a CSV/TSV field, as a string).
#[derive(Debug, Clone, PartialEq)]
pub enum JVal<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    /// An object or array, as JSON text.
    Nested(String),
}

impl JVal<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, JVal::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            JVal::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// JSON text of the value (strings quoted), as in error messages and when a non-string value
/// goes into a string column (strings themselves are stored unquoted by the caller).
impl fmt::Display for JVal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JVal::Null => f.write_str("null"),
            JVal::Bool(b) => write!(f, "{b}"),
            JVal::Int(i) => write!(f, "{i}"),
            JVal::UInt(u) => write!(f, "{u}"),
            JVal::Float(x) => match serde_json::Number::from_f64(*x) {
                Some(n) => write!(f, "{n}"),
                None => f.write_str("null"),
            },
            JVal::Str(s) => write!(f, "{}", Value::String(s.to_string())),
            JVal::Nested(s) => f.write_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for JVal<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JValVisitor)
    }
}

struct JValVisitor;

impl<'de> Visitor<'de> for JValVisitor {
    type Value = JVal<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(JVal::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(JVal::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map(JVal::Int).unwrap_or(JVal::UInt(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(JVal::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(JVal::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(JVal::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(JVal::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(JVal::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(JVal::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(JValVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(JVal::Nested(v.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(JVal::Nested(v.to_string()))
    }
}

/// A key, borrowed unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The fields of one line, in line order.
#[derive(Debug, Default)]
pub struct JLine<'a> {
    pub fields: Vec<(Cow<'a, str>, JVal<'a>)>,
}

impl<'a> JLine<'a> {
    /// Parses a line that must hold one JSON object.
    pub fn parse(line: &'a str) -> Result<Self, String> {
        if !line.trim_start().starts_with('{') {
            return Err("bad JSON: a line must be an object".into());
        }
        if let Some(fields) = parse_flat(line) {
            return Ok(JLine { fields });
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let parsed = JLine::deserialize(&mut de)
            .and_then(|l| de.end().map(|_| l))
            .map_err(|e| format!("bad JSON: {e}"))?;
        Ok(parsed)
    }

    /// The value of `name`: an exact key (the last one when repeated), else a key equal to it
    /// ignoring ASCII case. (The decoder keeps the positions per key layout instead.)
    #[cfg(test)]
    pub fn get(&self, name: &str) -> Option<&JVal<'a>> {
        self.position(name).map(|p| &self.fields[p].1)
    }

    /// Where `name`'s value is among the fields: an exact key (the last one when repeated),
    /// else a key equal to it ignoring ASCII case.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .rposition(|(k, _)| k == name)
            .or_else(|| {
                self.fields
                    .iter()
                    .position(|(k, _)| k.eq_ignore_ascii_case(name))
            })
    }
}

/// The fast path of [`JLine::parse`]: a flat object whose keys and string values have no
/// escapes and whose other values are `true`, `false`, `null` or integers that fit an `i64`
/// (what log lines almost always are). Anything else (escapes, nested values, other numbers,
/// and every malformed line) returns `None`, and the line goes through serde_json, so both
/// paths give the same fields. About three times faster than serde_json on log lines: it
/// skips serde's per-value dispatch and finds the end of a string with one scan.
fn parse_flat(line: &str) -> Option<Vec<(Cow<'_, str>, JVal<'_>)>> {
    let b = line.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let mut fields = Vec::with_capacity(16);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let (key, next) = plain_string(line, i)?;
            i = skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let (value, next) = flat_value(line, i)?;
            fields.push((Cow::Borrowed(key), value));
            i = skip_ws(b, next);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some(fields)
}

/// JSON white space from `i` on.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// A string starting at `i` without escapes or control characters, and the index after it.
fn plain_string(line: &str, i: usize) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let len = b[start..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    let end = start + len;
    // Both ends are ASCII quotes, so the slice is on character boundaries.
    (b[end] == b'"').then(|| (&line[start..end], end + 1))
}

/// A string, literal or `i64` integer starting at `i`, and the index after it.
fn flat_value(line: &str, i: usize) -> Option<(JVal<'_>, usize)> {
    let b = line.as_bytes();
    let literal =
        |word: &[u8], v: JVal<'static>| b[i..].starts_with(word).then_some((v, i + word.len()));
    match *b.get(i)? {
        b'"' => plain_string(line, i).map(|(s, next)| (JVal::Str(Cow::Borrowed(s)), next)),
        b't' => literal(b"true", JVal::Bool(true)),
        b'f' => literal(b"false", JVal::Bool(false)),
        b'n' => literal(b"null", JVal::Null),
        b'-' | b'0'..=b'9' => {
            let negative = b[i] == b'-';
            let digits = i + usize::from(negative);
            let end = digits
                + b[digits..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
            // No digits, a leading zero, a fraction or an exponent: serde_json decides.
            if end == digits
                || (b[digits] == b'0' && end - digits > 1)
                || matches!(b.get(end), Some(b'.' | b'e' | b'E'))
            {
                return None;
            }
            let v: i64 = line[i..end].parse().ok()?;
            // serde_json reads `-0` as a float.
            if negative && v == 0 {
                return None;
            }
            Some((JVal::Int(v), end))
        }
        _ => None,
    }
}

impl<'de> Deserialize<'de> for JLine<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LineVisitor;
        impl<'de> Visitor<'de> for LineVisitor {
            type Value = JLine<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v: JVal<'de> = map.next_value()?;
                    fields.push((k, v));
                }
                Ok(JLine { fields })
            }
        }
        d.deserialize_map(LineVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_plain_strings_and_keeps_nested_text() {
        let line = r#"{"a":"x","b":"q\"uote","n":-3,"big":18446744073709551615,"f":1.5,"t":true,"z":null,"o":{"k":[1,2]}}"#;
        let l = JLine::parse(line).unwrap();
        assert!(matches!(l.get("a"), Some(JVal::Str(Cow::Borrowed("x")))));
        assert_eq!(l.get("b").and_then(|v| v.as_str()), Some("q\"uote"));
        assert_eq!(l.get("n"), Some(&JVal::Int(-3)));
        assert_eq!(l.get("big"), Some(&JVal::UInt(u64::MAX)));
        assert_eq!(l.get("f"), Some(&JVal::Float(1.5)));
        assert_eq!(l.get("t"), Some(&JVal::Bool(true)));
        assert!(l.get("z").is_some_and(|v| v.is_null()));
        assert_eq!(l.get("o"), Some(&JVal::Nested(r#"{"k":[1,2]}"#.into())));
        assert_eq!(
            l.get("O").map(|v| v.to_string()),
            Some(r#"{"k":[1,2]}"#.into())
        );
        assert_eq!(l.get("missing"), None);
    }

    /// Fields as serde_json alone reads them.
    fn slow(line: &str) -> Result<Vec<(String, JVal<'_>)>, String> {
        let mut de = serde_json::Deserializer::from_str(line);
        JLine::deserialize(&mut de)
            .and_then(|l| de.end().map(|_| l))
            .map(|l| {
                l.fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn fast_path_reads_what_serde_json_reads() {
        let lines = [
            r#"{"log_time":"2019-10-12T00:00:01Z","user_id":"u1","rank":5,"ok":true,"x":null}"#,
            r#" { "a" : "가나" , "b" :-12 ,"c":false } "#,
            "{}",
            " {\t}\r\n",
            r#"{"a":1,"a":2}"#,
            r#"{"big":9223372036854775807,"neg":-9223372036854775808}"#,
            // Handed to serde_json (or rejected by both).
            r#"{"big":9223372036854775808}"#,
            r#"{"z":-0}"#,
            r#"{"f":1.5,"e":1e3,"E":2E-2}"#,
            r#"{"s":"q\"uote","k\u0041":1}"#,
            r#"{"o":{"k":[1,2]},"l":[]}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":truex}"#,
            r#"{"a":"x"}x"#,
            r#"{"a":"x",}"#,
            r#"{"a" "x"}"#,
            r#"{"a":"x""#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":"x"} {"b":1}"#,
            r#"["a"]"#,
        ];
        for line in lines {
            let want = slow(line);
            match parse_flat(line) {
                Some(fields) => {
                    let got: Vec<(String, JVal<'_>)> = fields
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect();
                    assert_eq!(Ok(got), want, "{line}");
                }
                None => {
                    // The fallback decides; the public parse agrees with serde_json.
                    let got = JLine::parse(line).map(|l| {
                        l.fields
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect::<Vec<_>>()
                    });
                    match (&got, &want) {
                        (Ok(g), Ok(w)) => assert_eq!(g, w, "{line}"),
                        (Err(_), Err(_)) => {}
                        _ => panic!("{line}: {got:?} vs {want:?}"),
                    }
                }
            }
        }
        // The common shapes take the fast path.
        assert!(parse_flat(lines[0]).is_some());
        assert!(parse_flat(lines[1]).is_some());
        assert!(parse_flat(lines[5]).is_some());
        assert!(parse_flat(r#"{"z":-0}"#).is_none());
        assert!(parse_flat(r#"{"a":truex}"#).is_none());
    }

    #[test]
    fn last_repeated_key_wins_and_errors_are_clear() {
        let l = JLine::parse(r#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(l.get("a"), Some(&JVal::Int(2)));
        assert_eq!(
            JLine::parse("[1]").unwrap_err(),
            "bad JSON: a line must be an object"
        );
        assert!(
            JLine::parse(r#"{"a":1"#)
                .unwrap_err()
                .starts_with("bad JSON: ")
        );
        assert!(
            JLine::parse(r#"{"a":1} x"#)
                .unwrap_err()
                .starts_with("bad JSON: ")
        );
        assert_eq!(JVal::Str("é\"".into()).to_string(), "\"é\\\"\"");
    }
}
