//! The Cuve catalog: what exists (databases, tables, columns, partitions) and who may use it
//! (users, tickets, grants, quotas, usage, audit). Plain types and one SQLite store; nothing here
//! knows about query execution.
//!
//! - [`names`]: canonical names (the only form ever compared).
//! - [`model`]: records (`TableDef`, `BucketSpec`, `PartitionDef`, ...).
//! - [`store`]: the SQLite [`Catalog`] with migrations and one transaction per change.
//! - [`ledger`]: committed progress of each ingest source.
//! - [`commits`]: the commit journal of table files, snapshots for readers, tombstones.
//! - [`tickets`]: users, tickets, grants, quotas, usage and audit (written in the background
//!   for servers: `recorder`).
//! - [`archive`]: the SQL archive (answered requests by issue number, versioned).
//! - [`checks`]: what was verified of foreign files' bucket and sort layout.

pub mod archive;
pub mod checks;
pub mod commits;
pub mod error;
pub mod ledger;
pub mod model;
pub mod names;
mod recorder;
pub mod store;
pub mod tickets;

pub use archive::ArchiveEntry;
pub use checks::FileCheck;
pub use commits::{FileCommit, FilesSnapshot, OBJECT_ID_MASK, Tombstone};
pub use error::{CatalogError, Result};
pub use ledger::{RangeAdvance, SourceAdvance, SourceProgress};
pub use model::*;
pub use store::Catalog;
pub use tickets::{AuditEntry, Grant, Priv, Quota, Role, Ticket, Usage, User};

/// Migrations added by later modules, run after [`store`]'s own.
pub(crate) const MIGRATIONS_EXTRA: &[&str] = &[
    ledger::MIGRATION,
    tickets::MIGRATION,
    archive::MIGRATION,
    checks::MIGRATION,
    commits::MIGRATION,
    ledger::HEAD_MIGRATION,
    tickets::ISSUER_MIGRATION,
    tickets::EPOCH_MIGRATION,
    commits::TRACKED_MIGRATION,
    ledger::RANGES_MIGRATION,
    commits::LIFECYCLE_MIGRATION,
];
