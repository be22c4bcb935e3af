//! Hive bucket ids: bucketing_version 2 (Murmur3 x86_32, seed 104729) and version 1 (Java
//! `hashCode` style), computed over Arrow arrays, and the file-name conventions that carry a
//! bucket id. Hand-written because the function is a dozen lines and must match Hive bit for bit
//! (verified against Trino's TestHiveBucketing vectors below).

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Date32Type, Int32Type, Int64Type};
use datafusion::common::ScalarValue;

use crate::error::{EngineError, Result};

const SEED: u32 = 104729;
const C1: u32 = 0xcc9e2d51;
const C2: u32 = 0x1b873593;

/// Murmur3 x86_32 as Hive's `Murmur3.hash32(byte[])` with seed 104729.
pub fn murmur3_32(data: &[u8]) -> i32 {
    let mut h = SEED;
    let blocks = data.len() / 4;
    for i in 0..blocks {
        let k = u32::from_le_bytes([
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ]);
        h ^= mix_k(k);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe6546b64);
    }
    let tail = &data[blocks * 4..];
    let mut k1: u32 = 0;
    if tail.len() >= 3 {
        k1 ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        k1 ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        k1 ^= tail[0] as u32;
        h ^= mix_k(k1);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85ebca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2ae35);
    h ^= h >> 16;
    h as i32
}

fn mix_k(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

/// Hive bucketing hash of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketHash {
    /// Hive's original hash (`ObjectInspectorUtils.hashCode`): what Hive 1/2, Spark's Hive
    /// tables and Trino's `bucketing_version=1` write.
    V1,
    /// Murmur3 (`ObjectInspectorUtils.hashCodeMurmur`): Hive 3+ with `bucketing_version=2`.
    V2,
}

impl BucketHash {
    pub fn from_version(v: u8) -> Self {
        if v == 1 {
            BucketHash::V1
        } else {
            BucketHash::V2
        }
    }

    /// The `bucketing_version` this hash is.
    pub fn version(&self) -> u8 {
        match self {
            BucketHash::V1 => 1,
            BucketHash::V2 => 2,
        }
    }

    fn string(&self, kind: TextKind, s: &str) -> i32 {
        match self {
            BucketHash::V2 => murmur3_32(s.as_bytes()),
            // ObjectInspectorUtils.hashCode: 31*r + signed byte over the UTF-8 bytes, from 0 for
            // STRING (String.hashCode for ASCII), from 1 for VARCHAR and CHAR (Text.hashCode).
            BucketHash::V1 => {
                let seed = if kind == TextKind::String { 0 } else { 1 };
                // CHAR hashes without its padding (HiveCharWritable's stripped value).
                let s = if kind == TextKind::Char {
                    s.trim_end_matches(' ')
                } else {
                    s
                };
                s.as_bytes().iter().fold(seed, |h: i32, b| {
                    h.wrapping_mul(31).wrapping_add(*b as i8 as i32)
                })
            }
        }
    }
    fn int(&self, v: i32) -> i32 {
        match self {
            BucketHash::V2 => murmur3_32(&v.to_be_bytes()),
            BucketHash::V1 => v,
        }
    }
    fn bigint(&self, v: i64) -> i32 {
        match self {
            BucketHash::V2 => murmur3_32(&v.to_be_bytes()),
            BucketHash::V1 => ((v as u64 >> 32) as i64 ^ v) as i32,
        }
    }
}

/// Which Hive string type a bucket column is: Hive's v1 hash differs between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextKind {
    #[default]
    String,
    Varchar,
    Char,
}

impl TextKind {
    /// The kind of a declared Hive type (`STRING`, `VARCHAR(20)`, `CHAR(4)`; others: String).
    pub fn of(hive_type: &str) -> TextKind {
        let t = hive_type.trim().to_ascii_uppercase();
        if t.starts_with("VARCHAR") || t.starts_with("CHARACTER VARYING") {
            TextKind::Varchar
        } else if t.starts_with("CHAR") {
            TextKind::Char
        } else {
            TextKind::String
        }
    }

