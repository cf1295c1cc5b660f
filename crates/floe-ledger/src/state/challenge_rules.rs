//! Storage challenges in the state machine: fixed when an epoch change is done, reports
//! checked and tallied, closed when the next epoch starts (see [`crate::challenge`]).

use std::collections::BTreeMap;

use floe_core::{BlobId, Epoch};
use floe_crypto::ProtocolSignature;

use super::LedgerState;
use super::effects::Effects;
use crate::challenge::{
    self, AcceptedReport, ChallengeOutcome, ChallengeReport, ChallengeSummary, EPOCHS_KEPT,
    EpochChallenges, EpochSummary, FailureRecord, MAX_NOTES, MAX_REASON_BYTES, NodeTally,
};
use crate::error::TxError;
use crate::event::EventKind;
use crate::types::Address;

impl LedgerState {
    /// The challenges of epoch `epoch`, if the ledger still keeps them.
    pub fn challenges(&self, epoch: Epoch) -> Option<&EpochChallenges> {
        self.challenges.get(&epoch)
    }

    /// The tallies of every kept epoch.
    pub fn challenge_summary(&self) -> ChallengeSummary {
        let name_of = |id: &crate::types::NodeId| {
            self.nodes
                .get(id)
                .map_or_else(|| id.to_string(), |n| n.name.clone())
        };
        ChallengeSummary {
            current_epoch: self.epoch,
            epochs: self
                .challenges
                .values()
                .map(|set| EpochSummary::of(set, name_of))
                .collect(),
        }
    }

    /// Blobs a challenge of `epoch` may sample: certified before `epoch` began, not deleted,
    /// living past `epoch`, and not proven invalid. Sorted, distinct.
    fn challengeable_blobs(&self, epoch: Epoch) -> Vec<BlobId> {
        self.by_blob_id
            .iter()
            .filter(|(_, record)| record.invalid_event.is_none())
            .filter(|(_, record)| {
                record.objects.iter().any(|id| {
                    self.blobs.get(id).is_some_and(|b| {
                        !b.deleted
                            && b.certified_epoch.is_some_and(|c| c < epoch)
                            && b.storage.end_epoch > epoch
                    })
                })
            })
            .map(|(blob_id, _)| *blob_id)
            .collect()
    }

    /// Shards whose owner differs between the previous and the current committee.
    fn moved_shards(&self) -> Vec<u16> {
        let Some(previous) = &self.previous_committee else {
            return Vec::new();
        };
        let owner =
            |c: &crate::types::Committee, s: u16| c.owner_of(s).map(|i| c.members[i].node_id);
        (0..self.params.n_shards)
            .filter(|&s| owner(previous, s) != owner(&self.committee, s))
            .collect()
    }

    /// Fix the current epoch's challenges (called in the entry that ends its epoch change; the
    /// seed comes from the digest before that entry).
    pub(super) fn start_challenges(&mut self, out: &mut Effects) {
        let epoch = self.epoch;
        let eligible = self.challengeable_blobs(epoch);
        let seed = challenge::seed(epoch, &self.digest);
        let mut set = EpochChallenges {
            epoch,
            seed,
            start_entry: self.entry_count,
            eligible_blobs: eligible.len() as u64,
            samples: challenge::draw_samples(&seed, self.params.n_shards, &eligible),
            skipped_shards: self.moved_shards(),
            tallies: BTreeMap::new(),
            failures: Vec::new(),
            reports: BTreeMap::new(),
            closed: false,
        };
        for m in &self.committee.members {
            let duties = challenge::duties(&set, &self.committee, &m.node_id).len() as u32;
            set.tallies.insert(
                m.node_id,
                NodeTally {
                    duties,
                    ..NodeTally::default()
                },
            );
        }
        out.emit(EventKind::ChallengesStarted {
            epoch,
            eligible_blobs: set.eligible_blobs,
            skipped_shards: set.skipped_shards.len() as u32,
        });
        self.challenges.insert(epoch, set);
        while self.challenges.len() > EPOCHS_KEPT {
            self.challenges.pop_first();
        }
    }

    /// No more reports for the current epoch (called when the next epoch starts).
    pub(super) fn close_challenges(&mut self) {
        if let Some(set) = self.challenges.get_mut(&self.epoch) {
            set.closed = true;
        }
    }

    /// Check a challenger's report and tally it.
    pub(super) fn submit_challenge_report(
        &mut self,
        sender: &Address,
        report: &ChallengeReport,
        signature: &ProtocolSignature,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        let duties = self.check_report(sender, report, signature)?;
        let r = report.v1();
        let tally = tally(&duties, r);
        let event = out.emit(EventKind::ChallengeReported {
            epoch: r.epoch,
            node_id: r.challenger,
            passed: tally.own.passed,
            failed: tally.own.failed,
            no_answer: tally.own.no_answer,
            not_issued: duties.len() as u32 - tally.own.issued,
        });
        let set = self.challenges.get_mut(&r.epoch).expect("checked");
        for (node_id, t) in tally.challenged {
            let e = set.tallies.entry(node_id).or_default();
            e.challenged += t.challenged;
            e.passed += t.passed;
            e.failed += t.failed;
            e.no_answer += t.no_answer;
        }
        let own = set.tallies.entry(r.challenger).or_default();
        own.issued = tally.own.issued;
        own.reported = true;
        set.failures.extend(tally.failures);
        set.reports.insert(
            r.challenger,
            AcceptedReport {
                report: report.clone(),
                signature: *signature,
                event,
            },
        );
        Ok(())
    }

