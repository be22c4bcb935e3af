//! Users, tickets, grants, quotas, usage and audit: who may read what, and how much.
//!
//! A ticket secret is `<id>.<64 hex chars>` (256 random bits), shown once; only its SHA-256 is
//! stored and it is compared in constant time. The public id names the ticket everywhere else.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{CatalogError, Result};
use crate::names;
use crate::store::{Catalog, now};

/// Migration creating the access tables.
/// Migration: a counter every change to tickets, grants or users moves (triggers, so no code
/// path can forget it). Verified tickets are cached against it: a revocation by any process
/// takes effect on the next call, and an unchanged ticket costs one read.
pub(crate) const EPOCH_MIGRATION: &str = r#"
    CREATE TABLE ticket_epoch (n INTEGER NOT NULL);
    INSERT INTO ticket_epoch VALUES (0);
    CREATE TRIGGER tickets_epoch_u AFTER UPDATE ON tickets BEGIN UPDATE ticket_epoch SET n = n + 1; END;
    CREATE TRIGGER tickets_epoch_d AFTER DELETE ON tickets BEGIN UPDATE ticket_epoch SET n = n + 1; END;
    CREATE TRIGGER grants_epoch_i AFTER INSERT ON ticket_grants BEGIN UPDATE ticket_epoch SET n = n + 1; END;
    CREATE TRIGGER grants_epoch_u AFTER UPDATE ON ticket_grants BEGIN UPDATE ticket_epoch SET n = n + 1; END;
    CREATE TRIGGER grants_epoch_d AFTER DELETE ON ticket_grants BEGIN UPDATE ticket_epoch SET n = n + 1; END;
    CREATE TRIGGER users_epoch_u AFTER UPDATE ON users BEGIN UPDATE ticket_epoch SET n = n + 1; END;
    CREATE TRIGGER users_epoch_d AFTER DELETE ON users BEGIN UPDATE ticket_epoch SET n = n + 1; END;
"#;

/// Verified tickets kept (by secret hash) while the epoch is unchanged.
const AUTH_CACHE: usize = 1024;

/// Migration: who issued each ticket.
pub(crate) const ISSUER_MIGRATION: &str = "ALTER TABLE tickets ADD COLUMN issued_by TEXT;";

pub(crate) const MIGRATION: &str = r#"
    CREATE TABLE users (
        name        TEXT PRIMARY KEY,
        role        TEXT NOT NULL,
        database    TEXT,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE tickets (
        id            TEXT PRIMARY KEY,
        secret_hash   TEXT NOT NULL,
        owner         TEXT NOT NULL REFERENCES users(name),
        description   TEXT,
        created_at    TEXT NOT NULL,
        expires_at    TEXT,
        revoked       INTEGER NOT NULL DEFAULT 0,
        quota         TEXT NOT NULL
    );
    CREATE TABLE ticket_grants (
        ticket_id   TEXT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
        privilege   TEXT NOT NULL,
        database    TEXT NOT NULL,
        table_name  TEXT NOT NULL,
        PRIMARY KEY (ticket_id, privilege, database, table_name)
    );
    CREATE TABLE ticket_usage (
        ticket_id     TEXT NOT NULL,
        day           TEXT NOT NULL,
        queries       INTEGER NOT NULL DEFAULT 0,
        bytes_scanned INTEGER NOT NULL DEFAULT 0,
        rows_returned INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (ticket_id, day)
    );
    CREATE TABLE running_queries (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket_id   TEXT NOT NULL,
        pid         INTEGER NOT NULL,
        started_at  TEXT NOT NULL
    );
    CREATE TABLE audit (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          TEXT NOT NULL,
        ticket_id   TEXT,
        user_name   TEXT,
        client      TEXT,
        statement   TEXT,
        resources   TEXT,
        decision    TEXT NOT NULL,
        reason      TEXT,
        bytes       INTEGER,
        rows_out    INTEGER,
        duration_ms INTEGER
    );
    CREATE INDEX audit_at ON audit(at);
"#;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Owner,
    Analyst,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            "analyst" => Ok(Role::Analyst),
            other => Err(CatalogError::invalid(format!(
                "unknown role '{other}': use admin, owner or analyst"
            ))),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Owner => "owner",
            Role::Analyst => "analyst",
        }
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// For owners: the database they own.
    pub database: Option<String>,
    pub created_at: String,
}

