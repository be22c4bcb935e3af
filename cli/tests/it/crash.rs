//! Fault injection: `kill -9` of ingest at random moments, a crash between commit and publish,
//! and a kill during DDL. Afterwards the same command yields exactly the input rows and the
//! catalog opens consistent.

use std::path::Path;
use std::time::Duration;

use rand::Rng;

use super::{cuve, ok};

const DAYS: u32 = 2;
const ROWS: u64 = 4000;

fn generate(dir: &Path) -> u64 {
    let cfg = cuve_testdata::GenConfig {
        days: DAYS,
        rows_per_day: ROWS,
        users: 300,
        queries: 100,
        senders: 4,
        ..Default::default()
    };
    cuve_testdata::write_raw_logs(&cfg, dir).unwrap().lines
}

fn setup(home: &Path) {
    ok(cuve(home).args(["sql", "-e", "CREATE DATABASE korea_naver_log"]));
    ok(cuve(home).args(["sql", "-e", cuve_testdata::STREAM_LOG_DDL]));
}

fn ingest_cmd(home: &Path, raw: &Path) -> std::process::Command {
    let mut c = cuve(home);
    c.args([
        "ingest",
        "--table",
        "korea_naver_log.stream_log",
        "--batch-lines",
        "700",
    ])
    .arg(raw);
    c
}

fn counts(home: &Path) -> String {
    ok(cuve(home).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT COUNT(*) AS n, COUNT(DISTINCT log_key) AS k FROM korea_naver_log.stream_log",
    ]))
}