    /// The kinds of a table's bucket columns, in bucket-column order.
    pub fn of_bucket_columns(def: &cuve_catalog::TableDef) -> Vec<TextKind> {
        def.bucket
            .iter()
            .flat_map(|b| b.columns.iter())
            .map(|c| {
                def.column(c)
                    .map(|d| TextKind::of(&d.data_type))
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// Whether a column of this type can be a bucket column.
pub fn supported_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32
    )
}

/// Hash of each row of `array`, combined into `acc` as `31 * acc + h` (Hive's multi-column rule).
/// Nulls hash to 0.
pub fn hash_array_into(
    hash: BucketHash,
    kind: TextKind,
    array: &ArrayRef,
    acc: &mut [i32],
) -> Result<()> {
    macro_rules! each {
        ($arr:expr, $f:expr) => {{
            let arr = $arr;
            for (i, a) in acc.iter_mut().enumerate() {
                let h = if arr.is_null(i) { 0 } else { $f(arr.value(i)) };
                *a = a.wrapping_mul(31).wrapping_add(h);
            }
        }};
    }
    match array.data_type() {
        DataType::Utf8 => each!(array.as_string::<i32>(), |v: &str| hash.string(kind, v)),
        DataType::LargeUtf8 => each!(array.as_string::<i64>(), |v: &str| hash.string(kind, v)),
        DataType::Utf8View => each!(array.as_string_view(), |v: &str| hash.string(kind, v)),
        DataType::Int32 => each!(array.as_primitive::<Int32Type>(), |v: i32| hash.int(v)),
        DataType::Date32 => each!(array.as_primitive::<Date32Type>(), |v: i32| hash.int(v)),
        DataType::Int64 => each!(array.as_primitive::<Int64Type>(), |v: i64| hash.bigint(v)),
        other => {
            return Err(EngineError::invalid(format!(
                "cannot bucket on a column of type {other}: use STRING, INT, BIGINT or DATE"
            )));
        }
    }
    Ok(())
}

/// Bucket of every row, given the bucket columns' arrays and their [`TextKind`]s (missing
/// kinds are `String`).
pub fn bucket_ids(
    hash: BucketHash,
    columns: &[ArrayRef],
    kinds: &[TextKind],
    num_buckets: u32,
) -> Result<Vec<u32>> {
    let rows = columns.first().map(|c| c.len()).unwrap_or(0);
    let mut acc = vec![0i32; rows];
    for (i, c) in columns.iter().enumerate() {
        let kind = kinds.get(i).copied().unwrap_or_default();
        hash_array_into(hash, kind, c, &mut acc)?;
    }
    Ok(acc
        .into_iter()
        .map(|h| ((h & 0x7FFF_FFFF) as u32) % num_buckets)
        .collect())
}

/// Hash of one literal (for pruning); `None` when the literal's type cannot be hashed the way
/// the column's values are (then no pruning happens).
pub fn hash_scalar(
    hash: BucketHash,
    kind: TextKind,
    v: &ScalarValue,
    column_type: &DataType,
) -> Option<i32> {
    if v.is_null() {
        return Some(0);
    }
    let v = v.cast_to(column_type).ok()?;
    Some(match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => hash.string(kind, &s),
        ScalarValue::Int32(Some(i)) | ScalarValue::Date32(Some(i)) => hash.int(i),
        ScalarValue::Int64(Some(i)) => hash.bigint(i),
        _ => return None,
    })
}

/// Bucket id carried by a data file name, in the conventions Hive, Spark and Trino write
/// (Trino's `BUCKET_PATTERNS` plus Spark's own):
/// - Hive: `000003_0`, `000003_0_copy_1`, `000003_0.parquet`;
/// - Spark writing a Hive table: `00003_0_part-00000-<uuid>_00003.c000.snappy.parquet`;
/// - Spark's own bucketing: `part-00000-<uuid>_00003.c000.snappy.parquet`;
/// - Trino: `bucket_00003`, `bucket_00003_1`, with or without an extension.
///
/// `None` when the name carries no bucket id.
pub fn bucket_of_file_name(name: &str) -> Option<u32> {
    fn digits(s: &str) -> (&str, &str) {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        s.split_at(end)
    }
    let number = |d: &str| if d.is_empty() { None } else { d.parse().ok() };
    if let Some(rest) = name.strip_prefix("bucket_") {
        let (id, rest) = digits(rest);
        let ok = rest.is_empty()
            || rest.starts_with('.')
            || rest.strip_prefix('_').is_some_and(|r| {
                let (n, after) = digits(r);
                !n.is_empty() && (after.is_empty() || after.starts_with('.'))
            });
        return if ok { number(id) } else { None };
    }
    if let Some(rest) = name.strip_prefix("part-") {
        // part-<task>-<uuid>_<bucket>[.c<n>][.<ext>...]
        let stem = rest.split('.').next().unwrap_or(rest);
        let (_, id) = stem.rsplit_once('_')?;
        return if id.len() >= 5 && id.bytes().all(|b| b.is_ascii_digit()) {
            number(id)
        } else {
            None
        };
    }
    // <bucket>_<attempt>[anything]
    let (id, rest) = digits(name);
    let attempt = rest.strip_prefix('_').map(|r| digits(r).0)?;
    if attempt.is_empty() {
        return None;
    }
    number(id)
}

/// The bucket of a scanned file of a bucketed table, attached to the file by the table provider
/// (`PartitionedFile::extensions`); the planner's co-located rules read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketFile {
    pub table: String,
    pub bucket: u32,
    pub num_buckets: u32,
    pub version: u8,
    pub column: String,
    pub column_type: datafusion::arrow::datatypes::DataType,
}

