//! Storage challenges in the state machine: which blobs are sampled, which reports are
//! accepted, how they are tallied, and that the epoch's end closes them.

mod common;

use common::{Net, seed};
use floe_core::BlobId;
use floe_ledger::challenge::{
    ChallengeOutcome, ChallengeReport, ChallengeReportV1, FailureNote, SAMPLES_PER_SHARD, duties,
};
use floe_ledger::{AccountKey, EventKind, LedgerState, NodeId, TxError, TxKind};

fn alice() -> AccountKey {
    AccountKey::from_seed(&seed("alice", 0))
}

/// Register and certify `data` until `end`.
fn store(net: &mut Net, data: &[u8], end: u32) -> BlobId {
    let (blob_id, object) = net.register(&alice(), data, end, false).unwrap();
    net.certify(&alice(), blob_id, object, false).unwrap();
    blob_id
}

fn member(net: &Net, i: usize) -> NodeId {
    net.state.committee().members[i].node_id
}

/// Member `i`'s report with `outcome` for every duty, signed with its key (or `signer`'s).
fn report(
    net: &Net,
    i: usize,
    outcome: ChallengeOutcome,
    edit: impl FnOnce(&mut ChallengeReportV1),
    signer: usize,
) -> TxKind {
    let epoch = net.state.epoch();
    let set = net.state.challenges(epoch).unwrap();
    let n = duties(set, net.state.committee(), &member(net, i)).len();
    let mut r = ChallengeReportV1 {
        epoch,
        challenger: member(net, i),
        outcomes: vec![outcome; n],
        notes: Vec::new(),
    };
    edit(&mut r);
    let report = ChallengeReport::V1(r);
    let signature = net.node_keys[signer].sign(&report.signing_bytes());
    TxKind::SubmitChallengeReport { report, signature }
}

fn submit(net: &mut Net, i: usize, kind: TxKind) -> Result<(), TxError> {
    let op = net.operators[i].clone();
    net.submit(&op, kind).map(|_| ())
}

/// The blobs stored for the challenges: before epoch 1 and during it.
struct Blobs {
    a: BlobId,
    b: BlobId,
    /// Ends at epoch 1, so never sampled.
    short: BlobId,
    /// Certified during epoch 1, so sampled from epoch 2 on.
    late: BlobId,
}

/// Sampling, reports, their refusals, the epoch's close and a replay, as named steps on one
/// ledger.
#[test]
fn challenges_sample_blobs_certified_before_the_epoch_and_tally_signed_reports() {
    let mut net = Net::new(4, 10);
    let blobs = store_blobs_before_and_during_epoch_1(&mut net);
    epoch_1_samples_only_blobs_certified_before_it_that_outlive_it(&net, &blobs);
    a_signed_report_is_tallied_with_its_failure_and_signature(&mut net);
    bad_reports_are_rejected_and_leave_the_state_unchanged(&mut net);
    the_next_epoch_closes_epoch_1_and_unreported_duties_count_as_not_issued(&mut net);
    replaying_the_log_gives_the_same_state_challenges_included(&net);
}

/// Stores `a`, `b` and `short` (which ends at epoch 1) before epoch 1, and `late` during it.
fn store_blobs_before_and_during_epoch_1(net: &mut Net) -> Blobs {
    let a = store(net, b"first blob", 10);
    let b = store(net, b"second blob", 10);
    let short = store(net, b"lives until epoch 1", 1);
    net.tick_to_epoch(1);
    // Certified in epoch 1: sampled from epoch 2 on.
    let late = store(net, b"certified during epoch 1", 10);
    Blobs { a, b, short, late }
}

/// Epoch 1 samples only `a` and `b`: `short` ends at epoch 1 and `late` came too late.
fn epoch_1_samples_only_blobs_certified_before_it_that_outlive_it(net: &Net, blobs: &Blobs) {
    let Blobs { a, b, short, late } = blobs;
    let started: Vec<_> = net
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ChallengesStarted {
                epoch,
                eligible_blobs,
                ..
            } => Some((epoch, eligible_blobs)),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec![(1, 2)], "a and b; `short` ends at epoch 1");
    let set = net.state.challenges(1).unwrap();
    assert_eq!(set.samples.len(), 10 * SAMPLES_PER_SHARD);
    assert!(set.samples.iter().all(|s| s == a || s == b));
    assert!(!set.samples.contains(short) && !set.samples.contains(late));
    assert!(set.skipped_shards.is_empty(), "no shard moved");
}

/// Member 0's report (first duty failed with a reason, the rest passed) is tallied, its
/// failure recorded, and its signature verifiable.
fn a_signed_report_is_tallied_with_its_failure_and_signature(net: &mut Net) {
    let set = net.state.challenges(1).unwrap();
    let first = duties(set, net.state.committee(), &member(net, 0))[0];
    let owed = duties(set, net.state.committee(), &member(net, 0)).len();
    assert_eq!(
        owed,
        (10 - net.state.committee().members[0].shards.len()) * 2
    );
    let kind = report(
        net,
        0,
        ChallengeOutcome::Passed,
        |r| {
            r.outcomes[0] = ChallengeOutcome::Failed;
            r.notes.push(FailureNote {
                position: 0,
                reason: "wrong data".into(),
            });
        },
        0,
    );
    submit(net, 0, kind).unwrap();
    let set = net.state.challenges(1).unwrap();
    let t0 = &set.tallies[&member(net, 0)];
    assert_eq!(
        (t0.issued, t0.duties, t0.reported),
        (owed as u32, owed as u32, true)
    );
    assert_eq!(set.failures.len(), 1);
    assert_eq!(set.failures[0].challenged, first.challenged);
    assert_eq!(set.failures[0].shard, first.shard);
    assert_eq!(set.failures[0].reason.as_deref(), Some("wrong data"));
    let victim = &set.tallies[&first.challenged];
    assert_eq!(victim.failed, 1);
    let challenged: u32 = set.tallies.values().map(|t| t.challenged).sum();
    assert_eq!(challenged, owed as u32);
    // The accepted report's signature verifies for anyone with the committee's keys.
    let accepted = &set.reports[&member(net, 0)];
    let key = net.state.nodes()[&member(net, 0)].protocol_key;
    key.verify(&accepted.report.signing_bytes(), &accepted.signature)
        .unwrap();
}

