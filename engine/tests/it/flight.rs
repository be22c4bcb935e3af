//! The Flight SQL service with arrow-flight's own client against a server on 127.0.0.1:0:
//! every call authenticated, statements, prepared statements with parameters, updates,
//! metadata filtered by ticket, status codes, and the FlightInfo schema equal to DoGet's.

use std::sync::Arc;

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables};
use arrow_flight::{FlightInfo, Ticket};
use cuve_catalog::{Grant, Quota, Role};
use cuve_engine::{AccessView, Engine};
use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use futures::TryStreamExt;
use tonic::transport::Channel;

async fn start() -> (
    tempfile::TempDir,
    Arc<Engine>,
    String,
    String,
    tokio::sync::oneshot::Sender<()>,
) {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::open(home.path()).unwrap();
    let mut s = engine.session(AccessView::admin("t")).unwrap();
    s.execute("CREATE DATABASE d").await.unwrap();
    s.execute("CREATE TABLE d.pub (a STRING, n BIGINT, ssn STRING) TBLPROPERTIES ('sensitive_columns'='ssn')").await.unwrap();
    s.execute("CREATE TABLE d.secret (x STRING)").await.unwrap();
    s.execute("INSERT INTO d.pub VALUES ('가', 1, 's1'), ('b', 2, 's2'), ('c', 3, 's3')")
        .await
        .unwrap();
    let c = engine.catalog();
    c.add_user("ana", Role::Analyst, None).unwrap();
    c.add_user("root", Role::Admin, None).unwrap();
    let (_, analyst) = c
        .create_ticket(
            "ana",
            None,
            None,
            &[
                Grant::parse("SELECT:d.pub").unwrap(),
                Grant::parse("WRITE:d.pub").unwrap(),
            ],
            &Quota::default(),
        )
        .unwrap();
    let (_, admin) = c
        .create_ticket("root", None, None, &[], &Quota::default())
        .unwrap();
    let (listener, addr) = cuve_engine::flight::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let e = engine.clone();
    tokio::spawn(async move {
        cuve_engine::flight::serve(e, listener, None, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (
        home,
        engine,
        format!("http://{addr}"),
        format!("{analyst}\n{admin}"),
        tx,
    )
}

async fn client(url: &str, secret: Option<&str>) -> FlightSqlServiceClient<Channel> {
    let channel = Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = FlightSqlServiceClient::new(channel);
    if let Some(s) = secret {
        c.set_token(s.to_string());
    }
    c
}

async fn fetch(c: &mut FlightSqlServiceClient<Channel>, info: &FlightInfo) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for ep in &info.endpoint {
        let ticket: Ticket = ep.ticket.clone().unwrap();
        let stream = c.do_get(ticket).await.unwrap();
        out.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_sql_end_to_end() {
    let (_home, engine, url, secrets, stop) = start().await;
    let (analyst, admin) = secrets.split_once('\n').unwrap();

    // No or a bad ticket: UNAUTHENTICATED, for metadata calls too.
    let mut anon = client(&url, None).await;
    let e = anon.get_catalogs().await.unwrap_err().to_string();
    assert!(
        e.contains("Unauthenticated") || e.contains("no ticket"),
        "{e}"
    );
    let mut bad = client(&url, Some("tk_000000000000.00")).await;
    let e = bad
        .execute("SELECT 1".into(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid, expired or revoked ticket"), "{e}");

    let mut c = client(&url, Some(analyst)).await;
    // Statement: FlightInfo's schema is exactly what DoGet sends.
    let info = c
        .execute("SELECT a, n FROM d.pub ORDER BY n".into(), None)
        .await
        .unwrap();
    let announced: Schema = info.clone().try_decode_schema().unwrap();
    let batches = fetch(&mut c, &info).await;
    assert_eq!(batches[0].schema().as_ref(), &announced);
    let a: Vec<&str> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_string::<i32>()
                .iter()
                .flatten()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(a, vec!["가", "b", "c"]);
    // Denials: a forbidden table looks missing; SET is refused (a Flight call is its own
    // session, so it would not carry over); sensitive column absent.
    let e = c
        .execute("SELECT * FROM d.secret".into(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not found"), "{e}");
    let e = c
        .execute("SET datafusion.execution.batch_size = 1".into(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("do not carry over"), "{e}");
    assert!(
        c.execute("SELECT ssn FROM d.pub".into(), None)
            .await
            .is_err()
    );
    // Metadata is filtered by the ticket.
    let info = c
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let schemas = fetch(&mut c, &info).await;
    let names: Vec<&str> = schemas
        .iter()
        .flat_map(|b| {
            b.column(1)
                .as_string::<i32>()
                .iter()
                .flatten()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(names, vec!["d"]);
    let info = c
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: true,
        })
        .await
        .unwrap();
    let tables = fetch(&mut c, &info).await;
    let t: Vec<&str> = tables
        .iter()
        .flat_map(|b| {
            b.column(2)
                .as_string::<i32>()
                .iter()
                .flatten()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(t, vec!["pub"]);
    assert_eq!(tables[0].num_columns(), 5, "table_schema included");
    let info = c.get_sql_info(vec![]).await.unwrap();
    assert!(!fetch(&mut c, &info).await.is_empty());
    let info = c.get_table_types().await.unwrap();
    assert_eq!(fetch(&mut c, &info).await[0].num_rows(), 1);

    // Prepared query with a bound parameter.
    let mut ps = c
        .prepare("SELECT a FROM d.pub WHERE n >= ? ORDER BY a".into(), None)
        .await
        .unwrap();
    let params = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, true)])),
        vec![Arc::new(Int64Array::from(vec![2]))],
    )
    .unwrap();
    ps.set_parameters(params).unwrap();
    let info = ps.execute().await.unwrap();
    let rows: usize = fetch(&mut c, &info)
        .await
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 2);
    ps.close().await.unwrap();
    // Updates execute, plain and prepared (with a value that would break naive quoting); a
    // ticket without SENSITIVE writes only the columns it sees.
    let n = c
        .execute_update("INSERT INTO d.pub VALUES ('d', 4)".into(), None)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let mut pu = c
        .prepare("INSERT INTO d.pub VALUES (?, 5)".into(), None)
        .await
        .unwrap();
    let p = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, true)])),
        vec![Arc::new(StringArray::from(vec!["o'neil"]))],
    )
    .unwrap();
    pu.set_parameters(p).unwrap();
    pu.execute_update().await.unwrap();
    let info = c
        .execute(
            "SELECT COUNT(*) AS c FROM d.pub WHERE a = 'o''neil'".into(),
            None,
        )
        .await
        .unwrap();
    let b = fetch(&mut c, &info).await;
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 1);
    // DDL needs ALTER; the admin ticket has it.
    assert!(
        c.execute_update("CREATE TABLE d.x (a STRING)".into(), None)
            .await
            .is_err()
    );
    let mut root = client(&url, Some(admin)).await;
    root.execute_update("CREATE TABLE d.x (a STRING)".into(), None)
        .await
        .unwrap();
    // Basic handshake returns the Bearer token.
    let mut hs = client(&url, None).await;
    hs.handshake("ana", analyst).await.unwrap();
    assert!(hs.execute("SELECT 1".into(), None).await.is_ok());
    let mut wrong = client(&url, None).await;
    assert!(
        wrong.handshake("root", analyst).await.is_err(),
        "the user must own the ticket"
    );
    // Basic on every call, with no handshake (as some JDBC clients send it): the user is
    // checked on each call, not only at the handshake.
    use base64::Engine as _;
    let basic = |user: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{analyst}"))
        )
    };
    let mut per_call = client(&url, None).await;
    per_call.set_header("authorization", basic("ana"));
    let info = per_call.execute("SELECT 1".into(), None).await.unwrap();
    assert_eq!(fetch(&mut per_call, &info).await[0].num_rows(), 1);
    let mut not_owner = client(&url, None).await;
    not_owner.set_header("authorization", basic("root"));
    let err = not_owner
        .execute("SELECT 1".into(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("ticket"), "{err}");
    // Calls are audited with the Flight client address.
    let audit = engine.catalog().audit_entries(None, None, 1000).unwrap();
    assert!(audit.iter().any(|a| {
        a.client
            .as_deref()
            .unwrap_or("")
            .starts_with("flight 127.0.0.1:")
    }));
    let _ = stop.send(());
}

