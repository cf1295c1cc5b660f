//! Storage challenges, the lightweight variant: reads are not frozen.
//!
//! When the change to epoch `E` is done (every shard has its owner of `E`), the ledger fixes a
//! seed and, from it, a sample of [`SAMPLES_PER_SHARD`] certified blobs per shard, drawn from
//! the blobs that were certified before `E` began, are not invalid and live past `E`. Shards
//! whose owner changed at this epoch change are skipped for the epoch (the new owner may still
//! be pulling them). Every committee member then challenges every shard it does not hold, on
//! that shard's samples: an audit request (sampled symbols of both slivers with Merkle proofs,
//! signed by the challenged node) checked against the blob's metadata. The challenger signs
//! one [`ChallengeReport`] with its protocol key, the outcome of each of its duties in
//! [`duties`] order, and submits it; the ledger checks shape and signature and tallies, per
//! node and epoch, challenges passed, failed, unanswered, and (for challengers) not issued.
//!
//! Limits, by design: the seed is the ledger's running digest, known to whoever orders the
//! log, not an unbiasable coin; the sample is public from the start of the epoch, so a node
//! that lost slivers can rebuild exactly the challenged ones in time (which costs it a
//! recovery and leaves it holding them); the ledger believes a challenger's signed word on
//! outcomes (it has no metadata to check proofs), so one challenger can lower a node's rate
//! by at most its own share of the challenges.

use std::collections::BTreeMap;

use floe_core::merkle::blake2b256;
use floe_core::{BlobId, Epoch};
use floe_crypto::ProtocolSignature;
use serde::{Deserialize, Serialize};

use crate::types::{Committee, NodeId};

/// Blobs sampled per shard and epoch (with replacement).
pub const SAMPLES_PER_SHARD: usize = 2;
/// Failure notes a report may carry.
pub const MAX_NOTES: usize = 256;
/// Longest reason in a failure note, in bytes.
pub const MAX_REASON_BYTES: usize = 200;
/// Epochs whose challenges the ledger keeps (older ones are dropped).
pub const EPOCHS_KEPT: usize = 8;
/// Domain separator of report signatures.
const REPORT_DOMAIN: &[u8] = b"floe-challenge-report-v1";

/// What one challenge showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChallengeOutcome {
    /// The challenger did not issue it.
    NotIssued,
    /// A signed answer whose samples verified against the metadata.
    Passed,
    /// Wrong data, a bad proof or signature, an answer for another blob, or a refusal.
    Failed,
    /// No answer in time.
    NoAnswer,
}

/// Why one duty failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailureNote {
    /// Position in the challenger's duties.
    pub position: u32,
    pub reason: String,
}

/// A challenger's signed account of its duties in one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ChallengeReport {
    V1(ChallengeReportV1),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChallengeReportV1 {
    pub epoch: Epoch,
    pub challenger: NodeId,
    /// One outcome per duty, in [`duties`] order.
    pub outcomes: Vec<ChallengeOutcome>,
    /// Reasons for (some of) the failed and unanswered duties, by increasing position.
    pub notes: Vec<FailureNote>,
}

impl ChallengeReport {
    pub fn v1(&self) -> &ChallengeReportV1 {
        match self {
            ChallengeReport::V1(r) => r,
        }
    }
    /// The bytes the challenger signs: a domain separator and the report's BCS encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = REPORT_DOMAIN.to_vec();
        out.extend(bcs::to_bytes(self).expect("reports serialise"));
        out
    }
}

/// One challenge a challenger owes: a sampled blob on a shard it does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duty {
    pub shard: u16,
    pub sample: usize,
    pub blob_id: BlobId,
    /// The shard's owner in the epoch.
    pub challenged: NodeId,
}

/// Per node and epoch: as the challenged node, and as a challenger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeTally {
    /// Challenges issued to the node's shards and reported.
    pub challenged: u32,
    pub passed: u32,
    pub failed: u32,
    pub no_answer: u32,
    /// Challenges the node owed as a challenger.
    pub duties: u32,
    /// Of those, the ones it issued (reported with an outcome other than not issued).
    pub issued: u32,
    /// Whether its report was accepted.
    pub reported: bool,
}

impl NodeTally {
    /// Challenges it owed but did not issue (all of them without a report).
    pub fn not_issued(&self) -> u32 {
        self.duties.saturating_sub(self.issued)
    }
}

/// A failed or unanswered challenge, with the report (and signature) that says so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRecord {
    pub challenger: NodeId,
    pub challenged: NodeId,
    pub shard: u16,
    pub blob_id: BlobId,
    pub outcome: ChallengeOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A report the ledger accepted, kept so anyone can re-check its signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedReport {
    pub report: ChallengeReport,
    pub signature: ProtocolSignature,
    /// The event that recorded it.
    pub event: u64,
}

