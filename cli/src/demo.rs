//! `cuve demo`: generates a few days of sample search logs under `$CUVE_HOME/demo/`, creates
//! `korea_naver_log.stream_log` and `korea_naver_log.user_profile`, ingests them (idempotent:
//! a second run adds nothing) and prints the five recurring analyses.

use std::collections::BTreeMap;

use chrono::Duration;
use cuve_testdata::{GenConfig, STREAM_LOG_DDL, USER_PROFILE_DDL, write_profiles, write_raw_logs};

use crate::context::CliContext;
use crate::exit::{CliError, CliResult};
use crate::ingest::{IngestArgs, print_summary, run_quiet};
use crate::output::{Format, write_result};

pub async fn run(ctx: &CliContext, days: u32, rows_per_day: u64) -> CliResult {
    let cfg = GenConfig {
        days: days.max(1),
        rows_per_day: rows_per_day.max(1),
        users: 2_000,
        queries: 500,
        senders: 4,
        ..Default::default()
    };
    let demo_dir = ctx.home.join("demo");
    let raw = demo_dir.join(format!("raw-{}d-{}", cfg.days, cfg.rows_per_day));
    let profiles = demo_dir
        .join("profiles")
        .join("127.0.0.1")
        .join("user_profile.jsonl");
    let marker = raw.join(".complete");
    if !marker.exists() {
        println!(
            "generating {} days x {} lines of sample logs in {}",
            cfg.days,
            cfg.rows_per_day,
            raw.display()
        );
        write_raw_logs(&cfg, &raw)
            .map_err(|e| CliError::io(format!("writing sample logs: {e}")))?;
        write_profiles(&cfg, &profiles)
            .map_err(|e| CliError::io(format!("writing sample profiles: {e}")))?;
        std::fs::write(&marker, b"")
            .map_err(|e| CliError::io(format!("{}: {e}", marker.display())))?;
    }
    let mut session = ctx.session()?;
    for sql in [
        "CREATE DATABASE IF NOT EXISTS korea_naver_log COMMENT 'Naver search logs (RGM: korea / naver_log)'",
        STREAM_LOG_DDL,
        USER_PROFILE_DDL,
    ] {
        session.execute(sql).await?;
    }
    for (table, path) in [
        ("korea_naver_log.stream_log", raw.display().to_string()),
        (
            "korea_naver_log.user_profile",
            profiles.display().to_string(),
        ),
    ] {
        let args = IngestArgs {
            table: table.into(),
            format: "jsonl".into(),
            sender_ip: None,
            source: None,
            time_unit: "ns".into(),
            max_errors: Some(0),
            batch_lines: 2_000_000,
            json: false,
            paths: vec![path],
        };
        let summary = run_quiet(ctx, &args, false).await?;
        print_summary(&summary);
    }
    let from = cfg.start.format("%Y-%m-%d").to_string();
    let to = (cfg.start + Duration::days(cfg.days as i64 - 1))
        .format("%Y-%m-%d")
        .to_string();
    let home = ctx.home.clone();
    let mut stdout = std::io::stdout();
    for (name, title) in [
        ("ctr", "1. Impressions, clicks and CTR by day and section"),
        ("qc-uqc", "2. QC / UQC by day"),
        ("exposed-docs", "3. Documents most exposed for '날씨'"),
        ("inflow", "4. Inflow path (referrer channel) by day"),
        ("age-gender", "5. Clicks by age band and gender"),
    ] {
        let t = crate::templates::find(&home, name)?;
        let mut params = BTreeMap::new();
        params.insert("from".to_string(), from.clone());
        params.insert("to".to_string(), to.clone());
        let (sql, literals) = t.render(&params)?;
        let sql = cuve_engine::parse::params::named_placeholders(&sql, &literals)
            .map_err(|e| CliError::engine(&e, &format!("template {name}: ")))?;
        let out = session
            .execute_with(&sql, &cuve_engine::parse::Params::Named(literals))
            .await
            .map_err(|e| CliError::engine(&e, &format!("template {name}: ")))?;
        println!("\n{title}");
        write_result(
            &mut stdout,
            Format::Table,
            &out.schema,
            &out.batches,
            Some(40),
        )
        .map_err(|e| CliError::io(format!("writing results: {e}")))?;
    }
    println!(
        "\nQuery it yourself: cuve --home {} sql -e \"SELECT COUNT(*) FROM korea_naver_log.stream_log\"",
        home.display()
    );
    Ok(())
}
