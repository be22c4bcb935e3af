//! The benchmark harness (driven by `benches/run.sh`):
//!
//! - `cuve-bench generate --dir D --scale S`: the benchmark's raw JSON lines (reused when present).
//! - `cuve-bench setup --home H`: the benchmark's database and tables.
//! - `cuve-bench queries --home H --runs N --out F.json`: q1..q9 on Cuve (the engine, bucket
//!   optimisations on) and on plain DataFusion (the same Parquet files as a listing table
//!   `PARTITIONED BY (dt)`), in this one process: median times, peak RSS, rows, files/bytes
//!   read, and whether the bucket-key queries ran without a repartition on the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cuve_engine::{AccessView, Engine};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::{SessionConfig, SessionContext};
use serde_json::{Value, json};

/// The same allocator as the `cuve` binary, for Cuve and plain DataFusion alike.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Resets the process's peak RSS (Linux `clear_refs`), so the next reading is per query.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU time (user + system, all threads) this process has used so far, in seconds: per-run
/// CPU is steadier than wall time on a shared 2-core machine, so A/B comparisons use it.
fn process_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes to it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Peak RSS in bytes since the last reset.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Rows as canonical text (sorted when the query has no ORDER BY at the top).
fn canonical(batches: &[RecordBatch], sort: bool) -> Vec<String> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter> = b
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
    if sort {
        rows.sort();
    }
    rows
}

fn median_or_zero(v: &mut [f64]) -> f64 {
    if v.is_empty() { 0.0 } else { median(v) }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn sum_metric(plan: &Arc<dyn ExecutionPlan>, name: &str) -> u64 {
    let mut total = plan
        .metrics()
        .map(|m| {
            m.iter()
                .filter(|x| x.value().name() == name)
                .map(|x| x.value().as_usize() as u64)
                .sum()
        })
        .unwrap_or(0);
    for c in plan.children() {
        total += sum_metric(c, name);
    }
    total
}

fn load_queries(dir: &Path, user: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            let sql = std::fs::read_to_string(&p).unwrap().replace("{user}", user);
            (name, sql)
        })
        .collect();
    v.sort();
    v
}

async fn run_queries(args: &[String]) {
    let home = PathBuf::from(arg(args, "--home").expect("--home"));
    let runs: usize = arg(args, "--runs").map(|s| s.parse().unwrap()).unwrap_or(5);
    let out = PathBuf::from(arg(args, "--out").expect("--out"));
    let user = arg(args, "--user").expect("--user");
    let qdir = PathBuf::from(arg(args, "--queries").unwrap_or_else(|| "benches/queries".into()));
    let queries = load_queries(&qdir, &user);
    // `--only cuve|datafusion` runs one engine (for profiling).
    let only = arg(args, "--only");
    let run_cuve = only.as_deref() != Some("datafusion");
    let run_df = only.as_deref() != Some("cuve");

    let engine = Engine::open(&home).unwrap();
    let mut cuve = engine.session(AccessView::admin("bench")).unwrap();
    cuve.execute("USE korea_naver_log").await.unwrap();
    // A second Cuve session limited to 1 GiB per query (spilling) for q2 and q7.
    let mut limited_access = AccessView::admin("bench-1g");
    limited_access.quota.max_memory = Some(1 << 30);
    let mut cuve_1g = engine.session(limited_access).unwrap();
    cuve_1g.execute("USE korea_naver_log").await.unwrap();

    let wh = home.join("warehouse/korea_naver_log");
    let df = SessionContext::new_with_config(SessionConfig::new());
    df.sql(&format!(
        "CREATE EXTERNAL TABLE stream_log STORED AS PARQUET PARTITIONED BY (dt) LOCATION '{}/'",
        wh.join("stream_log").display()
    ))
    .await
    .unwrap();
    df.sql(&format!(
        "CREATE EXTERNAL TABLE user_profile STORED AS PARQUET LOCATION '{}/'",
        wh.join("user_profile").display()
    ))
    .await
    .unwrap();

    let mut results: BTreeMap<String, Value> = BTreeMap::new();
    for (name, sql) in &queries {
        let sort = !sql.to_uppercase().contains("ORDER BY") || name.starts_with("q9");
        eprintln!("{name}");
        let mut entry = serde_json::Map::new();
        // Cuve
        let mut times = Vec::new();
        let mut cpu = Vec::new();
        let mut peak = 0;
        let mut rows = Vec::new();
        let mut scans = (0usize, 0usize, 0u64);
        // One untimed warm-up run per engine and query (footer caches, OS page cache), as
        // for DuckDB.
        if run_cuve {
            cuve.execute(sql).await.unwrap();
        }
        for i in 0..if run_cuve { runs } else { 0 } {
            reset_peak();
            let t = Instant::now();
            let c = process_cpu();
            let o = cuve.execute(sql).await.unwrap();
            times.push(t.elapsed().as_secs_f64());
            cpu.push(process_cpu() - c);
            peak = peak.max(peak_rss());
            if i == 0 {
                rows = canonical(&o.batches, sort);
                scans = o.scans.iter().fold((0, 0, 0), |a, s| {
                    (a.0 + s.files_read, a.1 + s.files_total, a.2 + s.bytes_read)
                });
            }
        }
        let explain = if sql.trim_start().to_uppercase().starts_with("EXPLAIN") {
            sql.to_string()
        } else {
            format!("EXPLAIN {sql}")
        };
        let plan = cuve.execute(&explain).await.unwrap();
        let plan_text = canonical(&plan.batches, false).join("\n");
        let colocated = plan_text.contains("BucketParallelExec");
        let inner: String = plan_text
            .split("BucketParallelExec")
            .skip(1)
            .collect::<Vec<_>>()
            .join("");
        let repartition_on_key =
            inner.contains("Hash([user_id") || (!colocated && plan_text.contains("Hash([user_id"));
        entry.insert(
            "cuve".into(),
            json!({"times": times.clone(), "median": median_or_zero(&mut times), "cpu_median": median_or_zero(&mut cpu),
                   "peak_rss": peak, "rows": rows, "files_read": scans.0, "files_total": scans.1, "bytes_read": scans.2,
                   "colocated": colocated, "repartition_on_key": repartition_on_key}),
        );
        if run_cuve && (name.starts_with("q2_") || name.starts_with("q7_")) {
            reset_peak();
            let t = Instant::now();
            let o = cuve_1g.execute(sql).await;
            let ok = o
                .as_ref()
                .map(|o| canonical(&o.batches, sort) == rows)
                .unwrap_or(false);
            entry.insert(
                "cuve_1g".into(),
                json!({"seconds": t.elapsed().as_secs_f64(), "peak_rss": peak_rss(), "same_result": ok,
                       "error": o.err().map(|e| e.user_message())}),
            );
        }
        // Plain DataFusion
        let mut times = Vec::new();
        let mut peak = 0;
        let mut rows = Vec::new();
        let mut bytes = 0;
        let mut repart = false;
        if run_df {
            let frame = df.sql(sql).await.unwrap();
            frame.collect().await.unwrap();
        }
        for i in 0..if run_df { runs } else { 0 } {
            reset_peak();
            let t = Instant::now();
            let frame = df.sql(sql).await.unwrap();
            let task = Arc::new(frame.task_ctx());
            let physical = frame.create_physical_plan().await.unwrap();
            let batches = collect(physical.clone(), task).await.unwrap();
            times.push(t.elapsed().as_secs_f64());
            peak = peak.max(peak_rss());
            if i == 0 {
                rows = canonical(&batches, sort);
                bytes = sum_metric(&physical, "bytes_scanned");
                repart = displayable(physical.as_ref())
                    .indent(true)
                    .to_string()
                    .contains("Hash([user_id");
            }
        }
        entry.insert(
            "datafusion".into(),
            json!({"times": times.clone(), "median": median_or_zero(&mut times), "peak_rss": peak, "rows": rows,
                   "bytes_scanned": bytes, "repartition_on_key": repart}),
        );
        results.insert(name.clone(), Value::Object(entry));
    }
    std::fs::write(&out, serde_json::to_string_pretty(&results).unwrap()).unwrap();
}

