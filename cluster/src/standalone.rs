//! A Ballista scheduler and executors in this process on loopback, built from a Cuve session's
//! state (so they resolve Cuve's functions by the same names, and read through the same object
//! stores): real plan encoding and decoding, as on a cluster.

use std::net::SocketAddr;

use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use cuve_engine::{EngineError, Result};
use datafusion::execution::SessionState;

/// Starts a scheduler and `executors` executors (`slots` task slots each); returns the
/// scheduler's address.
pub async fn start(state: &SessionState, executors: usize, slots: usize) -> Result<SocketAddr> {
    let fail = |what: &str, e: String| EngineError::invalid(format!("{what}: {e}"));
    // Cuve's codec on both sides (Ballista's standalone processes take it from the state).
    let config = state
        .config()
        .clone()
        .with_ballista_physical_extension_codec(crate::codec::CuveCodec::shared());
    let state = &cuve_engine::remote::worker_state_with(config, state.runtime_env().clone())?;
    let addr = ballista_scheduler::standalone::new_standalone_scheduler_from_state(state)
        .await
        .map_err(|e| fail("starting the scheduler", e.to_string()))?;
    for _ in 0..executors {
        let client = SchedulerGrpcClient::connect(format!("http://localhost:{}", addr.port()))
            .await
            .map_err(|e| fail("connecting to the scheduler", e.to_string()))?;
        ballista_executor::new_standalone_executor_from_state(client, slots, state)
            .await
            .map_err(|e| fail("starting an executor", e.to_string()))?;
    }
    Ok(addr)
}
