//! A bounded fuzz of the statement path, on a fixed seed (`CUVE_FUZZ_SEED` picks another,
//! `CUVE_FUZZ_SECONDS` the time budget of each part, 30 s by default):
//!
//! - every registered function with odd arguments (NULL, empty and Korean strings, extreme
//!   integers and floats, dates, JSON, lists): an error is fine, a panic is not;
//! - generated SQL shapes: deep and wide expressions, long IN lists, many UNION branches, odd
//!   identifiers and literals: the right answer within the limits, a clear error past them;
//! - odd partition values (Korean, `%`, `/`, `=`, quotes, `\`): written, pruned on and read back
//!   exactly.
//!
//! Statements run on threads with the stack size front ends use (`cuve_engine::THREAD_STACK`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cuve_engine::{AccessView, Engine, ErrorKind, Session};
use datafusion::arrow::util::display::array_value_to_string;

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// A size: mostly small, sometimes up to `max` (planning time grows with size).
    fn size(&mut self, max: usize) -> usize {
        if self.below(4) == 0 {
            1 + self.below(max)
        } else {
            1 + self.below(max / 8)
        }
    }
}

fn seed() -> u64 {
    std::env::var("CUVE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00C0_FFEE)
}

fn budget() -> Duration {
    Duration::from_secs_f64(
        std::env::var("CUVE_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30.0),
    )
}

/// Runs `f` on a runtime whose threads have the front ends' stack size.
fn on_big_stack<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    std::thread::Builder::new()
        .stack_size(cuve_engine::THREAD_STACK)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(cuve_engine::THREAD_STACK)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(f());
        })
        .unwrap()
        .join()
        .unwrap();
}

fn engine() -> (tempfile::TempDir, Arc<Engine>) {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::open(home.path()).unwrap();
    (home, engine)
}

/// Runs `sql`; a panic (an internal error) fails the test with the statement and the seed.
async fn run(s: &mut Session, sql: &str) -> Result<Vec<String>, String> {
    match s.execute(sql).await {
        Ok(out) => {
            let mut rows = Vec::new();
            for b in &out.batches {
                for r in 0..b.num_rows() {
                    let cells: Vec<String> = (0..b.num_columns())
                        .map(|c| array_value_to_string(b.column(c), r).unwrap_or_default())
                        .collect();
                    rows.push(cells.join("|"));
                }
            }
            Ok(rows)
        }
        Err(e) => {
            let msg = e.user_message();
            assert!(
                e.kind() != ErrorKind::Internal && !msg.contains("panicked"),
                "seed {}: {sql:.300}\npanicked: {msg}",
                seed()
            );
            Err(msg)
        }
    }
}

const ODD_ARGS: &[&str] = &[
    "NULL",
    "''",
    "'x'",
    "'한글 검색어'",
    "'a''b\\\\c'",
    "'%_*'",
    "-1",
    "0",
    "3",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "-0.0",
    "CAST('NaN' AS DOUBLE)",
    "CAST('inf' AS DOUBLE)",
    "DATE '1970-01-01'",
    "DATE '9999-12-31'",
    "TIMESTAMP '2019-10-01 00:00:00'",
    "'2019-10-01'",
    "'{\"a\": [1, {\"b\": \"c\"}]}'",
    "'$.a[1].b'",
    "make_array(1, 2, 3)",
    "make_array('a', NULL)",
    "X'00FF'",
    "100000",
];

#[test]
fn every_function_with_odd_arguments_errs_or_answers_never_panics() {
    on_big_stack(|| async {
        let (_home, engine) = engine();
        let mut s = engine.session(AccessView::admin("fuzz")).unwrap();
        let names: Vec<String> = run(&mut s, "SHOW FUNCTIONS")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.split('|').next().unwrap_or_default().to_string())
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        assert!(names.len() > 50, "{names:?}");
        let mut rng = Rng(seed());
        let started = Instant::now();
        let mut calls = 0;
        'outer: for round in 0..4 {
            for name in &names {
                if name.starts_with("cuve_test") {
                    continue;
                }
                if started.elapsed() > budget() {
                    break 'outer;
                }
                let arity = if round == 0 { 0 } else { rng.below(4) };
                let args: Vec<&str> = (0..arity).map(|_| *rng.pick(ODD_ARGS)).collect();
                let sql = format!("SELECT {name}({})", args.join(", "));
                let _ = run(&mut s, &sql).await;
                calls += 1;
            }
        }
        eprintln!("{calls} function calls on seed {}", seed());
        assert!(
            calls >= names.len(),
            "every function was called at least once"
        );
    });
}

