//! Quotas across sessions: concurrency slots with waiting and timing out, bytes per day, memory,
//! run time; usage and audit recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cuve_catalog::{Grant, Quota, Role};
use cuve_engine::{AccessView, Engine, ErrorKind, Session};
use futures::StreamExt;

async fn setup() -> (tempfile::TempDir, Arc<Engine>) {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::open(home.path()).unwrap();
    let mut s = engine.session(AccessView::admin("t")).unwrap();
    s.execute("CREATE DATABASE d").await.unwrap();
    s.execute("CREATE TABLE d.t (a STRING, n BIGINT) PARTITIONED BY (dt STRING)")
        .await
        .unwrap();
    s.execute("INSERT INTO d.t SELECT 'x', value, '2019-10-0' || CAST(1 + value % 3 AS VARCHAR) FROM generate_series(1, 3000)")
        .await
        .unwrap();
    engine
        .catalog()
        .add_user("ana", Role::Analyst, None)
        .unwrap();
    (home, engine)
}

fn session(engine: &Arc<Engine>, quota: Quota) -> (String, Session) {
    session_with(engine, &[Grant::parse("SELECT:d.*").unwrap()], &quota)
}

fn session_with(engine: &Arc<Engine>, grants: &[Grant], quota: &Quota) -> (String, Session) {
    let (t, secret) = engine
        .catalog()
        .create_ticket("ana", None, None, grants, quota)
        .unwrap();
    let ticket = engine.catalog().authenticate(&secret).unwrap();
    (
        t.id,
        engine
            .session(AccessView::from_ticket(&ticket, "test"))
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_slots_wait_then_time_out() {
    let (_home, engine) = setup().await;
    let quota = Quota {
        max_concurrent: Some(1),
        max_wait_secs: Some(0.3),
        ..Default::default()
    };
    let (id, mut a) = session(&engine, quota.clone());
    let ticket = engine.catalog().ticket(&id).unwrap().unwrap();
    let mut b = engine
        .session(AccessView::from_ticket(&ticket, "test-b"))
        .unwrap();
    // A holds the only slot while its result stream is open.
    let held = a.execute_stream("SELECT * FROM d.t").await.unwrap();
    let started = Instant::now();
    let err = b.execute("SELECT COUNT(*) FROM d.t").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Quota);
    assert!(
        err.user_message().contains("max_concurrent 1"),
        "{}",
        err.user_message()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited for a slot first"
    );
    // Once A's stream is dropped, the slot is free; a waiting query gets it.
    let waiter = tokio::spawn(async move {
        b.execute("SELECT COUNT(*) FROM d.t")
            .await
            .map(|o| o.num_rows())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(held);
    assert_eq!(waiter.await.unwrap().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_per_day_usage_and_audit() {
    let (_home, engine) = setup().await;
    let (id, mut s) = session(&engine, Quota::default());
    let out = s
        .execute("SELECT * FROM d.t WHERE dt = '2019-10-01'")
        .await
        .unwrap();
    let one_partition: u64 = out.scans.iter().map(|r| r.bytes_read).sum();
    assert!(one_partition > 0);
    // Allow a bit more than two partitions' worth per day.
    engine
        .catalog()
        .set_quota(
            &id,
            &Quota {
                max_scan_bytes_per_day: Some(one_partition * 2 + one_partition / 2),
                ..Default::default()
            },
        )
        .unwrap();
    let ticket = engine.catalog().ticket(&id).unwrap().unwrap();
    let mut s = engine
        .session(AccessView::from_ticket(&ticket, "test"))
        .unwrap();
    let second: u64 = s
        .execute("SELECT * FROM d.t WHERE dt = '2019-10-02'")
        .await
        .unwrap()
        .scans
        .iter()
        .map(|r| r.bytes_read)
        .sum();
    let e = s
        .execute("SELECT * FROM d.t WHERE dt = '2019-10-03'")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Quota, "{}", e.user_message());
    assert!(
        e.user_message().contains("bytes per day left"),
        "{}",
        e.user_message()
    );
    let usage = engine.catalog().usage(&id).unwrap();
    assert_eq!(usage[0].queries, 2);
    assert_eq!(usage[0].bytes_scanned, one_partition + second);
    assert_eq!(usage[0].rows_returned, 2000);
    let audit = engine.catalog().audit_entries(None, Some(&id), 10).unwrap();
    let decisions: Vec<&str> = audit.iter().map(|a| a.decision.as_str()).collect();
    assert_eq!(decisions, vec!["allow", "allow", "deny"]);
    assert_eq!(audit[0].resources, vec!["d.t".to_string()]);
    assert_eq!(audit[0].rows, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_runtime_limits() {
    let (_home, engine) = setup().await;
    let (_, mut s) = session(
        &engine,
        Quota {
            max_memory: Some(256 * 1024),
            ..Default::default()
        },
    );
    let e = s
        .execute("SELECT COUNT(*) FROM generate_series(1, 400000) a JOIN generate_series(1, 400000) b ON a.value = b.value")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Quota, "{}", e.user_message());
    let (_, mut s) = session(
        &engine,
        Quota {
            max_runtime_secs: Some(0.2),
            ..Default::default()
        },
    );
    let started = Instant::now();
    let mut out = s
        .execute_stream("SELECT COUNT(*) FROM generate_series(1, 20000) a CROSS JOIN generate_series(1, 20000) b WHERE a.value + b.value = 7")
        .await
        .unwrap();
    let mut err = None;
    while let Some(item) = out.stream.next().await {
        if let Err(e) = item {
            err = Some(e.to_string());
            break;
        }
    }
    let err = err.expect("the query was cancelled");
    assert!(err.contains("max_runtime"), "{err}");
    // The limit fires at the operators' next yield point; the query never runs to its end.
    assert!(started.elapsed() < Duration::from_secs(120));
}

/// Regression (wave 2): CTAS ran its rows outside admission, the byte quota, run time and
/// metering. Now its query is charged like any other, and a refused CTAS leaves no table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctas_is_charged_to_the_ticket() {
    let (_home, engine) = setup().await;
    let grants = [
        Grant::parse("SELECT:d.*").unwrap(),
        Grant::parse("WRITE:d.*").unwrap(),
        Grant::parse("ALTER:d.*").unwrap(),
    ];
    let open = |quota: &Quota| session_with(&engine, &grants, quota);
    let (id, mut s) = open(&Quota::default());
    s.execute("CREATE TABLE d.copy AS SELECT a, n FROM d.t WHERE dt = '2019-10-01'")
        .await
        .unwrap();
    let usage = engine.catalog().usage(&id).unwrap();
    assert!(
        usage[0].bytes_scanned > 0,
        "CTAS bytes are metered: {usage:?}"
    );
    let (_, mut tight) = open(&Quota {
        max_scan_bytes_per_day: Some(1),
        ..Default::default()
    });
    let e = tight
        .execute("CREATE TABLE d.copy2 AS SELECT a, n FROM d.t")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Quota, "{}", e.user_message());
    assert!(
        engine.catalog().table("d", "copy2").unwrap().is_none(),
        "a refused CTAS leaves no table"
    );
}

/// Regression (wave 2, hardening): EXPLAIN ANALYZE ran the whole query before any check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_analyze_is_checked_and_time_limited_like_the_query() {
    let (_home, engine) = setup().await;
    let (_, mut s) = session(
        &engine,
        Quota {
            max_scan_bytes_per_query: Some(1),
            ..Default::default()
        },
    );
    let e = s
        .execute("EXPLAIN ANALYZE SELECT COUNT(*) FROM d.t")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Quota, "{}", e.user_message());
    let (_, mut s) = session(
        &engine,
        Quota {
            max_runtime_secs: Some(0.3),
            ..Default::default()
        },
    );
    let started = Instant::now();
    let e = s
        .execute("EXPLAIN ANALYZE SELECT COUNT(*) FROM generate_series(1, 20000) a CROSS JOIN generate_series(1, 20000) b WHERE a.value + b.value = 7")
        .await
        .unwrap_err();
    assert!(
        e.user_message().contains("max_runtime"),
        "{}",
        e.user_message()
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Regression (wave 2, hardening): the daily byte quota was checked, then charged when each
/// query ended, so concurrent queries all passed the check. Now the estimate is reserved at
/// admission, atomically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_cannot_overrun_the_daily_quota() {
    let (_home, engine) = setup().await;
    let (id, mut s) = session(&engine, Quota::default());
    let one: u64 = s
        .execute("SELECT * FROM d.t WHERE dt = '2019-10-01'")
        .await
        .unwrap()
        .scans
        .iter()
        .map(|r| r.bytes_read)
        .sum();
    let limit = one * 3 + one / 2;
    let before = engine.catalog().bytes_today(&id).unwrap();
    engine
        .catalog()
        .set_quota(
            &id,
            &Quota {
                max_scan_bytes_per_day: Some(before + limit),
                ..Default::default()
            },
        )
        .unwrap();
    let ticket = engine.catalog().ticket(&id).unwrap().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let engine = engine.clone();
        let ticket = ticket.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = engine
                .session(AccessView::from_ticket(&ticket, "test"))
                .unwrap();
            s.execute("SELECT * FROM d.t WHERE dt = '2019-10-01'").await
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::Quota, "{}", e.user_message()),
        }
    }
    assert_eq!(admitted, 3, "three queries fit in the quota");
    let used = engine.catalog().bytes_today(&id).unwrap() - before;
    assert!(used <= limit, "charged {used} of a {limit} limit");
}

