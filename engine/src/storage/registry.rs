//! The process's object stores: one per bucket, made on first use.
//!
//! Credentials and endpoint come the way AWS tools take them: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL` (path-style
//! requests, for S3-compatible servers), `AWS_ALLOW_HTTP=true` for plain-HTTP endpoints; without
//! keys in the environment, the static keys of profile `AWS_PROFILE` (else `default`) in
//! `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`), and its region in `~/.aws/config`
//! (`AWS_CONFIG_FILE`). Keys are held by the store only: never written to the catalog or shown.
//!
//! Every request runs on one storage runtime (`SpawnedReqwestConnector`), so stores work the
//! same from a query's threads, a blocking DDL statement or a test's runtime.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::client::SpawnedReqwestConnector;
use object_store::local::LocalFileSystem;
use object_store::{BackoffConfig, RetryConfig};
use url::Url;

use crate::error::{EngineError, Result};

/// The runtime every object-store request runs on.
pub(crate) fn io_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cuve-storage")
            .enable_all()
            .build()
            .expect("the storage runtime starts")
    })
}

/// Object stores by URL key (`file://`, `s3://bucket`).
#[derive(Debug)]
pub struct StoreRegistry {
    local: Arc<LocalFileSystem>,
    buckets: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl StoreRegistry {
    /// The process-wide registry (stores keep connection pools; one per bucket is enough).
    pub fn global() -> Arc<StoreRegistry> {
        static REG: OnceLock<Arc<StoreRegistry>> = OnceLock::new();
        REG.get_or_init(|| {
            Arc::new(StoreRegistry {
                local: Arc::new(LocalFileSystem::new()),
                buckets: Mutex::default(),
            })
        })
        .clone()
    }

    /// The store of `bucket`, made from the environment on first use.
    pub fn bucket(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(bucket) {
            return Ok(s.clone());
        }
        let s3 = s3_builder(bucket)?.build().map_err(|e| {
            EngineError::invalid(format!(
                "s3://{bucket}: cannot set up the object store: {e}; check AWS_REGION, \
                 AWS_ENDPOINT_URL and the credentials"
            ))
        })?;
        let store: Arc<dyn ObjectStore> = Arc::new(super::named::Named {
            bucket: bucket.to_string(),
            inner: Arc::new(s3),
        });
        map.insert(bucket.to_string(), store.clone());
        Ok(store)
    }

    /// Forgets the stores made so far (tests that change the AWS variables).
    pub fn reset(&self) {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        match url.scheme() {
            "s3" | "s3a" => self
                .buckets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(url.host_str().unwrap_or_default().to_string(), store),
            _ => None,
        }
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        match url.scheme() {
            "file" => Ok(self.local.clone()),
            "s3" | "s3a" => self
                .bucket(url.host_str().unwrap_or_default())
                .map_err(|e| DataFusionError::External(Box::new(e))),
            other => Err(DataFusionError::External(Box::new(EngineError::invalid(
                format!("{url}: the scheme {other}:// is not supported (local paths and s3://)"),
            )))),
        }
    }
}

/// A builder for `bucket` from the AWS variables, then the profile files.
fn s3_builder(bucket: &str) -> Result<AmazonS3Builder> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_http_connector(SpawnedReqwestConnector::new(io_runtime().handle().clone()))
        // A few quick retries: a wrong endpoint or a server that is down is reported in
        // seconds, not after minutes of backing off.
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
        });
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if env("AWS_ACCESS_KEY_ID").is_none() {
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let home = env("HOME").map(PathBuf::from);
        let credentials = env("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
        let keys = credentials
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| ini_section(&text, &profile))
            .unwrap_or_default();
        match (
            keys.get("aws_access_key_id"),
            keys.get("aws_secret_access_key"),
        ) {
            (Some(id), Some(secret)) => {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(token) = keys.get("aws_session_token") {
                    b = b.with_token(token);
                }
            }
            _ if env("AWS_PROFILE").is_some() => {
                return Err(EngineError::invalid(format!(
                    "AWS_PROFILE={profile}: no aws_access_key_id and aws_secret_access_key for \
                     that profile in {}; set them there or set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY",
                    credentials
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "~/.aws/credentials".into())
                )));
            }
            _ => {}
        }
        if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() {
            let config = env("AWS_CONFIG_FILE")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".aws/config")));
            let section = if profile == "default" {
                profile.clone()
            } else {
                format!("profile {profile}")
            };
            if let Some(region) = config
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|text| ini_section(&text, &section).remove("region"))
            {
                b = b.with_region(region);
            }
        }
    }
    Ok(b)
}

/// The `key = value` lines of section `[name]` of an AWS INI file.
fn ini_section(text: &str, name: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == name;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_profile_section() {
        let text = "[default]\naws_access_key_id = A\n\n[profile logs]\nregion = x\n[logs]\n\
                    aws_access_key_id=K\nAWS_SECRET_ACCESS_KEY = S=2\n# comment\n";
        let s = ini_section(text, "logs");
        assert_eq!(s.get("aws_access_key_id").map(String::as_str), Some("K"));
        assert_eq!(
            s.get("aws_secret_access_key").map(String::as_str),
            Some("S=2")
        );
        assert_eq!(ini_section(text, "default").len(), 1);
        assert_eq!(
            ini_section(text, "profile logs")
                .get("region")
                .map(String::as_str),
            Some("x")
        );
        assert!(ini_section(text, "none").is_empty());
    }
}
