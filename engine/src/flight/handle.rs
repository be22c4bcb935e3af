//! Stateless prepared statements, as InfluxDB 3's `flightsql` does it: the handle a client
//! holds *is* the statement (its SQL, `?` numbered `$1, $2, ...`) plus, once bound, its
//! parameter rows as Arrow IPC. Binding returns a new handle (Flight SQL's
//! `DoPutPreparedStatementResult`); the server keeps nothing between calls, so closed or
//! abandoned statements cost nothing and no client can disturb another's statements.
//!
//! A handle is only data the caller could have sent as SQL itself: every call that runs it is
//! authenticated and access-checked with the caller's own ticket.

use base64::Engine as _;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::ScalarValue;
use serde::{Deserialize, Serialize};
use tonic::Status;

const PREFIX: &[u8] = b"cuve.ps1:";

/// What a prepared-statement handle carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PreparedHandle {
    /// The statement, placeholders numbered.
    pub sql: String,
    /// Bound parameter rows (Arrow IPC stream, base64), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<String>,
}

impl PreparedHandle {
    pub fn new(sql: String) -> Self {
        PreparedHandle { sql, params: None }
    }

    pub fn encode(&self) -> Bytes {
        let mut out = PREFIX.to_vec();
        out.extend(serde_json::to_vec(self).unwrap_or_default());
        out.into()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Status> {
        let bad = || Status::invalid_argument("malformed prepared statement handle");
        let body = bytes.strip_prefix(PREFIX).ok_or_else(bad)?;
        serde_json::from_slice(body).map_err(|_| bad())
    }

    /// The handle with `batches` as its parameter rows.
    pub fn bind(&self, batches: &[RecordBatch]) -> Result<Self, Status> {
        let Some(first) = batches.first() else {
            return Ok(PreparedHandle {
                sql: self.sql.clone(),
                params: None,
            });
        };
        let bad = |e: datafusion::arrow::error::ArrowError| {
            Status::invalid_argument(format!("bad parameters: {e}"))
        };
        let mut buf = Vec::new();
        {
            let mut w = StreamWriter::try_new(&mut buf, &first.schema()).map_err(bad)?;
            for b in batches {
                w.write(b).map_err(bad)?;
            }
            w.finish().map_err(bad)?;
        }
        Ok(PreparedHandle {
            sql: self.sql.clone(),
            params: Some(base64::engine::general_purpose::STANDARD.encode(buf)),
        })
    }

    /// The bound parameter rows, one `Vec` of values per row (`None`: nothing bound).
    pub fn rows(&self) -> Result<Option<Vec<Vec<ScalarValue>>>, Status> {
        let Some(b64) = &self.params else {
            return Ok(None);
        };
        let bad = |m: String| Status::invalid_argument(format!("bad parameters: {m}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| bad(e.to_string()))?;
        let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|e| bad(e.to_string()))?;
        let mut batches = Vec::new();
        for b in reader {
            batches.push(b.map_err(|e| bad(e.to_string()))?);
        }
        rows(&batches).map(Some)
    }
}

/// Parameter batches as rows of scalars. A value Arrow cannot turn into a scalar is a clear
/// error for this call only (conversion runs under `catch_unwind`: no input reaches a panic
/// that could take other calls with it).
pub fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<ScalarValue>>, Status> {
    let convert = || -> Result<Vec<Vec<ScalarValue>>, Status> {
        let mut out = Vec::new();
        for b in batches {
            for r in 0..b.num_rows() {
                out.push(
                    b.columns()
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            ScalarValue::try_from_array(c, r)
                                .map_err(|e| e.to_string())
                                .and_then(|v| check_range(&v).map(|()| v))
                                .map_err(|e| {
                                    Status::invalid_argument(format!(
                                        "parameter {} of row {}: {e}",
                                        i + 1,
                                        out.len() + 1
                                    ))
                                })
                        })
                        .collect::<Result<_, _>>()?,
                );
            }
        }
        Ok(out)
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(convert)).unwrap_or_else(|p| {
        Err(Status::invalid_argument(format!(
            "parameter values could not be read: {}",
            crate::error::panic_message(p.as_ref())
        )))
    })
}

/// Values Arrow can hold but no date can be (`cuve_udf::guards::undisplayable_date64`).
fn check_range(v: &ScalarValue) -> Result<(), String> {
    if let Some(ms) = cuve_udf::guards::undisplayable_date64(v) {
        return Err(format!(
            "Date64 value {ms} ms is outside the range of dates; send a date between years -262143 and 262142"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn handles_round_trip_with_parameter_rows() {
        let h = PreparedHandle::new("SELECT $1, $2".into());
        assert_eq!(PreparedHandle::decode(&h.encode()).unwrap(), h);
        assert_eq!(h.rows().unwrap(), None);
        let batch = RecordBatch::try_from_iter(vec![
            ("a", Arc::new(Int64Array::from(vec![1, 2])) as _),
            ("b", Arc::new(StringArray::from(vec!["x'y", "날씨"])) as _),
        ])
        .unwrap();
        let bound = PreparedHandle::decode(&h.bind(&[batch]).unwrap().encode()).unwrap();
        let rows = bound.rows().unwrap().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1][1], ScalarValue::from("날씨"));
        assert!(PreparedHandle::decode(b"ps_0001").is_err());
    }

    #[test]
    fn a_date64_no_date_can_hold_is_refused_not_printed() {
        use datafusion::arrow::array::Date64Array;
        let batch = RecordBatch::try_from_iter(vec![(
            "d",
            Arc::new(Date64Array::from(vec![0, i64::MIN])) as _,
        )])
        .unwrap();
        let err = rows(&[batch]).unwrap_err();
        assert!(err.message().contains("parameter 1 of row 2"), "{err}");
        assert!(
            err.message().contains("outside the range of dates"),
            "{err}"
        );
    }
}
