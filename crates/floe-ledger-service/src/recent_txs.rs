//! The transactions accepted in the last [`RETRY_WINDOW`] log entries, by digest, so that a
//! transaction sent again (its first answer was lost: a timeout, a replica killed, a failover)
//! is answered with its first outcome, not with "sequence number used".
//!
//! The table is a function of the log prefix alone: which entries were accepted transactions,
//! pruned by position. Replicas at the same position therefore hold equal tables, and
//! snapshots carry it (format 12), so that it survives a restart and reaches a replica that
//! bootstraps from a peer's snapshot, under the same committed root as the rest of the state.
//!
//! The outcome itself is not stored: it is the entry's position, the running digest after it
//! and its events, all of which the history keeps ([`accepted_from_history`]).

use std::collections::{HashMap, VecDeque};

use floe_ledger::LogEntry;

use crate::history::History;
use crate::service::Accepted;

/// Log entries back from the applied position whose accepted transactions are remembered.
/// At a thousand transactions a second that is over a minute, twice the longest a client waits
/// for one answer (the ledger client's `REQUEST_TIMEOUT`, 30 s) before it sends again. The
/// snapshot section takes 40 bytes per accepted transaction: at most 2.5 MiB.
pub const RETRY_WINDOW: u64 = 65_536;
/// One record of the snapshot section: the transaction's digest, then its entry's position
/// (little-endian `u64`).
const RECORD_LEN: usize = 40;

/// The table. `known_from` is 0 unless a snapshot without a table (format 11 or older) was
/// installed: entries before it are then unknown here, and a snapshot that would need them is
/// not written by a replica ([`RecentTxs::complete_at`]).
#[derive(Clone, Debug, Default)]
pub struct RecentTxs {
    by_digest: HashMap<[u8; 32], u64>,
    order: VecDeque<([u8; 32], u64)>,
    known_from: u64,
}

/// Why a snapshot's table was refused.
#[derive(Debug, thiserror::Error)]
#[error("recent transactions: {0}")]
pub struct RecentTxsError(String);

impl RecentTxs {
    /// A table for a snapshot at `seq` that carried none: nothing before `seq` is known.
    pub fn unknown_before(seq: u64) -> Self {
        RecentTxs {
            known_from: seq,
            ..Default::default()
        }
    }

    /// The transaction with `digest` was accepted as entry `index` (a later entry with the
    /// same digest is a rejected duplicate and never noted).
    pub fn note(&mut self, digest: [u8; 32], index: u64) {
        if let std::collections::hash_map::Entry::Vacant(v) = self.by_digest.entry(digest) {
            v.insert(index);
            self.order.push_back((digest, index));
        }
    }

    /// [`Self::note`] `entry`, accepted as entry `index`, if it is a transaction (other
    /// entries are not sent by clients, so never retried).
    pub fn note_entry(&mut self, entry: &LogEntry, index: u64) {
        if let LogEntry::Tx(tx) = entry {
            self.note(tx.digest(), index);
        }
    }

    /// Forget what fell out of the window once `applied` entries are applied.
    pub fn prune(&mut self, applied: u64) {
        let floor = applied.saturating_sub(RETRY_WINDOW);
        while let Some(&(digest, index)) = self.order.front() {
            if index >= floor {
                break;
            }
            self.order.pop_front();
            self.by_digest.remove(&digest);
        }
    }

    /// The position of the accepted transaction with `digest`, if remembered.
    pub fn get(&self, digest: &[u8; 32]) -> Option<u64> {
        self.by_digest.get(digest).copied()
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether every entry of the window ending at `applied` is known, so that a snapshot
    /// at `applied` holds what every other replica's at `applied` holds.
    pub fn complete_at(&self, applied: u64) -> bool {
        self.known_from <= applied.saturating_sub(RETRY_WINDOW)
    }

    /// The snapshot section: the records in log order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.order.len() * RECORD_LEN);
        for (digest, index) in &self.order {
            out.extend_from_slice(digest);
            out.extend_from_slice(&index.to_le_bytes());
        }
        out
    }

