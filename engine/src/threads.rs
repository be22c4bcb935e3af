//! Blocking work on async threads, and whether a process still runs: leaf helpers every layer
//! uses (catalog writes, object-store requests, cleanup of dead writers).

/// Whether a process of this machine is still running (to free slots and staged files of
/// processes that died).
pub(crate) fn pid_alive(pid: u32) -> bool {
    pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Runs `f`, which may wait for the catalog's write lock (held by an ingest in another process,
/// for instance) or for a storage request, so that it does not hold up the other tasks of a
/// multi-threaded runtime: tokio moves them to another worker while `f` blocks. Elsewhere `f`
/// just runs.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
