//! `floe challenges`: the storage challenges the ledger recorded, per node and epoch, with the
//! failures and the challengers' signatures checked here; and the pass-rate lines that
//! `floe info` and `floe health` print.

use anyhow::{Context, Result};
use floe_ledger::api_types::SystemInfo;
use floe_ledger::challenge::{ChallengeSummary, EpochChallenges, EpochSummary, NodeSummary};
use serde::Serialize;

use crate::cli_config::CommonArgs;
use crate::client_cmds::{client, print_json, runtime};

#[derive(clap::Args)]
pub struct ChallengesArgs {
    /// The epoch to show in detail (default: the latest with challenges).
    #[arg(long)]
    pub epoch: Option<u32>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// A node's line: its pass rate as a challenged node, and what it owed as a challenger.
pub fn node_line(n: &floe_ledger::challenge::NodeSummary) -> String {
    let t = &n.tally;
    let rate = t.pass_rate().map_or("not challenged yet".to_string(), |r| {
        format!("{:.1} % passed", r * 100.0)
    });
    format!(
        "{rate} ({} of {} challenges; {} failed, {} unanswered); issued {} of {} owed{}",
        t.passed,
        t.challenged,
        t.failed,
        t.no_answer,
        t.issued,
        t.duties,
        if t.reported { "" } else { ", no report yet" }
    )
}

/// `floe info`/`floe health` lines for the latest epoch with challenges.
pub fn print_summary(summary: &ChallengeSummary) {
    let Some(e) = summary.latest() else {
        println!(
            "Storage challenges: none yet (they start once an epoch change is done and blobs are certified)."
        );
        return;
    };
    let (passed, challenged) = e.nodes.iter().fold((0, 0), |(p, c), n| {
        (p + n.tally.passed, c + n.tally.challenged)
    });
    let reported = e.nodes.iter().filter(|n| n.tally.reported).count();
    println!(
        "Storage challenges, epoch {}{}: {passed} of {challenged} passed; {reported} of {} nodes reported (samples from {} blobs)",
        e.epoch,
        if e.closed { " (closed)" } else { "" },
        e.nodes.len(),
        e.eligible_blobs
    );
    for n in &e.nodes {
        println!("  {:<12} {}", n.name, node_line(n));
    }
}

/// One node's tally in an epoch, for `floe health --json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeChallenges<'a> {
    pub epoch: u32,
    #[serde(flatten)]
    pub node: &'a NodeSummary,
    /// Passed of challenged; `None` when none was challenged.
    pub pass_rate: Option<f64>,
}

/// One node's tally in the latest epoch, if it has one.
pub fn node_challenges<'a>(
    summary: &'a ChallengeSummary,
    name: &str,
) -> Option<NodeChallenges<'a>> {
    let e = summary.latest()?;
    let node = e.nodes.iter().find(|n| n.name == name)?;
    Some(NodeChallenges {
        epoch: e.epoch,
        node,
        pass_rate: node.tally.pass_rate(),
    })
}

/// `floe challenges --json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase", untagged)]
enum ChallengesJson<'a> {
    /// No epoch has challenges yet: the (empty) summary, `epoch` null.
    Summary {
        summary: &'a ChallengeSummary,
        epoch: Option<u32>,
    },
    /// One epoch in detail: the ledger's record, its summary, and each report's signature
    /// check as `[name, valid]`.
    Epoch {
        #[serde(flatten)]
        set: &'a EpochChallenges,
        summary: Option<&'a EpochSummary>,
        signatures: &'a [(String, bool)],
    },
}

pub fn run(a: ChallengesArgs) -> Result<()> {
    let client = client(&a.common, false)?;
    runtime()?.block_on(async move {
        let summary = client.ledger().challenge_summary().await?;
        let epoch = match a.epoch.or_else(|| summary.latest().map(|e| e.epoch)) {
            Some(e) => e,
            None => {
                if a.common.json {
                    return print_json(&ChallengesJson::Summary {
                        summary: &summary,
                        epoch: None,
                    });
                }
                print_summary(&summary);
                return Ok(());
            }
        };
        let set = client.ledger().challenges(epoch).await?.with_context(|| {
            format!(
                "the ledger keeps no challenges for epoch {epoch} (kept: {:?})",
                summary.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>()
            )
        })?;
        let system = client.system().await?;
        let checks = check_signatures(&set, &system);
        if a.common.json {
            return print_json(&ChallengesJson::Epoch {
                set: &set,
                summary: summary.epochs.iter().find(|e| e.epoch == epoch),
                signatures: &checks,
            });
        }
        print_detail(&summary, &set, &system, &checks);
        Ok(())
    })
}

