//! Events: what every applied entry emits, numbered by a monotonically increasing index.

use floe_core::{BlobId, Epoch, ObjectId, TxDigest};
use serde::{Deserialize, Serialize};

use crate::types::{Address, NodeId};

/// An event and its position in the ledger's event stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Position in the event stream (0, 1, 2, …): the cursor clients and nodes resume from.
    pub index: u64,
    /// Index of the log entry that emitted it.
    pub entry_index: u64,
    /// The epoch in which it was emitted.
    pub epoch: Epoch,
    pub kind: EventKind,
    /// The digest of the entry that emitted it (Walrus's `txDigest`; base58 in JSON).
    pub tx_digest: TxDigest,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    #[serde(rename_all = "camelCase")]
    StorageReserved {
        object_id: ObjectId,
        owner: Address,
        start_epoch: Epoch,
        end_epoch: Epoch,
        storage_size: u64,
    },
    #[serde(rename_all = "camelCase")]
    BlobRegistered {
        blob_id: BlobId,
        object_id: ObjectId,
        owner: Address,
        size: u64,
        end_epoch: Epoch,
        deletable: bool,
    },
    #[serde(rename_all = "camelCase")]
    BlobCertified {
        blob_id: BlobId,
        object_id: ObjectId,
        end_epoch: Epoch,
        deletable: bool,
        is_extension: bool,
    },
    #[serde(rename_all = "camelCase")]
    BlobDeleted {
        blob_id: BlobId,
        object_id: ObjectId,
        end_epoch: Epoch,
        was_certified: bool,
    },
    #[serde(rename_all = "camelCase")]
    InvalidBlobId { blob_id: BlobId },
    #[serde(rename_all = "camelCase")]
    EpochChangeStart { epoch: Epoch },
    #[serde(rename_all = "camelCase")]
    ShardsReceived {
        epoch: Epoch,
        node_id: NodeId,
        shards: Vec<u16>,
    },
    #[serde(rename_all = "camelCase")]
    EpochChangeDone { epoch: Epoch },
    /// A blob object changed owner (appended last: variant indices are part of the digest).
    #[serde(rename_all = "camelCase")]
    BlobTransferred {
        blob_id: BlobId,
        object_id: ObjectId,
        from: Address,
        to: Address,
    },
    /// A storage node registered; it is a candidate for the next committee.
    #[serde(rename_all = "camelCase")]
    NodeRegistered {
        node_id: NodeId,
        owner: Address,
        weight: u64,
    },
    /// A node's weight changed (0: deregistered); effective at the next epoch change.
    #[serde(rename_all = "camelCase")]
    NodeWeightChanged { node_id: NodeId, weight: u64 },
    /// The committee of `next_epoch` and its shard assignment are fixed (Walrus's
    /// `voting_end`); it takes over at the start of `next_epoch`.
    #[serde(rename_all = "camelCase")]
    EpochParametersSelected { next_epoch: Epoch },
    /// The storage challenges of `epoch` are fixed (seed and samples; see
    /// `GET /v1/challenges/{epoch}`): drawn from `eligible_blobs` certified blobs.
    #[serde(rename_all = "camelCase")]
    ChallengesStarted {
        epoch: Epoch,
        eligible_blobs: u64,
        skipped_shards: u32,
    },
    /// A challenger's report was accepted: what its challenges showed.
    #[serde(rename_all = "camelCase")]
    ChallengeReported {
        epoch: Epoch,
        node_id: NodeId,
        passed: u32,
        failed: u32,
        no_answer: u32,
        not_issued: u32,
    },
}

impl EventKind {
    /// The blob this event is about, if any.
    pub fn blob_id(&self) -> Option<BlobId> {
        match self {
            EventKind::BlobRegistered { blob_id, .. }
            | EventKind::BlobCertified { blob_id, .. }
            | EventKind::BlobDeleted { blob_id, .. }
            | EventKind::BlobTransferred { blob_id, .. }
            | EventKind::InvalidBlobId { blob_id } => Some(*blob_id),
            _ => None,
        }
    }
}
