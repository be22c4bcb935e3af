//! `cuve scheduler` and `cuve executor`: Ballista's scheduler and executor processes with
//! Cuve's functions and object stores. They hold no catalog and no tickets, and admit only
//! requests carrying the cluster's secret (`CUVE_CLUSTER_SECRET`, see [`crate::secret`]); without
//! one they may listen only on loopback. The cluster network must be private.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::create_scheduler;
use ballista_scheduler::scheduler_server::SchedulerServer;
use cuve_engine::remote::JobOptions;
use cuve_engine::{EngineError, Result};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};

use crate::secret::{self, ClusterSecret};

/// How often an executor sends a heart-beat (Ballista uses it under push-staged scheduling;
/// under pull-staged each poll for work is one: every 50 ms when idle, at least every 5 s when
/// busy), and after how long without one the scheduler gives up on an executor.
const HEARTBEAT_SECS: u64 = 3;
pub const EXECUTOR_TIMEOUT_SECS: u64 = 15;

/// Executors ask the scheduler for tasks when they have a free slot (Ballista's pull-staged
/// policy), on both sides. With push-staged scheduling the scheduler counts free slots itself,
/// and a task of a stage rolled back after an executor is lost never gives its slot back
/// (Ballista 55 refunds the slot only for tasks of a resolved stage): with one-slot executors
/// the job then waits forever. Each poll also serves as the executor's heart-beat.
const SCHEDULING: TaskSchedulingPolicy = TaskSchedulingPolicy::PullStaged;

// Pull-staged is also what keeps the secret whole: under push-staged scheduling each executor
// serves a gRPC API of its own (the scheduler launches tasks on it), which the cluster-secret
// check does not cover. Changing the policy needs that API behind the check first.
const _: () = assert!(matches!(SCHEDULING, TaskSchedulingPolicy::PullStaged));

fn failed(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(format!("{what}: {e}"))
}

/// The address `a` (`host:port`) of the flag `what`.
fn socket_addr(a: &str, what: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    a.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| EngineError::invalid(format!("{what} {a:?} is not host:port")))
}

/// Runs a scheduler on `addr` until the process ends; `ready` is called once it listens.
pub async fn run_scheduler(addr: &str, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let secret = ClusterSecret::from_env()?;
    secret::check_bind(&secret, &socket_addr(addr, "--addr")?, "scheduler")?;
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
        let runtime = state.runtime_env().clone();
        Arc::new(move |config: SessionConfig| {
            cuve_engine::remote::worker_state_with(config, runtime.clone())
                .map_err(|e| datafusion::error::DataFusionError::Plan(e.user_message()))
        })
    };
    // Idle executors' polls wait for work and are answered when it appears (crate::poll).
    let (work, on_work) = crate::poll::work_signal();
    let endpoint = local.to_string();
    let cluster = BallistaCluster::new_memory(endpoint, session_builder, config_producer);
    let finished = cluster.job_state();
    let config = SchedulerConfig {
        bind_host: local.ip().to_string(),
        external_host: local.ip().to_string(),
        bind_port: local.port(),
        // An executor that stops heart-beating for 15 s is dead: its tasks run again elsewhere
        // (Ballista's default waits minutes).
        executor_timeout_seconds: EXECUTOR_TIMEOUT_SECS,
        expire_dead_executor_interval_seconds: 5,
        scheduling_policy: SCHEDULING,
        override_create_grpc_client_endpoint: secret.as_ref().map(|s| s.endpoint_override()),
        override_physical_codec: Some(crate::codec::CuveCodec::shared()),
        on_work_available: Some(on_work),
        ..Default::default()
    };
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
            .await
            .map_err(|e| failed("starting the scheduler", e))?;
    ready(local);
    serve_scheduler(listener, scheduler, finished, secret, work)
        .await
        .map_err(|e| failed("the scheduler stopped", e))
}

