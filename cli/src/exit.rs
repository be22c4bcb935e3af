//! Exit codes (documented in the README) and the CLI's error type.

use cuve_engine::{EngineError, ErrorKind};

pub const OK: u8 = 0;
/// SQL error: a statement failed (syntax, unknown table, bad data, ...).
pub const SQL: u8 = 1;
/// Bad command-line usage.
pub const USAGE: u8 = 2;
/// Access denied by the ticket.
pub const DENIED: u8 = 3;
/// A quota was exceeded.
pub const QUOTA: u8 = 4;
/// Input/output error (file missing, unreadable, disk full).
pub const IO: u8 = 5;

/// A failure of a command, with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn usage(msg: impl Into<String>) -> Self {
        CliError {
            code: USAGE,
            message: msg.into(),
        }
    }
    pub fn io(msg: impl Into<String>) -> Self {
        CliError {
            code: IO,
            message: msg.into(),
        }
    }
    /// Prints the error to stderr and returns its exit code.
    pub fn report(&self) -> u8 {
        if !self.message.is_empty() {
            eprintln!("error: {}", self.message);
        }
        self.code
    }
    /// An engine error, with a prefix saying where it happened.
    pub fn engine(e: &EngineError, prefix: &str) -> Self {
        let code = match e.kind() {
            ErrorKind::Sql | ErrorKind::Internal => SQL,
            ErrorKind::Denied => DENIED,
            ErrorKind::Quota => QUOTA,
            ErrorKind::Io => IO,
        };
        CliError {
            code,
            message: format!("{prefix}{}", e.user_message()),
        }
    }
}

impl From<EngineError> for CliError {
    fn from(e: EngineError) -> Self {
        CliError::engine(&e, "")
    }
}

impl From<cuve_catalog::CatalogError> for CliError {
    fn from(e: cuve_catalog::CatalogError) -> Self {
        CliError::engine(&EngineError::from(e), "")
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

#[allow(dead_code)]
const _: u8 = OK;
