//! Java `DateTimeFormatter` patterns (what Hive 3/4 uses for `date_format`, `from_unixtime`,
//! `unix_timestamp`), formatted and parsed by Cuve itself: chrono's strftime has no week-based
//! year, week of month, era or truncated fractions, so patterns are not translated to it.
//!
//! Rules follow `java.time.format.DateTimeFormatter` (Java 8, `Locale.US`, time zone UTC):
//! `'text'` is literal and `''` a quote, `[` `]` (optional sections) are dropped, other
//! non-letters are literal, and an unknown letter or too many letters (`ddd`, `aa`, `B`) make
//! the pattern invalid, which the callers turn into NULL as Hive does. Weeks are US weeks
//! (Sunday first, week 1 holds 1 January). A pattern with `%` outside quotes is a chrono
//! pattern (DataFusion's form): [`chrono_items`] checks it before use, since chrono's `Display`
//! panics on invalid items.

use chrono::format::{Item, StrftimeItems};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// One element of a compiled Java pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// Literal text.
    Lit(String),
    /// A pattern letter repeated `n` times.
    Field(char, usize),
}

/// A date pattern: Java (compiled) or chrono (checked items).
#[derive(Debug, Clone)]
pub enum Pattern {
    Java(Vec<Tok>),
    Chrono(Vec<Item<'static>>),
}

/// Whether `pattern` has a `%` outside quoted text (then it is a chrono pattern).
pub fn is_chrono(pattern: &str) -> bool {
    let mut quoted = false;
    for c in pattern.chars() {
        match c {
            '\'' => quoted = !quoted,
            '%' if !quoted => return true,
            _ => {}
        }
    }
    false
}

/// A chrono pattern's items, `Err` when any item is invalid (chrono would panic formatting it).
pub fn chrono_items(pattern: &str) -> Result<Vec<Item<'static>>, String> {
    let items: Vec<Item<'static>> = StrftimeItems::new(pattern)
        .map(|i| match i {
            Item::Literal(s) => Item::OwnedLiteral(s.into()),
            Item::Space(s) => Item::OwnedSpace(s.into()),
            other => other.to_owned(),
        })
        .collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(format!("invalid chrono format '{pattern}'"));
    }
    Ok(items)
}

/// Compiles a Java or chrono pattern.
pub fn pattern(p: &str) -> Result<Pattern, String> {
    if is_chrono(p) {
        chrono_items(p).map(Pattern::Chrono)
    } else {
        compile(p).map(Pattern::Java)
    }
}

fn max_count(c: char) -> Option<usize> {
    Some(match c {
        'G' | 'M' | 'L' | 'Q' | 'q' | 'E' | 'e' | 'c' | 'X' | 'x' | 'Z' => 5,
        'y' | 'u' | 'Y' | 'A' | 'n' | 'N' => 19,
        'd' | 'h' | 'K' | 'k' | 'H' | 'm' | 's' | 'w' => 2,
        'D' => 3,
        'S' => 9,
        'z' | 'O' => 4,
        'V' => 2,
        'F' | 'W' | 'a' => 1,
        _ => return None,
    })
}

/// Compiles a Java pattern; `Err` names the offending letter.
pub fn compile(pattern: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out: Vec<Tok> = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            if i < chars.len() && chars[i] == '\'' {
                lit.push('\'');
                i += 1;
                continue;
            }
            let mut closed = false;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if i + 1 < chars.len() && chars[i + 1] == '\'' {
                        lit.push('\'');
                        i += 2;
                        continue;
                    }
                    closed = true;
                    i += 1;
                    break;
                }
                lit.push(chars[i]);
                i += 1;
            }
            if !closed {
                return Err(format!("unterminated quote in date pattern '{pattern}'"));
            }
            continue;
        }
        if matches!(c, '#' | '{' | '}') {
            return Err(format!(
                "reserved character '{c}' in date pattern '{pattern}'"
            ));
        }
        if matches!(c, '[' | ']') {
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            lit.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let max = max_count(c)
            .ok_or_else(|| format!("unknown date pattern letter '{c}' in '{pattern}'"))?;
        let bad = n > max
            || (c == 'V' && n != 2)
            || (c == 'O' && n != 1 && n != 4)
            || (c == 'c' && n == 2);
        if bad {
            return Err(format!(
                "too many pattern letters '{}' in '{pattern}'",
                c.to_string().repeat(n)
            ));
        }
        if !lit.is_empty() {
            out.push(Tok::Lit(std::mem::take(&mut lit)));
        }
        out.push(Tok::Field(c, n));
        i += n;
    }
    if !lit.is_empty() {
        out.push(Tok::Lit(lit));
    }
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn pad(out: &mut String, v: i64, width: usize) {
    let s = v.unsigned_abs().to_string();
    if v < 0 {
        out.push('-');
    }
    for _ in s.len()..width {
        out.push('0');
    }
    out.push_str(&s);
}

