//! `cuve ingest`: raw log lines into a table, exactly once; a progress bar on a TTY, a summary
//! (or `--json`) at the end.

use std::io::IsTerminal;
use std::time::Duration;

use cuve_engine::ingest::{IngestOptions, IngestSummary, InputFormat, TimeUnit, ingest};
use cuve_engine::parse::TableName;

use crate::context::CliContext;
use crate::exit::{CliError, CliResult};

/// Flags of `cuve ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Target table, db.table
    #[arg(long, value_name = "DB.TABLE")]
    pub table: String,
    /// Input format
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv", "tsv"])]
    pub format: String,
    /// Sender IP for inputs not under a <sender_ip>/ directory (and for stdin)
    #[arg(long, value_name = "IP")]
    pub sender_ip: Option<String>,
    /// Source name when reading standard input ('-'); a retry with the same name is recognised
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Unit of integer log times
    #[arg(long, default_value = "ns", value_parser = ["s", "ms", "us", "ns"])]
    pub time_unit: String,
    /// Fail, committing nothing more, once more than N lines are rejected
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,
    /// Lines per committed batch
    #[arg(long, default_value_t = 2_000_000, value_name = "N")]
    pub batch_lines: u64,
    /// Print the summary as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Files, directories laid out <sender_ip>/<file>, or '-' for standard input
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

pub fn table_name(s: &str) -> CliResult<TableName> {
    match s.split_once('.') {
        Some((d, t)) if !d.is_empty() && !t.is_empty() && !t.contains('.') => Ok(TableName {
            database: Some(d.to_string()),
            name: t.to_string(),
        }),
        _ => Err(CliError::usage(format!("--table '{s}': expected db.table"))),
    }
}

pub async fn run(ctx: &CliContext, args: IngestArgs) -> CliResult {
    let summary = run_quiet(ctx, &args, !args.json && std::io::stderr().is_terminal()).await?;
    if args.json {
        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        print_summary(&summary);
    }
    Ok(())
}

/// Runs an ingest; shows a progress bar when `progress`.
pub async fn run_quiet(
    ctx: &CliContext,
    args: &IngestArgs,
    progress: bool,
) -> CliResult<IngestSummary> {
    let table = table_name(&args.table)?;
    let opts = IngestOptions {
        format: InputFormat::parse(&args.format)?,
        sender_ip: args.sender_ip.clone(),
        source_name: args.source.clone(),
        time_unit: TimeUnit::parse(&args.time_unit)?,
        max_errors: args.max_errors,
        batch_lines: args.batch_lines.max(1),
        ..Default::default()
    };
    let session = ctx.session()?;
    let paths = args.paths.clone();
    let bar = if progress {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb.enable_steady_tick(Duration::from_millis(200));
        Some(pb)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let report = |s: &IngestSummary| {
        if let Some(pb) = &bar {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            pb.set_message(format!(
                "{} lines ({:.0} lines/s), {:.1} MiB read, {} rejected",
                s.lines_read,
                s.lines_read as f64 / secs,
                s.bytes_read as f64 / 1048576.0,
                s.rejected
            ));
        }
    };
    let result = tokio::task::block_in_place(|| ingest(&session, &table, &paths, &opts, &report));
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    result.map_err(|e| CliError::engine(&e, "ingest: "))
}

pub fn print_summary(s: &IngestSummary) {
    println!(
        "ingested {}: {} sources, {} lines read, {} written, {} duplicates skipped, {} rejected, {} partitions, {} files, {:.1} MiB in {:.2}s ({:.0} lines/s)",
        s.table,
        s.sources,
        s.lines_read,
        s.written,
        s.duplicates_skipped,
        s.rejected,
        s.partitions.len(),
        s.files,
        s.bytes_read as f64 / 1048576.0,
        s.seconds,
        s.lines_read as f64 / s.seconds.max(0.001)
    );
    if s.incomplete > 0 {
        println!(
            "{} unterminated last line(s) left for the next run",
            s.incomplete
        );
    }
    if let Some(d) = &s.dead_letter {
        println!("rejected lines are in {d}");
    }
}