/// Regression (wave 2, hardening): `raw` (the whole input line) leaked sensitive fields, and
/// DESCRIBE FORMATTED / SHOW CREATE TABLE named the hidden columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_and_the_names_of_sensitive_columns_stay_hidden() {
    let (_home, engine) = setup().await;
    let mut admin = engine.session(AccessView::admin("t")).unwrap();
    admin
        .execute("CREATE TABLE d.s (msg STRING, client_ip STRING, raw STRING) TBLPROPERTIES ('sensitive_columns'='client_ip')")
        .await
        .unwrap();
    admin
        .execute("INSERT INTO d.s VALUES ('hi', '10.0.0.1', '{\"msg\":\"hi\",\"client_ip\":\"10.0.0.1\"}')")
        .await
        .unwrap();
    let (_, mut s) = session(&engine, Quota::default());
    let e = s
        .execute("SELECT get_json_object(raw, '$.client_ip') FROM d.s")
        .await
        .unwrap_err();
    assert!(e.user_message().contains("raw"), "{}", e.user_message());
    let out = s.execute("SELECT * FROM d.s").await.unwrap();
    assert_eq!(out.schema.fields().len(), 1, "only msg: {:?}", out.schema);
    for sql in ["DESCRIBE FORMATTED d.s", "SHOW CREATE TABLE d.s"] {
        let out = s.execute(sql).await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&out.batches)
            .unwrap()
            .to_string();
        assert!(
            !text.contains("client_ip"),
            "{sql} names a hidden column:\n{text}"
        );
    }
    // A ticket with ALTER but SELECT on d.t only does not learn that d.s exists, nor its name
    // from a LOCATION that overlaps it.
    let grants = [
        Grant::parse("ALTER:d.*").unwrap(),
        Grant::parse("SELECT:d.t").unwrap(),
    ];
    let (_, mut alter) = session_with(&engine, &grants, &Quota::default());
    let e = alter.execute("CREATE TABLE d.s (x INT)").await.unwrap_err();
    assert!(!e.user_message().contains("exists"), "{}", e.user_message());
    let inside = engine.warehouse().join("d").join("s").join("sub");
    let e = alter
        .execute(&format!(
            "CREATE TABLE d.z (x INT) LOCATION '{}'",
            inside.display()
        ))
        .await
        .unwrap_err();
    let msg = e.user_message();
    assert!(
        msg.contains("another table") && !msg.contains("d.s"),
        "{msg}"
    );
}
