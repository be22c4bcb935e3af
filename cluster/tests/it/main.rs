//! Cuve's queries on a Ballista scheduler with two executors in this process (loopback, real
//! plan encoding and decoding): the same rows as single-node Cuve.

use std::sync::Arc;

use cuve_cluster::BallistaRemote;
use cuve_engine::ingest::run::{IngestOptions, ingest};
use cuve_engine::parse::TableName;
use cuve_engine::{AccessView, Engine, Session};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

fn rows(out: &cuve_engine::QueryOutput) -> Vec<String> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in &out.batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            rows.push(
                fmts.iter()
                    .map(|f| f.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    rows.sort();
    rows
}

async fn warehouse(home: &std::path::Path) -> (Arc<Engine>, String) {
    let engine = Engine::open(home).unwrap();
    let mut s = engine.session(AccessView::admin("test")).unwrap();
    for sql in [
        "CREATE DATABASE korea_naver_log",
        cuve_testdata::STREAM_LOG_DDL,
        cuve_testdata::USER_PROFILE_DDL,
    ] {
        s.execute(sql).await.unwrap();
    }
    let cfg = cuve_testdata::GenConfig {
        days: 30,
        rows_per_day: 300,
        users: 300,
        queries: 100,
        senders: 2,
        ..Default::default()
    };
    let raw = home.join("raw");
    cuve_testdata::write_raw_logs(&cfg, &raw).unwrap();
    let profiles = home.join("profiles");
    cuve_testdata::write_profiles(&cfg, &profiles.join("127.0.0.1/user_profile.jsonl")).unwrap();
    for (table, input) in [("stream_log", &raw), ("user_profile", &profiles)] {
        let name = TableName {
            database: Some("korea_naver_log".into()),
            name: table.into(),
        };
        let inputs = vec![input.display().to_string()];
        tokio::task::block_in_place(|| {
            ingest(&s, &name, &inputs, &IngestOptions::default(), &|_| {})
        })
        .unwrap();
    }
    (engine, cuve_testdata::user_id(cfg.users / 100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn benchmark_queries_on_a_cluster_equal_single_node() {
    let home = tempfile::tempdir().unwrap();
    let (engine, user) = warehouse(home.path()).await;
    let mut local: Session = engine.session(AccessView::admin("test")).unwrap();
    let addr = cuve_cluster::standalone::start(&local.context().state(), 2, 2)
        .await
        .unwrap();
    let remote = Arc::new(BallistaRemote::new(&format!("localhost:{}", addr.port())));
    let mut distributed = engine.session(AccessView::admin("test")).unwrap();
    distributed.set_remote(remote.clone());

    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/queries");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 20);
    let mut failures = Vec::new();
    for f in &files {
        let sql = std::fs::read_to_string(f)
            .unwrap()
            .replace("{user}", &user)
            .replace("FROM stream_log", "FROM korea_naver_log.stream_log")
            .replace("JOIN stream_log", "JOIN korea_naver_log.stream_log")
            .replace("FROM user_profile", "FROM korea_naver_log.user_profile")
            .replace("JOIN user_profile", "JOIN korea_naver_log.user_profile");
        let want = rows(&local.execute(&sql).await.unwrap());
        match distributed.execute(&sql).await {
            Ok(got) if rows(&got) == want => {}
            Ok(got) => failures.push(format!(
                "{}: {} rows, want {}",
                f.display(),
                rows(&got).len(),
                want.len()
            )),
            Err(e) => {
                let plan = match distributed.execute(&format!("EXPLAIN {sql}")).await {
                    Ok(p) => rows(&p).join("\n"),
                    Err(e) => e.user_message(),
                };
                failures.push(format!("{}: {}\n{plan}", f.display(), e.user_message()))
            }
        }
    }
    // Cuve's functions on the executors: Hive's and the search-log UDFs, the approximate
    // top-k aggregate (partial states merged across stages), LATERAL VIEW.
    let extra = [
        "SELECT section, approx_top_k(query, 3), approx_distinct(user_id) \
         FROM korea_naver_log.stream_log WHERE dt BETWEEN '2019-10-01' AND '2019-10-07' GROUP BY section",
        "SELECT dt, w, COUNT(*) FROM korea_naver_log.stream_log \
         LATERAL VIEW explode(split(query, ' ')) t AS w WHERE dt = '2019-10-02' GROUP BY dt, w",
        "SELECT date_format(dt, 'yyyy/MM/dd'), nvl(NULL, section), COUNT(*) \
         FROM korea_naver_log.stream_log WHERE user_id = '{user}' GROUP BY 1, 2",
    ];
    for sql in extra {
        let sql = sql.replace("{user}", &user);
        let want = rows(&local.execute(&sql).await.unwrap());
        assert!(!want.is_empty(), "{sql}");
        match distributed.execute(&sql).await {
            Ok(got) if rows(&got) == want => {}
            Ok(got) => failures.push(format!("{sql}: {:?}, want {want:?}", rows(&got))),
            Err(e) => failures.push(format!("{sql}: {}", e.user_message())),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // EXPLAIN says where a statement runs and which stages the cluster would run.
    let explain = distributed
        .execute(
            "EXPLAIN SELECT dt, COUNT(DISTINCT user_id) FROM korea_naver_log.stream_log GROUP BY dt",
        )
        .await
        .unwrap();
    let text = rows(&explain).join("\n");
    assert!(text.contains("runs on the cluster at"), "{text}");
    assert!(text.contains("stage 1 ("), "{text}");
    assert!(text.contains("ShuffleWriterExec"), "{text}");
    // A plan that reads no table stays at the gateway, and says so.
    let explain = distributed.execute("EXPLAIN SELECT 1").await.unwrap();
    let text = rows(&explain).join("\n");
    assert!(text.contains("runs at the gateway"), "{text}");
    // The queries ran on the cluster, not in process.
    assert_eq!(remote.submitted(), files.len() + extra.len());
}
