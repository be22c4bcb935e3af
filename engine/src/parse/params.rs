//! Statement parameters. `${name}` (jobs, archive entries) and `?` / `$n` (Flight SQL) become
//! placeholders that DataFusion binds as values ([`LogicalPlan::with_param_values`]): a value
//! is never read as SQL. The only text edits are token-level: `${name}` outside strings becomes
//! the placeholder `$name`; inside a quoted string it is replaced by the value with the quote
//! doubled (the string stays one token); `?` is numbered `$1, $2, ...`.

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::tokens::{Spanned, tokenize};
use crate::error::{EngineError, Result};

/// Values for a statement's placeholders.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Params {
    /// No parameters: a placeholder in the statement is an error.
    #[default]
    None,
    /// `$name` placeholders with text values (`--param name=VALUE`), each typed by where it is
    /// used (`dt = $day` is a string, `rank < $n` an integer).
    Named(BTreeMap<String, String>),
    /// `$1, $2, ...` with typed values (Flight SQL parameter batches).
    Positional(Vec<ScalarValue>),
}

impl Params {
    pub fn is_none(&self) -> bool {
        matches!(self, Params::None)
    }
}

fn syntax(e: datafusion::sql::sqlparser::tokenizer::TokenizerError) -> EngineError {
    EngineError::Syntax(format!(
        "{} at line {}, column {}",
        e.message, e.location.line, e.location.column
    ))
}

/// Rewrites a script's `${name}` parameters: outside strings into `$name` placeholders, inside
/// quoted strings and names into the value (quotes doubled). Comments are left alone. Every
/// name used must have a value.
pub fn named_placeholders(script: &str, values: &BTreeMap<String, String>) -> Result<String> {
    let tokens = tokenize(script).map_err(syntax)?;
    let missing = |name: &str| {
        EngineError::Invalid(format!(
            "the script uses ${{{name}}}: give it with --param {name}=VALUE"
        ))
    };
    let mut out = String::with_capacity(script.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let raw = &script[t.bytes.clone()];
        if let Some((name, next)) = dollar_brace(&tokens, i) {
            if !values.contains_key(&name) {
                return Err(missing(&name));
            }
            out.push('$');
            out.push_str(&name);
            i = next;
            continue;
        }
        let quoted = match &t.token {
            Token::Whitespace(_) => None,
            Token::Word(w) => w.quote_style,
            _ => raw.chars().find(|c| matches!(c, '\'' | '"' | '`')),
        };
        match quoted {
            Some(q) if raw.contains("${") => out.push_str(&interpolate(raw, q, values)?),
            _ => out.push_str(raw),
        }
        i += 1;
    }
    Ok(out)
}

/// `$ { name }` starting at token `i`: the name and the index after `}`.
fn dollar_brace(tokens: &[Spanned], i: usize) -> Option<(String, usize)> {
    if !matches!(&tokens[i].token, Token::Placeholder(p) if p == "$") {
        return None;
    }
    let mut j = i + 1;
    let next = |j: &mut usize| {
        while tokens.get(*j).is_some_and(|t| t.is_blank()) {
            *j += 1;
        }
        let t = tokens.get(*j).map(|t| &t.token);
        *j += 1;
        t
    };
    if next(&mut j) != Some(&Token::LBrace) {
        return None;
    }
    let name = match next(&mut j) {
        Some(Token::Word(w)) if w.quote_style.is_none() => w.value.clone(),
        Some(Token::Number(n, _)) => n.clone(),
        _ => return None,
    };
    (next(&mut j) == Some(&Token::RBrace)).then_some((name, j))
}

/// `${name}` inside one quoted token (raw text, quotes included) replaced by values with the
/// token's quote character doubled.
fn interpolate(raw: &str, quote: char, values: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find('}') {
            Some(end) => {
                let name = after[..end].trim();
                let value = values.get(name).ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "the script uses ${{{name}}}: give it with --param {name}=VALUE"
                    ))
                })?;
                let doubled: String = [quote, quote].iter().collect();
                out.push_str(&value.replace(quote, &doubled));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Numbers `?` placeholders `$1, $2, ...` in order (Flight SQL and JDBC send `?`).
