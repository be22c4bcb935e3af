//! `cuve serve --http`: log lines over HTTP, acknowledged once durable, stored exactly once.
//! The NDJSON endpoint with a plain HTTP client, `kill -9` of the server while clients send,
//! the Elasticsearch bulk API with the Python `elasticsearch` client, and Debian's rsyslog
//! (omelasticsearch) shipping a file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{cuve, ok};

const TABLE: &str = "korea_naver_log.stream_log";

/// A response: status, headers (lower-case names), body.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a new connection.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    // A server that answers before reading the whole body (413) may close early.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no response head: {text:?}")))?;
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub struct Server {
    child: Child,
    pub http: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cuve serve --http` on `http` (`127.0.0.1:0` for a free port).
pub fn serve(home: &Path, http: &str, extra: &[&str]) -> Server {
    let mut child = cuve(home)
        .args(["serve", "--addr", "127.0.0.1:0", "--http", http])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut addr = None;
    for _ in 0..4 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(a) = line
            .trim()
            .strip_prefix("cuve HTTP intake listening on http://")
        {
            addr = Some(a.to_string());
            break;
        }
    }
    // Keep reading stdout so the server never blocks on it.
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = out.read_to_string(&mut sink);
    });
    Server {
        child,
        http: addr.expect("cuve serve prints its HTTP address"),
    }
}

fn setup(home: &Path) -> (String, String, String) {
    ok(cuve(home).args(["sql", "-e", "CREATE DATABASE korea_naver_log"]));
    ok(cuve(home).args(["sql", "-e", cuve_testdata::STREAM_LOG_DDL]));
    ok(cuve(home).args(["user", "add", "kim", "--role", "analyst"]));
    ok(cuve(home).args(["user", "add", "lee", "--role", "analyst"]));
    let secret = |user: &str, grants: &[&str]| {
        let mut c = cuve(home);
        c.args(["ticket", "create", "--user", user, "--json"]);
        for g in grants {
            c.args(["--grant", g]);
        }
        let v: serde_json::Value = serde_json::from_str(ok(&mut c).trim()).unwrap();
        v["secret"].as_str().unwrap().to_string()
    };
    let writer = secret(
        "kim",
        &[
            "WRITE:korea_naver_log.stream_log",
            "SELECT:korea_naver_log.stream_log",
        ],
    );
    let reader = secret("lee", &[]);
    let writer2 = secret("lee", &["WRITE:korea_naver_log.stream_log"]);
    (writer, reader, writer2)
}

fn raw_logs(dir: &Path, days: u32, rows: u64, senders: u32) -> Vec<PathBuf> {
    let cfg = cuve_testdata::GenConfig {
        days,
        rows_per_day: rows,
        users: 300,
        queries: 100,
        senders,
        ..Default::default()
    };
    cuve_testdata::write_raw_logs(&cfg, dir).unwrap().files
}

fn count(home: &Path) -> (u64, u64) {
    let out = ok(cuve(home).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT COUNT(*) AS n, COUNT(DISTINCT log_key) AS k FROM korea_naver_log.stream_log",
    ]));
    let row = out.lines().nth(1).unwrap().to_string();
    let (n, k) = row.split_once(',').unwrap();
    (n.parse().unwrap(), k.parse().unwrap())
}

/// Waits (bounded) until the table holds `n` rows.
fn wait_rows(home: &Path, n: u64) -> (u64, u64) {
    let started = Instant::now();
    loop {
        let c = count(home);
        if c.0 >= n || started.elapsed() > Duration::from_secs(30) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn send(
    addr: &str,
    secret: &str,
    sender: &str,
    source: &str,
    first: u64,
    lines: &[String],
) -> std::io::Result<Resp> {
    let mut body = lines.join("\n");
    body.push('\n');
    let first = first.to_string();
    let auth = format!("Bearer {secret}");
    http(
        addr,
        "POST",
        &format!("/v1/logs/{TABLE}"),
        &[
            ("Authorization", &auth),
            ("X-Cuve-Sender", sender),
            ("X-Cuve-Source", source),
            ("X-Cuve-First-Line", &first),
            ("Content-Type", "application/x-ndjson"),
        ],
        body.as_bytes(),
    )
}

fn sender_and_source(p: &Path) -> (String, String) {
    (
        p.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string(),
        p.file_name().unwrap().to_string_lossy().to_string(),
    )
}

#[test]
fn ndjson_endpoint_stores_each_line_once() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (writer, reader, _) = setup(h);
    let raw = tempfile::tempdir().unwrap();
    let files = raw_logs(raw.path(), 1, 600, 2);
    let server = serve(
        h,
        "127.0.0.1:0",
        &["--flush-interval", "200ms", "--max-body", "256KiB"],
    );
    let a = &server.http;
    let (sender, source) = sender_and_source(&files[0]);
    let lines = lines_of(&files[0]);
    let n = lines.len() as u64;
    assert!(n > 200, "{n}");

    // Out of order: the second half first, then the first.
    let r = send(a, &writer, &sender, &source, 101, &lines[100..200]).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], 100);
    assert_eq!(v["duplicates"], 0);
    assert_eq!(v["committed_through_line"], 0, "lines 1-100 are missing");
    let r = send(a, &writer, &sender, &source, 1, &lines[..100]).unwrap();
    assert_eq!(r.json()["committed_through_line"], 200, "{}", r.body);
    // Resent: nothing new.
    let r = send(a, &writer, &sender, &source, 1, &lines[..200]).unwrap();
    let v = r.json();
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(200)),
        "{}",
        r.body
    );
    // Overlapping: only the new part.
    let r = send(a, &writer, &sender, &source, 151, &lines[150..250]).unwrap();
    let v = r.json();
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(50), Some(50))
    );
    assert_eq!(v["committed_through_line"], 250);
    // A malformed line is rejected, listed and dead-lettered; the others are stored.
    let mut bad = lines[250..260].to_vec();
    bad[3] = "{\"log_time\": \"not a time\"".to_string();
    let r = send(a, &writer, &sender, &source, 251, &bad).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (v["accepted"].as_u64(), v["rejected"].as_u64()),
        (Some(9), Some(1))
    );
    assert_eq!(v["errors"][0]["line"], 254, "{}", r.body);
    assert_eq!(v["committed_through_line"], 260);
    let dl = std::fs::read_dir(h.join("deadletter").join(TABLE))
        .unwrap()
        .count();
    assert_eq!(dl, 1);

    // Refusals.
    let r = send(a, "cuve_nope.secret", &sender, &source, 1, &lines[..1]).unwrap();
    assert_eq!(r.status, 401, "{}", r.body);
    let r = send(a, &reader, &sender, &source, 261, &lines[260..261]).unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("WRITE"), "{}", r.body);
    let r = send(a, &writer, "not-an-ip", &source, 1, &lines[..1]).unwrap();
    assert_eq!(r.status, 400);
    assert!(r.body.contains("X-Cuve-Sender"), "{}", r.body);
    let r = send(a, &writer, &sender, &source, 0, &lines[..1]).unwrap();
    assert_eq!(r.status, 400);
    let big: Vec<String> = (0..2000).map(|_| lines[0].clone()).collect();
    let r = send(a, &writer, &sender, &source, 1, &big).unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
    let garbage: Vec<String> = vec!["hello".into(), "world".into()];
    let r = send(a, &writer, &sender, "other.log", 1, &garbage).unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not NDJSON"), "{}", r.body);
    let r = http(a, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(r.status, 200);

    // Queryable within the flush interval: 259 rows (260 lines, one rejected).
    assert_eq!(wait_rows(h, 259), (259, 259));
    // `cuve ingest` of the same files stores only what HTTP did not: the rest of file 0 and
    // all of file 1; then HTTP resending file 0 whole adds nothing.
    let out = ok(cuve(h)
        .args(["ingest", "--table", TABLE, "--json"])
        .arg(raw.path()));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let total: u64 = files.iter().map(|f| lines_of(f).len() as u64).sum();
    assert_eq!(v["written"].as_u64().unwrap(), total - 260, "{out}");
    let r = send(a, &writer, &sender, &source, 1, &lines).unwrap();
    let v = r.json();
    assert_eq!(v["accepted"], 0, "{}", r.body);
    assert_eq!(v["committed_through_line"], n);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(count(h), (total - 1, total - 1));
    // Audited: allowed and denied requests.
    let audit = ok(cuve(h).args(["audit", "--json"]));
    assert!(
        audit.contains("HTTP POST /v1/logs/korea_naver_log.stream_log"),
        "{audit}"
    );
    assert!(audit.contains("\"deny\""), "{audit}");
}

#[test]
fn kill_9_while_clients_send_loses_and_duplicates_nothing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (writer, _, _) = setup(h);
    let raw = tempfile::tempdir().unwrap();
    let files = raw_logs(raw.path(), 1, 6000, 3);
    let total: u64 = files.iter().map(|f| lines_of(f).len() as u64).sum();
    let server = Arc::new(Mutex::new(Some(serve(
        h,
        "127.0.0.1:0",
        &["--flush-interval", "100ms"],
    ))));
    let addr = Arc::new(Mutex::new(
        server.lock().unwrap().as_ref().unwrap().http.clone(),
    ));
    let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let clients: Vec<_> = files
        .iter()
        .map(|f| {
            let (sender, source) = sender_and_source(f);
            let lines = lines_of(f);
            let addr = addr.clone();
            let writer = writer.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut at = 0usize;
                let mut attempts = 0;
                while at < lines.len() {
                    assert!(
                        started.elapsed() < Duration::from_secs(120),
                        "clients timed out"
                    );
                    attempts += 1;
                    assert!(attempts < 5000);
                    let end = (at + 150).min(lines.len());
                    let a = addr.lock().unwrap().clone();
                    match send(
                        &a,
                        &writer,
                        &sender,
                        &source,
                        at as u64 + 1,
                        &lines[at..end],
                    ) {
                        Ok(r) if r.status == 200 => {
                            // The server acknowledges what it holds: go on from there.
                            let through = r.json()["committed_through_line"].as_u64().unwrap();
                            assert!(through >= end as u64, "{}", r.body);
                            acked.fetch_add((end - at) as u64, std::sync::atomic::Ordering::SeqCst);
                            at = end;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Ok(r) if r.status == 429 || r.status == 503 => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        Ok(r) => panic!("{}: {}", r.status, r.body),
                        // Killed: resend the batch (to the new server).
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
        })
        .collect();
    // Kill -9 twice while they send (at a quarter and at 60% of the lines), restarting each time.
    for share in [0.25, 0.6] {
        let started = Instant::now();
        while (acked.load(std::sync::atomic::Ordering::SeqCst) as f64) < share * total as f64 {
            assert!(started.elapsed() < Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(5));
        }
        let at_kill = acked.load(std::sync::atomic::Ordering::SeqCst);
        assert!(at_kill < total, "the clients finished before the kill");
        let mut s = server.lock().unwrap();
        if let Some(mut old) = s.take() {
            let _ = old.child.kill();
            let _ = old.child.wait();
        }
        let new = serve(h, "127.0.0.1:0", &["--flush-interval", "100ms"]);
        *addr.lock().unwrap() = new.http.clone();
        *s = Some(new);
    }
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(wait_rows(h, total), (total, total));
    drop(server);
}

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CUVE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    venv.exists().then_some(venv)
}

#[test]
fn elasticsearch_bulk_api_with_the_python_client() {
    let Some(py) = python() else {
        assert!(std::env::var("CI").is_err(), "CI must provide .venv");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (writer, reader, _) = setup(h);
    let raw = tempfile::tempdir().unwrap();
    let files = raw_logs(raw.path(), 1, 500, 1);
    let server = serve(h, "127.0.0.1:0", &["--flush-interval", "200ms"]);
    let a = &server.http;
    // Shippers' checks.
    let r = http(a, "GET", "/", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.json()["version"]["number"]
            .as_str()
            .unwrap()
            .starts_with("8.")
    );
    assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
    assert_eq!(
        http(a, "GET", "/_cat/health", &[], b"").unwrap().status,
        200
    );
    assert_eq!(
        http(a, "GET", "/_cluster/health", &[], b"").unwrap().json()["status"],
        "green"
    );
    assert_eq!(
        http(a, "GET", "/_license", &[], b"").unwrap().json()["license"]["status"],
        "active"
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python/test_es_bulk.py");
    let o = Command::new(&py)
        .arg(&script)
        .env("CUVE_ES_URL", format!("http://{a}"))
        .env("CUVE_USER", "kim")
        .env("CUVE_SECRET", &writer)
        .env("CUVE_READER_SECRET", &reader)
        .env("CUVE_FILE", &files[0])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let n = lines_of(&files[0]).len() as u64;
    assert_eq!(wait_rows(h, n), (n, n));
    // The stored rows are the file's lines: same log times, users and queries.
    let sums = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT COUNT(*) FROM (SELECT DISTINCT CAST(log_time AS BIGINT), user_id, query FROM korea_naver_log.stream_log)",
    ]));
    assert_eq!(sums.lines().nth(1).unwrap(), n.to_string());
}

/// rsyslog with omelasticsearch tails a file and ships it, and goes on after Cuve is killed
/// and restarted mid-way: the table ends with exactly the file's lines.
#[test]
fn rsyslog_ships_a_file_across_a_restart() {
    let rsyslogd = Path::new("/usr/sbin/rsyslogd");
    let module = Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so");
    if !rsyslogd.exists() || !module.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install rsyslog and rsyslog-elasticsearch (.ci/run)"
        );
        eprintln!("skipping: rsyslog-elasticsearch is not installed");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (writer, _, _) = setup(h);
    let raw = tempfile::tempdir().unwrap();
    let files = raw_logs(raw.path(), 1, 4000, 1);
    let lines = lines_of(&files[0]);
    let n = lines.len() as u64;
    // A fixed port, so rsyslog finds the restarted server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Some(serve(h, &addr, &["--flush-interval", "200ms"]));
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("app.jsonl");
    // The file grows while rsyslog tails it.
    std::fs::write(&log, format!("{}\n", lines[..1000].join("\n"))).unwrap();
    let conf = work.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile" PollingInterval="1")
module(load="omelasticsearch")
template(name="doc" type="list") {{ property(name="$!msg") }}
template(name="docid" type="list") {{ property(name="$!metadata!filename") constant(value=":") property(name="$!metadata!fileoffset") }}
input(type="imfile" File="{log}" Tag="app" addMetadata="on" ruleset="ship")
ruleset(name="ship") {{
  set $!msg = $msg;
  action(type="omelasticsearch" server="127.0.0.1" serverport="{port}" searchIndex="{TABLE}"
         template="doc" bulkmode="on" dynbulkid="on" bulkid="docid" esVersion.major="8"
         uid="kim" pwd="{writer}" usehttps="off"
         queue.type="LinkedList" queue.filename="shipq" queue.saveOnShutdown="on"
         queue.size="100000" queue.dequeueBatchSize="200"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}}
"#,
            work = work.path().display(),
            log = log.display(),
        ),
    )
    .unwrap();
    let pid = work.path().join("rsyslog.pid");
    let mut rs = Command::new(rsyslogd)
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(&pid)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Some rows arrive, then Cuve is killed while the file grows, then restarted.
    let _ = wait_rows(h, 500);
    if let Some(mut s) = server.take() {
        let _ = s.child.kill();
        let _ = s.child.wait();
    }
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for chunk in lines[1000..].chunks(500) {
        writeln!(f, "{}", chunk.join("\n")).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    server = Some(serve(h, &addr, &["--flush-interval", "200ms"]));
    let got = wait_rows(h, n);
    let _ = rs.kill();
    let stderr = {
        let mut s = String::new();
        let _ = rs.stderr.take().map(|mut e| e.read_to_string(&mut s));
        s
    };
    let _ = rs.wait();
    assert_eq!(got, (n, n), "rsyslog: {stderr}");
    drop(server);
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_flooding_ticket_gets_429_while_another_is_served() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (writer, _, other) = setup(h);
    let id = writer.split('.').next().unwrap().to_string();
    ok(cuve(h).args([
        "ticket",
        "set-quota",
        &id,
        "--max-write-rows-per-second",
        "400",
        "--max-concurrent-writes",
        "2",
    ]));
    let raw = tempfile::tempdir().unwrap();
    let files = raw_logs(raw.path(), 1, 3000, 2);
    let server = serve(h, "127.0.0.1:0", &["--flush-interval", "200ms"]);
    let a = server.http.clone();
    let pid = server.child.id();
    let flood_lines = lines_of(&files[0]);
    let (fs, fsrc) = sender_and_source(&files[0]);
    // Four flooding threads, bounded in requests and time.
    let flooders: Vec<_> = (0..4)
        .map(|t| {
            let (a, writer, lines, fs, fsrc) = (
                a.clone(),
                writer.clone(),
                flood_lines.clone(),
                fs.clone(),
                fsrc.clone(),
            );
            std::thread::spawn(move || {
                let (mut ok, mut refused, mut retry_after) = (0, 0, true);
                let started = Instant::now();
                for k in 0..40 {
                    if started.elapsed() > Duration::from_secs(30) {
                        break;
                    }
                    let at = ((t * 40 + k) * 100) % (lines.len() - 100);
                    let r =
                        send(&a, &writer, &fs, &fsrc, at as u64 + 1, &lines[at..at + 100]).unwrap();
                    match r.status {
                        200 => ok += 1,
                        429 => {
                            refused += 1;
                            retry_after &= r
                                .header("retry-after")
                                .is_some_and(|v| v.parse::<u64>().is_ok());
                        }
                        s => panic!("{s}: {}", r.body),
                    }
                }
                (ok, refused, retry_after)
            })
        })
        .collect();
    // Meanwhile another ticket sends its file: every request is taken.
    let lines = lines_of(&files[1]);
    let (s2, src2) = sender_and_source(&files[1]);
    for (k, chunk) in lines.chunks(100).enumerate() {
        let r = send(&a, &other, &s2, &src2, (k * 100) as u64 + 1, chunk).unwrap();
        assert_eq!(r.status, 200, "the other ticket was held up: {}", r.body);
    }
    let mut refused = 0;
    for f in flooders {
        let (_, r, retry_after) = f.join().unwrap();
        refused += r;
        assert!(retry_after, "a 429 without Retry-After seconds");
    }
    assert!(refused > 0, "the flood above 400 rows/s was never refused");
    let rss = rss_kib(pid);
    assert!(rss > 0 && rss < 1_000_000, "server RSS {rss} KiB");
    // What was acknowledged is stored once.
    let n = lines.len() as u64;
    let (rows, keys) = wait_rows(h, n);
    assert_eq!(rows, keys);
    assert!(rows >= n, "{rows}");
}
