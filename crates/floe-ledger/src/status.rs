//! The verified status of a blob ID, aggregated over all its registrations.

use floe_core::{BlobId, Epoch, ObjectId};
use serde::{Deserialize, Serialize};

use crate::state::LedgerState;

/// What the ledger says about a blob ID, with the event that made it so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum BlobStatus {
    /// Never registered.
    Nonexistent,
    /// Registered (not yet certified) until `end_epoch`.
    #[serde(rename_all = "camelCase")]
    Registered {
        end_epoch: Epoch,
        object_id: ObjectId,
        event: u64,
    },
    /// Certified: available until `end_epoch` (exclusive).
    #[serde(rename_all = "camelCase")]
    Certified {
        end_epoch: Epoch,
        initial_certified_epoch: Epoch,
        object_id: ObjectId,
        /// Whether some live certified registration is permanent (cannot be deleted).
        permanent: bool,
        event: u64,
    },
    /// Proven inconsistently encoded; reads must return no data.
    #[serde(rename_all = "camelCase")]
    Invalid { event: u64 },
    /// Every registration was deleted by its owner.
    #[serde(rename_all = "camelCase")]
    Deleted { event: u64 },
    /// Every registration ran past its end epoch.
    #[serde(rename_all = "camelCase")]
    Expired { end_epoch: Epoch, event: u64 },
}

impl LedgerState {
    /// The status of `blob_id` at the current epoch.
    pub fn blob_status(&self, blob_id: &BlobId) -> BlobStatus {
        let Some(record) = self.blob_record(blob_id) else {
            return BlobStatus::Nonexistent;
        };
        if let Some(event) = record.invalid_event {
            return BlobStatus::Invalid { event };
        }
        let epoch = self.epoch();
        let objects: Vec<_> = record
            .objects
            .iter()
            .filter_map(|id| self.blob_object(id))
            .collect();
        let events = |id: &ObjectId| self.object_events(id).cloned().unwrap_or_default();
        let certified = objects
            .iter()
            .filter(|b| b.is_live(epoch) && b.certified_epoch.is_some());
        if let Some(best) = certified
            .clone()
            .max_by_key(|b| (b.end_epoch(), events(&b.id).certified))
        {
            return BlobStatus::Certified {
                end_epoch: best.end_epoch(),
                initial_certified_epoch: certified
                    .clone()
                    .filter_map(|b| b.certified_epoch)
                    .min()
                    .unwrap_or(epoch),
                object_id: best.id,
                permanent: certified.clone().any(|b| !b.deletable),
                event: events(&best.id).certified.unwrap_or(events(&best.id).last),
            };
        }
        if let Some(best) = objects
            .iter()
            .filter(|b| b.is_live(epoch))
            .max_by_key(|b| b.end_epoch())
        {
            return BlobStatus::Registered {
                end_epoch: best.end_epoch(),
                object_id: best.id,
                event: events(&best.id).registered,
            };
        }
        if let Some(best) = objects
            .iter()
            .filter(|b| !b.deleted)
            .max_by_key(|b| b.end_epoch())
        {
            return BlobStatus::Expired {
                end_epoch: best.end_epoch(),
                event: events(&best.id).last,
            };
        }
        let event = objects
            .iter()
            .map(|b| events(&b.id).last)
            .max()
            .unwrap_or(0);
        BlobStatus::Deleted { event }
    }
}
