//! Storage challenges, the challenger's side (run by `workers::challenger`): each epoch, once
//! the ledger has fixed the storage challenges (see `floe_ledger::challenge`), challenge every
//! shard this node does not hold on the ledger's samples, judge each signed answer against the
//! blob's metadata, and submit one signed report. The ledger's latest tallies are kept for
//! `/metrics` and health.
//!
//! Bounded: one round at a time, `challenge_concurrency` requests in flight, each limited by
//! `challenge_timeout_ms` and by the largest answer its sample count allows.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use floe_core::audit::{AuditRequest, AuditRequestV1, DEFAULT_AUDIT_SAMPLES};
use floe_core::{BlobId, BlobMetadata, Epoch, ShardIndex};
use floe_crypto::audit::{Judgement, judge_answer, max_answer_bytes};
use floe_ledger::NodeId;
use floe_ledger::TxKind;
use floe_ledger::api_types::MemberInfo;
use floe_ledger::challenge::{
    self, ChallengeOutcome, ChallengeReport, ChallengeReportV1, Duty, EpochChallenges, FailureNote,
    MAX_NOTES, MAX_REASON_BYTES,
};
use floe_ledger_client::AccountSession;
use floe_node_client::{NodeClient, NodeClientError};
use tokio::task::JoinSet;

use crate::node::{NodeError, StorageNode};
use crate::view::CommitteeView;

impl StorageNode {
    /// Prometheus lines: the challenges this node issued, and, per kept epoch, the ledger's
    /// tally of the challenges issued to it (pass rate included) and of those it owed.
    pub fn challenge_metrics(&self) -> String {
        use std::fmt::Write;
        let c = &self.challenges;
        let mut out = String::new();
        for (name, v) in [
            ("floe_node_challenges_issued_total", &c.issued),
            ("floe_node_challenges_issued_passed_total", &c.passed),
            ("floe_node_challenges_issued_failed_total", &c.failed),
            ("floe_node_challenges_issued_no_answer_total", &c.no_answer),
            ("floe_node_challenge_reports_accepted_total", &c.reports),
        ] {
            let v = v.load(Ordering::Relaxed);
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {v}");
        }
        let view = self.view();
        let me = view.my_index.map(|i| view.committee.members[i].node_id);
        let Some(summary) = c.summary() else {
            return out;
        };
        let rows: Vec<_> = summary
            .epochs
            .iter()
            .filter_map(|e| Some((e.epoch, e.nodes.iter().find(|n| Some(n.node_id) == me)?)))
            .collect();
        let gauges: [(&str, Gauge); 6] = [
            ("floe_node_challenged", |n| f64::from(n.tally.challenged)),
            ("floe_node_challenges_passed", |n| f64::from(n.tally.passed)),
            ("floe_node_challenges_failed", |n| f64::from(n.tally.failed)),
            ("floe_node_challenges_unanswered", |n| {
                f64::from(n.tally.no_answer)
            }),
            ("floe_node_challenge_pass_rate", |n| {
                n.tally.pass_rate().unwrap_or(f64::NAN)
            }),
            ("floe_node_challenges_not_issued", |n| {
                f64::from(n.not_issued)
            }),
        ];
        for (name, value) in gauges {
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (epoch, n) in &rows {
                let _ = writeln!(out, "{name}{{epoch=\"{epoch}\"}} {}", value(n));
            }
        }
        out
    }
}

/// How a gauge reads a node's tally.
type Gauge = fn(&challenge::NodeSummary) -> f64;

fn ledger_error(e: impl std::fmt::Display) -> NodeError {
    NodeError::Internal(format!("ledger: {e}"))
}

impl StorageNode {
    /// One poll: refresh the tallies; if this node owes challenges in the current epoch and
    /// has not reported, run them and submit the signed report.
    pub async fn challenge_round(&self) -> Result<(), NodeError> {
        let summary = self
            .ledger
            .challenge_summary()
            .await
            .map_err(ledger_error)?;
        *self
            .challenges
            .summary
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(summary.clone());
        if !self.config.limits.challenges_enabled {
            return Ok(());
        }
        let view = self.view();
        let Some(me) = view.my_index.map(|i| view.committee.members[i].node_id) else {
            return Ok(());
        };
        let due = summary.epochs.iter().any(|e| {
            e.epoch == summary.current_epoch
                && e.epoch == view.epoch
                && !e.closed
                && e.nodes
                    .iter()
                    .any(|n| n.node_id == me && !n.tally.reported && n.tally.duties > 0)
        });
        if !due {
            return Ok(());
        }
        let Some(set) = self
            .ledger
            .challenges(view.epoch)
            .await
            .map_err(ledger_error)?
        else {
            return Ok(());
        };
        let report = self.run_challenges(&view, &set, me).await;
        self.submit_report(report).await
    }