fn text(out: &mut String, full: &str, n: usize) {
    match n {
        1..=3 => out.extend(full.chars().take(3)),
        4 => out.push_str(full),
        _ => out.extend(full.chars().take(1)),
    }
}

/// US week fields: (week-based year, week of that year), Sunday first, week 1 holds 1 January.
pub fn us_week(d: NaiveDate) -> (i32, u32) {
    let from_sunday = d.weekday().num_days_from_sunday() as i64;
    let saturday = d
        .checked_add_signed(chrono::Duration::days(6 - from_sunday))
        .unwrap_or(d);
    if saturday.year() > d.year() {
        return (d.year() + 1, 1);
    }
    let jan1 = NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d);
    let jan1_dow = jan1.weekday().num_days_from_sunday();
    (d.year(), (d.ordinal0() + jan1_dow) / 7 + 1)
}

fn year(out: &mut String, y: i64, n: usize) {
    if n == 2 {
        pad(out, y.rem_euclid(100), 2);
    } else {
        pad(out, y, n);
    }
}

/// Formats `t` (UTC) with a compiled Java pattern. Never panics.
pub fn format(toks: &[Tok], t: &NaiveDateTime) -> String {
    let mut out = String::new();
    let d = t.date();
    for tok in toks {
        let (c, n) = match tok {
            Tok::Lit(s) => {
                out.push_str(s);
                continue;
            }
            Tok::Field(c, n) => (*c, *n),
        };
        let hour = t.hour() as i64;
        match c {
            'G' => match n {
                1..=3 => out.push_str(if d.year() > 0 { "AD" } else { "BC" }),
                4 => out.push_str(if d.year() > 0 {
                    "Anno Domini"
                } else {
                    "Before Christ"
                }),
                _ => out.push_str(if d.year() > 0 { "A" } else { "B" }),
            },
            'y' => {
                let y = d.year() as i64;
                year(&mut out, if y > 0 { y } else { 1 - y }, n)
            }
            'u' => year(&mut out, d.year() as i64, n),
            'Y' => year(&mut out, us_week(d).0 as i64, n),
            'w' => pad(&mut out, us_week(d).1 as i64, n),
            'W' => {
                let first = d.with_day(1).unwrap_or(d);
                let off = first.weekday().num_days_from_sunday();
                pad(&mut out, ((d.day0() + off) / 7 + 1) as i64, n)
            }
            'Q' | 'q' => {
                let q = (d.month0() / 3 + 1) as i64;
                match n {
                    1 | 2 => pad(&mut out, q, n),
                    3 => {
                        out.push('Q');
                        pad(&mut out, q, 1)
                    }
                    4 => out.push_str(["1st", "2nd", "3rd", "4th"][(q - 1) as usize % 4]),
                    _ => pad(&mut out, q, 1),
                }
                if n == 4 {
                    out.push_str(" quarter");
                }
            }
            'M' | 'L' => match n {
                1 | 2 => pad(&mut out, d.month() as i64, n),
                _ => text(&mut out, MONTHS[d.month0() as usize % 12], n),
            },
            'd' => pad(&mut out, d.day() as i64, n),
            'D' => pad(&mut out, d.ordinal() as i64, n),
            'F' => pad(&mut out, (d.day0() % 7 + 1) as i64, n),
            'E' => text(
                &mut out,
                DAYS[d.weekday().num_days_from_monday() as usize % 7],
                n,
            ),
            'e' | 'c' => match n {
                1 | 2 => pad(&mut out, (d.weekday().num_days_from_sunday() + 1) as i64, n),
                _ => text(
                    &mut out,
                    DAYS[d.weekday().num_days_from_monday() as usize % 7],
                    n,
                ),
            },
            'a' => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            'H' => pad(&mut out, hour, n),
            'k' => pad(&mut out, if hour == 0 { 24 } else { hour }, n),
            'K' => pad(&mut out, hour % 12, n),
            'h' => pad(&mut out, if hour % 12 == 0 { 12 } else { hour % 12 }, n),
            'm' => pad(&mut out, t.minute() as i64, n),
            's' => pad(&mut out, t.second() as i64, n),
            'S' => {
                let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
                out.push_str(&nanos[..n.min(9)]);
            }
            'A' => pad(
                &mut out,
                t.num_seconds_from_midnight() as i64 * 1000
                    + (t.nanosecond() % 1_000_000_000) as i64 / 1_000_000,
                n,
            ),
            'n' => pad(&mut out, (t.nanosecond() % 1_000_000_000) as i64, n),
            'N' => pad(
                &mut out,
                t.num_seconds_from_midnight() as i64 * 1_000_000_000
                    + (t.nanosecond() % 1_000_000_000) as i64,
                n,
            ),
            'z' => out.push_str(if n == 4 {
                "Coordinated Universal Time"
            } else {
                "UTC"
            }),
            'V' => out.push_str("UTC"),
            'O' => out.push_str("GMT"),
            'X' => out.push('Z'),
            'x' => out.push_str(match n {
                1 => "+00",
                2 | 4 => "+0000",
                _ => "+00:00",
            }),
            'Z' => out.push_str(match n {
                1..=3 => "+0000",
                4 => "GMT",
                _ => "Z",
            }),
            _ => {}
        }
    }
    out
}

