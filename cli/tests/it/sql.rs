//! `cuve sql`: output formats, scripts that stop at the first failing statement, stdin,
//! `$CUVE_HOME`.

use std::io::Write;
use std::process::Stdio;

use super::{cuve, ok, stderr, stdout};

#[test]
fn formats_and_home() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args(["sql", "-e", "CREATE DATABASE d; CREATE TABLE d.t (a STRING, b BIGINT) STORED AS PARQUET; INSERT INTO d.t VALUES ('x', 1), ('한글', 2)"]));
    let csv = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT a, b FROM d.t ORDER BY b",
    ]));
    assert_eq!(csv, "a,b\nx,1\n한글,2\n");
    let empty = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT a FROM d.t WHERE b > 5",
    ]));
    assert_eq!(empty, "a\n", "CSV has one header row even with no rows");
    let json = ok(cuve(h).args([
        "sql",
        "--format",
        "json",
        "-e",
        "SELECT a, b FROM d.t ORDER BY b",
    ]));
    assert_eq!(json.trim(), r#"[{"a":"x","b":1},{"a":"한글","b":2}]"#);
    let nd = ok(cuve(h).args([
        "sql",
        "--format",
        "ndjson",
        "-e",
        "SELECT a FROM d.t ORDER BY b",
    ]));
    assert_eq!(nd, "{\"a\":\"x\"}\n{\"a\":\"한글\"}\n");
    let table = ok(cuve(h).args(["sql", "-e", "SELECT a, b FROM d.t ORDER BY b"]));
    // Korean text is two columns wide per character: the borders still line up.
    let widths: Vec<usize> = table.lines().map(unicode_width).collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "{table}");
    assert!(table.contains("| 한글 | 2 |"), "{table}");
    // $CUVE_HOME is honoured when --home is absent.
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cuve"));
    c.env("CUVE_HOME", h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT COUNT(*) AS n FROM d.t",
    ]);
    assert_eq!(ok(&mut c), "n\n2\n");
    assert!(h.join("catalog.db").exists());
    assert!(
        h.join("warehouse/d/t").is_dir(),
        "managed tables live in warehouse/<db>/<table>"
    );
}

fn unicode_width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            if ('\u{AC00}'..='\u{D7A3}').contains(&c) {
                2
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn script_stops_at_first_failing_statement() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let script = h.join("job.sql");
    std::fs::write(
        &script,
        "CREATE DATABASE d;\nCREATE TABLE d.t (a STRING);\n\nINSERT INTO d.t VALUES ('1');\nSELECT * FROM d.nope;\nINSERT INTO d.t VALUES ('2');\n",
    )
    .unwrap();
    let o = cuve(h).args(["sql", "-f"]).arg(&script).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "SQL errors exit 1");
    let err = stderr(&o);
    assert!(err.contains("statement 4 (line 5)"), "{err}");
    assert!(err.contains("nope"), "{err}");
    assert!(stdout(&o).is_empty() || !stdout(&o).contains("error"));
    let n = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT COUNT(*) AS n FROM d.t",
    ]));
    assert_eq!(n, "n\n1\n", "the statement after the failure did not run");
}

