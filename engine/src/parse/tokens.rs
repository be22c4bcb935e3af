//! The one SQL scanner: sqlparser's tokenizer in the dialect DataFusion's planner parses with
//! (strings, quoted names and comments read the same in the front parser's Hive dialect; in
//! neither is backslash an escape). Statement splitting, the REPL's "is this statement
//! complete", and parameter placeholders all read its tokens, so they agree with the parser.

use std::ops::Range;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer, TokenizerError};

/// A token and the bytes of the text it was read from.
#[derive(Debug, Clone)]
pub struct Spanned {
    pub token: Token,
    pub bytes: Range<usize>,
    /// 1-based line and column (in characters) of the token's first character.
    pub line: u64,
    pub column: u64,
}

impl Spanned {
    /// Whether the token is white space or a comment.
    pub fn is_blank(&self) -> bool {
        matches!(self.token, Token::Whitespace(_))
    }
}

/// The tokens of `sql` with byte ranges (raw: strings keep their quotes' escaping).
pub fn tokenize(sql: &str) -> Result<Vec<Spanned>, TokenizerError> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .with_unescape(false)
        .tokenize_with_location()?;
    let mut at = Locator::new(sql);
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        if t.token == Token::EOF {
            break;
        }
        let start = at.offset(t.span.start);
        let end = at.offset(t.span.end).max(start);
        out.push(Spanned {
            token: t.token,
            bytes: start..end,
            line: t.span.start.line,
            column: t.span.start.column,
        });
    }
    Ok(out)
}

/// Whether a tokenizer error means "the text stops inside a string, identifier or comment" (the
/// REPL then waits for more lines).
pub fn is_unterminated(e: &TokenizerError) -> bool {
    let m = e.message.to_ascii_lowercase();
    m.contains("unterminated") || m.contains("before eof") || m.contains("unexpected eof")
}

/// Turns (line, column) locations into byte offsets, moving forward through the text (tokens
/// come in order, so the whole pass is linear).
struct Locator<'a> {
    text: &'a str,
    line: u64,
    column: u64,
    byte: usize,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Self {
        Locator {
            text,
            line: 1,
            column: 1,
            byte: 0,
        }
    }

    fn offset(&mut self, loc: Location) -> usize {
        if loc.line == 0 {
            return self.byte;
        }
        if (loc.line, loc.column) < (self.line, self.column) {
            // Not expected; restart from the beginning rather than give a wrong offset.
            self.line = 1;
            self.column = 1;
            self.byte = 0;
        }
        let mut chars = self.text[self.byte..].char_indices();
        while (self.line, self.column) < (loc.line, loc.column) {
            let Some((_, c)) = chars.next() else {
                return self.text.len();
            };
            self.byte += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.byte
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_cover_the_text() {
        let sql = "SELECT '날씨', \"x\"\n  -- 주석\nFROM t;";
        let toks = tokenize(sql).unwrap();
        let rebuilt: String = toks.iter().map(|t| &sql[t.bytes.clone()]).collect();
        assert_eq!(rebuilt, sql);
        let s = toks
            .iter()
            .find(|t| matches!(t.token, Token::SingleQuotedString(_)))
            .unwrap();
        assert_eq!(&sql[s.bytes.clone()], "'날씨'");
        assert_eq!((s.line, s.column), (1, 8));
    }

    #[test]
    fn unterminated_strings_are_recognised() {
        let e = tokenize("SELECT 'abc").unwrap_err();
        assert!(is_unterminated(&e), "{e}");
        let e = tokenize("SELECT 1 /* open").unwrap_err();
        assert!(is_unterminated(&e), "{e}");
    }
}
