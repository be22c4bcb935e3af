//! `cuve`: the command-line front end. `main` only parses flags and dispatches; each command
//! lives in its own module and is thin over `cuve-engine`.

mod admin;
mod batch;
mod cluster;
mod context;
mod demo;
mod exit;
mod ingest;
mod logging;
mod output;
mod repl;
mod serve;
mod sql;
mod templates;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: DataFusion's and ingest's many short-lived buffers are allocated and freed faster
/// than with the system allocator (as in datafusion-cli). Built without transparent huge pages
/// (`no_thp`): with them, memory mimalloc returned and touches again is faulted back in 2 MiB at a
/// time, and zeroing those pages took a fifth of a small scan's CPU (perf, benches/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (index 15 of `mi_option_e` in mimalloc 3's mimalloc.h; the
/// Rust bindings do not name it; a test checks its default, 1,000 ms in mimalloc 3's options.c).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// For batch commands that allocate and free large buffers over and over (ingest): memory
/// mimalloc frees stays with the process for reuse instead of being returned to the OS after
/// a second and faulted back in, zeroed, on the next use. Measured on the benchmark's ingest: system
/// time 12 s to 6 s, wall 37 s to 34 s, peak RSS 2.0 to 2.6 GiB. Long-running commands (REPL,
/// serve) keep the default and give memory back.
fn keep_freed_memory() {
    // SAFETY: sets an integer option; mimalloc reads options atomically on each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

use clap::{Parser, Subcommand};

use crate::output::Format;

/// Cuve: SQL over date-partitioned, bucketed log tables.
#[derive(Debug, Parser)]
#[command(name = "cuve", version, about, long_about = None)]
pub struct Cli {
    /// Warehouse directory (catalog.db, warehouse/, credentials). Default: $CUVE_HOME, else ~/.cuve
    #[arg(long, global = true, env = "CUVE_HOME", value_name = "DIR")]
    home: Option<PathBuf>,

    /// Where managed tables keep their files: a directory, file:///dir or s3://bucket/prefix
    /// (credentials and endpoint from the AWS_* variables). Default: the one this home was last
    /// given, else $CUVE_HOME/warehouse
    #[arg(long, global = true, env = "CUVE_WAREHOUSE", value_name = "URL")]
    warehouse: Option<String>,

    /// Run queries on the Ballista cluster of this scheduler (host:port; `cuve scheduler`)
    /// instead of in process
    #[arg(long, global = true, env = "CUVE_CLUSTER", value_name = "ADDR")]
    cluster: Option<String>,

    /// Ticket secret to run as (default: the local admin ticket of the embedded warehouse)
    #[arg(
        long,
        global = true,
        env = "CUVE_TICKET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    ticket: Option<String>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run SQL statements (from -e, -f or standard input) and print their results.
    Sql {
        /// SQL text; several statements separated by ';'
        #[arg(
            short = 'e',
            long = "execute",
            value_name = "SQL",
            conflicts_with = "file"
        )]
        execute: Option<String>,
        /// File of SQL statements separated by ';'
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Build a sample warehouse (a few days of search logs), load it and print the five analyses.
    Demo {
        /// Days of sample logs to generate
        #[arg(long, default_value_t = 3)]
        days: u32,
        /// Log lines per day
        #[arg(long, default_value_t = 20_000)]
        rows_per_day: u64,
    },
    /// Load raw log lines (JSON lines, CSV, TSV) into a table, exactly once.
    Ingest(ingest::IngestArgs),
    /// Warehouse administration (first admin).
    #[command(subcommand)]
    Admin(admin::AdminCmd),
    /// Users (admin, owner, analyst).
    #[command(subcommand)]
    User(admin::UserCmd),
    /// Tickets: access grants and quotas.
    #[command(subcommand)]
    Ticket(admin::TicketCmd),
    /// The interactive SQL shell (also what `cuve` alone starts).
    Repl,
    /// Serve Arrow Flight SQL (ADBC, JDBC) with the ticket secret as Bearer token.
    Serve {
        /// Address to listen on (loopback by default; port 0 picks a free port)
        #[arg(long, default_value = "127.0.0.1:50051")]
        addr: String,
        /// TLS certificate (PEM)
        #[arg(long, value_name = "PEM")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM)
        #[arg(long, value_name = "PEM")]
        tls_key: Option<PathBuf>,
        #[command(flatten)]
        http: serve::HttpArgs,
        #[command(flatten)]
        maintain: serve::MaintainArgs,
    },
    /// Run a batch job: statements in order, stop at the first failure.
    Run {
        /// SQL file
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        batch: batch::BatchArgs,
    },
    /// The five recurring analyses: ctr, qc-uqc, exposed-docs, inflow, age-gender.
    #[command(subcommand)]
    Template(tools::TemplateCmd),
    /// The SQL archive: answered requests by issue number.
    #[command(subcommand)]
    Archive(tools::ArchiveCmd),
    /// A Ballista scheduler with Cuve's functions (queries of `--cluster` clients run here).
    Scheduler {
        /// Address to listen on (loopback by default; the cluster network must be private)
        #[arg(long, default_value = "127.0.0.1:50050")]
        addr: String,
    },
    /// A Ballista executor with Cuve's functions and object stores.
    Executor {
        /// The scheduler (host:port)
        #[arg(long, value_name = "ADDR")]
        scheduler: String,
        /// Address of this executor's Arrow Flight endpoint (shuffle data)
        #[arg(long, default_value = "127.0.0.1:50061")]
        addr: String,
        /// Directory for shuffle files
        #[arg(long, value_name = "DIR")]
        work_dir: PathBuf,
        /// Task slots (default: the machine's cores)
        #[arg(long)]
        cores: Option<usize>,
    },
    /// The Ballista cluster of `--cluster ADDR`: `status` lists its executors and recent jobs.
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
    /// The warehouse's storage (admin): `vacuum` deletes files no table refers to.
    #[command(subcommand)]
    Warehouse(tools::WarehouseCmd),
    /// Tables' lifecycle: `maintain` runs compaction and expiry once.
    #[command(subcommand)]
    Table(tools::TableCmd),
    /// Read the audit log (admin).
    Audit {
        /// Only entries at or after this time (RFC 3339 or YYYY-MM-DD)
        #[arg(long)]
        since: Option<String>,
        /// Only entries of this ticket id (`cuve audit --ticket tk_...` also works: a ticket id
        /// has no '.', a secret does)
        #[arg(long = "ticket-id", value_name = "ID")]
        ticket_id: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

/// `cuve ... | head` ends quietly when the reader goes, as Unix tools do, instead of failing
/// (or panicking in `println!`) on a closed pipe: the default SIGPIPE action, which Rust's
/// runtime replaces by "ignore". Servers keep ignoring it (a closed stderr must not stop them);
/// sockets are unaffected either way (Rust sends with MSG_NOSIGNAL, so a closed peer is an
/// error, not a signal).
fn end_quietly_on_closed_pipe(command: &Option<Command>) {
    let server = matches!(
        command,
        Some(Command::Serve { .. } | Command::Scheduler { .. } | Command::Executor { .. })
    );
    #[cfg(unix)]
    if !server {
        // SAFETY: setting a signal's disposition to its default before any thread of ours
        // starts; no handler runs Rust code.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    end_quietly_on_closed_pipe(&cli.command);
    logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(cuve_engine::THREAD_STACK)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(exit::IO);
        }
    };
    // The statement path runs on threads with large stacks (planning and evaluating an
    // expression recurses once per level of nesting; see cuve_engine::THREAD_STACK), the
    // main future included.
    let main = std::thread::Builder::new()
        .name("cuve-main".into())
        .stack_size(cuve_engine::THREAD_STACK)
        .spawn(move || {
            let code = runtime.block_on(run(cli));
            // Do not wait for a cancelled query still winding down.
            runtime.shutdown_background();
            code
        });
    let code = match main.map(|t| t.join()) {
        Ok(Ok(code)) => code,
        // A panic that escaped a statement (it printed its message): the statement failed.
        Ok(Err(_)) => exit::SQL,
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            exit::IO
        }
    };
    ExitCode::from(code)
}