/// One epoch's challenges: the seed, the samples, the tallies and the reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochChallenges {
    pub epoch: Epoch,
    #[serde(with = "crate::tx::hex32")]
    pub seed: [u8; 32],
    /// The log entry that fixed the seed and the samples.
    pub start_entry: u64,
    /// Blobs the samples were drawn from.
    pub eligible_blobs: u64,
    /// `samples[shard * SAMPLES_PER_SHARD + j]`; empty when no blob was eligible.
    pub samples: Vec<BlobId>,
    /// Shards that changed owner at this epoch's change: not challenged.
    pub skipped_shards: Vec<u16>,
    pub tallies: BTreeMap<NodeId, NodeTally>,
    /// Failed and unanswered challenges, as reported.
    pub failures: Vec<FailureRecord>,
    pub reports: BTreeMap<NodeId, AcceptedReport>,
    /// No more reports are accepted (the epoch ended).
    pub closed: bool,
}

impl EpochChallenges {
    /// The sample of `shard`, if it is challenged this epoch.
    pub fn shard_samples(&self, shard: u16) -> Option<&[BlobId]> {
        if self.samples.is_empty() || self.skipped_shards.contains(&shard) {
            return None;
        }
        let start = usize::from(shard) * SAMPLES_PER_SHARD;
        self.samples.get(start..start + SAMPLES_PER_SHARD)
    }
}

/// `GET /v1/challenges`: the tallies of every kept epoch, oldest first (no samples or
/// reports: those are at `GET /v1/challenges/{epoch}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeSummary {
    pub current_epoch: Epoch,
    pub epochs: Vec<EpochSummary>,
}

impl ChallengeSummary {
    /// The epoch to show: the newest with at least one report, else the newest kept.
    pub fn latest(&self) -> Option<&EpochSummary> {
        self.epochs
            .iter()
            .rev()
            .find(|e| e.nodes.iter().any(|n| n.tally.reported))
            .or_else(|| self.epochs.last())
    }
}

/// One epoch's tallies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochSummary {
    pub epoch: Epoch,
    pub eligible_blobs: u64,
    pub closed: bool,
    pub nodes: Vec<NodeSummary>,
}

/// One node's tally, named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    pub node_id: NodeId,
    pub name: String,
    #[serde(flatten)]
    pub tally: NodeTally,
    pub not_issued: u32,
}

impl EpochSummary {
    /// The tallies of `set`, with node names from `name_of`.
    pub fn of(set: &EpochChallenges, name_of: impl Fn(&NodeId) -> String) -> Self {
        Self {
            epoch: set.epoch,
            eligible_blobs: set.eligible_blobs,
            closed: set.closed,
            nodes: set
                .tallies
                .iter()
                .map(|(id, t)| NodeSummary {
                    node_id: *id,
                    name: name_of(id),
                    tally: t.clone(),
                    not_issued: t.not_issued(),
                })
                .collect(),
        }
    }
}

impl NodeTally {
    /// Passed over challenged, if it was challenged at all.
    pub fn pass_rate(&self) -> Option<f64> {
        (self.challenged > 0).then(|| f64::from(self.passed) / f64::from(self.challenged))
    }
}

/// What `challenger` owes in `set`: every sample of every challenged shard that another
/// member of `committee` (the epoch's committee) holds, by shard then sample.
pub fn duties(set: &EpochChallenges, committee: &Committee, challenger: &NodeId) -> Vec<Duty> {
    let mut owner = vec![None; usize::from(committee.n_shards)];
    for m in &committee.members {
        for &s in &m.shards {
            if let Some(o) = owner.get_mut(usize::from(s)) {
                *o = Some(m.node_id);
            }
        }
    }
    let mut out = Vec::new();
    for (shard, o) in owner.iter().enumerate() {
        let Some(challenged) = o else { continue };
        if challenged == challenger {
            continue;
        }
        let shard = shard as u16;
        let Some(samples) = set.shard_samples(shard) else {
            continue;
        };
        for (sample, blob_id) in samples.iter().enumerate() {
            out.push(Duty {
                shard,
                sample,
                blob_id: *blob_id,
                challenged: *challenged,
            });
        }
    }
    out
}

/// What one epoch's challenges showed about one blob.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobOutcomes {
    pub epoch: Epoch,
    /// Shards on which the blob was sampled.
    pub sampled_shards: Vec<u16>,
    pub passed: u32,
    pub failed: u32,
    pub no_answer: u32,
    /// Challenged nodes that failed or did not answer for this blob, each once.
    pub failing: Vec<NodeId>,
}