/// The members of the committees the ledger shows (current, previous, next).
fn members(system: &SystemInfo) -> impl Iterator<Item = &floe_ledger::api_types::MemberInfo> {
    std::iter::once(&system.committee)
        .chain(system.previous_committee.as_ref())
        .chain(system.next_committee.as_ref())
        .flat_map(|c| c.members.iter())
}

/// Each accepted report's signature, checked here against the challenger's protocol key:
/// (challenger name, verified).
fn check_signatures(set: &EpochChallenges, system: &SystemInfo) -> Vec<(String, bool)> {
    set.reports
        .iter()
        .map(|(id, r)| {
            let node = members(system).find(|n| &n.node_id == id);
            let ok = node.is_some_and(|n| {
                n.protocol_key
                    .verify(&r.report.signing_bytes(), &r.signature)
                    .is_ok()
            });
            (node.map_or_else(|| id.to_string(), |n| n.name.clone()), ok)
        })
        .collect()
}

fn print_detail(
    summary: &ChallengeSummary,
    set: &EpochChallenges,
    system: &SystemInfo,
    checks: &[(String, bool)],
) {
    let name = |id: &floe_ledger::NodeId| {
        members(system)
            .find(|n| &n.node_id == id)
            .map_or_else(|| id.to_string(), |n| n.name.clone())
    };
    println!(
        "Epoch {} challenges{}: seed {}…, {} samples per shard from {} certified blobs, {} shard(s) skipped (moved at the epoch change)",
        set.epoch,
        if set.closed { " (closed)" } else { " (open)" },
        &hex::encode(set.seed)[..16],
        floe_ledger::challenge::SAMPLES_PER_SHARD,
        set.eligible_blobs,
        set.skipped_shards.len()
    );
    if let Some(e) = summary.epochs.iter().find(|e| e.epoch == set.epoch) {
        for n in &e.nodes {
            println!("  {:<12} {}", n.name, node_line(n));
        }
    }
    let bad: Vec<&String> = checks.iter().filter(|c| !c.1).map(|c| &c.0).collect();
    println!(
        "Reports: {} accepted; signatures verified here: {} of {}{}",
        set.reports.len(),
        checks.len() - bad.len(),
        checks.len(),
        if bad.is_empty() {
            String::new()
        } else {
            format!(" (NOT verified: {bad:?})")
        }
    );
    if set.failures.is_empty() {
        println!("Failures: none.");
        return;
    }
    println!("Failures ({}):", set.failures.len());
    for f in set.failures.iter().take(50) {
        println!(
            "  {} challenged {} on shard {} for blob {}: {:?}{}",
            name(&f.challenger),
            name(&f.challenged),
            f.shard,
            f.blob_id,
            f.outcome,
            f.reason
                .as_ref()
                .map_or(String::new(), |r| format!(": {r}"))
        );
    }
    if set.failures.len() > 50 {
        println!(
            "  … and {} more (--json lists all)",
            set.failures.len() - 50
        );
    }
}

/// What the latest challenged epoch showed about one blob: the shards it was sampled on and
/// the outcomes the challengers reported for it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobChallenges {
    pub epoch: u32,
    pub sampled_shards: Vec<u16>,
    pub passed: u32,
    pub failed: u32,
    pub no_answer: u32,
    /// Challenged nodes that failed or did not answer for this blob.
    pub failing_nodes: Vec<String>,
}

/// The challenge outcomes for `blob_id` in the latest epoch with reports, if the ledger keeps
/// it and shows that epoch's committee.
pub async fn blob_challenges(
    client: &floe_client::Client,
    system: &SystemInfo,
    blob_id: &floe_core::BlobId,
) -> Option<BlobChallenges> {
    let c = client
        .last_blob_challenges(system, blob_id)
        .await
        .ok()
        .flatten()?;
    Some(BlobChallenges {
        epoch: c.outcomes.epoch,
        sampled_shards: c.outcomes.sampled_shards,
        passed: c.outcomes.passed,
        failed: c.outcomes.failed,
        no_answer: c.outcomes.no_answer,
        failing_nodes: c.failing_names,
    })
}

/// `floe blob-status`'s line on the blob's last storage challenges.
pub fn print_blob_challenges(c: Option<&BlobChallenges>) {
    match c {
        None => println!("Storage challenges: none recorded for this blob's network yet."),
        Some(c) if c.sampled_shards.is_empty() => println!(
            "Storage challenges (epoch {}): this blob was not sampled.",
            c.epoch
        ),
        Some(c) => println!(
            "Storage challenges (epoch {}): sampled on shards {:?}; {} passed, {} failed, {} unanswered{}.",
            c.epoch,
            c.sampled_shards,
            c.passed,
            c.failed,
            c.no_answer,
            if c.failing_nodes.is_empty() {
                String::new()
            } else {
                format!(" (failing: {})", c.failing_nodes.join(", "))
            }
        ),
    }
}
