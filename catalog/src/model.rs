//! Plain catalog records: databases, tables, columns, bucket specs and partitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{CatalogError, Result};

/// Table property that lists sensitive columns, Hive style: `'sensitive_columns'='a,b'`.
pub const SENSITIVE_COLUMNS_PROPERTY: &str = "sensitive_columns";
/// Table property that selects the bucket hash (`1` or `2`). Absent means `1`, as Hive and
/// Trino read it, except on managed tables (Cuve wrote their files with `2`); Cuve records it
/// explicitly on every bucketed table it creates.
pub const BUCKETING_VERSION_PROPERTY: &str = "bucketing_version";
/// Table property that names the time zone `dt` partitions are computed in (default `UTC`).
pub const PARTITION_TIME_ZONE_PROPERTY: &str = "partition.time_zone";
/// Table property that selects the Parquet codec new files are written with (Hive's name):
/// `lz4` (default), `snappy`, `zstd`, `zstd(N)`, `gzip`, `gzip(N)` or `uncompressed`.
pub const PARQUET_COMPRESSION_PROPERTY: &str = "parquet.compression";

/// A database (schema): `region_group` in RGM naming.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseDef {
    pub name: String,
    pub comment: Option<String>,
    pub owner: Option<String>,
    pub created_at: String,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    /// Hive-style type name as written in DDL, upper-case (`STRING`, `BIGINT`, `TIMESTAMP`, ...).
    pub data_type: String,
    pub comment: Option<String>,
    pub sensitive: bool,
}

impl ColumnDef {
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Self {
        ColumnDef {
            name: name.into(),
            data_type: data_type.into(),
            comment: None,
            sensitive: false,
        }
    }
}

/// File format of a table's data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageFormat {
    Parquet,
    /// Read only (Hive's refined tables); writing ORC is not supported.
    Orc,
    Csv,
    Json,
}

impl StorageFormat {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PARQUET" => Ok(StorageFormat::Parquet),
            "ORC" => Ok(StorageFormat::Orc),
            "CSV" | "TEXTFILE" => Ok(StorageFormat::Csv),
            "JSON" | "JSONFILE" => Ok(StorageFormat::Json),
            other => Err(CatalogError::invalid(format!(
                "unsupported storage format '{other}': use PARQUET, ORC, CSV or JSON"
            ))),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            StorageFormat::Parquet => "PARQUET",
            StorageFormat::Orc => "ORC",
            StorageFormat::Csv => "CSV",
            StorageFormat::Json => "JSON",
        }
    }
    /// File extension written for this format.
    pub fn extension(&self) -> &'static str {
        match self {
            StorageFormat::Parquet => "parquet",
            StorageFormat::Orc => "orc",
            StorageFormat::Csv => "csv",
            StorageFormat::Json => "json",
        }
    }
}

/// `CLUSTERED BY (columns) [SORTED BY (sorted_by)] INTO num_buckets BUCKETS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketSpec {
    pub columns: Vec<String>,
    pub sorted_by: Vec<String>,
    pub num_buckets: u32,
}

impl BucketSpec {
    /// The order rows are written in within a file: `SORTED BY`, else the bucket columns.
    pub fn sort_columns(&self) -> &[String] {
        if self.sorted_by.is_empty() {
            &self.columns
        } else {
            &self.sorted_by
        }
    }
}

/// A table: its schema, layout and where its files live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub database: String,
    pub name: String,
    /// Data columns, in file order.
    pub columns: Vec<ColumnDef>,
    /// Partition columns (Hive `PARTITIONED BY`), after the data columns in the table schema.
    pub partition_columns: Vec<ColumnDef>,
    pub bucket: Option<BucketSpec>,
    pub format: StorageFormat,
    /// Absolute path of the table's root directory.
    pub location: String,
    /// External tables keep their files on DROP TABLE.
    pub external: bool,
    pub comment: Option<String>,
    pub properties: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
    /// Bumped on every change; caches key on it.
    pub version: i64,
}