/// The outcomes the accepted reports of `set` give for `blob_id`; `committee` is the epoch's.
pub fn blob_outcomes(
    set: &EpochChallenges,
    committee: &Committee,
    blob_id: &BlobId,
) -> BlobOutcomes {
    let mut out = BlobOutcomes {
        epoch: set.epoch,
        sampled_shards: (0..committee.n_shards)
            .filter(|&s| set.shard_samples(s).is_some_and(|b| b.contains(blob_id)))
            .collect(),
        ..BlobOutcomes::default()
    };
    for (challenger, accepted) in &set.reports {
        let owed = duties(set, committee, challenger);
        for (d, o) in owed.iter().zip(&accepted.report.v1().outcomes) {
            if &d.blob_id != blob_id {
                continue;
            }
            match o {
                ChallengeOutcome::Passed => out.passed += 1,
                ChallengeOutcome::Failed => out.failed += 1,
                ChallengeOutcome::NoAnswer => out.no_answer += 1,
                ChallengeOutcome::NotIssued => continue,
            }
            if *o != ChallengeOutcome::Passed && !out.failing.contains(&d.challenged) {
                out.failing.push(d.challenged);
            }
        }
    }
    out
}

/// The seed of `epoch`'s challenges: fixed by the running digest before the entry that ends
/// the epoch change.
pub fn seed(epoch: Epoch, digest_before: &[u8; 32]) -> [u8; 32] {
    blake2b256(&[
        b"floe-challenge-seed-v1",
        &epoch.to_le_bytes(),
        digest_before,
    ])
}

/// Draw `SAMPLES_PER_SHARD` blobs per shard from `eligible` (sorted, distinct) with `seed`.
pub fn draw_samples(seed: &[u8; 32], n_shards: u16, eligible: &[BlobId]) -> Vec<BlobId> {
    if eligible.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(usize::from(n_shards) * SAMPLES_PER_SHARD);
    for shard in 0..n_shards {
        for j in 0..SAMPLES_PER_SHARD as u64 {
            let h = blake2b256(&[
                b"floe-challenge-sample",
                seed,
                &shard.to_le_bytes(),
                &j.to_le_bytes(),
            ]);
            let x = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
            out.push(eligible[(x % eligible.len() as u64) as usize]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::CommitteeMember;
    use floe_core::ObjectId;

    fn set(samples: Vec<BlobId>, skipped: Vec<u16>) -> EpochChallenges {
        EpochChallenges {
            epoch: 3,
            seed: [1; 32],
            start_entry: 0,
            eligible_blobs: 2,
            samples,
            skipped_shards: skipped,
            tallies: BTreeMap::new(),
            failures: Vec::new(),
            reports: BTreeMap::new(),
            closed: false,
        }
    }

    #[test]
    fn samples_are_deterministic_and_drawn_from_the_eligible_blobs() {
        let eligible = [BlobId([1; 32]), BlobId([2; 32]), BlobId([3; 32])];
        let a = draw_samples(&[9; 32], 10, &eligible);
        assert_eq!(a, draw_samples(&[9; 32], 10, &eligible));
        assert_eq!(a.len(), 10 * SAMPLES_PER_SHARD);
        assert!(a.iter().all(|b| eligible.contains(b)));
        assert_ne!(a, draw_samples(&[8; 32], 10, &eligible));
        assert!(draw_samples(&[9; 32], 10, &[]).is_empty());
    }

    #[test]
    fn duties_cover_other_members_shards_except_skipped_ones() {
        let (a, b) = (ObjectId([1; 32]), ObjectId([2; 32]));
        let committee = Committee {
            epoch: 3,
            n_shards: 4,
            members: vec![
                CommitteeMember {
                    node_id: a,
                    shards: vec![0, 1],
                },
                CommitteeMember {
                    node_id: b,
                    shards: vec![2, 3],
                },
            ],
        };
        let samples = draw_samples(&[9; 32], 4, &[BlobId([7; 32])]);
        let s = set(samples, vec![3]);
        let d = duties(&s, &committee, &a);
        assert_eq!(d.len(), SAMPLES_PER_SHARD, "shard 2 only (3 is skipped)");
        assert!(d.iter().all(|d| d.shard == 2 && d.challenged == b));
        assert_eq!(duties(&s, &committee, &b).len(), 2 * SAMPLES_PER_SHARD);
        assert!(duties(&set(Vec::new(), vec![]), &committee, &a).is_empty());
    }
}
