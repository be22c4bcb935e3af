//! `cuve warehouse vacuum`: deletes files no table refers to and no query can be reading.
//!
//! - Files commits replaced (tombstones), once older than the retention (as after every commit).
//! - In object stores: objects of Cuve's naming (`<bucket>_<n>` with `n` from 2^41) that no
//!   commit recorded (a writer died between its put and its commit), once older than
//!   `older_than`. Other programs' files are never touched, nor files of a commit.
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
    /// Uncommitted objects kept because they are younger than `older_than` (a write may still
    /// be committing them).
    pub orphans_kept: usize,
    /// Replaced files deleted after their retention.
    pub replaced_deleted: usize,
    /// Staging files of dead processes removed from local directories.
    pub staging_removed: usize,
}

/// Vacuums every table's storage and the warehouse root `warehouse`.
pub fn vacuum(catalog: &Catalog, warehouse: &str, older_than: Duration) -> Result<VacuumReport> {
    let mut report = VacuumReport {
        replaced_deleted: super::commit::vacuum(catalog, super::commit::retention_secs()),
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
    let cutoff = chrono::Utc::now()
        - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
    for root in roots {
        let Some(loc) = ObjectLocation::parse(root)? else {
            continue;
        };
        report.prefixes += 1;
        for meta in objects::list_all(&loc)? {
            report.objects += 1;
            let name = meta.location.filename().unwrap_or_default();
            if !objects::is_cuve_object_name(name) {
                continue;
            }
            let url = crate::storage::location::object_url(&loc.bucket, &meta.location);
            if known.contains(&url) {
                continue;
            }
            if meta.last_modified > cutoff {
                report.orphans_kept += 1;
                continue;
            }
            objects::delete(&url)?;
            report.orphans_deleted += 1;
        }
    }
    let pending = catalog.pending_publishes()?;
    for (dir, depth) in local {
        report.staging_removed +=
            super::commit::remove_orphans(std::path::Path::new(&dir), depth, &pending);
    }
    Ok(report)
}

/// Parses a duration of the form `30s`, `10m`, `1h` (or `2d`).
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
