//! `cuve sql`: runs a script's statements in order, printing each result; stops at the first
//! failing statement with a non-zero exit and the statement's number and line.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use cuve_engine::Session;
use cuve_engine::parse::split_statements;

use crate::context::CliContext;
use crate::exit::{CliError, CliResult};
use crate::output::{Format, StreamError, print_summary, stream_result};

/// Reads the script from `-e`, `-f` or standard input.
pub fn read_script(execute: Option<String>, file: Option<PathBuf>) -> CliResult<(String, String)> {
    if let Some(sql) = execute {
        return Ok((sql, "-e".into()));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CliError::io(format!("cannot read {}: {e}", path.display())))?;
        return Ok((text, path.display().to_string()));
    }
    if std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "give SQL with -e \"...\" or -f FILE, or pipe it on standard input",
        ));
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::io(format!("cannot read standard input: {e}")))?;
    Ok((text, "stdin".into()))
}

pub async fn run(
    ctx: &CliContext,
    execute: Option<String>,
    file: Option<PathBuf>,
    format: Format,
) -> CliResult {
    let (script, source) = read_script(execute, file)?;
    let mut session = ctx.session()?;
    run_script(&mut session, &script, &source, format).await
}

/// Runs every statement of `script`, printing each result to stdout as it arrives.
pub async fn run_script(
    session: &mut Session,
    script: &str,
    source: &str,
    format: Format,
) -> CliResult {
    let statements =
        split_statements(script).map_err(|e| CliError::engine(&e, &format!("{source}: ")))?;
    let show_counts = std::io::stderr().is_terminal() && format == Format::Table;
    for stmt in &statements {
        let started = std::time::Instant::now();
        let where_ = if statements.len() > 1 || source != "-e" {
            format!("{source}: statement {} (line {}): ", stmt.index, stmt.line)
        } else {
            String::new()
        };
        let out = session
            .execute_stream(&stmt.text)
            .await
            .map_err(|e| CliError::engine(&e, &where_))?;
        let (schema, scans, job) = (out.schema.clone(), out.scans.clone(), out.job.clone());
        let stdout = std::io::stdout();
        let rows = stream_result(stdout.lock(), format, None, out)
            .await
            .map_err(|e| match e {
                StreamError::Engine(e) => CliError::engine(&e, &where_),
                StreamError::Write(e) => CliError::io(format!("writing results: {e}")),
            })?;
        if show_counts {
            print_summary(&schema, rows, &scans, job, started).await;
        }
    }
    Ok(())
}
