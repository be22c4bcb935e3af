//! The Arrow Flight SQL service (`cuve serve`): a thin adapter over [`Session`]. Every call,
//! metadata included, is authenticated from the ticket secret (`authorization: Bearer <secret>`,
//! or a Basic handshake of user + secret that returns the Bearer token) and runs through the same
//! session, access checks, quotas and audit as the CLI. Results stream batch by batch.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
    metadata::{SqlInfoData, SqlInfoDataBuilder},
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use base64::Engine as _;
use datafusion::arrow::array::{AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::common::ScalarValue;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::access::AccessView;
use crate::error::{EngineError, ErrorKind};
use crate::session::{Engine, Session};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A prepared statement held by the server.
struct Prepared {
    sql: String,
    ticket_id: Option<String>,
    dataset_schema: SchemaRef,
    parameter_schema: SchemaRef,
    params: Option<Vec<ScalarValue>>,
}

/// What a statement ticket carries between GetFlightInfo and DoGet.
#[derive(Serialize, Deserialize)]
struct StatementHandle {
    sql: String,
    /// The schema announced had no columns (a statement that changes something).
    no_columns: bool,
}

/// The Flight SQL service.
pub struct CuveFlightService {
    engine: Arc<Engine>,
    prepared: Mutex<HashMap<String, Prepared>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

fn status(e: EngineError) -> Status {
    let msg = e.user_message();
    match e.kind() {
        ErrorKind::Denied => Status::permission_denied(msg),
        ErrorKind::Quota => Status::resource_exhausted(msg),
        ErrorKind::Io | ErrorKind::Internal => Status::internal(msg),
        ErrorKind::Sql => Status::invalid_argument(msg),
    }
}

fn sql_info() -> &'static SqlInfoData {
    static INFO: std::sync::OnceLock<SqlInfoData> = std::sync::OnceLock::new();
    INFO.get_or_init(|| {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "Cuve");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
        b.append(SqlInfo::FlightSqlServerReadOnly, false);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.append(SqlInfo::SqlDdlCatalog, false);
        b.append(SqlInfo::SqlDdlSchema, true);
        b.append(SqlInfo::SqlDdlTable, true);
        b.build().expect("static SqlInfo is valid")
    })
}

/// Replaces `?` placeholders (outside quotes) by `$1`, `$2`, ... for DataFusion.
pub fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut n = 0;
    for c in sql.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (None, '?') => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            _ => out.push(c),
        }
    }
    out
}

/// A parameter value as a SQL literal.
fn literal(v: &ScalarValue) -> Result<String, Status> {
    if v.is_null() {
        return Ok("NULL".into());
    }
    Ok(match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => {
            format!("'{}'", s.replace('\'', "''"))
        }
        ScalarValue::Boolean(Some(b)) => b.to_string().to_uppercase(),
        ScalarValue::Int8(_)
        | ScalarValue::Int16(_)
        | ScalarValue::Int32(_)
        | ScalarValue::Int64(_)
        | ScalarValue::UInt8(_)
        | ScalarValue::UInt16(_)
        | ScalarValue::UInt32(_)
        | ScalarValue::UInt64(_) => v.to_string(),
        ScalarValue::Float32(Some(f)) => format!("CAST({f:?} AS REAL)"),
        ScalarValue::Float64(Some(f)) => format!("CAST({f:?} AS DOUBLE)"),
        ScalarValue::Date32(_) | ScalarValue::Date64(_) => format!("DATE '{v}'"),
        ScalarValue::TimestampSecond(..)
        | ScalarValue::TimestampMillisecond(..)
        | ScalarValue::TimestampMicrosecond(..)
        | ScalarValue::TimestampNanosecond(..) => {
            format!("TIMESTAMP '{}'", v.to_string().replace('T', " "))
        }
        other => {
            return Err(Status::invalid_argument(format!(
                "unsupported parameter type {}",
                other.data_type()
            )));
        }
    })
}

