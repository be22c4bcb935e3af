//! Scripts into statements, from the tokenizer's `;` tokens: a `;` inside a string, a quoted
//! name or a comment never ends a statement, and a string that ends in a backslash ends there
//! (backslash is no escape in Cuve's SQL, as in the parser).

use datafusion::sql::sqlparser::tokenizer::Token;

use super::tokens::{is_unterminated, tokenize};
use crate::error::{EngineError, Result};

/// One statement of a script, with where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementText {
    /// The statement without its terminating `;` and surrounding comments.
    pub text: String,
    /// 1-based line of the statement's first character in the script.
    pub line: usize,
    /// 1-based position of the statement in the script.
    pub index: usize,
}

/// Splits a script on `;` outside strings, quoted names and comments; empty statements are
/// dropped. A script that cannot be read (e.g. a string that never ends) is an error naming
/// the line and column.
pub fn split_statements(script: &str) -> Result<Vec<StatementText>> {
    let tokens = tokenize(script).map_err(|e| {
        EngineError::Syntax(format!(
            "{} at line {}, column {}",
            e.message, e.location.line, e.location.column
        ))
    })?;
    let mut out = Vec::new();
    let mut first: Option<usize> = None; // index of the statement's first code token
    let mut last = 0usize;
    let push = |first: Option<usize>, last: usize, out: &mut Vec<StatementText>| {
        if let Some(f) = first {
            let t = &tokens[f];
            out.push(StatementText {
                text: script[t.bytes.start..tokens[last].bytes.end].to_string(),
                line: t.line as usize,
                index: out.len() + 1,
            });
        }
    };
    for (i, t) in tokens.iter().enumerate() {
        if t.is_blank() {
            continue;
        }
        if t.token == Token::SemiColon {
            push(first.take(), last, &mut out);
            continue;
        }
        first.get_or_insert(i);
        last = i;
    }
    push(first, last, &mut out);
    Ok(out)
}

/// Whether `script` ends a statement: its last token that is not white space or a comment is
/// a `;`. Text that stops inside a string or comment is not complete (the REPL keeps reading);
/// text the tokenizer rejects otherwise is "complete" so that running it reports the error.
pub fn is_complete(script: &str) -> bool {
    match tokenize(script) {
        Ok(tokens) => tokens
            .iter()
            .rev()
            .find(|t| !t.is_blank())
            .is_some_and(|t| t.token == Token::SemiColon),
        Err(e) => !is_unterminated(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_scripts_with_lines() {
        let s = "SELECT 1;\n-- a comment; with semicolon\nSELECT ';' /* ; */ ;\n\n  SELECT 3";
        let v = split_statements(s).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].text, "SELECT ';'");
        assert_eq!(v[1].line, 3);
        assert_eq!(v[2].line, 5);
        assert_eq!(v[2].index, 3);
        assert!(split_statements(" ; -- nothing\n;").unwrap().is_empty());
    }

    #[test]
    fn a_trailing_backslash_ends_the_string() {
        let v = split_statements("SELECT 'C:\\'; INSERT INTO t VALUES (1)").unwrap();
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].text, "SELECT 'C:\\'");
        assert_eq!(v[1].text, "INSERT INTO t VALUES (1)");
        // Apostrophes in comments and doubled quotes in strings do not open strings.
        let v = split_statements("-- today's job\nSELECT 'it''s'; SELECT `a;b`; SELECT \"x;\"")
            .unwrap();
        assert_eq!(v.len(), 3, "{v:?}");
        assert_eq!(v[0].line, 2);
    }

    #[test]
    fn unterminated_text_is_an_error_with_its_place() {
        let e = split_statements("SELECT 1;\nSELECT 'open")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn completeness_for_the_repl() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(is_complete("SELECT 'C:\\';"));
        assert!(!is_complete("SELECT ';'"));
        assert!(!is_complete("SELECT 'a;"));
        assert!(!is_complete("SELECT 1 /* ; */"));
        assert!(!is_complete("SELECT 1 /* ; "));
        assert!(!is_complete(""));
    }
}