    /// Issue every duty of `me` in `set` and collect the outcomes in duty order.
    async fn run_challenges(
        &self,
        view: &CommitteeView,
        set: &EpochChallenges,
        me: NodeId,
    ) -> ChallengeReport {
        let duties = challenge::duties(set, &view.committee.to_committee(), &me);
        tracing::info!(
            epoch = set.epoch,
            duties = duties.len(),
            "issuing storage challenges"
        );
        let limit = self.config.limits.challenge_concurrency.max(1);
        let timeout = Duration::from_millis(self.config.limits.challenge_timeout_ms);
        let mut outcomes = vec![(ChallengeOutcome::NotIssued, None); duties.len()];
        let mut set_tasks = JoinSet::new();
        let mut next = 0;
        let mut done = 0;
        // Each sampled blob's metadata, read from the store once per round (a blob is sampled
        // on many shards: 1,800 duties over 2 blobs read it 1,800 times before).
        let mut metadata = HashMap::new();
        while done < duties.len() {
            while next < duties.len() && set_tasks.len() < limit {
                let task = self.prepare(view, duties[next], timeout, &mut metadata);
                let i = next;
                set_tasks.spawn(async move { (i, issue(task).await) });
                next += 1;
            }
            match set_tasks.join_next().await {
                Some(Ok((i, outcome))) => outcomes[i] = outcome,
                Some(Err(e)) => tracing::warn!(error = %e, "a challenge task failed"),
                None => break,
            }
            done += 1;
        }
        let mut notes = Vec::new();
        for (i, (outcome, reason)) in outcomes.iter().enumerate() {
            let counter = match outcome {
                ChallengeOutcome::NotIssued => continue,
                ChallengeOutcome::Passed => &self.challenges.passed,
                ChallengeOutcome::Failed => &self.challenges.failed,
                ChallengeOutcome::NoAnswer => &self.challenges.no_answer,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            self.challenges.issued.fetch_add(1, Ordering::Relaxed);
            if let (Some(reason), true) = (reason, notes.len() < MAX_NOTES) {
                notes.push(FailureNote {
                    position: i as u32,
                    reason: truncate(reason, MAX_REASON_BYTES),
                });
            }
        }
        ChallengeReport::V1(ChallengeReportV1 {
            epoch: set.epoch,
            challenger: me,
            outcomes: outcomes.into_iter().map(|(o, _)| o).collect(),
            notes,
        })
    }

    /// What one challenge needs, taken from the node's store and view (the metadata the
    /// answer is checked against; without it the challenge cannot be issued).
    fn prepare(
        &self,
        view: &CommitteeView,
        duty: Duty,
        timeout: Duration,
        cache: &mut HashMap<BlobId, Option<Arc<BlobMetadata>>>,
    ) -> Option<Prepared> {
        let metadata = cache
            .entry(duty.blob_id)
            .or_insert_with(|| {
                let m = self.store.get_metadata(&duty.blob_id).ok().flatten();
                m.map(Arc::new)
            })
            .clone()?;
        let member = view
            .committee
            .members
            .iter()
            .find(|m| m.node_id == duty.challenged)?
            .clone();
        let symbol_size = metadata.symbol_size(&view.config).ok()?;
        let request = AuditRequestV1 {
            blob_id: duty.blob_id,
            shard: ShardIndex(duty.shard),
            nonce: rand::random(),
            samples: DEFAULT_AUDIT_SAMPLES,
        };
        Some(Prepared {
            client: NodeClient::for_node(
                &self.http,
                &member.network_address,
                &member.pinned_keys(),
                timeout,
            ),
            max_bytes: max_answer_bytes(symbol_size, request.samples, view.n()),
            member,
            request,
            epoch: view.epoch,
            config: view.config,
            metadata,
            timeout,
        })
    }

    /// Sign and submit `report`; a report the ledger already has, or an epoch already over,
    /// ends the round too.
    async fn submit_report(&self, report: ChallengeReport) -> Result<(), NodeError> {
        let signature = self.keys.protocol.sign(&report.signing_bytes());
        let r = report.v1();
        let (epoch, duties) = (r.epoch, r.outcomes.len());
        let session = AccountSession::new(self.keys.account.clone(), self.ledger.clone());
        match session
            .submit(TxKind::SubmitChallengeReport { report, signature })
            .await
        {
            Ok(_) => {
                self.challenges.reports.fetch_add(1, Ordering::Relaxed);
                tracing::info!(epoch, duties, "storage challenge report accepted");
                Ok(())
            }
            Err(floe_ledger_client::LedgerClientError::Api { reason, .. })
                if matches!(
                    reason.as_str(),
                    "CHALLENGES_ALREADY_REPORTED" | "NO_CHALLENGES" | "WRONG_EPOCH"
                ) =>
            {
                tracing::info!(epoch, reason, "storage challenge report not needed");
                Ok(())
            }
            Err(e) => Err(ledger_error(e)),
        }
    }
}

/// One challenge, ready to send.
struct Prepared {
    client: NodeClient,
    member: MemberInfo,
    request: AuditRequestV1,
    max_bytes: usize,
    epoch: Epoch,
    config: floe_core::EncodingConfig,
    metadata: Arc<BlobMetadata>,
    timeout: Duration,
}

/// Send one challenge and judge the answer: a signed answer whose samples verify passes;
/// wrong data, a bad proof, an answer for another request, a refusal or an error status
/// fails; silence until the time-out is no answer.
async fn issue(task: Option<Prepared>) -> (ChallengeOutcome, Option<String>) {
    let Some(t) = task else {
        return (ChallengeOutcome::NotIssued, None);
    };
    let answer = t
        .client
        .audit(&AuditRequest::V1(t.request), t.timeout, t.max_bytes)
        .await;
    match answer {
        Ok(signed) => match judge_answer(
            &signed,
            &t.member.protocol_key,
            &t.request,
            t.epoch,
            &t.config,
            &t.metadata,
        ) {
            Judgement::Proved => (ChallengeOutcome::Passed, None),
            Judgement::Failed { reason, .. } => (ChallengeOutcome::Failed, Some(reason)),
        },
        Err(NodeClientError::Api { status, reason, .. }) => (
            ChallengeOutcome::Failed,
            Some(format!("refused: HTTP {status} {reason}")),
        ),
        Err(NodeClientError::Decode { reason, .. }) => (
            ChallengeOutcome::Failed,
            Some(format!("malformed answer: {reason}")),
        ),
        Err(NodeClientError::Unreachable { reason, .. }) => (
            ChallengeOutcome::NoAnswer,
            Some(format!("no answer: {reason}")),
        ),
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
