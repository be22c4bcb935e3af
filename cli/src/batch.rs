//! `cuve run`: batch jobs. Runs a script's statements in order and stops at the first failure
//! with a non-zero exit (see the exit codes) and the statement's number; `${name}` parameters
//! are bound as values (placeholders; inside a quoted string, part of that one string), so a
//! value never becomes SQL;
//! results go to stdout or `--output` as CSV, JSON, NDJSON or Parquet; `--explain` prints plans
//! and estimated bytes without executing. Also used by `template run` and `archive run`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use cuve_engine::parse::params::named_placeholders;
use cuve_engine::parse::{Params, Statement, parse_statement, split_statements};
use cuve_engine::{EngineError, Session, StatementOutput};
use datafusion::parquet::arrow::ArrowWriter;
use futures::StreamExt;

use crate::exit::{CliError, CliResult};
use crate::output::{Format, StreamError, stream_result, write_result};

/// Output formats of batch jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum BatchFormat {
    #[default]
    Csv,
    Json,
    Ndjson,
    Parquet,
    Table,
}

/// Flags shared by the batch-style commands.
#[derive(Debug, Clone, clap::Args, Default)]
pub struct BatchArgs {
    /// Parameter for ${name} placeholders; repeatable
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Write results to this file instead of standard output
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = BatchFormat::Csv)]
    pub format: BatchFormat,
    /// Print each statement's plan and estimated bytes instead of running it
    #[arg(long)]
    pub explain: bool,
}

/// Parses `--param k=v` flags.
pub fn parse_params(params: &[String]) -> CliResult<BTreeMap<String, String>> {
    params
        .iter()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| CliError::usage(format!("--param '{p}': expected NAME=VALUE")))?;
            let k = k.trim();
            if k.is_empty() || !k.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(CliError::usage(format!(
                    "--param '{p}': the name may have letters, digits and '_' only"
                )));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Where results go.
pub struct Sink {
    out: Box<dyn Write>,
    format: BatchFormat,
    path: Option<PathBuf>,
}

impl Sink {
    pub fn new(output: Option<&PathBuf>, format: BatchFormat) -> CliResult<Sink> {
        if format == BatchFormat::Parquet && output.is_none() {
            return Err(CliError::usage("--format parquet needs --output FILE"));
        }
        let out: Box<dyn Write> = match output {
            Some(p) if format != BatchFormat::Parquet => Box::new(std::io::BufWriter::new(
                std::fs::File::create(p)
                    .map_err(|e| CliError::io(format!("cannot create {}: {e}", p.display())))?,
            )),
            _ => Box::new(std::io::stdout()),
        };
        Ok(Sink {
            out,
            format,
            path: output.cloned(),
        })
    }

    /// Writes one statement's result as its batches arrive; returns the rows written.
    async fn write(&mut self, result: StatementOutput, where_: &str) -> CliResult<usize> {
        let engine = |e: EngineError| CliError::engine(&e, where_);
        if result.schema.fields().is_empty() {
            // Run it to the end (a statement that changes something).
            let mut stream = result.stream;
            while let Some(b) = stream.next().await {
                b.map_err(|e| engine(EngineError::from_datafusion(e)))?;
            }
            return Ok(0);
        }
        let f = match self.format {
            BatchFormat::Csv => Format::Csv,
            BatchFormat::Json => Format::Json,
            BatchFormat::Ndjson => Format::Ndjson,
            BatchFormat::Table => Format::Table,
            BatchFormat::Parquet => return self.write_parquet(result, where_).await,
        };
        stream_result(&mut self.out, f, None, result)
            .await
            .map_err(|e| match e {
                StreamError::Engine(e) => engine(e),
                StreamError::Write(e) => CliError::io(format!("writing results: {e}")),
            })
    }