async fn run(mut cli: Cli) -> u8 {
    // `cuve audit --ticket tk_...` filters by ticket id; the caller's secret then comes from
    // CUVE_TICKET (or the local admin credentials).
    let mut audit_filter = None;
    if let Some(Command::Audit { ticket_id, .. }) = &mut cli.command {
        if let Some(t) = cli.ticket.clone().filter(|t| !t.contains('.')) {
            audit_filter = Some(t);
            cli.ticket = std::env::var("CUVE_TICKET")
                .ok()
                .filter(|s| s.contains('.'));
        }
        if ticket_id.is_none() {
            *ticket_id = audit_filter.take();
        }
    }
    match cli.command {
        Some(Command::Scheduler { addr }) => return cluster::scheduler(&addr).await,
        Some(Command::Executor {
            scheduler,
            addr,
            work_dir,
            cores,
        }) => return cluster::executor(&scheduler, &addr, &work_dir, cores).await,
        Some(Command::Cluster(cmd)) => return cluster::command(cli.cluster.as_deref(), cmd).await,
        _ => {}
    }
    let ctx = match context::CliContext::new(
        cli.home.clone(),
        cli.warehouse.clone(),
        cli.cluster.clone(),
        cli.ticket.clone(),
    ) {
        Ok(c) => c,
        Err(e) => return e.report(),
    };
    let result = match cli.command {
        Some(Command::Sql {
            execute,
            file,
            format,
        }) => sql::run(&ctx, execute, file, format).await,
        Some(Command::Demo { days, rows_per_day }) => demo::run(&ctx, days, rows_per_day).await,
        Some(Command::Ingest(args)) => {
            keep_freed_memory();
            ingest::run(&ctx, args).await
        }
        Some(Command::Admin(cmd)) => admin::admin(&ctx, cmd),
        Some(Command::User(cmd)) => admin::user(&ctx, cmd),
        Some(Command::Ticket(cmd)) => admin::ticket(&ctx, cmd),
        Some(Command::Audit {
            since,
            ticket_id,
            limit,
            json,
        }) => admin::audit(&ctx, since, ticket_id, limit, json),
        Some(Command::Repl) | None => repl::run(&ctx).await,
        Some(Command::Serve {
            addr,
            tls_cert,
            tls_key,
            http,
            maintain,
        }) => serve::run(&ctx, &addr, tls_cert, tls_key, &http, &maintain).await,
        Some(Command::Run { file, batch }) => batch::run(&ctx, &file, &batch).await,
        Some(Command::Template(cmd)) => tools::template(&ctx, cmd).await,
        Some(Command::Archive(cmd)) => tools::archive(&ctx, cmd).await,
        Some(Command::Warehouse(cmd)) => tools::warehouse(&ctx, cmd),
        Some(Command::Table(cmd)) => tools::table(&ctx, cmd),
        Some(Command::Scheduler { .. } | Command::Executor { .. } | Command::Cluster(_)) => Ok(()),
    };
    match result {
        Ok(()) => 0,
        Err(e) => e.report(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_is_the_option_at_index_15() {
        // mimalloc 3's default purge delay is 1,000 ms (options.c); -1 turns purging off.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(before, 1000);
        keep_freed_memory();
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
            -1
        );
    }
}