/// Replaces `$n` placeholders (outside quotes) by the bound values as literals.
fn bind_params(sql: &str, params: &[ScalarValue]) -> Result<String, Status> {
    let numbered = number_placeholders(sql);
    let chars: Vec<char> = numbered.chars().collect();
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '$') if chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) => {
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                let n: usize = chars[i + 1..j]
                    .iter()
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0);
                let v = params.get(n.wrapping_sub(1)).ok_or_else(|| {
                    Status::invalid_argument(format!("parameter ${n} was not bound"))
                })?;
                out.push_str(&literal(v)?);
                i = j;
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

/// Flight clients (the JDBC driver, older pyarrow) may not read Utf8View: send Utf8.
fn classic_schema(schema: &SchemaRef) -> SchemaRef {
    let plain = |t: &DataType| {
        matches!(t, DataType::Utf8View)
            || matches!(t, DataType::Dictionary(_, v) if v.as_ref() == &DataType::Utf8)
    };
    if !schema.fields().iter().any(|f| plain(f.data_type())) {
        return schema.clone();
    }
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| {
                if plain(f.data_type()) {
                    f.as_ref().clone().with_data_type(DataType::Utf8)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

fn classic_batch(
    batch: RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    if batch.schema().as_ref() == schema.as_ref() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

fn batch_stream(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> BoxStream<arrow_flight::FlightData> {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::iter(batches.into_iter().map(Ok)))
        .map_err(Status::from);
    Box::pin(stream)
}

fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket));
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("encoding schema: {e}")))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

