//! Why an entry was rejected. Each variant has a stable machine-readable code.

use floe_core::{BlobId, Epoch, ObjectId};

use crate::types::NodeId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("the transaction signature does not verify for its sender")]
    BadSignature,
    #[error("wrong sequence number {got}: the sender's next sequence number is {expected}")]
    BadSequence { expected: u64, got: u64 },
    #[error("no object {0}")]
    NoSuchObject(ObjectId),
    #[error("object {0} belongs to another account")]
    NotOwner(ObjectId),
    #[error("size must be positive")]
    ZeroSize,
    #[error("end epoch {end} is not after the current epoch {epoch}")]
    EndNotInFuture { end: Epoch, epoch: Epoch },
    #[error("end epoch {end} is too far ahead: the latest allowed is {max}")]
    TooFarAhead { end: Epoch, max: Epoch },
    #[error(
        "capacity exceeded in epoch {epoch}: {used} of {total} bytes used, {requested} more requested"
    )]
    CapacityExceeded {
        epoch: Epoch,
        used: u64,
        requested: u64,
        total: u64,
    },
    #[error("storage resource covers epochs [{start}, {end}), not the current epoch {epoch}")]
    StorageNotCurrent {
        start: Epoch,
        end: Epoch,
        epoch: Epoch,
    },
    #[error(
        "storage too small: the blob needs {needed} encoded bytes, the resource has {available}"
    )]
    StorageTooSmall { needed: u64, available: u64 },
    #[error("blob too large: {0}")]
    BlobTooLarge(String),
    #[error(
        "blob ID {claimed} does not match its derivation from (encoding, size, root hash): {derived}"
    )]
    BlobIdMismatch { claimed: BlobId, derived: BlobId },
    #[error("blob {0} has been marked invalid")]
    BlobInvalid(BlobId),
    #[error("blob object {0} is already certified")]
    AlreadyCertified(ObjectId),
    #[error("blob object {0} is not certified")]
    NotCertified(ObjectId),
    #[error(
        "blob object {blob} is wrapped in shared blob {shared}: it has no owner any more; \
         anyone may extend it through the shared blob, nobody may delete or transfer it"
    )]
    SharedBlob { blob: ObjectId, shared: ObjectId },
    #[error("blob object {0} was deleted")]
    Deleted(ObjectId),
    #[error("blob object expired: its end epoch {end} is not after the current epoch {epoch}")]
    Expired { end: Epoch, epoch: Epoch },
    #[error("blob object {0} is permanent and cannot be deleted")]
    NotDeletable(ObjectId),
    #[error("new end epoch {requested} does not extend the current end epoch {end}")]
    NotAnExtension { end: Epoch, requested: Epoch },
    #[error("invalid certificate: {0}")]
    BadCertificate(String),
    #[error("message is for epoch {message}, but the current epoch is {current}")]
    WrongEpoch { message: Epoch, current: Epoch },
    #[error("clock entry does not advance the epoch (current {epoch}, clock says {target})")]
    StaleClock { epoch: Epoch, target: Epoch },
    #[error("the change to epoch {0} is still in progress")]
    EpochChangeInProgress(Epoch),
    #[error("no epoch change is in progress in epoch {0}")]
    NoEpochChange(Epoch),
    #[error("node {0} is not in the current committee")]
    NotInCommittee(NodeId),
    #[error("node {0} already reported its shards")]
    AlreadyReported(NodeId),
    #[error("invalid node registration: {0}")]
    BadNode(String),
    #[error("node {0} is deregistered")]
    NodeDeregistered(NodeId),
    #[error("the last node with positive weight cannot leave")]
    LastNode,
    #[error("invalid blob attributes: {0}")]
    BadAttributes(String),
    #[error("invalid challenge report: {0}")]
    BadChallengeReport(String),
    #[error("no storage challenges are open in epoch {0}")]
    NoChallenges(Epoch),
    #[error("node {0} already reported its challenges this epoch")]
    ChallengesAlreadyReported(NodeId),
    /// A replicated-log entry whose payload is not a ledger entry (never written by a replica
    /// of this build); it is recorded as a rejection, so every replica skips it the same way.
    #[error("log entry cannot be decoded: {0}")]
    Undecodable(String),
    /// A [`crate::LogEntry::Rules`] entry that is not a step forward (a second replica asked
    /// for the same step): recorded as a rejection, so it changes nothing.
    #[error(
        "the ledger's rules are at version {current} already; a step to {requested} changes nothing"
    )]
    RulesNotNewer { current: u16, requested: u16 },
    /// Rules this build does not know. Decoding refuses such an entry first, so a ledger
    /// meets this only for an entry made in-process.
    #[error("ledger rules version {0} are unknown to this build")]
    UnknownRules(u16),
}

