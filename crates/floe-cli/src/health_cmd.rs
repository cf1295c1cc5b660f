//! `floe health`: every committee node's health, its event lag against the ledger (a number of
//! events), and the drift check: the blob-table digests the nodes took at the last epoch change
//! compared, naming the nodes whose tables differ from the majority's (by shards).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use floe_ledger::challenge::ChallengeSummary;
use serde::Serialize;
use serde_json::Value;

use crate::challenge_cmd::{NodeChallenges, node_challenges};
use crate::client_cmds::{HealthArgs, client, print_json, runtime};

/// One node's row.
struct Row {
    name: String,
    address: String,
    shards: usize,
    /// The health data, or why there is none.
    health: Result<Value, String>,
}

impl Row {
    fn persisted(&self) -> Option<u64> {
        self.health.as_ref().ok()?["eventProgress"]["persisted"].as_u64()
    }

    /// (epoch, event position, digest) of the node's blob-table digest.
    fn digest(&self) -> Option<(u64, u64, String)> {
        let d = &self.health.as_ref().ok()?["blobTableDigest"];
        Some((
            d["epoch"].as_u64()?,
            d["eventPosition"].as_u64()?,
            d["digest"].as_str()?.to_string(),
        ))
    }
}

/// The drift check's outcome.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Drift {
    epoch: u64,
    event_position: u64,
    digest: String,
    agreeing: Vec<String>,
    disagreeing: Vec<String>,
    /// Nodes without a digest of that epoch (down, restarted since, or behind).
    without_digest: Vec<String>,
}

/// Compare the digests of the latest epoch any node reports; the digest held by the most
/// shards is the reference.
fn drift(rows: &[Row]) -> Option<Drift> {
    let latest = rows.iter().filter_map(Row::digest).map(|d| d.0).max()?;
    let mut weight: BTreeMap<(u64, String), usize> = BTreeMap::new();
    for (r, d) in rows.iter().filter_map(|r| Some((r, r.digest()?))) {
        if d.0 == latest {
            *weight.entry((d.1, d.2)).or_default() += r.shards;
        }
    }
    let ((position, digest), _) = weight.into_iter().max_by_key(|(_, w)| *w)?;
    let mut out = Drift {
        epoch: latest,
        event_position: position,
        digest: digest.clone(),
        agreeing: Vec::new(),
        disagreeing: Vec::new(),
        without_digest: Vec::new(),
    };
    for r in rows {
        match r.digest() {
            Some((e, p, d)) if e == latest && p == position && d == digest => {
                out.agreeing.push(r.name.clone())
            }
            Some((e, _, _)) if e == latest => out.disagreeing.push(r.name.clone()),
            _ => out.without_digest.push(r.name.clone()),
        }
    }
    Some(out)
}

async fn fetch(
    pools: &floe_node_client::NodeHttp,
    member: &floe_ledger::api_types::MemberInfo,
    detail: bool,
) -> Result<Value, String> {
    let (base, http) = pools
        .route(&member.network_address, &member.pinned_keys())
        .map_err(|e| e.to_string())?;
    let url = format!(
        "{base}/v1/health{}",
        if detail { "?detailed=true" } else { "" }
    );
    let resp = http
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("unreachable: {e}"))?;
    let v: Value = resp.json().await.map_err(|e| e.to_string())?;
    match v.get("success") {
        Some(s) => Ok(s["data"].clone()),
        None => Err("unexpected answer".into()),
    }
}

pub fn health(a: HealthArgs) -> Result<()> {
    let client = client(&a.common, false)?;
    runtime()?.block_on(async move {
        let (system, committee) = client.committee().await?;
        let ledger_events = client.ledger().health().await?.events;
        let http = client.node_http();
        let mut rows = Vec::new();
        for m in &committee.members {
            rows.push(Row {
                name: m.info.name.clone(),
                address: m.info.network_address.clone(),
                shards: m.info.shards.len(),
                health: fetch(http, &m.info, a.detail).await,
            });
        }
        let drift = drift(&rows);
        let challenges = client.ledger().challenge_summary().await.ok();
        if a.common.json {
            return print_json(&json_rows(
                &rows,
                ledger_events,
                drift.as_ref(),
                challenges.as_ref(),
            ));
        }
        println!(
            "Epoch {} committee: {} nodes; the ledger has {ledger_events} events",
            system.epoch,
            rows.len()
        );
        print_rows(&rows, ledger_events);
        print_drift(drift.as_ref());
        match &challenges {
            Some(c) => crate::challenge_cmd::print_summary(c),
            None => println!("Storage challenges: the ledger did not answer."),
        }
        Ok(())
    })
}

