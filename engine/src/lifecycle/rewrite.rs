//! What lifecycle actions share: a table's current files by partition and bucket, reading a
//! file in the table's file schema, and committing new files in place of old ones (one catalog
//! transaction; the replaced files must still be the table's, so two rewrites of the same files
//! never both land).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cuve_catalog::{Catalog, PartitionDef, StorageFormat, TableDef};
use datafusion::arrow::array::{ArrayRef, RecordBatch, new_null_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;

use crate::error::{EngineError, Result};
use crate::table::commit::{self, Change};
use crate::table::layout::{DataFile, table_partitions};
use crate::table::writer::Layout;

/// One partition's current files, by bucket (`None`: a file whose name carries no bucket).
#[derive(Debug, Clone)]
pub struct PartitionFiles {
    pub partition: PartitionDef,
    pub buckets: BTreeMap<Option<u32>, Vec<DataFile>>,
}

impl PartitionFiles {
    /// `dt=2019-10-01` (empty for an unpartitioned table).
    pub fn spec(&self) -> String {
        if self.partition.values.is_empty() {
            String::new()
        } else {
            self.partition.spec()
        }
    }

    pub fn files(&self) -> impl Iterator<Item = &DataFile> {
        self.buckets.values().flatten()
    }
}

/// Refuses lifecycle rewrites of tables Cuve does not own the files of.
pub fn check_rewritable(def: &TableDef, what: &str) -> Result<()> {
    if def.external {
        return Err(EngineError::Unsupported(format!(
            "{what} of {} is not done: it is an EXTERNAL table, whose files other programs own; Cuve rewrites only managed tables' files",
            def.qualified_name()
        )));
    }
    if def.format != StorageFormat::Parquet {
        return Err(EngineError::Unsupported(format!(
            "{what} of {} is not done: it is stored as {}, and Cuve writes only Parquet",
            def.qualified_name(),
            def.format.as_str()
        )));
    }
    Ok(())
}

/// The table's partitions and their current files (as of one catalog snapshot: unpublished
/// renames finished, replaced files left out).
pub fn current_files(catalog: &Catalog, def: &TableDef) -> Result<Vec<PartitionFiles>> {
    let snapshot = catalog.files_snapshot(&def.database, &def.name)?;
    commit::settle(&snapshot)?;
    let registered = if def.partition_columns.is_empty() {
        vec![]
    } else {
        snapshot.partitions.clone()
    };
    let id = catalog.object_id()?;
    let mut out = Vec::new();
    for p in table_partitions(def, registered) {
        let files = commit::committed_files(&snapshot, Path::new(&p.location), id, false)?;
        let mut buckets: BTreeMap<Option<u32>, Vec<DataFile>> = BTreeMap::new();
        for f in files {
            buckets.entry(f.bucket).or_default().push(f);
        }
        out.push(PartitionFiles {
            partition: p,
            buckets,
        });
    }
    Ok(out)
}

/// The layout new files of `def` are written with (its full definition: every column).
pub fn layout(catalog: &Arc<Catalog>, def: &TableDef) -> Result<Layout> {
    let table = crate::table::CuveTable::try_new(def.clone(), catalog.clone())?;
    Layout::new(Arc::new(def.clone()), table.schema())
}

/// Reads a Parquet file of the table as batches of `file_schema`: columns matched by name, cast
/// to the table's types; columns the file lacks are NULL.
pub fn read_file(path: &Path, file_schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    super::source::ParquetFile::open(path, None)?.read(None, file_schema)
}

/// `batch` in `schema`: columns by name, cast; missing ones NULL.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => Ok(cast(c, f.data_type())?),
            None => Ok(new_null_array(f.data_type(), n)),
        })
        .collect::<Result<_>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// New rows for one (partition, bucket): written as one file in `dir`.
#[derive(Debug)]
pub struct Output {
    pub dir: PathBuf,
    pub bucket: u32,
    pub batches: Vec<RecordBatch>,
}

/// Stages `outputs` (outputs without rows write nothing) and commits them in place of
/// `replaced`, in one transaction. `action` names the crash point before the commit
/// (`<action>-before-commit`, for the kill -9 tests). Returns the new files.
pub fn commit_rewrite(
    catalog: &Catalog,
    def: &TableDef,
    layout: &Layout,
    outputs: Vec<Output>,
    replaced: &[PathBuf],
    drop_partitions: &[String],
    action: &str,
) -> Result<Vec<PathBuf>> {
    let mut staged = Vec::new();
    // Each staged file its own name (several outputs may share a directory and a bucket).
    let token: u64 = rand::random();
    for (n, o) in outputs.into_iter().enumerate() {
        if o.batches.iter().all(|b| b.num_rows() == 0) {
            continue;
        }
        let tag = format!("{action}-{token:016x}-{n}");
        match commit::stage_file(catalog, layout, &o.dir, o.bucket, &o.batches, &tag) {
            Ok((s, _)) => staged.push(s),
            Err(e) => {
                commit::discard(catalog, &staged);
                return Err(e);
            }
        }
    }
    crate::faults::crash_point(&format!("{action}-before-commit"));
    let change = Change {
        replaced,
        require_live: true,
        drop_partitions,
        ..Default::default()
    };
    let (_, files) = commit::commit(catalog, def, &staged, change)?;
    // Staged files of rewrites that died before committing, in the directories written.
    let mut dirs: Vec<&PathBuf> = staged.iter().map(|s| &s.dir).collect();
    dirs.sort();
    dirs.dedup();
    if !dirs.is_empty() {
        let pending = catalog.pending_publishes()?;
        for d in dirs {
            commit::remove_orphans(d, 0, &pending);
        }
    }
    Ok(files)
}
