//! The analyst's REPL (`cuve` or `cuve repl`): history in `$CUVE_HOME/history`, statements over
//! several lines until `;`, Tab completion of what the ticket can see, backslash commands,
//! timing and scan summaries, Ctrl-C cancels the running query (not the REPL), Ctrl-D exits.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cuve_engine::Session;
use cuve_engine::parse::{is_complete, split_statements};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::context::CliContext;
use crate::exit::{CliError, CliResult};
use crate::output::{Format, StreamError, print_summary, stream_result};

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "JOIN",
    "LEFT JOIN",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "LIKE",
    "IS NULL",
    "DISTINCT",
    "COUNT",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "UNION ALL",
    "WITH",
    "EXPLAIN",
    "ANALYZE",
    "SHOW",
    "DATABASES",
    "TABLES",
    "PARTITIONS",
    "FUNCTIONS",
    "DESCRIBE",
    "FORMATTED",
    "CREATE",
    "EXTERNAL",
    "TABLE",
    "DATABASE",
    "DROP",
    "ALTER",
    "PARTITIONED BY",
    "CLUSTERED BY",
    "SORTED BY",
    "BUCKETS",
    "STORED AS",
    "PARQUET",
    "LOCATION",
    "TBLPROPERTIES",
    "INSERT INTO",
    "INSERT OVERWRITE",
    "PARTITION",
    "MSCK REPAIR TABLE",
    "USE",
    "LATERAL VIEW",
    "OUTER",
];

/// Tab completion over keywords and what the session can see.
#[derive(Clone, Default)]
struct CuveHelper {
    words: Arc<RwLock<Vec<String>>>,
}

impl CuveHelper {
    fn refresh(&self, session: &Session) {
        let mut words: Vec<String> = KEYWORDS.iter().map(|s| s.to_string()).collect();
        let ctx = session.context();
        if let Some(cat) = ctx.catalog(cuve_engine::CATALOG_NAME) {
            for db in cat.schema_names() {
                words.push(db.clone());
                if let Some(schema) = cat.schema(&db) {
                    for t in schema.table_names() {
                        words.push(format!("{db}.{t}"));
                        words.push(t.clone());
                        let provider = futures::executor::block_on(schema.table(&t)).ok().flatten();
                        if let Some(p) = provider {
                            for f in p.schema().fields() {
                                words.push(f.name().clone());
                            }
                        }
                    }
                }
            }
        }
        for f in cuve_udf::docs::all_functions(ctx) {
            words.push(f.name);
        }
        words.sort();
        words.dedup();
        if let Ok(mut w) = self.words.write() {
            *w = words;
        }
    }
}

impl Completer for CuveHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = &line[..pos];
        let start = head
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map(|i| i + head[i..].chars().next().map(|c| c.len_utf8()).unwrap_or(1))
            .unwrap_or(0);
        let prefix = head[start..].to_lowercase();
        if prefix.is_empty() {
            return Ok((pos, vec![]));
        }
        let words = self.words.read().map(|w| w.clone()).unwrap_or_default();
        let upper = head[start..]
            .chars()
            .next()
            .map(|c| c.is_uppercase())
            .unwrap_or(false);
        let out = words
            .into_iter()
            .filter(|w| w.to_lowercase().starts_with(&prefix))
            .map(|w| {
                let is_kw = KEYWORDS.contains(&w.as_str());
                let rep = if is_kw && !upper {
                    w.to_lowercase()
                } else {
                    w.clone()
                };
                Pair {
                    display: w,
                    replacement: rep,
                }
            })
            .collect();
        Ok((start, out))
    }
}

impl Hinter for CuveHelper {
    type Hint = String;
}
impl Highlighter for CuveHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}
impl Validator for CuveHelper {}
impl Helper for CuveHelper {}

struct ReplState {
    format: Format,
    max_rows: Option<usize>,
    timing: bool,
}

const HELP: &str = "\
  \\l                 list databases
  \\d                 list tables of the current database
  \\d db.table        describe a table
  \\df [pattern]      list functions (e.g. \\df hangul*)
  \\timing            toggle row counts, time and scan summaries
  \\format F          table | csv | json | ndjson
  \\maxrows N         rows shown in table format (0 = all)
  \\i FILE            run a SQL file
  \\?                 this help
  \\q                 quit (or Ctrl-D)
  Statements end with ';' and may span lines. Ctrl-C cancels a running query.";

