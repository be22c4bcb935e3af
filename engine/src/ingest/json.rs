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
        let mut de = serde_json::Deserializer::from_str(line);
        let parsed = JLine::deserialize(&mut de)
            .and_then(|l| de.end().map(|_| l))
            .map_err(|e| format!("bad JSON: {e}"))?;
        Ok(parsed)
    }

    /// The value of `name`: an exact key (the last one when repeated), else a key equal to it
    /// ignoring ASCII case.
    pub fn get(&self, name: &str) -> Option<&JVal<'a>> {
        self.position(name).map(|p| &self.fields[p].1)
    }

    /// Where [`JLine::get`] finds `name` among the fields.
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
