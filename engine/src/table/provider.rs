//! `CuveTable`: the DataFusion table provider of a catalog table. Reads the registered partitions
//! (no directory walk), prunes partitions and buckets before any file is opened, and writes
//! through [`super::writer`] on INSERT.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use async_trait::async_trait;
use cuve_catalog::{Catalog, PartitionDef, StorageFormat, TableDef};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{ScalarValue, project_schema};
use datafusion::config::TableParquetOptions;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{
    ParquetFileReaderFactory, ParquetRowSelection,
};
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::parquet::arrow::arrow_reader::RowSelection;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;

use super::bucket::{BucketFile, BucketHash};
use super::layout::{DataFile, list_data_files, table_partitions};
use super::orc::OrcSource;
use super::page_select::{Keys, select_rows};
use super::prune::{
    allowed_values, is_partition_filter, partition_scalar, prune_partitions, select_buckets,
    unqualify,
};
use super::reader::PageIndexCachingFactory;
use super::scan_report::{QueryScans, ScanReport};
use super::verify::{self, Trust};
use super::writer::{CuveSink, WriteMode};
use crate::error::{EngineError, Result};
use crate::storage::ObjectLocation;
use crate::types::arrow_type;

/// A catalog table as DataFusion sees it.
#[derive(Debug)]
pub struct CuveTable {
    def: Arc<TableDef>,
    catalog: Arc<Catalog>,
    /// Data columns, then partition columns.
    schema: SchemaRef,
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
}

/// The files a scan will read, after pruning.
#[derive(Debug, Clone)]
pub struct FileSelection {
    /// Selected files with their partition values.
    pub files: Vec<(DataFile, Vec<ScalarValue>)>,
    pub report: ScanReport,
    /// Whether the files' bucket and sort layout may be relied on (verify.rs).
    pub trust: Trust,
    /// The read lease on the commit the files are as of (held by the scan's plan).
    pub lease: Arc<super::leases::Lease>,
}

impl CuveTable {
    /// Builds the provider of a catalog table.
    pub fn try_new(def: TableDef, catalog: Arc<Catalog>) -> Result<Self> {
        let mut fields = Vec::new();
        for c in &def.columns {
            // Strings are scanned as Utf8View (DataFusion's native string form for Parquet).
            let t = match arrow_type(&c.data_type)? {
                DataType::Utf8 => DataType::Utf8View,
                other => other,
            };
            fields.push(Field::new(&c.name, t, true));
        }
        let file_schema = Arc::new(Schema::new(fields.clone()));
        let mut partition_fields: Vec<FieldRef> = Vec::new();
        for c in &def.partition_columns {
            // String partition values repeat for a whole file: string views (a short value such
            // as a date is stored inline in each view, with no data buffer).
            let t = match arrow_type(&c.data_type)? {
                DataType::Utf8 => DataType::Utf8View,
                other => other,
            };
            let f = Arc::new(Field::new(&c.name, t, true));
            fields.push(f.as_ref().clone());
            partition_fields.push(f);
        }
        Ok(CuveTable {
            def: Arc::new(def),
            catalog,
            schema: Arc::new(Schema::new(fields)),
            file_schema,
            partition_fields,
        })
    }

    pub fn def(&self) -> &Arc<TableDef> {
        &self.def
    }

