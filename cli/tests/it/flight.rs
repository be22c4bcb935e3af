//! `cuve serve` end to end: the real binary on a free loopback port, queried with the real
//! Python ADBC Flight SQL driver (tests/python/test_adbc.py).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{cuve, ok};

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CUVE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    venv.exists().then_some(venv)
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A warehouse with the demo data, an analyst ticket and `cuve serve` on a free port.
struct Fixture {
    home: tempfile::TempDir,
    py: PathBuf,
    secret: String,
    admin: String,
    addr: String,
    server: Server,
}

fn ticket(h: &std::path::Path, user: &str) -> (String, String) {
    let out = ok(cuve(h).args([
        "ticket",
        "create",
        "--user",
        user,
        "--grant",
        "SELECT:korea_naver_log.stream_log",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    (
        v["id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

fn fixture() -> Option<Fixture> {
    let Some(py) = python() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide the ADBC venv (.ci/run creates .venv)"
        );
        eprintln!(
            "skipping: no .venv with adbc-driver-flightsql (run .ci/run once, or set CUVE_PYTHON)"
        );
        return None;
    };
    let check = Command::new(&py)
        .args(["-c", "import adbc_driver_flightsql, pyarrow"])
        .status()
        .unwrap();
    assert!(
        check.success(),
        "{} lacks adbc-driver-flightsql / pyarrow",
        py.display()
    );
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args(["demo", "--days", "2", "--rows-per-day", "1500"]));
    ok(cuve(h).args(["user", "add", "kim", "--role", "analyst"]));
    let (_, secret) = ticket(h, "kim");
    let creds = std::fs::read_to_string(h.join("credentials")).unwrap();
    let admin = creds
        .lines()
        .find_map(|l| l.strip_prefix("ticket="))
        .unwrap()
        .to_string();
    let mut child = cuve(h)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    let addr = line
        .split("grpc://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("listening line")
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{line}");
    Some(Fixture {
        home,
        py,
        secret,
        admin,
        addr,
        server,
    })
}

#[test]
fn adbc_driver_against_cuve_serve() {
    let Some(f) = fixture() else { return };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python/test_adbc.py");
    let o = Command::new(&f.py)
        .arg(&script)
        .env("CUVE_URI", format!("grpc://{}", f.addr))
        .env("CUVE_SECRET", &f.secret)
        .env("CUVE_USER", "kim")
        .env("CUVE_ADMIN_SECRET", &f.admin)
        .env("CUVE_EXPECTED_ROWS", "3000")
        .env("CUVE_EXPECTED_DAY_ROWS", "1500")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "ADBC tests failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("12 passed, 0 failed"), "{stdout}");
    // Every call was audited against the analyst's ticket.
    drop(f.server);
    let audit = ok(cuve(f.home.path()).args(["audit", "--json", "--limit", "1000"]));
    assert!(audit.contains("\"client\":\"flight 127.0.0.1:"), "{audit}");
}

/// Eight clients at once, one sending hostile input, one dropping its connection mid-result,
/// a ticket revoked under load (tests/python/load_adbc.py); bounded in count and time.
#[test]
fn cuve_serve_under_mixed_load_with_bad_clients() {
    let Some(f) = fixture() else { return };
    let h = f.home.path();
    let (revoked_id, revoked) = ticket(h, "kim");
    let revoke = format!(
        "{} --home {} ticket revoke {revoked_id}",
        env!("CARGO_BIN_EXE_cuve"),
        h.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python/load_adbc.py");
    let o = Command::new(&f.py)
        .arg(&script)
        .env("CUVE_URI", format!("grpc://{}", f.addr))
        .env("CUVE_SECRET", &f.secret)
        .env("CUVE_REVOKED_SECRET", &revoked)
        .env("CUVE_REVOKE_CMD", &revoke)
        .env("CUVE_SERVER_PID", f.server.0.id().to_string())
        .env("CUVE_ROUNDS", "20")
        .env("CUVE_LOAD_SECONDS", "150")
        .env_remove("CUVE_HOME")
        .env_remove("CUVE_TICKET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("{stdout}");
    assert!(o.status.success(), "load test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("load ok"), "{stdout}");
}

/// Another process holding the catalog's write lock (an ingest or a DDL in a long transaction)
/// does not stall queries: reads go to their own connections and the audit record waits off
/// the query's path. Each query must answer within 10 s while the lock is held.
#[test]
fn a_held_catalog_write_lock_does_not_stall_queries() {
    let Some(f) = fixture() else { return };
    let script = r#"
import os, sqlite3, sys, time
import adbc_driver_flightsql.dbapi as flight_sql
lock = sqlite3.connect(os.path.join(os.environ["CUVE_HOME_DIR"], "catalog.db"), isolation_level=None, timeout=5)
lock.execute("BEGIN IMMEDIATE")
conn = flight_sql.connect(os.environ["CUVE_URI"], db_kwargs={"adbc.flight.sql.authorization_header": "Bearer " + os.environ["CUVE_SECRET"]})
for sql in ["SELECT 1 AS x", "SELECT COUNT(*) AS n FROM korea_naver_log.stream_log", "SELECT max(dt) AS m FROM korea_naver_log.stream_log"]:
    t = time.monotonic()
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetch_arrow_table().to_pylist()
    took = time.monotonic() - t
    print(f"{sql}: {rows} in {took:.2f}s", flush=True)
    if took > 10:
        sys.exit(f"{sql} took {took:.1f}s while the catalog write lock was held")
conn.close()
lock.execute("COMMIT")
print("stall ok")
"#;
    let o = Command::new(&f.py)
        .args(["-c", script])
        .env("CUVE_URI", format!("grpc://{}", f.addr))
        .env("CUVE_SECRET", &f.secret)
        .env("CUVE_HOME_DIR", f.home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("'n': 3000"), "{stdout}");
    assert!(stdout.contains("stall ok"), "{stdout}");
    // The audit records waited for the lock, and are written once it is free.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let audit = ok(cuve(f.home.path()).args(["audit", "--json", "--limit", "100"]));
        if audit.contains("SELECT max(dt) AS m FROM korea_naver_log.stream_log") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "audit records lost: {audit}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