/// `floe health --json`: one per committee node.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthRow<'a> {
    name: &'a str,
    address: &'a str,
    shards: usize,
    /// Events the ledger has that the node has not persisted; `None` without an answer.
    event_lag: Option<u64>,
    ledger_events: u64,
    /// `agrees`, `disagrees`, or `none` without a digest of the drift check's epoch.
    blob_table: &'static str,
    /// The node's own health data (`/v1/health`'s `data`), passed through as it answered.
    health: NodeHealth<'a>,
    /// Its tally in the latest challenged epoch; `None` when it has none or the ledger did
    /// not answer.
    challenges: Option<NodeChallenges<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum NodeHealth<'a> {
    Answered(&'a Value),
    Failed { error: &'a str },
}

fn json_rows<'a>(
    rows: &'a [Row],
    ledger_events: u64,
    drift: Option<&Drift>,
    challenges: Option<&'a ChallengeSummary>,
) -> Vec<HealthRow<'a>> {
    rows.iter()
        .map(|r| HealthRow {
            name: &r.name,
            address: &r.address,
            shards: r.shards,
            event_lag: r.persisted().map(|p| ledger_events.saturating_sub(p)),
            ledger_events,
            blob_table: match drift {
                Some(d) if d.agreeing.contains(&r.name) => "agrees",
                Some(d) if d.disagreeing.contains(&r.name) => "disagrees",
                _ => "none",
            },
            health: match &r.health {
                Ok(v) => NodeHealth::Answered(v),
                Err(e) => NodeHealth::Failed { error: e },
            },
            challenges: challenges.and_then(|c| node_challenges(c, &r.name)),
        })
        .collect()
}

fn print_rows(rows: &[Row], ledger_events: u64) {
    let mut down = 0;
    for r in rows {
        match (&r.health, r.persisted()) {
            (Ok(d), Some(persisted)) => println!(
                "  {:<12} {:<22} {:>5} shards  {:<10} epoch {}  event lag {} events",
                r.name,
                r.address,
                r.shards,
                d["nodeStatus"].as_str().unwrap_or("unknown"),
                d["epoch"],
                ledger_events.saturating_sub(persisted)
            ),
            (Ok(_), None) => {
                down += 1;
                println!(
                    "  {:<12} {:<22} {:>5} shards  answers without its event progress",
                    r.name, r.address, r.shards
                )
            }
            (Err(e), _) => {
                down += 1;
                println!(
                    "  {:<12} {:<22} {:>5} shards  DOWN: {e}",
                    r.name, r.address, r.shards
                )
            }
        }
    }
    if down > 0 {
        println!("{down} node(s) unreachable; reads and writes survive up to f faulty shards.");
    }
}

fn print_drift(drift: Option<&Drift>) {
    let Some(d) = drift else {
        println!(
            "Blob tables: no node has taken a digest yet (one is taken at each epoch change)."
        );
        return;
    };
    println!(
        "Blob tables at epoch {} (after {} events): {} node(s) agree on {}…",
        d.epoch,
        d.event_position,
        d.agreeing.len(),
        &d.digest[..16.min(d.digest.len())]
    );
    if !d.disagreeing.is_empty() {
        println!(
            "  DISAGREE (missed or misapplied ledger events): {}",
            d.disagreeing.join(", ")
        );
    }
    if !d.without_digest.is_empty() {
        println!(
            "  no digest for this epoch (down, restarted since, or behind): {}",
            d.without_digest.join(", ")
        );
    }
}