/// Serves the scheduler's gRPC service and REST API on `listener`, as Ballista's
/// `start_grpc_service_with_listener` does, behind the cluster-secret check.
async fn serve_scheduler(
    listener: tokio::net::TcpListener,
    scheduler: SchedulerServer<LogicalPlanNode, PhysicalPlanNode>,
    finished: Arc<dyn ballista_scheduler::cluster::JobState>,
    secret: Option<ClusterSecret>,
    work: Arc<tokio::sync::Notify>,
) -> std::io::Result<()> {
    use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
    let config = scheduler.state.config.clone();
    let grpc = SchedulerGrpcServer::new(crate::poll::LongPoll::new(scheduler.clone(), work))
        .max_encoding_message_size(config.grpc_server_max_encoding_message_size as usize)
        .max_decoding_message_size(config.grpc_server_max_decoding_message_size as usize);
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(grpc);
    let router = ballista_scheduler::api::get_routes(Arc::new(scheduler.clone()))
        .merge(crate::jobs::routes(scheduler, finished))
        .merge(routes.routes().into_axum_router())
        // Behind the check: an executor asks it to learn whether the scheduler admits it.
        .route("/cuve/ping", axum::routing::get(|| async { "ok" }));
    let router = match secret {
        Some(secret) => router.layer(axum::middleware::from_fn_with_state(secret, admit)),
        None => router,
    };
    // Open to all (load balancers, probes): it says only that the scheduler is up.
    let router = router.route("/healthz", axum::routing::get(|| async { "ok" }));
    // TCP_NODELAY on every connection: without it a small answer (a task for a held poll, a
    // job's status) can wait for the peer's delayed ACK, ~40 ms (measured: one task of each
    // job's first stage started 44 ms after the scheduler handed it out). Ballista 55's own
    // `start_grpc_service_with_listener` does not set it either.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            log::debug!("TCP_NODELAY on a scheduler connection: {e}");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// Lets a request through to the scheduler only with the cluster's token.
async fn admit(
    axum::extract::State(secret): axum::extract::State<ClusterSecret>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let headers = request.headers();
    let agent = headers.get(http::header::USER_AGENT).map(|v| v.as_bytes());
    if secret.admits(agent) {
        return next.run(request).await;
    }
    let grpc = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let message = secret::refusal("scheduler");
    secret::log_refusal(&message);
    if grpc {
        tonic::Status::unauthenticated(message).into_http()
    } else {
        (http::StatusCode::UNAUTHORIZED, message).into_response()
    }
}

/// The executor's Arrow Flight endpoint (shuffle and result fetches), as Ballista's built-in
/// one, admitting only requests with the cluster's token.
fn flight_service(
    secret: ClusterSecret,
    max_decoding: usize,
    max_encoding: usize,
) -> Arc<ballista_executor::ArrowFlightServerProvider> {
    use arrow_flight::flight_service_server::FlightServiceServer;
    use ballista_executor::flight_service::BallistaFlightService;
    Arc::new(move |work_dir, address, mut shutdown, grpc| {
        let secret = secret.clone();
        tokio::spawn(async move {
            let check = move |request: tonic::Request<()>| {
                let agent = request
                    .metadata()
                    .get(http::header::USER_AGENT.as_str())
                    .map(|v| v.as_bytes());
                if secret.admits(agent) {
                    Ok(request)
                } else {
                    let message = secret::refusal("executor");
                    secret::log_refusal(&message);
                    Err(tonic::Status::unauthenticated(message))
                }
            };
            let service = FlightServiceServer::new(BallistaFlightService::new(work_dir))
                .max_decoding_message_size(max_decoding)
                .max_encoding_message_size(max_encoding);
            ballista_core::utils::create_grpc_server(&grpc)
                .add_service(tonic::service::interceptor::InterceptedService::new(
                    service, check,
                ))
                .serve_with_shutdown(address, shutdown.recv())
                .await
                .map_err(ballista_core::error::BallistaError::TonicError)
        })
    })
}

/// Fails when the scheduler at `sched` answers but refuses this process's secret (Ballista's
/// executor would retry for ever); a scheduler that is not up yet is Ballista's to wait for.
async fn admitted(sched: &SocketAddr, secret: Option<&ClusterSecret>) -> Result<()> {
    let mut client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10));
    if let Some(s) = secret {
        client = client.user_agent(s.user_agent());
    }
    let client = client.build().map_err(|e| failed("an HTTP client", e))?;
    match client.get(format!("http://{sched}/cuve/ping")).send().await {
        Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => {
            Err(EngineError::invalid(format!(
                "the scheduler at {sched} refused this executor: {}",
                if secret.is_some() {
                    format!("{} differs from the scheduler's", secret::ENV)
                } else {
                    format!("it requires the cluster's secret; set {}", secret::ENV)
                }
            )))
        }
        _ => Ok(()),
    }
}