impl TableDef {
    /// `db.table`.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.database, self.name)
    }

    /// All columns: data columns, then partition columns.
    pub fn all_columns(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().chain(self.partition_columns.iter())
    }

    /// Finds a column (data or partition) by canonical name.
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.all_columns().find(|c| c.name == name)
    }

    /// Hive bucketing version: the `bucketing_version` property; without it 1 for an external
    /// table (Hive's and Trino's default: Hive 1/2 and Spark write v1 and record nothing) and 2
    /// for a managed one (Cuve writes v2; tables created before the property was recorded).
    pub fn bucketing_version(&self) -> u8 {
        match self
            .properties
            .get(BUCKETING_VERSION_PROPERTY)
            .map(|s| s.trim())
        {
            Some("1") => 1,
            Some("2") => 2,
            _ if self.external => 1,
            _ => 2,
        }
    }

    /// Sets every column's `sensitive` flag from the `sensitive_columns` property, checking that
    /// each named column exists.
    pub fn apply_sensitive_property(&mut self) -> Result<()> {
        let listed: Vec<String> = self
            .properties
            .get(SENSITIVE_COLUMNS_PROPERTY)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for name in &listed {
            if self.column(name).is_none() {
                return Err(CatalogError::invalid(format!(
                    "'{SENSITIVE_COLUMNS_PROPERTY}' names column '{name}', which table '{}' does not have",
                    self.qualified_name()
                )));
            }
        }
        for c in self
            .columns
            .iter_mut()
            .chain(self.partition_columns.iter_mut())
        {
            c.sensitive = listed.contains(&c.name);
        }
        self.derive_sensitive();
        Ok(())
    }

    /// Columns derived from sensitive input are sensitive: `raw` (the whole input line, which
    /// ingest keeps) is sensitive whenever any other column is.
    pub fn derive_sensitive(&mut self) {
        let any = self
            .columns
            .iter()
            .chain(self.partition_columns.iter())
            .any(|c| c.sensitive && c.name != RAW_COLUMN);
        if any && let Some(raw) = self.columns.iter_mut().find(|c| c.name == RAW_COLUMN) {
            raw.sensitive = true;
        }
    }
}

/// The column ingest fills with the whole input line.
pub const RAW_COLUMN: &str = "raw";

/// One registered partition: its values (in partition-column order) and directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionDef {
    pub values: Vec<(String, String)>,
    /// Absolute path of the partition directory.
    pub location: String,
}

impl PartitionDef {
    /// The Hive partition spec, e.g. `dt=2019-10-01` or `dt=2019-10-01/hour=03`, with values
    /// escaped like Hive's `FileUtils.escapePathName`.
    pub fn spec(&self) -> String {
        partition_spec(&self.values)
    }
}

/// Value Hive stores for a null or empty partition value.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Builds a partition spec (`k=v/k2=v2`) with Hive path escaping.
pub fn partition_spec(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{}={}", escape_path_name(k), escape_path_name(v)))
        .collect::<Vec<_>>()
        .join("/")
}

/// Hive's `FileUtils.escapePathName`: escapes characters that are unsafe in paths as `%XX`.
pub fn escape_path_name(s: &str) -> String {
    if s.is_empty() {
        return HIVE_DEFAULT_PARTITION.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let escape = (c as u32) < 0x20
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\u{7F}'
                    | '{'
                    | '['
                    | ']'
                    | '^'
            );
        if escape {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Inverse of [`escape_path_name`]; `None` when a `%` escape is malformed.
pub fn unescape_path_name(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_hive() {
        assert_eq!(escape_path_name("2019-10-01"), "2019-10-01");
        assert_eq!(escape_path_name("a/b=c"), "a%2Fb%3Dc");
        assert_eq!(escape_path_name(""), HIVE_DEFAULT_PARTITION);
        assert_eq!(unescape_path_name("a%2Fb%3Dc").as_deref(), Some("a/b=c"));
        assert_eq!(unescape_path_name("bad%zz"), None);
        assert_eq!(
            partition_spec(&[("dt".into(), "2019-10-01".into())]),
            "dt=2019-10-01"
        );
    }
}
