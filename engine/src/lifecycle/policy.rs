//! The lifecycle properties of a table and the partitions they expire.
//!
//! - `retention.days` = N: a partition whose date (the first partition column, `dt`) is more
//!   than N days before today is dropped.
//! - `sensitive.retention.days` = N: in such partitions the sensitive columns and `raw` read as
//!   NULL and their bytes are removed from the files (rows stay).
//! - `compact.target.bytes`: the size compaction merges small files up to (128 MiB); a file
//!   under half of it is small.

use chrono::NaiveDate;
use cuve_catalog::TableDef;

use crate::error::{EngineError, Result};

pub const RETENTION_DAYS: &str = "retention.days";
pub const SENSITIVE_RETENTION_DAYS: &str = "sensitive.retention.days";
pub const COMPACT_TARGET_BYTES: &str = "compact.target.bytes";

/// Default compaction target (bytes of Parquet).
pub const DEFAULT_TARGET_BYTES: u64 = 128 << 20;

/// The column that holds the raw log line (it holds the sensitive values too).
pub const RAW_COLUMN: &str = "raw";

/// A table's lifecycle settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub retention_days: Option<u32>,
    pub sensitive_days: Option<u32>,
    pub target_bytes: u64,
}

fn days(def: &TableDef, key: &str) -> Result<Option<u32>> {
    let Some(v) = def.properties.get(key) else {
        return Ok(None);
    };
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=36_500).contains(&n) => Ok(Some(n)),
        _ => Err(EngineError::invalid(format!(
            "'{key}' = '{v}' is not a number of days: write a whole number from 1 to 36500, e.g. '90'"
        ))),
    }
}

/// The table's lifecycle settings; a bad value is an error naming it.
pub fn policy(def: &TableDef) -> Result<Policy> {
    let retention_days = days(def, RETENTION_DAYS)?;
    let sensitive_days = days(def, SENSITIVE_RETENTION_DAYS)?;
    let target_bytes = match def.properties.get(COMPACT_TARGET_BYTES) {
        None => DEFAULT_TARGET_BYTES,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if (1 << 20..=16 << 30).contains(&n) => n,
            _ => {
                return Err(EngineError::invalid(format!(
                    "'{COMPACT_TARGET_BYTES}' = '{v}' is not a file size in bytes from 1048576 (1 MiB) to 17179869184 (16 GiB), e.g. '134217728'"
                )));
            }
        },
    };
    Ok(Policy {
        retention_days,
        sensitive_days,
        target_bytes,
    })
}

/// Checks the lifecycle properties of `def` (at `CREATE TABLE` and `SET TBLPROPERTIES`).
pub fn validate(def: &TableDef) -> Result<()> {
    let p = policy(def)?;
    if p.retention_days.is_none() && p.sensitive_days.is_none() {
        return Ok(());
    }
    let key = if p.retention_days.is_some() {
        RETENTION_DAYS
    } else {
        SENSITIVE_RETENTION_DAYS
    };
    let Some(first) = def.partition_columns.first() else {
        return Err(EngineError::invalid(format!(
            "'{key}' needs a table partitioned by date (e.g. PARTITIONED BY (dt STRING) with dt='2019-10-01'); {} is not partitioned",
            def.qualified_name()
        )));
    };
    let ty = first.data_type.to_ascii_uppercase();
    if !(ty.starts_with("STRING")
        || ty.starts_with("VARCHAR")
        || ty.starts_with("CHAR")
        || ty == "DATE")
    {
        return Err(EngineError::invalid(format!(
            "'{key}' needs the first partition column of {} to hold dates ('2019-10-01' or '20191001'); {} is {}",
            def.qualified_name(),
            first.name,
            first.data_type
        )));
    }
    if p.sensitive_days.is_some() && sensitive_columns(def).is_empty() {
        return Err(EngineError::invalid(format!(
            "'{SENSITIVE_RETENTION_DAYS}' needs sensitive columns: {} has none (set 'sensitive_columns' first) and no '{RAW_COLUMN}' column",
            def.qualified_name()
        )));
    }
    Ok(())
}

/// The columns sensitive expiry clears: the sensitive ones and `raw`.
pub fn sensitive_columns(def: &TableDef) -> Vec<String> {
    def.columns
        .iter()
        .filter(|c| c.sensitive || c.name == RAW_COLUMN)
        .map(|c| c.name.clone())
        .collect()
}

/// The date of a partition (its first partition column: `2019-10-01` or `20191001`).
pub fn partition_date(values: &[(String, String)]) -> Option<NaiveDate> {
    parse_date(&values.first()?.1)
}

/// A partition value as a date (`2019-10-01` or `20191001`).
pub fn parse_date(v: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(v, "%Y%m%d"))
        .ok()
}

/// The first date kept by a period of `days` as of `today`: older partitions are expired.
pub fn first_kept(today: NaiveDate, days: u32) -> NaiveDate {
    today - chrono::Duration::days(i64::from(days))
}

/// Whether a partition of date `date` is past a period of `days` as of `today`.
pub fn is_expired(date: NaiveDate, today: NaiveDate, days: u32) -> bool {
    date < first_kept(today, days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cuve_catalog::{ColumnDef, StorageFormat};

    fn def(props: &[(&str, &str)], partitioned: bool) -> TableDef {
        let mut c = ColumnDef::new("user_id", "STRING");
        c.sensitive = true;
        TableDef {
            database: "d".into(),
            name: "t".into(),
            columns: vec![c, ColumnDef::new("q", "STRING")],
            partition_columns: if partitioned {
                vec![ColumnDef::new("dt", "STRING")]
            } else {
                vec![]
            },
            bucket: None,
            format: StorageFormat::Parquet,
            location: "/w/d/t".into(),
            external: false,
            comment: None,
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            created_at: String::new(),
            updated_at: String::new(),
            version: 1,
        }
    }

    #[test]
    fn properties_are_checked() {
        assert!(validate(&def(&[(RETENTION_DAYS, "90")], true)).is_ok());
        let msg = |props: &[(&str, &str)], partitioned| {
            validate(&def(props, partitioned))
                .unwrap_err()
                .user_message()
        };
        assert!(msg(&[(RETENTION_DAYS, "ninety")], true).contains("not a number of days"));
        assert!(msg(&[(RETENTION_DAYS, "0")], true).contains("from 1 to 36500"));
        assert!(msg(&[(RETENTION_DAYS, "-3")], true).contains("'retention.days' = '-3'"));
        assert!(msg(&[(RETENTION_DAYS, "90")], false).contains("not partitioned"));
        assert!(msg(&[(COMPACT_TARGET_BYTES, "12")], true).contains("1 MiB"));
        let mut d = def(&[(SENSITIVE_RETENTION_DAYS, "30")], true);
        d.columns[0].sensitive = false;
        assert!(
            validate(&d)
                .unwrap_err()
                .user_message()
                .contains("needs sensitive columns")
        );
    }

    #[test]
    fn expiry_by_partition_date() {
        let today = NaiveDate::from_ymd_opt(2019, 12, 30).unwrap();
        let d = |s: &str| partition_date(&[("dt".into(), s.into())]).unwrap();
        assert_eq!(d("20191001"), d("2019-10-01"));
        assert!(partition_date(&[("dt".into(), "__HIVE_DEFAULT_PARTITION__".into())]).is_none());
        // 90 days before 2019-12-30 is 2019-10-01: kept; the day before is not.
        assert!(!is_expired(d("2019-10-01"), today, 90));
        assert!(is_expired(d("2019-09-30"), today, 90));
    }
}
