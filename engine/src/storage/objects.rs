//! The object-store operations the engine needs, callable from any thread: each runs on the
//! storage runtime and the caller waits (async callers through `block_in_place`). Errors name
//! the bucket and key and say what to check.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions};

use super::location::{ObjectLocation, is_data_file_name, object_url};
use super::registry::{StoreRegistry, io_runtime};
use crate::error::{EngineError, Result};

/// An object a listing found.
#[derive(Debug, Clone)]
pub struct Listed {
    /// `s3://bucket/key`
    pub url: String,
    pub name: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// Files at least this large are uploaded in parts (a single PUT above it would hold the
/// whole file in one request). `CUVE_S3_MULTIPART_BYTES` changes it (tests).
/// Size of each part of a multipart upload (S3 wants at least 5 MiB but for the last).
const PART_BYTES: usize = 16 << 20;

fn multipart_from() -> usize {
    std::env::var("CUVE_S3_MULTIPART_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64 << 20)
}

/// Runs `fut` on the storage runtime and waits for it (on a channel: no executor of the
/// caller's runtime is involved, so a current-thread runtime cannot stall on it).
pub fn run<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    io_runtime().spawn(async move {
        let out = std::panic::AssertUnwindSafe(fut).catch_unwind().await;
        let _ = tx.send(out);
    });
    match crate::threads::blocking(|| rx.recv()) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the storage runtime dropped a request"),
    }
}

/// The store of a location's bucket.
pub fn store(loc: &ObjectLocation) -> Result<Arc<dyn ObjectStore>> {
    StoreRegistry::global().bucket(&loc.bucket)
}

/// A user-facing error for an operation on `what` (an `s3://` URL).
pub fn storage_error(what: &str, e: object_store::Error) -> EngineError {
    use object_store::Error as E;
    // Explained already by the bucket's store (`named`).
    let e = match e {
        E::Generic { store, source } => match source.downcast::<EngineError>() {
            Ok(ours) => return *ours,
            Err(source) => E::Generic { store, source },
        },
        other => other,
    };
    let hint = match &e {
        E::NotFound { .. } => "it does not exist: check the bucket and prefix",
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            "the store refused the credentials: check AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (or AWS_PROFILE) and the bucket's policy"
        }
        E::AlreadyExists { .. } => "an object of that name exists already",
        _ => {
            let text = e.to_string();
            if text.contains("SignatureDoesNotMatch")
                || text.contains("InvalidAccessKeyId")
                || text.contains("403")
            {
                "the store refused the credentials: check AWS_ACCESS_KEY_ID, \
                 AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (or AWS_PROFILE) and the bucket's policy"
            } else if text.contains("NoSuchBucket") {
                "the bucket does not exist: create it or fix the location"
            } else {
                "check AWS_ENDPOINT_URL (and AWS_ALLOW_HTTP=true for an http:// endpoint), \
                 AWS_REGION and that the store is reachable"
            }
        }
    };
    EngineError::File {
        path: what.to_string(),
        message: format!("object store request failed: {}; {hint}", one_line(&e)),
    }
}

fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    without_response_body(&text.replace('\n', " "))
}

/// An S3 error response's XML body reduced to its code and message: the body of a refused
/// signature also holds the access key id and the string that was signed.
fn without_response_body(text: &str) -> String {
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error>")) else {
        return text.to_string();
    };
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let from = text[start..].find(&open)? + start + open.len();
        let to = text[from..].find(&format!("</{name}>"))? + from;
        Some(text[from..to].to_string())
    };
    let mut out = text[..start].trim_end().to_string();
    if let Some(code) = tag("Code") {
        out.push_str(&format!(" {code}"));
    }
    if let Some(message) = tag("Message") {
        out.push_str(&format!(": {message}"));
    }
    out
}

