//! Audit evidence: everything a third party needs to check an audit's verdict offline, without
//! trusting the auditor (`floe audit --evidence FILE`, checked by `floe audit --verify FILE`).
//!
//! JSON, `formatVersion` 1: the blob ID, the ledger's status, the audited committee (names,
//! addresses, protocol keys, shards), the metadata (hex of its BCS), the sample count, and the
//! report with every shard's nonce and the node's signed answer as received. [`verify_evidence`]
//! is pure: it checks the metadata against the blob ID, every signature against the committee's
//! key of the shard's owner, every answer's binding (blob, shard, nonce, sample count, epoch)
//! and every proof against the metadata, then recounts the verdict. Shards without a signed
//! answer (time-outs, transport errors) count as not proven: a third party cannot check the
//! auditor's word on them, and they never raise the verdict.

use floe_core::audit::AuditRequestV1;
use floe_core::{BlobId, BlobMetadataWithId, EncodingConfig, ShardIndex};
use floe_ledger::api_types::{BlobStatusResponse, CommitteeInfo, MemberInfo};
use serde::{Deserialize, Serialize};

use super::certificate::{CertificateCheck, check_certificate};
use super::verdict::{AuditReport, Verdict};
use super::{ShardAudit, ShardResult, judge_answer};
use crate::committee::CommitteeView;

/// The evidence file's format version.
pub const EVIDENCE_FORMAT_VERSION: u32 = 1;

/// An audit's evidence (see the module documentation).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub format_version: u32,
    pub blob_id: BlobId,
    pub ledger: BlobStatusResponse,
    pub committee: CommitteeInfo,
    /// The committee that signed the ledger's certificate, when it was at hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_committee: Option<CommitteeInfo>,
    /// BCS of the `BlobMetadataWithId`, hex.
    pub metadata: String,
    /// Symbols asked for per sliver.
    pub samples: u16,
    pub report: AuditReport,
}

/// Why evidence does not support its verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("unsupported evidence format version {0} (this build reads 1)")]
    Version(u32),
    #[error("the committee is unusable: {0}")]
    Committee(String),
    #[error("the metadata is unusable: {0}")]
    Metadata(String),
    #[error("shard {shard}: {reason}")]
    Shard { shard: u16, reason: String },
    #[error("the report claims {claimed}, the evidence shows {shown}")]
    Tally { claimed: String, shown: String },
}

/// What the evidence supports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceCheck {
    pub blob_id: BlobId,
    /// The ledger's certificate checked against the committee in the evidence.
    pub certificate: CertificateCheck,
    pub verdict: Verdict,
    /// Shards whose signed answers prove possession.
    pub proved: u64,
    /// Failures backed by the node's own signed answer (wrong data, refusal): attributable.
    pub signed_failures: u64,
    /// Failures and silences the auditor reports without a signed answer.
    pub unsigned: u64,
}

impl Evidence {
    pub(crate) fn new(
        report: &AuditReport,
        committee: &CommitteeView,
        metadata: &BlobMetadataWithId,
        ledger: BlobStatusResponse,
        samples: u16,
    ) -> Self {
        let members = committee.members.iter().map(|m| m.info.clone()).collect();
        Self {
            format_version: EVIDENCE_FORMAT_VERSION,
            blob_id: report.blob_id,
            ledger,
            committee: CommitteeInfo {
                epoch: committee.epoch,
                n_shards: committee.n_shards(),
                members,
            },
            certificate_committee: None,
            metadata: hex::encode(metadata.to_bcs()),
            samples,
            report: report.clone(),
        }
    }
}

fn decode_metadata(
    e: &Evidence,
    config: &EncodingConfig,
) -> Result<BlobMetadataWithId, EvidenceError> {
    let bytes = hex::decode(&e.metadata).map_err(|_| EvidenceError::Metadata("not hex".into()))?;
    let metadata: BlobMetadataWithId =
        bcs::from_bytes(&bytes).map_err(|err| EvidenceError::Metadata(err.to_string()))?;
    if metadata.blob_id != e.blob_id {
        return Err(EvidenceError::Metadata("it is another blob's".into()));
    }
    metadata
        .metadata
        .verify(config, &e.blob_id)
        .map_err(|err| EvidenceError::Metadata(err.to_string()))?;
    Ok(metadata)
}

