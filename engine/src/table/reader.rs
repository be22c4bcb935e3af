//! The Parquet reader factory of Cuve's lookups (scans that filter on the sort key):
//! DataFusion's cached reader, asked to keep each file's page index in the footer cache, and
//! reading the selected pages straight from the local file.
//!
//! DataFusion first reads a footer without its page index (to prune row groups), caches it,
//! and then loads the page index on every scan without caching it. Cuve's lookups prune by
//! page (files are sorted by the bucket column), so the page index is read on every query of
//! that kind; asking for it with the footer caches both.
//!
//! A lookup reads a few small pages from each of many files. Through `object_store`, every
//! range is a task on tokio's blocking pool (a thread hand-off and wake-up per read) and a copy
//! into a new buffer; here the ranges are slices of the file's memory map (see mapped.rs),
//! taken on the calling thread without copying.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetFileReaderFactory,
};
use datafusion::error::Result as DfResult;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::object_store::ObjectStore;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::{ParquetError, Result as ParquetResult};
use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::mapped::{self, MappedFile, Version};

/// Creates readers whose footer (with its page index) comes from the shared cache.
#[derive(Debug)]
pub struct PageIndexCachingFactory {
    inner: CachedParquetFileReaderFactory,
    /// Maps object-store locations to file paths (the scans use the local file system store).
    local: LocalFileSystem,
    /// Read data ranges from memory maps (files Cuve owns) rather than through the store.
    mapped: bool,
}

impl PageIndexCachingFactory {
    pub fn new(store: Arc<dyn ObjectStore>, cache: Arc<FileMetadataCache>, mapped: bool) -> Self {
        PageIndexCachingFactory {
            inner: CachedParquetFileReaderFactory::new(store, cache),
            local: LocalFileSystem::new(),
            mapped,
        }
    }
}

impl ParquetFileReaderFactory for PageIndexCachingFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> DfResult<Box<dyn AsyncFileReader + Send>> {
        let location = &partitioned_file.object_meta.location;
        let path = self.local.path_to_filesystem(location)?;
        let version = Version {
            size: partitioned_file.object_meta.size,
            modified: partitioned_file
                .object_meta
                .last_modified
                .timestamp_nanos_opt()
                .unwrap_or_default(),
        };
        // DataFusion's `bytes_scanned` scan metric, for the ranges read here.
        let bytes_scanned = MetricBuilder::new(metrics)
            .with_new_label("filename", location.to_string())
            .counter("bytes_scanned", partition_index);
        let inner = self.inner.create_reader(
            partition_index,
            partitioned_file,
            metadata_size_hint,
            metrics,
        )?;
        Ok(Box::new(PageIndexReader {
            inner,
            path,
            version,
            map: None,
            mapped: self.mapped,
            bytes_scanned,
        }))
    }
}

/// A reader that always asks for the page index with the footer and reads data ranges from
/// the local file's memory map.
struct PageIndexReader {
    inner: Box<dyn AsyncFileReader + Send>,
    path: PathBuf,
    version: Version,
    map: Option<Arc<MappedFile>>,
    mapped: bool,
    bytes_scanned: Count,
}

impl PageIndexReader {
    fn read_ranges(&mut self, ranges: &[Range<u64>]) -> ParquetResult<Vec<Bytes>> {
        let file = match &self.map {
            Some(f) => f,
            None => {
                let f = mapped::map(&self.path, self.version).map_err(|e| {
                    ParquetError::External(format!("{}: {e}", self.path.display()).into())
                })?;
                self.map.insert(f)
            }
        };
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            let bytes = usize::try_from(r.start)
                .ok()
                .zip(usize::try_from(r.end).ok())
                .and_then(|(start, end)| file.slice(start..end))
                .ok_or_else(|| {
                    ParquetError::External(
                        format!(
                            "{}: reading bytes {}..{}: the file has only {} bytes (was it truncated?)",
                            self.path.display(),
                            r.start,
                            r.end,
                            file.len()
                        )
                        .into(),
                    )
                })?;
            self.bytes_scanned.add(bytes.len());
            out.push(bytes);
        }
        Ok(out)
    }
}

impl AsyncFileReader for PageIndexReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, ParquetResult<Bytes>> {
        if !self.mapped {
            return self.inner.get_bytes(range);
        }
        let result = self
            .read_ranges(std::slice::from_ref(&range))
            .map(|mut v| v.pop().unwrap_or_default());
        futures::future::ready(result).boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, ParquetResult<Vec<Bytes>>> {
        if !self.mapped {
            return self.inner.get_byte_ranges(ranges);
        }
        futures::future::ready(self.read_ranges(&ranges)).boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, ParquetResult<Arc<ParquetMetaData>>> {
        let options = options
            .cloned()
            .unwrap_or_default()
            .with_page_index_policy(PageIndexPolicy::Optional);
        async move { self.inner.get_metadata(Some(&options)).await }.boxed()
    }
}

/// A reader factory that holds the scan's read lease (`leases.rs`) for as long as the plan,
/// and its streams, use it: the files it reads are not deleted meanwhile.
#[derive(Debug)]
pub struct LeasedFactory {
    pub inner: Arc<dyn ParquetFileReaderFactory>,
    pub lease: Arc<super::leases::Lease>,
}

impl ParquetFileReaderFactory for LeasedFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> DfResult<Box<dyn AsyncFileReader + Send>> {
        // Tests hold a scan here (its lease taken, its files listed) while others commit.
        crate::faults::pause_once("scan-open");
        self.inner.create_reader(
            partition_index,
            partitioned_file,
            metadata_size_hint,
            metrics,
        )
    }
}
