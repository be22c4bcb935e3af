//! `cuve warehouse vacuum`: deletes files no table refers to and no query can be reading.
//!
//! - Files commits replaced (tombstones), once older than the retention (as after every commit).
//! - In object stores: objects this catalog's writers put (their names carry its object id,
//!   `commit::is_ours`) that no commit recorded, once older than `older_than` and not being
//!   written: a writer announces each object in the catalog before it puts it, and an object
//!   whose writer still runs is kept however old. Just before deleting, the catalog is asked
//!   again (a commit may have landed since the listing). Other programs' files, other Cuve
//!   homes' objects and files of a commit are never touched.
//! - On local disk: staging files of dead processes (as every write does).

use std::collections::BTreeSet;
use std::time::Duration;

use cuve_catalog::Catalog;

use crate::error::Result;
use crate::storage::ObjectLocation;
use crate::storage::objects;

/// What a vacuum did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VacuumReport {
    /// Object-store prefixes listed.
    pub prefixes: usize,
    /// Objects seen under them.
    pub objects: usize,
    /// Uncommitted objects deleted.
    pub orphans_deleted: usize,
    /// Uncommitted objects kept because they are younger than `older_than` or their writer
    /// still runs.
    pub orphans_kept: usize,
    /// Prefixes that could not be listed or objects that could not be deleted (logged; the
    /// rest of the vacuum went on).
    pub errors: usize,
    /// Replaced files deleted after their retention.
    pub replaced_deleted: usize,
    /// Staging files of dead processes removed from local directories.
    pub staging_removed: usize,
}

/// Vacuums every table's storage and the warehouse root `warehouse`.
pub fn vacuum(catalog: &Catalog, warehouse: &str, older_than: Duration) -> Result<VacuumReport> {
    let mut report = VacuumReport {
        replaced_deleted: super::commit::vacuum(catalog),
        ..Default::default()
    };
    let mut prefixes: BTreeSet<String> = BTreeSet::new();
    let mut local: Vec<(String, usize)> = Vec::new();
    if crate::storage::is_object(warehouse) {
        prefixes.insert(warehouse.trim_end_matches('/').to_string());
    }
    for db in catalog.databases()? {
        for name in catalog.table_names(&db.name)? {
            let Some(def) = catalog.table(&db.name, &name)? else {
                continue;
            };
            if crate::storage::is_object(&def.location) {
                prefixes.insert(def.location.trim_end_matches('/').to_string());
            } else {
                local.push((def.location.clone(), def.partition_columns.len()));
            }
            if !def.partition_columns.is_empty() {
                for p in catalog.partitions(&db.name, &name)? {
                    if crate::storage::is_object(&p.location) {
                        prefixes.insert(p.location.trim_end_matches('/').to_string());
                    } else if !p.location.starts_with(&def.location) {
                        local.push((p.location.clone(), 0));
                    }
                }
            }
        }
    }
    // A prefix inside another is listed with it.
    let roots: Vec<&String> = prefixes
        .iter()
        .filter(|p| {
            !prefixes
                .iter()
                .any(|q| q != *p && p.starts_with(&format!("{q}/")))
        })
        .collect();
    let known = catalog.known_object_files()?;
    let intents = catalog.object_intents()?;
    let ours = catalog.object_id()?;
    let cutoff = chrono::Duration::from_std(older_than)
        .ok()
        .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let mut seen = std::collections::HashSet::new();
    for root in roots {
        let Some(loc) = ObjectLocation::parse(root)? else {
            continue;
        };
        report.prefixes += 1;
        let listed = match objects::list_all(&loc) {
            Ok(l) => l,
            Err(e) => {
                log::warn!("vacuum: {}", e.user_message());
                report.errors += 1;
                continue;
            }
        };
        for meta in listed {
            report.objects += 1;
            let name = meta.location.filename().unwrap_or_default();
            if !super::commit::is_ours(name, ours) {
                continue;
            }
            let url = crate::storage::location::object_url(&loc.bucket, &meta.location);
            seen.insert(url.clone());
            if known.contains(&url) {
                continue;
            }
            let writing = intents
                .get(&url)
                .is_some_and(|pid| crate::threads::pid_alive(*pid));
            if writing || meta.last_modified > cutoff {
                report.orphans_kept += 1;
                continue;
            }
            // Asked again: a commit may have recorded it since the listing.
            if catalog.knows_object_file(&url)? {
                continue;
            }
            match objects::delete(&url) {
                Ok(()) => {
                    catalog.forget_object_intents(std::slice::from_ref(&url))?;
                    report.orphans_deleted += 1;
                }
                Err(e) => {
                    log::warn!("vacuum: {}", e.user_message());
                    report.errors += 1;
                }
            }
        }
    }
    // Intents of writers that died before their put (no object to delete).
    let stale: Vec<String> = intents
        .iter()
        .filter(|(url, pid)| !seen.contains(*url) && !crate::threads::pid_alive(**pid))
        .map(|(url, _)| url.clone())
        .collect();
    catalog.forget_object_intents(&stale)?;
    let pending = catalog.pending_publishes()?;
    for (dir, depth) in local {
        report.staging_removed +=
            super::commit::remove_orphans(std::path::Path::new(&dir), depth, &pending);
    }
    Ok(report)
}

/// Parses a duration of the form `30s`, `10m`, `1h` (or `2d`); at most 100 years.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| {
        format!("'{text}' is not a duration: write a number and a unit, e.g. 30s, 10m, 1h")
    })?;
    let secs = match unit.trim() {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        other => {
            return Err(format!(
                "'{text}': unknown unit '{other}'; use s, m, h or d (e.g. 30s, 10m, 1h)"
            ));
        }
    };
    if secs > 100 * 365 * 86_400 {
        return Err(format!("'{text}' is more than 100 years"));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("1").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("h").unwrap_err().contains("not a duration"));
        assert!(
            parse_duration("5 weeks")
                .unwrap_err()
                .contains("unknown unit")
        );
    }
}
