//! Physical planning rules of Cuve. [`bucket_join`]: co-located joins and aggregations on the
//! bucket key, run bucket by bucket with no repartition. [`partition_agg`]: aggregations
//! grouped by a partition column, run in one phase per share of partition values.
//! [`sliced`]: the co-located nodes reshaped for a distributed engine (scans as children, one
//! file group per partition). [`date64_guard`]: an analyzer rule that refuses constants
//! DataFusion would panic on.

pub mod bucket_join;
pub mod date64_guard;
pub mod partition_agg;
pub mod sliced;

pub use bucket_join::{BucketJoinRule, BucketParallelExec};
pub use date64_guard::Date64Guard;
pub use partition_agg::{PartitionAggregateRule, PartitionParallelExec};
pub use sliced::{SlicedExec, for_cluster};
