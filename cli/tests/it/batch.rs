//! `cuve run`, `cuve template`, `cuve archive`: exit codes, safe parameters, outputs,
//! templates equal to hand-written SQL, archive versions.

use super::{cuve, ok, stderr};

fn warehouse() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    ok(cuve(home.path()).args(["demo", "--days", "2", "--rows-per-day", "2000"]));
    home
}

#[test]
fn batch_jobs_templates_and_archive() {
    let home = warehouse();
    let h = home.path();
    let job = h.join("job.sql");
    std::fs::write(
        &job,
        "-- daily count\nSELECT COUNT(*) AS n FROM korea_naver_log.stream_log WHERE dt = ${day} AND query <> '${q}';\nSELECT ${k} + 1 AS k1;\n",
    )
    .unwrap();
    let out = ok(cuve(h).args(["run", "-f"]).arg(&job).args([
        "--param",
        "day=2019-10-01",
        "--param",
        "q=x",
        "--param",
        "k=41",
    ]));
    assert!(out.ends_with("k1\n42\n"), "{out}");
    // A value with quotes stays a literal: no injection, the query still runs.
    let evil = ok(cuve(h).args(["run", "-f"]).arg(&job).args([
        "--param",
        "day=2019-10-01' OR '1'='1",
        "--param",
        "q=x'; DROP TABLE korea_naver_log.stream_log; --",
        "--param",
        "k=1",
    ]));
    assert!(
        evil.starts_with("n\n0\n"),
        "the whole value was compared as one string: {evil}"
    );
    ok(cuve(h).args([
        "sql",
        "-e",
        "SELECT COUNT(*) FROM korea_naver_log.stream_log",
    ]));
    // Exit codes: usage 2, SQL 1 with the statement number, I/O 5.
    let o = cuve(h)
        .args(["run", "-f"])
        .arg(&job)
        .args(["--param", "day=2019-10-01"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let bad = h.join("bad.sql");
    std::fs::write(&bad, "SELECT 1;\nSELECT * FROM nowhere.t;\nSELECT 2;\n").unwrap();
    let o = cuve(h).args(["run", "-f"]).arg(&bad).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("statement 2 (line 2)"),
        "{}",
        stderr(&o)
    );
    let o = cuve(h)
        .args(["run", "-f", "/nonexistent/job.sql"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5));
    // Outputs: ndjson to a file, Parquet that reads back.
    let nd = h.join("out.ndjson");
    ok(cuve(h)
        .args(["run", "-f"])
        .arg(&job)
        .args([
            "--param",
            "day=2019-10-01",
            "--param",
            "q=x",
            "--param",
            "k=1",
            "--format",
            "ndjson",
            "--output",
        ])
        .arg(&nd));
    assert!(std::fs::read_to_string(&nd).unwrap().contains("{\"k1\":2}"));
    let pqdir = h.join("pqdir");
    std::fs::create_dir_all(&pqdir).unwrap();
    let pq = pqdir.join("out.parquet");
    ok(cuve(h)
        .args(["run", "-f"])
        .arg(&job)
        .args([
            "--param",
            "day=2019-10-01",
            "--param",
            "q=x",
            "--param",
            "k=1",
            "--format",
            "parquet",
            "--output",
        ])
        .arg(&pq));
    // An external Parquet table without a column list takes its columns from the file.
    let back = ok(cuve(h).args(["sql", "--format", "csv", "-e"]).arg(format!(
        "CREATE EXTERNAL TABLE default.pq STORED AS PARQUET LOCATION '{}'; SELECT * FROM default.pq",
        pqdir.display()
    )));
    assert_eq!(back, "k1\n2\n");
    // --explain prints plans and estimated bytes, runs nothing.
    let ex = ok(cuve(h).args(["run", "-f"]).arg(&job).args([
        "--param",
        "day=2019-10-01",
        "--param",
        "q=x",
        "--param",
        "k=1",
        "--explain",
    ]));
    assert!(ex.contains("estimated bytes scanned"), "{ex}");
    assert!(ex.contains("cuve_scan"), "{ex}");

    // Templates give what hand-written SQL gives.
    let t = ok(cuve(h).args([
        "template",
        "run",
        "ctr",
        "--from",
        "2019-10-01",
        "--to",
        "2019-10-02",
        "--filter",
        "section = 'news'",
    ]));
    let hand = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT dt, section, SUM(CASE WHEN event = 'impression' THEN 1 ELSE 0 END) AS imps, \
         SUM(CASE WHEN event = 'click' THEN 1 ELSE 0 END) AS clicks, \
         ROUND(CAST(SUM(CASE WHEN event = 'click' THEN 1 ELSE 0 END) AS DOUBLE) / NULLIF(SUM(CASE WHEN event = 'impression' THEN 1 ELSE 0 END), 0), 4) AS ctr \
         FROM korea_naver_log.stream_log WHERE dt BETWEEN '2019-10-01' AND '2019-10-02' AND section = 'news' GROUP BY dt, section ORDER BY dt, section",
    ]));
    assert_eq!(t, hand);
    let ag = ok(cuve(h).args([
        "template",
        "run",
        "age-gender",
        "--from",
        "2019-10-01",
        "--to",
        "2019-10-02",
    ]));
    let hand = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT CAST(FLOOR((2019 - p.birth_year) / 10.0) * 10 AS INT) AS age_band, p.gender, COUNT(*) AS clicks \
         FROM korea_naver_log.stream_log l JOIN korea_naver_log.user_profile p ON l.user_id = p.user_id \
         WHERE l.dt BETWEEN '2019-10-01' AND '2019-10-02' AND l.event = 'click' GROUP BY 1, 2 ORDER BY 1, 2",
    ]));
    assert_eq!(ag, hand);
    let o = cuve(h)
        .args([
            "template",
            "run",
            "ctr",
            "--from",
            "yesterday",
            "--to",
            "2019-10-02",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = cuve(h)
        .args([
            "template",
            "run",
            "ctr",
            "--from",
            "2019-10-01",
            "--to",
            "2019-10-02",
            "--filter",
            "1=1; DROP TABLE x",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Extensible from $CUVE_HOME/templates.
    std::fs::create_dir_all(h.join("templates")).unwrap();
    std::fs::write(h.join("templates/top-queries.sql"), "-- description: top queries\n-- param n: int = 3\nSELECT query, COUNT(*) AS c FROM korea_naver_log.stream_log GROUP BY query ORDER BY c DESC, query LIMIT ${n}").unwrap();
    assert!(ok(cuve(h).args(["template", "list"])).contains("top-queries"));
    let top = ok(cuve(h).args(["template", "run", "top-queries", "--param", "n=1"]));
    assert!(top.starts_with("query,c\n날씨,"), "{top}");

    // Archive: versions, run summary, search.
    ok(cuve(h)
        .args(["archive", "save", "--issue", "12", "--title", "daily count"])
        .arg(&job));
    std::fs::write(&job, "SELECT 1 AS one").unwrap();
    let saved = ok(cuve(h)
        .args([
            "archive",
            "save",
            "--issue",
            "12",
            "--title",
            "daily count v2",
        ])
        .arg(&job));
    assert!(saved.contains("version 2"), "{saved}");
    assert_eq!(ok(cuve(h).args(["archive", "run", "12"])), "one\n1\n");
    let shown = ok(cuve(h).args(["archive", "show", "12", "--version", "1"]));
    assert!(
        shown.contains("${day}") && shown.contains("version 2"),
        "{shown}"
    );
    assert!(ok(cuve(h).args(["archive", "list"])).contains("last run: ok"));
    assert!(ok(cuve(h).args(["archive", "search", "daily"])).contains("12"));
    assert!(ok(cuve(h).args(["archive", "search", "nothing-like-this"])).is_empty());
}

/// Regression (wave 2): an apostrophe in a comment used to flip the substitution's in-string
/// flag, so `--param "day=1; DROP TABLE ..."` was pasted as SQL and dropped the table. Values
/// are now bound as values, in `cuve run` and `archive run` alike.
#[test]
fn parameters_never_add_sql_even_after_quotes_in_comments() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args([
        "sql",
        "-e",
        "CREATE DATABASE d1; CREATE TABLE d1.t (a BIGINT); INSERT INTO d1.t VALUES (1)",
    ]));
    let job = h.join("job.sql");
    std::fs::write(&job, "-- today's job\nSELECT ${day} AS v;\n").unwrap();
    let evil = "day=1; DROP TABLE d1.t";
    let out = ok(cuve(h)
        .args(["run", "-f"])
        .arg(&job)
        .args(["--param", evil]));
    assert_eq!(out, "v\n1; DROP TABLE d1.t\n", "the value is one string");
    // The same through an archived script, with quotes in a string too.
    std::fs::write(
        &job,
        "-- it's 'archived'\nSELECT '${day}' AS v, ${day} AS w;\n",
    )
    .unwrap();
    ok(cuve(h)
        .args(["archive", "save", "--issue", "7", "--title", "t"])
        .arg(&job));
    let out = ok(cuve(h).args(["archive", "run", "7", "--param", evil]));
    assert_eq!(out, "v,w\n1; DROP TABLE d1.t,1; DROP TABLE d1.t\n");
    assert_eq!(
        ok(cuve(h).args([
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT COUNT(*) AS n FROM d1.t"
        ])),
        "n\n1\n",
        "the table is still there"
    );
    // Typed by use: an integer column compared with a text value gets an integer.
    std::fs::write(&job, "SELECT COUNT(*) AS n FROM d1.t WHERE a = ${a};\n").unwrap();
    let out = ok(cuve(h)
        .args(["run", "-f"])
        .arg(&job)
        .args(["--param", "a=1"]));
    assert_eq!(out, "n\n1\n");
    let o = cuve(h)
        .args(["run", "-f"])
        .arg(&job)
        .args(["--param", "a=1 OR 1=1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("parameter a: '1 OR 1=1' is not a valid Int64"),
        "{}",
        stderr(&o)
    );
}
