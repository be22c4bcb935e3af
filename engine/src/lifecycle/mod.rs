//! Keeping data: compaction of small files, retention of partitions, expiry of sensitive
//! columns, and `DELETE` of rows. Each is a rewrite or removal of files through the one commit
//! protocol (`table::commit`), so each is idempotent and safe under `kill -9` (a rerun finishes
//! it), and ingest and HTTP intake run alongside (their ledger is not touched).
//!
//! - [`clock`]: the "now" of expiry (`CUVE_NOW` fakes it in tests).
//! - [`policy`]: the table properties (`retention.days`, `sensitive.retention.days`,
//!   `compact.target.bytes`) and which partitions they expire.
//! - [`rewrite`]: reading a table's current files and committing their replacements.
//! - [`source`]: one Parquet file, footer first; the row groups a predicate can match.
//! - [`compact`], [`expire`], [`delete`]: the actions.
//! - [`maintain`]: every action a table is due, run or listed (`cuve table maintain`, the
//!   background of `cuve serve`, `ALTER TABLE ... COMPACT`).

pub mod clock;
pub mod compact;
pub mod delete;
pub mod expire;
pub mod maintain;
pub mod policy;
pub mod rewrite;
pub mod source;
