//! Object-store locations: `s3://bucket/key/...` (and Hadoop's `s3a://`, the same store).
//! Everything else is a local path.

use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::path::Path as ObjectPath;

use crate::error::{EngineError, Result};

/// Whether a file name found in a table's directory is a data file: hidden (`.`) and marker
/// (`_`, e.g. `_SUCCESS`) files are not.
pub fn is_data_file_name(name: &str) -> bool {
    !(name.starts_with('.') || name.starts_with('_'))
}

/// Whether a table, partition or warehouse location is in an object store.
pub fn is_object(location: &str) -> bool {
    scheme_of(location).is_some()
}

fn scheme_of(location: &str) -> Option<&'static str> {
    let b = location.as_bytes();
    let starts = |p: &str| b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    if starts("s3://") {
        Some("s3://")
    } else if starts("s3a://") {
        Some("s3a://")
    } else {
        None
    }
}

/// A location as it may be shown: credentials written into it (`s3://KEY:SECRET@bucket`) are
/// masked.
pub fn redacted(location: &str) -> String {
    if let Some(start) = location.find("://").map(|i| i + 3) {
        let authority = location[start..].split('/').next().unwrap_or("");
        if let Some(at) = authority.rfind('@') {
            return format!("{}***{}", &location[..start], &location[start + at..]);
        }
    }
    location.to_string()
}

/// Refuses URL schemes Cuve cannot store to (`gs://`, `hdfs://`, `http://`, ...), so such a
/// LOCATION is not taken for a local directory named `gs:`.
pub fn check_scheme(location: &str) -> Result<()> {
    if is_object(location) || location.starts_with("file://") {
        return Ok(());
    }
    if let Some((scheme, _)) = location.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-')
    {
        return Err(EngineError::invalid(format!(
            "location {}: the scheme {scheme}:// is not supported; use a local path, \
             file:///path or s3://bucket/prefix (S3 and S3-compatible stores)",
            redacted(location)
        )));
    }
    Ok(())
}

/// A location in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLocation {
    /// `s3://bucket` (the key of its store).
    pub url: ObjectStoreUrl,
    pub bucket: String,
    /// The key (no leading or trailing `/`; empty for the bucket's root).
    pub key: ObjectPath,
}

impl ObjectLocation {
    /// Parses `s3://bucket[/key]`; `None` for a local path.
    pub fn parse(location: &str) -> Result<Option<ObjectLocation>> {
        let Some(scheme) = scheme_of(location) else {
            return Ok(None);
        };
        let rest = &location[scheme.len()..];
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let shown = redacted(location);
        if bucket.contains('@') {
            return Err(EngineError::invalid(format!(
                "location {shown}: credentials do not go into a location; set AWS_ACCESS_KEY_ID \
                 and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and write s3://bucket/prefix"
            )));
        }
        if bucket.len() < 3
            || bucket.len() > 63
            || !bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            return Err(EngineError::invalid(format!(
                "location {shown}: {bucket:?} is not a bucket name (3 to 63 lower-case \
                 letters, digits, '-' and '.'); write s3://bucket/prefix"
            )));
        }
        let key = ObjectPath::parse(key).map_err(|e| {
            EngineError::invalid(format!(
                "location {location}: not a valid object key ({e}); keys may not hold empty \
                 segments (//), '.' or '..' segments or control characters"
            ))
        })?;
        let url = ObjectStoreUrl::parse(format!("s3://{bucket}")).map_err(|e| {
            EngineError::invalid(format!("location {location}: not a valid URL: {e}"))
        })?;
        Ok(Some(ObjectLocation {
            url,
            bucket: bucket.to_string(),
            key,
        }))
    }

    /// The location as Cuve writes it: `s3://bucket/key`.
    pub fn display(&self) -> String {
        object_url(&self.bucket, &self.key)
    }

    /// The location of `name` inside this one.
    pub fn child(&self, name: &str) -> ObjectLocation {
        ObjectLocation {
            key: self.key.clone().join(name),
            ..self.clone()
        }
    }
}

/// `s3://bucket/key` of an object.
pub fn object_url(bucket: &str, key: &ObjectPath) -> String {
    if key.as_ref().is_empty() {
        format!("s3://{bucket}")
    } else {
        format!("s3://{bucket}/{}", key.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buckets_and_keys() {
        let l = ObjectLocation::parse("s3://logs/cuve/korea_naver_log/dt=2024-01-01/")
            .unwrap()
            .unwrap();
        assert_eq!(l.bucket, "logs");
        assert_eq!(l.key.as_ref(), "cuve/korea_naver_log/dt=2024-01-01");
        assert_eq!(l.url.as_str(), "s3://logs/");
        assert_eq!(l.display(), "s3://logs/cuve/korea_naver_log/dt=2024-01-01");
        assert_eq!(
            l.child("000001_0.parquet").display(),
            "s3://logs/cuve/korea_naver_log/dt=2024-01-01/000001_0.parquet"
        );
        // Korean and Hive-escaped partition values are kept as they are.
        let k = ObjectLocation::parse("s3://logs/t/지역=서울/dt=2024%2F01")
            .unwrap()
            .unwrap();
        assert_eq!(k.key.as_ref(), "t/지역=서울/dt=2024%2F01");
        let root = ObjectLocation::parse("S3A://logs").unwrap().unwrap();
        assert_eq!(root.key.as_ref(), "");
        assert_eq!(root.display(), "s3://logs");
        assert!(ObjectLocation::parse("/var/data").unwrap().is_none());
    }

    #[test]
    fn bad_buckets_keys_and_schemes_are_named() {
        let e = ObjectLocation::parse("s3://A_B/x").unwrap_err().to_string();
        assert!(e.contains("\"A_B\" is not a bucket name"), "{e}");
        let e = ObjectLocation::parse("s3://logs/a//b")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid object key"), "{e}");
        let e = ObjectLocation::parse("s3://logs/a/../b")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid object key"), "{e}");
        let e = ObjectLocation::parse("s3://AKIA:secret@logs/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("credentials do not go into a location"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        assert!(ObjectLocation::parse(&format!("s3://{}/x", "b".repeat(64))).is_err());
        // Short or non-ASCII locations are local paths, not slicing errors.
        assert!(ObjectLocation::parse("s3:/").unwrap().is_none());
        assert!(ObjectLocation::parse("s3:/é").unwrap().is_none());
        assert!(ObjectLocation::parse("s3://").is_err());
        let e = check_scheme("gs://bucket/x").unwrap_err().to_string();
        assert!(e.contains("gs:// is not supported"), "{e}");
        let e = check_scheme("gs://key:secret@bucket/x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gs://***@bucket/x") && !e.contains("secret"),
            "{e}"
        );
        assert!(check_scheme("/tmp/x").is_ok());
        assert!(check_scheme("s3://logs/x").is_ok());
        assert!(check_scheme("file:///tmp/x").is_ok());
    }
}
