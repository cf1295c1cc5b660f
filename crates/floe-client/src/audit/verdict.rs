//! The verdict of an audit: shards counted against the read threshold and the quorum.

use std::collections::BTreeMap;

use floe_core::{BlobId, EncodingConfig};
use floe_ledger::BlobStatus;
use floe_ledger::api_types::{BlobStatusResponse, CertificateRecord};
use serde::{Deserialize, Serialize};

use super::certificate::CertificateCheck;
use super::{ShardAudit, ShardResult};
use crate::committee::CommitteeView;

/// What the audit concludes; each verdict has its own exit code in `floe audit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Certified, and at least n − f shards proved possession: readable with its full margin
    /// (exit 0).
    Available,
    /// Certified, at least n − 2f shards proved possession but fewer than n − f: readable, at
    /// risk (exit 1).
    AtRisk,
    /// Certified, but fewer than n − 2f shards proved possession: not readable from what was
    /// proven (exit 2).
    Unreadable,
    /// The ledger does not show a live certified blob: unknown, registered only, invalid,
    /// deleted or expired (exit 3).
    NotCertified,
}

impl Verdict {
    /// `floe audit`'s exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Available => 0,
            Verdict::AtRisk => 1,
            Verdict::Unreadable => 2,
            Verdict::NotCertified => 3,
        }
    }

    /// From the number of shards that proved possession.
    pub fn from_proved(proved: u64, margins: &Margins) -> Self {
        if proved >= margins.quorum {
            Verdict::Available
        } else if proved >= margins.read_threshold {
            Verdict::AtRisk
        } else {
            Verdict::Unreadable
        }
    }
}

/// The thresholds and how far the proven shards are above them (negative: below).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Margins {
    pub n_shards: u64,
    /// n − 2f: primary slivers a read decodes from.
    pub read_threshold: u64,
    /// n − f: the certificate quorum.
    pub quorum: u64,
    pub above_read_threshold: i64,
    pub above_quorum: i64,
}

impl Margins {
    /// The margins of `proved` shards out of `config`'s.
    pub fn new(config: &EncodingConfig, proved: u64) -> Self {
        let read_threshold = u64::from(config.n_primary_source());
        let quorum = u64::from(config.n_secondary_source());
        Self {
            n_shards: u64::from(config.n_shards()),
            read_threshold,
            quorum,
            above_read_threshold: proved as i64 - read_threshold as i64,
            above_quorum: proved as i64 - quorum as i64,
        }
    }
}

/// A node whose shards failed, with the reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedNode {
    pub node: String,
    pub address: String,
    /// Shards that failed (wrong data, a bad proof, a refusal).
    pub failed_shards: Vec<u16>,
    /// Shards whose node did not answer in time.
    pub silent_shards: Vec<u16>,
    /// Distinct reasons, in shard order.
    pub reasons: Vec<String>,
}

/// The audit of one blob.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    pub blob_id: BlobId,
    /// The ledger's status and the event that made it so.
    pub ledger: BlobStatusResponse,
    /// The certificate the ledger verified when it certified the blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateRecord>,
    /// The certificate checked again here, against the committee that signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_check: Option<CertificateCheck>,
    pub verdict: Verdict,
    /// The epoch of the committee audited (absent when nothing was asked of nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committee_epoch: Option<u32>,
    pub proved: u64,
    pub failed: u64,
    pub no_answer: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margins: Option<Margins>,
    /// Nodes with shards that did not prove possession.
    pub failed_nodes: Vec<FailedNode>,
    /// Nodes that said they are recovering slivers they lack.
    pub recovering_nodes: Vec<String>,
    /// Every shard, in order.
    pub shards: Vec<ShardAudit>,
}

impl AuditReport {
    /// The report of a blob the ledger does not show certified: no node is asked.
    pub fn not_certified(ledger: BlobStatusResponse) -> Self {
        Self {
            blob_id: ledger.blob_id,
            ledger,
            certificate: None,
            certificate_check: None,
            verdict: Verdict::NotCertified,
            committee_epoch: None,
            proved: 0,
            failed: 0,
            no_answer: 0,
            margins: None,
            failed_nodes: Vec::new(),
            recovering_nodes: Vec::new(),
            shards: Vec::new(),
        }
    }

