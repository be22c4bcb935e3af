//! Ingest behaviour: re-ingest, grown files, dead letters, --max-errors, concurrent sources
//! with a reader in parallel.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use cuve_engine::ingest::{IngestOptions, ingest};
use cuve_engine::parse::TableName;
use cuve_engine::{AccessView, Engine, Session};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;

const DDL: &str = "CREATE TABLE logs.events (log_time TIMESTAMP, sender_ip STRING, line_no BIGINT, log_key STRING, \
                   user_id STRING, n INT, raw STRING) PARTITIONED BY (dt STRING) CLUSTERED BY (user_id) INTO 4 BUCKETS \
                   STORED AS PARQUET";

async fn setup() -> (tempfile::TempDir, Arc<Engine>, Session) {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::open(home.path()).unwrap();
    let mut s = engine.session(AccessView::admin("t")).unwrap();
    s.execute("CREATE DATABASE logs").await.unwrap();
    s.execute(DDL).await.unwrap();
    (home, engine, s)
}

fn line(i: u64) -> String {
    format!(
        "{{\"log_time\":\"2019-10-0{}T0{}:00:00Z\",\"user_id\":\"u{}\",\"n\":{}}}\n",
        1 + i % 3,
        i % 10,
        i % 7,
        i
    )
}

fn write_lines(path: &Path, range: std::ops::Range<u64>, append: bool) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(path)
        .unwrap();
    for i in range {
        f.write_all(line(i).as_bytes()).unwrap();
    }
}

async fn count(s: &mut Session, sql: &str) -> i64 {
    let out = s.execute(sql).await.unwrap();
    out.batches[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0)
}

fn table() -> TableName {
    TableName {
        database: Some("logs".into()),
        name: "events".into(),
    }
}

