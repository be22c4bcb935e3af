//! The HTTP endpoints of `cuve serve --http` (interface contract): `POST /v1/logs/{db}.{table}`
//! (NDJSON with `X-Cuve-Sender`, `X-Cuve-Source`, `X-Cuve-First-Line`), the Elasticsearch bulk
//! API (`POST|PUT /_bulk`, `/{index}/_bulk`), `GET /` and `GET /_cat/health` for shippers'
//! checks, and `GET /healthz`. Credentials: `Authorization: Bearer <secret>`, `Basic
//! base64(user:secret)` or `ApiKey <secret or base64(id:secret)>`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use cuve_catalog::tickets::Ticket;
use serde_json::{Value, json};

use super::Intake;
use super::es;
use super::limits::{Admission, Refused};
use super::submit::{DocOutcome, LinesRequest, SubmitError, load_target};
use crate::access::AccessView;
use crate::error::{EngineError, ErrorKind};
use crate::exec::Admitted;
use crate::ingest::decode::TimeUnit;

type Shared = Arc<Intake>;

/// Binds the HTTP listener.
pub async fn bind(addr: &str) -> Result<(tokio::net::TcpListener, SocketAddr), EngineError> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| EngineError::invalid(format!("cannot listen on --http {addr}: {e}")))?;
    let local = l
        .local_addr()
        .map_err(|e| EngineError::invalid(format!("--http {addr}: {e}")))?;
    Ok((l, local))
}

/// Serves until `shutdown` completes.
pub async fn serve(
    intake: Shared,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), EngineError> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    let app = router(intake);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| EngineError::invalid(format!("HTTP server: {e}")))
}

pub fn router(intake: Shared) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(root).head(root))
        .route("/_cat/health", get(cat_health))
        .route("/_cluster/health", get(cluster_health))
        .route("/_license", get(license))
        .route("/_bulk", post(bulk).put(bulk))
        .route("/{index}/_bulk", post(bulk_index).put(bulk_index))
        .route("/v1/logs/{table}", post(logs))
        .fallback(not_found)
        .layer(axum::middleware::map_response(
            |mut r: Response| async move {
                r.headers_mut().insert(
                    "x-elastic-product",
                    HeaderValue::from_static("Elasticsearch"),
                );
                r
            },
        ))
        .with_state(intake)
}

/// An answer other than success.
struct Failure {
    status: StatusCode,
    kind: &'static str,
    reason: String,
    retry_after: Option<u64>,
}

impl Failure {
    fn new(status: u16, kind: &'static str, reason: impl Into<String>) -> Self {
        Failure {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            kind,
            reason: reason.into(),
            retry_after: None,
        }
    }

    fn refused(r: Refused) -> Self {
        Failure {
            retry_after: Some(r.retry_after_secs),
            ..Failure::new(
                r.status,
                if r.status == 429 {
                    "es_rejected_execution_exception"
                } else {
                    "unavailable_shards_exception"
                },
                r.reason,
            )
        }
    }

    fn engine(e: &EngineError) -> Self {
        let msg = e.user_message();
        match e.kind() {
            ErrorKind::Denied => Failure::new(403, "security_exception", msg),
            ErrorKind::Io | ErrorKind::Internal => Failure {
                retry_after: Some(5),
                ..Failure::new(503, "cuve_storage_exception", msg)
            },
            _ if msg.contains("does not exist") => {
                Failure::new(404, "index_not_found_exception", msg)
            }
            _ => Failure::new(400, "illegal_argument_exception", msg),
        }
    }

