//! Memory maps of the table files lookups read, kept open across queries.
//!
//! A lookup (a filter on the sort key) reads one or two pages of each column from each of many
//! files, plus every column's dictionary page. Reading them with `read(2)` copies each byte out
//! of the page cache into a fresh buffer, which took about a tenth of a lookup's CPU; through a
//! map the decoders read the page cache in place, and once a file has been read through its
//! map the page tables stay filled, so the next lookup of that file costs no system call.
//!
//! This is safe because Cuve never changes a published file: ingest and INSERT write a new file
//! under a temporary name and publish it by link or rename, and INSERT OVERWRITE or DROP remove
//! files, which leaves an open map valid until it is dropped (they also drop the cached maps of
//! what they delete, so its disk space is freed once running queries finish). A map is keyed by the file's path,
//! size and modification time as listed, so a new file at an old path is mapped afresh. Only a
//! file truncated in place by something outside Cuve could fault a reader (as with every
//! memory-mapped reader, e.g. DuckDB's or SQLite's); the listed size is checked on every map.
//!
//! At most [`CAPACITY`] files stay mapped; the least recently used map is dropped first.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use memmap2::Mmap;

/// How many files stay mapped (a map costs one kernel memory area; Linux allows ~65,000 per
/// process by default, and memory only for the page-table entries of pages read).
pub const CAPACITY: usize = 4096;

/// A file's identity as listed: maps of a different size or time are replaced.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Version {
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub modified: i64,
}

/// A shared read-only map of one file.
#[derive(Debug)]
pub struct MappedFile {
    map: Mmap,
}

impl MappedFile {
    /// The bytes at `range` without copying them, or `None` when the file is shorter.
    pub fn slice(self: &Arc<Self>, range: std::ops::Range<usize>) -> Option<Bytes> {
        if range.start > range.end || range.end > self.map.len() {
            return None;
        }
        Some(Bytes::from_owner(Slice {
            file: self.clone(),
            range,
        }))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A range of a map, kept alive by the `Bytes` that point into it.
struct Slice {
    file: Arc<MappedFile>,
    range: std::ops::Range<usize>,
}

impl AsRef<[u8]> for Slice {
    fn as_ref(&self) -> &[u8] {
        &self.file.map[self.range.clone()]
    }
}

struct Entry {
    version: Version,
    file: Arc<MappedFile>,
    used: u64,
}

/// The process's open maps.
#[derive(Default)]
struct Maps {
    entries: HashMap<PathBuf, Entry>,
    clock: u64,
}

static MAPS: LazyLock<Mutex<Maps>> = LazyLock::new(Mutex::default);

/// The map of `path` at `version`, mapping it if it is not mapped yet. Fails with the file's
/// size when it is not the listed one (the file changed since the table was listed).
pub fn map(path: &Path, version: Version) -> io::Result<Arc<MappedFile>> {
    {
        let mut maps = MAPS.lock().unwrap_or_else(|p| p.into_inner());
        maps.clock += 1;
        let now = maps.clock;
        if let Some(e) = maps.entries.get_mut(path)
            && e.version == version
        {
            e.used = now;
            return Ok(e.file.clone());
        }
    }
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    if size != version.size {
        return Err(io::Error::other(format!(
            "the file is {size} bytes, but {} when the table was listed: it was changed outside \
             Cuve (Cuve never rewrites a published file); restore it, or drop its partition and \
             ingest it again",
            version.size
        )));
    }
    // SAFETY: table files are never modified after they are published (see the module doc);
    // the map is read-only and its size was just checked against the listing.
    let map = unsafe { Mmap::map(&file)? };
    let mapped = Arc::new(MappedFile { map });
    let mut maps = MAPS.lock().unwrap_or_else(|p| p.into_inner());
    if maps.entries.len() >= CAPACITY && !maps.entries.contains_key(path) {
        let oldest = maps
            .entries
            .iter()
            .min_by_key(|(_, e)| e.used)
            .map(|(p, _)| p.clone());
        if let Some(p) = oldest {
            maps.entries.remove(&p);
        }
    }
    let used = maps.clock;
    maps.entries.insert(
        path.to_path_buf(),
        Entry {
            version,
            file: mapped.clone(),
            used,
        },
    );
    Ok(mapped)
}

/// Drops the maps of `path` and of every file under it (a table or partition directory, or
/// one file), called when Cuve deletes them: a map keeps a deleted file's disk space in use
/// until it is dropped. Queries still reading such a file keep their own reference.
pub fn forget(path: &Path) {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut maps = MAPS.lock().unwrap_or_else(|p| p.into_inner());
    maps.entries.retain(|p, _| !p.starts_with(&path));
}

/// How many files under `dir` are mapped now (tests: external tables' files never are).
pub fn mapped_under(dir: &Path) -> usize {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let maps = MAPS.lock().unwrap_or_else(|p| p.into_inner());
    maps.entries.keys().filter(|p| p.starts_with(&dir)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_shared_and_replaced_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        std::fs::write(&path, b"PAR1 hello PAR1").unwrap();
        let v = Version {
            size: 15,
            modified: 1,
        };
        let a = map(&path, v).unwrap();
        let b = map(&path, v).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&a.slice(5..10).unwrap()[..], b"hello");
        assert!(a.slice(10..16).is_none());

        // A new file at the same path (another size and time) is mapped afresh; the old map
        // stays valid for whoever still holds it.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"PAR1 bye PAR1").unwrap();
        let c = map(
            &path,
            Version {
                size: 13,
                modified: 2,
            },
        )
        .unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(&c.slice(5..8).unwrap()[..], b"bye");
        assert_eq!(&a.slice(5..10).unwrap()[..], b"hello");

        // A size other than the listed one is an error naming both.
        let err = map(
            &path,
            Version {
                size: 99,
                modified: 3,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("13 bytes, but 99"), "{err}");

        // Deleting the directory forgets its maps; a held map stays readable.
        let listed = Version {
            size: 13,
            modified: 2,
        };
        assert!(Arc::ptr_eq(&c, &map(&path, listed).unwrap()));
        forget(dir.path());
        assert!(!Arc::ptr_eq(&c, &map(&path, listed).unwrap()));
        assert_eq!(&c.slice(5..8).unwrap()[..], b"bye");
    }
}
