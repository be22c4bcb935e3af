//! Data lifecycle through the real binary: retention and sensitive expiry by date (`CUVE_NOW`
//! sets the day), `cuve table maintain` (and `--dry-run`), kill -9 at every commit point of
//! maintenance and DELETE, DELETE of one user touching only that user's bucket files, the
//! DELETE grant, compaction while queries and inserts run, and `cuve serve` maintaining tables
//! in the background.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::crash::walk;
use super::tickets::secret_of;
use super::{cuve, ok, stderr, stdout};

/// The day maintenance runs on.
const NOW: &str = "2026-12-01";
/// A day on which nothing in the tests has expired yet (to see what the files still hold).
const PAST: &str = "2026-10-21";

fn sql_at(h: &Path, now: &str, q: &str) -> String {
    ok(cuve(h)
        .env("CUVE_NOW", now)
        .args(["sql", "--format", "csv", "-e", q]))
}

/// The data files under `dir` (path → size), staged files left out.
fn files(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else if p.extension().is_some_and(|x| x == "parquet")
                && !p.display().to_string().contains(".cuve-tmp-")
            {
                out.insert(p.display().to_string(), e.metadata().unwrap().len());
            }
        }
    }
    out
}

fn holds(dir: &Path, needle: &str) -> Vec<String> {
    walk(dir)
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        })
        .collect()
}

fn insert_day(day: &str, from: u32, to: u32) -> String {
    format!(
        "INSERT INTO d.logs SELECT 'u' || CAST(v AS VARCHAR), 'IPSECRET-{day}-' || CAST(v AS VARCHAR), \
         'RAWSECRET-{day}-' || CAST(v AS VARCHAR), v, '{day}' FROM generate_series({from}, {to}) AS s(v)"
    )
}

fn maintain(h: &Path, crash: Option<&str>) -> std::process::Output {
    let mut c = cuve(h);
    c.env("CUVE_NOW", NOW).args(["table", "maintain"]);
    if let Some(point) = crash {
        c.env("CUVE_CRASH_AT", point);
    }
    c.output().unwrap()
}

