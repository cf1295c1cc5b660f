//! What applying one log entry produces: its events and the object IDs it creates.

use floe_core::merkle::blake2b256;
use floe_core::{Epoch, ObjectId, TxDigest};

use crate::event::{Event, EventKind};

/// Events and object IDs produced while applying one entry.
pub(super) struct Effects {
    pub(super) entry_index: u64,
    /// The digest of the entry applied, given to every event it emits.
    pub(super) tx_digest: TxDigest,
    pub(super) first_event: u64,
    pub(super) epoch: Epoch,
    pub(super) objects_created: u64,
    pub(super) events: Vec<Event>,
}

impl Effects {
    pub(super) fn new(
        entry_index: u64,
        tx_digest: TxDigest,
        first_event: u64,
        epoch: Epoch,
    ) -> Self {
        Self {
            entry_index,
            tx_digest,
            first_event,
            epoch,
            objects_created: 0,
            events: Vec::new(),
        }
    }

    /// A fresh object ID, derived from the entry index and a counter.
    pub(super) fn new_object_id(&mut self) -> ObjectId {
        let id = created_object_id(self.entry_index, self.objects_created);
        self.objects_created += 1;
        id
    }

    /// Record an event; returns its index.
    pub(super) fn emit(&mut self, kind: EventKind) -> u64 {
        let index = self.first_event + self.events.len() as u64;
        self.events.push(Event {
            index,
            entry_index: self.entry_index,
            epoch: self.epoch,
            kind,
            tx_digest: self.tx_digest,
        });
        index
    }
}

/// The ID of the `n`-th object (from 0) created by log entry `entry_index`: clients work out
/// the ID of what their transaction created from the entry index they are answered.
pub fn created_object_id(entry_index: u64, n: u64) -> ObjectId {
    ObjectId(blake2b256(&[
        b"floe-object",
        &entry_index.to_le_bytes(),
        &n.to_le_bytes(),
    ]))
}