/// Check `e` offline (see the module documentation).
pub fn verify_evidence(e: &Evidence) -> Result<EvidenceCheck, EvidenceError> {
    if e.format_version != EVIDENCE_FORMAT_VERSION {
        return Err(EvidenceError::Version(e.format_version));
    }
    let config = EncodingConfig::new(e.committee.n_shards)
        .map_err(|err| EvidenceError::Committee(err.to_string()))?;
    let owners = crate::committee::shard_owners(&e.committee).map_err(EvidenceError::Committee)?;
    let metadata = decode_metadata(e, &config)?;
    if e.report.blob_id != e.blob_id || e.ledger.blob_id != e.blob_id {
        return Err(EvidenceError::Metadata(
            "the report or status is another blob's".into(),
        ));
    }
    if e.report.shards.len() != owners.len() {
        return Err(EvidenceError::Tally {
            claimed: format!("{} shards audited", e.report.shards.len()),
            shown: format!("{} shards in the committee", owners.len()),
        });
    }
    let (mut signed_failures, mut unsigned) = (0, 0);
    let mut rejudged = Vec::with_capacity(owners.len());
    for (i, s) in e.report.shards.iter().enumerate() {
        let owner = &e.committee.members[owners[i]];
        let (shard, signed) = rejudge_shard(e, i, s, owner, &config, &metadata)?;
        match (signed, shard.result) {
            (false, _) => unsigned += 1,
            (true, ShardResult::Failed) => signed_failures += 1,
            _ => {}
        }
        rejudged.push(shard);
    }
    let (check, recount) = recount(e, &config, rejudged)?;
    Ok(EvidenceCheck {
        blob_id: e.blob_id,
        certificate: check,
        verdict: recount.verdict,
        proved: recount.proved,
        signed_failures,
        unsigned,
    })
}

/// Judge shard `i`'s signed answer again; returns the shard as judged and whether it carries
/// a signed answer.
fn rejudge_shard(
    e: &Evidence,
    i: usize,
    s: &ShardAudit,
    owner: &MemberInfo,
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
) -> Result<(ShardAudit, bool), EvidenceError> {
    let bad = |reason: String| EvidenceError::Shard {
        shard: s.shard,
        reason,
    };
    if usize::from(s.shard) != i {
        return Err(bad(format!("listed at position {i}")));
    }
    if s.node_key != owner.protocol_key {
        return Err(bad(format!("its key is not its owner {}'s", owner.name)));
    }
    let nonce = <[u8; 32]>::try_from(hex::decode(&s.nonce).unwrap_or_default())
        .map_err(|_| bad("the nonce is not 32 hex bytes".into()))?;
    let request = AuditRequestV1 {
        blob_id: e.blob_id,
        shard: ShardIndex(s.shard),
        nonce,
        samples: e.samples,
    };
    let Some(signed) = &s.answer else {
        if s.result == ShardResult::Proved {
            return Err(bad("reported proved without a signed answer".into()));
        }
        return Ok((s.clone(), false));
    };
    let (result, reason, recovering) = judge_answer(
        signed,
        &owner.protocol_key,
        &request,
        e.committee.epoch,
        config,
        metadata,
    );
    if result != s.result {
        return Err(bad(format!(
            "reported {:?}, its signed answer shows {result:?}{}",
            s.result,
            reason.map(|r| format!(" ({r})")).unwrap_or_default()
        )));
    }
    let mut shard = s.clone();
    shard.recovering = recovering;
    Ok((shard, true))
}

/// Check the certificate and recount the verdict; both must be what the report claims.
fn recount(
    e: &Evidence,
    config: &EncodingConfig,
    rejudged: Vec<ShardAudit>,
) -> Result<(CertificateCheck, AuditReport), EvidenceError> {
    let check = check_certificate(
        e.report.certificate.as_ref(),
        e.certificate_committee.as_ref(),
        &e.blob_id,
    );
    if e.report.certificate_check.as_ref() != Some(&check) {
        return Err(EvidenceError::Tally {
            claimed: format!("certificate {:?}", e.report.certificate_check),
            shown: format!("certificate {check:?}"),
        });
    }
    let recount = AuditReport::from_shards(
        e.ledger.clone(),
        (e.report.certificate.clone(), check.clone()),
        config,
        e.committee.epoch,
        rejudged,
    );
    let claimed = (e.report.verdict, e.report.proved);
    let shown = (recount.verdict, recount.proved);
    if claimed != shown {
        return Err(EvidenceError::Tally {
            claimed: format!("{:?} with {} proved", claimed.0, claimed.1),
            shown: format!("{:?} with {} proved", shown.0, shown.1),
        });
    }
    Ok((check, recount))
}
