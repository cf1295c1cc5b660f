//! A node's signed answer to a possession audit (intent 4, Floe's extension).
//!
//! The node signs `[4, 0, 3] ‖ epoch u32 LE ‖ BCS(AuditAnswer)` with its protocol key: the
//! answer names the node (its public key), the blob, the shard, the auditor's nonce and sample
//! count, and carries the sampled symbols with their proofs (or a refusal with its reason). The
//! signature therefore binds node, shard, blob ID, nonce, epoch and the symbols: a node that
//! answers with wrong data, for another blob or shard, or replays an old answer, is caught by
//! [`verify_audit_answer`] and the signed bytes prove it to anyone.

use floe_core::audit::{AuditNonce, AuditRequestV1, AuditSamples};
use floe_core::{BlobId, Epoch, ShardIndex};
use serde::{Deserialize, Serialize};

use crate::keys::ProtocolPublicKey;
use crate::messages::{IntentType, MessageBody, ProtocolMessage, sealed};
use crate::signed::{SignedMessage, VerificationError};

/// A signed audit answer, versioned. BCS: variant tag (`0` = V1), then the fields.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AuditAnswer {
    /// Version 1 (tag 0).
    V1(AuditAnswerV1),
}

/// Version 1 of [`AuditAnswer`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AuditAnswerV1 {
    /// The answering node's protocol key (48 bytes).
    pub node: ProtocolPublicKey,
    /// The audited blob.
    pub blob_id: BlobId,
    /// The audited shard.
    pub shard: ShardIndex,
    /// The auditor's nonce, echoed.
    pub nonce: AuditNonce,
    /// Samples per axis asked for, echoed.
    pub samples: u16,
    /// The samples, or why there are none.
    pub outcome: AuditOutcome,
}

/// What the node answers.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AuditOutcome {
    /// Tag 0: the sampled symbols with their proofs.
    Samples(AuditSamples),
    /// Tag 1: the node does not prove possession, and says why.
    Refused(AuditRefusal),
}

/// Why a node does not prove possession of a shard's slivers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AuditRefusal {
    /// Tag 0: the node knows no live registration of the blob.
    NotRegistered,
    /// Tag 1: the blob was marked invalid.
    Invalid,
    /// Tag 2: the shard is not the node's (nor one it still serves read-only).
    ShardNotHeld,
    /// Tag 3: the node lacks a sliver of the shard's pair.
    Missing {
        /// The primary sliver is missing.
        primary: bool,
        /// The secondary sliver is missing.
        secondary: bool,
    },
    /// Tag 4: the node lacks slivers and is rebuilding them (blob sync or shard transfer).
    Recovering,
}

impl std::fmt::Display for AuditRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotRegistered => write!(f, "knows no live registration of the blob"),
            Self::Invalid => write!(f, "holds the blob as invalid"),
            Self::ShardNotHeld => write!(f, "does not hold the shard"),
            Self::Missing { primary, secondary } => {
                let which = match (primary, secondary) {
                    (true, true) => "both slivers",
                    (true, false) => "the primary sliver",
                    _ => "the secondary sliver",
                };
                write!(f, "is missing {which}")
            }
            Self::Recovering => write!(f, "is missing slivers and recovering them"),
        }
    }
}

impl AuditAnswer {
    /// The version-1 fields (the only version so far).
    pub fn v1(&self) -> &AuditAnswerV1 {
        match self {
            AuditAnswer::V1(a) => a,
        }
    }
}

impl sealed::Sealed for AuditAnswer {}
impl MessageBody for AuditAnswer {
    const INTENT: IntentType = IntentType::AuditAnswer;
}

/// An audit-answer message.
pub type AuditAnswerMessage = ProtocolMessage<AuditAnswer>;

