//! The sampler: every few seconds, while somebody looks at the dashboard, it reads the ledger
//! (system, health, new events), every node's health and metrics, and the daemon's metrics,
//! and keeps a bounded history for the charts.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use floe_ledger::api_types::{CommitteeInfo, SystemInfo};
use floe_ledger::event::{Event, EventKind};
use floe_ledger::types::EpochState;
use futures_util::StreamExt;
use serde_json::Value;

use crate::fetch::{get_json, get_text};
use crate::model::{
    ChangeProgress, EpochView, EventView, Field, LedgerView, NodeView, Series, Snapshot,
    StorageView,
};
use crate::{Dashboard, prom};

/// Points kept for the charts (at the default 2 s interval, six minutes).
pub const HISTORY: usize = 180;
/// Recent ledger events kept.
pub const RECENT_EVENTS: usize = 30;
/// Deadline of each health or metrics request: a node silent this long is shown down (a
/// frozen node shows within about two sample intervals and this).
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Largest health answer and metrics text read.
const MAX_HEALTH_BYTES: usize = 256 << 10;
const MAX_METRICS_BYTES: usize = 2 << 20;
/// Nodes probed at once.
const PROBE_CONCURRENCY: usize = 32;

/// Counter values at one sample, to difference against the next.
#[derive(Clone, Copy, Default)]
struct Raw {
    at: Option<Instant>,
    daemon_requests: Option<f64>,
    store: Option<(f64, f64)>,
    read: Option<(f64, f64)>,
}

