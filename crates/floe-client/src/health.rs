//! What a client remembers about nodes that failed it. A node that did not answer within the
//! hedge delay, refused a connection or sent bad data is *suspect* for a while: reads ask it
//! last, so one vanished node does not cost every read a hedge delay (or a request timeout).
//! Only the order of requests changes; a suspect node is still asked when nothing else is left.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a failure keeps a node at the back of the queue.
pub const SUSPECT_FOR: Duration = Duration::from_secs(30);
/// Nodes remembered at most (a committee has at most one node per shard).
const MAX_ENTRIES: usize = 4096;

/// Suspect nodes by network address, each until a deadline; `true` for nodes found silent (no
/// answer to a liveness probe either), whom writes do not wait for once a quorum confirmed.
#[derive(Debug, Default)]
pub struct NodeHealth {
    suspects: Mutex<HashMap<String, (Instant, bool)>>,
}

impl NodeHealth {
    /// Mark `address` suspect until `now + SUSPECT_FOR`.
    pub fn suspect(&self, address: &str, now: Instant) {
        self.mark(address, now, false);
    }

    /// Mark `address` silent (and suspect) until `now + SUSPECT_FOR`.
    pub fn silent(&self, address: &str, now: Instant) {
        self.mark(address, now, true);
    }

    fn mark(&self, address: &str, now: Instant, silent: bool) {
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES && !map.contains_key(address) {
            map.retain(|_, (until, _)| *until > now);
            if map.len() >= MAX_ENTRIES {
                return;
            }
        }
        let entry = map.entry(address.to_string()).or_insert((now, false));
        entry.0 = now + SUSPECT_FOR;
        entry.1 |= silent;
    }

    /// `address` answered well: it is no longer suspect.
    pub fn clear(&self, address: &str) {
        let mut map = self.lock();
        if !map.is_empty() {
            map.remove(address);
        }
    }

    pub fn is_suspect(&self, address: &str, now: Instant) -> bool {
        self.lock()
            .get(address)
            .is_some_and(|(until, _)| *until > now)
    }

    /// Whether `address` was found silent and has not answered well since.
    pub fn is_silent(&self, address: &str, now: Instant) -> bool {
        self.lock()
            .get(address)
            .is_some_and(|(until, silent)| *silent && *until > now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, bool)>> {
        self.suspects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspicion_expires_and_clears() {
        let h = NodeHealth::default();
        let t0 = Instant::now();
        assert!(!h.is_suspect("a:1", t0));
        h.suspect("a:1", t0);
        assert!(h.is_suspect("a:1", t0 + Duration::from_secs(1)));
        assert!(!h.is_suspect("a:1", t0 + SUSPECT_FOR + Duration::from_millis(1)));
        h.suspect("a:1", t0);
        h.clear("a:1");
        assert!(!h.is_suspect("a:1", t0));
        // Silence is suspicion that writes need not wait for; a good answer clears both.
        assert!(!h.is_silent("b:1", t0));
        h.suspect("b:1", t0);
        assert!(!h.is_silent("b:1", t0));
        h.silent("b:1", t0);
        assert!(h.is_silent("b:1", t0) && h.is_suspect("b:1", t0));
        assert!(!h.is_silent("b:1", t0 + SUSPECT_FOR + Duration::from_millis(1)));
        h.clear("b:1");
        assert!(!h.is_silent("b:1", t0));
    }

    #[test]
    fn memory_is_bounded() {
        let h = NodeHealth::default();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            h.suspect(&format!("n{i}:1"), t0);
        }
        assert_eq!(h.lock().len(), MAX_ENTRIES);
        // Once the old entries expired, new ones displace them.
        let later = t0 + SUSPECT_FOR + Duration::from_secs(1);
        h.suspect("late:1", later);
        assert!(h.is_suspect("late:1", later));
        assert_eq!(h.lock().len(), 1);
    }
}
