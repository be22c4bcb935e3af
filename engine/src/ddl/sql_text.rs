//! Quoting for SQL text Cuve prints (`SHOW CREATE TABLE`).

/// Quotes a string literal for SQL.
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