#[derive(Default)]
pub struct Sampler {
    history: VecDeque<(u64, [Option<f64>; 4])>,
    last: Raw,
    /// Last request counter of each node, by address (so a node going away is no dip).
    node_requests: HashMap<String, f64>,
    event_cursor: Option<u64>,
    events: VecDeque<EventView>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Sampler {
    /// Take one sample and return the snapshot it gives.
    pub async fn sample(&mut self, d: &Dashboard) -> Snapshot {
        let ledger = d.client.ledger();
        let system = tokio::time::timeout(PROBE_TIMEOUT * 2, ledger.system());
        let (system, ledgers, daemon_metrics) =
            tokio::join!(system, ledger_views(d), d.options.metrics.text(&d.http));
        let system = match system {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the ledger did not answer within 3 s".to_string()),
        };
        let ledger_events = ledgers.first().and_then(|l| l.events);
        let (mut nodes, node_metrics) = match &system {
            Ok(s) => probe_nodes(d, s, ledger_events).await,
            Err(_) => (Vec::new(), Vec::new()),
        };
        if let Ok(Ok(summary)) =
            tokio::time::timeout(PROBE_TIMEOUT, ledger.challenge_summary()).await
        {
            attach_challenges(&mut nodes, &summary);
        }
        if let Some(total) = ledger_events {
            self.follow_events(d, total).await;
        }
        self.record(daemon_metrics.as_deref(), &node_metrics);
        let system = system.as_ref();
        Snapshot {
            taken_ms: now_ms(),
            ledger_error: system.err().cloned(),
            epoch: system.ok().map(epoch_view),
            storage: system.ok().map(|s| StorageView {
                used: s.used_capacity,
                total: s.total_capacity,
            }),
            nodes,
            ledgers,
            events: self.events.iter().cloned().collect(),
            series: self.series(),
            uploads: d.options.upload.is_some(),
        }
    }

    /// Read the events after the cursor (the last few on the first call), newest kept.
    async fn follow_events(&mut self, d: &Dashboard, total: u64) {
        let start = total.saturating_sub(RECENT_EVENTS as u64);
        let cursor = match self.event_cursor {
            // Far behind (or the ledger restarted from scratch): jump to the last few.
            Some(c) if c <= total && total - c <= 200 => c,
            _ => start,
        };
        if cursor >= total {
            self.event_cursor = Some(cursor);
            return;
        }
        let page = tokio::time::timeout(
            PROBE_TIMEOUT,
            d.client.ledger().events(cursor, 200, Duration::ZERO),
        )
        .await;
        let Ok(Ok(page)) = page else { return };
        for e in &page.events {
            self.events.push_front(event_view(e));
        }
        self.events.truncate(RECENT_EVENTS);
        self.event_cursor = Some(page.next_cursor.max(cursor));
    }

    /// Difference the counters against the previous sample and keep the point.
    fn record(&mut self, daemon: Option<&str>, nodes: &[(String, f64)]) {
        let now = Instant::now();
        let hist = |text: &str, name: &str| {
            let sum = prom::sum_all(text, &format!("{name}_sum"))?;
            let count = prom::sum_all(text, &format!("{name}_count"))?;
            Some((sum, count))
        };
        let raw = Raw {
            at: Some(now),
            daemon_requests: daemon.and_then(|t| prom::sum_all(t, "floe_daemon_requests_total")),
            store: daemon.and_then(|t| hist(t, "floe_daemon_store_duration_seconds")),
            read: daemon.and_then(|t| hist(t, "floe_daemon_read_duration_seconds")),
        };
        let mut node_delta = 0.0;
        let mut any_node = false;
        let mut fresh = HashMap::with_capacity(nodes.len());
        for (address, n) in nodes {
            if let Some(before) = self.node_requests.get(address) {
                node_delta += (n - before).max(0.0);
                any_node = true;
            }
            fresh.insert(address.clone(), *n);
        }
        self.node_requests = fresh;
        let point = match self.last.at {
            Some(before) => {
                let secs = now.duration_since(before).as_secs_f64().max(0.001);
                let rate = |a: Option<f64>, b: Option<f64>| Some(((a? - b?) / secs).max(0.0));
                [
                    rate(raw.daemon_requests, self.last.daemon_requests),
                    any_node.then_some(node_delta / secs),
                    mean_ms(raw.store, self.last.store),
                    mean_ms(raw.read, self.last.read),
                ]
            }
            None => [None; 4],
        };
        self.last = raw;
        self.history.push_back((now_ms(), point));
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }

    fn series(&self) -> Series {
        let column = |i: usize| self.history.iter().map(|(_, p)| p[i]).collect();
        Series {
            t_ms: self.history.iter().map(|(t, _)| *t).collect(),
            daemon_ops: column(0),
            node_ops: column(1),
            store_ms: column(2),
            read_ms: column(3),
        }
    }
}

/// Mean latency in ms of the observations between two (sum, count) readings.
fn mean_ms(now: Option<(f64, f64)>, before: Option<(f64, f64)>) -> Option<f64> {
    let ((s1, c1), (s0, c0)) = (now?, before.unwrap_or_default());
    (c1 > c0).then(|| (s1 - s0) / (c1 - c0) * 1000.0)
}

fn epoch_view(s: &SystemInfo) -> EpochView {
    let n = u32::from(s.n_shards);
    let (state, state_text, change) = match &s.epoch_state {
        EpochState::Done => ("done", "the committee is in place", None),
        EpochState::NextParamsSelected => (
            "nextParamsSelected",
            "next committee fixed; membership changes now take effect an epoch later",
            None,
        ),
        EpochState::Syncing { reported, weight } => (
            "syncing",
            "epoch change: nodes are syncing the shards they gained",
            Some(ChangeProgress {
                reported_shards: *weight,
                needed_shards: n - (n.saturating_sub(1) / 3),
                reported_nodes: reported.len(),
            }),
        ),
    };
    EpochView {
        epoch: s.epoch,
        state,
        state_text,
        start_ms: s.current_epoch_start_ms,
        end_ms: s.next_epoch_start_ms,
        duration_ms: s.epoch_duration_ms,
        n_shards: s.n_shards,
        change,
    }
}

pub fn event_view(e: &Event) -> EventView {
    let (kind, summary) = describe(&e.kind);
    EventView {
        index: e.index,
        epoch: e.epoch,
        kind: kind.to_string(),
        summary,
        blob_id: e.kind.blob_id().map(|b| b.to_string()),
        tx_digest: e.tx_digest.to_string(),
    }
}

/// Each node's tally in the newest epoch with a report (else the newest epoch).
fn attach_challenges(nodes: &mut [NodeView], summary: &floe_ledger::challenge::ChallengeSummary) {
    let Some(e) = summary.latest() else {
        return;
    };
    for view in nodes {
        let Some(n) = e
            .nodes
            .iter()
            .find(|n| n.node_id.to_string() == view.node_id)
        else {
            continue;
        };
        let t = &n.tally;
        view.challenges = Some(crate::model::ChallengeCell {
            epoch: e.epoch,
            challenged: t.challenged,
            passed: t.passed,
            failed: t.failed,
            no_answer: t.no_answer,
            duties: t.duties,
            not_issued: n.not_issued,
            reported: t.reported,
        });
    }
}

/// The event's name and a one-line summary.
fn describe(kind: &EventKind) -> (&'static str, String) {
    match kind {
        EventKind::StorageReserved {
            storage_size,
            end_epoch,
            ..
        } => (
            "StorageReserved",
            format!(
                "{} until epoch {end_epoch}",
                crate::html::bytes(*storage_size)
            ),
        ),
        EventKind::BlobRegistered {
            size, end_epoch, ..
        } => (
            "BlobRegistered",
            format!("{} until epoch {end_epoch}", crate::html::bytes(*size)),
        ),
        EventKind::BlobCertified {
            end_epoch,
            is_extension,
            ..
        } => (
            "BlobCertified",
            if *is_extension {
                format!("extended to epoch {end_epoch}")
            } else {
                format!("available until epoch {end_epoch}")
            },
        ),
        EventKind::BlobDeleted { .. } => ("BlobDeleted", "deleted by its owner".into()),
        EventKind::InvalidBlobId { .. } => ("InvalidBlobId", "proven inconsistent".into()),
        EventKind::EpochChangeStart { epoch } => ("EpochChangeStart", format!("epoch {epoch}")),
        EventKind::ShardsReceived { shards, .. } => (
            "ShardsReceived",
            format!("{} shards reported synced", shards.len()),
        ),
        EventKind::EpochChangeDone { epoch } => ("EpochChangeDone", format!("epoch {epoch}")),
        EventKind::BlobTransferred { .. } => ("BlobTransferred", "new owner".into()),
        EventKind::NodeRegistered { weight, .. } => ("NodeRegistered", format!("weight {weight}")),
        EventKind::NodeWeightChanged { weight, .. } => {
            ("NodeWeightChanged", format!("weight {weight}"))
        }
        EventKind::EpochParametersSelected { next_epoch } => (
            "EpochParametersSelected",
            format!("committee of epoch {next_epoch} fixed"),
        ),
        EventKind::ChallengesStarted {
            eligible_blobs,
            skipped_shards,
            ..
        } => (
            "ChallengesStarted",
            format!("samples from {eligible_blobs} blobs, {skipped_shards} shards skipped"),
        ),
        EventKind::ChallengeReported {
            passed,
            failed,
            no_answer,
            not_issued,
            ..
        } => (
            "ChallengeReported",
            format!(
                "{passed} passed, {failed} failed, {no_answer} unanswered, {not_issued} not issued"
            ),
        ),
    }
}

/// `http://` in front of a bare `host:port`.
pub fn base_url(address: &str) -> String {
    if address.starts_with("http://") || address.starts_with("https://") {
        address.trim_end_matches('/').to_string()
    } else {
        format!("http://{address}")
    }
}

/// The health of every ledger server the dashboard knows.
async fn ledger_views(d: &Dashboard) -> Vec<LedgerView> {
    let urls = d.ledger_urls();
    futures_util::future::join_all(urls.iter().map(|url| async move {
        let health = format!("{}/v1/health", base_url(url));
        match get_json(&d.http, &health, PROBE_TIMEOUT, MAX_HEALTH_BYTES).await {
            Ok(v) => ledger_view(url, &v),
            Err(e) => LedgerView {
                url: url.clone(),
                error: Some(e.to_string()),
                ..LedgerView::default()
            },
        }
    }))
    .await
}

fn ledger_view(url: &str, v: &Value) -> LedgerView {
    const KNOWN: [&str; 8] = [
        "status",
        "epoch",
        "entries",
        "durableEntries",
        "events",
        "digest",
        "stateHash",
        "failure",
    ];
    let u = |k: &str| v.get(k).and_then(Value::as_u64);
    LedgerView {
        url: url.to_string(),
        up: true,
        error: v.get("failure").and_then(Value::as_str).map(str::to_string),
        status: v.get("status").and_then(Value::as_str).map(str::to_string),
        epoch: u("epoch"),
        entries: u("entries"),
        durable_entries: u("durableEntries"),
        events: u("events"),
        digest: v.get("digest").and_then(Value::as_str).map(str::to_string),
        extra: scalar_fields(v, |k| !KNOWN.contains(&k)),
    }
}

/// The object's scalar fields whose names pass `keep`, as text (at most 12, each ≤ 80 chars).
pub fn scalar_fields(v: &Value, keep: impl Fn(&str) -> bool) -> Vec<Field> {
    let Some(map) = v.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| keep(k))
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Object(_) | Value::Array(_) => v.to_string(),
                Value::Null => return None,
            };
            let value: String = text.chars().take(80).collect();
            Some(Field {
                name: k.clone(),
                value,
            })
        })
        .take(12)
        .collect()
}