#[test]
fn retention_and_sensitive_expiry_by_date_survive_kill_9() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Uncompressed, so that a value still in a file can be found in its bytes.
    let mut script = vec![
        "CREATE DATABASE d".to_string(),
        "CREATE TABLE d.logs (user_id STRING, ip STRING, raw STRING, n BIGINT) PARTITIONED BY (dt STRING) \
         CLUSTERED BY (user_id) INTO 4 BUCKETS STORED AS PARQUET TBLPROPERTIES ('sensitive_columns'='ip', \
         'retention.days'='30', 'sensitive.retention.days'='7', 'parquet.compression'='uncompressed')"
            .to_string(),
    ];
    script.push(insert_day("2026-10-20", 1, 50));
    script.push(insert_day("2026-11-15", 1, 50));
    script.push(insert_day("2026-11-15", 51, 100));
    script.push(insert_day("2026-11-28", 1, 50));
    ok(cuve(h).args(["sql", "-e", &script.join(";\n")]));
    let table = h.join("warehouse/d/logs");
    let everything = "SELECT COUNT(*) AS n, COUNT(ip) AS ips, COUNT(raw) AS raws FROM d.logs";
    assert_eq!(sql_at(h, PAST, everything), "n,ips,raws\n200,200,200\n");

    // On NOW, before any maintenance: the old day is not read, the week-old one has no
    // sensitive values, for the admin and for a ticket granted SENSITIVE.
    ok(cuve(h).args(["user", "add", "kim", "--role", "analyst"]));
    let (_, secret) = secret_of(&ok(cuve(h).args([
        "ticket",
        "create",
        "--user",
        "kim",
        "--grant",
        "SELECT:d.*",
        "--grant",
        "SENSITIVE:d.logs",
        "--json",
    ])));
    let by_day = "SELECT dt, COUNT(*) AS n, COUNT(ip) AS ips, COUNT(raw) AS raws FROM d.logs GROUP BY dt ORDER BY dt";
    let expected = "dt,n,ips,raws\n2026-11-15,100,0,0\n2026-11-28,50,50,50\n";
    let check_now = |label: &str| {
        assert_eq!(sql_at(h, NOW, by_day), expected, "{label}");
        let kim = ok(cuve(h)
            .env("CUVE_NOW", NOW)
            .args(["--ticket", &secret, "sql", "--format", "csv", "-e", by_day]));
        assert_eq!(kim, expected, "{label}: a ticket with SENSITIVE");
        // Filters on a masked column see the NULLs, not the values in the files.
        assert_eq!(
            sql_at(
                h,
                NOW,
                "SELECT COUNT(*) AS n FROM d.logs WHERE ip IS NULL AND dt = '2026-11-15'"
            ),
            "n\n100\n",
            "{label}"
        );
        assert_eq!(
            sql_at(
                h,
                NOW,
                "SELECT COUNT(*) AS n FROM d.logs WHERE ip = 'IPSECRET-2026-11-15-7' OR raw LIKE 'RAWSECRET-2026-11-15%'"
            ),
            "n\n0\n",
            "{label}"
        );
        assert_eq!(
            sql_at(
                h,
                NOW,
                "SELECT COUNT(*) AS n FROM d.logs WHERE dt = '2026-10-20'"
            ),
            "n\n0\n",
            "{label}"
        );
    };
    check_now("before maintenance");

    let stats = sql_at(h, NOW, "SHOW TABLE STATS d.logs");
    let total = stats.lines().find(|l| l.starts_with("(total)")).unwrap();
    assert!(total.ends_with(",due,due"), "{stats}");
    assert!(
        stats
            .lines()
            .filter(|l| l.starts_with("dt=2026-11-28,"))
            .all(|l| l.ends_with(",2026-12-29,2026-12-06")),
        "{stats}"
    );
    assert!(
        stats
            .lines()
            .filter(|l| l.starts_with("dt=2026-11-15,"))
            .all(|l| l.contains(",2,due,due") || l.contains(",2,2026-12-16,due")),
        "two small files per bucket: {stats}"
    );

    // --dry-run says what would be done and changes nothing.
    let before = files(&table);
    assert_eq!(before.len(), 16);
    let plan = ok(cuve(h)
        .env("CUVE_NOW", NOW)
        .args(["table", "maintain", "--dry-run"]));
    assert!(
        plan.contains("would drop partition d.logs dt=2026-10-20 (older than retention.days=30)"),
        "{plan}"
    );
    assert!(
        plan.contains("would clear sensitive columns of d.logs dt=2026-11-15: rewrite 8 file(s)"),
        "{plan}"
    );
    assert!(plan.contains("would compact d.logs dt=2026-11-15 bucket 000000: 2 small files"));
    assert!(!plan.contains("2026-11-28"), "{plan}");
    assert_eq!(files(&table), before);

    // kill -9 before each commit of maintenance: what was committed stays, the rest is undone,
    // and the next run finishes the work.
    let o = maintain(h, Some("retention-before-commit"));
    assert!(!o.status.success(), "killed");
    assert_eq!(files(&table), before, "nothing committed");
    assert_eq!(sql_at(h, PAST, everything), "n,ips,raws\n200,200,200\n");

    let o = maintain(h, Some("expiry-before-commit"));
    assert!(!o.status.success(), "killed");
    assert!(!table.join("dt=2026-10-20").exists(), "the drop committed");
    assert_eq!(sql_at(h, PAST, everything), "n,ips,raws\n150,150,150\n");
    assert_eq!(
        sql_at(h, PAST, "SHOW PARTITIONS d.logs"),
        "partition\ndt=2026-11-15\ndt=2026-11-28\n"
    );

    let o = maintain(h, Some("compact-before-commit"));
    assert!(!o.status.success(), "killed");
    // The sensitive values left the files even for a reader on an earlier day.
    assert_eq!(sql_at(h, PAST, everything), "n,ips,raws\n150,50,50\n");
    check_now("after expiry");

    let o = maintain(h, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let done = stdout(&o);
    assert!(
        done.contains("compact d.logs dt=2026-11-15 bucket 000003: 2 small files"),
        "{done}"
    );
    assert!(!done.contains("drop") && !done.contains("clear"), "{done}");
    check_now("after compaction");
    assert_eq!(sql_at(h, PAST, everything), "n,ips,raws\n150,50,50\n");
    assert_eq!(
        sql_at(h, PAST, "SELECT SUM(n) AS s FROM d.logs"),
        format!("s\n{}\n", 5050 + 1275)
    );
    let after = files(&table);
    assert_eq!(after.len(), 8, "{after:?}");
    let out = ok(cuve(h).env("CUVE_NOW", NOW).args(["table", "maintain"]));
    assert_eq!(out, "nothing to do\n");

    // The bytes: no expired value in any file, staged ones included; the live day's are there.
    for gone in [
        "IPSECRET-2026-11-15",
        "RAWSECRET-2026-11-15",
        "SECRET-2026-10-20",
    ] {
        assert_eq!(holds(&table, gone), Vec::<String>::new(), "{gone}");
    }
    assert!(!holds(&table, "IPSECRET-2026-11-28").is_empty());
    let staged: Vec<_> = walk(&table)
        .into_iter()
        .filter(|p| p.contains(".cuve-tmp-"))
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
}