/// Why a signed audit answer is not an answer to the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditAnswerError {
    /// The bytes are not an audit answer, or the signature does not verify.
    #[error(transparent)]
    Signature(#[from] VerificationError),
    /// The answer was signed in an epoch too far from the auditor's.
    #[error("signed for epoch {actual}, the audit is in epoch {expected}")]
    Epoch {
        /// The auditor's epoch.
        expected: Epoch,
        /// The epoch in the answer.
        actual: Epoch,
    },
    /// A field differs from the request (another blob, shard, nonce or node).
    #[error("answers for another {0} than asked")]
    Mismatch(&'static str),
}

/// Sign `answer` for `epoch` (node side).
pub fn sign_audit_answer(
    keypair: &crate::keys::ProtocolKeyPair,
    epoch: Epoch,
    answer: AuditAnswer,
) -> SignedMessage {
    SignedMessage::sign(keypair, &ProtocolMessage::new(epoch, answer))
}

/// Checks that `signed` is `node`'s signed answer to `request`, made within one epoch of
/// `epoch` (a node may see an epoch change a moment before or after the auditor), and returns
/// it. The outcome is not checked here: samples are verified against the metadata with
/// [`AuditSamples::verify`].
pub fn verify_audit_answer(
    signed: &SignedMessage,
    node: &ProtocolPublicKey,
    request: &AuditRequestV1,
    epoch: Epoch,
) -> Result<AuditAnswerMessage, AuditAnswerError> {
    let message = signed.verify::<AuditAnswer>(node)?;
    if message.epoch.abs_diff(epoch) > 1 {
        return Err(AuditAnswerError::Epoch {
            expected: epoch,
            actual: message.epoch,
        });
    }
    let a = message.body.v1();
    if a.node != *node {
        return Err(AuditAnswerError::Mismatch("node"));
    }
    if a.blob_id != request.blob_id {
        return Err(AuditAnswerError::Mismatch("blob"));
    }
    if a.shard != request.shard {
        return Err(AuditAnswerError::Mismatch("shard"));
    }
    if a.nonce != request.nonce {
        return Err(AuditAnswerError::Mismatch("nonce"));
    }
    if a.samples != request.samples {
        return Err(AuditAnswerError::Mismatch("sample count"));
    }
    Ok(message)
}

/// An upper bound on the BCS size of a signed answer with `samples` symbols per axis of
/// `symbol_size` bytes at `n_shards` shards: what an auditor reads at most from a node.
pub fn max_answer_bytes(symbol_size: u16, samples: u16, n_shards: u16) -> usize {
    // A proof holds one 32-byte sibling (plus a tag byte) per level of the tree.
    let levels = (u32::BITS - u32::from(n_shards).leading_zeros()) as usize + 1;
    let per_sample = usize::from(symbol_size) + levels * 33 + 32;
    1024 + 2 * usize::from(samples) * per_sample
}

/// What a node's signed answer to an audit request shows, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Signed by the node, bound to the request, and every sample verified.
    Proved,
    /// Wrong data, a bad proof or signature, an answer to another request, or a refusal
    /// (`recovering`: the node said it is rebuilding what it lacks).
    Failed {
        /// What was wrong, for people.
        reason: String,
        /// The node said it is rebuilding what it lacks.
        recovering: bool,
    },
}

/// Judge `signed`, `node`'s answer to `request` made around `epoch`, against the blob's
/// verified `metadata` (pure: signature, binding, proofs). Nothing in the answer is believed
/// before it verifies.
pub fn judge_answer(
    signed: &SignedMessage,
    node: &ProtocolPublicKey,
    request: &AuditRequestV1,
    epoch: Epoch,
    config: &floe_core::EncodingConfig,
    metadata: &floe_core::BlobMetadata,
) -> Judgement {
    let failed = |reason: String| Judgement::Failed {
        reason,
        recovering: false,
    };
    let message = match verify_audit_answer(signed, node, request, epoch) {
        Ok(m) => m,
        Err(e) => return failed(format!("bad answer: {e}")),
    };
    match &message.body.v1().outcome {
        AuditOutcome::Samples(samples) => match samples.verify(config, metadata, request) {
            Ok(()) => Judgement::Proved,
            Err(e) => failed(format!("wrong data: {e}")),
        },
        AuditOutcome::Refused(r) => Judgement::Failed {
            reason: format!("refused: {r}"),
            recovering: *r == AuditRefusal::Recovering,
        },
    }
}

#[cfg(test)]
mod tests;
