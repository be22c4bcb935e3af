//! Micro-benchmarks (rows/s): the Hive bucket hash, bucket pruning decisions, and the
//! string-heavy UDFs over a million rows. `cargo bench -p cuve-bench`.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cuve_engine::table::bucket::{BucketHash, bucket_ids};
use cuve_engine::table::prune::select_buckets;
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::prelude::{col, lit};

fn strings(n: usize) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        (0..n).map(|i| format!("u{:012x}", i * 7919)),
    ))
}

fn bench(c: &mut Criterion) {
    const N: usize = 1_000_000;
    let users = strings(N);
    let mut g = c.benchmark_group("bucket");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("hive_v2_hash_1m_strings", |b| {
        b.iter(|| bucket_ids(BucketHash::V2, std::slice::from_ref(&users), &[], 16).unwrap())
    });
    g.finish();

    let field = vec![Arc::new(Field::new("user_id", DataType::Utf8, true))];
    let filters =
        vec![col("user_id").in_list((0..20).map(|i| lit(format!("u{i}"))).collect(), false)];
    c.bench_function("select_buckets_in_list_20", |b| {
        b.iter(|| select_buckets(&filters, &field, &[], BucketHash::V2, 16))
    });

    let queries: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..N).map(|i| format!("  날씨 Seoul {}  ", i % 100)),
    ));
    let keys: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..N).map(|i| if i % 2 == 0 { "gksrmf" } else { "vmfhsxmdpsem" }),
    ));
    let mut g = c.benchmark_group("udf");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("normalize_query_1m", |b| {
        b.iter(|| {
            cuve_udf::udf::map_str(&queries, |v| Some(cuve_udf::search::normalize_query(v)))
                .unwrap()
        })
    });
    g.bench_function("hangul_choseong_1m", |b| {
        b.iter(|| {
            cuve_udf::udf::map_str(&queries, |v| Some(cuve_udf::hangul::choseong(v))).unwrap()
        })
    });
    g.bench_function("qwerty_to_ko_1m", |b| {
        b.iter(|| {
            cuve_udf::udf::map_str(&keys, |v| Some(cuve_udf::hangul::qwerty_to_ko(v))).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
