//! `cuve scheduler` and `cuve executor`: Ballista's scheduler and executor processes with
//! Cuve's functions and object stores. They bind loopback by default and hold no catalog and no
//! tickets; the cluster network must be private (the scheduler has no authentication).

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use cuve_engine::remote::JobOptions;
use cuve_engine::{EngineError, Result};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};

/// How often executors report to the scheduler, and after how long without a report the
/// scheduler gives up on one.
const HEARTBEAT_SECS: u64 = 3;
pub const EXECUTOR_TIMEOUT_SECS: u64 = 15;

/// Executors ask the scheduler for tasks when they have a free slot (Ballista's pull-staged
/// policy), on both sides. With push-staged scheduling the scheduler counts free slots itself,
/// and a task of a stage rolled back after an executor is lost never gives its slot back
/// (Ballista 55 refunds the slot only for tasks of a resolved stage): with one-slot executors
/// the job then waits forever. Each poll also serves as the executor's heartbeat.
const SCHEDULING: TaskSchedulingPolicy = TaskSchedulingPolicy::PullStaged;

fn failed(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(format!("{what}: {e}"))
}

/// Runs a scheduler on `addr` until the process ends; `ready` is called once it listens.
pub async fn run_scheduler(addr: &str, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| failed(&format!("cannot listen on {addr}"), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| failed("the scheduler's address", e))?;
    let state = cuve_engine::remote::worker_state()?;
    let session_config = state.config().clone().upgrade_for_ballista();
    let config_producer = {
        let c = session_config.clone();
        Arc::new(move || c.clone())
    };
    // A job's session: Cuve's functions and stores with the settings the gateway sent (its
    // DataFusion and Ballista options and `cuve.*`), which the tasks then carry to the executors.
    let session_builder = {
        let state = state.clone();
        Arc::new(move |config: SessionConfig| {
            Ok(SessionStateBuilder::new_from_existing(state.clone())
                .with_config(config)
                .build())
        })
    };
    let endpoint = local.to_string();
    let cluster = BallistaCluster::new_memory(endpoint, session_builder, config_producer);
    let config = SchedulerConfig {
        bind_host: local.ip().to_string(),
        external_host: local.ip().to_string(),
        bind_port: local.port(),
        // An executor that stops heart-beating for 15 s is dead: its tasks run again elsewhere
        // (Ballista's default waits minutes).
        executor_timeout_seconds: EXECUTOR_TIMEOUT_SECS,
        expire_dead_executor_interval_seconds: 5,
        scheduling_policy: SCHEDULING,
        ..Default::default()
    };
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
            .await
            .map_err(|e| failed("starting the scheduler", e))?;
    ready(local);
    start_grpc_service_with_listener(listener, scheduler)
        .await
        .map_err(|e| failed("the scheduler stopped", e))
}

/// What one task slot of this machine may use: 70% of its memory (as Ballista's default pool)
/// split over the slots; `None` when the machine's memory cannot be read.
fn slot_memory(slots: usize) -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((kib as f64 * 1024.0 * 0.7) as usize / slots)
}

/// Runs an executor on `addr` (its Arrow Flight endpoint, where other executors fetch shuffle
/// data) for the scheduler at `scheduler`, with shuffle files under `work_dir` and `cores`
/// task slots, until the process ends.
pub async fn run_executor(
    scheduler: &str,
    addr: &str,
    work_dir: &std::path::Path,
    cores: usize,
) -> Result<()> {
    let parse = |a: &str, what: &str| -> Result<SocketAddr> {
        use std::net::ToSocketAddrs;
        a.to_socket_addrs()
            .ok()
            .and_then(|mut it| it.next())
            .ok_or_else(|| EngineError::invalid(format!("{what} {a:?} is not host:port")))
    };
    let sched = parse(scheduler, "--scheduler")?;
    let own = parse(addr, "--addr")?;
    std::fs::create_dir_all(work_dir).map_err(|e| EngineError::io(work_dir, e))?;
    // The push-scheduling gRPC port is unused (executors ask the scheduler for tasks, see
    // SCHEDULING), but it must be set: a free one on the same host.
    let grpc_port = std::net::TcpListener::bind((own.ip(), 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| failed("a free port for the executor", e))?;
    let state = cuve_engine::remote::worker_state()?;
    let session_config = state.config().clone().upgrade_for_ballista();
    let runtime = state.runtime_env().clone();
    let share = slot_memory(cores.max(1));
    let config = ExecutorProcessConfig {
        bind_host: own.ip().to_string(),
        external_host: Some(own.ip().to_string()),
        port: own.port(),
        grpc_port,
        scheduler_host: sched.ip().to_string(),
        scheduler_port: sched.port(),
        vcores: cores.max(1),
        executor_heartbeat_interval_seconds: HEARTBEAT_SECS,
        task_scheduling_policy: SCHEDULING,
        work_dir: Some(work_dir.display().to_string()),
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&state))),
        // Each query's tasks on this executor share one pool (Ballista caches the runtime per
        // session, and every query is a session of its own): the executor's share per slot, or
        // the ticket's memory limit if smaller. Cuve sizes it, so Ballista's own is off.
        memory_pool_size: Some(0),
        override_runtime_producer: Some(Arc::new(move |config: &SessionConfig| {
            let ticket = config
                .options()
                .extensions
                .get::<JobOptions>()
                .map(|o| o.memory_limit)
                .filter(|&n| n > 0);
            let limit = match (ticket, share) {
                (Some(t), Some(s)) => Some(t.min(s)),
                (t, s) => t.or(s),
            };
            log::debug!("a query's memory pool on this executor: {limit:?} bytes");
            match limit {
                Some(bytes) => RuntimeEnvBuilder::from_runtime_env(&runtime)
                    .with_memory_pool(Arc::new(FairSpillPool::new(bytes)))
                    .build_arc(),
                None => Ok(runtime.clone()),
            }
        })),
        override_config_producer: Some(Arc::new(move || session_config.clone())),
        ..Default::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| failed("the executor stopped", e))
}