/// Formats with a chrono pattern's checked items; `None` when chrono refuses.
pub fn format_chrono(items: &[Item<'static>], t: &NaiveDateTime) -> Option<String> {
    use std::fmt::Write;
    let mut s = String::new();
    write!(s, "{}", t.format_with_items(items.iter())).ok()?;
    Some(s)
}

/// Formats with either kind of pattern.
pub fn format_with(p: &Pattern, t: &NaiveDateTime) -> Option<String> {
    match p {
        Pattern::Java(toks) => Some(format(toks, t)),
        Pattern::Chrono(items) => format_chrono(items, t),
    }
}

struct Parsed {
    year: Option<i64>,
    month: Option<u32>,
    day: Option<u32>,
    doy: Option<u32>,
    hour: Option<u32>,
    hour12: Option<u32>,
    pm: Option<bool>,
    minute: u32,
    second: u32,
    nano: u32,
    offset_secs: i64,
}

/// Reads `min..=max` ASCII digits at `*pos` as a number, advancing `*pos` past them.
pub(crate) fn take_digits<T: std::str::FromStr>(
    s: &[u8],
    pos: &mut usize,
    min: usize,
    max: usize,
) -> Option<T> {
    let start = *pos;
    let mut end = start;
    while end < s.len() && end - start < max && s[end].is_ascii_digit() {
        end += 1;
    }
    if end - start < min {
        return None;
    }
    let v = std::str::from_utf8(&s[start..end]).ok()?.parse().ok()?;
    *pos = end;
    Some(v)
}

fn take_text(s: &str, pos: &mut usize, names: &[&str], n: usize) -> Option<usize> {
    let rest = s.get(*pos..)?;
    for (i, full) in names.iter().enumerate() {
        let cand: String = if n == 4 {
            full.to_string()
        } else {
            full.chars().take(3).collect()
        };
        if rest
            .get(..cand.len())
            .is_some_and(|r| r.eq_ignore_ascii_case(&cand))
        {
            *pos += cand.len();
            return Some(i);
        }
    }
    None
}

fn take_offset(s: &str, pos: &mut usize) -> Option<i64> {
    let rest = s.get(*pos..)?;
    for z in ["UTC", "GMT", "Z"] {
        if rest
            .get(..z.len())
            .is_some_and(|r| r.eq_ignore_ascii_case(z))
        {
            *pos += z.len();
            let mut p = *pos;
            if let Some(off) = take_offset_num(s.as_bytes(), &mut p) {
                *pos = p;
                return Some(off);
            }
            return Some(0);
        }
    }
    take_offset_num(s.as_bytes(), pos)
}

fn take_offset_num(b: &[u8], pos: &mut usize) -> Option<i64> {
    let sign = match b.get(*pos)? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut p = *pos + 1;
    let h = take_digits::<i64>(b, &mut p, 2, 2)?;
    if b.get(p) == Some(&b':') {
        p += 1;
    }
    let m = take_digits::<i64>(b, &mut p, 2, 2).unwrap_or(0);
    *pos = p;
    Some(sign * (h * 3600 + m * 60))
}

fn numeric(c: char) -> bool {
    matches!(
        c,
        'y' | 'u' | 'Y' | 'M' | 'L' | 'd' | 'D' | 'H' | 'h' | 'K' | 'k' | 'm' | 's' | 'S'
    )
}

/// Parses `s` (whole) with a compiled Java pattern, as UTC unless it carries an offset.
/// Missing fields default to 1970-01-01 00:00:00; impossible dates give `None`.
pub fn parse(toks: &[Tok], s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut p = Parsed {
        year: None,
        month: None,
        day: None,
        doy: None,
        hour: None,
        hour12: None,
        pm: None,
        minute: 0,
        second: 0,
        nano: 0,
        offset_secs: 0,
    };
    for (i, tok) in toks.iter().enumerate() {
        let (c, n) = match tok {
            Tok::Lit(l) => {
                let rest = s.get(pos..)?;
                if !rest.starts_with(l.as_str()) {
                    return None;
                }
                pos += l.len();
                continue;
            }
            Tok::Field(c, n) => (*c, *n),
        };
        let next_numeric = matches!(toks.get(i + 1), Some(Tok::Field(c2, _)) if numeric(*c2));
        let (min, max) = if n == 1 && !next_numeric {
            (1, 10)
        } else {
            (n, n.max(2))
        };
        match c {
            'y' | 'u' | 'Y' => {
                let v = if n == 2 {
                    2000 + take_digits::<i64>(b, &mut pos, 2, 2)?
                } else if next_numeric {
                    take_digits::<i64>(b, &mut pos, n.max(4), n.max(4))?
                } else {
                    take_digits::<i64>(b, &mut pos, n.min(4), 9)?
                };
                p.year = Some(v);
            }
            'M' | 'L' => {
                if n >= 3 {
                    p.month = Some(take_text(s, &mut pos, &MONTHS, n)? as u32 + 1);
                } else {
                    p.month = Some(take_digits::<i64>(b, &mut pos, min, max)? as u32);
                }
            }
            'd' => p.day = Some(take_digits::<i64>(b, &mut pos, min, max)? as u32),
            'D' => p.doy = Some(take_digits::<i64>(b, &mut pos, min, max.max(3))? as u32),
            'E' => {
                take_text(s, &mut pos, &DAYS, n)?;
            }
            'a' => {
                let rest = s.get(pos..)?;
                if rest.len() < 2 || !rest.is_char_boundary(2) {
                    return None;
                }
                p.pm = Some(match rest[..2].to_ascii_uppercase().as_str() {
                    "AM" => false,
                    "PM" => true,
                    _ => return None,
                });
                pos += 2;
            }
            'H' | 'k' => {
                let h = take_digits::<i64>(b, &mut pos, min, max)? as u32;
                p.hour = Some(if c == 'k' && h == 24 { 0 } else { h });
            }
            'h' | 'K' => p.hour12 = Some(take_digits::<i64>(b, &mut pos, min, max)? as u32 % 12),
            'm' => p.minute = take_digits::<i64>(b, &mut pos, min, max)? as u32,
            's' => p.second = take_digits::<i64>(b, &mut pos, min, max)? as u32,
            'S' => {
                let start = pos;
                let v = take_digits::<i64>(b, &mut pos, n, n)?;
                let digits = (pos - start) as u32;
                p.nano = (v * 10_i64.pow(9 - digits.min(9))) as u32;
            }
            'z' | 'Z' | 'X' | 'x' | 'O' | 'V' => p.offset_secs = take_offset(s, &mut pos)?,
            _ => return None,
        }
    }
    if pos != s.len() {
        return None;
    }
    let year = i32::try_from(p.year.unwrap_or(1970)).ok()?;
    let date = match (p.doy, p.month, p.day) {
        (Some(doy), None, None) => NaiveDate::from_yo_opt(year, doy)?,
        _ => NaiveDate::from_ymd_opt(year, p.month.unwrap_or(1), p.day.unwrap_or(1))?,
    };
    let hour = match (p.hour, p.hour12, p.pm) {
        (Some(h), _, _) => h,
        (None, Some(h), pm) => h + if pm == Some(true) { 12 } else { 0 },
        (None, None, Some(true)) => 12,
        _ => 0,
    };
    let t = date.and_hms_nano_opt(hour, p.minute, p.second, p.nano)?;
    t.checked_sub_signed(chrono::Duration::seconds(p.offset_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(p: &str, t: &str) -> Option<String> {
        let t = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").ok()?;
        Some(format(&compile(p).ok()?, &t))
    }

    #[test]
    fn formats_like_java() {
        let t = "2015-04-08 21:30:45.123456789";
        assert_eq!(
            fmt("yyyy-MM-dd HH:mm:ss", t).unwrap(),
            "2015-04-08 21:30:45"
        );
        assert_eq!(fmt("E", t).unwrap(), "Wed");
        assert_eq!(fmt("EEEE", t).unwrap(), "Wednesday");
        assert_eq!(fmt("G", t).unwrap(), "AD");
        assert_eq!(fmt("Y", t).unwrap(), "2015");
        assert_eq!(fmt("YY", t).unwrap(), "15");
        assert_eq!(fmt("w", t).unwrap(), "15");
        assert_eq!(fmt("W", t).unwrap(), "2");
        assert_eq!(fmt("D", t).unwrap(), "98");
        assert_eq!(fmt("DDD", t).unwrap(), "098");
        assert_eq!(fmt("S", t).unwrap(), "1");
        assert_eq!(fmt("SS", t).unwrap(), "12");
        assert_eq!(fmt("SSSS", t).unwrap(), "1234");
        assert_eq!(fmt("hh a", t).unwrap(), "09 PM");
        assert_eq!(fmt("MMM MMMM", t).unwrap(), "Apr April");
        assert_eq!(fmt("uu/MM", t).unwrap(), "15/04");
        assert_eq!(fmt("yyyy'%'MM", t).unwrap(), "2015%04");
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mm:ssXXX", t).unwrap(),
            "2015-04-08T21:30:45Z"
        );
        assert_eq!(fmt("''yy''", t).unwrap(), "'15'");
        assert_eq!(fmt("QQQ", t).unwrap(), "Q2");
        assert_eq!(
            fmt("dd---MM--yyyy", "1001-01-05 00:00:00").unwrap(),
            "05---01--1001"
        );
        assert_eq!(fmt("yyyy", "0109-06-20 00:00:00").unwrap(), "0109");
        // end of December belongs to week 1 of the next week-based year
        assert_eq!(fmt("Y-w", "2015-12-31 00:00:00").unwrap(), "2016-1");
        assert_eq!(fmt("", t).unwrap(), "");
    }

    #[test]
    fn rejects_what_java_rejects() {
        for p in [
            "ddd",
            "aa",
            "B",
            "SSSSSSSSSS",
            "W W W WW",
            "'open",
            "{",
            "#",
            "VVV",
        ] {
            assert!(compile(p).is_err(), "{p}");
        }
    }

    #[test]
    fn parses() {
        let p = |pat: &str, s: &str| parse(&compile(pat).unwrap(), s).map(|t| t.to_string());
        assert_eq!(
            p("yyyy-MM-dd HH:mm:ss", "2009-03-20 11:30:01").unwrap(),
            "2009-03-20 11:30:01"
        );
        assert_eq!(p("yyyy-MM-dd HH:mm:ss", "2011-05-06"), None);
        assert_eq!(p("yyyyMMdd", "20191001").unwrap(), "2019-10-01 00:00:00");
        assert_eq!(
            p("yyyy MMM dd h:mm:ss a", "2009 Mar 20 11:30:01 am").unwrap(),
            "2009-03-20 11:30:01"
        );
        assert_eq!(p("uuuu-MM-dd", "0000-00-00"), None);
        assert_eq!(p("uuuu-MM-dd", "1400-15-09"), None);
        assert_eq!(
            p("yyyy-MM-dd HH:mm:ss z", "2015-04-08 10:30:45 GMT+09:00").unwrap(),
            "2015-04-08 01:30:45"
        );
    }

    #[test]
    fn chrono_patterns_are_checked() {
        assert!(is_chrono("%Y-%m"));
        assert!(!is_chrono("yyyy'%'MM"));
        assert!(chrono_items("%Y-%m").is_ok());
        assert!(chrono_items("%Q").is_err());
        assert!(chrono_items("%").is_err());
    }
}
