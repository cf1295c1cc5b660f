//! What can go wrong for a client, each with what to do about it.

use floe_core::{BlobId, ObjectId};
use floe_ledger_client::LedgerClientError;

/// One node's failure during a write or read, kept for the final error message.
#[derive(Clone, Debug)]
pub struct NodeFailure {
    pub node: String,
    pub shards: usize,
    pub reason: String,
}

impl std::fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} shards): {}", self.node, self.shards, self.reason)
    }
}

/// One line per node (however many of its requests failed), at most 10 nodes.
fn list(failures: &[NodeFailure]) -> String {
    if failures.is_empty() {
        return "no node reported an error".into();
    }
    let mut nodes: Vec<(&NodeFailure, usize)> = Vec::new();
    for f in failures {
        match nodes.iter_mut().find(|(g, _)| g.node == f.node) {
            Some((_, count)) => *count += 1,
            None => nodes.push((f, 1)),
        }
    }
    let mut s: Vec<String> = nodes
        .iter()
        .take(10)
        .map(|(f, count)| match count {
            1 => f.to_string(),
            n => format!("{f} (and {} more failed requests)", n - 1),
        })
        .collect();
    if nodes.len() > 10 {
        s.push(format!("and {} more nodes", nodes.len() - 10));
    }
    s.join("; ")
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("blob {0} does not exist: it was never registered on the ledger")]
    BlobNotFound(BlobId),
    #[error(
        "blob {0} is registered but not certified, so no node has to serve it yet; \
         store it again to finish the upload"
    )]
    NotCertified(BlobId),
    #[error("blob {0} was proven inconsistently encoded and marked invalid; it has no data")]
    Invalid(BlobId),
    #[error("blob {0} was deleted by its owner(s); its data is gone")]
    Deleted(BlobId),
    #[error("blob {blob_id} expired at the start of epoch {end_epoch}; its data is gone")]
    Expired { blob_id: BlobId, end_epoch: u32 },
    #[error(
        "blob {0} is inconsistently encoded (the decoded data does not match its metadata); \
         storage nodes will mark it invalid"
    )]
    Inconsistent(BlobId),
    #[error(
        "could not certify blob {blob_id}: confirmations from nodes holding {weight} shards, \
         {needed} needed. Node errors: {}. Check that the nodes are running \
         (`floe health`) and retry",
        list(failures)
    )]
    NotEnoughConfirmations {
        blob_id: BlobId,
        weight: u64,
        needed: u64,
        failures: Vec<NodeFailure>,
    },
    #[error(
        "could not read blob {blob_id}: got {have} valid slivers, {need} needed. Node errors: {}. \
         Too many nodes are down or lying; retry later",
        list(failures)
    )]
    NotEnoughSlivers {
        blob_id: BlobId,
        have: usize,
        need: usize,
        failures: Vec<NodeFailure>,
    },
    #[error(
        "no node returned valid metadata for blob {blob_id}. Node errors: {}",
        list(failures)
    )]
    NoMetadata {
        blob_id: BlobId,
        failures: Vec<NodeFailure>,
    },
    #[error("the blob is {size} bytes; this network stores at most {max} bytes per blob")]
    BlobTooLarge { size: u64, max: u64 },
    #[error("invalid lifetime: {0}")]
    BadLifetime(String),
    #[error("byte range {start}+{length} is outside the blob ({size} bytes)")]
    RangeNotSatisfiable { start: u64, length: u64, size: u64 },
    #[error("this operation needs a wallet key; none is configured")]
    NoWallet,
    #[error("object {0} is not a blob you own")]
    NotOwned(String),
    #[error("object {0} is not a shared blob; a blob object you own is extended without --shared")]
    NotSharedBlob(ObjectId),
    /// Its own message already says the ledger answered or could not be reached; transparent,
    /// so that printing the error with its sources (`{:#}`) does not repeat it.
    #[error(transparent)]
    Ledger(#[from] LedgerClientError),
    #[error("the ledger's committee is unusable: {0}")]
    Committee(String),
    #[error("encoding failed: {0}")]
    Encode(#[from] floe_core::EncodeError),
    #[error(
        "cannot spill the blob's repair slivers to a temporary file in {dir}: {reason}. Point \
         `communication.spill_dir` at a writable directory with room for 3.5 times the blob, or \
         set `communication.spill_above_bytes` to 0 to encode in memory"
    )]
    Spill { dir: String, reason: String },
    #[error("decoding failed: {0}")]
    Decode(String),
    #[error("quilt: {0}")]
    Quilt(#[from] floe_core::quilt::QuiltError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ClientError {
    /// A stable machine-readable kind, used in `--json` output and HTTP reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::BlobNotFound(_) => "BLOB_NOT_FOUND",
            ClientError::NotCertified(_) => "BLOB_NOT_CERTIFIED",
            ClientError::Invalid(_) => "BLOB_INVALID",
            ClientError::Deleted(_) => "BLOB_DELETED",
            ClientError::Expired { .. } => "BLOB_EXPIRED",
            ClientError::Inconsistent(_) => "BLOB_INCONSISTENT",
            ClientError::NotEnoughConfirmations { .. } => "INSUFFICIENT_CONFIRMATIONS",
            ClientError::NotEnoughSlivers { .. } => "NOT_ENOUGH_SLIVERS",
            ClientError::NoMetadata { .. } => "METADATA_UNAVAILABLE",
            ClientError::BlobTooLarge { .. } => "BLOB_TOO_LARGE",
            ClientError::BadLifetime(_) => "INVALID_LIFETIME",
            ClientError::RangeNotSatisfiable { .. } => "INVALID_BYTE_RANGE",
            ClientError::NoWallet => "NO_WALLET",
            ClientError::NotOwned(_) => "NOT_OWNED",
            ClientError::NotSharedBlob(_) => "NOT_SHARED_BLOB",
            ClientError::Ledger(_) => "LEDGER_ERROR",
            ClientError::Committee(_) => "BAD_COMMITTEE",
            ClientError::Encode(_) => "ENCODING_FAILED",
            ClientError::Spill { .. } => "SPILL_FAILED",
            ClientError::Decode(_) => "DECODING_FAILED",
            ClientError::Quilt(floe_core::quilt::QuiltError::PatchNotFound(_)) => {
                "QUILT_PATCH_NOT_FOUND"
            }
            ClientError::Quilt(_) => "INVALID_QUILT",
            ClientError::Internal(_) => "INTERNAL",
        }
    }

    /// Whether the blob's data is definitely not available (as opposed to a transient failure).
    pub fn is_unavailable_blob(&self) -> bool {
        matches!(
            self,
            ClientError::BlobNotFound(_)
                | ClientError::NotCertified(_)
                | ClientError::Invalid(_)
                | ClientError::Deleted(_)
                | ClientError::Expired { .. }
                | ClientError::Inconsistent(_)
        )
    }
}