pub fn number_question_marks(sql: &str) -> Result<String> {
    let tokens = tokenize(sql).map_err(syntax)?;
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for t in &tokens {
        match &t.token {
            Token::Placeholder(p) if p == "?" => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            _ => out.push_str(&sql[t.bytes.clone()]),
        }
    }
    Ok(out)
}

/// Whether the text has placeholders (`$name`, `$1`, `?`) outside strings and comments.
pub fn has_placeholders(sql: &str) -> bool {
    tokenize(sql).is_ok_and(|ts| {
        ts.iter()
            .any(|t| matches!(&t.token, Token::Placeholder(p) if p != "$"))
    })
}

/// Replaces placeholders with literal tokens, for the statements Cuve runs itself (DDL,
/// partition specs), where there is no plan to bind into. Each value becomes one literal token.
pub fn inline_literals(sql: &str, params: &Params) -> Result<String> {
    let tokens = tokenize(sql).map_err(syntax)?;
    let mut out = String::with_capacity(sql.len());
    for t in &tokens {
        match &t.token {
            Token::Placeholder(p) if p != "$" => {
                let value = lookup(params, p)?;
                out.push_str(&literal_token(p, &value)?);
            }
            _ => out.push_str(&sql[t.bytes.clone()]),
        }
    }
    Ok(out)
}

fn no_value(id: &str) -> EngineError {
    match id.strip_prefix('$') {
        Some(n) if n.chars().all(|c| c.is_ascii_digit()) => EngineError::Invalid(format!(
            "no value for parameter {id}: bind one value per placeholder"
        )),
        Some(n) => EngineError::Invalid(format!(
            "the statement uses ${{{n}}}: give it with --param {n}=VALUE"
        )),
        None => EngineError::Invalid(format!("no value for parameter {id}")),
    }
}

/// A parameter's value: text (typed later) or a typed scalar.
enum Value {
    Text(String),
    Scalar(ScalarValue),
}

fn lookup(params: &Params, id: &str) -> Result<Value> {
    match params {
        Params::None => Err(no_value(id)),
        Params::Named(m) => id
            .strip_prefix('$')
            .and_then(|n| m.get(n))
            .map(|v| Value::Text(v.clone()))
            .ok_or_else(|| no_value(id)),
        Params::Positional(v) => id
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| v.get(i))
            .map(|s| Value::Scalar(s.clone()))
            .ok_or_else(|| no_value(id)),
    }
}

