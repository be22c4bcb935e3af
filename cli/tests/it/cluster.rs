//! A Ballista cluster as processes: `cuve scheduler` and two `cuve executor` on loopback (free
//! ports), queried by `cuve --cluster ... sql|template`: the rows of single-node Cuve, tasks on
//! both executors, and tickets checked at the gateway before any job reaches the scheduler.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{cuve, ok, stderr};

pub(super) struct Procs(pub(super) Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a scheduler and two one-slot executors; returns the scheduler's address.
fn cluster(dir: &Path, procs: &mut Procs) -> String {
    cluster_with(dir, procs, None, 1).0
}

/// `cuve` with `CUVE_CLUSTER_SECRET` set to `secret`, or unset.
fn process(secret: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cuve"));
    match secret {
        Some(s) => c.env("CUVE_CLUSTER_SECRET", s),
        None => c.env_remove("CUVE_CLUSTER_SECRET"),
    };
    c
}

/// A scheduler and two executors of `cores` task slots holding `secret`; the scheduler's
/// address and the executors' (their Flight endpoints).
fn cluster_with(
    dir: &Path,
    procs: &mut Procs,
    secret: Option<&str>,
    cores: usize,
) -> (String, Vec<String>) {
    cluster_env(dir, procs, secret, cores, &[])
}

/// As [`cluster_with`], every process with the variables `env` too.
pub(super) fn cluster_env(
    dir: &Path,
    procs: &mut Procs,
    secret: Option<&str>,
    cores: usize,
    env: &[(&str, &str)],
) -> (String, Vec<String>) {
    let with_env = |secret: Option<&str>| {
        let mut c = process(secret);
        c.envs(env.iter().copied());
        c
    };
    let mut sched = with_env(secret)
        .args(["scheduler", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sched.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    procs.0.push(sched);
    let addr = line
        .trim()
        .strip_prefix("cuve scheduler listening on ")
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let mut executors = vec![];
    for i in 0..2 {
        let own = format!("127.0.0.1:{}", free_port());
        let ex = with_env(secret)
            .args(["executor", "--scheduler", &addr, "--addr", &own])
            .args(["--cores", &cores.to_string()])
            .arg("--work-dir")
            .arg(dir.join(format!("ex{i}")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        procs.0.push(ex);
        executors.push(own);
    }
    // Both executors registered (a query before that would run on one): 60 s at most.
    let start = std::time::Instant::now();
    loop {
        let out = with_env(secret)
            .args(["cluster", "status", "--cluster", &addr, "--json"])
            .output()
            .unwrap();
        let up = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| {
                let e = v["executors"].as_array()?.clone();
                Some(e.iter().filter(|e| e["state"] == "up").count())
            })
            .unwrap_or(0);
        if up == 2 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "{up} of 2 executors up after 60 s: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    (addr, executors)
}

fn jobs(dir: &Path) -> Vec<usize> {
    (0..2)
        .map(|i| {
            std::fs::read_dir(dir.join(format!("ex{i}")))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .collect()
}

/// Files under `dir`, at any depth (an executor's shuffle output).
fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

/// Queries a cluster must answer as single node does (on `cuve demo`'s tables): a COUNT
/// DISTINCT per day, a co-located join, an approximate aggregate, LIKE on Korean text.
pub(super) const QUERIES: &[&str] = &[
    "SELECT dt, COUNT(*), COUNT(DISTINCT user_id) FROM korea_naver_log.stream_log \
     GROUP BY dt ORDER BY dt",
    "SELECT p.gender, COUNT(*) FROM korea_naver_log.stream_log l \
     JOIN korea_naver_log.user_profile p ON l.user_id = p.user_id \
     GROUP BY p.gender ORDER BY 1",
    "SELECT section, approx_distinct(user_id) > 0, COUNT(*) FROM korea_naver_log.stream_log \
     WHERE dt = '2019-10-01' GROUP BY section ORDER BY section",
    "SELECT query, COUNT(*) FROM korea_naver_log.stream_log WHERE query LIKE '%날씨%' \
     GROUP BY query ORDER BY 2 DESC, 1 LIMIT 5",
];

/// `cuve cluster status --json` of the scheduler at `addr`.
fn status(addr: &str) -> serde_json::Value {
    status_with(addr, None)
}

pub(super) fn status_with(addr: &str, secret: Option<&str>) -> serde_json::Value {
    let out = ok(process(secret).args(["--cluster", addr, "cluster", "status", "--json"]));
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn queries_on_a_cluster_of_processes_equal_single_node() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args(["demo", "--days", "2", "--rows-per-day", "1500"]));
    let mut procs = Procs(vec![]);
    let addr = cluster(h, &mut procs);
    let on = |args: &[&str]| {
        let local = ok(cuve(h).args(args));
        let remote = ok(cuve(h).args(["--cluster", &addr]).args(args));
        assert_eq!(local, remote, "{args:?}");
        assert!(local.lines().count() > 1, "{args:?}: {local}");
    };
    for sql in QUERIES {
        on(&["sql", "--format", "csv", "-e", sql]);
    }
    for t in ["ctr", "qc-uqc", "inflow", "age-gender"] {
        on(&[
            "template",
            "run",
            t,
            "--from",
            "2019-10-01",
            "--to",
            "2019-10-02",
            "--format",
            "csv",
        ]);
    }
    // The work was spread over both executors.
    let ran = jobs(h);
    assert!(ran.iter().all(|&n| n > 0), "jobs per executor: {ran:?}");

    // A co-located join (both tables bucketed by user_id) runs bucket with bucket on the
    // cluster: one stage, nothing shuffled; the same join on another key shuffles both sides.
    // (No ORDER BY: a sort's merge would be a stage of its own; rows are compared sorted.)
    let colocated = "SELECT l.user_id, l.query, p.gender FROM korea_naver_log.stream_log l \
                     JOIN korea_naver_log.user_profile p ON l.user_id = p.user_id";
    let other_key = "SELECT COUNT(*) FROM korea_naver_log.stream_log l \
                     JOIN korea_naver_log.user_profile p ON l.section = p.gender";
    let newest = |sql: &str| {
        let sorted = |args: &mut Command| {
            let mut lines: Vec<String> = ok(args).lines().map(String::from).collect();
            lines.sort();
            lines
        };
        let local = sorted(cuve(h).args(["sql", "--format", "csv", "-e", sql]));
        let remote =
            sorted(cuve(h).args(["--cluster", &addr, "sql", "--format", "csv", "-e", sql]));
        assert_eq!(local, remote, "{sql}");
        assert!(local.len() > 1, "{sql}");
        status(&addr)["jobs"][0].clone()
    };
    let job = newest(colocated);
    assert_eq!(job["shuffle_bytes"], 0, "{job}");
    assert_eq!(job["stages"], 1, "{job}");
    let job = newest(other_key);
    assert!(job["shuffle_bytes"].as_u64().unwrap() > 0, "{job}");
    let explain = ok(cuve(h)
        .args(["--cluster", &addr, "sql", "--format", "csv", "-e"])
        .arg(format!("EXPLAIN {colocated}")));
    assert!(
        explain.contains("SlicedExec: co-located join of korea_naver_log.stream_log and korea_naver_log.user_profile on user_id, slices=16"),
        "{explain}"
    );

    // `cuve cluster status`: both executors up, the jobs above completed with all their tasks.
    let v = status(&addr);
    let executors = v["executors"].as_array().unwrap();
    assert_eq!(executors.len(), 2, "{v}");
    assert!(
        executors
            .iter()
            .all(|e| e["state"] == "up" && e["task_slots"] == 1),
        "{v}"
    );
    let listed = v["jobs"].as_array().unwrap();
    assert!(listed.len() >= 8, "{v}");
    let mut shuffled = 0;
    for j in listed {
        assert_eq!(j["state"], "Completed", "{j}");
        assert!(
            j["tasks"].as_u64().unwrap() > 0 && j["tasks"] == j["tasks_done"],
            "{j}"
        );
        assert!(
            j["stages"].as_u64().unwrap() > 0 && j["stages"] == j["stages_done"],
            "{j}"
        );
        // Which executor ran which tasks: every task, on the listed executors.
        let per: &serde_json::Map<_, _> = j["tasks_per_executor"].as_object().unwrap();
        let placed: u64 = per.values().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(placed, j["tasks_done"].as_u64().unwrap(), "{j}");
        assert!(
            per.keys()
                .all(|id| executors.iter().any(|e| e["id"] == id.as_str())),
            "{j}"
        );
        if j["stages"].as_u64().unwrap() > 1 {
            shuffled += 1;
            assert!(j["shuffle_bytes"].as_u64().unwrap() > 0, "{j}");
        }
    }
    assert!(shuffled > 0, "no job with a shuffle: {v}");
    // Both executors completed tasks.
    assert!(
        executors
            .iter()
            .all(|e| e["tasks_completed"].as_u64().unwrap() > 0),
        "{v}"
    );
    let text = ok(cuve(h).args(["--cluster", &addr, "cluster", "status"]));
    assert!(
        text.contains("| up ") && text.contains("Completed"),
        "{text}"
    );
    let o = cuve(h).args(["cluster", "status"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--cluster"), "{}", stderr(&o));

    // `cuve serve --cluster`: the Flight gateway's queries run on the cluster too.
    let py = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if py.exists() {
        let before = jobs(h);
        let mut server = cuve(h)
            .args(["--cluster", &addr, "serve", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        procs.0.push(server);
        let uri = line
            .split_whitespace()
            .find(|w| w.starts_with("grpc://"))
            .unwrap()
            .to_string();
        let creds = std::fs::read_to_string(h.join("credentials")).unwrap();
        let secret = creds
            .lines()
            .find_map(|l| l.strip_prefix("ticket="))
            .unwrap();
        let script = "import sys, adbc_driver_flightsql.dbapi as f\n\
            c = f.connect(sys.argv[1], db_kwargs={'adbc.flight.sql.authorization_header': 'Bearer ' + sys.argv[2]})\n\
            cur = c.cursor()\n\
            cur.execute('SELECT dt, COUNT(*) FROM korea_naver_log.stream_log GROUP BY dt ORDER BY dt')\n\
            print(cur.fetchall())\n";
        let o = Command::new(&py)
            .args(["-c", script, &uri, secret])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "[('2019-10-01', 1500), ('2019-10-02', 1500)]"
        );
        assert_ne!(
            jobs(h),
            before,
            "the Flight query did not run on the cluster"
        );
    }

    // A ticket without grants is refused at the gateway: no job reaches the cluster.
    ok(cuve(h).args(["user", "add", "nobody", "--role", "analyst"]));
    let out = ok(cuve(h).args(["ticket", "create", "--user", "nobody", "--json"]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let secret = v["secret"].as_str().unwrap();
    let before = jobs(h);
    let o = cuve(h)
        .args(["--cluster", &addr, "--ticket", secret, "sql", "-e"])
        .arg("SELECT COUNT(*) FROM korea_naver_log.stream_log")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("korea_naver_log"), "{}", stderr(&o));
    assert_eq!(jobs(h), before, "a job reached the cluster");

    // A ticket's memory limit applies on the executors (each query's tasks on an executor share
    // a pool of that size): over it, a quota error (exit 4) naming the limit, as in process.
    let (_, small) = super::tickets::analyst_ticket(
        h,
        "lee",
        &[
            "--grant",
            "SELECT:korea_naver_log.*",
            "--max-memory",
            "2KiB",
        ],
    );
    let agg = "SELECT length(string_agg(query, ',')) > 0 FROM korea_naver_log.stream_log";
    let before = jobs(h);
    let o = cuve(h)
        .args(["--cluster", &addr, "--ticket", &small, "sql", "-e", agg])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("max_memory"), "{}", stderr(&o));
    assert_ne!(jobs(h), before, "the query did not reach the cluster");
    let o = cuve(h)
        .args(["--ticket", &small, "sql", "-e", agg])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let fine = ok(cuve(h).args(["--cluster", &addr, "sql", "--format", "csv", "-e", agg]));
    assert!(fine.contains("true"), "{fine}");

    // Writes commit through the gateway's catalog, whatever reads them.
    ok(cuve(h).args([
        "--cluster",
        &addr,
        "sql",
        "-e",
        "CREATE TABLE default.c AS SELECT dt, COUNT(*) AS n FROM korea_naver_log.stream_log \
         GROUP BY dt",
    ]));
    let n = ok(cuve(h).args([
        "--cluster",
        &addr,
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT SUM(n) FROM default.c",
    ]));
    assert_eq!(n.lines().nth(1), Some("3000"));

    // An executor killed during a query, once it holds shuffle output of the query: a retried
    // success (the scheduler gives up on it after 15 s, rolls back the stages whose output it
    // held and runs them again on the other) or a clear error, never a wrong result or a hang.
    let sql = "SELECT a.section, COUNT(*), COUNT(DISTINCT b.user_id) \
               FROM korea_naver_log.stream_log a JOIN korea_naver_log.stream_log b ON a.dt = b.dt \
               GROUP BY 1 ORDER BY 1";
    let want = ok(cuve(h).args(["sql", "--format", "csv", "-e", sql]));
    let ex1 = h.join("ex1");
    let held = files(&ex1);
    let mut child = cuve(h)
        .args(["--cluster", &addr, "sql", "--format", "csv", "-e", sql])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while files(&ex1) <= held {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the query ended before executor 1 wrote shuffle output"
        );
        assert!(
            start.elapsed().as_secs() < 60,
            "executor 1 wrote no shuffle output"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the query ended before the kill"
    );
    let mut victim = procs.0.remove(2);
    let _ = victim.kill(); // SIGKILL
    let _ = victim.wait();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no answer 120 s after the kill"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let o = child.wait_with_output().unwrap();
    if o.status.success() {
        assert_eq!(String::from_utf8_lossy(&o.stdout), want);
    } else {
        assert!(!stderr(&o).trim().is_empty());
    }
    // The cluster goes on with the executor that is left; the status shows one executor up.
    let again = ok(cuve(h).args(["--cluster", &addr, "sql", "--format", "csv", "-e", sql]));
    assert_eq!(again, want);
    let v = status(&addr);
    let up = v["executors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] == "up");
    assert_eq!(up.count(), 1, "{v}");
    // The job the memory limit failed is listed with its error.
    let failed = v["jobs"].as_array().unwrap().iter().any(|j| {
        j["state"] == "Failed"
            && j["detail"]
                .as_str()
                .is_some_and(|d| d.contains("ResourcesExhausted"))
    });
    assert!(failed, "{v}");

    // A scheduler that is not there: a clear error naming it.
    let gone = format!("127.0.0.1:{}", free_port());
    let o = cuve(h)
        .args(["--cluster", &gone, "sql", "-e"])
        .arg("SELECT COUNT(*) FROM korea_naver_log.stream_log")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains(&gone) && e.contains("cuve scheduler"), "{e}");
}

/// `CUVE_LOG=info` on `cuve scheduler` prints Ballista's own messages, among them the
/// scheduling policy: pull-staged (see cluster/src/process.rs).
#[test]
fn scheduler_log_shows_ballista_and_pull_scheduling() {
    let mut sched = Command::new(env!("CARGO_BIN_EXE_cuve"))
        .args(["scheduler", "--addr", "127.0.0.1:0"])
        .env("CUVE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = sched.stderr.take().unwrap();
    let seen = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("task scheduling policy") {
                let _ = seen.0.send(line);
                return;
            }
        }
    });
    let line = seen.1.recv_timeout(std::time::Duration::from_secs(30));
    let _ = sched.kill();
    let _ = sched.wait();
    let line = line.expect("no scheduling-policy line from Ballista on stderr");
    assert!(line.contains("PullStaged"), "{line}");
}

/// With `CUVE_CLUSTER_SECRET`, the scheduler and the executors admit only the cluster's own
/// processes: a gateway, `cluster status` or an executor without the secret (or with another)
/// is refused with an error naming the variable, and no job runs; an executor's Flight
/// endpoint (shuffle and result data) refuses a client without it.
#[test]
fn cluster_secret_admits_only_the_clusters_processes() {
    const SECRET: &str = "cuve-test-secret-0123456789";
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args(["demo", "--days", "1", "--rows-per-day", "800"]));
    let mut procs = Procs(vec![]);
    let (addr, executors) = cluster_with(h, &mut procs, Some(SECRET), 3);
    let sql = "SELECT dt, COUNT(*), COUNT(DISTINCT user_id) FROM korea_naver_log.stream_log \
               GROUP BY dt ORDER BY dt";
    let gateway = |secret: Option<&str>| {
        let mut c = cuve(h);
        match secret {
            Some(s) => c.env("CUVE_CLUSTER_SECRET", s),
            None => c.env_remove("CUVE_CLUSTER_SECRET"),
        };
        c.args(["--cluster", &addr, "sql", "--format", "csv", "-e", sql]);
        c
    };
    let want = ok(cuve(h).args(["sql", "--format", "csv", "-e", sql]));
    assert_eq!(ok(&mut gateway(Some(SECRET))), want);
    // Plans are cut for the cluster's 6 task slots, not the gateway's cores (when it has fewer).
    let explain = ok(cuve(h)
        .env("CUVE_CLUSTER_SECRET", SECRET)
        .args(["--cluster", &addr, "sql", "--format", "csv", "-e"])
        .arg(format!("EXPLAIN {sql}")));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 6 {
        assert!(explain.contains("stage 1 (6 tasks"), "{explain}");
    }

    // In a terminal the summary after a result says what ran where.
    let mut repl = cuve(h);
    repl.env("TERM", "xterm")
        .env("CUVE_CLUSTER_SECRET", SECRET)
        .args(["--cluster", &addr]);
    let mut p = rexpect::session::spawn_command(repl, Some(60_000)).unwrap();
    p.exp_string("cuve:default>").unwrap();
    p.send_line(&format!("{sql};")).unwrap();
    p.exp_string("1 rows in").unwrap();
    p.exp_string("on the cluster: job").unwrap();
    // COUNT(DISTINCT) per day shuffles between its stages.
    let (_, line) = p
        .exp_regex(r"[0-9]+ stages, [0-9]+ tasks on [12] executors?, [0-9.]+ [KM]?i?B shuffled")
        .unwrap();
    assert!(!line.contains(", 0 B shuffled"), "{line}");
    p.exp_string("cuve:default>").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
    let ran = jobs(h);
    assert_ne!(ran, vec![0, 0], "no job ran on the cluster");

    for (secret, says) in [
        (None, "it requires its secret; set CUVE_CLUSTER_SECRET"),
        (
            Some("another-secret-0123456789"),
            "CUVE_CLUSTER_SECRET here differs",
        ),
    ] {
        let o = gateway(secret).output().unwrap();
        assert!(!o.status.success(), "{secret:?}");
        let e = stderr(&o);
        assert!(e.contains(says) && e.contains(&addr), "{secret:?}: {e}");
        assert_eq!(jobs(h), ran, "a refused gateway's job ran");
    }
    // A secret too short to be one is refused before anything is sent.
    let o = gateway(Some("short")).output().unwrap();
    assert!(stderr(&o).contains("at least 16"), "{}", stderr(&o));

    let v = status_with(&addr, Some(SECRET));
    assert_eq!(v["executors"].as_array().unwrap().len(), 2, "{v}");
    let o = process(None)
        .args(["--cluster", &addr, "cluster", "status"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("CUVE_CLUSTER_SECRET"), "{}", stderr(&o));

    // Probes reach /healthz without the token; /cuve/ping (the executors' check) needs it.
    let r = super::intake::http(&addr, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = super::intake::http(&addr, "GET", "/cuve/ping", &[], b"").unwrap();
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("CUVE_CLUSTER_SECRET"), "{}", r.body);
    let token = cuve_cluster::secret::ClusterSecret::new(SECRET).unwrap();
    let agent = [("User-Agent", token.user_agent())];
    let r = super::intake::http(&addr, "GET", "/cuve/ping", &agent, b"").unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));

    // An executor with another secret stops with the reason, instead of retrying for ever.
    let o = process(Some("another-secret-0123456789"))
        .args(["executor", "--scheduler", &addr, "--cores", "1", "--addr"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--work-dir")
        .arg(h.join("ex-other"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("refused this executor") && e.contains("differs"),
        "{e}"
    );

    // An executor's Flight endpoint: Unauthenticated without the token, another answer with it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let code = |agent: Option<&str>| {
        rt.block_on(async {
            use arrow_flight::flight_service_client::FlightServiceClient;
            let mut endpoint =
                tonic::transport::Endpoint::from_shared(format!("http://{}", executors[0]))
                    .unwrap();
            if let Some(a) = agent {
                endpoint = endpoint.user_agent(a.to_string()).unwrap();
            }
            let mut client = FlightServiceClient::new(endpoint.connect().await.unwrap());
            let ticket = arrow_flight::Ticket::new("not a partition");
            match client.do_get(ticket).await {
                Ok(_) => tonic::Code::Ok,
                Err(s) => s.code(),
            }
        })
    };
    assert_eq!(code(None), tonic::Code::Unauthenticated);
    assert_eq!(
        code(Some("cuve-cluster/0000")),
        tonic::Code::Unauthenticated
    );
    assert_ne!(code(Some(token.user_agent())), tonic::Code::Unauthenticated);

    // Off loopback, a scheduler needs a secret: refused before it binds.
    let o = process(None)
        .args(["scheduler", "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("off loopback") && stderr(&o).contains("CUVE_CLUSTER_SECRET"),
        "{}",
        stderr(&o)
    );
}