    /// Every check of a report before it changes anything; returns the challenger's duties.
    fn check_report(
        &self,
        sender: &Address,
        report: &ChallengeReport,
        signature: &ProtocolSignature,
    ) -> Result<Vec<challenge::Duty>, TxError> {
        let r = report.v1();
        let node = self
            .nodes
            .get(&r.challenger)
            .ok_or(TxError::NoSuchObject(r.challenger))?;
        if &node.owner != sender {
            return Err(TxError::NotOwner(r.challenger));
        }
        if r.epoch != self.epoch {
            return Err(TxError::WrongEpoch {
                message: r.epoch,
                current: self.epoch,
            });
        }
        let set = self
            .challenges
            .get(&r.epoch)
            .filter(|s| !s.closed)
            .ok_or(TxError::NoChallenges(r.epoch))?;
        if !self
            .committee
            .members
            .iter()
            .any(|m| m.node_id == r.challenger)
        {
            return Err(TxError::NotInCommittee(r.challenger));
        }
        if set.reports.contains_key(&r.challenger) {
            return Err(TxError::ChallengesAlreadyReported(r.challenger));
        }
        let duties = challenge::duties(set, &self.committee, &r.challenger);
        check_shape(report, duties.len())?;
        node.protocol_key
            .verify(&report.signing_bytes(), signature)
            .map_err(|_| {
                TxError::BadChallengeReport(
                    "the signature does not verify with the challenger's protocol key".into(),
                )
            })?;
        Ok(duties)
    }
}

/// What one report adds: per challenged node, the challenger's own counts, the failures.
struct ReportTally {
    challenged: BTreeMap<crate::types::NodeId, NodeTally>,
    own: NodeTally,
    failures: Vec<FailureRecord>,
}

fn tally(duties: &[challenge::Duty], r: &challenge::ChallengeReportV1) -> ReportTally {
    let reasons: BTreeMap<u32, &String> = r.notes.iter().map(|n| (n.position, &n.reason)).collect();
    let mut out = ReportTally {
        challenged: BTreeMap::new(),
        own: NodeTally::default(),
        failures: Vec::new(),
    };
    for (i, (duty, outcome)) in duties.iter().zip(&r.outcomes).enumerate() {
        let t = out.challenged.entry(duty.challenged).or_default();
        match outcome {
            ChallengeOutcome::NotIssued => continue,
            ChallengeOutcome::Passed => {
                t.passed += 1;
                out.own.passed += 1;
            }
            ChallengeOutcome::Failed => {
                t.failed += 1;
                out.own.failed += 1;
            }
            ChallengeOutcome::NoAnswer => {
                t.no_answer += 1;
                out.own.no_answer += 1;
            }
        }
        t.challenged += 1;
        out.own.issued += 1;
        if *outcome != ChallengeOutcome::Passed {
            out.failures.push(FailureRecord {
                challenger: r.challenger,
                challenged: duty.challenged,
                shard: duty.shard,
                blob_id: duty.blob_id,
                outcome: *outcome,
                reason: reasons.get(&(i as u32)).map(|s| (*s).clone()),
            });
        }
    }
    out
}

/// A report has one outcome per duty, and bounded notes on failed or unanswered duties only,
/// by strictly increasing position.
fn check_shape(report: &ChallengeReport, duties: usize) -> Result<(), TxError> {
    let r = report.v1();
    let bad = |m: String| Err(TxError::BadChallengeReport(m));
    if r.outcomes.len() != duties {
        return bad(format!("{} outcomes for {duties} duties", r.outcomes.len()));
    }
    if r.notes.len() > MAX_NOTES {
        return bad(format!("{} notes (at most {MAX_NOTES})", r.notes.len()));
    }
    let mut last = None;
    for n in &r.notes {
        if last.is_some_and(|l| n.position <= l) {
            return bad("notes must be by strictly increasing position".into());
        }
        last = Some(n.position);
        match r.outcomes.get(n.position as usize) {
            Some(ChallengeOutcome::Failed | ChallengeOutcome::NoAnswer) => {}
            Some(_) => {
                return bad(format!(
                    "note {} is on a duty that did not fail",
                    n.position
                ));
            }
            None => return bad(format!("note {} is past the last duty", n.position)),
        }
        if n.reason.len() > MAX_REASON_BYTES {
            return bad(format!("a reason is longer than {MAX_REASON_BYTES} bytes"));
        }
    }
    Ok(())
}
