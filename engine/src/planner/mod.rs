//! Physical planning rules of Cuve. [`bucket_join`]: co-located joins and aggregations on the
//! bucket key, run bucket by bucket with no repartition. [`partition_agg`]: aggregations
//! grouped by a partition column, run in one phase per share of partition values.

pub mod bucket_join;
pub mod partition_agg;

pub use bucket_join::{BucketJoinRule, BucketParallelExec};
pub use partition_agg::{PartitionAggregateRule, PartitionParallelExec};
