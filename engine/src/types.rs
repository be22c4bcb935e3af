//! Hive-style column types (`STRING`, `BIGINT`, `ARRAY<STRING>`, ...) and their Arrow types.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, DataType as SqlType, ExactNumberInfo, StructBracketKind,
};
use datafusion::sql::sqlparser::dialect::SparkSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{EngineError, Result};

/// Canonical (upper-case) spelling of a type as stored in the catalog.
pub fn canonical_type(t: &SqlType) -> Result<String> {
    // Validate now so the catalog never holds a type we cannot read.
    arrow_type_of(t)?;
    Ok(hive_text(t))
}

/// A struct field's canonical (lower-case) name.
fn field_name(f: &datafusion::sql::sqlparser::ast::StructField) -> String {
    f.field_name
        .as_ref()
        .map(|n| n.value.to_lowercase())
        .unwrap_or_default()
}

/// A type as Hive writes it (sqlparser prints `MAP(K, V)`, ClickHouse's form).
fn hive_text(t: &SqlType) -> String {
    match t {
        SqlType::Map(k, v) => format!("MAP<{}, {}>", hive_text(k), hive_text(v)),
        SqlType::Array(ArrayElemTypeDef::AngleBracket(inner))
        | SqlType::Array(ArrayElemTypeDef::SquareBracket(inner, _))
        | SqlType::Array(ArrayElemTypeDef::Parenthesis(inner)) => {
            format!("ARRAY<{}>", hive_text(inner))
        }
        SqlType::Struct(fields, _) => format!(
            "STRUCT<{}>",
            fields
                .iter()
                .map(|f| {
                    let name = field_name(f);
                    // quoted, so a field named like a keyword or with spaces parses back
                    format!(
                        "`{}`: {}",
                        name.replace('`', "``"),
                        hive_text(&f.field_type)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string().to_uppercase(),
    }
}

/// Arrow type of a stored type name.
pub fn arrow_type(type_name: &str) -> Result<DataType> {
    // Spark's dialect parses Hive's DDL types (`MAP<K, V>`, `STRUCT<a: T>`); Hive's does not.
    let parsed = Parser::new(&SparkSqlDialect {})
        .try_with_sql(type_name)
        .and_then(|mut p| p.parse_data_type())
        .map_err(|e| EngineError::invalid(format!("bad type '{type_name}': {e}")))?;
    arrow_type_of(&parsed)
}

/// Arrow type of a parsed SQL type.
pub fn arrow_type_of(t: &SqlType) -> Result<DataType> {
    use SqlType as S;
    Ok(match t {
        S::String(_)
        | S::Varchar(_)
        | S::Char(_)
        | S::Text
        | S::CharVarying(_)
        | S::Nvarchar(_) => DataType::Utf8,
        S::TinyInt(_) => DataType::Int8,
        S::SmallInt(_) => DataType::Int16,
        S::Int(_) | S::Integer(_) => DataType::Int32,
        S::BigInt(_) => DataType::Int64,
        S::Float(_) | S::Real => DataType::Float32,
        S::Double(_) | S::DoublePrecision => DataType::Float64,
        S::Boolean | S::Bool => DataType::Boolean,
        S::Date => DataType::Date32,
        S::Timestamp(_, tz) => {
            use datafusion::sql::sqlparser::ast::TimezoneInfo;
            match tz {
                TimezoneInfo::WithTimeZone | TimezoneInfo::Tz => {
                    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
                }
                _ => DataType::Timestamp(TimeUnit::Nanosecond, None),
            }
        }
        S::Binary(_) | S::Varbinary(_) | S::Bytea | S::Blob(_) => DataType::Binary,
        S::Decimal(info) | S::Numeric(info) | S::Dec(info) => {
            let (p, s) = match info {
                ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
                ExactNumberInfo::Precision(p) => (*p, 0),
                ExactNumberInfo::None => (10, 0),
            };
            // Hive's limits (and Arrow's 128-bit decimals): precision 1..=38, scale 0..=p.
            if !(1..=38).contains(&p) || s < 0 || s as u64 > p {
                return Err(EngineError::invalid(format!(
                    "DECIMAL({p},{s}): precision must be 1 to 38 and scale 0 to the precision"
                )));
            }
            DataType::Decimal128(p as u8, s as i8)
        }
        S::Array(ArrayElemTypeDef::AngleBracket(inner))
        | S::Array(ArrayElemTypeDef::SquareBracket(inner, _))
        | S::Array(ArrayElemTypeDef::Parenthesis(inner)) => {
            DataType::List(Arc::new(Field::new("element", arrow_type_of(inner)?, true)))
        }
        S::Map(k, v) => DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(
                    vec![
                        Field::new("key", arrow_type_of(k)?, false),
                        Field::new("value", arrow_type_of(v)?, true),
                    ]
                    .into(),
                ),
                false,
            )),
            false,
        ),
        S::Struct(fields, StructBracketKind::AngleBrackets) => DataType::Struct(
            fields
                .iter()
                .map(|f| {
                    let name = field_name(f);
                    Ok(Field::new(name, arrow_type_of(&f.field_type)?, true))
                })
                .collect::<Result<Vec<_>>>()?
                .into(),
        ),
        other => {
            return Err(EngineError::invalid(format!(
                "unsupported column type {other}: use STRING, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, \
                 DECIMAL(p,s), BOOLEAN, DATE, TIMESTAMP, BINARY, ARRAY<T>, MAP<K,V> or STRUCT<...>"
            )));
        }
    })
}

/// Hive-style name of an Arrow type (for tables created from a query's result).
pub fn hive_type_name(t: &DataType) -> Result<String> {
    Ok(match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 | DataType::UInt8 => "SMALLINT".into(),
        DataType::Int32 | DataType::UInt16 => "INT".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "BIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BINARY".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) => {
            format!("ARRAY<{}>", hive_type_name(f.data_type())?)
        }
        DataType::Null => "STRING".into(),
        DataType::Dictionary(_, v) => hive_type_name(v)?,
        other => {
            return Err(EngineError::invalid(format!(
                "cannot store a column of type {other} in a table"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_hive_types() {
        assert_eq!(arrow_type("STRING").unwrap(), DataType::Utf8);
        assert_eq!(arrow_type("bigint").unwrap(), DataType::Int64);
        assert_eq!(
            arrow_type("TIMESTAMP").unwrap(),
            DataType::Timestamp(TimeUnit::Nanosecond, None)
        );
        assert!(matches!(
            arrow_type("ARRAY<STRING>").unwrap(),
            DataType::List(_)
        ));
        assert_eq!(
            arrow_type("DECIMAL(10,2)").unwrap(),
            DataType::Decimal128(10, 2)
        );
        let e = arrow_type("GEOMETRY").unwrap_err().to_string();
        assert!(e.contains("GEOMETRY") || e.contains("unsupported"), "{e}");
    }
}
