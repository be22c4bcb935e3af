//! What every command needs: the warehouse home, the engine, and the caller's ticket. Without
//! `--ticket` / `CUVE_TICKET`, the embedded warehouse's local admin ticket from
//! `$CUVE_HOME/credentials` (mode 0600, created on first use) is used, so the demo just works.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use cuve_catalog::{Quota, Role};
use cuve_engine::{AccessView, Engine, Session};

use crate::exit::{CliError, CliResult, DENIED};

/// Resolved global options.
pub struct CliContext {
    pub home: PathBuf,
    /// `--warehouse` / `CUVE_WAREHOUSE`, if given.
    pub warehouse: Option<String>,
    /// `--cluster` / `CUVE_CLUSTER`: the Ballista scheduler queries run on.
    pub cluster: Option<String>,
    pub ticket: Option<String>,
    engine: std::sync::OnceLock<Arc<Engine>>,
}

impl CliContext {
    pub fn new(
        home: Option<PathBuf>,
        warehouse: Option<String>,
        cluster: Option<String>,
        ticket: Option<String>,
    ) -> CliResult<Self> {
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
            warehouse,
            cluster: cluster.filter(|c| !c.trim().is_empty()),
            ticket,
            engine: Default::default(),
        })
    }

    /// The engine over the warehouse (opened once).
    pub fn engine(&self) -> CliResult<Arc<Engine>> {
        if let Some(e) = self.engine.get() {
            return Ok(e.clone());
        }
        let e = Engine::open_with(&self.home, self.warehouse.as_deref())
            .map_err(|e| CliError::engine(&e, &format!("opening {}: ", self.home.display())))?;
        if let Some(addr) = &self.cluster {
            // Every session (sql, run, templates, the REPL, serve's Flight sessions) plans here
            // and runs its queries on the cluster.
            let secret = cuve_cluster::secret::ClusterSecret::from_env()
                .map_err(|e| CliError::engine(&e, ""))?;
            let remote = cuve_cluster::BallistaRemote::new(addr).with_secret(secret);
            e.set_remote(std::sync::Arc::new(remote))?;
        }
        Ok(self.engine.get_or_init(|| e).clone())
    }

    /// Path of the local admin credentials.
    pub fn credentials_path(&self) -> PathBuf {
        self.home.join("credentials")
    }

    /// The caller's access, from `--ticket` or the local admin credentials.
    pub fn access(&self) -> CliResult<AccessView> {
        let engine = self.engine()?;
        let secret = match &self.ticket {
            Some(s) => s.trim().to_string(),
            None => self.local_admin_secret(&engine)?.1,
        };
        let ticket = engine
            .catalog()
            .authenticate(&secret)
            .map_err(|e| CliError {
                code: DENIED,
                message: e.to_string(),
            })?;
        Ok(AccessView::from_ticket(&ticket, "cli"))
    }

    /// A session for the caller.
    pub fn session(&self) -> CliResult<Session> {
        let engine = self.engine()?;
        Ok(engine.session(self.access()?)?)
    }

    /// Reads the local admin secret, creating the admin user and ticket on first use.
    /// Returns (created now, secret).
    pub fn local_admin_secret(&self, engine: &Engine) -> CliResult<(bool, String)> {
        let path = self.credentials_path();
        if let Some(s) = read_credentials(&path)? {
            return Ok((false, s));
        }
        // Serialise first-time initialisation between processes.
        let lock_path = self.home.join(".init.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| CliError::io(format!("{}: {e}", lock_path.display())))?;
        lock.lock()
            .map_err(|e| CliError::io(format!("{}: {e}", lock_path.display())))?;
        if let Some(s) = read_credentials(&path)? {
            return Ok((false, s));
        }
        let catalog = engine.catalog();
        if catalog.user("admin")?.is_none() {
            catalog.add_user("admin", Role::Admin, None)?;
        }
        let (_, secret) = catalog.create_ticket(
            "admin",
            Some("local admin ticket (cuve admin init)"),
            None,
            &[],
            &Quota::default(),
        )?;
        write_credentials(&path, &secret)?;
        Ok((true, secret))
    }
}

fn read_credentials(path: &std::path::Path) -> CliResult<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("ticket=").map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::io(format!("cannot read {}: {e}", path.display()))),
    }
}

fn write_credentials(path: &std::path::Path, secret: &str) -> CliResult {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| CliError::io(format!("cannot write {}: {e}", tmp.display())))?;
    writeln!(
        f,
        "# Local admin ticket of this Cuve warehouse. Keep it secret.\nticket={secret}"
    )
    .and_then(|_| f.sync_all())
    .map_err(|e| CliError::io(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| CliError::io(format!("cannot write {}: {e}", path.display())))
}
