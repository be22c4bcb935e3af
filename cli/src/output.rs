//! Result formats: `table` (aligned by display width, so Korean text lines up), `csv` (one
//! header row), `json` (one array per statement) and `ndjson` (one object per line). In `table`
//! and `csv`, arrays, maps and structs print as JSON text, as Hive's CLI prints them
//! (`["a","b"]`, `{"a":"1"}`); `json` and `ndjson` nest them.

use std::io::Write;

use clap::ValueEnum;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
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

/// The summary after a result on stderr: row count, time, what each scan read and, for a
/// query run on a cluster, what ran where.
pub async fn print_summary(
    schema: &SchemaRef,
    rows: usize,
    scans: &[cuve_engine::table::ScanReport],
    job: Option<cuve_engine::remote::JobReport>,
    started: std::time::Instant,
) {
    if schema.fields().is_empty() {
        return;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let job = match job {
        Some(report) => report().await,
        None => None,
    };
    eprintln!("{rows} rows in {elapsed:.3}s");
    for s in scans {
        eprintln!("  scanned {s}");
    }
    if let Some(line) = job {
        eprintln!("  on the cluster: {line}");
    }
}

/// Writes a result as its batches arrive: `csv`, `json` and `ndjson` hold one batch at a
/// time; `table` needs every shown row to align columns, so it keeps at most `max_rows` rows
/// and then stops reading (the rest of the query is not run).
pub struct ResultWriter<W: Write> {
    out: W,
    format: Format,
    schema: SchemaRef,
    max_rows: Option<usize>,
    kept: Vec<RecordBatch>,
    kept_rows: usize,
    more: bool,
    rows: usize,
    csv_started: bool,
    json: Option<ArrayWriter<Vec<u8>>>,
}

impl<W: Write> ResultWriter<W> {
    pub fn new(out: W, format: Format, schema: SchemaRef, max_rows: Option<usize>) -> Self {
        ResultWriter {
            out,
            format,
            schema,
            max_rows,
            kept: vec![],
            kept_rows: 0,
            more: false,
            rows: 0,
            csv_started: false,
            json: None,
        }
    }

    /// Rows written (or kept) so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Writes one batch; `false` when no more rows are wanted.
    pub fn write(&mut self, batch: &RecordBatch) -> anyhow_like::Result<bool> {
        if self.schema.fields().is_empty() {
            return Ok(true);
        }
        match self.format {
            Format::Table => {
                let limit = self.max_rows.unwrap_or(usize::MAX);
                let room = limit - self.kept_rows;
                if batch.num_rows() > room {
                    self.more = true;
                }
                let take = batch.num_rows().min(room);
                if take > 0 {
                    self.kept.push(nested_as_json(&batch.slice(0, take))?);
                    self.kept_rows += take;
                }
                self.rows += take;
                return Ok(self.kept_rows < limit);
            }
            Format::Csv => {
                // The header goes with the first batch.
                let mut w = WriterBuilder::new()
                    .with_header(!self.csv_started)
                    .build(&mut self.out);
                w.write(&nested_as_json(batch)?)?;
                self.csv_started = true;
            }
            Format::Json => {
                let w = self
                    .json
                    .get_or_insert_with(|| ArrayWriter::new(Vec::new()));
                w.write(batch)?;
                self.out.write_all(w.get_ref())?;
                w.get_mut().clear();
            }
            Format::Ndjson => {
                let mut buf = Vec::new();
                {
                    let mut w = LineDelimitedWriter::new(&mut buf);
                    w.write(batch)?;
                    w.finish()?;
                }
                self.out.write_all(&buf)?;
            }
        }
        self.rows += batch.num_rows();
        Ok(true)
    }

    /// Ends the result (the table, the CSV header of an empty result, the JSON array).
    pub fn finish(mut self) -> anyhow_like::Result<()> {
        if self.schema.fields().is_empty() {
            return Ok(());
        }
        match self.format {
            Format::Table => {
                let kept = std::mem::take(&mut self.kept);
                write_table(&mut self.out, &flat_schema(&self.schema), &kept, None)?;
                if self.more {
                    writeln!(
                        self.out,
                        "(first {} rows shown; \\maxrows 0, --format csv or LIMIT for all)",
                        self.kept_rows
                    )?;
                }
            }
            Format::Csv => {
                if !self.csv_started {
                    let mut w = WriterBuilder::new().with_header(true).build(&mut self.out);
                    w.write(&RecordBatch::new_empty(flat_schema(&self.schema)))?;
                }
            }
            Format::Json => match self.json.take() {
                Some(mut w) => {
                    w.finish()?;
                    self.out.write_all(w.get_ref())?;
                    writeln!(self.out)?;
                }
                None => writeln!(self.out, "[]")?,
            },
            Format::Ndjson => {}
        }
        self.out.flush()?;
        Ok(())
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
        Format::Table => {
            let flat: Vec<RecordBatch> = batches
                .iter()
                .map(nested_as_json)
                .collect::<Result<_, _>>()?;
            write_table(out, &flat_schema(schema), &flat, max_rows)?
        }
        Format::Csv => {
            let mut w = WriterBuilder::new().with_header(true).build(&mut *out);
            if batches.is_empty() {
                let empty = RecordBatch::new_empty(flat_schema(schema));
                w.write(&empty)?;
            }
            for b in batches {
                w.write(&nested_as_json(b)?)?;
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

fn is_nested(t: &DataType) -> bool {
    matches!(
        t,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(_, _)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
            | DataType::Map(_, _)
            | DataType::Struct(_)
            | DataType::Union(_, _)
    )
}

/// `schema` with nested columns as strings.
fn flat_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                if is_nested(f.data_type()) {
                    Field::new(f.name(), DataType::Utf8, true)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect::<Vec<_>>(),
    ))
}

/// The batch with every nested column as JSON text (NULL stays NULL).
pub fn nested_as_json(batch: &RecordBatch) -> anyhow_like::Result<RecordBatch> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| is_nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .map(|c| {
            if is_nested(c.data_type()) {
                json_text(c)
            } else {
                Ok(c.clone())
            }
        })
        .collect::<anyhow_like::Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(flat_schema(&batch.schema()), columns)?)
}

/// JSON text of each value of a nested column, through Arrow's JSON writer; a value it cannot
/// write as JSON (a map with non-string keys) is shown as Arrow displays it.
fn json_text(column: &ArrayRef) -> anyhow_like::Result<ArrayRef> {
    let one = RecordBatch::try_from_iter(vec![("v", column.clone())])?;
    let mut buf = Vec::new();
    let written = {
        let mut w = LineDelimitedWriter::new(&mut buf);
        w.write(&one).and_then(|_| w.finish())
    };
    if written.is_err() {
        let fmt = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())?;
        let values: StringArray = (0..column.len())
            .map(|i| (!column.is_null(i)).then(|| fmt.value(i).to_string()))
            .collect();
        return Ok(Arc::new(values));
    }
    // Each line is `{"v":<value>}` (`{}` for NULL): the value's text is cut out as Arrow wrote
    // it, keeping key order and decimal digits.
    let text = String::from_utf8(buf)?;
    let values: StringArray = text
        .lines()
        .map(|line| {
            line.strip_prefix("{\"v\":")
                .and_then(|v| v.strip_suffix('}'))
                .filter(|v| *v != "null")
                .map(str::to_string)
        })
        .collect();
    Ok(Arc::new(values))
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

/// Why streaming a result stopped.
pub enum StreamError {
    /// The statement failed while running.
    Engine(cuve_engine::EngineError),
    /// The output could not be written.
    Write(String),
}

/// Streams a statement's result into `out` as batches arrive; returns the rows written.
pub async fn stream_result<W: Write>(
    out: W,
    format: Format,
    max_rows: Option<usize>,
    result: cuve_engine::StatementOutput,
) -> Result<usize, StreamError> {
    use futures::StreamExt;
    let mut w = ResultWriter::new(out, format, result.schema.clone(), max_rows);
    let mut stream = result.stream;
    while let Some(batch) = stream.next().await {
        let batch =
            batch.map_err(|e| StreamError::Engine(cuve_engine::EngineError::from_datafusion(e)))?;
        if !w
            .write(&batch)
            .map_err(|e| StreamError::Write(e.to_string()))?
        {
            break;
        }
    }
    let rows = w.rows();
    w.finish().map_err(|e| StreamError::Write(e.to_string()))?;
    Ok(rows)
}

/// A boxed error type for output paths.
#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, ListBuilder, StringBuilder};

    #[test]
    fn nested_values_print_as_json_text() {
        let mut b = ListBuilder::new(StringBuilder::new());
        b.values().append_value("a");
        b.values().append_value("한\"b");
        b.append(true);
        b.append(false);
        let list: ArrayRef = Arc::new(b.finish());
        let batch = RecordBatch::try_from_iter(vec![("l", list)]).unwrap();
        let flat = nested_as_json(&batch).unwrap();
        let col = flat
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(col.value(0), r#"["a","한\"b"]"#);
        assert!(col.is_null(1));
        let mut out = Vec::new();
        write_result(&mut out, Format::Csv, &batch.schema(), &[batch], None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            // a lone empty field is quoted so the row is not blank
            "l\n\"[\"\"a\"\",\"\"한\\\"\"b\"\"]\"\n\"\"\n"
        );
    }
}

pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}
