//! The Arrow Flight SQL endpoint (`cuve serve`): a thin, stateless adapter over [`Session`].
//!
//! - [`auth`]: one interceptor authenticates every call from its ticket secret (`authorization:
//!   Bearer <secret>`, or Basic user + secret) before any method runs.
//! - [`handle`]: prepared-statement handles carry their SQL and bound parameters, so the server
//!   keeps no per-client state (nothing to leak, no lock to poison).
//! - [`sessions`]: idle sessions reused by the next call of the same caller (same ticket,
//!   grants and peer), so a call does not build a DataFusion context.
//! - [`service`]: the Flight SQL methods; statements run through [`Session`] like every other
//!   front end, parameters bound as values ([`crate::parse::params`]).
//!
//! [`Session`]: crate::Session

pub mod auth;
pub mod handle;
pub mod service;
pub mod sessions;

use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;

use crate::error::EngineError;
use crate::session::Engine;
pub use service::CuveFlightService;

/// TLS certificate and key (PEM files).
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Serves Flight SQL on `listener` until `shutdown` resolves; then running queries are cancelled
/// and told so. Accepted sockets have `TCP_NODELAY` set (small replies are not held back).
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    tls: Option<TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), EngineError> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let service = CuveFlightService::new(engine.clone(), rx);
    let mut builder = tonic::transport::Server::builder().tcp_nodelay(true);
    if let Some(tls) = tls {
        let cert = std::fs::read(&tls.cert).map_err(|e| EngineError::io(&tls.cert, e))?;
        let key = std::fs::read(&tls.key).map_err(|e| EngineError::io(&tls.key, e))?;
        builder = builder
            .tls_config(
                tonic::transport::ServerTlsConfig::new()
                    .identity(tonic::transport::Identity::from_pem(cert, key)),
            )
            .map_err(|e| EngineError::invalid(format!("TLS configuration: {e}")))?;
    }
    // The builder's nodelay applies only to sockets it accepts itself: set it on ours.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let signal = async move {
        shutdown.await;
        let _ = tx.send(true);
    };
    let auth = auth::Authenticator::new(engine);
    builder
        .add_service(FlightServiceServer::with_interceptor(service, move |req| {
            auth.intercept(req)
        }))
        .serve_with_incoming_shutdown(incoming, signal)
        .await
        .map_err(|e| EngineError::invalid(format!("Flight server: {e}")))
}

/// Binds `addr` (loopback by default); returns the listener and the bound address.
pub async fn bind(addr: &str) -> Result<(tokio::net::TcpListener, SocketAddr), EngineError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| EngineError::invalid(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| EngineError::io(addr, e))?;
    Ok((listener, local))
}
