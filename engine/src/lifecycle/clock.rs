//! The time lifecycle decisions are taken at: the system clock, or `CUVE_NOW` (an RFC 3339
//! time or a date, `2019-12-30`), so tests and dry runs can ask "what is due on that day".

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{EngineError, Result};

/// Now, as lifecycle decisions see it.
pub fn now() -> Result<DateTime<Utc>> {
    match std::env::var("CUVE_NOW") {
        Ok(v) if !v.trim().is_empty() => parse(&v),
        _ => Ok(Utc::now()),
    }
}

/// Today's date (UTC) as lifecycle decisions see it.
pub fn today() -> Result<NaiveDate> {
    Ok(now()?.date_naive())
}

fn parse(v: &str) -> Result<DateTime<Utc>> {
    let v = v.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(EngineError::invalid(format!(
        "CUVE_NOW = '{v}' is not a time: write an RFC 3339 time (2019-12-30T00:00:00Z) or a date (2019-12-30)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_and_dates() {
        assert_eq!(
            parse("2019-12-30").unwrap().to_rfc3339(),
            "2019-12-30T00:00:00+00:00"
        );
        assert_eq!(
            parse("2019-12-30T09:00:00+09:00").unwrap().to_rfc3339(),
            "2019-12-30T00:00:00+00:00"
        );
        assert!(
            parse("yesterday")
                .unwrap_err()
                .user_message()
                .contains("CUVE_NOW")
        );
    }
}