/// A statement that panics while it executes (the fault-injection function) fails with
/// INTERNAL and its message; the server keeps serving everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_statement_is_internal_and_the_server_lives() {
    cuve_engine::faults::enable();
    let (_home, _engine, url, secrets, stop) = start().await;
    let (analyst, _) = secrets.split_once('\n').unwrap();
    let mut c = client(&url, Some(analyst)).await;
    let sql = "SELECT cuve_test_panic(v) FROM (VALUES (1), (2)) t(v)";
    let failed = match c.execute(sql.into(), None).await {
        Err(e) => e.to_string(),
        Ok(info) => {
            let ticket = info.endpoint[0].ticket.clone().unwrap();
            let stream = c.do_get(ticket).await;
            match stream {
                Err(e) => e.to_string(),
                Ok(s) => s
                    .try_collect::<Vec<_>>()
                    .await
                    .map(|_| String::new())
                    .unwrap_or_else(|e| e.to_string()),
            }
        }
    };
    assert!(
        failed.contains("internal error: cuve_test_panic was called"),
        "{failed}"
    );
    assert!(
        failed.contains("Internal") || failed.contains("INTERNAL"),
        "{failed}"
    );
    assert!(!failed.contains("RST_STREAM"), "{failed}");
    let info = c.execute("SELECT 1 AS one".into(), None).await.unwrap();
    let batches = fetch(&mut c, &info).await;
    assert_eq!(batches[0].num_rows(), 1);
    let _ = stop.send(());
}
