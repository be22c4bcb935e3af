//! Engine integration tests: SQL behaviour as sqllogictest files (`tests/slt/*.slt`), plus
//! Rust tests of what slt cannot express.

mod buckets;
mod commits;
mod flight;
mod foreign;
mod functions;
mod fuzz;
mod ingest;
mod lifecycle;
mod quota;
mod slt;