    pub fn file_schema(&self) -> &SchemaRef {
        &self.file_schema
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    fn partition_names(&self) -> Vec<&str> {
        self.partition_fields
            .iter()
            .map(|f| f.name().as_str())
            .collect()
    }

    /// Typed partition values of registered partitions.
    fn partition_values(&self, parts: &[PartitionDef]) -> Result<Vec<Vec<ScalarValue>>> {
        parts
            .iter()
            .map(|p| {
                self.partition_fields
                    .iter()
                    .map(|f| {
                        let v = p
                            .values
                            .iter()
                            .find(|(k, _)| k == f.name())
                            .map(|(_, v)| v.as_str())
                            .unwrap_or("");
                        partition_scalar(v, f)
                    })
                    .collect()
            })
            .collect()
    }

    /// The table's partitions and the listings of those `filters` keep, as of one commit: the
    /// catalog snapshot is taken, unpublished renames are finished, the directories listed and
    /// tombstoned files dropped; if a commit landed meanwhile, all again (see `table::commit`).
    #[allow(clippy::type_complexity)]
    fn consistent_listing(
        &self,
        filters: &[Expr],
    ) -> Result<(
        Vec<PartitionDef>,
        Vec<Vec<ScalarValue>>,
        usize,
        Vec<(usize, Arc<Vec<DataFile>>)>,
        Arc<super::leases::Lease>,
    )> {
        const ATTEMPTS: usize = 50;
        let (db, name) = (&self.def.database, &self.def.name);
        for _ in 0..ATTEMPTS {
            let snapshot = self.catalog.files_snapshot(db, name)?;
            super::commit::settle(&snapshot)?;
            let registered = if self.partition_fields.is_empty() {
                vec![]
            } else {
                snapshot.partitions.clone()
            };
            let parts = table_partitions(&self.def, registered);
            let values = self.partition_values(&parts)?;
            let keep = prune_partitions(&self.partition_fields, &values, filters)?;
            let kept = keep.len();
            // Listings are shared (cached); only the files that survive bucket pruning are copied.
            let mut listings: Vec<(usize, Arc<Vec<DataFile>>)> = Vec::with_capacity(kept);
            for i in keep {
                let dir = PathBuf::from(&parts[i].location);
                if crate::storage::is_object(&parts[i].location) {
                    let id = self.catalog.object_id()?;
                    let files =
                        super::commit::committed_files(&snapshot, &dir, id, self.def.external)?;
                    listings.push((i, Arc::new(files)));
                    continue;
                }
                let mut listing = cached_listing(&dir)?;
                if !snapshot.removed.is_empty()
                    && listing
                        .iter()
                        .any(|f| snapshot.removed.contains(f.path.to_str().unwrap_or("")))
                {
                    listing = Arc::new(
                        listing
                            .iter()
                            .filter(|f| !snapshot.removed.contains(f.path.to_str().unwrap_or("")))
                            .cloned()
                            .collect(),
                    );
                }
                listings.push((i, listing));
            }
            // Leased before the generation is checked again: a commit after the check sees
            // the lease and keeps the files it replaces for this scan.
            let lease = super::leases::acquire(&self.catalog, db, name, snapshot.generation);
            if self.catalog.table_generation(db, name)? == snapshot.generation {
                return Ok((parts, values, kept, listings, lease));
            }
        }
        Err(EngineError::invalid(format!(
            "table {} changed {ATTEMPTS} times while its files were listed; run the query again",
            self.def.qualified_name()
        )))
    }

    /// Selects the files to read for `filters`: partition pruning, then bucket pruning.
    pub fn select_files(&self, filters: &[Expr]) -> Result<FileSelection> {
        let (parts, values, keep, listings, lease) = self.consistent_listing(filters)?;
        let mut report = ScanReport {
            table: self.def.qualified_name(),
            partitions_total: parts.len(),
            partitions_read: keep,
            ..Default::default()
        };
        let candidates = || listings.iter().flat_map(|(_, l)| l.iter());
        report.files_total = candidates().count();
        let trust = if self.def.bucket.is_some() {
            verify::trust(&self.catalog, &self.def, candidates())?
        } else {
            Trust {
                buckets: false,
                sorted: false,
            }
        };
        let bucket_filter = if trust.buckets {
            self.bucket_filter(filters, candidates())
        } else {
            None
        };
        let wanted = match bucket_filter {
            Some((wanted, total)) => {
                report.buckets = Some((wanted.len(), total as usize));
                Some(wanted)
            }
            None => {
                if let Some(b) = &self.def.bucket
                    && trust.buckets
                    && candidates().all(|f| f.bucket.is_some())
                {
                    report.buckets = Some((b.num_buckets as usize, b.num_buckets as usize));
                }
                None
            }
        };
        let mut selected: Vec<(DataFile, Vec<ScalarValue>)> = Vec::new();
        for (i, listing) in &listings {
            for f in listing.iter() {
                let keep = match (&wanted, f.bucket) {
                    (Some(w), Some(b)) => w.contains(&b),
                    _ => true,
                };
                if keep {
                    selected.push((f.clone(), values[*i].clone()));
                }
            }
        }
        report.files_read = selected.len();
        report.bytes_read = selected.iter().map(|(f, _)| f.size).sum();
        Ok(FileSelection {
            files: selected,
            report,
            trust,
            lease,
        })
    }

    /// Whether a filter uses the leading column of the files' sort key.
    fn filters_sort_key(&self, filters: &[Expr]) -> bool {
        let lead = self
            .def
            .bucket
            .as_ref()
            .and_then(|b| b.sort_columns().first());
        lead.is_some_and(|c| filters_use(filters, std::slice::from_ref(c)))
    }

    /// For a lookup that pins the sort key's leading column to a few values: the rows of each
    /// file that can hold them, from the file's page index (footer cache; read now if not
    /// cached). `None` leaves the pruning to DataFusion: the filters do not pin the column,
    /// its type is not compared here, or a footer could not be read (the scan then reports it).
    async fn page_selections(
        &self,
        factory: &PageIndexCachingFactory,
        files: &[PartitionedFile],
        filters: &[Expr],
    ) -> Option<Vec<RowSelection>> {
        let column = self.def.bucket.as_ref()?.sort_columns().first()?.clone();
        let filters: Vec<Expr> = filters.iter().map(unqualify).collect();
        let keys = Keys::new(&allowed_values(&filters, &column)?)?;
        let metrics = ExecutionPlanMetricsSet::new();
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let mut reader = factory.create_reader(0, f.clone(), None, &metrics).ok()?;
            let metadata = reader.get_metadata(None).await.ok()?;
            out.push(select_rows(&metadata, &column, &keys)?);
        }
        Some(out)
    }

