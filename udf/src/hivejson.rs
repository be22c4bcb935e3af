//! Hive's JSON functions: `get_json_object` with Hive's JSONPath subset (`$`, `.key`, `[n]`,
//! `[*]`, keys of letters, digits, `_`, `-`, `:` and spaces) and `json_tuple`'s per-key value.
//! Objects keep their key order (as Hive's Jackson maps do), so extracted objects print as in
//! the input.

use std::fmt::Write;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value with object keys in input order (a repeated key keeps its first place and its
/// last value, like a `LinkedHashMap`).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Num(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Num(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(v)
                    .map(Json::Num)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = a.next_element()? {
                    out.push(v);
                }
                Ok(Json::Arr(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut out: Vec<(String, Json)> = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Json>()? {
                    match out.iter_mut().find(|(k2, _)| *k2 == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
                Ok(Json::Obj(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl Json {
    pub fn parse(s: &str) -> Option<Json> {
        serde_json::from_str(s).ok()
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Str(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            Json::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Obj(o) => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    /// JSON text of the value.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    /// As Hive returns it: strings unquoted, other scalars as text, arrays and objects as
    /// JSON, JSON null as SQL NULL.
    pub fn to_hive(&self) -> Option<String> {
        match self {
            Json::Null => None,
            Json::Str(s) => Some(s.clone()),
            other => Some(other.to_json()),
        }
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(o) => o.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// One `.`-separated step of a path: an optional key, then indexes (`None` = `*`).
fn step(seg: &str, with_key: bool) -> Option<(Option<&str>, Vec<Option<usize>>)> {
    let key_end = if with_key {
        let end = seg
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':') || c.is_whitespace())
            })
            .unwrap_or(seg.len());
        if end == 0 {
            return None;
        }
        end
    } else {
        0
    };
    let mut rest = &seg[key_end..];
    let mut idx = Vec::new();
    while !rest.is_empty() {
        let r = rest.strip_prefix('[')?;
        let close = r.find(']')?;
        let inner = &r[..close];
        if inner == "*" {
            idx.push(None);
        } else if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
            idx.push(Some(inner.parse().ok()?));
        } else {
            return None;
        }
        rest = &r[close + 1..];
    }
    Some((with_key.then(|| &seg[..key_end]), idx))
}

fn with_key(v: Json, key: &str) -> Option<Json> {
    match v {
        Json::Arr(items) => {
            // a key applied to an array collects it from each object, flattening arrays
            let mut out = Vec::new();
            for item in items {
                match item.get(key) {
                    Some(Json::Arr(a)) => out.extend(a.iter().cloned()),
                    Some(Json::Null) | None => {}
                    Some(x) => out.push(x.clone()),
                }
            }
            (!out.is_empty()).then_some(Json::Arr(out))
        }
        Json::Obj(_) => v.get(key).cloned(),
        _ => None,
    }
}

fn with_indexes(v: Json, idx: &[Option<usize>]) -> Option<Json> {
    let mut list = vec![v];
    for i in idx {
        let mut next = Vec::new();
        for x in &list {
            if let Json::Arr(a) = x {
                match i {
                    None => next.extend(a.iter().cloned()),
                    Some(n) => {
                        if let Some(e) = a.get(*n) {
                            next.push(e.clone());
                        }
                    }
                }
            }
        }
        if next.is_empty() {
            return None;
        }
        list = next;
    }
    if list.len() > 1 {
        Some(Json::Arr(list))
    } else {
        list.pop()
    }
}

/// `get_json_object(json, path)` as Hive's UDFJson: NULL for invalid JSON, an invalid path or
/// a missing value.
pub fn get_json_object(json: &str, path: &str) -> Option<String> {
    let path = path.strip_prefix('$')?;
    let root_array = path.starts_with('[') || path.starts_with(".[");
    if !path.is_empty() && !path.starts_with('.') && !path.starts_with('[') {
        return None;
    }
    let v = Json::parse(json)?;
    match (&v, path.is_empty(), root_array) {
        (Json::Arr(_) | Json::Obj(_), true, _) => {}
        (Json::Arr(_), false, true) | (Json::Obj(_), false, false) => {}
        _ => return None,
    }
    let mut cur = v;
    let segs: Vec<&str> = if let Some(p) = path.strip_prefix('.') {
        p.split('.').collect()
    } else if path.is_empty() {
        vec![]
    } else {
        // `$[0]...`: the first step is indexes only
        let mut s: Vec<&str> = path.split('.').collect();
        if s.is_empty() {
            s.push("");
        }
        s
    };
    for (i, seg) in segs.iter().enumerate() {
        let (key, idx) = step(seg, !(i == 0 && root_array))?;
        if let Some(k) = key {
            cur = with_key(cur, k)?;
        }
        if !idx.is_empty() {
            cur = with_indexes(cur, &idx)?;
        }
    }
    cur.to_hive()
}

/// `json_tuple`'s value for one key: the top-level field as Hive's json_tuple returns it.
pub fn json_tuple_value(json: &Json, key: &str) -> Option<String> {
    json.get(key)?.to_hive()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: &str = r#"{"store":{"fruit":[{"weight":8,"type":"apple"},{"weight":9,"type":"pear"}],"basket":[[1,2,{"b":"y","a":"x"}],[3,4],[5,6]],"book":[{"author":"Nigel Rees","title":"Sayings of the Century","category":"reference","price":8.95},{"author":"Herman Melville","title":"Moby Dick","category":"fiction","price":8.99,"isbn":"0-553-21311-3"},{"author":"J. R. R. Tolkien","title":"The Lord of the Rings","category":"fiction","reader":[{"age":25,"name":"bob"},{"age":26,"name":"jack"}],"price":22.99,"isbn":"0-395-19395-8"}],"bicycle":{"price":19.95,"color":"red"}},"email":"amy@only_for_json_udf_test.net","owner":"amy","zip code":"94025","fb:testid":"1234"}"#;

    fn g(j: &str, p: &str) -> Option<String> {
        get_json_object(j, p)
    }

    #[test]
    fn hive_paths() {
        assert_eq!(g(STORE, "$.owner").unwrap(), "amy");
        assert_eq!(
            g(STORE, "$.store.bicycle").unwrap(),
            r#"{"price":19.95,"color":"red"}"#
        );
        assert_eq!(g(STORE, "$.store.book[0].category").unwrap(), "reference");
        assert_eq!(
            g(STORE, "$.store.book[*].category").unwrap(),
            r#"["reference","fiction","fiction"]"#
        );
        assert_eq!(
            g(STORE, "$.store.book[*].isbn").unwrap(),
            r#"["0-553-21311-3","0-395-19395-8"]"#
        );
        assert_eq!(
            g(STORE, "$.store.book[*].reader").unwrap(),
            r#"[{"age":25,"name":"bob"},{"age":26,"name":"jack"}]"#
        );
        assert_eq!(g(STORE, "$.store.book[*].reader[0].age").unwrap(), "25");
        assert_eq!(
            g(STORE, "$.store.book[*].reader[*].age").unwrap(),
            "[25,26]"
        );
        assert_eq!(g(STORE, "$.store.basket[0][1]").unwrap(), "2");
        assert_eq!(g(STORE, "$.store.basket[*][0]").unwrap(), "[1,3,5]");
        assert_eq!(
            g(STORE, "$.store.basket[0][*]").unwrap(),
            r#"[1,2,{"b":"y","a":"x"}]"#
        );
        assert_eq!(
            g(STORE, "$.store.basket[*][*]").unwrap(),
            r#"[1,2,{"b":"y","a":"x"},3,4,5,6]"#
        );
        assert_eq!(g(STORE, "$.store.basket[0][2].b").unwrap(), "y");
        assert_eq!(g(STORE, "$.store.basket[0][*].b").unwrap(), r#"["y"]"#);
        for p in [
            "$.non_exist_key",
            "$..no_recursive",
            "$.store.book[10]",
            "$.store.book[0].non_exist_key",
            "$.store.basket[*].non_exist_key",
            "$.store.basket[0][*].non_exist_key",
        ] {
            assert_eq!(g(STORE, p), None, "{p}");
        }
        assert_eq!(g(STORE, "$.zip code").unwrap(), "94025");
        assert_eq!(g(STORE, "$.fb:testid").unwrap(), "1234");
    }

    #[test]
    fn root_arrays() {
        let a = "[1,2,3]";
        assert_eq!(g(a, "$[0]").unwrap(), "1");
        assert_eq!(g(a, "$.[0]").unwrap(), "1");
        assert_eq!(g(a, "$.[1]").unwrap(), "2");
        assert_eq!(g(a, "$[*]").unwrap(), "[1,2,3]");
        assert_eq!(g(a, "$").unwrap(), "[1,2,3]");
        assert_eq!(
            g(r#"[{"k1":"v1"},{"k2":"v2"},{"k3":"v3"}]"#, "$[2].k3").unwrap(),
            "v3"
        );
        assert_eq!(g("[[1,2,3],[4,5,6],[7,8,9]]", "$[1][0]").unwrap(), "4");
        assert_eq!(
            g(r#"[{"k1":[{"k11":[1,2,3]}]}]"#, "$[0].k1[0].k11[1]").unwrap(),
            "2"
        );
        for p in [
            "[2]", "$0", "$[0 ]", "$[ 0]", "$[3]", "", "$.", "$[", "$[-1]",
        ] {
            assert_eq!(g(a, p), None, "{p}");
        }
        assert_eq!(g("not json", "$"), None);
        assert_eq!(g(r#""s""#, "$"), None);
        assert_eq!(g(r#"{"a":null}"#, "$.a"), None);
        assert_eq!(g(r#"{"a":"b\nc"}"#, "$.a").unwrap(), "b\nc");
    }
}
