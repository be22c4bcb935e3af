//! Engine errors. Converted to `DataFusionError` at the DataFusion boundary and back, so the
//! message a user sees is always the one written here.

use datafusion::error::DataFusionError;
use thiserror::Error;

/// Result alias for engine operations.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Everything the engine can refuse or fail at.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Catalog(#[from] cuve_catalog::CatalogError),
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("access denied: {0}")]
    Denied(String),
    #[error("quota exceeded: {0}")]
    Quota(String),
    /// A bug: a panic inside a statement, caught and turned into that statement's error.
    #[error(
        "internal error: {0} (a bug in Cuve, not in the statement: please report it with the statement)"
    )]
    Internal(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        EngineError::Invalid(msg.into())
    }
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
    /// Unwraps errors that crossed DataFusion (`External`, `Context`, `Shared`) back to ours.
    pub fn from_datafusion(e: DataFusionError) -> Self {
        match e {
            DataFusionError::External(inner) => match inner.downcast::<EngineError>() {
                Ok(ours) => *ours,
                Err(other) => EngineError::DataFusion(DataFusionError::External(other)),
            },
            DataFusionError::Context(ctx, inner) => match EngineError::from_datafusion(*inner) {
                EngineError::DataFusion(d) => {
                    EngineError::DataFusion(DataFusionError::Context(ctx, Box::new(d)))
                }
                ours => ours,
            },
            DataFusionError::Shared(shared) => match std::sync::Arc::try_unwrap(shared) {
                Ok(inner) => EngineError::from_datafusion(inner),
                Err(shared) => EngineError::DataFusion(DataFusionError::Shared(shared)),
            },
            other => EngineError::DataFusion(other),
        }
    }

    /// The message for a user: DataFusion's wrapper prefixes stripped.
    pub fn user_message(&self) -> String {
        match self {
            EngineError::DataFusion(e) => clean_datafusion_message(e),
            other => other.to_string(),
        }
    }

    /// Class of the error, used for exit codes and Flight status codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Denied(_) => ErrorKind::Denied,
            EngineError::Quota(_) => ErrorKind::Quota,
            EngineError::Io { .. } | EngineError::File { .. } => ErrorKind::Io,
            EngineError::Internal(_) => ErrorKind::Internal,
            EngineError::Catalog(cuve_catalog::CatalogError::Denied(_)) => ErrorKind::Denied,
            // Memory limits surface as ResourcesExhausted, sometimes wrapped (spawned tasks).
            EngineError::DataFusion(e)
                if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_))
                    || e.to_string().contains("Resources exhausted") =>
            {
                ErrorKind::Quota
            }
            _ => ErrorKind::Sql,
        }
    }
}

/// Broad class of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Sql,
    Denied,
    Quota,
    Io,
    /// A caught panic.
    Internal,
}

/// The message of a caught panic's payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Runs `fut`, turning a panic inside it into [`EngineError::Internal`].
pub async fn catch_panic<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r,
        Err(payload) => Err(EngineError::Internal(panic_message(payload.as_ref()))),
    }
}

impl From<datafusion::arrow::error::ArrowError> for EngineError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        EngineError::DataFusion(e.into())
    }
}

impl From<datafusion::parquet::errors::ParquetError> for EngineError {
    fn from(e: datafusion::parquet::errors::ParquetError) -> Self {
        EngineError::DataFusion(e.into())
    }
}

impl From<EngineError> for DataFusionError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::DataFusion(d) => d,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

fn clean_datafusion_message(e: &DataFusionError) -> String {
    let e = e.find_root();
    let s = match e {
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::SQL(p, _) => format!("syntax error: {p}"),
        DataFusionError::Plan(m) => m.clone(),
        DataFusionError::Execution(m) => m.clone(),
        DataFusionError::NotImplemented(m) => format!("not supported: {m}"),
        other => other.to_string(),
    };
    s.replace("sql parser error: ", "")
}
