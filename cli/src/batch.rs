//! `cuve run`: batch jobs. Runs a script's statements in order and stops at the first failure
//! with a non-zero exit (see the exit codes) and the statement's number; `${name}` parameters
//! are substituted as literals (a quote in a value can never end a string or start SQL);
//! results go to stdout or `--output` as CSV, JSON, NDJSON or Parquet; `--explain` prints plans
//! and estimated bytes without executing. Also used by `template run` and `archive run`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use cuve_engine::Session;
use cuve_engine::parse::{Statement, parse_statement, split_statements};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;

use crate::exit::{CliError, CliResult};
use crate::output::{Format, write_result};

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

/// Replaces `${name}` with the value as a literal: inside a quoted string the value's quotes are
/// doubled; elsewhere numbers stay numbers and anything else becomes a quoted string.
pub fn substitute(script: &str, params: &BTreeMap<String, String>) -> CliResult<String> {
    let mut out = String::with_capacity(script.len());
    let chars: Vec<char> = script.chars().collect();
    let mut in_string = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            in_string = !in_string;
            out.push(c);
            i += 1;
            continue;
        }
        if c == '$' && chars.get(i + 1) == Some(&'{') {
            let end = chars[i + 2..]
                .iter()
                .position(|c| *c == '}')
                .map(|p| p + i + 2);
            if let Some(end) = end {
                let name: String = chars[i + 2..end].iter().collect();
                let value = params.get(name.trim()).ok_or_else(|| {
                    CliError::usage(format!(
                        "the script uses ${{{name}}}: give it with --param {name}=VALUE"
                    ))
                })?;
                if in_string {
                    out.push_str(&value.replace('\'', "''"));
                } else if value.parse::<i64>().is_ok()
                    || (value.parse::<f64>().is_ok()
                        && !value.contains(['e', 'E', 'n', 'N', 'i', 'I']))
                {
                    out.push_str(value);
                } else {
                    out.push('\'');
                    out.push_str(&value.replace('\'', "''"));
                    out.push('\'');
                }
                i = end + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

/// Where results go.
pub struct Sink {
    out: Box<dyn Write>,
    format: BatchFormat,
    path: Option<PathBuf>,
    parquet: Option<(SchemaRef, Vec<RecordBatch>)>,
}

impl Sink {
    pub fn new(output: Option<&PathBuf>, format: BatchFormat) -> CliResult<Sink> {
        if format == BatchFormat::Parquet && output.is_none() {
            return Err(CliError::usage("--format parquet needs --output FILE"));
        }
        let out: Box<dyn Write> = match output {
            Some(p) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(p)
                    .map_err(|e| CliError::io(format!("cannot create {}: {e}", p.display())))?,
            )),
            None => Box::new(std::io::stdout()),
        };
        Ok(Sink {
            out,
            format,
            path: output.cloned(),
            parquet: None,
        })
    }

    fn write(&mut self, schema: &SchemaRef, batches: &[RecordBatch]) -> CliResult {
        if schema.fields().is_empty() {
            return Ok(());
        }
        let f = match self.format {
            BatchFormat::Csv => Format::Csv,
            BatchFormat::Json => Format::Json,
            BatchFormat::Ndjson => Format::Ndjson,
            BatchFormat::Table => Format::Table,
            BatchFormat::Parquet => {
                // One result per Parquet file: the last statement that returns rows.
                self.parquet = Some((schema.clone(), batches.to_vec()));
                return Ok(());
            }
        };
        write_result(&mut self.out, f, schema, batches, None)
            .map_err(|e| CliError::io(format!("writing results: {e}")))?;
        Ok(())
    }

    pub fn finish(mut self) -> CliResult {
        if let Some((schema, batches)) = self.parquet.take() {
            let path = self.path.clone().unwrap_or_default();
            let file = std::fs::File::create(&path)
                .map_err(|e| CliError::io(format!("cannot create {}: {e}", path.display())))?;
            let mut w = ArrowWriter::try_new(file, schema, None)
                .map_err(|e| CliError::io(e.to_string()))?;
            for b in &batches {
                w.write(b).map_err(|e| CliError::io(e.to_string()))?;
            }
            w.close()
                .map_err(|e| CliError::io(format!("writing {}: {e}", path.display())))?;
        }
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

/// Runs a script (already substituted) into `sink`, stopping at the first failing statement.
pub async fn run_script(
    session: &mut Session,
    script: &str,
    source: &str,
    sink: &mut Sink,
    explain: bool,
) -> CliResult<RunSummary> {
    let statements = split_statements(script);
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
                .execute(&format!("EXPLAIN {}", stmt.text))
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
            .execute(&stmt.text)
            .await
            .map_err(|e| CliError::engine(&e, &where_))?;
        summary.statements += 1;
        summary.rows += out.num_rows();
        sink.write(&out.schema, &out.batches)?;
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
    let script = substitute(&text, &params)?;
    let mut session = ctx.session()?;
    let mut sink = Sink::new(args.output.as_ref(), args.format)?;
    run_script(
        &mut session,
        &script,
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
    fn parameters_are_literals() {
        let p: BTreeMap<String, String> = [
            ("d".to_string(), "2019-10-01".to_string()),
            ("n".to_string(), "5".to_string()),
            ("evil".to_string(), "x'; DROP TABLE t; --".to_string()),
        ]
        .into();
        assert_eq!(
            substitute("SELECT * FROM t WHERE dt = ${d} LIMIT ${n}", &p).unwrap(),
            "SELECT * FROM t WHERE dt = '2019-10-01' LIMIT 5"
        );
        assert_eq!(
            substitute("WHERE q = '${evil}'", &p).unwrap(),
            "WHERE q = 'x''; DROP TABLE t; --'"
        );
        assert_eq!(
            substitute("WHERE q = ${evil}", &p).unwrap(),
            "WHERE q = 'x''; DROP TABLE t; --'"
        );
        assert!(substitute("WHERE q = ${missing}", &p).is_err());
        assert!(parse_params(&["a b=1".into()]).is_err());
    }
}
