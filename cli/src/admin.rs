//! Access administration: `cuve admin init`, `cuve user add|list`,
//! `cuve ticket create|list|show|grant|revoke|set-quota|expire|rotate|usage`, `cuve audit`.

use clap::{Args, Subcommand};
use cuve_catalog::{AuditEntry, Grant, Quota, Role, Ticket};
use cuve_engine::AccessView;

use crate::context::CliContext;
use crate::exit::{CliError, CliResult, DENIED};

#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Create the first admin user and the local admin ticket ($CUVE_HOME/credentials, mode 0600).
    Init,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user.
    Add {
        name: String,
        /// admin (everything), owner (manages tickets of one database) or analyst
        #[arg(long)]
        role: String,
        /// The database an owner owns
        #[arg(long)]
        database: Option<String>,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Quota flags (sizes accept suffixes: 10GB, 512MiB).
#[derive(Debug, Args, Default, Clone)]
pub struct QuotaArgs {
    /// Queries the ticket may run at once
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<u32>,
    /// Seconds a query waits for a free slot before failing
    #[arg(long, value_name = "SECONDS")]
    pub max_wait: Option<f64>,
    /// Bytes one query may scan
    #[arg(long, value_name = "B", value_parser = parse_size)]
    pub max_scan_bytes_per_query: Option<u64>,
    /// Bytes the ticket may scan per day (UTC)
    #[arg(long, value_name = "B", value_parser = parse_size)]
    pub max_scan_bytes_per_day: Option<u64>,
    /// Memory one query may use (beyond it, operators spill to disk or fail)
    #[arg(long, value_name = "B", value_parser = parse_size)]
    pub max_memory: Option<u64>,
    /// Seconds one query may run
    #[arg(long, value_name = "SECONDS")]
    pub max_runtime: Option<f64>,
    /// Rows per second the ticket may write over HTTP (`cuve serve --http`)
    #[arg(long, value_name = "N")]
    pub max_write_rows_per_second: Option<u64>,
    /// Request bytes per second the ticket may send over HTTP
    #[arg(long, value_name = "B", value_parser = parse_size)]
    pub max_write_bytes_per_second: Option<u64>,
    /// HTTP write requests the ticket may have in flight at once
    #[arg(long, value_name = "N")]
    pub max_concurrent_writes: Option<u32>,
}

impl QuotaArgs {
    fn apply(&self, q: &mut Quota) {
        if self.max_concurrent.is_some() {
            q.max_concurrent = self.max_concurrent;
        }
        if self.max_wait.is_some() {
            q.max_wait_secs = self.max_wait;
        }
        if self.max_scan_bytes_per_query.is_some() {
            q.max_scan_bytes_per_query = self.max_scan_bytes_per_query;
        }
        if self.max_scan_bytes_per_day.is_some() {
            q.max_scan_bytes_per_day = self.max_scan_bytes_per_day;
        }
        if self.max_memory.is_some() {
            q.max_memory = self.max_memory;
        }
        if self.max_runtime.is_some() {
            q.max_runtime_secs = self.max_runtime;
        }
        if self.max_write_rows_per_second.is_some() {
            q.max_write_rows_per_second = self.max_write_rows_per_second;
        }
        if self.max_write_bytes_per_second.is_some() {
            q.max_write_bytes_per_second = self.max_write_bytes_per_second;
        }
        if self.max_concurrent_writes.is_some() {
            q.max_concurrent_writes = self.max_concurrent_writes;
        }
    }
}

/// Parses a size: `123`, `10GB` (10^9), `10GiB` (2^30), `1.5MB`, `512k`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 500MB, 10GB, 1GiB)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1048576.0,
        "gib" => 1073741824.0,
        "tib" => 1099511627776.0,
        other => {
            return Err(format!(
                "unknown size unit '{other}' in '{s}' (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ));
        }
    };
    Ok((n * mult).round() as u64)
}

#[derive(Debug, Subcommand)]
pub enum TicketCmd {
    /// Issue a ticket; the secret is printed once.
    Create {
        #[arg(long)]
        user: String,
        /// PRIV:db.* or PRIV:db.table (PRIV: SELECT, SENSITIVE, WRITE, ALTER); repeatable
        #[arg(long = "grant", value_name = "PRIV:DB.TABLE")]
        grants: Vec<String>,
        /// Expiry: YYYY-MM-DD (end of day, UTC) or RFC 3339
        #[arg(long)]
        expires: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        quota: QuotaArgs,
        /// Print one JSON object (with id and secret)
        #[arg(long)]
        json: bool,
    },
    /// List tickets.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a ticket.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Add grants to a ticket.
    Grant {
        id: String,
        #[arg(long = "grant", value_name = "PRIV:DB.TABLE", required = true)]
        grants: Vec<String>,
    },
    /// Revoke a ticket, or with --grant only those grants.
    Revoke {
        id: String,
        #[arg(long = "grant", value_name = "PRIV:DB.TABLE")]
        grants: Vec<String>,
    },
    /// Change a ticket's quotas (e.g. raise them for one big job); audited.
    SetQuota {
        id: String,
        #[command(flatten)]
        quota: QuotaArgs,
        /// Remove every limit
        #[arg(long)]
        unlimited: bool,
    },
    /// Expire a ticket now, or at --at; --never removes the expiry.
    Expire {
        id: String,
        #[arg(long)]
        at: Option<String>,
        #[arg(long, conflicts_with = "at")]
        never: bool,
    },
    /// Give a ticket a new secret (the old one stops working).
    Rotate {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Usage per day (queries, bytes scanned, rows returned).
    Usage {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn denied(msg: impl Into<String>) -> CliError {
    CliError {
        code: DENIED,
        message: format!("access denied: {}", msg.into()),
    }
}

fn parse_grants(v: &[String]) -> CliResult<Vec<Grant>> {
    v.iter()
        .map(|g| Grant::parse(g).map_err(|e| CliError::usage(e.to_string())))
        .collect()
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut t = comfy_table::Table::new();
    t.load_preset("||--+-++|    ++++++");
    t.set_header(headers.to_vec());
    for r in rows {
        t.add_row(r);
    }
    println!("{t}");
}

fn json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string(v).unwrap_or_default());
}

fn ticket_rows(tickets: &[Ticket]) -> Vec<Vec<String>> {
    tickets
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                t.owner.clone(),
                t.grants
                    .iter()
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                t.expires_at.clone().unwrap_or_default(),
                if t.revoked {
                    "revoked".into()
                } else {
                    String::new()
                },
                t.description.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

/// A ticket the caller may manage.
fn managed_ticket(ctx: &CliContext, caller: &AccessView, id: &str) -> CliResult<Ticket> {
    let t = ctx
        .engine()?
        .catalog()
        .ticket(id)?
        .ok_or_else(|| CliError::usage(format!("ticket '{id}' does not exist")))?;
    // Owners manage only the tickets they issued (for their databases); admins any.
    let issued_by_caller = t.issued_by.as_deref() == Some(caller.user.as_str());
    let may = caller.admin || (issued_by_caller && caller.may_manage_ticket(t.role, &t.grants));
    if !may {
        return Err(denied(format!(
            "you may not manage ticket {id}: owners manage only the tickets they issued"
        )));
    }
    Ok(t)
}

fn audit_admin(ctx: &CliContext, caller: &AccessView, what: String) {
    if let Ok(engine) = ctx.engine() {
        let _ = engine.catalog().audit(&AuditEntry {
            ticket_id: caller.ticket_id.clone(),
            user: Some(caller.user.clone()),
            client: Some("cli".into()),
            statement: what,
            decision: "allow".into(),
            ..Default::default()
        });
    }
}

pub fn admin(ctx: &CliContext, cmd: AdminCmd) -> CliResult {
    match cmd {
        AdminCmd::Init => {
            let engine = ctx.engine()?;
            let (created, secret) = ctx.local_admin_secret(&engine)?;
            let id = secret.split('.').next().unwrap_or("");
            if created {
                println!(
                    "created user 'admin' and admin ticket {id}; its secret is in {} (mode 0600)",
                    ctx.credentials_path().display()
                );
            } else {
                println!(
                    "already initialised: admin ticket {id} is in {}",
                    ctx.credentials_path().display()
                );
            }
            Ok(())
        }
    }
}

pub fn user(ctx: &CliContext, cmd: UserCmd) -> CliResult {
    let caller = ctx.access()?;
    let catalog = ctx.engine()?.catalog().clone();
    match cmd {
        UserCmd::Add {
            name,
            role,
            database,
        } => {
            if !caller.admin {
                return Err(denied("adding users needs an admin ticket"));
            }
            let role = Role::parse(&role).map_err(|e| CliError::usage(e.to_string()))?;
            let u = catalog
                .add_user(&name, role, database.as_deref())
                .map_err(|e| CliError::usage(e.to_string()))?;
            audit_admin(
                ctx,
                &caller,
                format!("user add {} --role {}", u.name, u.role.as_str()),
            );
            println!("added user {} ({})", u.name, u.role.as_str());
        }
        UserCmd::List { json: as_json } => {
            if !caller.admin && caller.owned.is_empty() {
                return Err(denied("listing users needs an admin or owner ticket"));
            }
            let users = catalog.users()?;
            if as_json {
                json(&users);
            } else {
                table(
                    &["name", "role", "database", "created"],
                    users
                        .into_iter()
                        .map(|u| {
                            vec![
                                u.name,
                                u.role.as_str().into(),
                                u.database.unwrap_or_default(),
                                u.created_at,
                            ]
                        })
                        .collect(),
                );
            }
        }
    }
    Ok(())
}

pub fn ticket(ctx: &CliContext, cmd: TicketCmd) -> CliResult {
    let caller = ctx.access()?;
    let catalog = ctx.engine()?.catalog().clone();
    match cmd {
        TicketCmd::Create {
            user,
            grants,
            expires,
            description,
            quota,
            json: as_json,
        } => {
            let grants = parse_grants(&grants)?;
            let owner = catalog.user(&user)?.ok_or_else(|| {
                CliError::usage(format!(
                    "user '{user}' does not exist (cuve user add {user} --role analyst)"
                ))
            })?;
            if !caller.may_manage_ticket(owner.role, &grants) {
                return Err(denied(
                    "owners may only issue analysts' tickets for databases they own",
                ));
            }
            let mut q = Quota::default();
            quota.apply(&mut q);
            let (mut t, secret) = catalog
                .create_ticket(
                    &user,
                    description.as_deref(),
                    expires.as_deref(),
                    &grants,
                    &q,
                )
                .map_err(|e| CliError::usage(e.to_string()))?;
            catalog.set_ticket_issuer(&t.id, &caller.user)?;
            t.issued_by = Some(caller.user.clone());
            audit_admin(
                ctx,
                &caller,
                format!("ticket create {} --user {user}", t.id),
            );
            if as_json {
                let mut v = serde_json::to_value(&t).unwrap_or_default();
                v["secret"] = serde_json::Value::String(secret);
                json(&v);
            } else {
                println!("ticket {} for {user}", t.id);
                println!("secret (shown once, keep it safe): {secret}");
            }
        }
        TicketCmd::List { json: as_json } => {
            let tickets: Vec<Ticket> = catalog
                .tickets()?
                .into_iter()
                .filter(|t| {
                    caller.admin
                        || (caller.may_manage_ticket(t.role, &t.grants) && !t.grants.is_empty())
                })
                .collect();
            if as_json {
                json(&tickets);
            } else {
                table(
                    &["id", "user", "grants", "expires", "state", "description"],
                    ticket_rows(&tickets),
                );
            }
        }
        TicketCmd::Show { id, json: as_json } => {
            let t = managed_ticket(ctx, &caller, &id)?;
            if as_json {
                json(&t);
            } else {
                let q = &t.quota;
                let opt = |v: Option<String>| v.unwrap_or_else(|| "unlimited".into());
                table(
                    &["property", "value"],
                    vec![
                        vec!["id".into(), t.id.clone()],
                        vec!["user".into(), format!("{} ({})", t.owner, t.role.as_str())],
                        vec![
                            "description".into(),
                            t.description.clone().unwrap_or_default(),
                        ],
                        vec!["created".into(), t.created_at.clone()],
                        vec![
                            "expires".into(),
                            t.expires_at.clone().unwrap_or_else(|| "never".into()),
                        ],
                        vec!["revoked".into(), t.revoked.to_string()],
                        vec![
                            "grants".into(),
                            t.grants
                                .iter()
                                .map(|g| g.to_string())
                                .collect::<Vec<_>>()
                                .join("\n"),
                        ],
                        vec![
                            "max_concurrent".into(),
                            opt(q.max_concurrent.map(|v| v.to_string())),
                        ],
                        vec![
                            "max_wait".into(),
                            opt(q.max_wait_secs.map(|v| format!("{v}s"))),
                        ],
                        vec![
                            "max_scan_bytes_per_query".into(),
                            opt(q.max_scan_bytes_per_query.map(|v| v.to_string())),
                        ],
                        vec![
                            "max_scan_bytes_per_day".into(),
                            opt(q.max_scan_bytes_per_day.map(|v| v.to_string())),
                        ],
                        vec![
                            "max_memory".into(),
                            opt(q.max_memory.map(|v| v.to_string())),
                        ],
                        vec![
                            "max_runtime".into(),
                            opt(q.max_runtime_secs.map(|v| format!("{v}s"))),
                        ],
                        vec![
                            "max_write_rows_per_second".into(),
                            opt(q.max_write_rows_per_second.map(|v| v.to_string())),
                        ],
                        vec![
                            "max_write_bytes_per_second".into(),
                            opt(q.max_write_bytes_per_second.map(|v| v.to_string())),
                        ],
                        vec![
                            "max_concurrent_writes".into(),
                            opt(q.max_concurrent_writes.map(|v| v.to_string())),
                        ],
                    ],
                );
            }
        }
        TicketCmd::Grant { id, grants } => {
            managed_ticket(ctx, &caller, &id)?;
            let grants = parse_grants(&grants)?;
            if !caller.may_manage(&grants) {
                return Err(denied("you may only grant on databases you own"));
            }
            catalog.grant(&id, &grants)?;
            audit_admin(
                ctx,
                &caller,
                format!(
                    "ticket grant {id} {}",
                    grants
                        .iter()
                        .map(|g| g.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
            println!("granted {} on ticket {id}", grants.len());
        }
        TicketCmd::Revoke { id, grants } => {
            managed_ticket(ctx, &caller, &id)?;
            if grants.is_empty() {
                catalog.revoke_ticket(&id)?;
                audit_admin(ctx, &caller, format!("ticket revoke {id}"));
                println!("ticket {id} revoked");
            } else {
                let grants = parse_grants(&grants)?;
                let n = catalog.revoke_grants(&id, &grants)?;
                audit_admin(ctx, &caller, format!("ticket revoke {id} --grant ..."));
                println!("removed {n} grant(s) from ticket {id}");
            }
        }
        TicketCmd::SetQuota {
            id,
            quota,
            unlimited,
        } => {
            let t = managed_ticket(ctx, &caller, &id)?;
            let mut q = if unlimited {
                Quota::default()
            } else {
                t.quota.clone()
            };
            quota.apply(&mut q);
            catalog.set_quota(&id, &q)?;
            audit_admin(
                ctx,
                &caller,
                format!(
                    "ticket set-quota {id}: {}",
                    serde_json::to_string(&q).unwrap_or_default()
                ),
            );
            println!("quota of ticket {id} updated");
        }
        TicketCmd::Expire { id, at, never } => {
            managed_ticket(ctx, &caller, &id)?;
            let when = if never {
                None
            } else {
                Some(at.unwrap_or_else(|| {
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                }))
            };
            catalog
                .expire_ticket(&id, when.as_deref())
                .map_err(|e| CliError::usage(e.to_string()))?;
            audit_admin(
                ctx,
                &caller,
                format!(
                    "ticket expire {id} {}",
                    when.clone().unwrap_or_else(|| "never".into())
                ),
            );
            println!(
                "ticket {id} expires {}",
                when.unwrap_or_else(|| "never".into())
            );
        }
        TicketCmd::Rotate { id, json: as_json } => {
            let t = catalog
                .ticket(&id)?
                .ok_or_else(|| CliError::usage(format!("ticket '{id}' does not exist")))?;
            // A new secret lets its holder act as the ticket's user: users rotate their own
            // tickets, only admins someone else's.
            if t.owner != caller.user && !caller.admin {
                return Err(denied(format!(
                    "ticket {id} belongs to {}: only admins rotate another user's ticket",
                    t.owner
                )));
            }
            let secret = catalog.rotate_ticket(&id)?;
            audit_admin(
                ctx,
                &caller,
                format!(
                    "ticket rotate {id} (a ticket of {}, by {})",
                    t.owner, caller.user
                ),
            );
            if as_json {
                json(&serde_json::json!({ "id": id, "secret": secret }));
            } else {
                println!("new secret of ticket {id} (shown once): {secret}");
            }
        }
        TicketCmd::Usage { id, json: as_json } => {
            managed_ticket(ctx, &caller, &id)?;
            let usage = catalog.usage(&id)?;
            if as_json {
                json(&usage);
            } else {
                table(
                    &["day", "queries", "bytes_scanned", "rows_returned"],
                    usage
                        .into_iter()
                        .map(|u| {
                            vec![
                                u.day,
                                u.queries.to_string(),
                                u.bytes_scanned.to_string(),
                                u.rows_returned.to_string(),
                            ]
                        })
                        .collect(),
                );
            }
        }
    }
    Ok(())
}

/// `cuve audit`.
pub fn audit(
    ctx: &CliContext,
    since: Option<String>,
    ticket: Option<String>,
    limit: usize,
    as_json: bool,
) -> CliResult {
    let caller = ctx.access()?;
    if !caller.admin {
        return Err(denied("reading the audit log needs an admin ticket"));
    }
    let entries =
        ctx.engine()?
            .catalog()
            .audit_entries(since.as_deref(), ticket.as_deref(), limit)?;
    if as_json {
        for e in &entries {
            json(e);
        }
    } else {
        table(
            &[
                "time",
                "ticket",
                "user",
                "client",
                "decision",
                "resources",
                "bytes",
                "rows",
                "ms",
                "statement / reason",
            ],
            entries
                .into_iter()
                .map(|e| {
                    let mut text: String = e.statement.chars().take(80).collect();
                    if let Some(r) = e.reason {
                        text.push_str(&format!("\n-> {r}"));
                    }
                    vec![
                        e.at,
                        e.ticket_id.unwrap_or_default(),
                        e.user.unwrap_or_default(),
                        e.client.unwrap_or_default(),
                        e.decision,
                        e.resources.join(","),
                        e.bytes.to_string(),
                        e.rows.to_string(),
                        e.duration_ms.to_string(),
                        text,
                    ]
                })
                .collect(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("1.5MB"), Ok(1_500_000));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5XB").is_err());
    }
}