/// Writes `data` once as a new object of `dir`, named by `name()` (called again for a fresh
/// name when one is taken: `PutMode::Create`, i.e. `If-None-Match: *`); `announce(url)` runs
/// before each put (the caller records its intent). Returns the object's URL.
pub fn put_new(
    dir: &ObjectLocation,
    name: impl Fn() -> String,
    announce: impl Fn(&str) -> Result<()>,
    data: Bytes,
) -> Result<String> {
    let store = store(dir)?;
    for _ in 0..8 {
        let loc = dir.child(&name());
        let url = loc.display();
        announce(&url)?;
        let (store, key, data) = (store.clone(), loc.key.clone(), data.clone());
        let multipart = data.len() >= multipart_from();
        let outcome = run(async move {
            if multipart {
                // Parts are not conditional: the random name is what keeps writers apart, and
                // an object only appears when the upload completes.
                if store.head(&key).await.is_ok() {
                    return Err(object_store::Error::AlreadyExists {
                        path: key.to_string(),
                        source: "exists".into(),
                    });
                }
                let mut upload = store.put_multipart(&key).await?;
                let parts: Vec<_> = (0..data.len())
                    .step_by(PART_BYTES)
                    .map(|at| {
                        upload.put_part(data.slice(at..(at + PART_BYTES).min(data.len())).into())
                    })
                    .collect();
                let done = match futures::future::try_join_all(parts).await {
                    Ok(_) => upload.complete().await.map(|_| ()),
                    Err(e) => Err(e),
                };
                if done.is_err() {
                    // Parts of an upload that did not complete are stored (and billed) until
                    // aborted.
                    let _ = upload.abort().await;
                }
                done
            } else {
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                };
                store.put_opts(&key, data.into(), opts).await.map(|_| ())
            }
        });
        match outcome {
            Ok(()) => return Ok(url),
            Err(object_store::Error::AlreadyExists { .. }) => continue,
            Err(e) => return Err(storage_error(&url, e)),
        }
    }
    Err(EngineError::invalid(format!(
        "{}: no free file name after 8 tries; objects are being created there concurrently",
        dir.display()
    )))
}

/// Whether a listed key is a file of the table: not a "directory" marker (a key ending in `/`,
/// as pyarrow and Spark write; Hadoop's `_$folder$`), not hidden (`.`) or a marker (`_`).
fn is_data_object(dir: &ObjectPath, meta: &ObjectMeta) -> bool {
    if &meta.location == dir {
        return false;
    }
    let Some(name) = meta.location.filename() else {
        return false;
    };
    is_data_file_name(name) && !name.ends_with("$folder$")
}

/// The data files directly in `dir`, sorted by key. A prefix with no objects lists empty.
pub fn list_files(dir: &ObjectLocation) -> Result<Vec<Listed>> {
    let store = store(dir)?;
    let key = dir.key.clone();
    let listed = run(async move { store.list_with_delimiter(Some(&key)).await })
        .map_err(|e| storage_error(&dir.display(), e))?;
    let mut out: Vec<Listed> = listed
        .objects
        .iter()
        .filter(|m| is_data_object(&dir.key, m))
        .map(|m| Listed {
            url: object_url(&dir.bucket, &m.location),
            name: m.location.filename().unwrap_or_default().to_string(),
            size: m.size,
            modified: m.last_modified.into(),
        })
        .collect();
    out.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(out)
}