#[test]
fn lifecycle_properties_are_checked_and_maintain_needs_rights() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args([
        "sql",
        "-e",
        "CREATE DATABASE d; CREATE TABLE d.t (a STRING) PARTITIONED BY (dt STRING) STORED AS PARQUET",
    ]));
    for (props, message) in [
        (
            "'retention.days'='-1'",
            "'retention.days' = '-1' is not a number of days",
        ),
        (
            "'sensitive.retention.days'='7'",
            "'sensitive.retention.days' needs sensitive columns",
        ),
        (
            "'compact.target.bytes'='1GB'",
            "'compact.target.bytes' = '1GB' is not a file size in bytes",
        ),
    ] {
        let o = cuve(h)
            .args([
                "sql",
                "-e",
                &format!("ALTER TABLE d.t SET TBLPROPERTIES ({props})"),
            ])
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert!(stderr(&o).contains(message), "{}", stderr(&o));
    }
    ok(cuve(h).args(["user", "add", "kim", "--role", "analyst"]));
    let (_, secret) = secret_of(&ok(cuve(h).args([
        "ticket",
        "create",
        "--user",
        "kim",
        "--grant",
        "SELECT:d.*",
        "--json",
    ])));
    let o = cuve(h)
        .args(["--ticket", &secret, "table", "maintain"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("needs an admin ticket"),
        "{}",
        stderr(&o)
    );
    let o = cuve(h)
        .args(["--ticket", &secret, "table", "maintain", "--table", "d.t"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("ALTER on d.*"), "{}", stderr(&o));
    let o = cuve(h)
        .args(["table", "maintain", "--table", "d.nope"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("table 'd.nope' does not exist"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn delete_of_one_user_over_a_month_rewrites_only_that_bucket() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut script = vec![
        "CREATE DATABASE d".to_string(),
        "CREATE TABLE d.t (user_id STRING, n BIGINT) PARTITIONED BY (dt STRING) CLUSTERED BY (user_id) INTO 8 BUCKETS STORED AS PARQUET".to_string(),
    ];
    for day in 1..=30 {
        script.push(format!(
            "INSERT INTO d.t SELECT 'u' || CAST(v % 100 AS VARCHAR), v, '2026-11-{day:02}' FROM generate_series(0, 99) AS s(v)"
        ));
    }
    ok(cuve(h).args(["sql", "-e", &script.join(";\n")]));
    let table = h.join("warehouse/d/t");
    let before = files(&table);
    assert_eq!(before.len(), 240);
    let count = || {
        ok(cuve(h).args([
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT COUNT(*) AS n, SUM(CASE WHEN user_id = 'u7' THEN 1 ELSE 0 END) AS u7 FROM d.t",
        ]))
    };
    assert_eq!(count(), "n,u7\n3000,30\n");
    let delete = "DELETE FROM d.t WHERE user_id = 'u7'";

    // Without DELETE (or ALTER) on the table: denied, nothing changes.
    ok(cuve(h).args(["user", "add", "kim", "--role", "analyst"]));
    let (_, reader) = secret_of(&ok(cuve(h).args([
        "ticket",
        "create",
        "--user",
        "kim",
        "--grant",
        "SELECT:d.*",
        "--json",
    ])));
    let o = cuve(h)
        .args(["--ticket", &reader, "sql", "-e", delete])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("access denied") && stderr(&o).contains("DELETE"),
        "{}",
        stderr(&o)
    );
    let (_, deleter) = secret_of(&ok(cuve(h).args([
        "ticket",
        "create",
        "--user",
        "kim",
        "--grant",
        "SELECT:d.*",
        "--grant",
        "DELETE:d.t",
        "--json",
    ])));
    let run = |crash: Option<&str>| {
        let mut c = cuve(h);
        c.args(["--ticket", &deleter, "sql", "--format", "csv", "-e", delete]);
        if let Some(p) = crash {
            c.env("CUVE_CRASH_AT", p);
        }
        c.output().unwrap()
    };
    // Killed before its commit: no row is gone.
    let o = run(Some("delete-before-commit"));
    assert!(!o.status.success());
    assert_eq!(count(), "n,u7\n3000,30\n");
    assert_eq!(files(&table), before);

    // Killed right after its commit: the DELETE happened, once; the next reader finishes it.
    let o = run(Some("after-commit"));
    assert!(!o.status.success());
    assert_eq!(count(), "n,u7\n2970,0\n");
    let o = run(None);
    assert_eq!(stdout(&o), "count\n0\n");
    let after = files(&table);
    let removed: Vec<&String> = before.keys().filter(|p| !after.contains_key(*p)).collect();
    let added: Vec<&String> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert_eq!(removed.len(), 30, "one file per day: {removed:?}");
    assert_eq!(added.len(), 30, "{added:?}");
    // All of one bucket (u7's), one per day; the other 210 files untouched.
    let bucket = |p: &str| Path::new(p).file_name().unwrap().to_str().unwrap()[..6].to_string();
    let b = bucket(removed[0]);
    assert!(removed.iter().chain(&added).all(|p| bucket(p) == b));
    assert_eq!(
        before
            .iter()
            .filter(|(p, _)| after.get(*p) == before.get(*p))
            .count(),
        210
    );
    // Again: nothing matches, nothing is rewritten.
    let o = run(None);
    assert_eq!(stdout(&o), "count\n0\n");
    assert_eq!(files(&table), after);
    // The DELETE process deletes the files it replaced itself (no query reads them).
    let o = cuve(h)
        .args([
            "--ticket",
            &deleter,
            "sql",
            "--format",
            "csv",
            "-e",
            "DELETE FROM d.t WHERE user_id = 'u8'",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "count\n30\n");
    assert_eq!(files(&table).len(), 240);
    // The audit log names the statement and the rows deleted.
    let audit = ok(cuve(h).args(["audit"]));
    assert!(
        audit.contains("DELETE FROM d.t WHERE user_id = Utf8(\"u7\")")
            || audit.contains("DELETE FROM d.t WHERE"),
        "{audit}"
    );
}

/// `d.c` (user_id, n, partitioned by dt, `buckets` buckets) with `batches` INSERTs of `rows`
/// rows (n = 1, 2, ...) into day 2026-11-01, each its own small files.
fn small_batches(h: &Path, buckets: u32, batches: u64, rows: u64) {
    let mut script = vec![
        "CREATE DATABASE d".to_string(),
        format!(
            "CREATE TABLE d.c (user_id STRING, n BIGINT) PARTITIONED BY (dt STRING) CLUSTERED BY (user_id) INTO {buckets} BUCKETS STORED AS PARQUET"
        ),
    ];
    for i in 0..batches {
        script.push(format!(
            "INSERT INTO d.c SELECT 'u' || CAST(v AS VARCHAR), v, '2026-11-01' FROM generate_series({}, {}) AS s(v)",
            i * rows + 1,
            i * rows + rows
        ));
    }
    ok(cuve(h).args(["sql", "-e", &script.join(";\n")]));
}

#[test]
fn compaction_while_queries_and_inserts_run_keeps_every_row_once() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // 100 small batches into one day: hundreds of small files.
    small_batches(h, 4, 100, 10);
    let table = h.join("warehouse/d/c");
    // (A batch of 10 rows may leave a bucket empty.)
    let small = files(&table).len();
    assert!(small > 300, "{small}");
    let stats = sql_at(h, NOW, "SHOW TABLE STATS d.c");
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with(&format!("(total),,{small},1000,"))
                && l.contains(&format!(",cuve,{small},"))),
        "{stats}"
    );
    let q = "SELECT COUNT(*) AS n, SUM(n) AS s FROM d.c";
    let inserts = 5;
    std::thread::scope(|s| {
        let compact = s.spawn(|| {
            ok(cuve(h).args(["sql", "--format", "csv", "-e", "ALTER TABLE d.c COMPACT"]))
        });
        let writer = s.spawn(|| {
            for _ in 0..inserts {
                ok(cuve(h).args([
                    "sql",
                    "-e",
                    "INSERT INTO d.c SELECT 'w' || CAST(v AS VARCHAR), 0, '2026-11-01' FROM generate_series(1, 10) AS s(v)",
                ]));
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // Readers see every row once: the old files or the merged ones, never both or neither.
        let started = Instant::now();
        let mut reads = 0;
        while reads < 200
            && started.elapsed() < Duration::from_secs(120)
            && !(compact.is_finished() && writer.is_finished() && reads >= 3)
        {
            let out = ok(cuve(h).args(["sql", "--format", "csv", "-e", q]));
            let line = out.lines().nth(1).unwrap().to_string();
            let (n, sum) = line.split_once(',').unwrap();
            let n: u64 = n.parse().unwrap();
            assert!(
                (1000..=1000 + 10 * inserts).contains(&n) && n.is_multiple_of(10),
                "{line}"
            );
            assert_eq!(sum, "500500", "{line}");
            reads += 1;
        }
        let merged = compact.join().unwrap();
        assert_eq!(
            merged
                .lines()
                .filter(|l| l.starts_with("compact d.c"))
                .count(),
            4,
            "one merge per bucket: {merged}"
        );
        writer.join().unwrap();
    });
    assert_eq!(sql_at(h, NOW, q), "n,s\n1050,500500\n");
    // The merged files plus what the inserts added meanwhile; a second COMPACT merges those.
    assert!(files(&table).len() <= 4 + 4 * inserts as usize);
    ok(cuve(h).args(["sql", "-e", "ALTER TABLE d.c COMPACT"]));
    assert_eq!(files(&table).len(), 4);
    assert_eq!(sql_at(h, NOW, q), "n,s\n1050,500500\n");
    let scans = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT n FROM d.c WHERE user_id = 'u7'",
    ]));
    assert_eq!(scans, "n\n7\n");
    // Nothing staged is left behind.
    assert!(
        walk(&table).iter().all(|p| !p.contains(".cuve-tmp-")),
        "{:?}",
        walk(&table)
    );
}

#[test]
fn cuve_serve_maintains_tables_in_the_background() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let script = [
        "CREATE DATABASE d".to_string(),
        "CREATE TABLE d.logs (user_id STRING, ip STRING, raw STRING, n BIGINT) PARTITIONED BY (dt STRING) \
         CLUSTERED BY (user_id) INTO 4 BUCKETS STORED AS PARQUET TBLPROPERTIES ('retention.days'='30')"
            .to_string(),
        insert_day("2026-10-20", 1, 50),
        insert_day("2026-11-28", 1, 50),
    ];
    ok(cuve(h).args(["sql", "-e", &script.join(";\n")]));
    let old = h.join("warehouse/d/logs/dt=2026-10-20");
    assert!(old.exists());
    let mut child = cuve(h)
        .env("CUVE_NOW", NOW)
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--maintain-interval",
            "200ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while old.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(!old.exists(), "cuve serve dropped the expired partition");
    assert_eq!(
        sql_at(h, PAST, "SELECT COUNT(*) AS n FROM d.logs"),
        "n\n50\n"
    );
}