    /// Cuve's own shape: `{"error": "..."}`; ES's for the bulk API.
    fn into_response(self, es_shape: bool) -> Response {
        let body = if es_shape {
            es::error(self.status.as_u16(), self.kind, &self.reason)
        } else {
            json!({"error": self.reason, "status": self.status.as_u16()})
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(s.max(1)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Basic realm=\"cuve\" charset=\"UTF-8\""),
            );
        }
        r
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The ticket of the request's credentials.
fn authenticate(
    intake: &Intake,
    h: &HeaderMap,
    peer: SocketAddr,
) -> Result<(AccessView, Ticket), Failure> {
    let unauthorized = |why: &str| Failure::new(401, "security_exception", why.to_string());
    let auth = header(h, "authorization").ok_or_else(|| {
        unauthorized("no credentials: send 'Authorization: Bearer <ticket secret>' (or Basic user:secret, or ApiKey)")
    })?;
    let (scheme, value) = auth.split_once(' ').unwrap_or((auth, ""));
    let value = value.trim();
    let decode = |v: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(v)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    let (user, secret) = match scheme.to_ascii_lowercase().as_str() {
        "bearer" => (None, value.to_string()),
        "basic" => {
            let s = decode(value).ok_or_else(|| unauthorized("malformed Basic credentials"))?;
            let (u, p) = s
                .split_once(':')
                .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
            (Some(u.to_lowercase()), p.to_string())
        }
        "apikey" => match decode(value).and_then(|s| s.split_once(':').map(|(_, k)| k.to_string()))
        {
            Some(k) => (None, k),
            None => (None, value.to_string()),
        },
        _ => {
            return Err(unauthorized(
                "unknown authorization scheme: use Bearer, Basic or ApiKey",
            ));
        }
    };
    let catalog = intake.engine.catalog();
    let ticket = crate::threads::blocking(|| catalog.authenticate(&secret))
        .map_err(|_| unauthorized(cuve_catalog::tickets::BAD_TICKET))?;
    if let Some(u) = user
        && u != ticket.owner
    {
        return Err(unauthorized(cuve_catalog::tickets::BAD_TICKET));
    }
    let access = AccessView::from_ticket(&ticket, format!("http {peer}"));
    Ok((access, ticket))
}

/// The checks before a body is read: size, the server's backlog, the ticket's quota.
async fn admit(intake: &Intake, ticket: &Ticket, h: &HeaderMap) -> Result<Admission, Failure> {
    let max = intake.config.max_body_bytes;
    let declared = header(h, "content-length").and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared
        && n > max
    {
        return Err(Failure::new(
            413,
            "content_too_long_exception",
            format!("the body is {n} bytes; the limit is {max} bytes (send smaller batches)"),
        ));
    }
    if intake.overloaded() {
        return Err(Failure {
            retry_after: Some(5),
            ..Failure::new(
                503,
                "unavailable_shards_exception",
                "acknowledged rows are waiting to be written to their tables; retry shortly",
            )
        });
    }
    intake
        .limits
        .admit(&ticket.id, &ticket.quota, declared.unwrap_or(max))
        .await
        .map_err(Failure::refused)
}

async fn read_body(intake: &Intake, body: Body) -> Result<axum::body::Bytes, Failure> {
    let max = intake.config.max_body_bytes;
    axum::body::to_bytes(body, max as usize).await.map_err(|e| {
        let too_long = std::error::Error::source(&e)
            .is_some_and(|s| s.to_string().contains("length limit"))
            || e.to_string().contains("length limit");
        if too_long {
            Failure::new(
                413,
                "content_too_long_exception",
                format!("the body is larger than the limit of {max} bytes (send smaller batches)"),
            )
        } else {
            Failure::new(400, "parse_exception", format!("cannot read the body: {e}"))
        }
    })
}

/// One audit record of a request.
struct Audit<'a> {
    statement: String,
    table: &'a str,
    decision: &'a str,
    reason: Option<String>,
    bytes: u64,
    rows: u64,
}

fn audit(intake: &Intake, access: &AccessView, a: Audit<'_>, started: Instant) {
    crate::threads::blocking(|| {
        crate::exec::record(
            intake.engine.catalog(),
            access,
            &a.statement,
            vec![a.table.to_string()],
            a.decision,
            a.reason,
            Admitted {
                bytes: a.bytes,
                charged: true,
            },
            a.rows,
            started,
        )
    });
}