/// The part of its machine's memory an executor's queries may use together (as Ballista's
/// default pool).
pub const EXECUTOR_MEMORY_SHARE: f64 = 0.7;

/// What this executor's queries may use together: [`EXECUTOR_MEMORY_SHARE`] of the machine's
/// memory, or of the container's (cgroup v2 `memory.max`) if lower; `None` when
/// neither can be read.
fn executor_memory() -> Option<usize> {
    let host = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let kib: u64 = m
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib.saturating_mul(1024))
    });
    // "max" (no limit) does not parse.
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let total = match (host, cgroup) {
        (Some(h), Some(c)) => h.min(c),
        (h, c) => h.or(c)?,
    };
    Some((total as f64 * EXECUTOR_MEMORY_SHARE) as usize)
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
    let sched = socket_addr(scheduler, "--scheduler")?;
    let own = socket_addr(addr, "--addr")?;
    let secret = ClusterSecret::from_env()?;
    secret::check_bind(&secret, &own, "executor")?;
    admitted(&sched, secret.as_ref()).await?;
    std::fs::create_dir_all(work_dir).map_err(|e| EngineError::io(work_dir, e))?;
    // The push-scheduling gRPC port is unused (executors ask the scheduler for tasks, see
    // SCHEDULING), but it must be set: a free one on the same host.
    let grpc_port = std::net::TcpListener::bind((own.ip(), 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| failed("a free port for the executor", e))?;
    let state = cuve_engine::remote::worker_state()?;
    let mut session_config = state.config().clone().upgrade_for_ballista();
    if let Some(s) = &secret {
        // Shuffle fetches from the other executors (the tasks' sessions start from this one).
        session_config = session_config
            .with_ballista_override_create_grpc_client_endpoint(s.endpoint_override());
    }
    let runtime = state.runtime_env().clone();
    // Queries without a memory limit share one pool of the executor's memory (as the queries
    // of one Cuve process do); a ticket's `max_memory` gives its query a pool of its own of at
    // most that size (Ballista caches a runtime per session, and every query is one).
    let budget = executor_memory();
    let shared = match budget {
        Some(bytes) => RuntimeEnvBuilder::from_runtime_env(&runtime)
            .with_memory_pool(Arc::new(FairSpillPool::new(bytes)))
            .build_arc()
            .map_err(|e| failed("the executor's memory pool", e))?,
        None => runtime.clone(),
    };
    log::info!(
        "cuve executor memory: {} shared by queries without a limit; a ticket's max_memory \
         gives its query a pool of its own",
        budget.map_or("unbounded".to_string(), |b| format!("{b} bytes"))
    );
    let defaults = ExecutorProcessConfig::default();
    let config = ExecutorProcessConfig {
        override_arrow_flight_service: secret.as_ref().map(|s| {
            flight_service(
                s.clone(),
                defaults.grpc_max_decoding_message_size as usize,
                defaults.grpc_max_encoding_message_size as usize,
            )
        }),
        override_physical_codec: Some(crate::codec::CuveCodec::shared()),
        // The connection to the scheduler.
        override_create_grpc_client_endpoint: secret.as_ref().map(|s| s.endpoint_override()),
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
        // Cuve sizes the pools (above), so Ballista's own per-task pool is off.
        memory_pool_size: Some(0),
        override_runtime_producer: Some(Arc::new(move |config: &SessionConfig| {
            let ticket = config
                .options()
                .extensions
                .get::<JobOptions>()
                .map(|o| o.memory_limit)
                .filter(|&n| n > 0);
            match ticket {
                Some(t) => RuntimeEnvBuilder::from_runtime_env(&runtime)
                    .with_memory_pool(Arc::new(FairSpillPool::new(budget.map_or(t, |b| t.min(b)))))
                    .build_arc(),
                None => Ok(shared.clone()),
            }
        })),
        override_config_producer: Some(Arc::new(move || session_config.clone())),
        ..defaults
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| failed("the executor stopped", e))
}