impl TxError {
    /// A stable, machine-readable reason code (used in API error bodies).
    pub fn code(&self) -> &'static str {
        match self {
            TxError::BadSignature => "BAD_SIGNATURE",
            TxError::BadSequence { .. } => "BAD_SEQUENCE",
            TxError::NoSuchObject(_) => "NO_SUCH_OBJECT",
            TxError::NotOwner(_) => "NOT_OWNER",
            TxError::ZeroSize => "ZERO_SIZE",
            TxError::EndNotInFuture { .. } => "END_NOT_IN_FUTURE",
            TxError::TooFarAhead { .. } => "TOO_FAR_AHEAD",
            TxError::CapacityExceeded { .. } => "CAPACITY_EXCEEDED",
            TxError::StorageNotCurrent { .. } => "STORAGE_NOT_CURRENT",
            TxError::StorageTooSmall { .. } => "STORAGE_TOO_SMALL",
            TxError::BlobTooLarge(_) => "BLOB_TOO_LARGE",
            TxError::BlobIdMismatch { .. } => "BLOB_ID_MISMATCH",
            TxError::BlobInvalid(_) => "BLOB_INVALID",
            TxError::AlreadyCertified(_) => "ALREADY_CERTIFIED",
            TxError::NotCertified(_) => "NOT_CERTIFIED",
            TxError::SharedBlob { .. } => "SHARED_BLOB",
            TxError::Deleted(_) => "DELETED",
            TxError::Expired { .. } => "EXPIRED",
            TxError::NotDeletable(_) => "NOT_DELETABLE",
            TxError::NotAnExtension { .. } => "NOT_AN_EXTENSION",
            TxError::BadCertificate(_) => "BAD_CERTIFICATE",
            TxError::WrongEpoch { .. } => "WRONG_EPOCH",
            TxError::StaleClock { .. } => "STALE_CLOCK",
            TxError::EpochChangeInProgress(_) => "EPOCH_CHANGE_IN_PROGRESS",
            TxError::NoEpochChange(_) => "NO_EPOCH_CHANGE",
            TxError::NotInCommittee(_) => "NOT_IN_COMMITTEE",
            TxError::AlreadyReported(_) => "ALREADY_REPORTED",
            TxError::BadChallengeReport(_) => "BAD_CHALLENGE_REPORT",
            TxError::NoChallenges(_) => "NO_CHALLENGES",
            TxError::ChallengesAlreadyReported(_) => "CHALLENGES_ALREADY_REPORTED",
            TxError::BadNode(_) => "BAD_NODE",
            TxError::NodeDeregistered(_) => "NODE_DEREGISTERED",
            TxError::LastNode => "LAST_NODE",
            TxError::BadAttributes(_) => "BAD_ATTRIBUTES",
            TxError::Undecodable(_) => "UNDECODABLE",
            TxError::RulesNotNewer { .. } => "RULES_NOT_NEWER",
            TxError::UnknownRules(_) => "UNKNOWN_RULES",
        }
    }
}