fn generate(args: &[String]) {
    let dir = PathBuf::from(arg(args, "--dir").expect("--dir"));
    let scale: f64 = arg(args, "--scale")
        .map(|s| s.parse().unwrap())
        .unwrap_or(1.0);
    let cfg = cuve_testdata::GenConfig {
        rows_per_day: ((1_000_000.0 * scale) as u64).max(1000),
        users: ((200_000.0 * scale.min(1.0)) as u32).max(1000),
        ..Default::default()
    };
    let marker = dir.join(format!(".complete-{}-{}", cfg.rows_per_day, cfg.users));
    if marker.exists() {
        eprintln!("reusing {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        let t = Instant::now();
        let s = cuve_testdata::write_raw_logs(&cfg, &dir.join("raw")).unwrap();
        cuve_testdata::write_profiles(&cfg, &dir.join("profiles/127.0.0.1/user_profile.jsonl"))
            .unwrap();
        eprintln!(
            "generated {} lines, {:.1} MiB in {:.1}s",
            s.lines,
            s.bytes as f64 / 1048576.0,
            t.elapsed().as_secs_f64()
        );
        std::fs::write(&marker, "").unwrap();
    }
    // A mid-activity user for q6: Zipf rank ~ users/100.
    println!("{}", cuve_testdata::user_id(cfg.users / 100));
}

/// Creates the benchmark's database and tables in a warehouse.
async fn setup(args: &[String]) {
    let home = PathBuf::from(arg(args, "--home").expect("--home"));
    let engine = Engine::open(&home).unwrap();
    let mut s = engine.session(AccessView::admin("bench")).unwrap();
    for sql in [
        "CREATE DATABASE IF NOT EXISTS korea_naver_log",
        cuve_testdata::STREAM_LOG_DDL,
        cuve_testdata::USER_PROFILE_DDL,
    ] {
        s.execute(sql).await.unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(|s| s.as_str()) {
        Some("generate") => generate(&args),
        Some("setup") => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(setup(&args));
        }
        Some("queries") => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(run_queries(&args));
        }
        _ => {
            eprintln!(
                "usage: cuve-bench generate --dir D --scale S | queries --home H --user U --runs N --out F.json"
            );
            std::process::exit(2);
        }
    }
}