/// A privilege on a database or table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Priv {
    Select,
    Sensitive,
    Write,
    Alter,
    /// `DELETE FROM` rows of a table (ALTER also allows it).
    Delete,
}

impl Priv {
    pub fn parse(s: &str) -> Result<Priv> {
        match s.to_ascii_uppercase().as_str() {
            "SELECT" => Ok(Priv::Select),
            "SENSITIVE" => Ok(Priv::Sensitive),
            "WRITE" => Ok(Priv::Write),
            "ALTER" => Ok(Priv::Alter),
            "DELETE" => Ok(Priv::Delete),
            other => Err(CatalogError::invalid(format!(
                "unknown privilege '{other}': use SELECT, SENSITIVE, WRITE, ALTER or DELETE"
            ))),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Priv::Select => "SELECT",
            Priv::Sensitive => "SENSITIVE",
            Priv::Write => "WRITE",
            Priv::Alter => "ALTER",
            Priv::Delete => "DELETE",
        }
    }
}

/// `PRIV:db.*` or `PRIV:db.table`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Grant {
    pub privilege: Priv,
    pub database: String,
    /// `*` for every table of the database.
    pub table: String,
}

impl Grant {
    /// Parses `SELECT:db.*` / `SENSITIVE:db.table`.
    pub fn parse(s: &str) -> Result<Grant> {
        let (p, target) = s.split_once(':').ok_or_else(|| {
            CatalogError::invalid(format!("grant '{s}': expected PRIV:db.* or PRIV:db.table"))
        })?;
        let (db, table) = target.split_once('.').ok_or_else(|| {
            CatalogError::invalid(format!("grant '{s}': expected PRIV:db.* or PRIV:db.table"))
        })?;
        Ok(Grant {
            privilege: Priv::parse(p)?,
            database: names::database_name(db)?,
            table: if table == "*" {
                "*".into()
            } else {
                names::table_name(table)?
            },
        })
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}.{}",
            self.privilege.as_str(),
            self.database,
            self.table
        )
    }
}

/// Resource limits of a ticket; `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub max_concurrent: Option<u32>,
    /// Seconds to wait for a concurrency slot before failing.
    pub max_wait_secs: Option<f64>,
    pub max_scan_bytes_per_query: Option<u64>,
    pub max_scan_bytes_per_day: Option<u64>,
    pub max_memory: Option<u64>,
    pub max_runtime_secs: Option<f64>,
    /// Rows per second the ticket may write over HTTP intake.
    #[serde(default)]
    pub max_write_rows_per_second: Option<u64>,
    /// Bytes per second (request bodies) the ticket may send to HTTP intake.
    #[serde(default)]
    pub max_write_bytes_per_second: Option<u64>,
    /// HTTP intake requests the ticket may have in flight at once.
    #[serde(default)]
    pub max_concurrent_writes: Option<u32>,
}

/// A ticket (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub owner: String,
    pub role: Role,
    /// The owner's database, for owners.
    pub owner_database: Option<String>,
    pub description: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked: bool,
    pub grants: Vec<Grant>,
    pub quota: Quota,
    /// Who issued it (`None` for tickets issued before this was recorded, and the first admin's).
    #[serde(default)]
    pub issued_by: Option<String>,
}

/// One day of a ticket's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub day: String,
    pub queries: u64,
    pub bytes_scanned: u64,
    pub rows_returned: u64,
}

/// One audit record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub ticket_id: Option<String>,
    pub user: Option<String>,
    pub client: Option<String>,
    pub statement: String,
    pub resources: Vec<String>,
    /// `allow`, `deny` or `error`.
    pub decision: String,
    pub reason: Option<String>,
    pub bytes: u64,
    pub rows: u64,
    pub duration_ms: u64,
}