    /// The report from every shard's audit.
    pub fn new(
        ledger: BlobStatusResponse,
        certificate: (Option<CertificateRecord>, CertificateCheck),
        committee: &CommitteeView,
        shards: Vec<ShardAudit>,
    ) -> Self {
        Self::from_shards(
            ledger,
            certificate,
            &committee.config,
            committee.epoch,
            shards,
        )
    }

    /// Tally `shards` (also used to recompute a verdict from an evidence file). A certificate
    /// found invalid makes the verdict `NotCertified`.
    pub fn from_shards(
        ledger: BlobStatusResponse,
        (certificate, check): (Option<CertificateRecord>, CertificateCheck),
        config: &EncodingConfig,
        epoch: u32,
        shards: Vec<ShardAudit>,
    ) -> Self {
        let count = |r| shards.iter().filter(|s| s.result == r).count() as u64;
        let proved = count(ShardResult::Proved);
        let margins = Margins::new(config, proved);
        let certified = matches!(ledger.status, BlobStatus::Certified { .. })
            && !matches!(check, CertificateCheck::Invalid { .. });
        let verdict = if certified {
            Verdict::from_proved(proved, &margins)
        } else {
            Verdict::NotCertified
        };
        let mut recovering: Vec<String> = shards
            .iter()
            .filter(|s| s.recovering)
            .map(|s| s.node.clone())
            .collect();
        recovering.dedup();
        recovering.sort();
        recovering.dedup();
        Self {
            blob_id: ledger.blob_id,
            certificate,
            certificate_check: Some(check),
            verdict,
            committee_epoch: Some(epoch),
            proved,
            failed: count(ShardResult::Failed),
            no_answer: count(ShardResult::NoAnswer),
            margins: Some(margins),
            failed_nodes: failed_nodes(&shards),
            recovering_nodes: recovering,
            shards,
            ledger,
        }
    }
}

fn failed_nodes(shards: &[ShardAudit]) -> Vec<FailedNode> {
    let mut by_node: BTreeMap<&str, FailedNode> = BTreeMap::new();
    for s in shards.iter().filter(|s| s.result != ShardResult::Proved) {
        let entry = by_node.entry(&s.node).or_insert_with(|| FailedNode {
            node: s.node.clone(),
            address: s.address.clone(),
            failed_shards: Vec::new(),
            silent_shards: Vec::new(),
            reasons: Vec::new(),
        });
        match s.result {
            ShardResult::NoAnswer => entry.silent_shards.push(s.shard),
            _ => entry.failed_shards.push(s.shard),
        }
        if let Some(r) = &s.reason
            && !entry.reasons.contains(r)
        {
            entry.reasons.push(r.clone());
        }
    }
    by_node.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_thresholds() {
        // n = 10: f = 3, read threshold 4, quorum 7.
        let config = EncodingConfig::new(10).unwrap();
        let at = |proved| Verdict::from_proved(proved, &Margins::new(&config, proved));
        assert_eq!(at(10), Verdict::Available);
        assert_eq!(at(7), Verdict::Available);
        assert_eq!(at(6), Verdict::AtRisk);
        assert_eq!(at(4), Verdict::AtRisk);
        assert_eq!(at(3), Verdict::Unreadable);
        assert_eq!(at(0), Verdict::Unreadable);
        let m = Margins::new(&config, 5);
        assert_eq!((m.above_read_threshold, m.above_quorum), (1, -2));
        let codes: Vec<i32> = [
            Verdict::Available,
            Verdict::AtRisk,
            Verdict::Unreadable,
            Verdict::NotCertified,
        ]
        .iter()
        .map(|v| v.exit_code())
        .collect();
        assert_eq!(codes, vec![0, 1, 2, 3]);
    }
}