#[test]
fn statements_on_stdin_and_usage_errors() {
    let home = tempfile::tempdir().unwrap();
    let mut child = cuve(home.path())
        .args(["sql", "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT 1 AS one; SELECT 'a;b' AS two")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(stdout(&o), "one\n1\ntwo\na;b\n");
    let o = cuve(home.path())
        .args(["sql", "--format", "xml", "-e", "SELECT 1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = cuve(home.path())
        .args(["sql", "-f", "/nonexistent.sql"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert!(stderr(&o).contains("/nonexistent.sql"), "{}", stderr(&o));
}

#[test]
fn nested_values_print_in_every_format() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sql = "SELECT split('a,b,한', ',') AS s, str_to_map('a:1,b:2') AS m, named_struct('x', 1, 'y', 'q\"') AS st";
    let csv = ok(cuve(h).args(["sql", "--format", "csv", "-e", sql]));
    assert_eq!(
        csv,
        "s,m,st\n\"[\"\"a\"\",\"\"b\"\",\"\"한\"\"]\",\"{\"\"a\"\":\"\"1\"\",\"\"b\"\":\"\"2\"\"}\",\"{\"\"x\"\":1,\"\"y\"\":\"\"q\\\"\"\"\"}\"\n"
    );
    let table = ok(cuve(h).args(["sql", "-e", sql]));
    assert!(table.contains(r#"["a","b","한"]"#), "{table}");
    assert!(table.contains(r#"{"a":"1","b":"2"}"#), "{table}");
    let json = ok(cuve(h).args(["sql", "--format", "json", "-e", sql]));
    assert_eq!(
        json.trim(),
        r#"[{"s":["a","b","한"],"m":{"a":"1","b":"2"},"st":{"x":1,"y":"q\""}}]"#
    );
    let nd = ok(cuve(h).args([
        "sql",
        "--format",
        "ndjson",
        "-e",
        "SELECT collect_set(x) AS c FROM (VALUES ('a'), ('a')) t(x)",
    ]));
    assert_eq!(nd, "{\"c\":[\"a\"]}\n");
}

#[test]
fn a_panic_inside_a_statement_is_an_error_of_that_statement() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // cuve_test_panic (fault injection) panics while the statement executes.
    let o = cuve(h)
        .env("CUVE_TEST_FAULTS", "1")
        .args([
            "sql",
            "-e",
            "SELECT cuve_test_panic(v) FROM (VALUES (1), (2)) t(v)",
        ])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("internal error: cuve_test_panic was called"),
        "{err}"
    );
    // DataFusion's approx_percentile_cont used to panic on a huge centroid count.
    let o = cuve(h)
        .args([
            "sql",
            "-e",
            "SELECT approx_percentile_cont(v, 0.5, 9223372036854775807) FROM (VALUES (1.0), (2.0)) t(v)",
        ])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("number of centroids must be between 1 and 100000"),
        "{err}"
    );
    // the process is still fine for the next statement of a script
    let out = ok(cuve(h).args(["sql", "--format", "csv", "-e", "SELECT 1 AS one"]));
    assert_eq!(out, "one\n1\n");
}

/// Regression (wave 2): the splitter read `\'` as an escaped quote, so a literal ending in a
/// backslash swallowed the next statement, which was then dropped with exit code 0.
#[test]
fn a_literal_ending_in_a_backslash_ends_its_statement() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT 'C:\\' AS p; CREATE DATABASE after_backslash; SELECT 'it''s' AS q",
    ]));
    assert_eq!(out, "p\nC:\\\nq\nit's\n", "{out}");
    let dbs = ok(cuve(h).args(["sql", "--format", "csv", "-e", "SHOW DATABASES"]));
    assert!(dbs.contains("after_backslash"), "{dbs}");
    // A string that never ends is an error naming its place, not a silent drop.
    let o = cuve(h)
        .args(["sql", "-e", "SELECT 1;\nSELECT 'open"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
}

/// Results stream: 50 million rows to CSV go through in bounded memory (the whole result was
/// collected before printing: 3.2 GB).
#[test]
fn large_results_stream_in_bounded_memory() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut child = cuve(h)
        .args([
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT value, value * 2 AS twice FROM range(50000000)",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = vec![0u8; 1 << 20];
        let (mut bytes, mut lines) = (0u64, 0u64);
        loop {
            let n = out.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            bytes += n as u64;
            lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        }
        (bytes, lines)
    });
    let mut peak_kb = 0u64;
    let started = std::time::Instant::now();
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(600),
            "bounded in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(child.wait().unwrap().success());
    let (bytes, lines) = reader.join().unwrap();
    assert_eq!(lines, 50_000_001, "header + every row ({bytes} bytes)");
    assert!(peak_kb > 0, "peak memory was read");
    assert!(
        peak_kb < 500 * 1024,
        "peak RSS {peak_kb} kB for a {bytes}-byte result"
    );
}
