//! The drift check: at each epoch change (an `EpochChangeStart` event) the node digests its blob
//! table as it stands right after that event, and serves the digest with its health. Blob infos
//! are a pure function of the events, so every node that processed exactly the same events
//! holds the same table at the same position; `floe health` compares the committee's digests
//! and names the nodes whose tables differ (a node that missed or misapplied events).
//!
//! Digest, version 1: Blake2b-256 over `"floe-blob-table-v1" ‖ epoch u32 LE`, then for every
//! blob in blob-ID order that is invalid, or certified and live in the epoch:
//! `blob ID ‖ 0x01 (invalid)` or `blob ID ‖ 0x00 ‖ latest end epoch of its live certified
//! registrations u32 LE ‖ count of those that are deletable u32 LE ‖ count of all u32 LE`.
//! Registered-only, expired and deleted blobs do not enter it, so garbage collection timing
//! cannot change it.

use floe_core::{BlobId, Epoch};
use floe_node_storage::BlobInfo;
use serde::Serialize;

const DOMAIN: &[u8] = b"floe-blob-table-v1";

/// A node's blob-table digest at an epoch change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobTableDigest {
    /// Format of the digest (1).
    pub version: u8,
    /// The epoch the change started.
    pub epoch: Epoch,
    /// Events applied when it was taken: the `EpochChangeStart` event's index + 1.
    pub event_position: u64,
    /// Blake2b-256, hex.
    pub digest: String,
    /// Certified live blobs counted.
    pub certified: u64,
    /// Invalid blobs counted.
    pub invalid: u64,
}

/// Incremental digest over blobs given in blob-ID order.
pub struct TableHasher {
    bytes: Vec<u8>,
    epoch: Epoch,
    certified: u64,
    invalid: u64,
}

impl TableHasher {
    pub fn new(epoch: Epoch) -> Self {
        let mut bytes = DOMAIN.to_vec();
        bytes.extend_from_slice(&epoch.to_le_bytes());
        Self {
            bytes,
            epoch,
            certified: 0,
            invalid: 0,
        }
    }

    /// Add one blob (callers go in blob-ID order).
    pub fn add(&mut self, blob_id: &BlobId, info: &BlobInfo) {
        if info.is_invalid() {
            self.bytes.extend_from_slice(blob_id.as_bytes());
            self.bytes.push(1);
            self.invalid += 1;
            return;
        }
        let live: Vec<_> = info
            .objects
            .values()
            .filter(|o| o.is_certified_live(self.epoch))
            .collect();
        let Some(end) = live.iter().map(|o| o.end_epoch).max() else {
            return;
        };
        let deletable = live.iter().filter(|o| o.deletable).count() as u32;
        self.bytes.extend_from_slice(blob_id.as_bytes());
        self.bytes.push(0);
        self.bytes.extend_from_slice(&end.to_le_bytes());
        self.bytes.extend_from_slice(&deletable.to_le_bytes());
        self.bytes
            .extend_from_slice(&(live.len() as u32).to_le_bytes());
        self.certified += 1;
    }

    pub fn finish(self, event_position: u64) -> BlobTableDigest {
        let digest = floe_core::merkle::blake2b256(&[&self.bytes]);
        BlobTableDigest {
            version: 1,
            epoch: self.epoch,
            event_position,
            digest: hex::encode(digest),
            certified: self.certified,
            invalid: self.invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_core::{ObjectId, TxDigest};
    use floe_node_storage::ObjectInfo;

    fn info(end: Epoch, deletable: bool, certified: bool) -> BlobInfo {
        let mut i = BlobInfo::default();
        i.objects.insert(
            ObjectId([1; 32]),
            ObjectInfo {
                end_epoch: end,
                deletable,
                certified_epoch: certified.then_some(1),
                deleted: false,
                registered_event: 1,
                certified_event: certified.then_some(2),
                registered_tx: TxDigest([0; 32]),
                certified_tx: None,
            },
        );
        i
    }

    fn digest(blobs: &[(BlobId, BlobInfo)]) -> BlobTableDigest {
        let mut h = TableHasher::new(3);
        for (id, i) in blobs {
            h.add(id, i);
        }
        h.finish(10)
    }

    #[test]
    fn only_certified_live_and_invalid_blobs_count() {
        let a = (BlobId([1; 32]), info(9, true, true));
        let registered = (BlobId([2; 32]), info(9, true, false));
        let expired = (BlobId([3; 32]), info(3, true, true));
        let base = digest(std::slice::from_ref(&a));
        assert_eq!(base.certified, 1);
        assert_eq!(digest(&[a.clone(), registered, expired]), base);
        // A different end epoch, persistence or a missing blob changes it.
        assert_ne!(digest(&[(a.0, info(8, true, true))]).digest, base.digest);
        assert_ne!(digest(&[(a.0, info(9, false, true))]).digest, base.digest);
        assert_ne!(digest(&[]).digest, base.digest);
        let mut invalid = a.1.clone();
        invalid.invalid_event = Some(5);
        let d = digest(&[(a.0, invalid)]);
        assert_eq!((d.certified, d.invalid), (0, 1));
        assert_ne!(d.digest, base.digest);
    }
}
