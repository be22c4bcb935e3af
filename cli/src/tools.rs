//! `cuve template list|show|run`, `cuve archive save|list|show|run|search` and
//! `cuve warehouse vacuum`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Subcommand;

use crate::batch::{BatchArgs, Sink, parse_params, run_script};
use crate::context::CliContext;
use crate::exit::{CliError, CliResult};
use crate::templates;

#[derive(Debug, Subcommand)]
pub enum TemplateCmd {
    /// List the templates (built in and $CUVE_HOME/templates/*.sql).
    List,
    /// Show a template's parameters and SQL.
    Show { name: String },
    /// Run a template.
    Run {
        name: String,
        /// Table to analyse (db.table)
        #[arg(long)]
        table: Option<String>,
        /// First dt (YYYY-MM-DD)
        #[arg(long)]
        from: Option<String>,
        /// Last dt (YYYY-MM-DD)
        #[arg(long)]
        to: Option<String>,
        /// Breakdown column (templates that take one)
        #[arg(long)]
        by: Option<String>,
        /// Extra condition, a SQL boolean expression (e.g. "section = 'news'")
        #[arg(long)]
        filter: Option<String>,
        #[command(flatten)]
        batch: BatchArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ArchiveCmd {
    /// Save a SQL file under an issue number (a new version if the issue has one).
    Save {
        #[arg(long)]
        issue: i64,
        #[arg(long)]
        title: String,
        file: PathBuf,
    },
    /// The latest version of every archived issue.
    List {
        #[arg(long)]
        json: bool,
    },
    /// An issue's SQL (latest version, or --version), with its history.
    Show {
        issue: i64,
        #[arg(long)]
        version: Option<i64>,
    },
    /// Run an archived issue's SQL.
    Run {
        issue: i64,
        #[arg(long)]
        version: Option<i64>,
        #[command(flatten)]
        batch: BatchArgs,
    },
    /// Issues whose title or SQL contains TEXT.
    Search {
        text: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn template(ctx: &CliContext, cmd: TemplateCmd) -> CliResult {
    match cmd {
        TemplateCmd::List => {
            for t in templates::all(&ctx.home)? {
                println!("{:<14} {}", t.name, t.description);
            }
        }
        TemplateCmd::Show { name } => {
            let t = templates::find(&ctx.home, &name)?;
            println!("-- {}: {}", t.name, t.description);
            for p in &t.params {
                println!(
                    "-- param {}: {:?}{}",
                    p.name,
                    p.ty,
                    p.default
                        .as_ref()
                        .map(|d| format!(" = {d}"))
                        .unwrap_or_default()
                );
            }
            println!("{}", t.sql);
        }
        TemplateCmd::Run {
            name,
            table,
            from,
            to,
            by,
            filter,
            batch,
        } => {
            let t = templates::find(&ctx.home, &name)?;
            let mut values: BTreeMap<String, String> = parse_params(&batch.params)?;
            for (k, v) in [
                ("table", table),
                ("from", from),
                ("to", to),
                ("by", by),
                ("filter", filter),
            ] {
                if let Some(v) = v {
                    values.insert(k.to_string(), v);
                }
            }
            let (sql, literals) = t.render(&values)?;
            let mut session = ctx.session()?;
            let mut sink = Sink::new(batch.output.as_ref(), batch.format)?;
            run_script(
                &mut session,
                &sql,
                &literals,
                &format!("template {name}"),
                &mut sink,
                batch.explain,
            )
            .await?;
            sink.finish()?;
        }
    }
    Ok(())
}

pub async fn archive(ctx: &CliContext, cmd: ArchiveCmd) -> CliResult {
    let engine = ctx.engine()?;
    let catalog = engine.catalog().clone();
    match cmd {
        ArchiveCmd::Save { issue, title, file } => {
            let sql = std::fs::read_to_string(&file)
                .map_err(|e| CliError::io(format!("cannot read {}: {e}", file.display())))?;
            let access = ctx.access()?;
            let e = catalog
                .archive_save(
                    issue,
                    &title,
                    &sql,
                    Some(&access.user),
                    access.ticket_id.as_deref(),
                )
                .map_err(|e| CliError::usage(e.to_string()))?;
            println!("saved issue {} version {}", e.issue, e.version);
        }
        ArchiveCmd::List { json } => print_entries(catalog.archive_list(None)?, json),
        ArchiveCmd::Search { text, json } => {
            print_entries(catalog.archive_list(Some(&text))?, json)
        }
        ArchiveCmd::Show { issue, version } => {
            let e = catalog
                .archive_get(issue, version)?
                .ok_or_else(|| CliError::usage(format!("no archived SQL for issue {issue}")))?;
            println!("-- issue {} version {}: {}", e.issue, e.version, e.title);
            println!(
                "-- by {} at {}",
                e.author.clone().unwrap_or_default(),
                e.created_at
            );
            if let Some(r) = &e.last_run {
                println!(
                    "-- last run {}: {r}",
                    e.last_run_at.clone().unwrap_or_default()
                );
            }
            for h in catalog.archive_history(issue)? {
                println!("-- version {} ({}) {}", h.version, h.created_at, h.title);
            }
            println!("{}", e.sql);
        }
        ArchiveCmd::Run {
            issue,
            version,
            batch,
        } => {
            let e = catalog
                .archive_get(issue, version)?
                .ok_or_else(|| CliError::usage(format!("no archived SQL for issue {issue}")))?;
            let params = parse_params(&batch.params)?;
            let mut session = ctx.session()?;
            let mut sink = Sink::new(batch.output.as_ref(), batch.format)?;
            let started = std::time::Instant::now();
            let result = run_script(
                &mut session,
                &e.sql,
                &params,
                &format!("archive issue {issue}"),
                &mut sink,
                batch.explain,
            )
            .await;
            let summary = match &result {
                Ok(s) => format!(
                    "ok: {} statements, {} rows in {:.2}s",
                    s.statements,
                    s.rows,
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => format!("failed: {}", e.message),
            };
            let _ = catalog.archive_record_run(e.issue, e.version, &summary);
            result?;
            sink.finish()?;
        }
    }
    Ok(())
}

fn print_entries(entries: Vec<cuve_catalog::ArchiveEntry>, json: bool) {
    if json {
        for e in &entries {
            println!("{}", serde_json::to_string(e).unwrap_or_default());
        }
        return;
    }
    for e in entries {
        println!(
            "{:>6}  v{:<3} {:<20} {}{}",
            e.issue,
            e.version,
            e.created_at,
            e.title,
            e.last_run
                .map(|r| format!("  [last run: {r}]"))
                .unwrap_or_default()
        );
    }
}

#[derive(Debug, Subcommand)]
pub enum WarehouseCmd {
    /// Delete files no table refers to: objects of writers that died before their commit
    /// (older than --older-than), files commits replaced (after their retention), staging
    /// files of dead processes. Files of other programs are never deleted.
    Vacuum {
        /// Only uncommitted objects at least this old (30s, 10m, 1h, 2d): a write may still be
        /// committing younger ones
        #[arg(long, default_value = "1h", value_name = "DURATION")]
        older_than: String,
    },
}

pub fn warehouse(ctx: &CliContext, cmd: WarehouseCmd) -> CliResult {
    match cmd {
        WarehouseCmd::Vacuum { older_than } => {
            let older_than = cuve_engine::table::vacuum::parse_duration(&older_than)
                .map_err(|e| CliError::usage(format!("--older-than: {e}")))?;
            let caller = ctx.access()?;
            if !caller.admin {
                return Err(crate::admin::denied(
                    "cuve warehouse vacuum deletes files of every table: it needs an admin ticket",
                ));
            }
            let engine = ctx.engine()?;
            let warehouse = engine.warehouse().display().to_string();
            let r = cuve_engine::table::vacuum::vacuum(engine.catalog(), &warehouse, older_than)
                .map_err(|e| CliError::engine(&e, "vacuum: "))?;
            println!(
                "vacuum of {warehouse}: {} prefixes, {} objects listed; deleted {} uncommitted \
                 objects (kept {} younger than {}s), {} replaced files, {} staging files",
                r.prefixes,
                r.objects,
                r.orphans_deleted,
                r.orphans_kept,
                older_than.as_secs(),
                r.replaced_deleted,
                r.staging_removed
            );
            Ok(())
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum TableCmd {
    /// Run the lifecycle work tables are due, once (for cron): drop partitions past
    /// `retention.days`, clear sensitive columns past `sensitive.retention.days`, merge small
    /// files. `cuve serve` does the same on an interval.
    Maintain {
        /// Only this table (db.table); default every managed table
        #[arg(long, value_name = "DB.TABLE")]
        table: Option<String>,
        /// Print each action it would take (table and partition) and change nothing
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn table(ctx: &CliContext, cmd: TableCmd) -> CliResult {
    match cmd {
        TableCmd::Maintain { table, dry_run } => {
            let caller = ctx.access()?;
            let only = match &table {
                Some(t) => {
                    let (db, name) = t.split_once('.').ok_or_else(|| {
                        CliError::usage(format!("--table '{t}': write it as db.table"))
                    })?;
                    let db = cuve_catalog::names::database_name(db)
                        .map_err(|e| CliError::usage(format!("--table '{t}': {e}")))?;
                    let name = cuve_catalog::names::table_name(name)
                        .map_err(|e| CliError::usage(format!("--table '{t}': {e}")))?;
                    if !caller.allows(cuve_engine::Privilege::Alter, &db, &name) {
                        return Err(crate::admin::denied(format!(
                            "cuve table maintain --table {db}.{name} needs a ticket with ALTER on {db}.*"
                        )));
                    }
                    Some((db, name))
                }
                None => {
                    if !caller.admin {
                        return Err(crate::admin::denied(
                            "cuve table maintain of every table needs an admin ticket (or --table db.t with ALTER on it)",
                        ));
                    }
                    None
                }
            };
            let engine = ctx.engine()?;
            let cuve_engine::lifecycle::maintain::Report { actions, errors } =
                cuve_engine::lifecycle::maintain::maintain_all(
                    engine.catalog(),
                    only.as_ref().map(|(d, t)| (d.as_str(), t.as_str())),
                    dry_run,
                    &caller,
                )
                .map_err(|e| CliError::engine(&e, "maintain: "))?;
            for a in &actions {
                if dry_run {
                    println!("would {a}");
                } else {
                    println!("{a}");
                }
            }
            if actions.is_empty() {
                println!("nothing to do");
            }
            if let Some((table, e)) = errors.first() {
                for (t, e) in &errors {
                    eprintln!("error: maintenance of {t}: {}", e.user_message());
                }
                return Err(CliError::engine(e, &format!("maintenance of {table}: ")));
            }
            Ok(())
        }
    }
}