/// Runs the REPL.
pub async fn run(ctx: &CliContext) -> CliResult {
    let mut session = ctx.session()?;
    let helper = CuveHelper::default();
    helper.refresh(&session);
    let mut rl: Editor<CuveHelper, DefaultHistory> =
        Editor::new().map_err(|e| CliError::io(format!("cannot start the line editor: {e}")))?;
    rl.set_helper(Some(helper.clone()));
    let history = ctx.home.join("history");
    let _ = rl.load_history(&history);
    let mut state = ReplState {
        format: Format::Table,
        max_rows: Some(1000),
        timing: true,
    };
    println!(
        "cuve {} (ticket user: {}) — \\? for help, \\q to quit",
        env!("CARGO_PKG_VERSION"),
        session.access().user
    );
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() {
            format!("cuve:{}> ", session.current_database())
        } else {
            "    ...> ".to_string()
        };
        match rl.readline(&prompt) {
            Ok(line) => {
                if buf.is_empty() && line.trim_start().starts_with('\\') {
                    let _ = rl.add_history_entry(line.trim());
                    let _ = rl.save_history(&history);
                    if !backslash(line.trim(), &mut session, &mut state, &helper).await {
                        break;
                    }
                    continue;
                }
                if buf.is_empty() && line.trim().is_empty() {
                    continue;
                }
                buf.push_str(&line);
                buf.push('\n');
                if is_complete(&buf) {
                    let text = std::mem::take(&mut buf);
                    let _ = rl.add_history_entry(text.trim());
                    let _ = rl.save_history(&history);
                    run_text(&text, &mut session, &state, &helper).await;
                }
            }
            Err(ReadlineError::Interrupted) => {
                buf.clear();
                println!("^C");
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(CliError::io(format!("reading input: {e}"))),
        }
    }
    let _ = rl.save_history(&history);
    Ok(())
}

/// Runs every statement of `text`; errors are printed, the REPL goes on.
async fn run_text(text: &str, session: &mut Session, state: &ReplState, helper: &CuveHelper) {
    let statements = match split_statements(text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", e.user_message());
            return;
        }
    };
    for stmt in statements {
        let ddl = {
            let l = stmt.text.trim_start().to_ascii_lowercase();
            ["create", "drop", "alter", "use", "msck"]
                .iter()
                .any(|k| l.starts_with(k))
        };
        if !run_one(&stmt.text, session, state).await {
            break;
        }
        if ddl {
            helper.refresh(session);
        }
    }
}

/// Queries run on their own runtime, so a CPU-bound plan never starves the REPL's runtime
/// (Ctrl-C, the progress line). A cancelled query's runtime is let go (its threads end when
/// the operators next yield) and the next query gets a fresh one.
fn query_runtime() -> std::sync::Arc<tokio::runtime::Runtime> {
    let mut guard = QUERY_RT.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .get_or_insert_with(|| {
            std::sync::Arc::new(
                tokio::runtime::Builder::new_multi_thread()
                    .thread_name("cuve-query")
                    .thread_stack_size(cuve_engine::THREAD_STACK)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for queries"),
            )
        })
        .clone()
}

static QUERY_RT: std::sync::Mutex<Option<std::sync::Arc<tokio::runtime::Runtime>>> =
    std::sync::Mutex::new(None);

/// Lets the current query runtime go (after a cancel).
fn abandon_query_runtime() {
    let taken = QUERY_RT.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(rt) = taken {
        match std::sync::Arc::try_unwrap(rt) {
            Ok(rt) => rt.shutdown_background(),
            Err(shared) => std::mem::forget(shared),
        }
    }
}

