//! Cheap checks of the state after every applied entry, in release builds too.
//!
//! The rules are deterministic, so a bug in one repeats on every replica and in every replay:
//! nothing downstream would notice a wrong state, and each later snapshot would carry it. These
//! checks stop the ledger at the entry that exposed such a bug instead (the log is untouched;
//! a fixed build replays it). They cost a few comparisons and one map lookup per event.

use floe_core::Epoch;

use super::LedgerState;
use crate::event::{Event, EventKind};

/// The counters before an entry, which the checks compare the state after it with.
#[derive(Clone, Copy, Debug)]
pub(super) struct Before {
    pub(super) entry_count: u64,
    pub(super) event_count: u64,
    pub(super) epoch: Epoch,
}

impl LedgerState {
    pub(super) fn before_entry(&self) -> Before {
        Before {
            entry_count: self.entry_count,
            event_count: self.event_count,
            epoch: self.epoch,
        }
    }

    /// Stops the process at a violation of [`check_after_entry`](Self::check_after_entry): a
    /// bug in the rules, which every replica and replay would repeat.
    pub(super) fn assert_after_entry(&self, before: &Before, events: &[Event]) {
        if let Err(violation) = self.check_after_entry(before, events) {
            panic!(
                "ledger invariant violated by entry {}: {violation}",
                before.entry_count
            );
        }
    }

    /// Whether the state after one applied entry that emitted `events` is consistent with
    /// `before` and with those events; the first violation found, if not.
    pub(super) fn check_after_entry(
        &self,
        before: &Before,
        events: &[Event],
    ) -> Result<(), String> {
        if self.entry_count != before.entry_count + 1 {
            return Err(format!(
                "entry count went from {} to {}",
                before.entry_count, self.entry_count
            ));
        }
        if self.shared_blobs.len() != self.shared_of.len() {
            return Err(format!(
                "{} shared blobs but {} blob objects wrapped in one",
                self.shared_blobs.len(),
                self.shared_of.len()
            ));
        }
        if self.event_count != before.event_count + events.len() as u64 {
            return Err(format!(
                "event count went from {} to {} with {} events emitted",
                before.event_count,
                self.event_count,
                events.len()
            ));
        }
        if self.epoch < before.epoch || self.epoch > before.epoch + 1 {
            return Err(format!(
                "epoch went from {} to {} (one entry moves it by at most one)",
                before.epoch, self.epoch
            ));
        }
        for (k, e) in events.iter().enumerate() {
            if e.index != before.event_count + k as u64 || e.entry_index != before.entry_count {
                return Err(format!(
                    "event {k} of the entry is numbered {} of entry {}, expected {} of {}",
                    e.index,
                    e.entry_index,
                    before.event_count + k as u64,
                    before.entry_count
                ));
            }
            self.check_event_object(&e.kind)?;
        }
        Ok(())
    }

    /// The blob object an event names exists and agrees with the event.
    fn check_event_object(&self, kind: &EventKind) -> Result<(), String> {
        let (object_id, blob_id, end_epoch, what) = match kind {
            EventKind::BlobRegistered {
                object_id,
                blob_id,
                end_epoch,
                ..
            } => (object_id, blob_id, Some(*end_epoch), "registered"),
            EventKind::BlobCertified {
                object_id,
                blob_id,
                end_epoch,
                ..
            } => (object_id, blob_id, Some(*end_epoch), "certified"),
            EventKind::BlobDeleted {
                object_id, blob_id, ..
            } => (object_id, blob_id, None, "deleted"),
            _ => return Ok(()),
        };
        let Some(blob) = self.blobs.get(object_id) else {
            return Err(format!("blob object {object_id} {what} but absent"));
        };
        // What the event says of the object's state: deleted or not, and certified.
        let state_agrees = match kind {
            EventKind::BlobDeleted { .. } => blob.deleted,
            EventKind::BlobCertified { .. } => !blob.deleted && blob.certified_epoch.is_some(),
            _ => !blob.deleted,
        };
        if blob.blob_id == *blob_id
            && end_epoch.is_none_or(|e| e == blob.end_epoch())
            && state_agrees
        {
            return Ok(());
        }
        Err(format!(
            "blob object {object_id} {what}, but it holds blob {} ending at {}, certified {:?}, \
             deleted {}",
            blob.blob_id,
            blob.end_epoch(),
            blob.certified_epoch,
            blob.deleted
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::AccountKey;
    use crate::types::{GenesisConfig, GenesisNode};
    use floe_crypto::ProtocolKeyPair;

    fn one_node_genesis() -> GenesisConfig {
        let key = ProtocolKeyPair::from_seed(&[1; 32]);
        let owner = AccountKey::from_seed(&[2; 32]);
        let node = GenesisNode::new("node-0", "127.0.0.1:20000", &key, &owner, 1 << 40);
        GenesisConfig::new(10, 1000, 1_000_000, vec![node])
    }

    /// The checks notice counters that do not match the events, and an event that names a blob
    /// object the state does not hold.
    #[test]
    fn mismatches_are_reported() {
        let mut state = LedgerState::genesis(&one_node_genesis()).unwrap();
        let before = state.before_entry();
        state.entry_count += 1;
        assert_eq!(state.check_after_entry(&before, &[]), Ok(()));
        let err = state
            .check_after_entry(
                &Before {
                    event_count: before.event_count + 1,
                    ..before
                },
                &[],
            )
            .unwrap_err();
        assert!(err.contains("event count"), "{err}");
        let event = Event {
            index: before.event_count,
            entry_index: before.entry_count,
            epoch: state.epoch,
            kind: EventKind::BlobCertified {
                blob_id: floe_core::BlobId([7; 32]),
                object_id: floe_core::ObjectId([9; 32]),
                end_epoch: 3,
                deletable: false,
                is_extension: false,
            },
            tx_digest: Default::default(),
        };
        state.event_count += 1;
        let err = state.check_after_entry(&before, &[event]).unwrap_err();
        assert!(err.contains("absent"), "{err}");
    }
}
