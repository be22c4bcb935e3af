//! `CUVE_CLUSTER_SECRET`: the shared secret every process of a cluster (gateway, scheduler,
//! executors) holds. Each gRPC and HTTP request between them carries a token derived from it
//! (SHA-256, so the secret itself never travels) at the head of its `User-Agent` header: Ballista
//! 55 lets Cuve shape its client connections (tonic's `Endpoint`) but not the metadata of each
//! request, and a channel's user agent goes with every request on it. The scheduler and the
//! executors' Flight endpoints refuse a request without the token (gRPC `Unauthenticated`, HTTP
//! 401). Without TLS the token is readable on the wire: the cluster network must be private.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::extension::EndpointOverrideFn;
use cuve_engine::{EngineError, Result};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The variable every process of a cluster reads the secret from (interface contract).
pub const ENV: &str = "CUVE_CLUSTER_SECRET";

/// Shortest secret accepted.
const MIN_LEN: usize = 16;

/// What the `User-Agent` of a cluster request starts with.
const PREFIX: &str = "cuve-cluster/";

/// The token a cluster's processes show each other, derived from the shared secret.
#[derive(Clone)]
pub struct ClusterSecret {
    /// `cuve-cluster/<hex of SHA-256>`.
    user_agent: Arc<str>,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// The secret `secret`; refused when shorter than 16 characters.
    pub fn new(secret: &str) -> Result<ClusterSecret> {
        if secret.chars().count() < MIN_LEN {
            return Err(EngineError::invalid(format!(
                "{ENV} is {} characters long: use at least {MIN_LEN} (e.g. `openssl rand -hex \
                 32`), the same value for the gateway, the scheduler and every executor",
                secret.chars().count()
            )));
        }
        let digest = Sha256::new()
            .chain_update(b"cuve-cluster-secret-v1\0")
            .chain_update(secret.as_bytes())
            .finalize();
        Ok(ClusterSecret {
            user_agent: format!("{PREFIX}{}", hex::encode(digest)).into(),
        })
    }

    /// The secret in `CUVE_CLUSTER_SECRET`, if set (an empty value counts as unset).
    pub fn from_env() -> Result<Option<ClusterSecret>> {
        match std::env::var(ENV) {
            Ok(s) if s.is_empty() => Ok(None),
            Ok(s) => ClusterSecret::new(&s).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(EngineError::invalid(format!("{ENV} is not valid UTF-8")))
            }
        }
    }

    /// The `User-Agent` value cluster requests start with.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// Puts the token on every request of a connection Ballista opens.
    pub fn endpoint_override(&self) -> EndpointOverrideFn {
        let agent = self.user_agent.clone();
        Arc::new(move |endpoint| Ok(endpoint.user_agent(agent.as_ref())?))
    }

    /// Whether a request with this `User-Agent` header comes from the cluster (tonic appends
    /// its own name after a space).
    pub fn admits(&self, user_agent: Option<&[u8]>) -> bool {
        let Some(value) = user_agent else {
            return false;
        };
        let first = value.split(|&b| b == b' ').next().unwrap_or_default();
        first.ct_eq(self.user_agent.as_bytes()).into()
    }
}

/// What a process refusing a request says.
pub fn refusal(what: &str) -> String {
    format!(
        "refused by the {what}: the request does not carry this cluster's secret (set {ENV} to \
         the same value for the gateway, the scheduler and every executor)"
    )
}

/// Logs a refused request, at most once every 10 s (a stranger retrying must not fill the log).
pub fn log_refusal(message: &str) {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static LAST: Mutex<Option<(Instant, u64)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    match *last {
        Some((at, ref mut quiet)) if at.elapsed() < Duration::from_secs(10) => *quiet += 1,
        prior => {
            match prior.map_or(0, |(_, quiet)| quiet) {
                0 => log::warn!("{message}"),
                n => log::warn!("{message} (and {n} more refused since the last such message)"),
            }
            *last = Some((Instant::now(), 0));
        }
    }
}

/// A scheduler or executor may run without a secret only on a loopback address.
pub fn check_bind(secret: &Option<ClusterSecret>, addr: &SocketAddr, what: &str) -> Result<()> {
    match secret {
        Some(_) => Ok(()),
        None if addr.ip().is_loopback() => {
            log::warn!(
                "{what} on {addr} without {ENV}: any local process can submit plans and read \
                 shuffle data; set {ENV} to require the cluster's secret"
            );
            Ok(())
        }
        None => Err(EngineError::invalid(format!(
            "the {what} would listen on {addr}, off loopback, without a cluster secret: set \
             {ENV} (at least {MIN_LEN} characters, the same for the gateway, the scheduler and \
             every executor), and keep the cluster network private"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_only_the_same_secret() {
        let s = ClusterSecret::new("0123456789abcdef-one").unwrap();
        let other = ClusterSecret::new("0123456789abcdef-two").unwrap();
        let ua = format!("{} tonic/0.14.9", s.user_agent());
        assert!(s.admits(Some(ua.as_bytes())));
        assert!(s.admits(Some(s.user_agent().as_bytes())));
        assert!(!other.admits(Some(ua.as_bytes())));
        assert!(!s.admits(None));
        assert!(!s.admits(Some(b"tonic/0.14.9")));
        assert!(!s.admits(Some(b"cuve-cluster/")));
        // The secret itself is not what travels.
        assert!(!s.user_agent().contains("0123456789abcdef"));
        assert_eq!(format!("{s:?}"), "ClusterSecret(..)");
    }

    #[test]
    fn short_secrets_and_open_binds_are_refused() {
        let e = ClusterSecret::new("short").unwrap_err().user_message();
        assert!(
            e.contains("CUVE_CLUSTER_SECRET is 5 characters long"),
            "{e}"
        );
        let open: SocketAddr = "0.0.0.0:50050".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:50050".parse().unwrap();
        let e = check_bind(&None, &open, "scheduler")
            .unwrap_err()
            .user_message();
        assert!(e.contains("off loopback") && e.contains(ENV), "{e}");
        assert!(check_bind(&None, &lo, "scheduler").is_ok());
        let s = Some(ClusterSecret::new("0123456789abcdef").unwrap());
        assert!(check_bind(&s, &open, "scheduler").is_ok());
    }
}
