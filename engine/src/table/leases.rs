//! Read leases: which commits of a table running queries still read, so a file a later commit
//! replaced (compaction, DELETE, expiry, retention, OVERWRITE) leaves storage as soon as no
//! query uses it, and at once when none does.
//!
//! A scan takes a lease on the generation its file list is as of (`provider.rs`: the lease is
//! taken before the generation is checked a second time, so a commit that lands after the check
//! sees it) and holds it in its plan until the plan is dropped. A file replaced by commit `R` is
//! in use while some lease on its table has a generation below `R`.
//!
//! Leases of every process of a Cuve home are visible to the others: each process keeps, in
//! `leases/<pid>` next to the catalog, the oldest generation it holds per table, rewritten
//! (atomically) only when that changes. A file of a process that no longer runs (or whose pid
//! now belongs to another process: the start time is recorded) is ignored and removed. When a
//! release lets files go, a background thread deletes them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use cuve_catalog::Catalog;

/// `(database, table)`.
type Key = (String, String);

/// A held lease; released on drop.
#[derive(Debug)]
pub struct Lease {
    dir: PathBuf,
    key: Key,
    generation: i64,
    catalog: Arc<Catalog>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let raised = registry().release(&self.dir, &self.key, self.generation);
        if raised {
            reaper(self.catalog.clone());
        }
    }
}

#[derive(Default)]
struct Home {
    held: HashMap<Key, BTreeMap<i64, usize>>,
}

#[derive(Default)]
struct Registry {
    homes: Mutex<HashMap<PathBuf, Home>>,
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
}

/// The directory of lease files of the home whose catalog is `catalog`.
fn lease_dir(catalog: &Catalog) -> PathBuf {
    catalog
        .path()
        .parent()
        .unwrap_or(Path::new("."))
        .join("leases")
}

impl Registry {
    /// Records a lease; returns whether this process's oldest generation of the table went down
    /// (then the lease file was rewritten before returning).
    fn acquire(&self, dir: &Path, key: &Key, generation: i64) {
        let mut homes = self.homes.lock().unwrap_or_else(|e| e.into_inner());
        let home = homes.entry(dir.to_path_buf()).or_default();
        let held = home.held.entry(key.clone()).or_default();
        let lowered = held.keys().next().is_none_or(|&min| generation < min);
        *held.entry(generation).or_default() += 1;
        if lowered {
            write_file(dir, home);
        }
    }

    /// Drops a lease; returns whether the table's oldest held generation went up (files may
    /// have become free).
    fn release(&self, dir: &Path, key: &Key, generation: i64) -> bool {
        let mut homes = self.homes.lock().unwrap_or_else(|e| e.into_inner());
        let Some(home) = homes.get_mut(dir) else {
            return false;
        };
        let Some(held) = home.held.get_mut(key) else {
            return false;
        };
        let before = held.keys().next().copied();
        if let Some(n) = held.get_mut(&generation) {
            *n -= 1;
            if *n == 0 {
                held.remove(&generation);
            }
        }
        let after = held.keys().next().copied();
        if held.is_empty() {
            home.held.remove(key);
        }
        let raised = before != after;
        if raised {
            write_file(dir, home);
        }
        raised
    }

