//! Canonical names: every database, table and column name is canonicalised once, here, and
//! compared only in canonical form (lower-case, Unicode NFC, no control or invisible characters).

use unicode_normalization::UnicodeNormalization;

use crate::error::{CatalogError, Result};

/// Characters that render as nothing and would let two different names look the same.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}')
}

fn check_common(kind: &'static str, raw: &str) -> Result<String> {
    let err = |reason: String| CatalogError::InvalidName {
        kind,
        name: raw.escape_debug().to_string(),
        reason,
    };
    if raw.is_empty() {
        return Err(err("the name is empty".into()));
    }
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(err(format!(
            "it contains the control character U+{:04X}",
            c as u32
        )));
    }
    if let Some(c) = raw.chars().find(|c| is_invisible(*c)) {
        return Err(err(format!(
            "it contains the invisible character U+{:04X}; retype the name",
            c as u32
        )));
    }
    let canonical: String = raw.nfc().collect::<String>().to_lowercase();
    // Full-width and other compatibility forms (`ｔ１`) look like the plain letters they stand for.
    if canonical.nfkc().collect::<String>() != canonical {
        return Err(err(
            "it contains full-width or compatibility characters (such as 'ｔ' or '１'); type them as plain letters and digits".into(),
        ));
    }
    if canonical.chars().count() > 128 {
        return Err(err("it is longer than 128 characters".into()));
    }
    Ok(canonical)
}

/// Letters a database or table name may use: ASCII letters and digits, and the letters of
/// Hangul, Han (CJK) and Kana. Other scripts' letters are refused because many look like ASCII
/// ones (`stream_loɡ` with the IPA letter ɡ, Cyrillic `а`) and would make two tables look alike.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c == '_'
        || matches!(c,
            '\u{AC00}'..='\u{D7A3}'   // Hangul syllables
            | '\u{1100}'..='\u{11FF}' // Hangul Jamo
            | '\u{3130}'..='\u{318F}' // Hangul compatibility Jamo
            | '\u{3040}'..='\u{30FF}' // Hiragana, Katakana
            | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
            | '\u{3400}'..='\u{4DBF}') // CJK extension A
}

/// Names no database may take (they are DataFusion's own schemas).
const RESERVED_DATABASES: &[&str] = &["information_schema"];

/// Canonical form of a database or table name. These become directory names, so only letters,
/// digits and `_` are allowed (as in Hive), letters from ASCII, Hangul, Han and Kana.
pub fn object_name(kind: &'static str, raw: &str) -> Result<String> {
    let canonical = check_common(kind, raw)?;
    if let Some(c) = canonical.chars().find(|c| !is_name_char(*c)) {
        let reason = if c.is_alphanumeric() {
            format!(
                "'{c}' (U+{:04X}) is not allowed: it can look like another letter; use ASCII, Hangul, Han or Kana letters, digits and '_'",
                c as u32
            )
        } else {
            format!("'{c}' is not allowed: use letters, digits and '_' only")
        };
        return Err(CatalogError::InvalidName {
            kind,
            name: raw.to_string(),
            reason,
        });
    }
    Ok(canonical)
}

/// Canonical form of a database name.
pub fn database_name(raw: &str) -> Result<String> {
    let name = object_name("database", raw)?;
    if RESERVED_DATABASES.contains(&name.as_str()) {
        return Err(CatalogError::InvalidName {
            kind: "database",
            name: raw.to_string(),
            reason: format!("'{name}' is reserved (DataFusion's own schema); choose another name"),
        });
    }
    Ok(name)
}

/// Canonical form of a table name.
pub fn table_name(raw: &str) -> Result<String> {
    object_name("table", raw)
}

/// Letters of the scripts whose letters look like ASCII ones: Greek, Cyrillic and the IPA
/// extensions (`ɡ`, `ɑ`, `ο`, `а`, `е`, `р` ...).
fn is_look_alike_letter(c: char) -> bool {
    matches!(c, '\u{0250}'..='\u{02AF}' | '\u{0370}'..='\u{03FF}' | '\u{0400}'..='\u{052F}' | '\u{1D00}'..='\u{1DBF}')
}

/// Canonical form of a column name (anything printable; no control or invisible characters).
/// A name written in one script is fine (`사용자`, `пользователь`, `café`); a name that mixes
/// ASCII letters with Greek, Cyrillic or IPA letters (`stream_loɡ`, Cyrillic `а` in `dаta`) is
/// refused, since it looks like another name.
pub fn column_name(raw: &str) -> Result<String> {
    let canonical = check_common("column", raw)?;
    if canonical.contains('/') || canonical.contains('=') {
        return Err(CatalogError::InvalidName {
            kind: "column",
            name: raw.to_string(),
            reason: "'/' and '=' are not allowed in column names".into(),
        });
    }
    if canonical.chars().any(|c| c.is_ascii_alphabetic())
        && let Some(c) = canonical.chars().find(|c| is_look_alike_letter(*c))
    {
        return Err(CatalogError::InvalidName {
            kind: "column",
            name: raw.to_string(),
            reason: format!(
                "it mixes ASCII letters with '{c}' (U+{:04X}), which looks like an ASCII letter; write the name in one script",
                c as u32
            ),
        });
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_cases_and_normalises() {
        assert_eq!(database_name("Korea_Naver_LOG").unwrap(), "korea_naver_log");
        // "é" written as e + combining accent becomes the single NFC character.
        assert_eq!(column_name("Cafe\u{301}").unwrap(), "caf\u{e9}");
    }

    #[test]
    fn rejects_invisible_and_control_characters() {
        let e = table_name("stream\u{200B}log").unwrap_err().to_string();
        assert!(e.contains("U+200B"), "{e}");
        let e = table_name("a\nb").unwrap_err().to_string();
        assert!(e.contains("control character"), "{e}");
        assert!(database_name("").is_err());
        assert!(table_name("../etc").is_err());
        assert!(table_name("a.b").is_err());
    }

    #[test]
    fn rejects_look_alike_and_reserved_names() {
        let e = table_name("ｔ１").unwrap_err().to_string();
        assert!(e.contains("full-width"), "{e}");
        let e = table_name("stream_lo\u{261}").unwrap_err().to_string();
        assert!(e.contains("U+0261"), "{e}");
        assert!(table_name("str\u{435}am").is_err(), "Cyrillic e");
        assert_eq!(table_name("검색_로그").unwrap(), "검색_로그");
        assert_eq!(database_name("日本_log").unwrap(), "日本_log");
        let e = database_name("INFORMATION_SCHEMA").unwrap_err().to_string();
        assert!(e.contains("reserved"), "{e}");
    }

    #[test]
    fn column_names_in_one_script_pass_and_look_alikes_do_not() {
        let e = column_name("stream_lo\u{261}").unwrap_err().to_string();
        assert!(e.contains("U+0261") && e.contains("one script"), "{e}");
        assert!(
            column_name("d\u{430}ta").is_err(),
            "Cyrillic a among ASCII letters"
        );
        assert!(column_name("\u{3bf}rder_id").is_err(), "Greek omicron");
        assert_eq!(column_name("사용자_id").unwrap(), "사용자_id");
        assert_eq!(column_name("Пользователь").unwrap(), "пользователь");
        assert_eq!(column_name("λ").unwrap(), "λ");
        assert_eq!(column_name("café").unwrap(), "café");
    }
}
