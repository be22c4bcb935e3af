//! What intake already holds, beside the catalog's ledger: lines and ids acknowledged (in the
//! WAL) but not yet committed to the table, and those of requests being written right now. A
//! request keeps only what none of these cover; one that meets lines in flight is asked to
//! retry (they may yet fail), so nothing is acknowledged twice and nothing is dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use cuve_catalog::ledger::{merge_ranges, overlaps, uncovered};

/// One NDJSON source of one table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceKey {
    pub database: String,
    pub table: String,
    pub sender: String,
    pub source: String,
}

impl SourceKey {
    pub fn of(database: &str, table: &str, sender: &str, source: &str) -> Self {
        SourceKey {
            database: database.into(),
            table: table.into(),
            sender: sender.into(),
            source: source.into(),
        }
    }
}

#[derive(Default)]
struct SourceState {
    pending: Vec<(u64, u64)>,
    inflight: Vec<(u64, u64)>,
}

#[derive(Default)]
struct IdState {
    pending: HashSet<String>,
    inflight: HashSet<String>,
}

/// Lines and ids acknowledged or in flight.
///
/// A request reads the catalog's ledger, then claims; a flush that commits in between moves lines
/// from "pending" to the catalog. The epoch counts such moves: a claim made with an older epoch
/// than the current one is [`Claim::Stale`] (read the ledger again).
#[derive(Default)]
pub struct Holdings {
    sources: Mutex<HashMap<SourceKey, SourceState>>,
    ids: Mutex<HashMap<(String, String), IdState>>,
    epoch: std::sync::atomic::AtomicU64,
}

/// What a request may add to a source.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// These parts are new (now in flight: [`Holdings::settle`] them).
    New(Vec<(u64, u64)>),
    /// Part of the range is being written by another request: retry.
    Busy,
    /// A flush committed since the ledger was read: read it again.
    Stale,
}

fn subtract(from: &mut Vec<(u64, u64)>, take: &[(u64, u64)]) {
    let mut out = Vec::new();
    for &(a, b) in from.iter() {
        let mut parts = vec![(a, b)];
        for &(x, y) in take {
            parts = parts
                .into_iter()
                .flat_map(|(p, q)| {
                    if y <= p || q <= x {
                        vec![(p, q)]
                    } else {
                        let mut v = Vec::new();
                        if p < x {
                            v.push((p, x));
                        }
                        if y < q {
                            v.push((y, q));
                        }
                        v
                    }
                })
                .collect();
        }
        out.extend(parts);
    }
    *from = out;
}

impl Holdings {
    /// The epoch to read the catalog's ledger at (see [`Holdings`]).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn bump(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Claims `[a, b)` of a source whose catalog ledger, read at `epoch`, is `prefix` +
    /// `committed`.
    pub fn claim(
        &self,
        key: &SourceKey,
        epoch: u64,
        prefix: u64,
        committed: &[(u64, u64)],
        a: u64,
        b: u64,
    ) -> Claim {
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if self.epoch() != epoch {
            return Claim::Stale;
        }
        let st = map.entry(key.clone()).or_default();
        let held: Vec<(u64, u64)> = committed.iter().chain(&st.pending).copied().collect();
        let new = uncovered(prefix, &held, a, b);
        if new.iter().any(|&(x, y)| overlaps(0, &st.inflight, x, y)) {
            return Claim::Busy;
        }
        st.inflight.extend(new.iter().copied());
        Claim::New(new)
    }

    /// Ends a claim: `stored` parts are acknowledged (pending until committed), the others
    /// released.
    pub fn settle(&self, key: &SourceKey, claimed: &[(u64, u64)], stored: bool) {
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let st = map.entry(key.clone()).or_default();
        subtract(&mut st.inflight, claimed);
        if stored {
            st.pending.extend(claimed.iter().copied());
        }
    }

