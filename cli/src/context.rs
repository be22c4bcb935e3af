//! What every command needs: the warehouse home, the engine and the session's access.

use std::path::PathBuf;
use std::sync::Arc;

use cuve_engine::{AccessView, Engine, Session};

use crate::exit::{CliError, CliResult};

/// Resolved global options.
pub struct CliContext {
    pub home: PathBuf,
    #[allow(dead_code)]
    pub ticket: Option<String>,
    engine: std::sync::OnceLock<Arc<Engine>>,
}

impl CliContext {
    pub fn new(home: Option<PathBuf>, ticket: Option<String>) -> CliResult<Self> {
        let home = match home {
            Some(h) => h,
            None => {
                let base = std::env::var_os("HOME").ok_or_else(|| {
                    CliError::usage("no --home given, CUVE_HOME is not set and HOME is unknown")
                })?;
                PathBuf::from(base).join(".cuve")
            }
        };
        Ok(CliContext {
            home,
            ticket,
            engine: Default::default(),
        })
    }

    /// The engine over the warehouse (opened once).
    pub fn engine(&self) -> CliResult<Arc<Engine>> {
        if let Some(e) = self.engine.get() {
            return Ok(e.clone());
        }
        let e = Engine::open(&self.home)
            .map_err(|e| CliError::engine(&e, &format!("opening {}: ", self.home.display())))?;
        Ok(self.engine.get_or_init(|| e).clone())
    }

    /// A session for the caller.
    pub fn session(&self) -> CliResult<Session> {
        let engine = self.engine()?;
        Ok(engine.session(AccessView::admin(whoami()))?)
    }
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "local".into())
}
