//! DELETE reads only the files that can hold matching rows: partition and bucket pruning
//! leave one bucket per day, and footer statistics and bloom filters leave the days where the
//! rows are. The rows deleted, and only those, are gone.

use std::sync::Arc;

use cuve_engine::lifecycle::delete::delete_rows;
use cuve_engine::{AccessView, Engine};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::common::ScalarValue;
use datafusion::prelude::{col, lit};

async fn count(engine: &Arc<Engine>, sql: &str) -> i64 {
    let mut s = engine.session(AccessView::admin("r")).unwrap();
    let out = s.execute(sql).await.unwrap();
    out.batches[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_reads_only_files_whose_statistics_or_bloom_filters_can_match() {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::open(home.path()).unwrap();
    let mut s = engine.session(AccessView::admin("t")).unwrap();
    s.execute("CREATE DATABASE d").await.unwrap();
    s.execute(
        "CREATE TABLE d.t (user_id STRING, n BIGINT) PARTITIONED BY (dt STRING) \
         CLUSTERED BY (user_id) INTO 4 BUCKETS STORED AS PARQUET",
    )
    .await
    .unwrap();
    // Ten days of 200 users; 'u7' only on the first two days, n above 1,000,000 only on day 5.
    for day in 1..=10 {
        let skip = if day > 2 {
            "WHERE value % 200 <> 7"
        } else {
            ""
        };
        let big = if day == 5 { 1_000_000 } else { 0 };
        s.execute(&format!(
            "INSERT INTO d.t PARTITION (dt='2026-11-{day:02}') \
             SELECT concat('u', CAST(value % 200 AS STRING)), value + {big} FROM range(2000) {skip}"
        ))
        .await
        .unwrap();
    }
    let total = count(&engine, "SELECT count(*) FROM d.t").await;
    let u7 = count(&engine, "SELECT count(*) FROM d.t WHERE user_id = 'u7'").await;
    assert_eq!(u7, 20);
    let catalog = engine.catalog().clone();
    let def = catalog.table("d", "t").unwrap().unwrap();

    // One user: bucket pruning leaves one file a day; its bloom filter rules out days 3..10.
    let r = delete_rows(
        &catalog,
        &def,
        &[col("user_id").eq(lit(ScalarValue::Utf8View(Some("u7".into()))))],
    )
    .unwrap();
    assert_eq!(r.rows, 20);
    assert_eq!(r.files_selected, 10, "{r:?}");
    assert_eq!(r.files_read, 2, "{r:?}");
    assert_eq!(r.files_rewritten, 2, "{r:?}");
    assert_eq!(
        count(&engine, "SELECT count(*) FROM d.t WHERE user_id = 'u7'").await,
        0
    );
    assert_eq!(count(&engine, "SELECT count(*) FROM d.t").await, total - 20);

    // Again: nothing left to delete, and no file is read.
    let r = delete_rows(
        &catalog,
        &def,
        &[col("user_id").eq(lit(ScalarValue::Utf8View(Some("u7".into()))))],
    )
    .unwrap();
    assert_eq!(
        (r.rows, r.files_read, r.files_rewritten),
        (0, 0, 0),
        "{r:?}"
    );

    // A partition and a user: one file selected, read and rewritten.
    let r = delete_rows(
        &catalog,
        &def,
        &[
            col("dt").eq(lit(ScalarValue::Utf8View(Some("2026-11-03".into())))),
            col("user_id").eq(lit(ScalarValue::Utf8View(Some("u9".into())))),
        ],
    )
    .unwrap();
    assert_eq!(
        (r.rows, r.files_selected, r.files_read, r.files_rewritten),
        (10, 1, 1, 1),
        "{r:?}"
    );
    let total = total - 10;

    // A range on a column that is not the bucket key: min/max leave day 5's four files.
    let r = delete_rows(&catalog, &def, &[col("n").gt_eq(lit(1_001_990i64))]).unwrap();
    assert_eq!(r.rows, 10);
    assert_eq!(r.files_selected, 40, "{r:?}");
    assert!(r.files_read <= 4, "{r:?}");
    assert!(r.files_rewritten >= 1 && r.files_rewritten <= 4, "{r:?}");
    assert_eq!(
        count(&engine, "SELECT count(*) FROM d.t WHERE n >= 1001990").await,
        0
    );
    assert_eq!(count(&engine, "SELECT count(*) FROM d.t").await, total - 30);

    // A condition statistics cannot decide (a function of the column) reads every file
    // and still deletes exactly the matching rows.
    let r = delete_rows(&catalog, &def, &[(col("n") % lit(1000i64)).eq(lit(999i64))]).unwrap();
    assert_eq!(r.files_read, r.files_selected, "{r:?}");
    assert_eq!(
        count(&engine, "SELECT count(*) FROM d.t WHERE n % 1000 = 999").await,
        0
    );
    assert_eq!(
        count(&engine, "SELECT count(*) FROM d.t").await,
        total - 30 - r.rows as i64
    );
    assert!(r.rows > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_in_one_row_group_of_a_file_keeps_every_other_row_group_whole() {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::open(home.path()).unwrap();
    let mut s = engine.session(AccessView::admin("t")).unwrap();
    s.execute("CREATE DATABASE d").await.unwrap();
    s.execute("CREATE TABLE d.big (n BIGINT) STORED AS PARQUET")
        .await
        .unwrap();
    // One file of two row groups (the writer's row groups hold 2^20 rows).
    let rows = (1i64 << 20) + 50_000;
    s.execute(&format!(
        "INSERT INTO d.big SELECT value FROM range({rows})"
    ))
    .await
    .unwrap();
    let catalog = engine.catalog().clone();
    let def = catalog.table("d", "big").unwrap().unwrap();
    let lo = (1i64 << 20) + 10;
    let r = delete_rows(
        &catalog,
        &def,
        &[col("n").gt_eq(lit(lo)), col("n").lt(lit(lo + 10))],
    )
    .unwrap();
    assert_eq!(r.rows, 10);
    assert_eq!((r.files_read, r.files_rewritten), (1, 1), "{r:?}");
    assert_eq!((r.row_groups_read, r.row_groups_total), (1, 2), "{r:?}");
    assert_eq!(
        count(&engine, "SELECT count(*) FROM d.big").await,
        rows - 10
    );
    let expected = rows * (rows - 1) / 2 - (lo..lo + 10).sum::<i64>();
    assert_eq!(count(&engine, "SELECT sum(n) FROM d.big").await, expected);
    assert_eq!(
        count(
            &engine,
            &format!(
                "SELECT count(*) FROM d.big WHERE n >= {lo} AND n < {}",
                lo + 10
            )
        )
        .await,
        0
    );
}
