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