#[test]
fn files_a_running_query_reads_stay_until_it_ends_then_go() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    small_batches(h, 2, 10, 100);
    let table = h.join("warehouse/d/c");
    let before = files(&table);
    assert_eq!(before.len(), 20);
    // A query in another process, held after planning, when it opens its first file.
    let reader = cuve(h)
        .env("CUVE_PAUSE_AT", "scan-open:4000")
        .args([
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT COUNT(*) AS n, SUM(n) AS s FROM d.c",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let leases = h.join("leases");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&leases).map_or(0, |d| d.count()) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let merged = ok(cuve(h).args(["sql", "--format", "csv", "-e", "ALTER TABLE d.c COMPACT"]));
    assert_eq!(merged.lines().count(), 3, "{merged}");
    assert_eq!(
        files(&table).len(),
        22,
        "the old files stay for the running query"
    );
    let out = reader.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "n,s\n1000,500500\n");
    // Once it ended they go (the next process deletes them if it could not).
    ok(cuve(h).args(["sql", "-e", "SELECT 1"]));
    let after = files(&table);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.keys().all(|p| !before.contains_key(p)));
}

#[test]
fn compaction_while_cuve_ingest_writes_the_same_days_loses_and_duplicates_nothing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let gen_raw = |dir: &Path, seed: u64| {
        let cfg = cuve_testdata::GenConfig {
            days: 2,
            rows_per_day: 3000,
            users: 300,
            queries: 100,
            senders: 2,
            seed,
            ..Default::default()
        };
        cuve_testdata::write_raw_logs(&cfg, dir).unwrap().lines
    };
    let (raw_a, raw_b) = (h.join("raw_a"), h.join("raw_b"));
    gen_raw(&raw_a, 1);
    gen_raw(&raw_b, 2);
    // Other sources (files) for the same senders and days.
    for sender in std::fs::read_dir(&raw_b).unwrap().flatten() {
        for f in std::fs::read_dir(sender.path()).unwrap().flatten() {
            let p = f.path();
            let name = p
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .replace(".jsonl", "-b.jsonl");
            std::fs::rename(&p, p.with_file_name(name)).unwrap();
        }
    }
    let setup = |home: &Path| {
        ok(cuve(home).args(["sql", "-e", "CREATE DATABASE korea_naver_log"]));
        ok(cuve(home).args(["sql", "-e", cuve_testdata::STREAM_LOG_DDL]));
    };
    let ingest = |home: &Path, raw: &Path| {
        ok(cuve(home)
            .args([
                "ingest",
                "--table",
                "korea_naver_log.stream_log",
                "--batch-lines",
                "300",
            ])
            .arg(raw))
    };
    let counts = |home: &Path| {
        ok(cuve(home).args([
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT COUNT(*) AS n, COUNT(DISTINCT log_key) AS k FROM korea_naver_log.stream_log",
        ]))
    };
    // The truth: both sets ingested one after the other, nothing else running.
    let reference = tempfile::tempdir().unwrap();
    setup(reference.path());
    ingest(reference.path(), &raw_a);
    let after_a = counts(reference.path());
    ingest(reference.path(), &raw_b);
    let expected = counts(reference.path());
    assert_ne!(after_a, expected, "the second set adds rows");

    setup(h);
    ingest(h, &raw_a);
    assert_eq!(counts(h), after_a);
    let table = h.join("warehouse/korea_naver_log/stream_log");
    let small = files(&table).len();
    std::thread::scope(|s| {
        let compact = s.spawn(|| {
            ok(cuve(h).args([
                "sql",
                "-e",
                "ALTER TABLE korea_naver_log.stream_log COMPACT",
            ]))
        });
        let writer = s.spawn(|| ingest(h, &raw_b));
        let started = Instant::now();
        let mut reads = 0;
        while reads < 100
            && started.elapsed() < Duration::from_secs(120)
            && !(compact.is_finished() && writer.is_finished() && reads >= 3)
        {
            let c = counts(h);
            let v: Vec<&str> = c.lines().nth(1).unwrap().split(',').collect();
            assert_eq!(v[0], v[1], "a duplicate row during compaction: {c}");
            reads += 1;
        }
        compact.join().unwrap();
        writer.join().unwrap();
    });
    assert_eq!(counts(h), expected);
    // The ledger is unaffected: ingesting both again adds nothing.
    ingest(h, &raw_a);
    ingest(h, &raw_b);
    assert_eq!(counts(h), expected);
    ok(cuve(h).args([
        "sql",
        "-e",
        "ALTER TABLE korea_naver_log.stream_log COMPACT",
    ]));
    assert!(files(&table).len() < small, "{small} files before");
    assert_eq!(counts(h), expected);
}
