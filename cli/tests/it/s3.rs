//! Warehouses and external tables on S3, against a real S3-compatible server: moto's, started
//! by each test on a free loopback port (`.ci/run` installs it into `.venv`). Objects are
//! checked with boto3 and written by pyarrow (`s3_helper.py`), not by Cuve.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

use super::{cuve, ok, stderr, stdout};

fn venv_bin(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../.venv/bin")
        .join(name)
}

fn helper() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/s3_helper.py")
}

/// A moto S3 server on a free loopback port; killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto (with `auth`, only keys made through its IAM are accepted). `None` (the test
    /// is skipped) when moto is not installed outside CI.
    fn start(auth: bool) -> Option<Moto> {
        let bin = venv_bin("moto_server");
        if !bin.exists() {
            assert!(
                std::env::var("CI").is_err(),
                "CI must provide moto in .venv (.ci/run installs it)"
            );
            eprintln!("skipping: no .venv/bin/moto_server (run .ci/run once)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = Command::new(bin);
        c.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if auth {
            // The helper's IAM calls (user, key, policy) run before authentication starts.
            c.env("INITIAL_NO_AUTH_ACTION_COUNT", "3");
        }
        let child = c.spawn().expect("moto_server starts");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    fn helper(&self, args: &[&str]) -> String {
        let o = Command::new(venv_bin("python"))
            .arg(helper())
            .arg(args[0])
            .arg(&self.endpoint)
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(o.status.success(), "s3_helper {args:?}: {}", stderr(&o));
        stdout(&o)
    }

    fn bucket(&self, name: &str) {
        self.helper(&["mkbucket", name]);
    }

    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.helper(&["keys", bucket, prefix])
            .lines()
            .map(String::from)
            .collect()
    }

    /// `cuve --home H` with this server's endpoint and test keys (and `--warehouse` if given).
    fn cuve(&self, home: &Path, warehouse: Option<&str>) -> Command {
        let mut c = cuve(home);
        c.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
        if let Some(w) = warehouse {
            c.args(["--warehouse", w]);
        }
        c
    }
}

fn csv(out: &str) -> Vec<String> {
    out.lines().skip(1).map(String::from).collect()
}

#[test]
fn demo_on_s3_gives_the_results_of_local_disk() {
    let Some(moto) = Moto::start(false) else {
        return;
    };
    moto.bucket("logs");
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    let args = ["demo", "--days", "2", "--rows-per-day", "1500"];
    let a = ok(cuve(local.path()).args(args));
    let b = ok(moto.cuve(remote.path(), Some("s3://logs/cuve")).args(args));
    // The analyses (everything after the ingest lines) are identical.
    let tail = |s: &str, home: &Path| -> String {
        s.lines()
            .skip_while(|l| !l.starts_with("1."))
            .collect::<Vec<_>>()
            .join("\n")
            .replace(&home.display().to_string(), "HOME")
    };
    assert!(a.contains("1."), "{a}");
    assert_eq!(tail(&a, local.path()), tail(&b, remote.path()));
    // The data went to the bucket, not to the home.
    let keys = moto.keys("logs", "cuve/korea_naver_log/stream_log/dt=");
    assert!(keys.len() >= 16, "{keys:?}");
    assert!(keys.iter().all(|k| k.ends_with(".parquet")), "{keys:?}");
    assert!(
        !remote.path().join("warehouse/korea_naver_log").exists(),
        "table files were written locally"
    );
    // The home remembers its warehouse: later commands need no --warehouse; running the demo
    // again ingests nothing twice.
    let again = ok(moto.cuve(remote.path(), None).args(args));
    assert!(again.contains("0 written"), "{again}");
    let n = ok(moto.cuve(remote.path(), None).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT COUNT(*), COUNT(DISTINCT log_key) FROM korea_naver_log.stream_log",
    ]));
    assert_eq!(csv(&n), vec!["3000,3000"]);
    let d = ok(moto.cuve(remote.path(), None).args([
        "sql",
        "-e",
        "DESCRIBE FORMATTED korea_naver_log.stream_log",
    ]));
    assert!(
        d.contains("s3://logs/cuve/korea_naver_log/stream_log"),
        "{d}"
    );
    assert!(d.contains("written by Cuve"), "{d}");
    // A query of a managed table takes its files from the catalog: GETs, never a LIST.
    let traced = moto
        .cuve(remote.path(), None)
        .env("CUVE_LOG", "debug")
        .args([
            "sql",
            "-e",
            "SELECT COUNT(*) FROM korea_naver_log.stream_log WHERE dt = '2019-10-02'",
        ])
        .output()
        .unwrap();
    assert!(traced.status.success(), "{}", stderr(&traced));
    let trace = stderr(&traced);
    assert!(
        trace.contains("s3 request: GET")
            && trace.contains(" s3://logs/cuve/korea_naver_log/stream_log/dt=2019-10-02/"),
        "{trace}"
    );
    assert!(!trace.contains("s3 request: LIST"), "{trace}");
    assert!(!d.contains("test"), "a secret was shown: {d}");
    // `cuve serve` on the S3 warehouse, queried by the ADBC Flight SQL driver.
    let mut server = moto
        .cuve(remote.path(), None)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let uri = line
        .split_whitespace()
        .find(|w| w.starts_with("grpc://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let creds = std::fs::read_to_string(remote.path().join("credentials")).unwrap();
    let secret = creds
        .lines()
        .find_map(|l| l.strip_prefix("ticket="))
        .unwrap()
        .to_string();
    let script = "import sys, adbc_driver_flightsql.dbapi as f\n\
        c = f.connect(sys.argv[1], db_kwargs={'adbc.flight.sql.authorization_header': 'Bearer ' + sys.argv[2]})\n\
        cur = c.cursor()\n\
        cur.execute(\"SELECT dt, COUNT(*) FROM korea_naver_log.stream_log WHERE user_id <> $1 GROUP BY dt ORDER BY dt\", parameters=('x',))\n\
        print(cur.fetchall())\n";
    let o = Command::new(venv_bin("python"))
        .args(["-c", script, &uri, &secret])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        "[('2019-10-01', 1500), ('2019-10-02', 1500)]"
    );
}

