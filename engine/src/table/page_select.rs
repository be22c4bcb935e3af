//! The rows of a file a lookup on its sort key must read, from the file's page index.
//!
//! A lookup (`user_id = 'x'`, `user_id IN (...)`) on a file sorted by that column needs one or
//! two pages per column. DataFusion finds them by evaluating the pruning predicate against
//! statistics arrays it builds per file, first for the row groups and then for every page,
//! which cost about an eighth of a lookup's CPU over 30 files. Here the pages are chosen by
//! comparing the looked-up values with each page's min and max directly, and the result is
//! handed to the scan as a row selection (DataFusion's `ParquetRowSelection`), with its own
//! statistics pruning turned off for that scan. The choice is conservative: a page without
//! statistics is read, and anything this module does not understand (a type, a missing index)
//! leaves the file to DataFusion's pruning.

use datafusion::common::ScalarValue;
use datafusion::parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;

/// Looked-up values in the form page statistics are compared in.
#[derive(Debug, Clone, PartialEq)]
pub enum Keys {
    /// UTF-8 or binary values (compared as unsigned bytes, Parquet's order for them).
    Bytes(Vec<Vec<u8>>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
}

impl Keys {
    /// The keys for `values`, or `None` when a value is null or of a type this module does
    /// not compare (then DataFusion prunes).
    pub fn new(values: &[ScalarValue]) -> Option<Keys> {
        let first = values.first()?;
        match first {
            ScalarValue::Utf8(_) | ScalarValue::LargeUtf8(_) | ScalarValue::Utf8View(_) => {
                all(values, |v| {
                    v.try_as_str().flatten().map(|s| s.as_bytes().to_vec())
                })
                .map(Keys::Bytes)
            }
            ScalarValue::Int32(_) => all(values, |v| match v {
                ScalarValue::Int32(Some(i)) => Some(*i),
                _ => None,
            })
            .map(Keys::Int32),
            ScalarValue::Int64(_) => all(values, |v| match v {
                ScalarValue::Int64(Some(i)) => Some(*i),
                _ => None,
            })
            .map(Keys::Int64),
            _ => None,
        }
    }
}

/// Every value converted by `f`, or `None` if one does not convert.
fn all<T>(values: &[ScalarValue], f: impl Fn(&ScalarValue) -> Option<T>) -> Option<Vec<T>> {
    values.iter().map(f).collect()
}

/// The rows of the file described by `metadata` that can hold one of `keys` in top-level
/// column `column`, or `None` when the page index cannot tell (no index, another type).
pub fn select_rows(metadata: &ParquetMetaData, column: &str, keys: &Keys) -> Option<RowSelection> {
    let schema = metadata.file_metadata().schema_descr();
    let leaf = (0..schema.num_columns()).find(|&i| {
        let c = schema.column(i);
        c.path().parts().len() == 1 && c.name() == column
    })?;
    let column_index = metadata.column_index()?;
    let offset_index = metadata.offset_index()?;
    let mut selectors: Vec<RowSelector> = Vec::new();
    let mut push = |select: bool, rows: usize| {
        if rows == 0 {
            return;
        }
        match selectors.last_mut() {
            Some(last) if last.skip != select => last.row_count += rows,
            _ => selectors.push(if select {
                RowSelector::select(rows)
            } else {
                RowSelector::skip(rows)
            }),
        }
    };
    for (rg, meta) in metadata.row_groups().iter().enumerate() {
        let rows = usize::try_from(meta.num_rows()).ok()?;
        let index = column_index.get(rg)?.get(leaf)?;
        let pages = offset_index.get(rg)?.get(leaf)?.page_locations();
        if pages.is_empty() || index.num_pages() as usize != pages.len() {
            return None;
        }
        for (p, page) in pages.iter().enumerate() {
            let start = usize::try_from(page.first_row_index).ok()?;
            let end = match pages.get(p + 1) {
                Some(next) => usize::try_from(next.first_row_index).ok()?,
                None => rows,
            };
            if end < start || end > rows {
                return None;
            }
            push(page_may_hold(index, p, keys)?, end - start);
        }
    }
    Some(RowSelection::from(selectors))
}

/// Whether page `p` can hold one of `keys`; `None` for an index type that does not match the
/// keys.
fn page_may_hold(index: &ColumnIndexMetaData, p: usize, keys: &Keys) -> Option<bool> {
    if index.is_null_page(p) {
        return Some(false);
    }
    fn within<T: PartialOrd>(min: Option<T>, max: Option<T>, v: T) -> bool {
        min.is_none_or(|m| m <= v) && max.is_none_or(|m| v <= m)
    }
    Some(match (index, keys) {
        (ColumnIndexMetaData::BYTE_ARRAY(i), Keys::Bytes(ks)) => ks
            .iter()
            .any(|k| within(i.min_value(p), i.max_value(p), k.as_slice())),
        (ColumnIndexMetaData::INT32(i), Keys::Int32(ks)) => {
            ks.iter().any(|k| within(i.min_value(p), i.max_value(p), k))
        }
        (ColumnIndexMetaData::INT64(i), Keys::Int64(ks)) => {
            ks.iter().any(|k| within(i.min_value(p), i.max_value(p), k))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
    use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};

    use super::*;

    /// A file of 100 rows sorted by `k` (`k000` .. `k099`, each on one row) with 10-row pages
    /// and row groups of 40 rows, and its metadata with the page index.
    fn sorted_file() -> ParquetMetaData {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..100).map(|i| format!("k{i:03}")),
                )),
                Arc::new(Int64Array::from_iter_values(0..100)),
            ],
        )
        .unwrap();
        let props = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(10)
            .set_write_batch_size(10)
            .set_max_row_group_row_count(Some(40))
            .build();
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Required)
            .parse_and_finish(&Bytes::from(buf))
            .unwrap()
    }

    fn selected(sel: &RowSelection) -> Vec<(bool, usize)> {
        sel.iter().map(|s| (!s.skip, s.row_count)).collect()
    }

    #[test]
    fn selects_the_pages_that_can_hold_the_keys() {
        let meta = sorted_file();
        let one = Keys::new(&[ScalarValue::from("k055")]).unwrap();
        let sel = select_rows(&meta, "k", &one).unwrap();
        assert_eq!(selected(&sel), vec![(false, 50), (true, 10), (false, 40)]);

        // Two values in different row groups; a value between pages' ranges selects nothing
        // more.
        let two = Keys::new(&[
            ScalarValue::from("k003"),
            ScalarValue::from("k091"),
            ScalarValue::from("k0555"),
        ])
        .unwrap();
        let sel = select_rows(&meta, "k", &two).unwrap();
        assert_eq!(
            selected(&sel),
            vec![(true, 10), (false, 40), (true, 10), (false, 30), (true, 10)]
        );
        assert_eq!(sel.row_count(), 30);

        // A key outside the file: nothing to read.
        let none = Keys::new(&[ScalarValue::from("z")]).unwrap();
        assert_eq!(select_rows(&meta, "k", &none).unwrap().row_count(), 0);

        // Integers.
        let ints = Keys::new(&[ScalarValue::Int64(Some(12))]).unwrap();
        let sel = select_rows(&meta, "n", &ints).unwrap();
        assert_eq!(selected(&sel), vec![(false, 10), (true, 10), (false, 80)]);
    }

    #[test]
    fn leaves_what_it_cannot_compare_to_datafusion() {
        let meta = sorted_file();
        // A type mismatch, an unknown column, a null, an unsupported type.
        let ints = Keys::new(&[ScalarValue::Int64(Some(1))]).unwrap();
        assert!(select_rows(&meta, "k", &ints).is_none());
        let text = Keys::new(&[ScalarValue::from("k001")]).unwrap();
        assert!(select_rows(&meta, "missing", &text).is_none());
        assert!(Keys::new(&[ScalarValue::Utf8(None)]).is_none());
        assert!(Keys::new(&[ScalarValue::Float64(Some(1.0))]).is_none());
        assert!(Keys::new(&[]).is_none());
        // Without a page index.
        let bare = ParquetMetaData::new(meta.file_metadata().clone(), meta.row_groups().to_vec());
        assert!(select_rows(&bare, "k", &text).is_none());
    }
}
