//! Whether LZ4 pays for a column of a file about to be written. Reading a compressed page
//! costs a decompression on top of the copy out of the page cache, so a column LZ4 barely
//! shrinks (random identifiers, timestamps, small enums, dictionary indices) is cheaper to
//! store uncompressed: every lookup that touches it reads it faster, and ingest skips the work.
//! The estimate compresses a sample of what the column's pages will hold: for a
//! dictionary-encoded column the distinct values (its dictionary page), otherwise a run of
//! consecutive rows in file order (so a sorted column's locality counts).

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use datafusion::arrow::datatypes::DataType;

use crate::error::Result;

/// Rows sampled per column (one 1024-row page: compressing the sample is the estimate's
/// main cost, paid for every column of every file).
const SAMPLE_ROWS: usize = 1024;

/// LZ4 must shrink the sample to at most this fraction of its size (a third saved) for the
/// column to be compressed.
const MAX_RATIO: f64 = 2.0 / 3.0;

/// Whether `column` should be LZ4-compressed. `dictionary`: the column will be
/// dictionary-encoded. Columns whose bytes the estimate cannot see (nested, boolean) and
/// samples too small to judge keep LZ4.
pub fn lz4_pays(column: &ArrayRef, dictionary: bool) -> Result<bool> {
    let rows = column.slice(0, column.len().min(SAMPLE_ROWS));
    let (sample, indices) = if dictionary {
        // Data pages hold the dictionary indices, bit-packed (and run-length encoded where
        // values repeat): counted at full width and as incompressible.
        let distinct = first_occurrences(&rows)?;
        let bits = usize::BITS - distinct.len().leading_zeros();
        (distinct, rows.len() * bits as usize / 8)
    } else {
        (rows, 0)
    };
    let Some(bytes) = plain_bytes(&sample) else {
        return Ok(true);
    };
    let raw = bytes.len() + indices;
    if raw < 256 {
        return Ok(true);
    }
    let compressed = lz4_flex::block::compress(&bytes).len() + indices;
    Ok((compressed as f64) <= raw as f64 * MAX_RATIO)
}

/// The distinct values of `rows` in order of first appearance (as a dictionary page holds
/// them).
fn first_occurrences(rows: &ArrayRef) -> Result<ArrayRef> {
    let state = datafusion::common::hash_utils::RandomState::with_seed(0);
    let picks = datafusion::common::hash_utils::with_hashes([rows], &state, |hashes| {
        let mut seen = std::collections::HashSet::with_capacity(hashes.len());
        Ok(UInt32Array::from_iter_values(
            (0..hashes.len() as u32).filter(|&i| seen.insert(hashes[i as usize])),
        ))
    })?;
    Ok(datafusion::arrow::compute::take(
        rows.as_ref(),
        &picks,
        None,
    )?)
}

/// The non-null values of `array` roughly as Parquet's PLAIN encoding lays them out (a
/// 4-byte length before each string), or `None` for types the estimate does not cover.
fn plain_bytes(array: &ArrayRef) -> Option<Vec<u8>> {
    fn strings<'a>(values: impl Iterator<Item = Option<&'a [u8]>>) -> Vec<u8> {
        let mut out = Vec::new();
        for v in values.flatten() {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
        out
    }
    let bytes = match array.data_type() {
        DataType::Utf8 => strings(
            array
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::as_bytes)),
        ),
        DataType::LargeUtf8 => strings(
            array
                .as_string::<i64>()
                .iter()
                .map(|v| v.map(str::as_bytes)),
        ),
        DataType::Utf8View => strings(array.as_string_view().iter().map(|v| v.map(str::as_bytes))),
        DataType::Binary => strings(array.as_binary::<i32>().iter()),
        DataType::LargeBinary => strings(array.as_binary::<i64>().iter()),
        DataType::BinaryView => strings(array.as_binary_view().iter()),
        t if t.is_primitive() => {
            let width = t.primitive_width()?;
            let data = array.to_data();
            let buffer = data.buffers().first()?;
            let start = data.offset() * width;
            let end = start + data.len() * width;
            buffer.as_slice().get(start..end)?.to_vec()
        }
        _ => return None,
    };
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};

    use super::*;

    fn hex_ids(n: usize) -> ArrayRef {
        // Pseudo-random 12-hex-digit ids, like the benchmark's user ids.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        Arc::new(StringArray::from_iter_values((0..n).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("u{:012x}", x & 0xffff_ffff_ffff)
        })))
    }

    #[test]
    fn random_identifiers_and_timestamps_are_stored_uncompressed() {
        assert!(!lz4_pays(&hex_ids(5000), true).unwrap());
        assert!(!lz4_pays(&hex_ids(5000), false).unwrap());
        let mut x: i64 = 1_569_888_000_000_000_000;
        let times: ArrayRef = Arc::new(Int64Array::from_iter_values((0..5000).map(|i| {
            x += 1_000_000_007 * (i % 13 + 1);
            x
        })));
        assert!(!lz4_pays(&times, false).unwrap());
    }

    #[test]
    fn repetitive_text_and_counters_are_compressed() {
        let urls: ArrayRef =
            Arc::new(StringArray::from_iter_values((0..5000).map(|i| {
                format!("https://search.naver.com/search.naver?where=nexearch&query=q{i}")
            })));
        assert!(lz4_pays(&urls, true).unwrap());
        let counters: ArrayRef = Arc::new(Int64Array::from_iter_values(0..5000));
        assert!(lz4_pays(&counters, false).unwrap());
    }

    #[test]
    fn a_dictionary_is_judged_by_its_distinct_values() {
        // A thousand random ids, each repeated five times: the rows compress well, but their
        // dictionary is the thousand ids, which LZ4 cannot shrink.
        let ids = hex_ids(1000);
        let idx = UInt32Array::from_iter_values((0..5000).map(|i| (i / 5) as u32));
        let repeated = datafusion::arrow::compute::take(ids.as_ref(), &idx, None).unwrap();
        assert!(!lz4_pays(&repeated, true).unwrap());
        assert!(lz4_pays(&repeated, false).unwrap());
        // A handful of values (a section or event name): the pages are almost all indices.
        let idx = UInt32Array::from_iter_values((0..5000).map(|i| (i * 7 % 8) as u32));
        let few = datafusion::arrow::compute::take(ids.as_ref(), &idx, None).unwrap();
        assert!(!lz4_pays(&few, true).unwrap());
    }

    #[test]
    fn types_without_a_byte_estimate_keep_lz4() {
        let flags: ArrayRef = Arc::new(datafusion::arrow::array::BooleanArray::from(vec![
            true;
            5000
        ]));
        assert!(lz4_pays(&flags, false).unwrap());
        let tiny: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
        assert!(lz4_pays(&tiny, false).unwrap());
    }
}