#[test]
fn insert_overwrite_ctas_and_drop_on_s3() {
    let Some(moto) = Moto::start(false) else {
        return;
    };
    moto.bucket("whs");
    let home = tempfile::tempdir().unwrap();
    let sql = |s: &str| {
        ok(moto
            .cuve(home.path(), Some("s3://whs/w"))
            .args(["sql", "--format", "csv", "-e", s]))
    };
    sql("CREATE DATABASE d; \
         CREATE TABLE d.t (k STRING, v BIGINT) PARTITIONED BY (dt STRING) \
         CLUSTERED BY (k) SORTED BY (k) INTO 4 BUCKETS STORED AS PARQUET");
    sql(concat!(
        "INSERT INTO d.t VALUES ('서울', 1, '2024-01-01'), ('it''s', 2, '2024-01-01'), ",
        r"('back\slash', 3, '2024-01-02'), ('u4', 4, '2024-01-02')"
    ));
    sql("INSERT INTO d.t VALUES ('u5', 5, '2024-01-02')");
    assert_eq!(
        csv(&sql(
            "SELECT dt, COUNT(*), SUM(v) FROM d.t GROUP BY dt ORDER BY dt"
        )),
        vec!["2024-01-01,2,3", "2024-01-02,3,12"]
    );
    assert_eq!(csv(&sql("SELECT v FROM d.t WHERE k = '서울'")), vec!["1"]);
    // OVERWRITE replaces one partition and keeps the other.
    sql("INSERT OVERWRITE TABLE d.t PARTITION (dt = '2024-01-02') SELECT 'z', 100");
    assert_eq!(
        csv(&sql(
            "SELECT dt, COUNT(*), SUM(v) FROM d.t GROUP BY dt ORDER BY dt"
        )),
        vec!["2024-01-01,2,3", "2024-01-02,1,100"]
    );
    // DROP PARTITION deletes its objects; the same partition written again reads whole.
    sql("ALTER TABLE d.t DROP PARTITION (dt = '2024-01-02')");
    assert!(moto.keys("whs", "w/d/t/dt=2024-01-02/").is_empty());
    sql("INSERT INTO d.t VALUES ('again', 7, '2024-01-02')");
    assert_eq!(
        csv(&sql(
            "SELECT dt, COUNT(*), SUM(v) FROM d.t GROUP BY dt ORDER BY dt"
        )),
        vec!["2024-01-01,2,3", "2024-01-02,1,7"]
    );
    sql("INSERT OVERWRITE TABLE d.t PARTITION (dt = '2024-01-02') SELECT 'z', 100");
    // Korean names and a partition value with a quote, '%', '/' and '=' become keys that read
    // back as written.
    sql("CREATE TABLE d.`지역` (`사용자` STRING, n BIGINT) PARTITIONED BY (`도시` STRING)");
    sql(r"INSERT INTO d.`지역` VALUES ('김', 1, '서울'), ('o''neil', 2, 'it''s 50%/a=b\c')");
    assert_eq!(
        csv(&sql("SELECT `도시`, `사용자`, n FROM d.`지역` ORDER BY n")),
        vec!["서울,김,1", r"it's 50%/a=b\c,o'neil,2"]
    );
    assert_eq!(
        csv(&sql(
            "SELECT n FROM d.`지역` WHERE `도시` = 'it''s 50%/a=b\\c'"
        )),
        vec!["2"]
    );
    assert!(
        moto.keys("whs", "w/d/지역/도시=서울/")
            .iter()
            .any(|k| k.ends_with(".parquet")),
        "{:?}",
        moto.keys("whs", "w/d/")
    );
    // CTAS: the table and its rows in one commit.
    sql("CREATE TABLE d.c AS SELECT k, v FROM d.t WHERE v < 100");
    assert_eq!(csv(&sql("SELECT COUNT(*) FROM d.c")), vec!["2"]);
    assert!(!moto.keys("whs", "w/d/c/").is_empty());
    // An external table over another prefix of the bucket.
    moto.helper(&["write-external", "whs", "ext/events"]);
    sql(
        "CREATE EXTERNAL TABLE d.e (user_id STRING, n BIGINT) PARTITIONED BY (dt STRING) \
         STORED AS PARQUET LOCATION 's3://whs/ext/events'",
    );
    assert_eq!(csv(&sql("SELECT COUNT(*), SUM(n) FROM d.e")), vec!["5,36"]);
    // Columns inferred from the first Parquet object; statistics read from the footers.
    sql(
        "CREATE EXTERNAL TABLE d.e2 PARTITIONED BY (dt STRING) STORED AS PARQUET \
         LOCATION 's3://whs/ext/events'",
    );
    let cols = sql("DESCRIBE d.e2");
    assert!(
        cols.contains("user_id") && cols.contains("BIGINT"),
        "{cols}"
    );
    let stats = sql("SHOW TABLE STATS d.e2");
    assert!(
        stats.lines().any(|l| l.starts_with("(total),,2,5,")),
        "{stats}"
    );
    let stats = sql("SHOW TABLE STATS d.t");
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("(total),,") && l.contains(",3,")),
        "{stats}"
    );
    sql("DROP TABLE d.e2");
    // DROP deletes a managed table's objects and keeps an external table's.
    sql("DROP TABLE d.c; DROP TABLE d.e");
    assert!(moto.keys("whs", "w/d/c/").is_empty(), "managed data kept");
    assert_eq!(
        moto.keys("whs", "ext/events/")
            .iter()
            .filter(|k| k.ends_with(".parquet"))
            .count(),
        2,
        "external data deleted"
    );
    // DELETE reads footers and row groups by ranged GETs and rewrites only the file holding
    // the row; COMPACT merges a bucket's small objects. Rows read back as before.
    sql("INSERT INTO d.t VALUES ('서울', 10, '2024-01-01')");
    let objects = |dt: &str| {
        moto.keys("whs", &format!("w/d/t/dt={dt}/"))
            .into_iter()
            .filter(|k| k.ends_with(".parquet"))
            .collect::<Vec<_>>()
    };
    let before = objects("2024-01-01");
    assert_eq!(csv(&sql("DELETE FROM d.t WHERE k = 'it''s'")), vec!["1"]);
    assert_eq!(csv(&sql("DELETE FROM d.t WHERE k = 'nobody'")), vec!["0"]);
    let after = objects("2024-01-01");
    assert_eq!(after.len(), before.len(), "{before:?} -> {after:?}");
    assert_eq!(
        before.iter().filter(|k| !after.contains(k)).count(),
        1,
        "one object rewritten: {before:?} -> {after:?}"
    );
    sql("ALTER TABLE d.t COMPACT");
    assert!(
        objects("2024-01-01").len() < after.len(),
        "{:?}",
        objects("2024-01-01")
    );
    assert_eq!(
        csv(&sql("SELECT k, v FROM d.t ORDER BY v")),
        vec!["서울,1", "서울,10", "z,100"]
    );
    sql("DROP TABLE d.t");
    assert!(moto.keys("whs", "w/d/t/").is_empty());
}

