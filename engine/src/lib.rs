//! The Cuve engine, organised by the path a statement takes:
//!
//! - [`session`]: [`Engine`] (warehouse, catalog, runtime) and [`Session`] (one user's
//!   connection); every front end runs statements through `Session::execute_stream`.
//! - [`parse`]: one tokenizer (sqlparser's) splits scripts and finds placeholders; parameters
//!   are bound as values ([`parse::params`]); Hive-flavoured statements are recognised, the
//!   rest goes to DataFusion's SQL planner.
//! - [`ddl`]: databases, table DDL, partitions, SHOW and DESCRIBE, Hive INSERT rewriting.
//! - [`access`] and [`catalog_view`]: what a session may see; unseen objects do not exist for it.
//! - [`exec`]: admission (concurrency slots, byte quotas), time limit, usage and audit.
//! - [`planner`]: physical rules (co-located joins and aggregations on the bucket key).
//! - [`table`]: the table provider, layout, partition/bucket pruning, bucket hash, writer and
//!   the one commit protocol every writer uses ([`table::commit`]).
//! - [`ingest`]: raw lines into the table layout, exactly once (ledger + the same commit).
//! - [`flight`]: the Arrow Flight SQL service (`cuve serve`): auth interceptor, stateless
//!   prepared handles, a thin adapter over sessions.
//! - [`intake`]: log lines over HTTP (NDJSON and the Elasticsearch bulk API), acknowledged
//!   once in a write-ahead log, flushed through the same commit with the ledger.
//! - [`lifecycle`]: keeping data: compaction, retention, expiry of sensitive columns, DELETE,
//!   each through the same commit.
//! - [`storage`]: local directories and S3-compatible buckets (object stores per bucket).
//! - [`remote`]: handing a session's physical plans to a distributed engine (Ballista).
//! - [`faults`]: fault injection for tests of the panic and error paths (off by default).
//! - [`stats`]: table statistics and schema inference from storage.
//! - [`types`]: Hive column types and Arrow types.
//! - [`threads`]: blocking work on async threads; whether a process still runs.

pub mod access;
pub mod catalog_view;
pub mod ddl;
pub mod error;
pub mod exec;
pub mod faults;
pub mod flight;
pub mod ingest;
pub mod intake;
pub mod lifecycle;
pub mod parse;
pub mod planner;
pub mod remote;
pub mod session;
pub mod stats;
pub mod storage;
pub mod table;
pub mod threads;
pub mod types;

pub use access::{AccessView, Privilege};
pub use error::{EngineError, ErrorKind, Result};
pub use session::{Engine, QueryOutput, Session, StatementOutput};

/// Stack size of the threads statements run on (front ends build their runtimes with it).
/// Planning and evaluating an expression recurses once per level of nesting; with the limits of
/// [`parse::limits`] this leaves a wide margin, and only the pages a thread touches are ever
/// backed by memory.
pub const THREAD_STACK: usize = 256 << 20;

/// Name of the one DataFusion catalog; databases are its schemas.
pub const CATALOG_NAME: &str = "cuve";