/// Whether a text value reads as a plain number (`5`, `-1.5`; not `1e9`, `NaN`, `inf`).
fn plain_number(v: &str) -> bool {
    v.parse::<i64>().is_ok()
        || (v.parse::<f64>().is_ok() && !v.contains(['e', 'E', 'n', 'N', 'i', 'I']))
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn literal_token(id: &str, v: &Value) -> Result<String> {
    Ok(match v {
        Value::Text(t) if plain_number(t) => t.clone(),
        Value::Text(t) => quote(t),
        Value::Scalar(s) if s.is_null() => "NULL".into(),
        Value::Scalar(
            s @ (ScalarValue::Int8(_)
            | ScalarValue::Int16(_)
            | ScalarValue::Int32(_)
            | ScalarValue::Int64(_)
            | ScalarValue::UInt8(_)
            | ScalarValue::UInt16(_)
            | ScalarValue::UInt32(_)
            | ScalarValue::UInt64(_)
            | ScalarValue::Boolean(_)),
        ) => s.to_string(),
        Value::Scalar(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => quote(s),
        Value::Scalar(s) => {
            return Err(EngineError::Unsupported(format!(
                "parameter {id} has type {}: statements Cuve runs itself (DDL, partition specs) take text, integer and boolean parameters only",
                s.data_type()
            )));
        }
    })
}

/// A text value as the type its placeholder was inferred to have; without one, a plain number
/// is a number and anything else a string.
fn typed(id: &str, text: &str, ty: Option<&DataType>) -> Result<ScalarValue> {
    match ty {
        Some(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) => {
            Ok(ScalarValue::Utf8(Some(text.to_string())))
        }
        None if plain_number(text) => Ok(text
            .parse::<i64>()
            .map(|n| ScalarValue::Int64(Some(n)))
            .unwrap_or_else(|_| ScalarValue::Float64(text.parse::<f64>().ok()))),
        None => Ok(ScalarValue::Utf8(Some(text.to_string()))),
        Some(t) => ScalarValue::try_from_string(text.to_string(), t).map_err(|_| {
            EngineError::Invalid(format!(
                "parameter {}: '{text}' is not a valid {t}",
                id.trim_start_matches('$')
            ))
        }),
    }
}

/// Binds a plan's placeholders to `params` (an error names a placeholder without a value).
pub fn bind(plan: LogicalPlan, params: &Params) -> Result<LogicalPlan> {
    let types = plan
        .get_parameter_types()
        .map_err(EngineError::from_datafusion)?;
    if types.is_empty() {
        return Ok(plan);
    }
    let values: ParamValues = match params {
        Params::None => {
            let mut ids: Vec<&String> = types.keys().collect();
            ids.sort();
            return Err(no_value(ids[0]));
        }
        Params::Named(values) => {
            let mut map = HashMap::new();
            for (id, ty) in &types {
                let name = id.trim_start_matches('$');
                let text = values.get(name).ok_or_else(|| no_value(id))?;
                map.insert(name.to_string(), typed(id, text, ty.as_ref())?);
            }
            map.into()
        }
        Params::Positional(v) => {
            for id in types.keys() {
                lookup(params, id)?;
            }
            v.clone().into()
        }
    };
    plan.with_param_values(values)
        .map_err(EngineError::from_datafusion)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dollar_names_become_placeholders_and_strings_take_values() {
        let p = map(&[("day", "2019-10-01"), ("evil", "x'; DROP TABLE t; --")]);
        assert_eq!(
            named_placeholders("SELECT * FROM t WHERE dt = ${day} AND q = '${evil}'", &p).unwrap(),
            "SELECT * FROM t WHERE dt = $day AND q = 'x''; DROP TABLE t; --'"
        );
        // An apostrophe in a comment opens no string; the comment is kept as it was.
        let s = named_placeholders("-- today's job ${day}\nSELECT ${ day };", &p).unwrap();
        assert_eq!(s, "-- today's job ${day}\nSELECT $day;");
        assert!(named_placeholders("SELECT ${nope}", &p).is_err());
        assert!(named_placeholders("SELECT '${nope}'", &p).is_err());
    }

    #[test]
    fn question_marks_are_numbered_outside_strings() {
        assert_eq!(
            number_question_marks("SELECT ?, '?', \"?\" -- ?\n FROM t WHERE a = ?").unwrap(),
            "SELECT $1, '?', \"?\" -- ?\n FROM t WHERE a = $2"
        );
    }

    #[test]
    fn literals_for_front_statements_are_single_tokens() {
        let p = Params::Named(map(&[("d", "2019-10-01'); DROP TABLE t; --"), ("n", "5")]));
        assert_eq!(
            inline_literals("ALTER TABLE t DROP PARTITION (dt=$d, n=$n)", &p).unwrap(),
            "ALTER TABLE t DROP PARTITION (dt='2019-10-01''); DROP TABLE t; --', n=5)"
        );
        assert!(inline_literals("SELECT $x", &p).is_err());
    }

    #[test]
    fn text_values_take_the_placeholder_type() {
        assert_eq!(
            typed("$n", "5", Some(&DataType::Int32)).unwrap(),
            ScalarValue::Int32(Some(5))
        );
        assert_eq!(
            typed("$d", "5", Some(&DataType::Utf8)).unwrap(),
            ScalarValue::Utf8(Some("5".into()))
        );
        assert_eq!(typed("$n", "5", None).unwrap(), ScalarValue::Int64(Some(5)));
        assert_eq!(
            typed("$n", "NaN", None).unwrap(),
            ScalarValue::Utf8(Some("NaN".into()))
        );
        let e = typed("$n", "abc", Some(&DataType::Int64)).unwrap_err();
        assert!(e.to_string().contains("parameter n: 'abc'"), "{e}");
    }
}