#[test]
fn external_tables_written_by_pyarrow_next_to_local_tables() {
    let Some(moto) = Moto::start(false) else {
        return;
    };
    moto.bucket("ext");
    moto.helper(&["write-external", "ext", "events"]);
    let home = tempfile::tempdir().unwrap();
    // Local warehouse (the default); one table in the bucket.
    let sql = |s: &str| {
        ok(moto
            .cuve(home.path(), None)
            .args(["sql", "--format", "csv", "-e", s]))
    };
    sql("CREATE TABLE default.users (user_id STRING, name STRING); \
         INSERT INTO default.users VALUES ('u1', 'one'), ('사용자', 'two')");
    sql(
        "CREATE EXTERNAL TABLE default.ev (user_id STRING, n BIGINT) \
         PARTITIONED BY (dt STRING) STORED AS PARQUET LOCATION 's3://ext/events'",
    );
    // Directory markers and _SUCCESS are neither partitions nor files.
    assert_eq!(
        csv(&sql("SHOW PARTITIONS default.ev")),
        vec!["dt=2024-01-01", "dt=2024-01-02"]
    );
    assert_eq!(
        csv(&sql("SELECT dt, user_id, n FROM default.ev ORDER BY dt, n")),
        vec![
            "2024-01-01,u1,1",
            "2024-01-01,사용자,2",
            "2024-01-01,it's,3",
            "2024-01-02,u1,10",
            r"2024-01-02,back\slash,20",
        ]
    );
    // One query over the bucket and local disk.
    assert_eq!(
        csv(&sql(
            "SELECT u.name, SUM(e.n) FROM default.ev e JOIN default.users u \
             ON e.user_id = u.user_id GROUP BY u.name ORDER BY u.name"
        )),
        vec!["one,11", "two,2"]
    );
    // Partition pruning: only one partition is read.
    let plan = sql("EXPLAIN ANALYZE SELECT COUNT(*) FROM default.ev WHERE dt = '2024-01-02'");
    assert!(plan.contains("partitions read 1/2"), "{plan}");
    // A partition another writer added later: MSCK REPAIR TABLE registers it.
    moto.helper(&["write-partition", "ext", "events", "2024-01-03"]);
    let repaired = sql("MSCK REPAIR TABLE default.ev");
    assert!(
        repaired.contains("partitions added: 1, found: 3"),
        "{repaired}"
    );
    assert_eq!(
        csv(&sql(
            "SELECT user_id, n FROM default.ev WHERE dt = '2024-01-03'"
        )),
        vec!["late,100"]
    );
    // A partition added by another writer elsewhere, then ADD PARTITION with an s3 LOCATION.
    moto.helper(&["write-external", "ext", "more"]);
    sql("ALTER TABLE default.ev ADD PARTITION (dt = '2024-02-01') \
         LOCATION 's3://ext/more/dt=2024-01-01'");
    assert_eq!(
        csv(&sql(
            "SELECT COUNT(*) FROM default.ev WHERE dt = '2024-02-01'"
        )),
        vec!["3"]
    );
    // SET LOCATION from the bucket to local disk and back.
    let local = home.path().join("copy");
    std::fs::create_dir_all(local.join("dt=2024-01-01")).unwrap();
    ok(moto.cuve(home.path(), None).args([
        "sql",
        "-e",
        &format!(
            "CREATE TABLE default.tmp (user_id STRING, n BIGINT) LOCATION '{}/dt=2024-01-01'; \
             INSERT INTO default.tmp SELECT user_id, n FROM default.ev WHERE dt = '2024-01-01'",
            local.display()
        ),
    ]));
    sql(&format!(
        "ALTER TABLE default.ev SET LOCATION '{}'",
        local.display()
    ));
    assert_eq!(
        csv(&sql("SELECT COUNT(*), SUM(n) FROM default.ev")),
        vec!["3,6"]
    );
    sql("ALTER TABLE default.ev SET LOCATION 's3://ext/events'");
    assert_eq!(
        csv(&sql("SELECT COUNT(*), SUM(n) FROM default.ev")),
        vec!["6,136"]
    );
    // A managed table moved to the bucket: the files found there become its files.
    moto.helper(&[
        "upload",
        &local.join("dt=2024-01-01").display().to_string(),
        "ext",
        "moved",
    ]);
    sql("ALTER TABLE default.tmp SET LOCATION 's3://ext/moved'");
    sql("INSERT INTO default.tmp VALUES ('new', 1000)");
    assert_eq!(
        csv(&sql("SELECT COUNT(*), SUM(n) FROM default.tmp")),
        vec!["4,1006"]
    );
    let stats = sql("SHOW TABLE STATS default.tmp");
    assert!(
        stats.lines().any(|l| l.starts_with("(total),,2,4,")),
        "{stats}"
    );
}