/// Why a secret was not accepted (the same message for each, by design).
pub const BAD_TICKET: &str = "invalid, expired or revoked ticket";

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn new_secret(id: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{id}.{}", hex::encode(bytes))
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// Parses an expiry: `YYYY-MM-DD` (end of that day, UTC) or RFC 3339.
pub fn parse_expiry(s: &str) -> Result<String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = d.and_hms_opt(23, 59, 59).expect("valid").and_utc();
        return Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .map_err(|_| {
            CatalogError::invalid(format!("expiry '{s}': use YYYY-MM-DD or an RFC 3339 time"))
        })
}

impl Catalog {
    /// Adds a user.
    pub fn add_user(&self, name: &str, role: Role, database: Option<&str>) -> Result<User> {
        let name = names::object_name("user", name)?;
        let database = database.map(names::database_name).transpose()?;
        if role == Role::Owner && database.is_none() {
            return Err(CatalogError::invalid("an owner needs --database DB"));
        }
        let created_at = now();
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO users(name, role, database, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, role.as_str(), database, created_at],
            )?;
            if n == 0 {
                return Err(CatalogError::invalid(format!("user '{name}' already exists")));
            }
            Ok(())
        })?;
        Ok(User {
            name,
            role,
            database,
            created_at,
        })
    }

    /// All users.
    pub fn users(&self) -> Result<Vec<User>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, role, database, created_at FROM users ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (name, role, database, created_at) = row?;
                out.push(User {
                    name,
                    role: Role::parse(&role)?,
                    database,
                    created_at,
                });
            }
            Ok(out)
        })
    }

    /// Looks a user up.
    pub fn user(&self, name: &str) -> Result<Option<User>> {
        Ok(self.users()?.into_iter().find(|u| u.name == name))
    }

    /// Creates a ticket; returns it and its secret (shown once).
    pub fn create_ticket(
        &self,
        owner: &str,
        description: Option<&str>,
        expires_at: Option<&str>,
        grants: &[Grant],
        quota: &Quota,
    ) -> Result<(Ticket, String)> {
        let user = self.user(owner)?.ok_or_else(|| {
            CatalogError::invalid(format!(
                "user '{owner}' does not exist (cuve user add {owner} --role ...)"
            ))
        })?;
        let id = format!("tk_{}", hex::encode(rand::random::<[u8; 6]>()));
        let secret = new_secret(&id);
        let expires = expires_at.map(parse_expiry).transpose()?;
        let quota_json =
            serde_json::to_string(quota).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tickets(id, secret_hash, owner, description, created_at, expires_at, revoked, quota)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)",
                params![id, hash_secret(&secret), user.name, description, now(), expires, quota_json],
            )?;
            for g in grants {
                tx.execute(
                    "INSERT OR IGNORE INTO ticket_grants(ticket_id, privilege, database, table_name) VALUES (?1, ?2, ?3, ?4)",
                    params![id, g.privilege.as_str(), g.database, g.table],
                )?;
            }
            Ok(())
        })?;
        Ok((
            self.ticket(&id)?
                .ok_or_else(|| CatalogError::Corrupt("ticket vanished".into()))?,
            secret,
        ))
    }

    /// A ticket by public id.
    pub fn ticket(&self, id: &str) -> Result<Option<Ticket>> {
        self.read(|c| {
            type Row = (String, String, Option<String>, String, Option<String>, bool, String, Option<String>);
            let row: Option<Row> = c
                .prepare_cached("SELECT id, owner, description, created_at, expires_at, revoked, quota, issued_by FROM tickets WHERE id = ?1")?
                .query_row([id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
                )
                .optional()?;
            let Some((id, owner, description, created_at, expires_at, revoked, quota, issued_by)) = row else {
                return Ok(None);
            };
            let (role, owner_database): (String, Option<String>) =
                c.prepare_cached("SELECT role, database FROM users WHERE name = ?1")?.query_row([&owner], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut stmt = c.prepare_cached("SELECT privilege, database, table_name FROM ticket_grants WHERE ticket_id = ?1 ORDER BY database, table_name, privilege",
            )?;
            let grants = stmt
                .query_map([&id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
                .map(|row| {
                    let (p, database, table) = row?;
                    Ok(Grant { privilege: Priv::parse(&p)?, database, table })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Ticket {
                id,
                owner,
                role: Role::parse(&role)?,
                owner_database,
                description,
                created_at,
                expires_at,
                revoked,
                grants,
                quota: serde_json::from_str(&quota).map_err(|e| CatalogError::Corrupt(format!("quota: {e}")))?,
                issued_by,
            }))
        })
    }

    /// All tickets.
    pub fn tickets(&self) -> Result<Vec<Ticket>> {
        let ids: Vec<String> = self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT id FROM tickets ORDER BY created_at, id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })?;
        ids.iter()
            .filter_map(|id| self.ticket(id).transpose())
            .collect()
    }

    /// The ticket a secret belongs to, if valid, unexpired and not revoked.
    pub fn authenticate(&self, secret: &str) -> Result<Ticket> {
        let denied = || CatalogError::Denied(BAD_TICKET.into());
        let hash = hash_secret(secret);
        let epoch: i64 = self.read_one(|c| {
            Ok(c.prepare_cached("SELECT n FROM ticket_epoch")?
                .query_row([], |r| r.get(0))?)
        })?;
        let cached = self
            .auth_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            .filter(|(e, _)| *e == epoch)
            .map(|(_, t)| t.clone());
        let t = match cached {
            Some(t) => t,
            None => {
                let t = self.authenticate_uncached(secret, &hash)?;
                let mut cache = self.auth_cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= AUTH_CACHE {
                    cache.clear();
                }
                cache.insert(hash, (epoch, t.clone()));
                t
            }
        };
        // Checked on every call (the clock moves without the epoch); an expiry that does not
        // parse fails closed.
        if let Some(exp) = &t.expires_at
            && chrono::DateTime::parse_from_rfc3339(exp)
                .ok()
                .is_none_or(|exp| exp < chrono::Utc::now())
        {
            return Err(denied());
        }
        Ok(t)
    }

    fn authenticate_uncached(&self, secret: &str, hash: &str) -> Result<Ticket> {
        let denied = || CatalogError::Denied(BAD_TICKET.into());
        let id = secret
            .split('.')
            .next()
            .filter(|s| s.starts_with("tk_"))
            .ok_or_else(denied)?;
        let stored: Option<String> = self.read(|c| {
            Ok(
                c.prepare_cached("SELECT secret_hash FROM tickets WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?,
            )
        })?;
        // Compare even when the id is unknown, so timing does not tell whether it exists.
        let expected = stored.clone().unwrap_or_else(|| "0".repeat(64));
        let ok: bool = hash.as_bytes().ct_eq(expected.as_bytes()).into();
        if !ok || stored.is_none() {
            return Err(denied());
        }
        let t = self.ticket(id)?.ok_or_else(denied)?;
        if t.revoked {
            return Err(denied());
        }
        // Expiry is checked by `authenticate` on every call, cached or not.
        Ok(t)
    }

    /// Adds grants to a ticket.
    pub fn grant(&self, id: &str, grants: &[Grant]) -> Result<()> {
        self.write(|tx| {
            for g in grants {
                tx.execute(
                    "INSERT OR IGNORE INTO ticket_grants(ticket_id, privilege, database, table_name) VALUES (?1, ?2, ?3, ?4)",
                    params![id, g.privilege.as_str(), g.database, g.table],
                )?;
            }
            Ok(())
        })
    }

    /// Removes grants from a ticket.
    pub fn revoke_grants(&self, id: &str, grants: &[Grant]) -> Result<usize> {
        self.write(|tx| {
            let mut n = 0;
            for g in grants {
                n += tx.execute(
                    "DELETE FROM ticket_grants WHERE ticket_id = ?1 AND privilege = ?2 AND database = ?3 AND table_name = ?4",
                    params![id, g.privilege.as_str(), g.database, g.table],
                )?;
            }
            Ok(n)
        })
    }

    fn update_ticket(&self, id: &str, sql: &str, value: &dyn rusqlite::ToSql) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(sql, params![id, value])?;
            if n == 0 {
                return Err(CatalogError::invalid(format!(
                    "ticket '{id}' does not exist"
                )));
            }
            Ok(())
        })
    }

    /// Revokes a ticket: it is refused from now on.
    pub fn revoke_ticket(&self, id: &str) -> Result<()> {
        self.update_ticket(id, "UPDATE tickets SET revoked = ?2 WHERE id = ?1", &true)
    }

    /// Sets a ticket's expiry (`None` = never).
    pub fn expire_ticket(&self, id: &str, at: Option<&str>) -> Result<()> {
        let at = at.map(parse_expiry).transpose()?;
        self.update_ticket(id, "UPDATE tickets SET expires_at = ?2 WHERE id = ?1", &at)
    }

    /// Replaces a ticket's quota.
    pub fn set_quota(&self, id: &str, quota: &Quota) -> Result<()> {
        let q = serde_json::to_string(quota).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
        self.update_ticket(id, "UPDATE tickets SET quota = ?2 WHERE id = ?1", &q)
    }

    /// Gives a ticket a new secret (the old one stops working); returns it.
    /// Records who issued a ticket.
    pub fn set_ticket_issuer(&self, id: &str, issuer: &str) -> Result<()> {
        self.update_ticket(
            id,
            "UPDATE tickets SET issued_by = ?2 WHERE id = ?1",
            &issuer,
        )
    }

    pub fn rotate_ticket(&self, id: &str) -> Result<String> {
        let secret = new_secret(id);
        self.update_ticket(
            id,
            "UPDATE tickets SET secret_hash = ?2 WHERE id = ?1",
            &hash_secret(&secret),
        )?;
        Ok(secret)
    }

    /// Adds to today's usage of a ticket.
    pub fn record_usage(&self, id: &str, queries: u64, bytes: u64, rows: u64) -> Result<()> {
        self.write(|tx| add_usage(tx, id, queries, bytes, rows))
    }

    /// Records a finished statement: the ticket's usage (when given: ticket, queries, bytes,
    /// rows) and its audit entry, in one transaction.
    pub fn record_statement(
        &self,
        usage: Option<(&str, u64, u64, u64)>,
        e: &AuditEntry,
    ) -> Result<()> {
        let mut entry = e.clone();
        if entry.at.is_empty() {
            entry.at = now();
        }
        let record = Box::new(crate::recorder::Record {
            usage: usage.map(|(id, q, b, r)| (id.to_string(), q, b, r)),
            entry,
        });
        let Some(record) = self.queue_record(record) else {
            return Ok(());
        };
        self.write(|tx| {
            if let Some((id, q, b, r)) = &record.usage {
                add_usage(tx, id, *q, *b, *r)?;
            }
            insert_audit(tx, &record.entry)
        })
    }

    /// Usage of a ticket per day, newest first.
    pub fn usage(&self, id: &str) -> Result<Vec<Usage>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT day, queries, bytes_scanned, rows_returned FROM ticket_usage WHERE ticket_id = ?1 ORDER BY day DESC",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok(Usage {
                    day: r.get(0)?,
                    queries: r.get::<_, i64>(1)? as u64,
                    bytes_scanned: r.get::<_, i64>(2)? as u64,
                    rows_returned: r.get::<_, i64>(3)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Charges `bytes` to the ticket's scans of today if that keeps them within `max_per_day`,
    /// in one transaction (so concurrent queries cannot all pass the check and then all be
    /// charged). Returns `Err(used)`, charging nothing, when it would not.
    pub fn charge_bytes(
        &self,
        id: &str,
        bytes: u64,
        max_per_day: u64,
    ) -> Result<std::result::Result<(), u64>> {
        self.write(|tx| {
            let day = today();
            let used: i64 = tx
                .prepare_cached(
                    "SELECT bytes_scanned FROM ticket_usage WHERE ticket_id = ?1 AND day = ?2",
                )?
                .query_row(params![id, day], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let used = used.max(0) as u64;
            if used.saturating_add(bytes) > max_per_day {
                return Ok(Err(used));
            }
            tx.execute(
                "INSERT INTO ticket_usage(ticket_id, day, queries, bytes_scanned, rows_returned) VALUES (?1, ?2, 0, ?3, 0)
                 ON CONFLICT(ticket_id, day) DO UPDATE SET bytes_scanned = bytes_scanned + ?3",
                params![id, day, bytes as i64],
            )?;
            Ok(Ok(()))
        })
    }

    /// Bytes a ticket scanned today.
    pub fn bytes_today(&self, id: &str) -> Result<u64> {
        Ok(self
            .usage(id)?
            .into_iter()
            .find(|u| u.day == today())
            .map(|u| u.bytes_scanned)
            .unwrap_or(0))
    }

    /// Takes a concurrency slot for a ticket if fewer than `max` are taken (slots of dead
    /// processes are freed first). Returns the slot id.
    pub fn try_acquire_slot(
        &self,
        id: &str,
        max: u32,
        alive: &dyn Fn(u32) -> bool,
    ) -> Result<Option<i64>> {
        self.write(|tx| {
            let mut stmt =
                tx.prepare_cached("SELECT id, pid FROM running_queries WHERE ticket_id = ?1")?;
            let rows: Vec<(i64, u32)> = stmt
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            drop(stmt);
            let mut live = 0;
            for (slot, pid) in rows {
                if alive(pid) {
                    live += 1;
                } else {
                    tx.execute("DELETE FROM running_queries WHERE id = ?1", [slot])?;
                }
            }
            if live >= max {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO running_queries(ticket_id, pid, started_at) VALUES (?1, ?2, ?3)",
                params![id, std::process::id(), now()],
            )?;
            Ok(Some(tx.last_insert_rowid()))
        })
    }

    /// Frees a concurrency slot.
    pub fn release_slot(&self, slot: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM running_queries WHERE id = ?1", [slot])?;
            Ok(())
        })
    }

    /// Appends an audit record.
    pub fn audit(&self, e: &AuditEntry) -> Result<()> {
        self.write(|tx| insert_audit(tx, e))
    }

    /// Audit records, oldest first, optionally since a time and for one ticket.
    pub fn audit_entries(
        &self,
        since: Option<&str>,
        ticket: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT at, ticket_id, user_name, client, statement, resources, decision, reason, bytes, rows_out, duration_ms
                 FROM audit WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR ticket_id = ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![since, ticket, limit as i64], |r| {
                Ok(AuditEntry {
                    at: r.get(0)?,
                    ticket_id: r.get(1)?,
                    user: r.get(2)?,
                    client: r.get(3)?,
                    statement: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    resources: r
                        .get::<_, Option<String>>(5)?
                        .map(|s| s.split(',').filter(|x| !x.is_empty()).map(String::from).collect())
                        .unwrap_or_default(),
                    decision: r.get(6)?,
                    reason: r.get(7)?,
                    bytes: r.get::<_, Option<i64>>(8)?.unwrap_or(0) as u64,
                    rows: r.get::<_, Option<i64>>(9)?.unwrap_or(0) as u64,
                    duration_ms: r.get::<_, Option<i64>>(10)?.unwrap_or(0) as u64,
                })
            })?;
            let mut v = rows.collect::<Result<Vec<_>, _>>()?;
            v.reverse();
            Ok(v)
        })
    }
}

