//! Errors of the catalog: each says what was wrong and, where it helps, what to do.

use thiserror::Error;

/// Result alias for catalog operations.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// Everything that can go wrong in the catalog.
#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("invalid {kind} name '{name}': {reason}")]
    InvalidName {
        kind: &'static str,
        name: String,
        reason: String,
    },
    #[error("database '{0}' does not exist (SHOW DATABASES lists the ones you can see)")]
    DatabaseNotFound(String),
    #[error("database '{0}' already exists (use IF NOT EXISTS to ignore)")]
    DatabaseExists(String),
    #[error("database '{0}' is not empty: drop its tables first or use DROP DATABASE ... CASCADE")]
    DatabaseNotEmpty(String),
    #[error("table '{0}.{1}' does not exist")]
    TableNotFound(String, String),
    #[error("table '{0}.{1}' already exists (use IF NOT EXISTS to ignore)")]
    TableExists(String, String),
    #[error("partition {spec} of table '{table}' does not exist")]
    PartitionNotFound { table: String, spec: String },
    #[error("partition {spec} of table '{table}' already exists (use IF NOT EXISTS to ignore)")]
    PartitionExists { table: String, spec: String },
    #[error("{0}")]
    Invalid(String),
    #[error("access denied: {0}")]
    Denied(String),
    #[error("catalog store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("catalog record is corrupt: {0}")]
    Corrupt(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl CatalogError {
    /// Shorthand for an [`CatalogError::Invalid`] error.
    pub fn invalid(msg: impl Into<String>) -> Self {
        CatalogError::Invalid(msg.into())
    }
}