/// File name of the `n`-th file of `bucket`: `<bucket:06>_<n>.<ext>` (interface contract).
pub fn bucket_file_name(bucket: u32, n: u64, ext: &str) -> String {
    format!("{bucket:06}_{n}.{ext}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Date32Array, Int32Array, Int64Array, StringArray};

    use super::*;

    fn h1(a: ArrayRef) -> i32 {
        let mut acc = vec![0];
        hash_array_into(BucketHash::V2, TextKind::String, &a, &mut acc).unwrap();
        acc[0]
    }

    #[test]
    fn matches_trino_vectors() {
        let s = |v: &str| h1(Arc::new(StringArray::from(vec![v])));
        assert_eq!(s("Trino rocks"), -399107423);
        assert_eq!(s("test string"), -138301454);
        assert_eq!(s(""), -965378730);
        assert_eq!(s("hello"), 1321743225);
        assert_eq!(h1(Arc::new(Int32Array::from(vec![300000]))), -678663480);
        assert_eq!(
            h1(Arc::new(Int64Array::from(vec![300000000000i64]))),
            -888935297
        );
        // 2015-11-19 is day 16758 since the epoch.
        assert_eq!(h1(Arc::new(Date32Array::from(vec![16758]))), 8542395);
        let ids = bucket_ids(
            BucketHash::V2,
            &[Arc::new(StringArray::from(vec!["Trino rocks"])) as ArrayRef],
            &[],
            4,
        )
        .unwrap();
        assert_eq!(ids, vec![1]);
    }

    #[test]
    fn nulls_hash_to_zero_and_scalars_agree() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![None, Some("hello")]));
        let mut acc = vec![0, 0];
        hash_array_into(BucketHash::V2, TextKind::String, &a, &mut acc).unwrap();
        assert_eq!(acc, vec![0, 1321743225]);
        assert_eq!(
            hash_scalar(
                BucketHash::V2,
                TextKind::String,
                &ScalarValue::from("hello"),
                &DataType::Utf8
            ),
            Some(1321743225)
        );
        // an integer literal compared with a BIGINT column hashes as BIGINT
        assert_eq!(
            hash_scalar(
                BucketHash::V2,
                TextKind::String,
                &ScalarValue::Int32(Some(7)),
                &DataType::Int64
            ),
            hash_scalar(
                BucketHash::V2,
                TextKind::String,
                &ScalarValue::Int64(Some(7)),
                &DataType::Int64
            )
        );
    }

    fn v1(a: ArrayRef) -> i32 {
        let mut acc = vec![0];
        hash_array_into(BucketHash::V1, TextKind::String, &a, &mut acc).unwrap();
        acc[0]
    }

    #[test]
    fn v1_matches_trino_vectors() {
        // Trino's TestHiveBucketing, bucketing_version=1.
        let s = |v: &str| v1(Arc::new(StringArray::from(vec![v])));
        assert_eq!(s("Trino rocks"), 1132136730);
        assert_eq!(s("test string"), -318923937);
        assert_eq!(s(""), 0);
        assert_eq!(v1(Arc::new(Int32Array::from(vec![300000]))), 300000);
        assert_eq!(
            v1(Arc::new(Int64Array::from(vec![300000000000i64]))),
            -647710651
        );
        assert_eq!(v1(Arc::new(Date32Array::from(vec![16758]))), 16758);
        assert_eq!(v1(Arc::new(StringArray::from(vec![None::<&str>]))), 0);
    }

    #[test]
    fn v1_hashes_varchar_and_char_like_text() {
        // Text.hashCode starts at 1: "ab" -> (31*1 + 97)*31 + 98; CHAR drops its padding.
        let h = |kind, v: &str| {
            let mut acc = vec![0];
            let a: ArrayRef = Arc::new(StringArray::from(vec![v]));
            hash_array_into(BucketHash::V1, kind, &a, &mut acc).unwrap();
            acc[0]
        };
        assert_eq!(h(TextKind::Varchar, "ab"), (31 + 97) * 31 + 98);
        assert_eq!(h(TextKind::Char, "ab  "), (31 + 97) * 31 + 98);
        assert_eq!(h(TextKind::String, "ab"), 97 * 31 + 98);
        assert_eq!(TextKind::of("VARCHAR(20)"), TextKind::Varchar);
        assert_eq!(TextKind::of("CHAR(4)"), TextKind::Char);
        assert_eq!(TextKind::of("STRING"), TextKind::String);
        let s = ScalarValue::from("ab ");
        assert_eq!(
            hash_scalar(BucketHash::V1, TextKind::Char, &s, &DataType::Utf8),
            Some((31 + 97) * 31 + 98)
        );
    }

    #[test]
    fn v1_matches_spark_written_buckets() {
        // Values and the bucket Spark 4.3 (Hive v1) wrote them to, 4 buckets (shared notes).
        let bucket = |a: ArrayRef| bucket_ids(BucketHash::V1, &[a], &[], 4).unwrap()[0];
        let s = |v: Option<&str>| bucket(Arc::new(StringArray::from(vec![v])));
        assert_eq!(v1(Arc::new(StringArray::from(vec!["u0"]))), 3675);
        assert_eq!(s(Some("u0")), 3);
        assert_eq!(s(Some("u1")), 0);
        assert_eq!(s(Some("abc")), 2);
        assert_eq!(s(Some("")), 0);
        // non-ASCII: bytes are signed in Java
        assert_eq!(v1(Arc::new(StringArray::from(vec!["한글"]))), -645773218);
        assert_eq!(s(Some("한글")), 2);
        assert_eq!(s(Some("user_0001")), 1);
        assert_eq!(s(None), 0);
        let b = |v: Option<i64>| bucket(Arc::new(Int64Array::from(vec![v])));
        assert_eq!(b(Some(-3)), 2);
        assert_eq!(b(Some(0)), 0);
        assert_eq!(b(Some(5)), 1);
        assert_eq!(b(Some(1 << 31)), 0);
        assert_eq!(b(Some((1 << 40) + 7)), 3);
        assert_eq!(b(Some(-(1 << 35))), 0);
        assert_eq!(b(None), 0);
        // the user of the report: bucket 8 of 16 under v1
        let ids = bucket_ids(
            BucketHash::V1,
            &[Arc::new(StringArray::from(vec!["ucf28ed658abe"])) as ArrayRef],
            &[],
            16,
        )
        .unwrap();
        assert_eq!(ids, vec![8]);
    }

    #[test]
    fn reads_bucket_ids_from_hive_spark_and_trino_names() {
        assert_eq!(bucket_of_file_name("000003_0"), Some(3));
        assert_eq!(bucket_of_file_name("000003_0_copy_1"), Some(3));
        assert_eq!(bucket_of_file_name("000012_4.parquet"), Some(12));
        assert_eq!(bucket_of_file_name("bucket_00003"), Some(3));
        assert_eq!(bucket_of_file_name("bucket_00003_1"), Some(3));
        assert_eq!(bucket_of_file_name("bucket_00003.orc"), Some(3));
        assert_eq!(
            bucket_of_file_name(
                "00008_0_part-00000-4f1c5a8e-1a2b-4c3d-9e8f-0a1b2c3d4e5f_00008.c000.snappy.parquet"
            ),
            Some(8)
        );
        assert_eq!(
            bucket_of_file_name(
                "part-00000-4f1c5a8e-1a2b-4c3d-9e8f-0a1b2c3d4e5f_00011.c000.snappy.parquet"
            ),
            Some(11)
        );
        assert_eq!(
            bucket_of_file_name("00002_0_part-00000-x_00002.c000.zstd.orc"),
            Some(2)
        );
        assert_eq!(
            bucket_of_file_name("part-00000-4f1c5a8e.snappy.parquet"),
            None
        );
        assert_eq!(bucket_of_file_name("part-0000.parquet"), None);
        assert_eq!(bucket_of_file_name("123abc"), None);
        assert_eq!(bucket_of_file_name("000003.parquet"), None);
        assert_eq!(bucket_of_file_name("000003_x"), None);
        assert_eq!(bucket_of_file_name("bucket_x"), None);
        assert_eq!(bucket_of_file_name("99999999999999_0"), None);
        assert_eq!(bucket_file_name(3, 0, "parquet"), "000003_0.parquet");
    }
}
