//! `Client::audit`: is a blob really there? For every shard, a fresh nonce asks its node for a
//! few sampled symbols of both slivers with their Merkle proofs, signed with the node's
//! protocol key; each answer is checked against the committee's key and the blob's verified
//! metadata. A few KiB per shard, no download of the blob.
//!
//! The verdict counts shards that proved possession against the read threshold (n − 2f
//! primary slivers) and the quorum (n − f). A node that answers with wrong data, a bad proof,
//! for another blob or shard, or refuses, is named; one that does not answer in time is listed
//! as silent. Nothing a node says is believed without its signature and proofs.

pub mod certificate;
pub mod evidence;
mod verdict;

use std::sync::Arc;
use std::time::Duration;

use floe_core::audit::{AuditRequest, AuditRequestV1, DEFAULT_AUDIT_SAMPLES};
use floe_core::{BlobId, BlobMetadataWithId, EncodingConfig, ShardIndex};
use floe_crypto::audit::max_answer_bytes;
use floe_crypto::{ProtocolPublicKey, SignedMessage};
use floe_ledger::BlobStatus;
use floe_ledger::api_types::{CertificateRecord, CommitteeInfo};
use floe_node_client::NodeClientError;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::committee::CommitteeView;
use crate::{Client, ClientError};

pub use certificate::{CertificateCheck, check_certificate, signing_members};
pub use evidence::{Evidence, EvidenceCheck, EvidenceError, verify_evidence};
pub use verdict::{AuditReport, FailedNode, Margins, Verdict};

/// How an audit asks.
#[derive(Clone, Copy, Debug)]
pub struct AuditOptions {
    /// Symbols sampled per sliver (1..=32).
    pub samples: u16,
    /// How long each shard's node has to answer.
    pub timeout: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            samples: DEFAULT_AUDIT_SAMPLES,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What one shard's node showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ShardResult {
    /// A signed answer whose every sample verified against the metadata.
    Proved,
    /// Wrong data, a bad proof or signature, an answer to another request, or a refusal.
    Failed,
    /// No complete answer in time (or the node could not be reached).
    NoAnswer,
}

/// One shard's audit: the request, the node's signed answer if any, and what it showed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardAudit {
    pub shard: u16,
    /// The owner's name and address in the audited committee.
    pub node: String,
    pub address: String,
    /// The owner's protocol key (base64), the key the answer must be signed with.
    pub node_key: ProtocolPublicKey,
    /// The nonce sent (hex).
    pub nonce: String,
    pub result: ShardResult,
    /// Why the shard did not prove possession.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The node said it is rebuilding the slivers it lacks.
    #[serde(default)]
    pub recovering: bool,
    /// The node's signed answer, as received (absent for transport errors and time-outs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<SignedMessage>,
}

/// What a checked answer shows: the result, the reason and whether the node is recovering.
pub(crate) type Judgement = (ShardResult, Option<String>, bool);

/// Judge a node's signed answer to `request` (pure: signature, binding, proofs). Used by the
/// audit and by the offline check of an evidence file.
pub(crate) fn judge_answer(
    signed: &SignedMessage,
    node_key: &ProtocolPublicKey,
    request: &AuditRequestV1,
    epoch: u32,
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
) -> Judgement {
    match floe_crypto::audit::judge_answer(
        signed,
        node_key,
        request,
        epoch,
        config,
        &metadata.metadata,
    ) {
        floe_crypto::audit::Judgement::Proved => (ShardResult::Proved, None, false),
        floe_crypto::audit::Judgement::Failed { reason, recovering } => {
            (ShardResult::Failed, Some(reason), recovering)
        }
    }
}

/// Everything a shard's task needs.
struct ShardTask {
    shard: ShardIndex,
    member: usize,
    request: AuditRequestV1,
}

impl Client {
    /// Audit `blob_id`: the ledger's status, then (if certified) every shard of the committee
    /// that serves it. Fails only when the ledger cannot be asked; when no member serves
    /// metadata that verifies against the blob ID, every shard is unproven (and there is no
    /// evidence to keep).
    pub async fn audit(
        &self,
        blob_id: &BlobId,
        options: AuditOptions,
    ) -> Result<(AuditReport, Option<Evidence>), ClientError> {
        floe_core::audit::check_sample_count(options.samples)
            .map_err(|e| ClientError::Committee(e.to_string()))?;
        let status = self.ledger.blob_status(blob_id).await?;
        if !matches!(status.status, BlobStatus::Certified { .. }) {
            return Ok((AuditReport::not_certified(status), None));
        }
        let committee = self.read_committee(blob_id).await?;
        let (record, signing_committee) = self.certificate_and_committee(blob_id).await?;
        let check = check_certificate(record.as_ref(), signing_committee.as_ref(), blob_id);
        let metadata = match self.fetch_metadata(&committee, blob_id).await {
            Ok(m) => m,
            // Nothing can be proven without metadata: every shard is unproven (no evidence).
            Err(e) => {
                let shards = unproven_shards(&committee, &format!("no verified metadata: {e}"));
                let report = AuditReport::new(status, (record, check), &committee, shards);
                return Ok((report, None));
            }
        };
        let shards = self
            .audit_shards(&committee, &metadata, blob_id, options)
            .await?;
        let report = AuditReport::new(status.clone(), (record, check), &committee, shards);
        let mut evidence = Evidence::new(&report, &committee, &metadata, status, options.samples);
        evidence.certificate_committee = signing_committee;
        Ok((report, Some(evidence)))
    }