#[test]
fn generated_statement_shapes_answer_right_or_fail_clearly() {
    on_big_stack(|| async {
        let (_home, engine) = engine();
        let mut s = engine.session(AccessView::admin("fuzz")).unwrap();
        let mut rng = Rng(seed() ^ 0x5eed);
        let started = Instant::now();
        let mut cases = 0;
        while started.elapsed() < budget() && cases < 60 {
            cases += 1;
            match rng.below(6) {
                // A sum chain: right below the depth limit, an error above.
                0 => {
                    let n = rng.size(1400);
                    let sql = format!("SELECT {} AS n", vec!["1"; n].join(" + "));
                    match run(&mut s, &sql).await {
                        Ok(rows) => assert_eq!(rows, vec![n.to_string()], "{n} terms"),
                        Err(e) => {
                            assert!(n > 900, "{n} terms failed: {e}");
                            assert!(e.contains("too deep"), "{e}");
                        }
                    }
                }
                // AND / OR chains in a filter.
                1 => {
                    let n = rng.size(1200);
                    let op = *rng.pick(&[" AND ", " OR "]);
                    let sql = format!(
                        "SELECT COUNT(*) FROM (VALUES (1), (2)) t(x) WHERE {}",
                        vec!["x > 0"; n].join(op)
                    );
                    match run(&mut s, &sql).await {
                        Ok(rows) => assert_eq!(rows, vec!["2"], "{n} terms"),
                        Err(e) => assert!(e.contains("too deep"), "{n}: {e}"),
                    }
                }
                // A long IN list is one node.
                2 => {
                    let n = 1 + rng.below(20_000);
                    let list: Vec<String> = (0..n).map(|i| i.to_string()).collect();
                    let sql = format!(
                        "SELECT COUNT(*) FROM range(5) WHERE value IN ({})",
                        list.join(",")
                    );
                    let want = n.min(5).to_string();
                    assert_eq!(run(&mut s, &sql).await.unwrap(), vec![want]);
                }
                // UNION ALL branches.
                3 => {
                    let n = rng.size(1500);
                    let sql = format!(
                        "SELECT COUNT(*) FROM ({})",
                        (0..n)
                            .map(|i| format!("SELECT {i} AS v"))
                            .collect::<Vec<_>>()
                            .join(" UNION ALL ")
                    );
                    match run(&mut s, &sql).await {
                        Ok(rows) => assert_eq!(rows, vec![n.to_string()]),
                        Err(e) => {
                            assert!(n > 1000, "{n} branches failed: {e}");
                            assert!(e.contains("UNION"), "{e}");
                        }
                    }
                }
                // Odd identifiers: quoted, Korean, with quotes inside.
                4 => {
                    let names = [
                        "\"한글 열\"",
                        "\"a\"\"b\"",
                        "\"select\"",
                        "\"x y\"",
                        "\"%\"",
                    ];
                    let n = *rng.pick(&names);
                    let sql = format!("SELECT v AS {n} FROM (VALUES (7)) t(v)");
                    assert_eq!(run(&mut s, &sql).await.unwrap(), vec!["7"]);
                }
                // Odd literals.
                _ => {
                    let lits = [
                        "'a''b'",
                        "'C:\\'",
                        "'한글'",
                        "1e400",
                        "99999999999999999999999999",
                        "-9223372036854775808",
                        "''",
                        "'\u{1F600}'",
                    ];
                    let l = *rng.pick(&lits);
                    let _ = run(&mut s, &format!("SELECT {l}, length(CAST({l} AS VARCHAR))")).await;
                }
            }
        }
        eprintln!("{cases} statement shapes on seed {}", seed());
    });
}

#[test]
fn odd_partition_values_are_written_pruned_and_read_back_exactly() {
    on_big_stack(|| async {
        let (_home, engine) = engine();
        let mut s = engine.session(AccessView::admin("fuzz")).unwrap();
        run(&mut s, "CREATE DATABASE d").await.unwrap();
        run(
            &mut s,
            "CREATE TABLE d.p (a BIGINT) PARTITIONED BY (k STRING) STORED AS PARQUET",
        )
        .await
        .unwrap();
        let alphabet = [
            "한", "글", "%", "/", "=", "'", "\\", ":", " ", "#", "?", "*", "a", "Z", "0", "_", "{",
            "[", "^", "\"",
        ];
        let mut rng = Rng(seed() ^ 0x9a97);
        let started = Instant::now();
        let mut written: Vec<(String, i64)> = Vec::new();
        for i in 0..20i64 {
            if started.elapsed() > budget() {
                break;
            }
            let len = 1 + rng.below(6);
            let v: String = (0..len).map(|_| *rng.pick(&alphabet)).collect();
            if written.iter().any(|(w, _)| *w == v) {
                continue;
            }
            let lit = v.replace('\'', "''");
            run(
                &mut s,
                &format!("INSERT INTO d.p PARTITION (k='{lit}') SELECT {i}"),
            )
            .await
            .unwrap_or_else(|e| panic!("value {v:?}: {e}"));
            let back = run(&mut s, &format!("SELECT a FROM d.p WHERE k = '{lit}'"))
                .await
                .unwrap();
            assert_eq!(back, vec![i.to_string()], "value {v:?}");
            written.push((v, i));
        }
        let all = run(&mut s, "SELECT k, a FROM d.p ORDER BY a")
            .await
            .unwrap();
        let want: Vec<String> = written.iter().map(|(v, i)| format!("{v}|{i}")).collect();
        assert_eq!(all, want);
    });
}
