//! Results in the JSON shapes Walrus's clients and daemons use (camelCase, externally tagged),
//! so tools written for Walrus read Floe's output unchanged.

use floe_core::Epoch;
use floe_core::{BlobId, EncodingType, ObjectId, TxDigest};
use floe_ledger::BlobObject;
use serde::{Deserialize, Serialize};

/// A ledger event's identifier, in Walrus's `{txDigest, eventSeq}` shape: the base58 digest
/// of the ledger entry that emitted it, and its index in the ledger's event stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventId {
    pub tx_digest: TxDigest,
    pub event_seq: String,
}

impl EventId {
    /// The ID of the event at `index` in the ledger's event stream, emitted by the entry
    /// whose digest is `tx_digest`.
    pub fn new(index: u64, tx_digest: TxDigest) -> Self {
        Self {
            tx_digest,
            event_seq: index.to_string(),
        }
    }
}

/// Bought storage as shown in a blob object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageJson {
    pub id: ObjectId,
    pub start_epoch: Epoch,
    pub end_epoch: Epoch,
    pub storage_size: u64,
}

/// A blob object as Walrus prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobObjectJson {
    pub id: ObjectId,
    pub registered_epoch: Epoch,
    pub blob_id: BlobId,
    pub size: u64,
    pub encoding_type: EncodingType,
    pub certified_epoch: Option<Epoch>,
    pub storage: StorageJson,
    pub deletable: bool,
}

impl From<&BlobObject> for BlobObjectJson {
    fn from(b: &BlobObject) -> Self {
        Self {
            id: b.id,
            registered_epoch: b.registered_epoch,
            blob_id: b.blob_id,
            size: b.size,
            encoding_type: b.encoding_type,
            certified_epoch: b.certified_epoch,
            storage: StorageJson {
                id: b.storage.id,
                start_epoch: b.storage.start_epoch,
                end_epoch: b.storage.end_epoch,
                storage_size: b.storage.storage_size,
            },
            deletable: b.deletable,
        }
    }
}

/// How the write obtained its registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ResourceOperation {
    /// Reserved fresh storage and registered the blob.
    RegisterFromScratch {
        encoded_length: u64,
        epochs_ahead: u32,
    },
    /// Reused an uncertified registration of the same blob from an earlier attempt.
    ReuseRegistration { encoded_length: u64 },
}

/// Why a blob counts as already certified: the certifying event, or an object the caller owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CertifiedBy {
    Event(EventId),
    Object(ObjectId),
}

/// The outcome of storing one blob (`BlobStoreResult`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum BlobStoreResult {
    NewlyCreated {
        blob_object: BlobObjectJson,
        resource_operation: ResourceOperation,
        /// Floe has no storage token; always 0.
        cost: u64,
        /// The shared blob wrapping the new blob object, when the store was asked to share it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shared_blob_object: Option<ObjectId>,
    },
    AlreadyCertified {
        blob_id: BlobId,
        #[serde(flatten)]
        certified_by: CertifiedBy,
        end_epoch: Epoch,
    },
    MarkedInvalid {
        blob_id: BlobId,
        event: EventId,
    },
    Error {
        blob_id: Option<BlobId>,
        failure_phase: String,
        error_msg: String,
    },
}

impl BlobStoreResult {
    pub fn blob_id(&self) -> Option<BlobId> {
        match self {
            BlobStoreResult::NewlyCreated { blob_object, .. } => Some(blob_object.blob_id),
            BlobStoreResult::AlreadyCertified { blob_id, .. }
            | BlobStoreResult::MarkedInvalid { blob_id, .. } => Some(*blob_id),
            BlobStoreResult::Error { blob_id, .. } => *blob_id,
        }
    }

    /// The epoch until which (exclusive) the blob is available, when it is.
    pub fn end_epoch(&self) -> Option<Epoch> {
        match self {
            BlobStoreResult::NewlyCreated { blob_object, .. } => {
                Some(blob_object.storage.end_epoch)
            }
            BlobStoreResult::AlreadyCertified { end_epoch, .. } => Some(*end_epoch),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_results_serialise_in_walruss_shape() {
        let r = BlobStoreResult::AlreadyCertified {
            blob_id: BlobId([1; 32]),
            certified_by: CertifiedBy::Event(EventId::new(7, TxDigest([0xab; 32]))),
            end_epoch: 9,
        };
        let v = serde_json::to_value(&r).unwrap();
        // Walrus clients decode it as base58 of exactly 32 bytes.
        let digest = v["alreadyCertified"]["event"]["txDigest"].as_str().unwrap();
        assert_eq!(
            floe_core::tx_digest::base58_decode(digest).unwrap(),
            vec![0xab; 32]
        );
        assert_eq!(v["alreadyCertified"]["event"]["eventSeq"], "7");
        assert_eq!(v["alreadyCertified"]["endEpoch"], 9);
        assert!(v["alreadyCertified"]["blobId"].is_string());
        let back: BlobStoreResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);

        let op = ResourceOperation::RegisterFromScratch {
            encoded_length: 10,
            epochs_ahead: 2,
        };
        let v = serde_json::to_value(&op).unwrap();
        assert_eq!(v["registerFromScratch"]["encodedLength"], 10);
        assert_eq!(v["registerFromScratch"]["epochsAhead"], 2);
    }
}

/// Walrus's `QuiltStoreResult`: the quilt blob's store result and every patch's ID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuiltStoreResult {
    pub blob_store_result: BlobStoreResult,
    pub stored_quilt_blobs: Vec<StoredQuiltPatch>,
}

/// One stored patch: identifier, patch ID (base64url) and column range `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredQuiltPatch {
    pub identifier: String,
    pub quilt_patch_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<(u16, u16)>,
}

/// One entry of `GET /v1/quilts/{quilt_id}/patches` and `list-patches-in-quilt` (snake_case
/// `patch_id`, unlike `quiltPatchId` above: as Walrus).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuiltPatchListItem {
    pub identifier: String,
    pub patch_id: String,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl QuiltPatchListItem {
    pub fn list(quilt_id: BlobId, index: &floe_core::quilt::QuiltIndex) -> Vec<Self> {
        index
            .patches
            .iter()
            .map(|p| Self {
                identifier: p.identifier.clone(),
                patch_id: p.patch_id(quilt_id).to_string(),
                tags: p.tags.clone(),
            })
            .collect()
    }
}
