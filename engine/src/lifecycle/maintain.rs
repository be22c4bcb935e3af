//! Every lifecycle action a table is due, in order: drop partitions past `retention.days`,
//! clear sensitive columns of partitions past `sensitive.retention.days`, merge small files.
//! `cuve table maintain` runs it once (or lists it with `--dry-run`), `cuve serve` on an
//! interval, `ALTER TABLE ... COMPACT` the merges of one table (or partition).

use std::fmt;
use std::sync::Arc;

use cuve_catalog::{Catalog, TableDef};

use super::policy::{self, Policy};
use super::rewrite::{self, PartitionFiles};
use super::{compact, expire};
use crate::access::AccessView;
use crate::error::Result;

/// What maintenance does (or would do) to one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Dropped: older than `retention.days`.
    Drop { days: u32 },
    /// Sensitive columns cleared in `files` files: older than `sensitive.retention.days`.
    ClearSensitive { days: u32, files: usize },
    /// `files` small files of a bucket merged into one.
    Compact {
        bucket: u32,
        files: usize,
        bytes: u64,
    },
}

/// One action, as `--dry-run` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub table: String,
    pub partition: String,
    pub kind: Kind,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = if self.partition.is_empty() {
            "(unpartitioned)".to_string()
        } else {
            self.partition.clone()
        };
        match &self.kind {
            Kind::Drop { days } => write!(
                f,
                "drop partition {} {part} (older than retention.days={days})",
                self.table
            ),
            Kind::ClearSensitive { days, files } => write!(
                f,
                "clear sensitive columns of {} {part}: rewrite {files} file(s) (older than sensitive.retention.days={days})",
                self.table
            ),
            Kind::Compact {
                bucket,
                files,
                bytes,
            } => write!(
                f,
                "compact {} {part} bucket {bucket:06}: {files} small files ({bytes} bytes) into 1",
                self.table
            ),
        }
    }
}

/// Which actions to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub expire: bool,
    pub compact: bool,
}

impl Scope {
    pub const ALL: Scope = Scope {
        expire: true,
        compact: true,
    };
}

/// The tables maintenance looks at: `only` or every managed Parquet table.
pub fn tables(catalog: &Catalog, only: Option<(&str, &str)>) -> Result<Vec<TableDef>> {
    if let Some((db, t)) = only {
        let def = catalog.table(db, t)?.ok_or_else(|| {
            crate::error::EngineError::invalid(format!("table '{db}.{t}' does not exist"))
        })?;
        return Ok(vec![def]);
    }
    let mut out = Vec::new();
    for db in catalog.databases()? {
        for name in catalog.table_names(&db.name)? {
            if let Some(def) = catalog.table(&db.name, &name)?
                && rewrite::check_rewritable(&def, "maintenance").is_ok()
            {
                out.push(def);
            }
        }
    }
    Ok(out)
}

/// Plans and (unless `dry_run`) runs the actions `def` is due. Dropping and clearing are
/// audited. Returns the actions, in the order taken.
pub fn maintain_table(
    catalog: &Arc<Catalog>,
    def: &TableDef,
    scope: Scope,
    partition: Option<&str>,
    dry_run: bool,
    who: &AccessView,
) -> Result<Vec<Action>> {
    rewrite::check_rewritable(def, "maintenance")?;
    let policy = policy::policy(def)?;
    let today = super::clock::today()?;
    let parts: Vec<PartitionFiles> = rewrite::current_files(catalog, def)?
        .into_iter()
        .filter(|p| partition.is_none_or(|s| p.spec() == s))
        .collect();
    if !dry_run && !crate::storage::is_object(&def.location) {
        // Staged files of writers that died, anywhere in the table.
        let pending = catalog.pending_publishes()?;
        crate::table::commit::remove_orphans(
            std::path::Path::new(&def.location),
            def.partition_columns.len(),
            &pending,
        );
    }
    let table = def.qualified_name();
    let mut actions = Vec::new();
    let expired = |days: Option<u32>, p: &PartitionFiles| {
        days.zip(policy::partition_date(&p.partition.values))
            .is_some_and(|(d, date)| policy::is_expired(date, today, d))
    };
    let Policy {
        retention_days,
        sensitive_days,
        target_bytes,
    } = policy;
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for p in &parts {
        if scope.expire && expired(retention_days, p) {
            dropped.push(p);
        } else {
            kept.push(p);
        }
    }
    if !dropped.is_empty() {
        let days = retention_days.unwrap_or_default();
        let mine: Vec<Action> = dropped
            .iter()
            .map(|p| Action {
                table: table.clone(),
                partition: p.spec(),
                kind: Kind::Drop { days },
            })
            .collect();
        if !dry_run {
            let started = std::time::Instant::now();
            expire::drop_partitions(catalog, def, &dropped)?;
            audit(catalog, who, &mine, started);
        }
        actions.extend(mine);
    }
    for p in kept {
        let mut rewritten = None;
        if scope.expire && expired(sensitive_days, p) {
            let dirty = expire::dirty_files(def, p)?;
            if !dirty.is_empty() {
                let action = Action {
                    table: table.clone(),
                    partition: p.spec(),
                    kind: Kind::ClearSensitive {
                        days: sensitive_days.unwrap_or_default(),
                        files: dirty.len(),
                    },
                };
                if !dry_run {
                    let started = std::time::Instant::now();
                    expire::clear_sensitive(catalog, def, p, &dirty)?;
                    audit(catalog, who, std::slice::from_ref(&action), started);
                    // Compaction plans on the files the clearing wrote.
                    rewritten = rewrite::current_files(catalog, def)?
                        .into_iter()
                        .find(|q| q.spec() == p.spec());
                }
                actions.push(action);
            }
        }
        if scope.compact {
            let p = rewritten.as_ref().unwrap_or(p);
            for m in compact::plan_partition(p, target_bytes) {
                let action = Action {
                    table: table.clone(),
                    partition: m.partition.clone(),
                    kind: Kind::Compact {
                        bucket: m.bucket,
                        files: m.files.len(),
                        bytes: m.bytes(),
                    },
                };
                if !dry_run {
                    compact::run(catalog, def, &m)?;
                }
                actions.push(action);
            }
        }
    }
    Ok(actions)
}

fn audit(catalog: &Catalog, who: &AccessView, actions: &[Action], started: std::time::Instant) {
    for a in actions {
        crate::exec::record(
            catalog,
            who,
            &format!("maintenance: {a}"),
            vec![a.table.clone()],
            "allow",
            None,
            crate::exec::Admitted {
                bytes: 0,
                charged: false,
            },
            0,
            started,
        );
    }
}

/// What one maintenance pass did: the actions taken, and the tables that failed with their error
/// (the others are still maintained).
pub struct Report {
    pub actions: Vec<Action>,
    pub errors: Vec<(String, crate::error::EngineError)>,
}

/// Maintains every table (or `only`).
pub fn maintain_all(
    catalog: &Arc<Catalog>,
    only: Option<(&str, &str)>,
    dry_run: bool,
    who: &AccessView,
) -> Result<Report> {
    let mut actions = Vec::new();
    let mut errors = Vec::new();
    for def in tables(catalog, only)? {
        match maintain_table(catalog, &def, Scope::ALL, None, dry_run, who) {
            Ok(a) => actions.extend(a),
            Err(e) => errors.push((def.qualified_name(), e)),
        }
    }
    Ok(Report { actions, errors })
}
