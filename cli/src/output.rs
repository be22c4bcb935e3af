//! Result formats: `table` (aligned by display width, so Korean text lines up), `csv` (one
//! header row), `json` (one array per statement) and `ndjson` (one object per line).

use std::io::Write;

use clap::ValueEnum;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::{ArrayWriter, LineDelimitedWriter};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
    Ndjson,
}

/// Writes one statement's result in `format`.
/// The summary after a result on stderr: row count, time, and what each scan read.
pub fn print_summary(out: &cuve_engine::QueryOutput, started: std::time::Instant) {
    if out.schema.fields().is_empty() {
        return;
    }
    eprintln!(
        "{} rows in {:.3}s",
        out.num_rows(),
        started.elapsed().as_secs_f64()
    );
    for s in &out.scans {
        eprintln!("  scanned {s}");
    }
}

pub fn write_result(
    out: &mut dyn Write,
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    max_rows: Option<usize>,
) -> anyhow_like::Result<()> {
    if schema.fields().is_empty() {
        return Ok(());
    }
    match format {
        Format::Table => write_table(out, schema, batches, max_rows)?,
        Format::Csv => {
            let mut w = WriterBuilder::new().with_header(true).build(&mut *out);
            if batches.is_empty() {
                let empty = RecordBatch::new_empty(schema.clone());
                w.write(&empty)?;
            }
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = ArrayWriter::new(&mut *out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            w.write_batches(&refs)?;
            w.finish()?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                write!(out, "[]")?;
            }
            writeln!(out)?;
        }
        Format::Ndjson => {
            let mut w = LineDelimitedWriter::new(&mut *out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            w.write_batches(&refs)?;
            w.finish()?;
        }
    }
    Ok(())
}

/// An aligned table; cells are padded by display width (East Asian wide characters count 2).
pub fn write_table(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    max_rows: Option<usize>,
) -> anyhow_like::Result<()> {
    let opts = FormatOptions::default().with_null("NULL");
    let headers: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let limit = max_rows.unwrap_or(usize::MAX);
    'outer: for b in batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<_, _>>()?;
        for r in 0..b.num_rows() {
            if rows.len() >= limit {
                break 'outer;
            }
            rows.push(fmts.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    let mut table = comfy_table::Table::new();
    table.load_preset("||--+-++|    ++++++");
    table.set_header(headers);
    for r in rows.iter() {
        table.add_row(r.clone());
    }
    writeln!(out, "{table}")?;
    if total > rows.len() {
        writeln!(
            out,
            "({} of {total} rows shown; use --format csv or LIMIT for all)",
            rows.len()
        )?;
    }
    Ok(())
}

/// A boxed error type for output paths.
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}