    /// Whether a filter refers to a bucket column (the only columns with bloom filters).
    fn filters_bucket_key(&self, filters: &[Expr]) -> bool {
        (self.def.bucket.as_ref()).is_some_and(|b| filters_use(filters, &b.columns))
    }

    /// Buckets to keep (and the bucket count) when bucket pruning applies.
    fn bucket_filter<'a>(
        &self,
        filters: &[Expr],
        mut candidates: impl Iterator<Item = &'a DataFile>,
    ) -> Option<(std::collections::BTreeSet<u32>, u32)> {
        let spec = self.def.bucket.as_ref()?;
        if let Some(f) = candidates.find(|f| f.bucket.is_none()) {
            log::warn!(
                "table {}: file {} has no bucket id in its name; bucket optimisations are off for this scan",
                self.def.qualified_name(),
                f.path.display()
            );
            return None;
        }
        let fields: Vec<FieldRef> = spec
            .columns
            .iter()
            .map(|c| {
                self.schema
                    .field_with_name(c)
                    .ok()
                    .map(|f| Arc::new(f.clone()))
            })
            .collect::<Option<_>>()?;
        let hash = BucketHash::from_version(self.def.bucketing_version());
        let kinds = super::bucket::TextKind::of_bucket_columns(&self.def);
        let wanted = select_buckets(filters, &fields, &kinds, hash, spec.num_buckets)?;
        Some((wanted, spec.num_buckets))
    }

    /// The bucket tag for this scan's files, when co-located planning may use them: a
    /// single-column bucket spec, every file with a bucket id, and the session allowing it.
    fn bucket_tag(&self, state: &dyn Session, selection: &FileSelection) -> Option<BucketFile> {
        let spec = self.def.bucket.as_ref()?;
        if !selection.trust.buckets
            || spec.columns.len() != 1
            || selection.files.iter().any(|(f, _)| f.bucket.is_none())
        {
            return None;
        }
        if let Some(settings) = state.config().get_extension::<BucketSettings>()
            && !settings.colocated
        {
            return None;
        }
        let column = spec.columns[0].clone();
        let column_type = self
            .schema
            .field_with_name(&column)
            .ok()?
            .data_type()
            .clone();
        Some(BucketFile {
            table: self.def.qualified_name(),
            bucket: 0,
            num_buckets: spec.num_buckets,
            version: self.def.bucketing_version(),
            column,
            column_type,
        })
    }

    /// The format of a scan with `filters` that does not filter on the sort key.
    /// `None` for ORC, which is scanned by [`OrcSource`].
    fn file_format(&self, state: &dyn Session, filters: &[Expr]) -> Option<Arc<dyn FileFormat>> {
        Some(match self.def.format {
            StorageFormat::Parquet => {
                let mut options = parquet_options(state);
                if !self.def.external {
                    // Files Cuve wrote: rows are in sort-key order, so other columns' page
                    // min/max span almost every value and the page index prunes nothing, yet
                    // DataFusion would read and parse it for every file of every scan. Cuve
                    // writes bloom filters on the bucket columns only.
                    options.global.enable_page_index = false;
                    if !self.filters_bucket_key(filters) {
                        options.global.bloom_filter_on_read = false;
                    }
                }
                Arc::new(ParquetFormat::default().with_options(options))
            }
            StorageFormat::Csv => {
                let header = self
                    .def
                    .properties
                    .get("skip.header.line.count")
                    .map(|v| v.trim() != "0")
                    .unwrap_or(false);
                let mut f = CsvFormat::default().with_has_header(header);
                if let Some(d) = self.def.properties.get("field.delim")
                    && let Some(b) = d.bytes().next()
                {
                    f = f.with_delimiter(b);
                }
                Arc::new(f)
            }
            StorageFormat::Json => Arc::new(JsonFormat::default()),
            // scanned by OrcSource (orc.rs)
            StorageFormat::Orc => return None,
        })
    }
}

