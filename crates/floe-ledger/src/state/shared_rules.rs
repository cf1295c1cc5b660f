//! The rules of shared blobs: an owner wraps a certified blob object into a shared blob, which
//! anyone may then extend and nobody may delete, transfer or change. Like every rule, each
//! checks everything before its first mutation.

use floe_core::{Epoch, ObjectId};

use super::{Effects, LedgerState};
use crate::error::TxError;
use crate::types::{Address, SharedBlob};

impl LedgerState {
    /// The shared blob `id`, with the blob object it wraps as it is now.
    pub fn shared_blob(&self, id: &ObjectId) -> Option<SharedBlob> {
        let blob = self.blobs.get(self.shared_blobs.get(id)?)?;
        Some(SharedBlob {
            id: *id,
            blob: blob.clone(),
        })
    }

    /// The shared blob wrapping blob object `blob`, if it was shared.
    pub fn shared_blob_of(&self, blob: &ObjectId) -> Option<ObjectId> {
        self.shared_of.get(blob).copied()
    }

    /// Wrap the sender's live, certified blob object `id` into a new shared blob.
    pub(super) fn share_blob(
        &mut self,
        sender: &Address,
        id: &ObjectId,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        let blob = self.owned_live_blob(id, sender)?;
        if blob.certified_epoch.is_none() {
            return Err(TxError::NotCertified(*id));
        }
        let shared = out.new_object_id();
        self.shared_blobs.insert(shared, *id);
        self.shared_of.insert(*id, shared);
        Ok(())
    }

    /// Extend the blob wrapped in shared blob `shared` to `new_end_epoch` (anyone may).
    pub(super) fn extend_shared_blob(
        &mut self,
        shared: &ObjectId,
        new_end_epoch: Epoch,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        let id = *self
            .shared_blobs
            .get(shared)
            .ok_or(TxError::NoSuchObject(*shared))?;
        self.check_live(self.blobs.get(&id).ok_or(TxError::NoSuchObject(id))?)?;
        self.extend_live_blob(&id, new_end_epoch, out)
    }
}
