//! A bucket's store whose errors say which object failed (`s3://bucket/key`) and what to check,
//! wherever the request came from (a scan deep inside DataFusion's Parquet reader included).
//! With `CUVE_LOG=debug` each request is logged (`s3 request: GET s3://b/k 4096 bytes`; the
//! object-storage benchmark counts them).

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

use super::location::object_url;

/// The store of one bucket, with errors explained.
#[derive(Debug, Clone)]
pub struct Named {
    pub bucket: String,
    pub inner: Arc<dyn ObjectStore>,
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}", self.bucket)
    }
}

impl Named {
    /// A listing or deletion stream whose errors are explained (for `key`).
    fn explained<T: Send + 'static>(
        &self,
        stream: BoxStream<'static, Result<T>>,
        key: Option<&Path>,
    ) -> BoxStream<'static, Result<T>> {
        let (this, key) = (self.clone(), key.cloned());
        stream
            .map_err(move |e| this.explain(key.as_ref(), e))
            .boxed()
    }

    fn trace(&self, op: &str, key: Option<&Path>, bytes: u64) {
        if log::log_enabled!(log::Level::Debug) {
            let what = match key {
                Some(k) => object_url(&self.bucket, k),
                None => format!("s3://{}", self.bucket),
            };
            log::debug!("s3 request: {op} {what} {bytes} bytes");
        }
    }

    /// Keeps the errors callers act on (not found, exists, preconditions) as they are; adds
    /// the object's URL and a hint to the others.
    fn explain(&self, key: Option<&Path>, e: object_store::Error) -> object_store::Error {
        use object_store::Error as E;
        match e {
            E::NotFound { .. }
            | E::AlreadyExists { .. }
            | E::Precondition { .. }
            | E::NotModified { .. }
            | E::NotImplemented { .. }
            | E::NotSupported { .. } => e,
            other => {
                let what = match key {
                    Some(k) => object_url(&self.bucket, k),
                    None => format!("s3://{}", self.bucket),
                };
                let explained = super::objects::storage_error(&what, other);
                E::Generic {
                    store: "S3",
                    source: Box::new(explained),
                }
            }
        }
    }
}

#[async_trait]
impl ObjectStore for Named {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let r = self.inner.put_opts(location, payload, opts).await;
        r.map_err(|e| self.explain(Some(location), e))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.trace("MULTIPART", Some(location), 0);
        let r = self.inner.put_multipart_opts(location, opts).await;
        r.map_err(|e| self.explain(Some(location), e))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let head = options.head;
        let r = self.inner.get_opts(location, options).await;
        if let Ok(g) = &r {
            let bytes = if head { 0 } else { g.range.end - g.range.start };
            self.trace(if head { "HEAD" } else { "GET" }, Some(location), bytes);
        }
        r.map_err(|e| self.explain(Some(location), e))
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let r = self.inner.get_ranges(location, ranges).await;
        if let Ok(parts) = &r {
            let bytes = parts.iter().map(|b| b.len() as u64).sum();
            self.trace(&format!("GET x{}", ranges.len()), Some(location), bytes);
        }
        r.map_err(|e| self.explain(Some(location), e))
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.explained(self.inner.delete_stream(locations), None)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.trace("LIST", prefix, 0);
        self.explained(self.inner.list(prefix), prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.trace("LIST", prefix, 0);
        self.explained(self.inner.list_with_offset(prefix, offset), prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.trace("LIST", prefix, 0);
        let r = self.inner.list_with_delimiter(prefix).await;
        r.map_err(|e| self.explain(prefix, e))
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let r = self.inner.copy_opts(from, to, options).await;
        r.map_err(|e| self.explain(Some(from), e))
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let r = self.inner.rename_opts(from, to, options).await;
        r.map_err(|e| self.explain(Some(from), e))
    }
}