impl CuveFlightService {
    pub fn new(engine: Arc<Engine>, shutdown: tokio::sync::watch::Receiver<bool>) -> Self {
        CuveFlightService {
            engine,
            prepared: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    fn secret_of<T>(req: &Request<T>) -> Result<String, Status> {
        let denied = || Status::unauthenticated(cuve_catalog::tickets::BAD_TICKET);
        let header = req
            .metadata()
            .get("authorization")
            .ok_or_else(|| {
                Status::unauthenticated("no ticket: send 'authorization: Bearer <ticket secret>'")
            })?
            .to_str()
            .map_err(|_| denied())?;
        if let Some(t) = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
        {
            return Ok(t.trim().to_string());
        }
        if let Some(b) = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
        {
            let (_, secret) = Self::basic(b)?;
            return Ok(secret);
        }
        Err(denied())
    }

    /// Decodes `user:secret` (padded or unpadded base64).
    fn basic(b64: &str) -> Result<(String, String), Status> {
        let denied = || Status::unauthenticated(cuve_catalog::tickets::BAD_TICKET);
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

    fn access<T>(&self, req: &Request<T>) -> Result<AccessView, Status> {
        let secret = Self::secret_of(req)?;
        let ticket = self
            .engine
            .catalog()
            .authenticate(&secret)
            .map_err(|_| Status::unauthenticated(cuve_catalog::tickets::BAD_TICKET))?;
        let peer = req.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        Ok(AccessView::from_ticket(&ticket, format!("flight {peer}")))
    }

    fn session<T>(&self, req: &Request<T>) -> Result<Session, Status> {
        let access = self.access(req)?;
        self.engine.session(access).map_err(status)
    }

    /// Streams a statement's result; cut off with an error when the server shuts down.
    async fn stream_sql(
        &self,
        mut session: Session,
        sql: &str,
        no_columns: bool,
    ) -> Result<BoxStream<arrow_flight::FlightData>, Status> {
        let out = session.execute_stream(sql).await.map_err(status)?;
        if no_columns {
            // A statement that changes something: run it to the end, send no rows.
            let _: Vec<RecordBatch> = out
                .stream
                .try_collect()
                .await
                .map_err(|e| status(EngineError::from_datafusion(e)))?;
            return Ok(batch_stream(Arc::new(Schema::empty()), vec![]));
        }
        let schema = classic_schema(&out.schema);
        let shutdown = self.shutdown.clone();
        let target = schema.clone();
        let data = out.stream.map(move |item| match item {
            Ok(b) => classic_batch(b, &target).map_err(FlightError::from),
            Err(e) => Err(FlightError::from(
                datafusion::arrow::error::ArrowError::ExternalError(Box::new(e)),
            )),
        });
        let cut = futures::stream::unfold((data, false), move |(mut data, done)| {
            let mut shutdown = shutdown.clone();
            async move {
                if done {
                    return None;
                }
                tokio::select! {
                    item = data.next() => item.map(|i| (i, (data, false))),
                    _ = shutdown.wait_for(|v| *v) => Some((
                        Err(FlightError::Tonic(Box::new(Status::unavailable("the server is shutting down; the query was cancelled")))),
                        (data, true),
                    )),
                }
            }
        });
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(cut)
            .map_err(|e| match e {
                FlightError::Tonic(s) => *s,
                FlightError::Arrow(datafusion::arrow::error::ArrowError::ExternalError(inner)) => {
                    match inner.downcast::<datafusion::error::DataFusionError>() {
                        Ok(df) => status(EngineError::from_datafusion(*df)),
                        Err(other) => Status::internal(other.to_string()),
                    }
                }
                other => Status::internal(other.to_string()),
            });
        Ok(Box::pin(stream))
    }

    async fn run_update(&self, mut session: Session, sql: &str) -> Result<i64, Status> {
        let out = session.execute(sql).await.map_err(status)?;
        let mut n: i64 = 0;
        for b in &out.batches {
            if let Some(c) = b.column_by_name("count")
                && let Some(a) = c.as_primitive_opt::<datafusion::arrow::datatypes::UInt64Type>()
            {
                n += a.iter().flatten().sum::<u64>() as i64;
            }
        }
        Ok(n)
    }

    fn prepared_sql(
        &self,
        handle: &[u8],
        access: &AccessView,
    ) -> Result<(String, SchemaRef), Status> {
        let key = String::from_utf8_lossy(handle).to_string();
        let map = self
            .prepared
            .lock()
            .map_err(|_| Status::internal("prepared statements lock"))?;
        let p = map
            .get(&key)
            .filter(|p| p.ticket_id == access.ticket_id)
            .ok_or_else(|| {
                Status::not_found(
                    "no such prepared statement (closed, or created with another ticket)",
                )
            })?;
        let sql = match &p.params {
            Some(params) => bind_params(&p.sql, params)?,
            None if p.parameter_schema.fields().is_empty() => p.sql.clone(),
            None => {
                return Err(Status::invalid_argument(
                    "the prepared statement has parameters: bind them first",
                ));
            }
        };
        Ok((sql, p.dataset_schema.clone()))
    }
}

#[tonic::async_trait]
impl FlightSqlService for CuveFlightService {
    type FlightService = CuveFlightService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let secret = Self::secret_of(&request)?;
        let ticket = self
            .engine
            .catalog()
            .authenticate(&secret)
            .map_err(|_| Status::unauthenticated(cuve_catalog::tickets::BAD_TICKET))?;
        // With Basic, the user name must be the ticket's user.
        if let Some(b) = request
            .metadata()
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| {
                h.strip_prefix("Basic ")
                    .or_else(|| h.strip_prefix("basic "))
            })
        {
            let (user, _) = Self::basic(b)?;
            if user.to_lowercase() != ticket.owner {
                return Err(Status::unauthenticated(cuve_catalog::tickets::BAD_TICKET));
            }
        }
        let output = futures::stream::iter(vec![Ok(HandshakeResponse {
            protocol_version: 0,
            payload: secret.clone().into(),
        })]);
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(output));
        let token = MetadataValue::try_from(format!("Bearer {secret}"))
            .map_err(|_| Status::internal("bad token"))?;
        response.metadata_mut().insert("authorization", token);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let mut session = self.session(&request)?;
        let schema = classic_schema(&session.plan_schema(&query.query).await.map_err(status)?);
        if schema.fields().is_empty() {
            // A statement that changes something runs now: clients need not fetch its (empty)
            // result for it to happen.
            session.execute(&query.query).await.map_err(status)?;
        }
        let handle = StatementHandle {
            sql: query.query.clone(),
            no_columns: schema.fields().is_empty(),
        };
        let ticket = TicketStatementQuery {
            statement_handle: serde_json::to_vec(&handle).unwrap_or_default().into(),
        };
        flight_info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request)?;
        let handle: StatementHandle = serde_json::from_slice(&ticket.statement_handle)
            .map_err(|_| Status::invalid_argument("malformed statement ticket"))?;
        if handle.no_columns {
            // Already run by GetFlightInfo.
            return Ok(Response::new(batch_stream(
                Arc::new(Schema::empty()),
                vec![],
            )));
        }
        Ok(Response::new(
            self.stream_sql(session, &handle.sql, false).await?,
        ))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let access = self.access(&request)?;
        let (sql, schema) = self.prepared_sql(&cmd.prepared_statement_handle, &access)?;
        if schema.fields().is_empty() {
            // As for plain statements: a statement that changes something runs now.
            let mut session = self.engine.session(access).map_err(status)?;
            session.execute(&sql).await.map_err(status)?;
        }
        flight_info(&schema, cmd.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request)?;
        let (sql, schema) = self.prepared_sql(&cmd.prepared_statement_handle, session.access())?;
        if schema.fields().is_empty() {
            // Already run by GetFlightInfo.
            return Ok(Response::new(batch_stream(schema, vec![])));
        }
        Ok(Response::new(self.stream_sql(session, &sql, false).await?))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let mut session = self.session(&request)?;
        let sql = number_placeholders(&query.query);
        // Parameter types, where DataFusion can infer them.
        let mut params: Vec<(String, DataType)> = Vec::new();
        if let Ok(plan) = session.context().state().create_logical_plan(&sql).await
            && let Ok(types) = plan.get_parameter_types()
        {
            let mut v: Vec<(String, Option<DataType>)> = types.into_iter().collect();
            v.sort_by_key(|(k, _)| k.trim_start_matches('$').parse::<usize>().unwrap_or(0));
            params = v
                .into_iter()
                .map(|(k, t)| (k, t.unwrap_or(DataType::Utf8)))
                .collect();
        }
        let dataset_schema = classic_schema(&session.plan_schema(&sql).await.map_err(status)?);
        let parameter_schema = Arc::new(Schema::new(
            params
                .iter()
                .map(|(k, t)| Field::new(k, t.clone(), true))
                .collect::<Vec<_>>(),
        ));
        let handle = format!("ps_{:016x}", rand::random::<u64>());
        let opts = IpcWriteOptions::default();
        let ds: IpcMessage = SchemaAsIpc::new(&dataset_schema, &opts)
            .try_into()
            .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
        let ps: IpcMessage = SchemaAsIpc::new(&parameter_schema, &opts)
            .try_into()
            .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
        self.prepared
            .lock()
            .map_err(|_| Status::internal("lock"))?
            .insert(
                handle.clone(),
                Prepared {
                    sql,
                    ticket_id: session.access().ticket_id.clone(),
                    dataset_schema,
                    parameter_schema,
                    params: None,
                },
            );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into_bytes().into(),
            dataset_schema: ds.0,
            parameter_schema: ps.0,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        let access = self.access(&request)?;
        let key = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
        let mut map = self.prepared.lock().map_err(|_| Status::internal("lock"))?;
        if map
            .get(&key)
            .is_some_and(|p| p.ticket_id == access.ticket_id)
        {
            map.remove(&key);
        }
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let access = self.access(&request)?;
        let key = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
                request.into_inner().map_err(FlightError::from),
            )
            .try_collect()
            .await
            .map_err(|e| Status::invalid_argument(format!("bad parameters: {e}")))?;
        let values: Vec<ScalarValue> = match batches.iter().find(|b| b.num_rows() > 0) {
            Some(b) => b
                .columns()
                .iter()
                .map(|c| ScalarValue::try_from_array(c, 0))
                .collect::<Result<_, _>>()
                .map_err(|e| Status::invalid_argument(e.to_string()))?,
            None => vec![],
        };
        let mut map = self.prepared.lock().map_err(|_| Status::internal("lock"))?;
        let p = map
            .get_mut(&key)
            .filter(|p| p.ticket_id == access.ticket_id)
            .ok_or_else(|| Status::not_found("no such prepared statement"))?;
        p.params = Some(values);
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(key.into_bytes().into()),
        })
    }

    async fn do_put_statement_update(
        &self,
        ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request)?;
        self.run_update(session, &ticket.query).await
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let access = self.access(&request)?;
        let key = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
        // Parameters may come with this call.
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
                request.into_inner().map_err(FlightError::from),
            )
            .try_collect()
            .await
            .unwrap_or_default();
        let sql = {
            let map = self.prepared.lock().map_err(|_| Status::internal("lock"))?;
            let p = map
                .get(&key)
                .filter(|p| p.ticket_id == access.ticket_id)
                .ok_or_else(|| Status::not_found("no such prepared statement"))?;
            match batches.iter().find(|b| b.num_rows() > 0) {
                Some(b) => {
                    let values: Vec<ScalarValue> = b
                        .columns()
                        .iter()
                        .map(|c| ScalarValue::try_from_array(c, 0))
                        .collect::<Result<_, _>>()
                        .map_err(|e| Status::invalid_argument(e.to_string()))?;
                    bind_params(&p.sql, &values)?
                }
                None => match &p.params {
                    Some(v) => bind_params(&p.sql, v)?,
                    None => p.sql.clone(),
                },
            }
        };
        let session = self.engine.session(access).map_err(status)?;
        self.run_update(session, &sql).await
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.access(&request)?;
        let schema = query.clone().into_builder(sql_info()).schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.access(&request)?;
        let b = query.into_builder(sql_info());
        let schema = b.schema();
        let batch = b.build().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(batch_stream(schema, vec![batch])))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.access(&request)?;
        let schema = query.into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.access(&request)?;
        let mut b = query.into_builder();
        b.append(crate::CATALOG_NAME);
        let schema = b.schema();
        let batch = b.build().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(batch_stream(schema, vec![batch])))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.access(&request)?;
        let schema = query.clone().into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request)?;
        let mut b = query.into_builder();
        if let Some(cat) = session.context().catalog(crate::CATALOG_NAME) {
            let mut names = cat.schema_names();
            names.sort();
            for db in names {
                b.append(crate::CATALOG_NAME, db);
            }
        }
        let schema = b.schema();
        let batch = b.build().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(batch_stream(schema, vec![batch])))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.access(&request)?;
        let schema = query.clone().into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request)?;
        let mut b = query.into_builder();
        if let Some(cat) = session.context().catalog(crate::CATALOG_NAME) {
            let mut dbs = cat.schema_names();
            dbs.sort();
            for db in dbs {
                let Some(schema) = cat.schema(&db) else {
                    continue;
                };
                let mut tables = schema.table_names();
                tables.sort();
                for t in tables {
                    if let Ok(Some(p)) = schema.table(&t).await {
                        b.append(
                            crate::CATALOG_NAME,
                            &db,
                            &t,
                            "TABLE",
                            classic_schema(&p.schema()).as_ref(),
                        )
                        .map_err(|e| Status::internal(e.to_string()))?;
                    }
                }
            }
        }
        let schema = b.schema();
        let batch = b.build().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(batch_stream(schema, vec![batch])))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.access(&request)?;
        flight_info(
            &table_types().schema(),
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.access(&request)?;
        let batch = table_types();
        Ok(Response::new(batch_stream(batch.schema(), vec![batch])))
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.access(&request)?;
        Err(Status::unimplemented(format!(
            "unsupported Flight SQL request {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn table_types() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "table_type",
        DataType::Utf8,
        false,
    )]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["TABLE"]))])
        .expect("static batch")
}

/// TLS certificate and key (PEM files).
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Serves Flight SQL on `listener` until `shutdown` resolves; then running queries are cancelled
/// and told so.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    tls: Option<TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), EngineError> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let service = CuveFlightService::new(engine, rx);
    let mut builder = tonic::transport::Server::builder();
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
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let signal = async move {
        shutdown.await;
        let _ = tx.send(true);
    };
    builder
        .add_service(FlightServiceServer::new(service))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_binding() {
        assert_eq!(
            number_placeholders("SELECT ? , '?' , ?"),
            "SELECT $1 , '?' , $2"
        );
        let sql = bind_params(
            "SELECT * FROM t WHERE a = ? AND b = ?",
            &[ScalarValue::from("x'y"), ScalarValue::Int64(Some(3))],
        )
        .unwrap();
        assert_eq!(sql, "SELECT * FROM t WHERE a = 'x''y' AND b = 3");
        assert!(bind_params("SELECT ?", &[]).is_err());
    }
}
