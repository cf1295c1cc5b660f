//! The node's error type: every failure of a request or of background work, each mapped to an
//! HTTP status and a reason code by the API layer.

use floe_core::{BlobId, ObjectId, ShardIndex, SliverType};
use floe_node_storage::StoreError;

/// Why a request failed; each maps to an HTTP status and a reason code.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(
        "blob {0} is not registered on the ledger (register it first, or upload with ?pending=true)"
    )]
    NotRegistered(BlobId),
    #[error("no metadata for blob {0} on this node (upload the metadata first)")]
    MetadataNotFound(BlobId),
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
    #[error("blob {0} was marked invalid")]
    InvalidBlob(BlobId),
    #[error("sliver not found")]
    SliverNotFound,
    #[error("shard {0} is not assigned to this node in the current epoch")]
    ShardNotAssigned(ShardIndex),
    #[error("sliver pair index {index} out of range for {n} shards")]
    IndexOutOfRange { index: u16, n: u16 },
    #[error("the sliver's own index {index} does not belong to pair {pair} on the {axis} axis")]
    SliverIndexMismatch {
        index: u16,
        pair: u16,
        axis: SliverType,
    },
    #[error("invalid sliver: {0}")]
    InvalidSliver(String),
    #[error("malformed body: {0}")]
    BadBody(String),
    #[error("not all slivers of this node's shards are stored yet ({missing} missing)")]
    MissingSlivers { missing: usize },
    #[error("object {0} is not a live deletable registration of this blob")]
    NotLiveDeletable(ObjectId),
    #[error("the buffer for uploads awaiting registration is full; retry after registering")]
    CacheSaturated,
    #[error("invalid inconsistency proof: {0}")]
    InvalidProof(String),
    #[error("too many concurrent requests of this kind; retry shortly")]
    Busy,
    #[error("bad request: {0}")]
    BadQuery(String),
    #[error("no target slivers given (use targetSlivers=INDEX, repeatable, and targetType)")]
    NoTargetSlivers,
    #[error("{got} target slivers requested; at most {max} per request")]
    TooManyTargets { got: usize, max: usize },
    #[error("storage failure: {0}")]
    Storage(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}
