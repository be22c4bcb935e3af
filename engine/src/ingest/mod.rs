//! Ingest: raw log lines (JSON lines, CSV, TSV) into a table's partitioned, bucketed layout,
//! exactly once.
//!
//! - [`source`]: which sources the inputs name (`<sender_ip>/<file>` layout, stdin).
//! - [`decode`]: one line → one typed row (unique key, `dt` from the log time, `raw`).
//! - [`json`]: a JSON line as borrowed (key, value) pairs.
//! - [`target`]: the table written to (schema, time zone, decoder, layout).
//! - [`run`]: the run. Each source is read from its committed prefix (the ledger in the
//!   catalog); every `batch_lines` lines the rows are staged as one file per (partition,
//!   bucket) and committed through [`crate::table::commit`] together with the ledger advance,
//!   in one catalog transaction. A crash before the commit leaves the ledger where it was (the
//!   next run reads those lines again; staged files of dead processes are removed); a crash
//!   after it is finished by the next process: nothing lost, nothing twice.

pub mod decode;
pub mod json;
pub mod run;
pub mod source;
pub mod target;

pub use decode::{InputFormat, TimeUnit};
pub use run::{IngestOptions, IngestSummary, ingest};
pub use source::Source;
pub use target::Target;
