//! Cuve on Apache DataFusion Ballista 55: the gateway submits physical plans (Cuve stays the
//! only planner and the only holder of tickets); scheduler and executors run them with Cuve's
//! functions and object stores.
//!
//! - [`codec`]: the plan codec of gateway, scheduler and executors (Cuve's nodes, then Ballista's).
//! - [`remote`]: [`BallistaRemote`], the engine's `Remote` over a Ballista scheduler.
//! - [`jobs`]: what ran where (tasks per executor, bytes shuffled), served by the scheduler.
//! - [`process`]: `cuve scheduler` and `cuve executor`.
//! - [`poll`]: the scheduler answers idle executors' polls as soon as work appears.
//! - [`standalone`]: a scheduler and executors in this process, on loopback (tests).
//! - [`secret`]: `CUVE_CLUSTER_SECRET`, the token the cluster's processes show each other.
//! - [`status`]: `cuve cluster status`, from the scheduler's REST API.

pub mod codec;
pub mod jobs;
pub mod poll;
pub mod process;
pub mod remote;
pub mod secret;
pub mod standalone;
pub mod status;

pub use remote::BallistaRemote;