async fn logs(
    State(intake): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(table): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let (access, ticket) = match authenticate(&intake, &headers, peer) {
        Ok(x) => x,
        Err(f) => return f.into_response(false),
    };
    let bad = |m: String| Failure::new(400, "illegal_argument_exception", m).into_response(false);
    let Some(sender) = header(&headers, "x-cuve-sender") else {
        return bad(
            "missing header X-Cuve-Sender: the IP address of the host that wrote the lines".into(),
        );
    };
    if sender.parse::<IpAddr>().is_err() {
        return bad(format!("X-Cuve-Sender '{sender}' is not an IP address"));
    }
    let Some(source) = header(&headers, "x-cuve-source").filter(|s| !s.is_empty()) else {
        return bad("missing header X-Cuve-Source: the name of the log file (or stream) the lines come from".into());
    };
    let first_line = match header(&headers, "x-cuve-first-line").map(|v| v.parse::<u64>()) {
        Some(Ok(n)) if (1..1 << 53).contains(&n) => n,
        Some(_) => return bad("X-Cuve-First-Line must be the 1-based number of the body's first line".into()),
        None => return bad("missing header X-Cuve-First-Line: the 1-based number of the body's first line in its source".into()),
    };
    let time_unit = match header(&headers, "x-cuve-time-unit").map(TimeUnit::parse) {
        None => TimeUnit::Ns,
        Some(Ok(u)) => u,
        Some(Err(e)) => return bad(format!("X-Cuve-Time-Unit: {}", e.user_message())),
    };
    let _admission = match admit(&intake, &ticket, &headers).await {
        Ok(a) => a,
        Err(f) => {
            audit(
                &intake,
                &access,
                Audit {
                    statement: format!("HTTP POST /v1/logs/{table}"),
                    table: &table,
                    decision: "deny",
                    reason: Some(f.reason.clone()),
                    bytes: 0,
                    rows: 0,
                },
                started,
            );
            return f.into_response(false);
        }
    };
    let body = match read_body(&intake, body).await {
        Ok(b) => b,
        Err(f) => return f.into_response(false),
    };
    let lines = bytecount(&body);
    if let Err(r) = intake.limits.charge_rows(&ticket.id, &ticket.quota, lines) {
        return Failure::refused(r).into_response(false);
    }
    let req = LinesRequest {
        table: &table,
        sender,
        source,
        first_line,
        time_unit,
    };
    let statement = format!(
        "HTTP POST /v1/logs/{table} sender {sender} source {source} lines {first_line}..{}",
        first_line + lines.max(1) - 1
    );
    match intake.submit_lines(&access, &req, &body).await {
        Ok(outcome) => {
            audit(&intake, &access, Audit { statement, table: &table, decision: "allow", reason: None, bytes: body.len() as u64, rows: outcome.accepted }, started);
            (StatusCode::OK, axum::Json(outcome)).into_response()
        }
        Err(SubmitError::Busy) => Failure {
            retry_after: Some(1),
            ..Failure::new(
                429,
                "es_rejected_execution_exception",
                "another request is storing some of these lines right now; resend this batch in a moment",
            )
        }
        .into_response(false),
        Err(SubmitError::Engine(e)) => {
            let f = Failure::engine(&e);
            let decision = if f.status == StatusCode::FORBIDDEN { "deny" } else { "error" };
            audit(&intake, &access, Audit { statement, table: &table, decision, reason: Some(f.reason.clone()), bytes: 0, rows: 0 }, started);
            f.into_response(false)
        }
    }
}

fn bytecount(body: &[u8]) -> u64 {
    super::submit::body_lines(body).len() as u64
}

async fn bulk(
    State(intake): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run_bulk(intake, peer, None, headers, body).await
}

async fn bulk_index(
    State(intake): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run_bulk(intake, peer, Some(index), headers, body).await
}

