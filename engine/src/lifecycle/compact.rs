//! Compaction: the small files of a (partition, bucket) merged into files of about the target
//! size, written as ingest writes them (Hive bucket file name, sorted by the table's sort key,
//! statistics, page index, bloom filters), committed in place of the old ones in one
//! transaction. A query sees the old files or the new ones, never both, never neither.

use std::path::PathBuf;
use std::sync::Arc;

use cuve_catalog::{Catalog, TableDef};

use super::rewrite::{self, Output, PartitionFiles};
use crate::error::Result;
use crate::table::layout::DataFile;

/// Files of one (partition, bucket) to merge into one.
#[derive(Debug, Clone)]
pub struct Merge {
    pub partition: String,
    pub dir: PathBuf,
    pub bucket: u32,
    pub files: Vec<DataFile>,
}

impl Merge {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Whether a file is small for `target` (under half of it).
pub fn is_small(size: u64, target: u64) -> bool {
    size < target / 2
}

/// The merges a partition's files call for: its small files, per bucket, packed in path order
/// into groups of at most `target` bytes; a group of one file is left alone.
pub fn plan_partition(p: &PartitionFiles, target: u64) -> Vec<Merge> {
    let mut out = Vec::new();
    for (bucket, files) in &p.buckets {
        // Files whose names carry no bucket are another program's: left as they are.
        let Some(bucket) = bucket else { continue };
        let mut small: Vec<&DataFile> = files.iter().filter(|f| is_small(f.size, target)).collect();
        small.sort_by(|a, b| a.path.cmp(&b.path));
        let mut group: Vec<DataFile> = Vec::new();
        let mut bytes = 0u64;
        let mut flush = |group: &mut Vec<DataFile>| {
            if group.len() >= 2 {
                out.push(Merge {
                    partition: p.spec(),
                    dir: PathBuf::from(&p.partition.location),
                    bucket: *bucket,
                    files: std::mem::take(group),
                });
            } else {
                group.clear();
            }
        };
        for f in small {
            if !group.is_empty() && bytes + f.size > target {
                flush(&mut group);
                bytes = 0;
            }
            bytes += f.size;
            group.push(f.clone());
        }
        flush(&mut group);
    }
    out
}

/// Runs one merge. Returns the new file.
pub fn run(catalog: &Arc<Catalog>, def: &TableDef, merge: &Merge) -> Result<Vec<PathBuf>> {
    let layout = rewrite::layout(catalog, def)?;
    let mut batches = Vec::new();
    for f in &merge.files {
        batches.extend(rewrite::read_file(&f.path, &layout.file_schema)?);
    }
    let replaced: Vec<PathBuf> = merge.files.iter().map(|f| f.path.clone()).collect();
    let output = Output {
        dir: merge.dir.clone(),
        bucket: merge.bucket,
        batches,
    };
    rewrite::commit_rewrite(
        catalog,
        def,
        &layout,
        vec![output],
        &replaced,
        &[],
        "compact",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cuve_catalog::PartitionDef;
    use std::collections::BTreeMap;

    fn file(name: &str, size: u64, bucket: Option<u32>) -> DataFile {
        DataFile {
            path: PathBuf::from(format!("/w/t/dt=1/{name}")),
            size,
            modified: None,
            bucket,
        }
    }

    #[test]
    fn small_files_are_packed_per_bucket_up_to_the_target() {
        let mut buckets = BTreeMap::new();
        buckets.insert(
            Some(0),
            vec![
                file("000000_1", 40, Some(0)),
                file("000000_2", 40, Some(0)),
                file("000000_3", 40, Some(0)),
                // Big: left alone.
                file("000000_4", 90, Some(0)),
            ],
        );
        // One small file: nothing to merge it with.
        buckets.insert(Some(1), vec![file("000001_1", 10, Some(1))]);
        // Another program's names: not touched.
        buckets.insert(
            None,
            vec![file("a.parquet", 1, None), file("b.parquet", 1, None)],
        );
        let p = PartitionFiles {
            partition: PartitionDef {
                values: vec![("dt".into(), "1".into())],
                location: "/w/t/dt=1".into(),
            },
            buckets,
        };
        let merges = plan_partition(&p, 100);
        assert_eq!(merges.len(), 1, "{merges:?}");
        // 40 + 40 fit in 100; the third starts a group of one, which is left alone.
        assert_eq!(merges[0].files.len(), 2);
        assert_eq!(merges[0].bucket, 0);
        assert_eq!(merges[0].partition, "dt=1");
    }
}