#[test]
fn ingest_survives_kill_9_at_random_points() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let raw = h.join("raw");
    let total = generate(&raw);
    setup(h);
    let mut rng = rand::rng();
    let mut killed = 0;
    for _ in 0..8 {
        let mut child = ingest_cmd(h, &raw)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(20..600)));
        if child.try_wait().unwrap().is_none() {
            killed += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever happened, no reader ever sees a duplicate.
        let c = counts(h);
        let v: Vec<&str> = c.lines().nth(1).unwrap().split(',').collect();
        assert_eq!(v[0], v[1], "duplicate rows after a kill: {c}");
    }
    assert!(
        killed > 0,
        "no run was killed while running: the test proved nothing"
    );
    ok(&mut ingest_cmd(h, &raw));
    assert_eq!(
        counts(h),
        format!("n,k\n{total},{total}\n"),
        "killed {killed} times"
    );
    // A crash between the catalog commit and publishing the files, in a fresh home (so the
    // run has everything still to commit): it really crashed, and the next process finishes
    // the commit.
    let fresh = tempfile::tempdir().unwrap();
    let f = fresh.path();
    setup(f);
    let o = ingest_cmd(f, &raw)
        .env("CUVE_CRASH_AT", "after-commit")
        .output()
        .unwrap();
    assert!(!o.status.success(), "the run crashed at after-commit");
    // Its first batch was committed before the crash: the next process publishes it (whole,
    // once: no duplicates, and not everything yet).
    let c = counts(f);
    let v: Vec<u64> = c
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(
        v[0] > 0 && v[0] < total && v[0] == v[1],
        "after the crash: {c}"
    );
    ok(&mut ingest_cmd(f, &raw));
    assert_eq!(counts(f), format!("n,k\n{total},{total}\n"));
    // No staged files are left behind.
    let leftovers: Vec<_> = walk(&h.join("warehouse"))
        .into_iter()
        .filter(|p| p.contains(".cuve-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Every file under `dir` (staged ones included).
pub(crate) fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn catalog_survives_kill_during_ddl() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args(["sql", "-e", "CREATE DATABASE d"]));
    let mut script = String::new();
    for i in 0..300 {
        script.push_str(&format!(
            "CREATE TABLE d.t{i} (a STRING, b BIGINT) PARTITIONED BY (dt STRING) CLUSTERED BY (a) INTO 4 BUCKETS;\nALTER TABLE d.t{i} ADD PARTITION (dt='2019-10-01');\nALTER TABLE d.t{i} SET TBLPROPERTIES ('sensitive_columns'='b');\n"
        ));
        if i % 3 == 0 {
            script.push_str(&format!("DROP TABLE d.t{i};\n"));
        }
    }
    let path = h.join("ddl.sql");
    std::fs::write(&path, script).unwrap();
    let mut rng = rand::rng();
    for _ in 0..4 {
        let mut child = cuve(h)
            .args(["sql", "-f"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
        let _ = child.kill();
        let _ = child.wait();
        let catalog = cuve_catalog::Catalog::open(h.join("catalog.db")).unwrap();
        catalog.integrity_check().unwrap();
        // Every table is complete: its columns, bucket spec and partitions all loaded together.
        for t in catalog.table_names("d").unwrap() {
            let def = catalog.table("d", &t).unwrap().unwrap();
            assert_eq!(def.columns.len(), 2, "{t}");
            assert_eq!(def.bucket.as_ref().unwrap().num_buckets, 4, "{t}");
        }
        drop(catalog);
        // Start over so the next run has work to do.
        ok(cuve(h).args(["sql", "-e", "DROP DATABASE d CASCADE; CREATE DATABASE d"]));
    }
}

/// INSERT OVERWRITE is all or nothing across a crash: killed after staging, the old rows stay;
/// killed after the commit, the next process finishes it (new rows only, no duplicates, no
/// leftovers of the replaced files).
#[test]
fn insert_overwrite_is_all_or_nothing_across_a_crash() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args([
        "sql",
        "-e",
        "CREATE DATABASE d; CREATE TABLE d.t (a BIGINT) PARTITIONED BY (dt STRING) CLUSTERED BY (a) INTO 4 BUCKETS STORED AS PARQUET; INSERT INTO d.t PARTITION (dt='2019-10-01') SELECT value FROM range(100)",
    ]));
    let count = || {
        ok(cuve(h).args([
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT COUNT(*) AS n, SUM(a) AS s FROM d.t",
        ]))
    };
    assert_eq!(count(), "n,s\n100,4950\n");
    let overwrite =
        "INSERT OVERWRITE TABLE d.t PARTITION (dt='2019-10-01') SELECT value + 1000 FROM range(10)";
    for (point, expected) in [
        ("after-stage", "n,s\n100,4950\n"),
        ("after-commit", "n,s\n10,10045\n"),
    ] {
        let o = cuve(h)
            .env("CUVE_CRASH_AT", point)
            .args(["sql", "-e", overwrite])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{point}: the process was killed");
        assert_eq!(count(), expected, "after a crash at {point}");
    }
    // A plain INSERT killed after its commit is finished once, not twice.
    let o = cuve(h)
        .env("CUVE_CRASH_AT", "after-commit")
        .args([
            "sql",
            "-e",
            "INSERT INTO d.t PARTITION (dt='2019-10-01') SELECT 5",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(count(), "n,s\n11,10050\n");
    assert_eq!(count(), "n,s\n11,10050\n");
    // The files the OVERWRITE killed after staging left were removed by the next write there.
    ok(cuve(h).args([
        "sql",
        "-e",
        "INSERT INTO d.t PARTITION (dt='2019-10-01') SELECT 6",
    ]));
    let staged: Vec<_> = walk(&h.join("warehouse/d/t/dt=2019-10-01"))
        .into_iter()
        .filter(|p| p.contains(".cuve-tmp-"))
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
}

#[test]
fn create_table_as_select_appears_whole_or_not_at_all_across_a_crash() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args(["sql", "-e", "CREATE DATABASE d"]));
    let ctas = "CREATE TABLE d.c PARTITIONED BY (dt) CLUSTERED BY (a) INTO 4 BUCKETS STORED AS PARQUET AS SELECT value AS a, '2019-10-01' AS dt FROM range(100)";
    // Killed after its rows were staged: no table, no leftover files that block a new one.
    let o = cuve(h)
        .env("CUVE_CRASH_AT", "after-stage")
        .args(["sql", "-e", ctas])
        .output()
        .unwrap();
    assert!(!o.status.success(), "the process was killed");
    assert_eq!(
        ok(cuve(h).args(["sql", "--format", "csv", "-e", "SHOW TABLES IN d"])),
        "tab_name\n",
        "a CTAS killed before its commit leaves no table"
    );
    // Killed right after its commit: the table is there with every row.
    let o = cuve(h)
        .env("CUVE_CRASH_AT", "after-commit")
        .args(["sql", "-e", ctas])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(
        ok(cuve(h).args([
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT COUNT(*) AS n, SUM(a) AS s FROM d.c"
        ])),
        "n,s\n100,4950\n"
    );
}