    /// The table of a snapshot at `seq`: records in strictly increasing positions, all within
    /// the window before `seq`, no digest twice.
    pub fn decode(bytes: &[u8], seq: u64) -> Result<Self, RecentTxsError> {
        if !bytes.len().is_multiple_of(RECORD_LEN) {
            return Err(RecentTxsError(format!(
                "{} bytes, not a multiple of {RECORD_LEN}",
                bytes.len()
            )));
        }
        let floor = seq.saturating_sub(RETRY_WINDOW);
        let mut table = RecentTxs::default();
        let mut last = None;
        for record in bytes.chunks_exact(RECORD_LEN) {
            let digest: [u8; 32] = record[..32].try_into().expect("32 bytes");
            let index = u64::from_le_bytes(record[32..].try_into().expect("8 bytes"));
            if index < floor || index >= seq || last.is_some_and(|l| index <= l) {
                return Err(RecentTxsError(format!(
                    "entry {index} out of order or outside [{floor}, {seq})"
                )));
            }
            if table.by_digest.insert(digest, index).is_some() {
                return Err(RecentTxsError(format!("a digest twice (entry {index})")));
            }
            table.order.push_back((digest, index));
            last = Some(index);
        }
        Ok(table)
    }
}

/// The outcome of the accepted entry `index` as the history keeps it: the running digest
/// after it and its events (found by their entry position, in order). `None` if the history
/// does not reach it.
pub(crate) fn accepted_from_history(
    history: &mut History,
    index: u64,
) -> Result<Option<Accepted>, String> {
    let Some(digest) = history.digest(index)? else {
        return Ok(None);
    };
    // The first event at or after entry `index`: events are in entry order.
    let (mut lo, mut hi) = (0, history.event_count());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match history.event(mid)? {
            Some(e) if e.entry_index < index => lo = mid + 1,
            Some(_) => hi = mid,
            None => return Ok(None),
        }
    }
    let mut events = Vec::new();
    while let Some(e) = history.event(lo + events.len() as u64)? {
        if e.entry_index != index {
            break;
        }
        events.push(e);
    }
    Ok(Some(Accepted {
        entry_index: index,
        events,
        digest,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: u64) -> [u8; 32] {
        let mut d = [0u8; 32];
        d[..8].copy_from_slice(&i.to_le_bytes());
        d
    }

    #[test]
    fn the_window_keeps_the_last_entries_and_round_trips() {
        let mut t = RecentTxs::default();
        for i in (0..RETRY_WINDOW + 100).step_by(3) {
            t.note(d(i), i);
            t.prune(i + 1);
        }
        let applied = RETRY_WINDOW + 100;
        t.prune(applied);
        assert_eq!(t.get(&d(0)), None, "fell out of the window");
        // The window is entries [100, applied).
        assert_eq!(t.get(&d(99)), None, "just below the window");
        assert_eq!(t.get(&d(102)), Some(102), "inside it");
        assert_eq!(t.len() as u64, (applied - 102).div_ceil(3));
        assert!(t.complete_at(applied));
        let again = RecentTxs::decode(&t.encode(), applied).unwrap();
        assert_eq!(again.encode(), t.encode());
        assert_eq!(again.len(), t.len());
        let newest = (applied - 1) / 3 * 3;
        assert_eq!(again.get(&d(newest)), Some(newest));
    }

    #[test]
    fn a_duplicate_keeps_the_first_position() {
        let mut t = RecentTxs::default();
        t.note(d(1), 5);
        t.note(d(1), 9);
        assert_eq!(t.get(&d(1)), Some(5));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_table_from_an_older_snapshot_is_complete_one_window_later() {
        let t = RecentTxs::unknown_before(1_000);
        assert!(!t.complete_at(1_000));
        assert!(!t.complete_at(1_000 + RETRY_WINDOW - 1));
        assert!(t.complete_at(1_000 + RETRY_WINDOW));
        assert!(RecentTxs::default().complete_at(0));
    }

    #[test]
    fn damaged_tables_are_refused() {
        let mut t = RecentTxs::default();
        t.note(d(1), 3);
        t.note(d(2), 7);
        let bytes = t.encode();
        assert!(
            RecentTxs::decode(&bytes[..39], 10).is_err(),
            "a torn record"
        );
        assert!(
            RecentTxs::decode(&bytes, 7).is_err(),
            "a position not covered"
        );
        let mut swapped = bytes[40..].to_vec();
        swapped.extend_from_slice(&bytes[..40]);
        assert!(RecentTxs::decode(&swapped, 10).is_err(), "out of order");
        let mut twice = bytes.clone();
        twice[40..72].copy_from_slice(&d(1));
        let e = RecentTxs::decode(&twice, 10).unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
        let far = RETRY_WINDOW + 4;
        assert!(RecentTxs::decode(&bytes, far).is_err(), "below the window");
    }
}
