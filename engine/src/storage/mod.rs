//! Where table files live: a local directory or an S3-compatible bucket.
//!
//! - [`location`]: telling an object-store URL (`s3://bucket/key`) from a local path, and the
//!   store URL and key of each.
//! - [`registry`]: the process's object stores, one per bucket, made on first use from the AWS
//!   variables (and a named profile); DataFusion's scans find them through the same registry.
//! - [`dirs`]: directory operations (exists, create, remove, subdirectories) over both.
//! - [`named`]: the store wrapper whose errors name `s3://bucket/key` and what to check.
//! - [`objects`]: the few operations the engine needs (create-only put, list, delete), run on
//!   the storage runtime so any caller, async or not, may use them; errors name bucket and key.

pub mod dirs;
pub mod location;
pub mod named;
pub mod objects;
pub mod registry;

pub use location::{ObjectLocation, is_object};
pub use registry::StoreRegistry;