    fn own(&self, dir: &Path) -> HashMap<Key, i64> {
        let homes = self.homes.lock().unwrap_or_else(|e| e.into_inner());
        homes
            .get(dir)
            .map(|h| {
                h.held
                    .iter()
                    .filter_map(|(k, g)| g.keys().next().map(|&m| (k.clone(), m)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// This process's start time (clock ticks after boot, `/proc/<pid>/stat` field 22), so a lease
/// file of a dead process whose pid was reused is not taken for the new process's.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after its last ')'.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn write_file(dir: &Path, home: &Home) {
    let pid = std::process::id();
    let path = dir.join(pid.to_string());
    let mut text = format!("start\t{}\n", start_time(pid).unwrap_or(0));
    let mut any = false;
    for ((db, table), held) in &home.held {
        if let Some(min) = held.keys().next() {
            any = true;
            text.push_str(&format!("{min}\t{db}\t{table}\n"));
        }
    }
    if !any {
        let _ = std::fs::remove_file(&path);
        return;
    }
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{pid}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        // Without the file, another process could delete a file this one reads: say so.
        log::warn!("recording read leases in {}: {e}", dir.display());
    }
}

/// Takes a lease on `db.table` as of `generation`.
pub fn acquire(catalog: &Arc<Catalog>, db: &str, table: &str, generation: i64) -> Arc<Lease> {
    let dir = lease_dir(catalog);
    let key = (db.to_string(), table.to_string());
    registry().acquire(&dir, &key, generation);
    Arc::new(Lease {
        dir,
        key,
        generation,
        catalog: catalog.clone(),
    })
}

/// The oldest generation each table is read at, over every running process of the home.
pub fn oldest_read(catalog: &Catalog) -> HashMap<Key, i64> {
    let dir = lease_dir(catalog);
    let mut out = registry().own(&dir);
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let mut lines = text.lines();
        let start: Option<u64> = lines
            .next()
            .and_then(|l| l.strip_prefix("start\t"))
            .and_then(|s| s.parse().ok());
        let alive = crate::threads::pid_alive(pid)
            && match (start, start_time(pid)) {
                (Some(0), _) | (_, None) => true,
                (Some(a), Some(b)) => a == b,
                (None, _) => true,
            };
        if !alive {
            let _ = std::fs::remove_file(e.path());
            continue;
        }
        for line in lines {
            let mut f = line.splitn(3, '\t');
            let (Some(g), Some(db), Some(t)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let Ok(g) = g.parse::<i64>() else { continue };
            let slot = out.entry((db.to_string(), t.to_string())).or_insert(g);
            *slot = (*slot).min(g);
        }
    }
    out
}

/// Deletes, in the background, files a release freed.
fn reaper(catalog: Arc<Catalog>) {
    static TX: OnceLock<Mutex<mpsc::Sender<Arc<Catalog>>>> = OnceLock::new();
    let tx = TX.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Arc<Catalog>>();
        let spawned = std::thread::Builder::new()
            .name("cuve-reaper".into())
            .spawn(move || {
                while let Ok(c) = rx.recv() {
                    // Several releases in a row: one pass.
                    let mut pending = vec![c];
                    while let Ok(more) = rx.try_recv() {
                        if !pending.iter().any(|p| Arc::ptr_eq(p, &more)) {
                            pending.push(more);
                        }
                    }
                    for c in pending {
                        super::commit::vacuum(&c);
                    }
                }
            });
        if let Err(e) = spawned {
            log::warn!("starting the thread that deletes replaced files: {e}");
        }
        Mutex::new(tx)
    });
    let _ = tx.lock().unwrap_or_else(|e| e.into_inner()).send(catalog);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_generation_per_table_follows_acquire_and_release() {
        let home = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::open(home.path().join("catalog.db")).unwrap());
        let key = ("d".to_string(), "t".to_string());
        assert!(!oldest_read(&catalog).contains_key(&key));
        let a = acquire(&catalog, "d", "t", 7);
        let b = acquire(&catalog, "d", "t", 5);
        let c = acquire(&catalog, "d", "t", 9);
        assert_eq!(oldest_read(&catalog)[&key], 5);
        let file = std::fs::read_to_string(
            home.path()
                .join("leases")
                .join(std::process::id().to_string()),
        )
        .unwrap();
        assert!(file.contains("5\td\tt"), "{file}");
        drop(b);
        assert_eq!(oldest_read(&catalog)[&key], 7);
        drop(a);
        drop(c);
        assert!(!oldest_read(&catalog).contains_key(&key));
        assert!(
            !home
                .path()
                .join("leases")
                .join(std::process::id().to_string())
                .exists()
        );
    }

    #[test]
    fn lease_files_of_dead_processes_are_ignored() {
        let home = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(home.path().join("catalog.db")).unwrap();
        let dir = home.path().join("leases");
        std::fs::create_dir_all(&dir).unwrap();
        // A pid far above pid_max: no such process.
        std::fs::write(dir.join("99999999"), "start\t1\n3\td\tt\n").unwrap();
        assert!(oldest_read(&catalog).is_empty());
        assert!(!dir.join("99999999").exists());
    }
}
