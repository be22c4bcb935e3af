//! Idle sessions kept for the next call of the same caller. Building a session (a DataFusion
//! context with every function registered) costs more than planning a small query, and a
//! Flight client makes two or three calls per query. Sessions are keyed by the caller's whole
//! access view (ticket, grants, quota, peer), which is read from the catalog on every call: a
//! changed or revoked ticket never gets a session of its old view. Over Flight a session holds
//! no state between statements (`USE`/`SET` and DataFusion DDL are refused), so reuse is
//! invisible to the client.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use crate::access::AccessView;
use crate::error::Result;
use crate::session::{Engine, Session};

/// Idle sessions per access view.
const IDLE_PER_KEY: usize = 4;
/// Access views with idle sessions (past this, the idle ones are dropped).
const KEYS: usize = 256;

type Idle = Mutex<HashMap<String, Vec<Session>>>;

/// The pool of one server.
#[derive(Clone)]
pub struct SessionPool {
    engine: Arc<Engine>,
    idle: Arc<Idle>,
}

/// A session on loan; it goes back to the pool when dropped.
pub struct Pooled {
    session: Option<Session>,
    key: String,
    idle: Arc<Idle>,
}

impl SessionPool {
    pub fn new(engine: Arc<Engine>) -> Self {
        SessionPool {
            engine,
            idle: Arc::default(),
        }
    }

    /// A session for `access`: an idle one of the same view, or a new one.
    pub fn get(&self, access: AccessView) -> Result<Pooled> {
        let key = format!("{access:?}");
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&key)
            .and_then(|v| v.pop());
        let session = match idle {
            Some(s) => s,
            None => self.engine.session(access)?,
        };
        Ok(Pooled {
            session: Some(session),
            key,
            idle: self.idle.clone(),
        })
    }

    /// Idle sessions (tests).
    pub fn idle(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.values().map(Vec::len).sum()
    }
}

impl Deref for Pooled {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session
            .as_ref()
            .expect("a pooled session is present until dropped")
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Session {
        self.session
            .as_mut()
            .expect("a pooled session is present until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= KEYS && !idle.contains_key(&self.key) {
            idle.clear();
        }
        let list = idle.entry(std::mem::take(&mut self.key)).or_default();
        if list.len() < IDLE_PER_KEY {
            list.push(session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_reused_only_by_the_same_view() {
        let home = tempfile::tempdir().unwrap();
        let pool = SessionPool::new(Engine::open(home.path()).unwrap());
        let a = pool.get(AccessView::admin("a")).unwrap();
        // The access view is shared by pointer: it identifies the session across moves.
        let ptr = Arc::as_ptr(&a.access);
        drop(a);
        assert_eq!(pool.idle(), 1);
        let again = pool.get(AccessView::admin("a")).unwrap();
        assert_eq!(
            Arc::as_ptr(&again.access),
            ptr,
            "the idle session is reused"
        );
        assert_eq!(pool.idle(), 0);
        let other = pool.get(AccessView::admin("b")).unwrap();
        assert_eq!(
            other.access().user,
            "b",
            "another view gets its own session"
        );
        drop((again, other));
        assert_eq!(pool.idle(), 2);
    }
}