/// Whether any filter refers to one of `columns`.
fn filters_use(filters: &[Expr], columns: &[String]) -> bool {
    filters
        .iter()
        .any(|f| f.column_refs().iter().any(|c| columns.contains(&c.name)))
}

/// Session switch for bucket optimisations (co-located joins and aggregations).
#[derive(Debug, Clone)]
pub struct BucketSettings {
    pub colocated: bool,
}

/// Directory listings, reused while the directory's modification time is unchanged (adding or
/// renaming a file in a directory changes it).
fn cached_listing(dir: &PathBuf) -> Result<Arc<Vec<DataFile>>> {
    type Cache = Mutex<HashMap<PathBuf, (SystemTime, Arc<Vec<DataFile>>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mtime = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
    if let Some(mtime) = mtime {
        let guard = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, files)) = guard.get(dir)
            && *t == mtime
            && mtime.elapsed().map(|e| e.as_secs() >= 2).unwrap_or(false)
        {
            return Ok(files.clone());
        }
    }
    let files = Arc::new(list_data_files(dir)?);
    if let Some(mtime) = mtime {
        let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
        guard.insert(dir.clone(), (mtime, files.clone()));
    }
    Ok(files)
}

/// Splits files into at most `n` groups of similar byte size, each a contiguous run of the
/// files in path order (as DataFusion's listing tables do): a partition's files stay in one
/// group, so per-group partial aggregates by partition columns (e.g. `GROUP BY dt`) hold few
/// groups and merge little.
fn balance(files: Vec<PartitionedFile>, n: usize) -> Vec<FileGroup> {
    let n = n.max(1).min(files.len().max(1));
    let mut files = files;
    files.sort_by(|a, b| a.object_meta.location.cmp(&b.object_meta.location));
    let total: u64 = files.iter().map(|f| f.object_meta.size).sum();
    let mut groups: Vec<Vec<PartitionedFile>> = Vec::with_capacity(n);
    let mut current: Vec<PartitionedFile> = Vec::new();
    let mut filled = 0u64;
    let count = files.len();
    for (i, f) in files.into_iter().enumerate() {
        filled += f.object_meta.size;
        current.push(f);
        // Close the group at its share of the bytes, keeping a file for every later group.
        let share = total * (groups.len() as u64 + 1) / n as u64;
        let later = n - groups.len() - 1;
        if groups.len() + 1 < n && (filled >= share || count - i - 1 == later) {
            groups.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups.into_iter().map(FileGroup::new).collect()
}

#[async_trait]
impl TableProvider for CuveTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let names = self.partition_names();
        Ok(filters
            .iter()
            .map(|f| {
                if is_partition_filter(&names, f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut selection = self.select_files(filters)?;
        if let Some(scans) = state.config().get_extension::<QueryScans>() {
            scans.record(selection.report.clone());
        }
        // Partitions past `retention.days` are not read, whether or not maintenance has
        // dropped them yet.
        if let Some(kept) = self.first_kept(|p| p.retention_days) {
            selection
                .files
                .retain(|(_, values)| !partition_before(values, kept));
        }
        // Partitions past `sensitive.retention.days` read their sensitive columns as NULL,
        // whether or not maintenance has removed the bytes yet.
        let masked = self.expired_sensitive(projection)?;
        if !masked.is_empty() {
            let sensitive_kept = self.first_kept(|p| p.sensitive_days);
            let (old, live): (Vec<_>, Vec<_>) =
                selection.files.iter().cloned().partition(|(_, values)| {
                    sensitive_kept.is_some_and(|k| partition_before(values, k))
                });
            if !old.is_empty() {
                // A filter on a masked column is applied above the mask (DataFusion applies
                // inexact filters again), never inside the scan, where it would see the
                // values the mask hides.
                let old_filters: Vec<Expr> = filters
                    .iter()
                    .filter(|f| {
                        !f.column_refs()
                            .iter()
                            .any(|c| masked.iter().any(|m| m == c.name()))
                    })
                    .cloned()
                    .collect();
                let part = |files| FileSelection {
                    files,
                    report: selection.report.clone(),
                    trust: selection.trust,
                    lease: selection.lease.clone(),
                };
                let old_plan = self
                    .scan_selection(state, part(old), projection, &old_filters, limit)
                    .await?;
                let old_plan = mask_columns(old_plan, &masked)?;
                if live.is_empty() {
                    return Ok(old_plan);
                }
                let live_plan = self
                    .scan_selection(state, part(live), projection, filters, limit)
                    .await?;
                return datafusion::physical_plan::union::UnionExec::try_new(vec![
                    live_plan, old_plan,
                ]);
            }
        }
        self.scan_selection(state, selection, projection, filters, limit)
            .await
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // The full definition: the session may not see the sensitive columns, but the files
        // rewritten keep them.
        let def = self
            .catalog
            .table(&self.def.database, &self.def.name)
            .map_err(EngineError::from)?
            .ok_or_else(|| {
                EngineError::invalid(format!(
                    "table '{}' does not exist",
                    self.def.qualified_name()
                ))
            })?;
        crate::lifecycle::rewrite::check_rewritable(&def, "DELETE")?;
        let access = state.config().get_extension::<crate::access::AccessView>();
        Ok(Arc::new(crate::lifecycle::delete::DeleteExec::new(
            self.catalog.clone(),
            def,
            filters,
            access,
        )))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if self.def.format != StorageFormat::Parquet {
            return Err(EngineError::Unsupported(format!(
                "INSERT into {} tables is not supported (Cuve reads them but writes only Parquet): table {} must be STORED AS PARQUET",
                self.def.format.as_str(),
                self.def.qualified_name()
            ))
            .into());
        }
        let mode = match insert_op {
            InsertOp::Append => WriteMode::Append,
            InsertOp::Overwrite => WriteMode::Overwrite,
            InsertOp::Replace => {
                return Err(
                    EngineError::Unsupported("REPLACE INTO is not supported".into()).into(),
                );
            }
        };
        let sink = CuveSink::new(
            self.def.clone(),
            self.catalog.clone(),
            self.schema.clone(),
            mode,
        );
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

impl CuveTable {
    /// The sensitive columns (and `raw`) of `projection` if the table expires them.
    fn expired_sensitive(&self, projection: Option<&Vec<usize>>) -> Result<Vec<String>> {
        if crate::lifecycle::policy::policy(&self.def)?
            .sensitive_days
            .is_none()
        {
            return Ok(vec![]);
        }
        let columns = crate::lifecycle::policy::sensitive_columns(&self.def);
        let projected: Vec<String> = match projection {
            Some(p) => p
                .iter()
                .map(|&i| self.schema.field(i).name().clone())
                .collect(),
            None => self
                .schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        };
        Ok(columns
            .into_iter()
            .filter(|c| projected.contains(c))
            .collect())
    }

    /// The first partition date still kept under the number of days `pick` takes from the
    /// table's policy (`retention.days` or `sensitive.retention.days`), today; `None` when
    /// the table has no such period. Computed once per scan.
    fn first_kept(
        &self,
        pick: fn(&crate::lifecycle::policy::Policy) -> Option<u32>,
    ) -> Option<chrono::NaiveDate> {
        let policy = crate::lifecycle::policy::policy(&self.def).ok()?;
        let days = pick(&policy)?;
        let today = crate::lifecycle::clock::today().ok()?;
        Some(crate::lifecycle::policy::first_kept(today, days))
    }

    async fn scan_selection(
        &self,
        state: &dyn Session,
        selection: FileSelection,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let bucketing = self.bucket_tag(state, &selection);
        let sorted = selection.trust.sorted;
        let lease = selection.lease.clone();
        // One scan reads one store: the local disk or one bucket.
        let mut url: Option<ObjectStoreUrl> = None;
        let mut files: Vec<PartitionedFile> = selection
            .files
            .into_iter()
            .map(|(f, values)| {
                let mut pf = PartitionedFile::new("", f.size).with_partition_values(values);
                let text = f.path.display().to_string();
                let (store, location) = match ObjectLocation::parse(&text)? {
                    Some(loc) => (loc.url, loc.key),
                    // The file's path as the local store reads it back: its segments as they
                    // are (Korean, `%`, quotes, `=`), not percent-encoded a second time.
                    None => (
                        ObjectStoreUrl::local_filesystem(),
                        ObjectPath::from_absolute_path(&f.path).map_err(|e| EngineError::File {
                            path: text.clone(),
                            message: format!("cannot be read through the object store: {e}"),
                        })?,
                    ),
                };
                match &url {
                    Some(u) if *u != store => {
                        return Err(EngineError::Unsupported(format!(
                            "table {} has the partitions read by this query in more than one \
                             store ({} and {}); one query reads a table from one store: filter \
                             on the partitions of one, or move them (ALTER TABLE ... PARTITION \
                             ... SET LOCATION)",
                            self.def.qualified_name(),
                            u.as_str(),
                            store.as_str()
                        )));
                    }
                    Some(_) => {}
                    None => url = Some(store),
                }
                pf.object_meta.location = location;
                if let Some(modified) = f.modified {
                    pf.object_meta.last_modified = modified.into();
                }
                Ok(match (&bucketing, f.bucket) {
                    (Some(tag), Some(b)) => pf.with_extension(BucketFile {
                        bucket: b,
                        ..tag.clone()
                    }),
                    _ => pf,
                })
            })
            .collect::<Result<_>>()?;
        let url = url.unwrap_or_else(ObjectStoreUrl::local_filesystem);
        let local = url == ObjectStoreUrl::local_filesystem();
        // A filter on the sort key: the page index narrows the scan to a few pages per file,
        // so it is kept in the footer cache (other scans read whole column chunks and are
        // faster without it), and the pages are chosen here (page_select.rs).
        let lookup = if self.def.format == StorageFormat::Parquet
            && sorted
            && self.filters_sort_key(filters)
        {
            let mut options = parquet_options(state);
            // The bloom filter is not read: on a file sorted by the key the page index already
            // narrows the scan to the one or two pages that can hold the value, and reading the
            // filter costs a read per file (q6: 10.5 ms with it, 7.9 ms without).
            options.global.bloom_filter_on_read = false;
            let runtime = state.runtime_env();
            // Memory maps only for files Cuve wrote and owns (a managed table's): another
            // program rewriting an external table's file in place would fault a mapped reader.
            let factory = PageIndexCachingFactory::new(
                runtime.object_store(&url)?,
                runtime.cache_manager.get_file_metadata_cache(),
                local && !self.def.external,
            );
            // On a cluster the row selections (per-file extensions) would not reach the
            // executors, which would then read every row of each file: there DataFusion
            // prunes by the page index itself, from the scan's predicate.
            let selections = if crate::remote::for_cluster(state.config_options()) {
                None
            } else {
                self.page_selections(&factory, &files, filters).await
            };
            if let Some(rows) = selections {
                files = files
                    .into_iter()
                    .zip(rows)
                    .filter(|(_, rows)| rows.row_count() > 0)
                    .map(|(f, rows)| f.with_extension(ParquetRowSelection::new(rows)))
                    .collect();
                options.global.pruning = false;
                options.global.enable_page_index = false;
            }
            Some((options, factory))
        } else {
            None
        };
        if files.is_empty() {
            let projected = project_schema(&self.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        let groups = balance(files, state.config().target_partitions());
        let table_schema = TableSchema::builder(self.file_schema.clone())
            .with_table_partition_cols(self.partition_fields.clone())
            .build();
        let config = |source: Arc<dyn FileSource>| -> DfResult<_> {
            Ok(FileScanConfigBuilder::new(url.clone(), source)
                .with_file_groups(groups)
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build())
        };
        if let Some((options, factory)) = lookup {
            let factory = super::reader::LeasedFactory {
                inner: Arc::new(factory),
                lease,
            };
            let mut source = ParquetSource::new(table_schema)
                .with_table_parquet_options(options.clone())
                .with_parquet_file_reader_factory(Arc::new(factory));
            if let Some(hint) = options.global.metadata_size_hint {
                source = source.with_metadata_size_hint(hint);
            }
            return Ok(DataSourceExec::from_data_source(config(Arc::new(source))?));
        }
        let Some(format) = self.file_format(state, filters) else {
            let unqualified: Vec<Expr> = filters.iter().map(unqualify).collect();
            let predicate = super::orc::lookup_predicate(&unqualified, &self.file_schema);
            let source = Arc::new(
                OrcSource::new(table_schema)
                    .with_predicate(predicate)
                    .with_lease(lease),
            );
            return Ok(DataSourceExec::from_data_source(config(source)?));
        };
        let config = config(format.file_source(table_schema))?;
        let plan = format.create_physical_plan(state, config).await?;
        Ok(with_lease(plan, lease))
    }
}

/// `plan` with the columns `masked` replaced by NULLs of their type.
fn mask_columns(
    plan: Arc<dyn ExecutionPlan>,
    masked: &[String],
) -> DfResult<Arc<dyn ExecutionPlan>> {
    use datafusion::physical_expr::expressions::{Column, Literal};
    use datafusion::physical_expr::projection::ProjectionExpr;
    let schema = plan.schema();
    let exprs = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let expr: Arc<dyn datafusion::physical_expr::PhysicalExpr> =
                if masked.contains(f.name()) {
                    Arc::new(Literal::new(ScalarValue::try_from(f.data_type())?))
                } else {
                    Arc::new(Column::new(f.name(), i))
                };
            Ok(ProjectionExpr::new(expr, f.name().clone()))
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(Arc::new(
        datafusion::physical_plan::projection::ProjectionExec::try_new(exprs, plan)?,
    ))
}

/// Whether a file's partition (its first partition value) is a date before `kept`.
fn partition_before(values: &[ScalarValue], kept: chrono::NaiveDate) -> bool {
    let date = match values.first() {
        Some(
            ScalarValue::Utf8(Some(v))
            | ScalarValue::LargeUtf8(Some(v))
            | ScalarValue::Utf8View(Some(v)),
        ) => crate::lifecycle::policy::parse_date(v),
        Some(d @ ScalarValue::Date32(Some(_))) => {
            crate::lifecycle::policy::parse_date(&d.to_string())
        }
        _ => None,
    };
    date.is_some_and(|d| d < kept)
}

/// A Parquet scan whose reader factory holds `lease` (other scans are returned as they are:
/// only Parquet files are ever replaced).
fn with_lease(
    plan: Arc<dyn ExecutionPlan>,
    lease: Arc<super::leases::Lease>,
) -> Arc<dyn ExecutionPlan> {
    use std::any::Any;
    let Some(ds) = (plan.as_ref() as &dyn Any).downcast_ref::<DataSourceExec>() else {
        return plan;
    };
    let Some(config) = (ds.data_source().as_ref() as &dyn Any).downcast_ref::<FileScanConfig>()
    else {
        return plan;
    };
    let Some(source) = (config.file_source().as_ref() as &dyn Any).downcast_ref::<ParquetSource>()
    else {
        return plan;
    };
    let Some(inner) = source.parquet_file_reader_factory().cloned() else {
        return plan;
    };
    let source = source
        .clone()
        .with_parquet_file_reader_factory(Arc::new(super::reader::LeasedFactory { inner, lease }));
    let config = FileScanConfigBuilder::from(config.clone())
        .with_source(Arc::new(source))
        .build();
    DataSourceExec::from_data_source(config)
}

/// The session's Parquet read options: its table options with the current settings of how
/// files are read (`datafusion.execution.parquet.pushdown_filters`, `reorder_filters`,
/// `force_filter_selections`, `pruning`, `enable_page_index`, `bloom_filter_on_read`,
/// `skip_metadata`, `metadata_size_hint`), so `SET` changes them for Cuve tables as for
/// DataFusion's own (DataFusion copies its settings into the table options only when the
/// session is created). Settings that change column types stay as the table's schema needs.
fn parquet_options(state: &dyn Session) -> TableParquetOptions {
    let mut options = state.table_options().parquet.clone();
    let now = &state.config_options().execution.parquet;
    let o = &mut options.global;
    o.pushdown_filters = now.pushdown_filters;
    o.reorder_filters = now.reorder_filters;
    o.force_filter_selections = now.force_filter_selections;
    o.pruning = now.pruning;
    o.enable_page_index = now.enable_page_index;
    o.bloom_filter_on_read = now.bloom_filter_on_read;
    o.skip_metadata = now.skip_metadata;
    o.metadata_size_hint = now.metadata_size_hint;
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(sizes: &[u64], n: usize) -> Vec<Vec<String>> {
        let files = sizes
            .iter()
            .enumerate()
            .rev()
            .map(|(i, s)| PartitionedFile::new(format!("t/dt={i:02}/f.parquet"), *s))
            .collect();
        balance(files, n)
            .iter()
            .map(|g| {
                g.files()
                    .iter()
                    .map(|f| f.object_meta.location.to_string()[5..7].to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn balance_keeps_path_order_and_sizes_even() {
        assert_eq!(groups(&[10, 10, 10, 10], 2), [["00", "01"], ["02", "03"]]);
        assert_eq!(
            groups(&[100, 1, 1, 1], 3),
            vec![vec!["00"], vec!["01"], vec!["02", "03"]]
        );
        assert_eq!(
            groups(&[1, 1, 1, 100], 2),
            vec![vec!["00", "01", "02"], vec!["03"]]
        );
        assert_eq!(groups(&[5, 5], 8), [["00"], ["01"]]);
        assert_eq!(groups(&[5, 5, 5], 1), [["00", "01", "02"]]);
        assert!(groups(&[], 4).is_empty());
    }
}