    /// The ledger's certificate of `blob_id` and, if the ledger still shows it (current or
    /// previous epoch), the committee of the certificate's epoch.
    async fn certificate_and_committee(
        &self,
        blob_id: &BlobId,
    ) -> Result<(Option<CertificateRecord>, Option<CommitteeInfo>), ClientError> {
        let Some(record) = self.ledger.blob_certificate(blob_id).await? else {
            return Ok((None, None));
        };
        let system = self.system().await?;
        let committee = [Some(system.committee), system.previous_committee]
            .into_iter()
            .flatten()
            .find(|c| c.epoch == record.epoch);
        Ok((Some(record), committee))
    }

    async fn audit_shards(
        &self,
        committee: &CommitteeView,
        metadata: &BlobMetadataWithId,
        blob_id: &BlobId,
        options: AuditOptions,
    ) -> Result<Vec<ShardAudit>, ClientError> {
        let n = committee.n_shards();
        let symbol_size = metadata
            .metadata
            .symbol_size(&committee.config)
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let max_bytes = max_answer_bytes(symbol_size, options.samples, n);
        let committee = Arc::new(committee.clone());
        let metadata = Arc::new(metadata.clone());
        let mut set = JoinSet::new();
        for shard in (0..n).map(ShardIndex) {
            let task = ShardTask {
                shard,
                member: committee.owner_of_shard(shard),
                request: AuditRequestV1 {
                    blob_id: *blob_id,
                    shard,
                    nonce: rand::random(),
                    samples: options.samples,
                },
            };
            let (committee, metadata) = (committee.clone(), metadata.clone());
            let permits = self.node_requests.clone();
            set.spawn(async move {
                let _permit = permits.acquire_owned().await;
                audit_one(&committee, &metadata, task, options.timeout, max_bytes).await
            });
        }
        let mut out = Vec::with_capacity(usize::from(n));
        while let Some(joined) = set.join_next().await {
            out.push(joined.map_err(|e| ClientError::Internal(e.to_string()))?);
        }
        out.sort_by_key(|s| s.shard);
        Ok(out)
    }
}

/// Every shard as not answered, for `reason`.
fn unproven_shards(committee: &CommitteeView, reason: &str) -> Vec<ShardAudit> {
    (0..committee.n_shards())
        .map(|shard| {
            let member = &committee.members[committee.owner_of_shard(ShardIndex(shard))];
            ShardAudit {
                shard,
                node: member.info.name.clone(),
                address: member.info.network_address.clone(),
                node_key: member.info.protocol_key,
                nonce: String::new(),
                result: ShardResult::NoAnswer,
                reason: Some(reason.to_string()),
                recovering: false,
                answer: None,
            }
        })
        .collect()
}

async fn audit_one(
    committee: &CommitteeView,
    metadata: &BlobMetadataWithId,
    task: ShardTask,
    timeout: Duration,
    max_bytes: usize,
) -> ShardAudit {
    let member = &committee.members[task.member];
    let key = member.info.protocol_key;
    let answer = member
        .client
        .audit(&AuditRequest::V1(task.request), timeout, max_bytes)
        .await;
    let (answer, (result, reason, recovering)) = match answer {
        Ok(signed) => {
            let judged = judge_answer(
                &signed,
                &key,
                &task.request,
                committee.epoch,
                &committee.config,
                metadata,
            );
            (Some(signed), judged)
        }
        Err(e) => (None, transport_judgement(&e)),
    };
    ShardAudit {
        shard: task.shard.0,
        node: member.info.name.clone(),
        address: member.info.network_address.clone(),
        node_key: key,
        nonce: hex::encode(task.request.nonce),
        result,
        reason,
        recovering,
        answer,
    }
}

/// An error answer is a refusal (named); no answer at all is silence.
fn transport_judgement(e: &NodeClientError) -> Judgement {
    match e {
        NodeClientError::Api { status, reason, .. } => (
            ShardResult::Failed,
            Some(format!("refused: HTTP {status} {reason}")),
            false,
        ),
        NodeClientError::Decode { reason, .. } => (
            ShardResult::Failed,
            Some(format!("malformed answer: {reason}")),
            false,
        ),
        NodeClientError::Unreachable { reason, .. } => (
            ShardResult::NoAnswer,
            Some(format!("no answer: {reason}")),
            false,
        ),
    }
}
