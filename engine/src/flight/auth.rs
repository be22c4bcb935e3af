//! Authentication of every Flight call, in one place: an interceptor reads the ticket secret
//! (`authorization: Bearer <secret>`, or `Basic base64(user:secret)`), checks it against the
//! catalog and attaches the caller's [`AccessView`] to the request. Methods read it with
//! [`access`]; a call without one is refused. Each call checks the catalog, so a revoked or
//! expired ticket stops working at once.

use std::sync::Arc;

use base64::Engine as _;
use tonic::{Request, Status};

use crate::access::AccessView;
use crate::session::Engine;

/// Checks ticket secrets for the interceptor.
#[derive(Clone)]
pub struct Authenticator {
    engine: Arc<Engine>,
}

/// The verified caller, attached to the request.
#[derive(Clone)]
pub struct Caller {
    pub access: AccessView,
    /// The user name given with Basic authentication (the handshake checks it).
    pub basic_user: Option<String>,
    pub secret: String,
}

fn denied() -> Status {
    Status::unauthenticated(cuve_catalog::tickets::BAD_TICKET)
}

impl Authenticator {
    pub fn new(engine: Arc<Engine>) -> Self {
        Authenticator { engine }
    }

    /// Verifies the call's credentials, if it has any (a call without is refused by the method
    /// it reaches, with a message saying what to send).
    pub fn intercept(&self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let Some(header) = req.metadata().get("authorization") else {
            return Ok(req);
        };
        let header = header.to_str().map_err(|_| denied())?;
        let (secret, basic_user) = if let Some(t) = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
        {
            (t.trim().to_string(), None)
        } else if let Some(b) = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
        {
            let (user, secret) = basic(b)?;
            (secret, Some(user))
        } else {
            return Err(denied());
        };
        let ticket = self
            .engine
            .catalog()
            .authenticate(&secret)
            .map_err(|_| denied())?;
        // With Basic, the user name must be the ticket's user, on every call.
        if let Some(user) = &basic_user
            && user.to_lowercase() != ticket.owner
        {
            return Err(denied());
        }
        let peer = req.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        let access = AccessView::from_ticket(&ticket, format!("flight {peer}"));
        req.extensions_mut().insert(Caller {
            access,
            basic_user,
            secret,
        });
        Ok(req)
    }
}

/// Decodes `user:secret` (padded or unpadded base64).
fn basic(b64: &str) -> Result<(String, String), Status> {
    let t = b64.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(t)
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(t.trim_end_matches('='))
        })
        .map_err(|_| denied())?;
    let s = String::from_utf8(bytes).map_err(|_| denied())?;
    let (user, secret) = s.split_once(':').ok_or_else(denied)?;
    Ok((user.to_string(), secret.to_string()))
}

/// The verified caller of a request.
pub fn caller<T>(req: &Request<T>) -> Result<&Caller, Status> {
    req.extensions().get::<Caller>().ok_or_else(|| {
        Status::unauthenticated("no ticket: send 'authorization: Bearer <ticket secret>'")
    })
}

/// The caller's access.
pub fn access<T>(req: &Request<T>) -> Result<AccessView, Status> {
    caller(req).map(|c| c.access.clone())
}