/// Every member of the current and the next committee, with its health; and each reachable
/// node's request counter (for the charts).
async fn probe_nodes(
    d: &Dashboard,
    s: &SystemInfo,
    ledger_events: Option<u64>,
) -> (Vec<NodeView>, Vec<(String, f64)>) {
    let members = committee_nodes(s);
    let keys = network_keys(s);
    let probes = futures_util::stream::iter(members.into_iter().map(|node| {
        let key = keys.get(&node.address).cloned().unwrap_or_default();
        async move {
            // HTTPS pinned to the registered network key, or plain HTTP for a node without one.
            let (base, http) = match d.client.node_http().route(&node.address, &key) {
                Ok(route) => route,
                Err(e) => {
                    let error = Some(e.to_string());
                    return (NodeView { error, ..node }, None);
                }
            };
            let started = Instant::now();
            let (health_url, metrics_url) =
                (format!("{base}/v1/health"), format!("{base}/metrics"));
            let health = get_json(&http, &health_url, PROBE_TIMEOUT, MAX_HEALTH_BYTES);
            let metrics = get_text(&http, &metrics_url, PROBE_TIMEOUT, MAX_METRICS_BYTES);
            let (health, metrics) = tokio::join!(health, metrics);
            let node = match health {
                Ok(v) => node_health(node, &v, started.elapsed(), ledger_events),
                Err(e) => NodeView {
                    error: Some(e.to_string()),
                    ..node
                },
            };
            let requests = metrics.ok().and_then(|t| {
                prom::sum(&t, "floe_node_requests_total", |l| {
                    !l.contains("route=\"/v1/health\"") && !l.contains("route=\"/metrics\"")
                })
            });
            (node, requests)
        }
    }))
    .buffered(PROBE_CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    let counters = probes
        .iter()
        .filter_map(|(n, r)| Some((n.address.clone(), (*r)?)))
        .collect();
    (probes.into_iter().map(|(n, _)| n).collect(), counters)
}

/// The members of the current committee, then those only in the next one.
/// Each member's registered network key, by address (current and next committee).
fn network_keys(
    s: &SystemInfo,
) -> std::collections::HashMap<String, Vec<floe_crypto::NetworkPublicKey>> {
    s.committee
        .members
        .iter()
        .chain(s.next_committee.iter().flat_map(|c| c.members.iter()))
        .map(|m| (m.network_address.clone(), m.pinned_keys()))
        .collect()
}

fn committee_nodes(s: &SystemInfo) -> Vec<NodeView> {
    let next: Option<&CommitteeInfo> = s.next_committee.as_ref();
    let shards_next = |id| {
        next.map(|c| {
            c.members
                .iter()
                .find(|m| m.node_id == id)
                .map_or(0, |m| m.shards.len())
        })
    };
    let mut out: Vec<NodeView> = s
        .committee
        .members
        .iter()
        .map(|m| NodeView {
            name: m.name.clone(),
            address: m.network_address.clone(),
            node_id: m.node_id.to_string(),
            shards_now: m.shards.len(),
            shards_next: shards_next(m.node_id),
            capacity: m.capacity,
            ..NodeView::default()
        })
        .collect();
    for m in next.map(|c| c.members.as_slice()).unwrap_or_default() {
        if !s.committee.members.iter().any(|c| c.node_id == m.node_id) {
            out.push(NodeView {
                name: m.name.clone(),
                address: m.network_address.clone(),
                node_id: m.node_id.to_string(),
                shards_now: 0,
                shards_next: Some(m.shards.len()),
                capacity: m.capacity,
                ..NodeView::default()
            });
        }
    }
    out
}

/// Fill `node` from its health answer (Walrus's `ServiceHealthInfo` and Floe's additions).
fn node_health(node: NodeView, v: &Value, rtt: Duration, ledger_events: Option<u64>) -> NodeView {
    let u = |p: &str| v.pointer(p).and_then(Value::as_u64);
    let persisted = u("/eventProgress/persisted");
    let reported_lag = u("/eventLag");
    let computed_lag = ledger_events
        .zip(persisted)
        .map(|(t, p)| t.saturating_sub(p));
    NodeView {
        up: true,
        rtt_ms: Some(rtt.as_millis() as u64),
        epoch: u("/epoch"),
        status: v
            .get("nodeStatus")
            .and_then(Value::as_str)
            .map(str::to_string),
        events_persisted: persisted,
        event_lag: reported_lag.or(computed_lag),
        lag_reported: reported_lag.is_some(),
        drift: scalar_fields(v, |k| {
            let k = k.to_ascii_lowercase();
            k.contains("drift") || k.contains("digest")
        }),
        shards_ready: u("/shardSummary/ownedShardStatus/ready"),
        shards_in_transfer: u("/shardSummary/ownedShardStatus/inTransfer"),
        shards_in_recovery: u("/shardSummary/ownedShardStatus/inRecovery"),
        shards_read_only: u("/shardSummary/readOnly"),
        ..node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_health_reads_walrus_fields_and_tolerates_additions() {
        let v = serde_json::json!({
            "epoch": 3, "nodeStatus": "Active",
            "eventProgress": {"persisted": 40},
            "shardSummary": {"owned": 2, "ownedShardStatus": {"ready": 1, "inTransfer": 1, "inRecovery": 0}, "readOnly": 0},
            "eventLag": null,
        });
        let n = node_health(NodeView::default(), &v, Duration::from_millis(5), Some(45));
        assert!(n.up);
        assert_eq!((n.event_lag, n.lag_reported), (Some(5), false));
        assert_eq!(n.shards_in_transfer, Some(1));
        assert!(n.drift.is_empty());
        let v = serde_json::json!({"eventLag": 2, "blobTableDigest": "ab12", "driftStatus": "ok"});
        let n = node_health(NodeView::default(), &v, Duration::ZERO, Some(45));
        assert_eq!((n.event_lag, n.lag_reported), (Some(2), true));
        assert_eq!(n.drift.len(), 2);
    }

    #[test]
    fn latency_is_the_mean_of_new_observations() {
        assert_eq!(mean_ms(Some((3.0, 4.0)), Some((1.0, 2.0))), Some(1000.0));
        assert_eq!(mean_ms(Some((3.0, 4.0)), Some((3.0, 4.0))), None);
        assert_eq!(mean_ms(None, None), None);
    }
}
