//! The commit protocol as readers see it: every query sees a commit whole or not at all, files
//! a commit replaced stay readable for queries planned before it, and a commit whose files are
//! not renamed yet (its writer died) is already seen whole.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cuve_catalog::FileCommit;
use cuve_engine::{AccessView, Engine};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use futures::TryStreamExt;

async fn setup(ddl: &str) -> (tempfile::TempDir, Arc<Engine>) {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::open(home.path()).unwrap();
    let mut s = engine.session(AccessView::admin("t")).unwrap();
    s.execute("CREATE DATABASE d").await.unwrap();
    s.execute(ddl).await.unwrap();
    (home, engine)
}

/// `(count, min, max)` of the query's three BIGINT columns.
async fn triple(engine: &Arc<Engine>, sql: &str) -> (i64, i64, i64) {
    let mut s = engine.session(AccessView::admin("r")).unwrap();
    let out = s.execute(sql).await.unwrap();
    let b = &out.batches[0];
    let col = |i: usize| {
        let a = b.column(i).as_primitive::<Int64Type>();
        if a.is_null(0) { -1 } else { a.value(0) }
    };
    (col(0), col(1), col(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_each_overwrite_whole_while_it_commits() {
    let (_home, engine) = setup(
        "CREATE TABLE d.t (k BIGINT, v BIGINT) CLUSTERED BY (k) INTO 8 BUCKETS STORED AS PARQUET",
    )
    .await;
    let mut w = engine.session(AccessView::admin("w")).unwrap();
    w.execute("INSERT INTO d.t SELECT value, 0 FROM range(1000)")
        .await
        .unwrap();
    let writes = 12;
    let writer = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut w = engine.session(AccessView::admin("w")).unwrap();
            for i in 1..=writes {
                // Each commit replaces 8 files with 8 others.
                w.execute(&format!(
                    "INSERT OVERWRITE TABLE d.t SELECT value, {i} FROM range(1000)"
                ))
                .await
                .unwrap();
            }
        })
    };
    let started = Instant::now();
    let mut reads = 0;
    let mut seen = std::collections::BTreeSet::new();
    while !writer.is_finished() && started.elapsed() < Duration::from_secs(120) && reads < 10_000 {
        let (n, lo, hi) = triple(&engine, "SELECT COUNT(*), MIN(v), MAX(v) FROM d.t").await;
        assert_eq!(
            (n, lo),
            (1000, hi),
            "read {reads} saw parts of two commits: {n} rows, v from {lo} to {hi}"
        );
        seen.insert(lo);
        reads += 1;
    }
    writer.await.unwrap();
    assert_eq!(
        triple(&engine, "SELECT COUNT(*), MIN(v), MAX(v) FROM d.t").await,
        (1000, writes, writes)
    );
    assert!(reads > 0, "the reader ran");
    eprintln!("{reads} consistent reads saw generations {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_planned_before_an_overwrite_reads_the_files_it_planned() {
    let (_home, engine) =
        setup("CREATE TABLE d.t (k BIGINT) CLUSTERED BY (k) INTO 4 BUCKETS STORED AS PARQUET")
            .await;
    let mut s = engine.session(AccessView::admin("w")).unwrap();
    s.execute("INSERT INTO d.t SELECT value FROM range(100)")
        .await
        .unwrap();
    let dir = engine.warehouse().join("d").join("t");
    let before: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(before.len(), 4);

    // Planned (files chosen), not yet read.
    let mut r = engine.session(AccessView::admin("r")).unwrap();
    let planned = r.execute_stream("SELECT k FROM d.t").await.unwrap();
    s.execute("INSERT OVERWRITE TABLE d.t SELECT value + 1000 FROM range(10)")
        .await
        .unwrap();
    // The replaced files are still on disk, and the planned query reads them whole.
    assert!(before.iter().all(|p| p.exists()));
    let rows: Vec<_> = planned.stream.try_collect().await.unwrap();
    let ks: i64 = rows
        .iter()
        .map(|b| {
            b.column(0)
                .as_primitive::<Int64Type>()
                .iter()
                .flatten()
                .sum::<i64>()
        })
        .sum();
    assert_eq!(
        ks, 4950,
        "the query planned before the overwrite reads the old rows"
    );
    // New queries see only the new rows.
    assert_eq!(
        triple(&engine, "SELECT COUNT(*), MIN(k), MAX(k) FROM d.t").await,
        (10, 1000, 1009)
    );
    // The query that read them has ended: the replaced files leave storage (a background
    // thread deletes them when the last read lease on the old commit is released).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while before.iter().any(|p| p.exists()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(before.iter().all(|p| !p.exists()));
    assert_eq!(cuve_engine::table::commit::vacuum(engine.catalog()), 0);
    assert_eq!(
        triple(&engine, "SELECT COUNT(*), MIN(k), MAX(k) FROM d.t").await,
        (10, 1000, 1009)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_files_are_not_renamed_yet_is_seen_whole() {
    let (_home, engine) = setup("CREATE TABLE d.t (k BIGINT) STORED AS PARQUET").await;
    let mut s = engine.session(AccessView::admin("w")).unwrap();
    s.execute("INSERT INTO d.t SELECT value FROM range(10)")
        .await
        .unwrap();
    s.execute("INSERT INTO d.t SELECT value + 100 FROM range(10)")
        .await
        .unwrap();
    let dir = engine.warehouse().join("d").join("t");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2);
    let (a, b) = (&files[0], &files[1]);
    // A writer that committed (replacing A, adding a copy of B) and died before renaming.
    let staged = dir.join(format!(".cuve-tmp-{}-test.parquet", std::process::id()));
    std::fs::copy(b, &staged).unwrap();
    let fin = dir.join("000000_99.parquet");
    let replaced = vec![a.display().to_string()];
    engine
        .catalog()
        .commit_files(
            &FileCommit {
                database: "d",
                table: "t",
                create: None,
                expect_generation: None,
                advances: &[],
                ranges: &[],
                ids: &[],
                partitions: &[],
                replaced: &replaced,
                require_live: false,
                drop_partitions: &[],
                added: &[],
            },
            &|_| vec![(staged.display().to_string(), fin.display().to_string())],
        )
        .unwrap();
    assert!(!fin.exists());
    // Readers see B twice and not A: the commit whole.
    assert_eq!(
        triple(&engine, "SELECT COUNT(*), MIN(k), MAX(k) FROM d.t").await,
        (20, 100, 109)
    );
    assert!(fin.exists(), "the reader finished the rename");
    // No query reads the table as of the earlier commit any more: A leaves storage.
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !a.exists(),
        "the replaced file is deleted once no reader holds it"
    );
}
