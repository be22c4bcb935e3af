//! Ingest: raw log lines (JSON lines, CSV, TSV) into a table's partitioned, bucketed layout,
//! exactly once.
//!
//! - [`source`]: which sources the inputs name (`<sender_ip>/<file>` layout, stdin).
//! - [`decode`]: one line → one typed row (unique key, `dt` from the log time, `raw`).
//! - [`json`]: a JSON line as borrowed (key, value) pairs.
//! - [`run`]: the commit protocol. Each source is read from its committed prefix (the ledger in
//!   the catalog) in chunks of deterministic line ranges; a chunk's rows are written to files
//!   named by (source, first line, bucket), published by atomic rename, and the ledger advance is
//!   committed with the partitions. A crash before the commit is repaired by the next run, which
//!   rewrites the same file names with the same (or more) rows: nothing lost, nothing twice.

pub mod decode;
pub mod json;
pub mod run;
pub mod source;

pub use decode::{InputFormat, TimeUnit};
pub use run::{IngestOptions, IngestSummary, ingest};
pub use source::Source;