/// Badly signed, malformed, misdirected, repeated and mistimed reports are rejected, each
/// with its code, and the state is unchanged.
fn bad_reports_are_rejected_and_leave_the_state_unchanged(net: &mut Net) {
    let before = net.state.state_hash();
    for (what, sender, kind, code) in bad_reports(net) {
        let e = submit(net, sender, kind).unwrap_err();
        assert_eq!(e.code(), code, "{what}: {e}");
    }
    assert_eq!(net.state.state_hash(), before);
}

/// The bad reports of [`bad_reports_are_rejected_and_leave_the_state_unchanged`]: what is
/// wrong, the sending member, the transaction, and the expected error code.
fn bad_reports(net: &Net) -> Vec<(&'static str, usize, TxKind, &'static str)> {
    vec![
        (
            "signed with another node's key",
            1,
            report(net, 1, ChallengeOutcome::Passed, |_| {}, 2),
            "BAD_CHALLENGE_REPORT",
        ),
        (
            "one outcome short",
            1,
            report(
                net,
                1,
                ChallengeOutcome::Passed,
                |r| {
                    r.outcomes.pop();
                },
                1,
            ),
            "BAD_CHALLENGE_REPORT",
        ),
        (
            "a note on a passed duty",
            1,
            report(
                net,
                1,
                ChallengeOutcome::Passed,
                |r| {
                    r.notes.push(FailureNote {
                        position: 1,
                        reason: "x".into(),
                    })
                },
                1,
            ),
            "BAD_CHALLENGE_REPORT",
        ),
        (
            "sent by another operator",
            2,
            report(net, 1, ChallengeOutcome::Passed, |_| {}, 1),
            "NOT_OWNER",
        ),
        (
            "a second report",
            0,
            report(net, 0, ChallengeOutcome::Passed, |_| {}, 0),
            "CHALLENGES_ALREADY_REPORTED",
        ),
        (
            "for another epoch",
            1,
            report(net, 1, ChallengeOutcome::Passed, |r| r.epoch = 2, 1),
            "WRONG_EPOCH",
        ),
    ]
}

/// The next epoch closes epoch 1: a late report is refused, unreported duties count as not
/// issued, and epoch 2 samples the late blob too.
fn the_next_epoch_closes_epoch_1_and_unreported_duties_count_as_not_issued(net: &mut Net) {
    // Member 1 reports nothing issued; members 2 and 3 never report. The next epoch closes
    // epoch 1: late reports are refused, and unreported duties count as not issued.
    let kind = report(net, 1, ChallengeOutcome::NotIssued, |_| {}, 1);
    submit(net, 1, kind).unwrap();
    let late_report = report(net, 2, ChallengeOutcome::Passed, |_| {}, 2);
    net.tick_to_epoch(2);
    assert_eq!(
        submit(net, 2, late_report).unwrap_err().code(),
        "WRONG_EPOCH"
    );
    let closed = net.state.challenges(1).unwrap();
    assert!(closed.closed);
    for i in 1..4 {
        let t = &closed.tallies[&member(net, i)];
        assert_eq!(t.issued, 0);
        assert_eq!(t.not_issued(), t.duties, "member {i}");
    }
    let summary = net.state.challenge_summary();
    assert_eq!(
        summary.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // Epoch 2 samples the late blob too.
    assert_eq!(net.state.challenges(2).unwrap().eligible_blobs, 3);
}

/// Replaying the log from genesis gives the same state, challenges included.
fn replaying_the_log_gives_the_same_state_challenges_included(net: &Net) {
    let mut replay = LedgerState::genesis(&common::genesis_config(4, 10, 1 << 40).0).unwrap();
    for entry in &net.log {
        replay.apply(entry).unwrap();
    }
    assert_eq!(replay.state_hash(), net.state.state_hash());
}

#[test]
fn no_certified_blobs_means_no_duties_and_reports_are_refused() {
    let mut net = Net::new(4, 10);
    net.tick_to_epoch(1);
    let set = net.state.challenges(1).unwrap();
    assert_eq!(set.eligible_blobs, 0);
    assert!(set.samples.is_empty());
    assert!(set.tallies.values().all(|t| t.duties == 0));
    let kind = report(
        &net,
        0,
        ChallengeOutcome::Passed,
        |r| r.outcomes.push(ChallengeOutcome::Passed),
        0,
    );
    assert_eq!(
        submit(&mut net, 0, kind).unwrap_err().code(),
        "BAD_CHALLENGE_REPORT"
    );
}