/// Runs one statement; `false` when it failed or was cancelled.
async fn run_one(sql: &str, session: &mut Session, state: &ReplState) -> bool {
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let progress = tty.then(|| {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            loop {
                eprint!(
                    "\r  running {:.0}s (Ctrl-C cancels)",
                    started.elapsed().as_secs_f64()
                );
                let _ = std::io::stderr().flush();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    });
    // Plan and run on the query runtime (operators spawn their tasks there), so Ctrl-C and the
    // progress line are never starved by a CPU-bound plan.
    let rt = query_runtime();
    let planned = {
        let _enter = rt.enter();
        tokio::select! {
            p = session.execute_stream(sql) => Some(p),
            _ = tokio::signal::ctrl_c() => None,
        }
    };
    let result = match planned {
        None => None,
        Some(Err(e)) => Some(Err(e.user_message())),
        Some(Ok(out)) => {
            let schema = out.schema.clone();
            let scans = out.scans.clone();
            let job = out.job.clone();
            let (format, max_rows) = (state.format, state.max_rows);
            // Rows are printed as they arrive; with \maxrows the query stops being read there.
            let mut task =
                rt.spawn(
                    async move { stream_result(std::io::stdout(), format, max_rows, out).await },
                );
            tokio::select! {
                joined = &mut task => Some(match joined {
                    Ok(Ok(rows)) => Ok(rows),
                    Ok(Err(StreamError::Engine(e))) => Err(e.user_message()),
                    Ok(Err(StreamError::Write(e))) => Err(format!("writing results: {e}")),
                    Err(e) => Err(format!("query task failed: {e}")),
                }).map(|r| r.map(|rows| (schema, scans, job, rows))),
                _ = tokio::signal::ctrl_c() => {
                    task.abort();
                    drop(task);
                    drop(rt);
                    abandon_query_runtime();
                    None
                }
            }
        }
    };
    if let Some(p) = progress {
        p.abort();
        if started.elapsed() >= Duration::from_secs(1) {
            eprint!("\r{:60}\r", "");
        }
    }
    if result.is_none() {
        abandon_query_runtime();
    }
    match result {
        None => {
            eprintln!("query cancelled");
            false
        }
        Some(Err(e)) => {
            eprintln!("error: {e}");
            false
        }
        Some(Ok((schema, scans, job, rows))) => {
            if state.timing {
                print_summary(&schema, rows, &scans, job, started).await;
            }
            true
        }
    }
}

/// Handles a backslash command; `false` to quit.
async fn backslash(
    cmd: &str,
    session: &mut Session,
    state: &mut ReplState,
    helper: &CuveHelper,
) -> bool {
    let mut parts = cmd.splitn(2, char::is_whitespace);
    let name = parts.next().unwrap_or("");
    let arg = parts.next().map(str::trim).unwrap_or("");
    match name {
        "\\q" => return false,
        "\\?" | "\\h" => println!("{HELP}"),
        "\\l" => {
            run_one("SHOW DATABASES", session, state).await;
        }
        "\\d" if arg.is_empty() => {
            run_one("SHOW TABLES", session, state).await;
        }
        "\\d" => {
            run_one(&format!("DESCRIBE {arg}"), session, state).await;
        }
        "\\df" => {
            let sql = if arg.is_empty() {
                "SHOW FUNCTIONS".to_string()
            } else {
                format!("SHOW FUNCTIONS LIKE '{}'", arg.replace('\'', "''"))
            };
            run_one(&sql, session, state).await;
        }
        "\\timing" => {
            state.timing = !state.timing;
            println!("timing is {}", if state.timing { "on" } else { "off" });
        }
        "\\format" => match arg {
            "table" => state.format = Format::Table,
            "csv" => state.format = Format::Csv,
            "json" => state.format = Format::Json,
            "ndjson" => state.format = Format::Ndjson,
            _ => eprintln!("error: \\format takes table, csv, json or ndjson"),
        },
        "\\maxrows" => match arg.parse::<usize>() {
            Ok(0) => state.max_rows = None,
            Ok(n) => state.max_rows = Some(n),
            Err(_) => eprintln!("error: \\maxrows takes a number (0 = all rows)"),
        },
        "\\i" => match std::fs::read_to_string(arg) {
            Ok(text) => run_text(&text, session, state, helper).await,
            Err(e) => eprintln!("error: cannot read {arg}: {e}"),
        },
        other => eprintln!("error: unknown command {other} (\\? lists the commands)"),
    }
    true
}