async fn run_bulk(
    intake: Shared,
    peer: SocketAddr,
    default_index: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let (access, ticket) = match authenticate(&intake, &headers, peer) {
        Ok(x) => x,
        Err(f) => return f.into_response(true),
    };
    let _admission = match admit(&intake, &ticket, &headers).await {
        Ok(a) => a,
        Err(f) => return f.into_response(true),
    };
    let body = match read_body(&intake, body).await {
        Ok(b) => b,
        Err(f) => return f.into_response(true),
    };
    let items = match es::parse_bulk(&body) {
        Ok(i) => i,
        Err(e) => return Failure::new(400, "x_content_parse_exception", e).into_response(true),
    };
    if let Err(r) = intake
        .limits
        .charge_rows(&ticket.id, &ticket.quota, items.len() as u64)
    {
        return Failure::refused(r).into_response(true);
    }
    let sender = header(&headers, "x-cuve-sender")
        .filter(|s| s.parse::<IpAddr>().is_ok())
        .map(str::to_string)
        .unwrap_or_else(|| peer.ip().to_string());
    let mut answers: Vec<Option<Value>> = vec![None; items.len()];
    // Documents per index, in order.
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let index = it.index.clone().or_else(|| default_index.clone());
        let id = it.id.clone().unwrap_or_default();
        let Some(index) = index else {
            answers[i] = Some(es::item(
                &it.action,
                "",
                &id,
                400,
                Some((
                    "action_request_validation_exception",
                    "index is missing: name it in the action or the path (/{db.table}/_bulk)",
                )),
            ));
            continue;
        };
        if it.action != "index" && it.action != "create" {
            answers[i] = Some(es::item(
                &it.action,
                &index,
                &id,
                400,
                Some((
                    "illegal_argument_exception",
                    "Cuve stores log lines: only the index and create actions are supported",
                )),
            ));
            continue;
        }
        match groups.iter_mut().find(|(ix, _)| *ix == index) {
            Some((_, v)) => v.push(i),
            None => groups.push((index, vec![i])),
        }
    }
    for (index, members) in groups {
        let target = match load_target(&intake.engine, &access, &index) {
            Ok(t) => t,
            Err(e) => {
                let f = Failure::engine(&e);
                audit(
                    &intake,
                    &access,
                    Audit {
                        statement: format!("HTTP POST /_bulk index {index}"),
                        table: &index,
                        decision: if f.status == StatusCode::FORBIDDEN {
                            "deny"
                        } else {
                            "error"
                        },
                        reason: Some(f.reason.clone()),
                        bytes: 0,
                        rows: 0,
                    },
                    started,
                );
                for &i in &members {
                    let it = &items[i];
                    answers[i] = Some(es::item(
                        &it.action,
                        &index,
                        it.id.as_deref().unwrap_or(""),
                        f.status.as_u16(),
                        Some((f.kind, &f.reason)),
                    ));
                }
                continue;
            }
        };
        let docs: Vec<(String, String)> = members
            .iter()
            .map(|&i| {
                let doc = items[i].doc.clone().unwrap_or_default();
                let id = items[i].id.clone().unwrap_or_else(|| es::doc_id(&doc));
                (id, doc)
            })
            .collect();
        match intake.submit_docs(&target, &sender, &docs).await {
            Ok(outcomes) => {
                let stored = outcomes
                    .iter()
                    .filter(|o| **o == DocOutcome::Stored)
                    .count() as u64;
                audit(
                    &intake,
                    &access,
                    Audit {
                        statement: format!(
                            "HTTP POST /_bulk index {index}: {} documents",
                            docs.len()
                        ),
                        table: &index,
                        decision: "allow",
                        reason: None,
                        bytes: body.len() as u64,
                        rows: stored,
                    },
                    started,
                );
                for ((&i, (id, _)), o) in members.iter().zip(&docs).zip(outcomes) {
                    let action = items[i].action.as_str();
                    answers[i] = Some(match o {
                        DocOutcome::Stored => es::item(action, &index, id, 201, None),
                        DocOutcome::Duplicate if action == "create" => es::item(
                            action,
                            &index,
                            id,
                            409,
                            Some((
                                "version_conflict_engine_exception",
                                "a document with this id is already stored",
                            )),
                        ),
                        DocOutcome::Duplicate => es::item(action, &index, id, 200, None),
                        DocOutcome::Busy => es::item(
                            action,
                            &index,
                            id,
                            429,
                            Some((
                                "es_rejected_execution_exception",
                                "a document with this id is being stored by another request; retry it",
                            )),
                        ),
                        DocOutcome::Rejected(reason) => es::item(
                            action,
                            &index,
                            id,
                            400,
                            Some(("document_parsing_exception", &reason)),
                        ),
                    });
                }
            }
            Err(e) => {
                let f = Failure::engine(&e);
                let status = if f.status.as_u16() >= 500 {
                    503
                } else {
                    f.status.as_u16()
                };
                for &i in &members {
                    let it = &items[i];
                    answers[i] = Some(es::item(
                        &it.action,
                        &index,
                        it.id.as_deref().unwrap_or(""),
                        status,
                        Some((f.kind, &f.reason)),
                    ));
                }
            }
        }
    }
    let items: Vec<Value> = answers
        .into_iter()
        .map(|a| a.unwrap_or(Value::Null))
        .collect();
    let errors = items.iter().any(|v| {
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|b| b.get("status"))
            .and_then(|s| s.as_u64())
            .is_some_and(|s| s >= 300)
    });
    let took = started.elapsed().as_millis() as u64;
    (
        StatusCode::OK,
        axum::Json(json!({"took": took, "errors": errors, "items": items})),
    )
        .into_response()
}

async fn healthz(State(intake): State<Shared>) -> Response {
    axum::Json(json!({
        "status": "ok",
        "unflushed_bytes": intake.wal.unflushed_bytes(),
    }))
    .into_response()
}

async fn root() -> Response {
    axum::Json(es::root()).into_response()
}

async fn cat_health() -> Response {
    let now = chrono::Utc::now();
    format!(
        "{} {} cuve green 1 1 0 0 0 0 0 0 - 100.0%\n",
        now.timestamp(),
        now.format("%H:%M:%S")
    )
    .into_response()
}

async fn cluster_health() -> Response {
    axum::Json(json!({"cluster_name": "cuve", "status": "green", "timed_out": false, "number_of_nodes": 1, "number_of_data_nodes": 1})).into_response()
}

async fn license() -> Response {
    axum::Json(json!({"license": {"status": "active", "type": "basic", "uid": "cuve"}}))
        .into_response()
}

async fn not_found() -> Response {
    Failure::new(404, "resource_not_found_exception", "no such endpoint: Cuve answers POST /v1/logs/{db}.{table}, POST /_bulk, POST /{db.table}/_bulk, GET /, GET /_cat/health, GET /healthz").into_response(true)
}
