//! Whether LZ4 pays for a column of a file about to be written. Reading a compressed page
//! costs a decompression on top of the copy out of the page cache, so a column LZ4 barely
//! shrinks (random identifiers, timestamps, small enums, dictionary indices) is cheaper to
//! store uncompressed: every lookup that touches it reads it faster, and ingest skips the work.
//! The estimate compresses a sample of what the column's pages will hold: for a
//! dictionary-encoded column the distinct values of an evenly spaced sample, scaled up to the
//! whole column's estimated dictionary and weighed against its indices; otherwise a run of
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
/// columns too small to judge keep LZ4.
pub fn lz4_pays(column: &ArrayRef, dictionary: bool) -> Result<bool> {
    if dictionary {
        return dictionary_pays(column);
    }
    let rows = column.slice(0, column.len().min(SAMPLE_ROWS));
    let Some(bytes) = plain_bytes(&rows) else {
        return Ok(true);
    };
    if bytes.len() < 256 {
        return Ok(true);
    }
    let compressed = lz4_flex::block::compress(&bytes).len();
    Ok((compressed as f64) <= bytes.len() as f64 * MAX_RATIO)
}

/// The estimate for a dictionary-encoded column, scaled to the whole column: its dictionary
/// page (the estimated number of distinct values, compressing as a sample of them does) and
/// its data pages (a bit-packed index per row, runs of equal values stored once, compressing
/// as a sample of them does). The indices often outweigh the dictionary, so judging the
/// distinct values alone would overrate LZ4 (a query-text column of the benchmark: its
/// dictionary 57% smaller, the whole column only 30%).
fn dictionary_pays(column: &ArrayRef) -> Result<bool> {
    let rows = column.len();
    if rows == 0 {
        return Ok(true);
    }
    // How many distinct values the column holds: estimated from an evenly spaced sample.
    let step = rows.div_ceil(SAMPLE_ROWS);
    let picks = UInt32Array::from_iter_values((0..rows).step_by(step).map(|r| r as u32));
    let spread = datafusion::arrow::compute::take(column.as_ref(), &picks, None)?;
    let (distinct, singletons) = distinct_counts(&spread)?;
    let estimate = distinct_estimate(
        distinct as f64,
        singletons as f64,
        picks.len() as f64,
        rows as f64,
    );
    // How they compress: the distinct values of a run of consecutive rows, in the order the
    // dictionary page holds them (values first seen near each other in a sorted file, such as
    // one user's session ids, often share prefixes), and that run's indices bit-packed as the
    // data pages hold them (one user's few session ids repeat in patterns LZ4 finds).
    let run = column.slice(0, rows.min(SAMPLE_ROWS));
    let (values, ids) = dictionary_ids(&run)?;
    let Some(bytes) = plain_bytes(&values) else {
        return Ok(true);
    };
    let bits = (usize::BITS - (estimate as usize).leading_zeros()).max(1);
    let packed_ids = without_long_runs(&ids);
    let packed = bit_pack(&packed_ids, bits, estimate as u32 / 2);
    let scale = estimate / values.len().max(1) as f64;
    let dictionary = bytes.len() as f64 * scale;
    let indices = (rows * bits as usize / 8) as f64 * packed_ids.len() as f64 / ids.len() as f64;
    let raw = dictionary + indices;
    if raw < 256.0 {
        return Ok(true);
    }
    let compressed = dictionary * compression_ratio(&bytes) + indices * compression_ratio(&packed);
    Ok(compressed <= raw * MAX_RATIO)
}

/// `ids` with each run of eight or more equal ids cut to one: the run-length half of
/// Parquet's hybrid encoding stores such a run as a count and one value (a sorted column's
/// data pages are mostly runs).
fn without_long_runs(ids: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(ids.len());
    for run in ids.chunk_by(|a, b| a == b) {
        if run.len() >= 8 {
            out.push(run[0]);
        } else {
            out.extend_from_slice(run);
        }
    }
    out
}

/// LZ4's compressed size of `bytes` as a fraction of their size.
fn compression_ratio(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 1.0;
    }
    lz4_flex::block::compress(bytes).len() as f64 / bytes.len() as f64
}

/// `ids` bit-packed `bits` wide, least significant bit first (as Parquet packs dictionary
/// indices), each offset by `base` so the high bits vary as a large dictionary's do.
fn bit_pack(ids: &[u32], bits: u32, base: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * bits as usize / 8 + 8);
    let (mut acc, mut filled) = (0u64, 0u32);
    let mask = if bits >= 32 {
        u32::MAX
    } else {
        (1 << bits) - 1
    };
    for id in ids {
        acc |= u64::from(id.wrapping_add(base) & mask) << filled;
        filled += bits;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
    out
}

/// The distinct values of `rows` in order of first appearance, and each row's index into
/// them: a dictionary page and its indices.
fn dictionary_ids(rows: &ArrayRef) -> Result<(ArrayRef, Vec<u32>)> {
    let (firsts, ids) = first_rows_and_ids(rows)?;
    let firsts = UInt32Array::from(firsts);
    Ok((
        datafusion::arrow::compute::take(rows.as_ref(), &firsts, None)?,
        ids,
    ))
}