pub(crate) fn add_usage(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    queries: u64,
    bytes: u64,
    rows: u64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO ticket_usage(ticket_id, day, queries, bytes_scanned, rows_returned) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(ticket_id, day) DO UPDATE SET queries = queries + ?3, bytes_scanned = bytes_scanned + ?4,
         rows_returned = rows_returned + ?5",
    )?
    .execute(params![id, today(), queries as i64, bytes as i64, rows as i64])?;
    Ok(())
}

pub(crate) fn insert_audit(tx: &rusqlite::Transaction<'_>, e: &AuditEntry) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit(at, ticket_id, user_name, client, statement, resources, decision, reason, bytes, rows_out, duration_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        if e.at.is_empty() { now() } else { e.at.clone() },
        e.ticket_id,
        e.user,
        e.client,
        e.statement,
        e.resources.join(","),
        e.decision,
        e.reason,
        e.bytes as i64,
        e.rows as i64,
        e.duration_ms as i64
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verified tickets are cached, but any change from any process (another `Catalog` on the
    /// same file here) takes effect on the next call.
    #[test]
    fn cached_tickets_see_revocations_and_grants_from_other_processes_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let server = Catalog::open(dir.path().join("catalog.db")).unwrap();
        let admin = Catalog::open(dir.path().join("catalog.db")).unwrap();
        admin.add_user("kim", Role::Analyst, None).unwrap();
        let (t, secret) = admin
            .create_ticket("kim", None, None, &[], &Quota::default())
            .unwrap();
        assert!(server.authenticate(&secret).unwrap().grants.is_empty());
        assert!(server.authenticate(&secret).is_ok(), "cached");
        admin
            .grant(&t.id, &[Grant::parse("SELECT:d.*").unwrap()])
            .unwrap();
        assert_eq!(server.authenticate(&secret).unwrap().grants.len(), 1);
        admin.revoke_ticket(&t.id).unwrap();
        assert!(server.authenticate(&secret).is_err(), "revoked at once");
        assert!(server.authenticate("tk_000000000000.nope").is_err());
    }

    /// An expiry that does not parse fails closed (it used to let the ticket in).
    #[test]
    fn an_unreadable_expiry_counts_as_expired() {
        let c = Catalog::open_in_memory().unwrap();
        c.add_user("kim", Role::Analyst, None).unwrap();
        let (t, secret) = c
            .create_ticket("kim", None, None, &[], &Quota::default())
            .unwrap();
        assert!(c.authenticate(&secret).is_ok());
        c.write(|tx| {
            tx.execute(
                "UPDATE tickets SET expires_at = 'next tuesday' WHERE id = ?1",
                [&t.id],
            )?;
            Ok(())
        })
        .unwrap();
        assert!(c.authenticate(&secret).is_err());
    }

    #[test]
    fn secrets_are_hashed_and_checked() {
        let c = Catalog::open_in_memory().unwrap();
        c.add_user("kim", Role::Analyst, None).unwrap();
        let g = Grant::parse("SELECT:korea_naver_log.*").unwrap();
        let (t, secret) = c
            .create_ticket(
                "kim",
                Some("notebook"),
                None,
                std::slice::from_ref(&g),
                &Quota::default(),
            )
            .unwrap();
        assert!(secret.starts_with(&t.id) && secret.len() > 64);
        let stored: String = c
            .read(|x| Ok(x.query_row("SELECT secret_hash FROM tickets", [], |r| r.get(0))?))
            .unwrap();
        assert!(
            !stored.contains(&secret[t.id.len() + 1..]),
            "the secret itself is not stored"
        );
        assert_eq!(c.authenticate(&secret).unwrap().grants, vec![g]);
        assert!(c.authenticate(&format!("{}x", secret)).is_err());
        assert!(c.authenticate("tk_000000000000.00").is_err());
        assert!(c.authenticate("garbage").is_err());
        let new = c.rotate_ticket(&t.id).unwrap();
        assert!(c.authenticate(&secret).is_err());
        assert!(c.authenticate(&new).is_ok());
        c.expire_ticket(&t.id, Some("2000-01-01")).unwrap();
        assert_eq!(
            c.authenticate(&new).unwrap_err().to_string(),
            format!("access denied: {BAD_TICKET}")
        );
        c.expire_ticket(&t.id, None).unwrap();
        c.revoke_ticket(&t.id).unwrap();
        assert!(c.authenticate(&new).is_err());
    }

    #[test]
    fn slots_and_usage() {
        let c = Catalog::open_in_memory().unwrap();
        c.add_user("a", Role::Analyst, None).unwrap();
        let (t, _) = c
            .create_ticket("a", None, None, &[], &Quota::default())
            .unwrap();
        let s1 = c.try_acquire_slot(&t.id, 1, &|_| true).unwrap();
        assert!(s1.is_some());
        assert!(c.try_acquire_slot(&t.id, 1, &|_| true).unwrap().is_none());
        // a dead process's slot is freed
        assert!(c.try_acquire_slot(&t.id, 1, &|_| false).unwrap().is_some());
        c.record_usage(&t.id, 1, 100, 5).unwrap();
        c.record_usage(&t.id, 1, 50, 5).unwrap();
        assert_eq!(c.bytes_today(&t.id).unwrap(), 150);
        assert!(Grant::parse("READ:x.*").is_err());
        assert!(Role::parse("god").is_err());
    }
}