    /// Records replayed from the WAL at start.
    pub fn replayed(&self, key: &SourceKey, ranges: &[(u64, u64)]) {
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key.clone())
            .or_default()
            .pending
            .extend(ranges.iter().copied());
    }

    /// Lines now committed to the table (the catalog covers them).
    pub fn committed(&self, key: &SourceKey, ranges: &[(u64, u64)]) {
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        self.bump();
        if let Some(st) = map.get_mut(key) {
            subtract(&mut st.pending, ranges);
            if st.pending.is_empty() && st.inflight.is_empty() {
                map.remove(key);
            }
        }
    }

    /// The end of the contiguous acknowledged prefix (a line count).
    pub fn through(&self, key: &SourceKey, prefix: u64, committed: &[(u64, u64)]) -> u64 {
        let map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let pending = map.get(key).map(|s| s.pending.clone()).unwrap_or_default();
        let all: Vec<(u64, u64)> = committed.iter().chain(&pending).copied().collect();
        merge_ranges(prefix, &all).0
    }

    /// Splits `ids` of a table into new ones (now in flight), ones already held (acknowledged
    /// before) and busy ones (being written by another request). `known` are in the catalog,
    /// read at `epoch`; `None` if a flush committed since (read again).
    pub fn claim_ids(
        &self,
        table: &(String, String),
        epoch: u64,
        ids: &[String],
        known: &HashSet<String>,
    ) -> Option<Vec<IdClaim>> {
        let mut map = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        if self.epoch() != epoch {
            return None;
        }
        let st = map.entry(table.clone()).or_default();
        let mut seen_here = HashSet::new();
        ids.iter()
            .map(|id| {
                if known.contains(id) || st.pending.contains(id) {
                    IdClaim::Held
                } else if st.inflight.contains(id) {
                    if seen_here.contains(id) {
                        IdClaim::Held
                    } else {
                        IdClaim::Busy
                    }
                } else {
                    st.inflight.insert(id.clone());
                    seen_here.insert(id.clone());
                    IdClaim::New
                }
            })
            .collect::<Vec<_>>()
            .into()
    }

    pub fn settle_ids(&self, table: &(String, String), ids: &[String], stored: bool) {
        let mut map = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let st = map.entry(table.clone()).or_default();
        for id in ids {
            st.inflight.remove(id);
            if stored {
                st.pending.insert(id.clone());
            }
        }
    }

    pub fn replayed_ids(&self, table: &(String, String), ids: &[String]) {
        let mut map = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(table.clone())
            .or_default()
            .pending
            .extend(ids.iter().cloned());
    }

    pub fn committed_ids(&self, table: &(String, String), ids: &[String]) {
        let mut map = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        self.bump();
        if let Some(st) = map.get_mut(table) {
            for id in ids {
                st.pending.remove(id);
            }
        }
    }
}

/// The fate of one id in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdClaim {
    New,
    Held,
    Busy,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SourceKey {
        SourceKey {
            database: "d".into(),
            table: "t".into(),
            sender: "10.0.0.1".into(),
            source: "a.log".into(),
        }
    }

    #[test]
    fn overlapping_requests_store_each_line_once() {
        let h = Holdings::default();
        let k = key();
        let Claim::New(first) = h.claim(&k, h.epoch(), 0, &[], 0, 10) else {
            panic!()
        };
        assert_eq!(first, vec![(0, 10)]);
        // Overlapping while the first is in flight: retry.
        assert_eq!(h.claim(&k, h.epoch(), 0, &[], 5, 15), Claim::Busy);
        // Disjoint: fine.
        assert_eq!(
            h.claim(&k, h.epoch(), 0, &[], 20, 30),
            Claim::New(vec![(20, 30)])
        );
        h.settle(&k, &first, true);
        assert_eq!(
            h.claim(&k, h.epoch(), 0, &[], 5, 15),
            Claim::New(vec![(10, 15)])
        );
        h.settle(&k, &[(10, 15)], true);
        assert_eq!(h.through(&k, 0, &[]), 15);
        h.settle(&k, &[(20, 30)], false);
        assert_eq!(
            h.claim(&k, h.epoch(), 0, &[], 0, 30),
            Claim::New(vec![(15, 30)])
        );
        h.settle(&k, &[(15, 30)], true);
        let before = h.epoch();
        h.committed(&k, &[(0, 30)]);
        assert_eq!(h.through(&k, 30, &[]), 30);
        // A claim on a ledger read before that commit is stale.
        assert_eq!(h.claim(&k, before, 0, &[], 0, 30), Claim::Stale);
    }

    #[test]
    fn ids_once() {
        let h = Holdings::default();
        let t = ("d".to_string(), "t".to_string());
        let ids: Vec<String> = ["a", "b", "a"].iter().map(|s| s.to_string()).collect();
        let known: HashSet<String> = ["b".to_string()].into();
        assert_eq!(
            h.claim_ids(&t, h.epoch(), &ids, &known).unwrap(),
            vec![IdClaim::New, IdClaim::Held, IdClaim::Held]
        );
        assert_eq!(
            h.claim_ids(&t, h.epoch(), &["a".to_string()], &HashSet::new())
                .unwrap(),
            vec![IdClaim::Busy]
        );
        h.settle_ids(&t, &["a".to_string()], true);
        assert_eq!(
            h.claim_ids(&t, h.epoch(), &["a".to_string()], &HashSet::new())
                .unwrap(),
            vec![IdClaim::Held]
        );
    }
}