    /// One result per Parquet file: each statement that returns rows replaces the file, so it
    /// holds the last one's. Written batch by batch.
    async fn write_parquet(&mut self, result: StatementOutput, where_: &str) -> CliResult<usize> {
        let path = self.path.clone().unwrap_or_default();
        let io =
            |e: &dyn std::fmt::Display| CliError::io(format!("writing {}: {e}", path.display()));
        let file = std::fs::File::create(&path)
            .map_err(|e| CliError::io(format!("cannot create {}: {e}", path.display())))?;
        let mut w = ArrowWriter::try_new(file, result.schema.clone(), None).map_err(|e| io(&e))?;
        let mut rows = 0;
        let mut stream = result.stream;
        while let Some(b) = stream.next().await {
            let b = b.map_err(|e| CliError::engine(&EngineError::from_datafusion(e), where_))?;
            rows += b.num_rows();
            w.write(&b).map_err(|e| io(&e))?;
        }
        w.close().map_err(|e| io(&e))?;
        Ok(rows)
    }

    pub fn finish(mut self) -> CliResult {
        self.out
            .flush()
            .map_err(|e| CliError::io(format!("writing results: {e}")))
    }
}

/// What a batch run did.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub statements: usize,
    pub rows: usize,
}

/// Runs a script into `sink`, stopping at the first failing statement. `${name}` parameters
/// are bound as values (see `cuve_engine::parse::params`), never pasted into the SQL.
pub async fn run_script(
    session: &mut Session,
    script: &str,
    params: &BTreeMap<String, String>,
    source: &str,
    sink: &mut Sink,
    explain: bool,
) -> CliResult<RunSummary> {
    let usage = |e: EngineError| CliError::usage(format!("{source}: {}", e.user_message()));
    let script = named_placeholders(script, params).map_err(usage)?;
    let statements =
        split_statements(&script).map_err(|e| CliError::engine(&e, &format!("{source}: ")))?;
    let params = Params::Named(params.clone());
    if statements.is_empty() {
        return Err(CliError::usage(format!(
            "{source}: no SQL statements found"
        )));
    }
    let mut summary = RunSummary::default();
    for stmt in &statements {
        let where_ = format!("{source}: statement {} (line {}): ", stmt.index, stmt.line);
        if explain {
            let is_query = matches!(
                parse_statement(&stmt.text),
                Ok(Statement::Sql(_)) | Ok(Statement::Insert { .. })
            );
            if !is_query {
                writeln!(
                    sink.out,
                    "-- statement {} (line {}): not a query, not explained",
                    stmt.index, stmt.line
                )
                .map_err(|e| CliError::io(e.to_string()))?;
                continue;
            }
            let out = session
                .execute_with(&format!("EXPLAIN {}", stmt.text), &params)
                .await
                .map_err(|e| CliError::engine(&e, &where_))?;
            let bytes: u64 = out.scans.iter().map(|s| s.bytes_read).sum();
            writeln!(
                sink.out,
                "-- statement {} (line {}): estimated bytes scanned {bytes}",
                stmt.index, stmt.line
            )
            .map_err(|e| CliError::io(e.to_string()))?;
            write_result(
                &mut sink.out,
                Format::Table,
                &out.schema,
                &out.batches,
                None,
            )
            .map_err(|e| CliError::io(e.to_string()))?;
            summary.statements += 1;
            continue;
        }
        let out = session
            .execute_stream_with(&stmt.text, &params)
            .await
            .map_err(|e| CliError::engine(&e, &where_))?;
        summary.rows += sink.write(out, &where_).await?;
        summary.statements += 1;
    }
    Ok(summary)
}

/// `cuve run -f FILE`.
pub async fn run(
    ctx: &crate::context::CliContext,
    file: &std::path::Path,
    args: &BatchArgs,
) -> CliResult {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::io(format!("cannot read {}: {e}", file.display())))?;
    let params = parse_params(&args.params)?;
    let mut session = ctx.session()?;
    let mut sink = Sink::new(args.output.as_ref(), args.format)?;
    run_script(
        &mut session,
        &text,
        &params,
        &file.display().to_string(),
        &mut sink,
        args.explain,
    )
    .await?;
    sink.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_are_checked() {
        assert!(parse_params(&["a b=1".into()]).is_err());
        assert!(parse_params(&["novalue".into()]).is_err());
        let p = parse_params(&["day=1; DROP TABLE t".into()]).unwrap();
        assert_eq!(p["day"], "1; DROP TABLE t");
    }
}