/// For the distinct values of `rows` (by a 64-bit hash) in order of first appearance: the
/// row each first appears on, and each row's index into that order.
fn first_rows_and_ids(rows: &ArrayRef) -> Result<(Vec<u32>, Vec<u32>)> {
    let state = datafusion::common::hash_utils::RandomState::with_seed(0);
    datafusion::common::hash_utils::with_hashes([rows], &state, |hashes| {
        let mut index = std::collections::HashMap::with_capacity(hashes.len());
        let mut firsts = Vec::new();
        let ids = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| {
                *index.entry(*h).or_insert_with(|| {
                    firsts.push(i as u32);
                    firsts.len() as u32 - 1
                })
            })
            .collect::<Vec<_>>();
        Ok((firsts, ids))
    })
    .map_err(Into::into)
}

/// Distinct values in a column of `rows` rows from an evenly spaced sample of `sampled`
/// rows holding `seen` distinct values, `singletons` of them once: the GEE estimator
/// (Charikar et al., 2000), values seen more than once counted once and each singleton
/// standing for sqrt(rows / sampled) values.
fn distinct_estimate(seen: f64, singletons: f64, sampled: f64, rows: f64) -> f64 {
    let gee = seen - singletons + singletons * (rows / sampled.max(1.0)).sqrt();
    gee.clamp(seen, rows.max(seen))
}

/// How many distinct values `rows` holds, and how many of them occur once.
fn distinct_counts(rows: &ArrayRef) -> Result<(usize, usize)> {
    let (firsts, ids) = first_rows_and_ids(rows)?;
    let mut counts = vec![0u32; firsts.len()];
    for id in ids {
        counts[id as usize] += 1;
    }
    Ok((firsts.len(), counts.iter().filter(|&&n| n == 1).count()))
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
        // A handful of values (a section or event name) in no order: the pages are almost
        // all indices, which LZ4 cannot shrink ...
        let mut x: u32 = 0x9e37_79b9;
        let idx = UInt32Array::from_iter_values((0..5000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x % 8
        }));
        let few = datafusion::arrow::compute::take(ids.as_ref(), &idx, None).unwrap();
        assert!(!lz4_pays(&few, true).unwrap());
        // ... unless they repeat in a pattern.
        let idx = UInt32Array::from_iter_values((0..5000).map(|i| (i * 7 % 8) as u32));
        let cycle = datafusion::arrow::compute::take(ids.as_ref(), &idx, None).unwrap();
        assert!(lz4_pays(&cycle, true).unwrap());
    }

    #[test]
    fn a_dictionary_outweighed_by_its_indices_is_stored_uncompressed() {
        // 60,000 rows over 6,000 texts (a common prefix, then random hex digits): the
        // dictionary alone shrinks by about half, but the 13-bit indices of all rows are
        // about as large as the dictionary.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let texts: ArrayRef = Arc::new(StringArray::from_iter_values((0..60_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = x % 6000;
            format!("검색어 {:016x}", k.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        })));
        assert!(!lz4_pays(&texts, true).unwrap());
        // The same texts as one value per row (no dictionary) do compress.
        assert!(lz4_pays(&texts, false).unwrap());
    }

    #[test]
    fn a_sorted_dictionary_column_is_judged_by_its_dictionary() {
        // Each of 6,600 random ids on 23 consecutive rows (a file sorted by user id): the
        // data pages are runs, so the incompressible ids decide (LZ4 would shrink the
        // bit-packed indices, but Parquet stores runs without them).
        let ids = hex_ids(6600);
        let idx = UInt32Array::from_iter_values((0..150_000).map(|i| (i / 23) as u32));
        let sorted = datafusion::arrow::compute::take(ids.as_ref(), &idx, None).unwrap();
        assert!(!lz4_pays(&sorted, true).unwrap());
        assert_eq!(
            without_long_runs(&[1, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 4]),
            [1, 1, 2, 3, 4]
        );
    }

    #[test]
    fn indices_are_packed_least_significant_bit_first() {
        assert_eq!(bit_pack(&[1, 2, 3], 3, 0), vec![0b1101_0001, 0]);
        assert_eq!(bit_pack(&[0, 0], 12, 1), vec![1, 0x10, 0]);
        assert!(bit_pack(&[], 5, 0).is_empty());
    }

    #[test]
    fn the_distinct_estimate_scales_singletons() {
        // Every sampled value distinct: the column holds more than the sample shows.
        assert_eq!(
            distinct_estimate(1000.0, 1000.0, 1000.0, 100_000.0),
            10_000.0
        );
        // Every value repeated within the sample: the sample saw them all.
        assert_eq!(distinct_estimate(8.0, 0.0, 1024.0, 1_000_000.0), 8.0);
        // Never above the row count, never below what was seen.
        assert_eq!(
            distinct_estimate(10.0, 10.0, 10.0, 20.0),
            14.142135623730951
        );
        assert_eq!(distinct_estimate(5.0, 5.0, 5.0, 5.0), 5.0);
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