fn opts() -> IngestOptions {
    IngestOptions {
        batch_lines: 7,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reingest_and_growth_add_only_new_lines() {
    let (home, _engine, mut s) = setup().await;
    let input = home.path().join("in");
    let a = input.join("10.0.0.1/a.jsonl");
    let b = input.join("10.0.0.2/a.jsonl");
    write_lines(&a, 0..40, false);
    write_lines(&b, 100..120, false);
    let inputs = vec![input.display().to_string()];
    let sum =
        tokio::task::block_in_place(|| ingest(&s, &table(), &inputs, &opts(), &|_| {})).unwrap();
    assert_eq!(sum.written, 60);
    assert_eq!(sum.partitions.len(), 3);
    let again =
        tokio::task::block_in_place(|| ingest(&s, &table(), &inputs, &opts(), &|_| {})).unwrap();
    assert_eq!(again.written, 0);
    assert_eq!(again.duplicates_skipped, 60);
    // The same file given directly is the same source.
    let direct = vec![a.display().to_string()];
    let d =
        tokio::task::block_in_place(|| ingest(&s, &table(), &direct, &opts(), &|_| {})).unwrap();
    assert_eq!(d.written, 0);
    write_lines(&a, 40..45, true);
    let grown =
        tokio::task::block_in_place(|| ingest(&s, &table(), &inputs, &opts(), &|_| {})).unwrap();
    assert_eq!(grown.written, 5);
    assert_eq!(count(&mut s, "SELECT COUNT(*) FROM logs.events").await, 65);
    assert_eq!(
        count(&mut s, "SELECT COUNT(DISTINCT log_key) FROM logs.events").await,
        65
    );
    // Keys carry the sender and line position; raw keeps the original line.
    assert_eq!(count(&mut s, "SELECT COUNT(*) FROM logs.events WHERE sender_ip = '10.0.0.2' AND line_no BETWEEN 1 AND 20").await, 20);
    assert_eq!(
        count(
            &mut s,
            "SELECT COUNT(*) FROM logs.events WHERE raw LIKE '{\"log_time\"%'"
        )
        .await,
        65
    );
    // A truncated source is refused, not silently re-read.
    write_lines(&a, 0..3, false);
    let e = tokio::task::block_in_place(|| ingest(&s, &table(), &inputs, &opts(), &|_| {}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("shorter"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_go_to_dead_letter() {
    let (home, _engine, mut s) = setup().await;
    let f = home.path().join("in/10.0.0.9/bad.jsonl");
    write_lines(&f, 0..5, false);
    let mut h = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
    h.write_all(
        b"{not json\n{\"user_id\":\"x\"}\n{\"log_time\":\"2019-10-01T00:00:00Z\",\"n\":\"abc\"}\n",
    )
    .unwrap();
    drop(h);
    write_lines(&f, 5..8, true);
    let inputs = vec![f.display().to_string()];
    let strict = IngestOptions {
        max_errors: Some(1),
        ..opts()
    };
    let e = tokio::task::block_in_place(|| ingest(&s, &table(), &inputs, &strict, &|_| {}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("max-errors"), "{e}");
    let sum =
        tokio::task::block_in_place(|| ingest(&s, &table(), &inputs, &opts(), &|_| {})).unwrap();
    assert_eq!(sum.rejected, 3);
    let total = count(&mut s, "SELECT COUNT(*) FROM logs.events").await;
    assert_eq!(total as u64, 8, "good lines all committed");
    let dl = std::fs::read_to_string(sum.dead_letter.as_ref().unwrap()).unwrap();
    assert_eq!(dl.lines().count(), 3);
    assert!(dl.contains("\"line\":6") && dl.contains("bad JSON"), "{dl}");
    assert!(dl.contains("missing required field log_time"), "{dl}");
    assert!(dl.contains("column n"), "{dl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unterminated_last_line_waits_for_next_run() {
    let (home, _engine, mut s) = setup().await;
    let f = home.path().join("in/10.0.0.3/grow.jsonl");
    write_lines(&f, 0..3, false);
    let mut h = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
    h.write_all(b"{\"log_time\":\"2019-10-01T00:00:00Z\",\"us")
        .unwrap();
    drop(h);
    let inputs = vec![f.display().to_string()];
    let sum =
        tokio::task::block_in_place(|| ingest(&s, &table(), &inputs, &opts(), &|_| {})).unwrap();
    assert_eq!((sum.written, sum.incomplete, sum.rejected), (3, 1, 0));
    let mut h = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
    h.write_all(b"er_id\":\"late\"}\n").unwrap();
    drop(h);
    let sum =
        tokio::task::block_in_place(|| ingest(&s, &table(), &inputs, &opts(), &|_| {})).unwrap();
    assert_eq!(sum.written, 1);
    assert_eq!(
        count(
            &mut s,
            "SELECT COUNT(*) FROM logs.events WHERE user_id = 'late'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sources_and_reader_see_no_duplicates() {
    let (home, engine, _s) = setup().await;
    let mut inputs = Vec::new();
    for k in 0..4u64 {
        let f = home.path().join(format!("in/10.0.1.{k}/x.jsonl"));
        write_lines(&f, k * 1000..k * 1000 + 300, false);
        inputs.push(f.display().to_string());
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let engine = engine.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut s = engine.session(AccessView::admin("r")).unwrap();
            let mut checks = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let out = s
                    .execute("SELECT COUNT(*) - COUNT(DISTINCT log_key) FROM logs.events")
                    .await
                    .unwrap();
                assert_eq!(
                    out.batches[0]
                        .column(0)
                        .as_primitive::<Int64Type>()
                        .value(0),
                    0,
                    "a reader saw a duplicate"
                );
                checks += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            checks
        })
    };
    let handles: Vec<_> = [inputs[..2].to_vec(), inputs[2..].to_vec(), inputs.clone()]
        .into_iter()
        .map(|inp| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let s = engine.session(AccessView::admin("w")).unwrap();
                ingest(
                    &s,
                    &table(),
                    &inp,
                    &IngestOptions {
                        batch_lines: 50,
                        threads: 1,
                        ..Default::default()
                    },
                    &|_| {},
                )
                .unwrap()
            })
        })
        .collect();
    let written: u64 = handles.into_iter().map(|h| h.join().unwrap().written).sum();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.await.unwrap() > 0);
    assert_eq!(
        written, 1200,
        "every line written exactly once across concurrent runs"
    );
    let mut s = engine.session(AccessView::admin("c")).unwrap();
    assert_eq!(
        count(&mut s, "SELECT COUNT(*) FROM logs.events").await,
        1200
    );
    assert_eq!(
        count(&mut s, "SELECT COUNT(DISTINCT log_key) FROM logs.events").await,
        1200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_lines_map_by_header_and_a_partial_last_line_waits() {
    let (home, _engine, mut s) = setup().await;
    let f = home.path().join("in/10.0.0.7/a.csv");
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(&f, "n,user_id,log_time\n1,u1,2019-10-01T00:00:00Z\n2,\"u,2\",2019-10-02T00:00:00Z\n3,u3,2019-10-0").unwrap();
    let inputs = vec![f.display().to_string()];
    let csv = IngestOptions {
        format: cuve_engine::ingest::InputFormat::Csv,
        ..opts()
    };
    let sum = tokio::task::block_in_place(|| ingest(&s, &table(), &inputs, &csv, &|_| {})).unwrap();
    assert_eq!((sum.written, sum.incomplete), (2, 1));
    let mut h = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
    h.write_all(b"3T00:00:00Z\n").unwrap();
    drop(h);
    let sum = tokio::task::block_in_place(|| ingest(&s, &table(), &inputs, &csv, &|_| {})).unwrap();
    assert_eq!((sum.written, sum.incomplete), (1, 0));
    assert_eq!(
        count(
            &mut s,
            "SELECT COUNT(*) FROM logs.events WHERE user_id = 'u,2' AND line_no = 3"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &mut s,
            "SELECT COUNT(*) FROM logs.events WHERE dt = '2019-10-03'"
        )
        .await,
        1
    );
}
