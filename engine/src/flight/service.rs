//! The Flight SQL methods. Each call is already authenticated ([`super::auth`]); statements
//! run through a [`Session`] of the caller's ticket, with parameters bound as values. The
//! schema announced by GetFlightInfo comes from the logical plan (no files are read for it);
//! DoGet plans once and streams batch by batch.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
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
use datafusion::arrow::array::{AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{access, caller};
use super::handle::{PreparedHandle, rows};
use super::sessions::{Pooled, SessionPool};
use crate::error::{EngineError, ErrorKind};
use crate::parse::Params;
use crate::parse::params::{has_placeholders, number_question_marks};
use crate::session::Engine;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// What a statement ticket carries between GetFlightInfo and DoGet (plain and prepared
/// statements alike): the SQL and its bound parameter rows.
#[derive(Serialize, Deserialize)]
struct StatementHandle {
    sql: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<String>,
    /// The schema announced had no columns (a statement that changes something, already run).
    no_columns: bool,
}

/// The Flight SQL service.
pub struct CuveFlightService {
    sessions: SessionPool,
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

/// Flight calls share no session: `USE` and `SET` would do nothing for the next call, so they
/// are refused instead of reporting success.
fn refuse_session_state(sql: &str) -> Result<(), Status> {
    let first_word = crate::parse::tokens::tokenize(sql)
        .ok()
        .and_then(|ts| ts.into_iter().find(|t| !t.is_blank()))
        .map(|t| t.token.to_string().to_ascii_uppercase());
    if matches!(first_word.as_deref(), Some("SET" | "RESET" | "USE")) {
        return Err(Status::invalid_argument(
            "USE and SET do not carry over between Flight SQL calls (each call is its own session): qualify table names as database.table instead",
        ));
    }
    Ok(())
}

/// Each parameter row (or one run without parameters); an error if the statement has
/// placeholders and nothing was bound.
fn runs(
    sql: &str,
    rows: Option<Vec<Vec<datafusion::common::ScalarValue>>>,
) -> Result<Vec<Params>, Status> {
    match rows {
        Some(rows) if !rows.is_empty() => Ok(rows.into_iter().map(Params::Positional).collect()),
        _ if has_placeholders(sql) => Err(Status::invalid_argument(
            "the prepared statement has parameters: bind them first",
        )),
        _ => Ok(vec![Params::None]),
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

/// Flight clients (the JDBC driver, older pyarrow) may not read Utf8View: send Utf8.
/// Nested fields keep their types (a list of views is rare in results).
fn classic_schema(schema: &SchemaRef) -> SchemaRef {
    let plain = |t: &DataType| {
        matches!(t, DataType::Utf8View)
            || matches!(t, DataType::Dictionary(_, v) if v.as_ref() == &DataType::Utf8)
    };
    if !schema
        .fields()
        .iter()
        .any(|f| plain(f.data_type()) || !f.is_nullable())
    {
        return schema.clone();
    }
    // Every column is announced nullable: GetFlightInfo's schema comes from the logical plan,
    // whose nullability can differ from the executed plan's, and clients check they agree.
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| {
                let f = f.as_ref().clone().with_nullable(true);
                if plain(f.data_type()) {
                    f.with_data_type(DataType::Utf8)
                } else {
                    f
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
            sessions: SessionPool::new(engine),
            shutdown,
        }
    }

    fn session<T>(&self, req: &Request<T>) -> Result<Pooled, Status> {
        self.sessions.get(access(req)?).map_err(status)
    }

    /// Streams the results of running `sql` once per parameter row, one after the other;
    /// cut off with an error when the server shuts down.
    async fn stream_sql(
        &self,
        mut session: Pooled,
        sql: &str,
        mut runs: Vec<Params>,
    ) -> Result<BoxStream<arrow_flight::FlightData>, Status> {
        let first = runs.remove(0);
        let out = session
            .execute_stream_with(sql, &first)
            .await
            .map_err(status)?;
        let schema = classic_schema(&out.schema);
        let target = schema.clone();
        let sql = sql.to_string();
        type State = (
            Pooled,
            std::vec::IntoIter<Params>,
            Option<SendableRecordBatchStream>,
        );
        let batches = futures::stream::unfold(
            (session, runs.into_iter(), Some(out.stream)) as State,
            move |(mut session, mut rest, mut current)| {
                let sql = sql.clone();
                async move {
                    loop {
                        if let Some(stream) = current.as_mut() {
                            match stream.next().await {
                                Some(item) => {
                                    let item = item.map_err(EngineError::from_datafusion);
                                    return Some((item, (session, rest, current)));
                                }
                                None => drop(current.take()),
                            }
                        }
                        let params = rest.next()?;
                        match session.execute_stream_with(&sql, &params).await {
                            Ok(out) => current = Some(out.stream),
                            Err(e) => {
                                return Some((Err(e), (session, Vec::new().into_iter(), None)));
                            }
                        }
                    }
                }
            },
        );
        let data = Box::pin(batches).map(move |item| match item {
            Ok(b) => classic_batch(b, &target).map_err(FlightError::from),
            Err(e) => Err(FlightError::Tonic(Box::new(status(e)))),
        });
        let shutdown = self.shutdown.clone();
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
                other => Status::internal(other.to_string()),
            });
        Ok(Box::pin(stream))
    }

    /// Runs a statement that changes something once per parameter row; the rows it changed.
    async fn run_update(
        &self,
        mut session: Pooled,
        sql: &str,
        runs: Vec<Params>,
    ) -> Result<i64, Status> {
        let mut n: i64 = 0;
        for params in &runs {
            let out = session.execute_with(sql, params).await.map_err(status)?;
            for b in &out.batches {
                if let Some(c) = b.column_by_name("count")
                    && let Some(a) =
                        c.as_primitive_opt::<datafusion::arrow::datatypes::UInt64Type>()
                {
                    n += a.iter().flatten().sum::<u64>() as i64;
                }
            }
        }
        Ok(n)
    }

    /// GetFlightInfo for a statement (plain or prepared): the schema from the logical plan; a
    /// statement that changes something runs now (clients need not fetch its empty result).
    async fn statement_info(
        &self,
        mut session: Pooled,
        sql: &str,
        params: Option<String>,
        runs: Vec<Params>,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        refuse_session_state(sql)?;
        let schema = classic_schema(&session.plan_schema(sql, &runs[0]).await.map_err(status)?);
        let no_columns = schema.fields().is_empty();
        if no_columns {
            self.run_update(session, sql, runs).await?;
        }
        let handle = StatementHandle {
            sql: sql.to_string(),
            params,
            no_columns,
        };
        let ticket = TicketStatementQuery {
            statement_handle: serde_json::to_vec(&handle).unwrap_or_default().into(),
        };
        flight_info(&schema, ticket.as_any().encode_to_vec(), descriptor)
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
        let c = caller(&request)?;
        // With Basic, the user name must be the ticket's user.
        if let Some(user) = &c.basic_user
            && user.to_lowercase() != c.access.user
        {
            return Err(Status::unauthenticated(cuve_catalog::tickets::BAD_TICKET));
        }
        let secret = c.secret.clone();
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
        let session = self.session(&request)?;
        self.statement_info(
            session,
            &query.query,
            None,
            vec![Params::None],
            request.into_inner(),
        )
        .await
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
        let prepared = PreparedHandle {
            sql: handle.sql.clone(),
            params: handle.params,
        };
        let runs = runs(&handle.sql, prepared.rows()?)?;
        Ok(Response::new(
            self.stream_sql(session, &handle.sql, runs).await?,
        ))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request)?;
        let handle = PreparedHandle::decode(&cmd.prepared_statement_handle)?;
        let runs = runs(&handle.sql, handle.rows()?)?;
        self.statement_info(
            session,
            &handle.sql,
            handle.params.clone(),
            runs,
            request.into_inner(),
        )
        .await
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request)?;
        let handle = PreparedHandle::decode(&cmd.prepared_statement_handle)?;
        refuse_session_state(&handle.sql)?;
        let runs = runs(&handle.sql, handle.rows()?)?;
        Ok(Response::new(
            self.stream_sql(session, &handle.sql, runs).await?,
        ))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let mut session = self.session(&request)?;
        let sql = number_question_marks(&query.query).map_err(status)?;
        refuse_session_state(&sql)?;
        let (schema, params) = session.describe(&sql).await.map_err(status)?;
        let schema = classic_schema(&schema);
        // A placeholder in the select list has no type until bound: the schema is announced
        // by GetFlightInfo then.
        let dataset_schema = if schema
            .fields()
            .iter()
            .any(|f| f.data_type() == &DataType::Null)
        {
            Arc::new(Schema::empty())
        } else {
            schema
        };
        let parameter_schema = Arc::new(Schema::new(
            params
                .iter()
                .map(|(k, t)| Field::new(k, t.clone().unwrap_or(DataType::Utf8), true))
                .collect::<Vec<_>>(),
        ));
        let opts = IpcWriteOptions::default();
        let ipc = |s: &Schema| -> Result<IpcMessage, Status> {
            SchemaAsIpc::new(s, &opts)
                .try_into()
                .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: PreparedHandle::new(sql).encode(),
            dataset_schema: if dataset_schema.fields().is_empty() {
                Default::default()
            } else {
                ipc(&dataset_schema)?.0
            },
            parameter_schema: ipc(&parameter_schema)?.0,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        // Stateless: nothing is held for the handle.
        access(&request)?;
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        access(&request)?;
        let handle = PreparedHandle::decode(&query.prepared_statement_handle)?;
        let batches = read_batches(request).await?;
        rows(&batches)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.bind(&batches)?.encode()),
        })
    }

    async fn do_put_statement_update(
        &self,
        ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request)?;
        refuse_session_state(&ticket.query)?;
        self.run_update(session, &ticket.query, vec![Params::None])
            .await
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request)?;
        let handle = PreparedHandle::decode(&query.prepared_statement_handle)?;
        refuse_session_state(&handle.sql)?;
        // Parameter rows come with this call (or were bound before); each row runs once.
        let batches = read_batches(request).await?;
        let bound = if batches.iter().any(|b| b.num_rows() > 0) {
            Some(rows(&batches)?)
        } else {
            handle.rows()?
        };
        let runs = runs(&handle.sql, bound)?;
        self.run_update(session, &handle.sql, runs).await
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        access(&request)?;
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
        access(&request)?;
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
        access(&request)?;
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
        access(&request)?;
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
        access(&request)?;
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
        for db in session.databases() {
            b.append(crate::CATALOG_NAME, db);
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
        access(&request)?;
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
        for db in session.databases() {
            for (t, schema) in session.tables(&db).await {
                b.append(
                    crate::CATALOG_NAME,
                    &db,
                    &t,
                    "TABLE",
                    classic_schema(&schema).as_ref(),
                )
                .map_err(|e| Status::internal(e.to_string()))?;
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
        access(&request)?;
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
        access(&request)?;
        let batch = table_types();
        Ok(Response::new(batch_stream(batch.schema(), vec![batch])))
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        access(&request)?;
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

/// The parameter batches a client sent; a malformed stream is an error, not "no parameters".
async fn read_batches(
    request: Request<PeekableFlightDataStream>,
) -> Result<Vec<RecordBatch>, Status> {
    // Some clients send the command in a message of its own, with no Arrow data: skip those.
    let data = request
        .into_inner()
        .try_filter(|d| futures::future::ready(!d.data_header.is_empty()));
    arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
        data.map_err(FlightError::from),
    )
    .try_collect()
    .await
    .map_err(|e| Status::invalid_argument(format!("bad parameters: {e}")))
}