/// The "subdirectories" of `dir` (common prefixes), by name.
pub fn list_dirs(dir: &ObjectLocation) -> Result<Vec<(String, ObjectLocation)>> {
    let store = store(dir)?;
    let key = dir.key.clone();
    let listed = run(async move { store.list_with_delimiter(Some(&key)).await })
        .map_err(|e| storage_error(&dir.display(), e))?;
    let mut out: Vec<(String, ObjectLocation)> = listed
        .common_prefixes
        .into_iter()
        .filter_map(|p| {
            let name = p.filename()?.to_string();
            Some((
                name,
                ObjectLocation {
                    key: p,
                    ..dir.clone()
                },
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Every object under `dir` (recursively), with its size and time.
pub fn list_all(dir: &ObjectLocation) -> Result<Vec<ObjectMeta>> {
    let store = store(dir)?;
    let key = dir.key.clone();
    run(async move {
        let prefix = (!key.as_ref().is_empty()).then_some(key);
        store.list(prefix.as_ref()).try_collect::<Vec<_>>().await
    })
    .map_err(|e| storage_error(&dir.display(), e))
}

/// The bytes of an object (`range` of them, or all), by URL.
pub fn get_bytes(url: &str, range: Option<std::ops::Range<u64>>) -> Result<Bytes> {
    let Some(loc) = ObjectLocation::parse(url)? else {
        return Err(EngineError::invalid(format!("{url} is not an object URL")));
    };
    let store = store(&loc)?;
    let key = loc.key.clone();
    run(async move {
        match range {
            Some(r) => store.get_range(&key, r).await,
            None => store.get(&key).await?.bytes().await,
        }
    })
    .map_err(|e| storage_error(url, e))
}

/// The size of an object, by URL.
pub fn size_of(url: &str) -> Result<u64> {
    let Some(loc) = ObjectLocation::parse(url)? else {
        return Err(EngineError::invalid(format!("{url} is not an object URL")));
    };
    let store = store(&loc)?;
    let key = loc.key.clone();
    run(async move { store.head(&key).await.map(|m| m.size) }).map_err(|e| storage_error(url, e))
}

/// Deletes one object by URL; a missing object is not an error.
pub fn delete(url: &str) -> Result<()> {
    let Some(loc) = ObjectLocation::parse(url)? else {
        return Err(EngineError::invalid(format!("{url} is not an object URL")));
    };
    let store = store(&loc)?;
    let key = loc.key.clone();
    match run(async move { store.delete(&key).await }) {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(storage_error(url, e)),
    }
}

/// Deletes every object under `dir`. Returns how many.
pub fn delete_prefix(dir: &ObjectLocation) -> Result<usize> {
    let store = store(dir)?;
    let key = dir.key.clone();
    run(async move {
        if key.as_ref().is_empty() {
            // Never a whole bucket.
            return Ok(0);
        }
        let keys = store.list(Some(&key)).map_ok(|m| m.location).boxed();
        let deleted: Vec<ObjectPath> = store.delete_stream(keys).try_collect().await?;
        Ok(deleted.len())
    })
    .map_err(|e| storage_error(&dir.display(), e))
}

/// Whether anything exists under `dir`.
pub fn exists_under(dir: &ObjectLocation) -> Result<bool> {
    let store = store(dir)?;
    let key = dir.key.clone();
    run(async move {
        let prefix = (!key.as_ref().is_empty()).then_some(key);
        let mut s = store.list(prefix.as_ref());
        s.next().await.transpose().map(|m| m.is_some())
    })
    .map_err(|e| storage_error(&dir.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_bodies_keep_code_and_message_only() {
        let text = "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\
                    <Error><Code>SignatureDoesNotMatch</Code><Message>The signature does not \
                    match</Message><AWSAccessKeyId>AKIAX</AWSAccessKeyId><StringToSign>s\
                    </StringToSign></Error>";
        let out = without_response_body(text);
        assert_eq!(
            out,
            "Server returned non-2xx status code: 403 Forbidden: SignatureDoesNotMatch: The \
             signature does not match"
        );
        assert_eq!(without_response_body("plain"), "plain");
    }

    #[test]
    fn directory_markers_hidden_and_marker_files_are_not_data() {
        let dir = ObjectPath::parse("t/dt=1").unwrap();
        let meta = |k: &str| ObjectMeta {
            location: ObjectPath::parse(k).unwrap(),
            last_modified: Default::default(),
            size: 0,
            e_tag: None,
            version: None,
        };
        assert!(!is_data_object(&dir, &meta("t/dt=1/")));
        assert!(!is_data_object(&dir, &meta("t/dt=1/_SUCCESS")));
        assert!(!is_data_object(&dir, &meta("t/dt=1/.part.crc")));
        assert!(!is_data_object(&dir, &meta("t/dt=1/x_$folder$")));
        assert!(is_data_object(&dir, &meta("t/dt=1/000000_0")));
    }
}

/// An object read by ranges, as a Parquet reader reads a file: the footer first, then only the
/// column chunks it needs (each `get_bytes` one ranged GET).
#[derive(Debug, Clone)]
pub struct RangedObject {
    url: String,
    len: u64,
}

impl RangedObject {
    /// `url` of `len` bytes (as its listing gave).
    pub fn new(url: &str, len: u64) -> Self {
        RangedObject {
            url: url.to_string(),
            len,
        }
    }

    fn range(&self, start: u64, end: u64) -> datafusion::parquet::errors::Result<Bytes> {
        if start > end || end > self.len {
            return Err(datafusion::parquet::errors::ParquetError::EOF(format!(
                "{}: bytes {start}..{end} asked of an object of {} bytes",
                self.url, self.len
            )));
        }
        get_bytes(&self.url, Some(start..end))
            .map_err(|e| datafusion::parquet::errors::ParquetError::External(Box::new(e)))
    }
}

impl datafusion::parquet::file::reader::Length for RangedObject {
    fn len(&self) -> u64 {
        self.len
    }
}

impl datafusion::parquet::file::reader::ChunkReader for RangedObject {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> datafusion::parquet::errors::Result<Self::T> {
        use bytes::Buf;
        Ok(self.range(start, self.len)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> datafusion::parquet::errors::Result<Bytes> {
        self.range(start, start.saturating_add(length as u64))
    }
}
