//! Physical planning rules of Cuve. [`bucket_join`]: co-located joins and aggregations on the
//! bucket key, run bucket by bucket with no repartition.

pub mod bucket_join;

pub use bucket_join::{BucketFile, BucketJoinRule, BucketParallelExec};