#[test]
fn kill_9_during_ingest_on_s3_then_rerun_gives_exactly_the_input() {
    let Some(moto) = Moto::start(false) else {
        return;
    };
    moto.bucket("logs");
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let raw = h.join("raw");
    let cfg = cuve_testdata::GenConfig {
        days: 2,
        rows_per_day: 3000,
        users: 300,
        queries: 100,
        senders: 4,
        ..Default::default()
    };
    let total = cuve_testdata::write_raw_logs(&cfg, &raw).unwrap().lines;
    let w = Some("s3://logs/w");
    ok(moto
        .cuve(h, w)
        .args(["sql", "-e", "CREATE DATABASE korea_naver_log"]));
    ok(moto
        .cuve(h, w)
        .args(["sql", "-e", cuve_testdata::STREAM_LOG_DDL]));
    let ingest = || {
        let mut c = moto.cuve(h, None);
        c.args([
            "ingest",
            "--table",
            "korea_naver_log.stream_log",
            "--batch-lines",
            "500",
        ])
        .arg(&raw)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    };
    let counts = || {
        let out = ok(moto.cuve(h, None).args([
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT COUNT(*), COUNT(DISTINCT log_key) FROM korea_naver_log.stream_log",
        ]));
        let v: Vec<u64> = csv(&out)[0]
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        (v[0], v[1])
    };
    // A writer that dies between its put and its commit leaves an object no query reads.
    let o = ingest()
        .env("CUVE_CRASH_AT", "after-object-put")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let orphans = moto.keys("logs", "w/korea_naver_log/stream_log/");
    assert!(!orphans.is_empty());
    assert_eq!(counts(), (0, 0));
    let mut rng = rand::rng();
    for _ in 0..5 {
        let mut child = ingest().spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(100..1500)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let (n, k) = counts();
        assert_eq!(n, k, "duplicate rows after a kill");
    }
    let o = ingest().output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(), (total, total));
    // Vacuum: uncommitted objects younger than --older-than are kept; then deleted; every file
    // a commit recorded stays.
    let vac = |age: &str| {
        ok(moto
            .cuve(h, None)
            .args(["warehouse", "vacuum", "--older-than", age]))
    };
    // `cuve serve` vacuums periodically (here every second, for objects older than 0 s).
    // A writer that dies after its put: INSERT of rows already there (it commits nothing).
    let crash_insert = || {
        let o = moto
            .cuve(h, None)
            .args([
                "sql",
                "-e",
                "INSERT INTO korea_naver_log.stream_log \
                 SELECT * FROM korea_naver_log.stream_log LIMIT 10",
            ])
            .env("CUVE_CRASH_AT", "after-object-put")
            .output()
            .unwrap();
        assert!(!o.status.success());
    };
    let crashed = moto.keys("logs", "w/");
    crash_insert();
    let orphan: Vec<String> = moto
        .keys("logs", "w/")
        .into_iter()
        .filter(|k| !crashed.contains(k))
        .collect();
    assert!(!orphan.is_empty());
    let mut server = moto
        .cuve(h, None)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("CUVE_VACUUM_INTERVAL_SECS", "1")
        .env("CUVE_VACUUM_OLDER_THAN", "0s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while moto.keys("logs", "w/").contains(&orphan[0]) {
        assert!(
            Instant::now() < deadline,
            "cuve serve did not vacuum in 30 s"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(counts(), (total, total));
    // A write held between its put and its commit for 4 s: a vacuum of everything older than
    // 0 s keeps its object (the writer announced it and still runs), and the write commits.
    let mut slow = moto
        .cuve(h, None)
        .args([
            "sql",
            "-e",
            "INSERT INTO korea_naver_log.stream_log SELECT * FROM korea_naver_log.stream_log \
             WHERE dt = '2019-10-01' LIMIT 5",
        ])
        .env("CUVE_PAUSE_AT", "after-object-put:4000")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut held = String::new();
    while Instant::now() < deadline && slow.try_wait().unwrap().is_none() {
        held = vac("0s");
        if !held.contains("(kept 0 ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !held.contains("(kept 0 "),
        "the vacuum never saw the held write: {held}"
    );
    assert!(slow.wait().unwrap().success(), "the held write failed");
    assert_eq!(counts(), (total + 5, total));
    // One more orphan for the command's own vacuum.
    let crashed = moto.keys("logs", "w/");
    crash_insert();
    let orphans: Vec<String> = moto
        .keys("logs", "w/")
        .into_iter()
        .filter(|k| !crashed.contains(k))
        .collect();
    assert!(!orphans.is_empty());
    let kept = vac("1h");
    assert!(kept.contains("deleted 0 uncommitted"), "{kept}");
    assert!(!kept.contains("(kept 0 "), "{kept}");
    let before = moto.keys("logs", "w/").len();
    let gone = vac("0s");
    assert!(!gone.contains("deleted 0 uncommitted"), "{gone}");
    assert!(!moto.keys("logs", "w/").contains(&orphans[0]));
    assert!(moto.keys("logs", "w/").len() < before);
    assert_eq!(counts(), (total + 5, total));
    let again = vac("0s");
    assert!(again.contains("deleted 0 uncommitted"), "{again}");
    // INSERT: a writer that dies mid-write commits nothing; a kill at any moment commits the
    // statement whole or not at all; a rerun adds exactly its rows.
    ok(moto.cuve(h, None).args([
        "sql",
        "-e",
        "CREATE TABLE default.ins (k STRING, v BIGINT) CLUSTERED BY (k) INTO 4 BUCKETS",
    ]));
    let insert = || {
        let mut c = moto.cuve(h, None);
        c.args([
            "sql",
            "-e",
            "INSERT INTO default.ins SELECT CAST(value AS VARCHAR) AS k, value AS v \
             FROM generate_series(1, 20000)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    };
    let inserted = || {
        let out = ok(moto.cuve(h, None).args([
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT COUNT(*) FROM default.ins",
        ]));
        csv(&out)[0].parse::<u64>().unwrap()
    };
    let o = insert()
        .env("CUVE_CRASH_AT", "after-object-put")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(inserted(), 0);
    for _ in 0..3 {
        let mut child = insert().spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(50..1200)));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(inserted() % 20000, 0, "a partial INSERT is visible");
    }
    let before = inserted();
    let o = insert().stderr(Stdio::piped()).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(inserted(), before + 20000);
    let bad = moto
        .cuve(h, None)
        .args(["warehouse", "vacuum", "--older-than", "soon"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--older-than"), "{}", stderr(&bad));
}

#[test]
fn concurrent_writers_to_one_s3_table() {
    let Some(moto) = Moto::start(false) else {
        return;
    };
    moto.bucket("logs");
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(moto.cuve(h, Some("s3://logs/w")).args([
        "sql",
        "-e",
        "CREATE TABLE default.t (k STRING, v BIGINT) CLUSTERED BY (k) INTO 4 BUCKETS",
    ]));
    // Half of them upload in parts (as files from 64 MiB on are).
    let writers: Vec<Child> = (0..4)
        .map(|i| {
            let mut c = moto.cuve(h, None);
            if i % 2 == 1 {
                c.env("CUVE_S3_MULTIPART_BYTES", "1");
            }
            c.args([
                "sql",
                "-e",
                &format!(
                    "INSERT INTO default.t SELECT 'w{i}_' || CAST(value AS VARCHAR), value \
                         FROM generate_series(1, 500)"
                ),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut w in writers {
        assert!(w.wait().unwrap().success());
    }
    let out = ok(moto.cuve(h, None).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT COUNT(*), COUNT(DISTINCT k), SUM(v) FROM default.t",
    ]));
    assert_eq!(csv(&out), vec!["2000,2000,501000"]);
}

#[test]
fn storage_errors_name_the_bucket_and_what_to_check() {
    let Some(moto) = Moto::start(true) else {
        return;
    };
    let keys = moto.helper(&["auth-setup", "logs"]);
    let mut keys = keys.lines();
    let (id, secret) = (keys.next().unwrap(), keys.next().unwrap());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let with = |key: &str, secret: &str| {
        let mut c = moto.cuve(h, None);
        c.env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret);
        c
    };
    // The right keys work.
    ok(with(id, secret).args([
        "sql",
        "-e",
        "CREATE TABLE default.t (k STRING) LOCATION 's3://logs/t'; \
         INSERT INTO default.t VALUES ('a')",
    ]));
    // A wrong secret: refused, with the bucket and what to check; the secret is not printed.
    let o = with(id, "wrong-secret-value")
        .args(["sql", "-e", "SELECT * FROM default.t"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("s3://logs/t"), "{e}");
    assert!(e.contains("AWS_SECRET_ACCESS_KEY"), "{e}");
    assert!(!e.contains("wrong-secret-value"), "{e}");
    // A named profile in a credentials file, when the environment has no keys.
    let aws = h.join("aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!("[default]\naws_access_key_id = nobody\n\n[bench]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    let profile = |name: &str| {
        let mut c = moto.cuve(h, None);
        c.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials"))
            .env("AWS_PROFILE", name)
            .args(["sql", "--format", "csv", "-e", "SELECT * FROM default.t"]);
        c
    };
    assert_eq!(csv(&ok(&mut profile("bench"))), vec!["a"]);
    let o = profile("nobody").output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("AWS_PROFILE=nobody"), "{}", stderr(&o));
    // A bucket that does not exist.
    let o = with(id, secret)
        .args([
            "sql",
            "-e",
            "CREATE EXTERNAL TABLE default.x (k STRING) LOCATION 's3://no-such-bucket/x'",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("s3://no-such-bucket/x"), "{e}");
    assert!(e.contains("bucket does not exist"), "{e}");
    // An endpoint nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = with(id, secret)
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}"))
        .args(["sql", "-e", "SELECT * FROM default.t"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("AWS_ENDPOINT_URL"), "{e}");
    // Unsupported schemes are refused by name.
    let o = with(id, secret)
        .args([
            "sql",
            "-e",
            "CREATE EXTERNAL TABLE default.g (k STRING) LOCATION 'gs://b/x'",
        ])
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("gs:// is not supported"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn spark_bucketed_orc_on_s3_reads_as_on_local_disk() {
    let Some(moto) = Moto::start(false) else {
        return;
    };
    moto.bucket("spark");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/foreign/spark_orc8");
    // Exactly as Spark left it: hidden .crc files and _SUCCESS included.
    moto.helper(&["upload", &fixture.display().to_string(), "spark", "wh/o8"]);
    let home = tempfile::tempdir().unwrap();
    let ddl = |name: &str, location: &str| {
        format!(
            "CREATE EXTERNAL TABLE default.{name} (user_id STRING, n INT, query STRING) \
             PARTITIONED BY (dt STRING) CLUSTERED BY (user_id) SORTED BY (user_id) \
             INTO 8 BUCKETS STORED AS ORC LOCATION '{location}'"
        )
    };
    let sql = |s: &str| {
        ok(moto
            .cuve(home.path(), None)
            .args(["sql", "--format", "csv", "-e", s]))
    };
    sql(&ddl("remote", "s3://spark/wh/o8"));
    sql(&ddl("local", &fixture.display().to_string()));
    assert_eq!(
        csv(&sql("SELECT COUNT(*) FROM default.remote")),
        vec!["252"]
    );
    for q in [
        "SELECT COUNT(*), SUM(n) FROM default.{T} WHERE user_id = 'ucf28ed658abe'",
        "SELECT user_id, COUNT(*), SUM(n) FROM default.{T} GROUP BY user_id ORDER BY user_id",
        "SELECT dt, COUNT(DISTINCT user_id) FROM default.{T} GROUP BY dt",
        "SELECT a.user_id, COUNT(*) FROM default.{T} a JOIN default.local b \
         ON a.user_id = b.user_id GROUP BY a.user_id ORDER BY a.user_id",
    ] {
        let remote = csv(&sql(&q.replace("{T}", "remote")));
        assert!(!remote.is_empty(), "{q}");
        assert_eq!(remote, csv(&sql(&q.replace("{T}", "local"))), "{q}");
    }
}

#[test]
fn benchmark_queries_on_s3_equal_local_disk() {
    let Some(moto) = Moto::start(false) else {
        return;
    };
    moto.bucket("bench");
    let dir = tempfile::tempdir().unwrap();
    let cfg = cuve_testdata::GenConfig {
        days: 30,
        rows_per_day: 400,
        users: 300,
        queries: 100,
        senders: 2,
        ..Default::default()
    };
    let raw = dir.path().join("raw");
    cuve_testdata::write_raw_logs(&cfg, &raw).unwrap();
    let profiles = dir.path().join("profiles");
    cuve_testdata::write_profiles(&cfg, &profiles.join("127.0.0.1/user_profile.jsonl")).unwrap();
    let user = cuve_testdata::user_id(cfg.users / 100);
    let homes = [
        (dir.path().join("local"), None),
        (dir.path().join("remote"), Some("s3://bench/w")),
    ];
    for (home, warehouse) in &homes {
        std::fs::create_dir_all(home).unwrap();
        ok(moto.cuve(home, *warehouse).args([
            "sql",
            "-e",
            &format!(
                "CREATE DATABASE korea_naver_log; {}; {}",
                cuve_testdata::STREAM_LOG_DDL,
                cuve_testdata::USER_PROFILE_DDL
            ),
        ]));
        for (table, input) in [("stream_log", &raw), ("user_profile", &profiles)] {
            ok(moto
                .cuve(home, None)
                .args(["ingest", "--table", &format!("korea_naver_log.{table}")])
                .arg(input));
        }
    }
    assert!(
        moto.keys("bench", "w/korea_naver_log/stream_log/dt=2019-10-30/")
            .len()
            >= 8
    );
    // Files Cuve wrote to the bucket are trusted as bucketed: the co-located plan is chosen.
    let plan = ok(moto.cuve(&homes[1].0, None).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "EXPLAIN SELECT l.user_id, COUNT(*) FROM korea_naver_log.stream_log l \
         JOIN korea_naver_log.user_profile p ON l.user_id = p.user_id \
         WHERE l.dt = '2019-10-10' GROUP BY l.user_id",
    ]));
    assert!(plan.contains("used: co-located join"), "{plan}");
    let queries = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/queries");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&queries)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 20);
    for f in files {
        let sql = std::fs::read_to_string(&f)
            .unwrap()
            .replace("{user}", &user);
        let run = |home: &Path| {
            let out = ok(moto.cuve(home, None).args([
                "sql",
                "--format",
                "csv",
                "-e",
                &format!("USE korea_naver_log; {sql}"),
            ]));
            let mut rows = csv(&out);
            rows.sort();
            rows
        };
        let local = run(&homes[0].0);
        assert!(!local.is_empty(), "{}", f.display());
        assert_eq!(local, run(&homes[1].0), "{}", f.display());
    }
}

#[test]
fn two_homes_on_one_prefix_never_delete_each_others_files() {
    let Some(moto) = Moto::start(false) else {
        return;
    };
    moto.bucket("shared");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for (home, v) in [(a.path(), 1), (b.path(), 2)] {
        ok(moto.cuve(home, Some("s3://shared/w")).args([
            "sql",
            "-e",
            &format!(
                "CREATE TABLE default.t (k STRING, v BIGINT); INSERT INTO default.t VALUES ('x', {v})"
            ),
        ]));
    }
    // Each home reads its own commits; a vacuum of either keeps the other's objects.
    for home in [a.path(), b.path()] {
        let out = ok(moto
            .cuve(home, None)
            .args(["warehouse", "vacuum", "--older-than", "0s"]));
        assert!(out.contains("deleted 0 uncommitted"), "{out}");
    }
    assert_eq!(moto.keys("shared", "w/default/t/").len(), 2);
    for (home, v) in [(a.path(), "1"), (b.path(), "2")] {
        let out = ok(moto.cuve(home, None).args([
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT v FROM default.t",
        ]));
        assert_eq!(csv(&out), vec![v]);
    }
}

/// A cluster's executors read an S3 warehouse with the same `AWS_*` variables as any Cuve
/// process: the rows of single node, tasks on both executors, nothing written locally.
#[test]
fn a_cluster_reads_an_s3_warehouse_as_single_node() {
    use super::cluster::{Procs, QUERIES, cluster_env, status_with};
    let Some(moto) = Moto::start(false) else {
        return;
    };
    moto.bucket("logs");
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(moto.cuve(h, Some("s3://logs/cuve")).args([
        "demo",
        "--days",
        "2",
        "--rows-per-day",
        "1200",
    ]));
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
    ];
    let mut procs = Procs(vec![]);
    let (addr, _) = cluster_env(h, &mut procs, None, 1, &env);
    for sql in QUERIES {
        let args = ["sql", "--format", "csv", "-e", sql];
        let single = ok(moto.cuve(h, None).args(args));
        let cluster = ok(moto.cuve(h, None).args(["--cluster", &addr]).args(args));
        assert_eq!(single, cluster, "{sql}");
        assert!(csv(&single).len() > 1, "{sql}: {single}");
    }
    // The executors read the bucket (the plans ran there, both executors had tasks); the
    // gateway's home holds no table files.
    let status = status_with(&addr, None);
    let jobs = status["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), QUERIES.len(), "{status}");
    assert!(jobs.iter().all(|j| j["state"] == "Completed"), "{status}");
    let executors: std::collections::BTreeSet<&str> = jobs
        .iter()
        .flat_map(|j| j["tasks_per_executor"].as_object().unwrap().keys())
        .map(String::as_str)
        .collect();
    assert_eq!(executors.len(), 2, "{status}");
    assert!(!h.join("warehouse/korea_naver_log").exists());
}
