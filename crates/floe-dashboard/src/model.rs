//! What the network page shows, as plain data: built by the sampler, rendered as HTML by
//! `network` and served as JSON to the page's script.

use serde::Serialize;

/// One look at the network.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub taken_ms: u64,
    /// Why the ledger could not be read (then `epoch` and `storage` are absent).
    pub ledger_error: Option<String>,
    pub epoch: Option<EpochView>,
    pub storage: Option<StorageView>,
    pub nodes: Vec<NodeView>,
    pub ledgers: Vec<LedgerView>,
    /// The most recent ledger events, newest first.
    pub events: Vec<EventView>,
    pub series: Series,
    /// Whether this server takes uploads.
    pub uploads: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochView {
    pub epoch: u32,
    /// `done`, `nextParamsSelected` or `syncing`.
    pub state: &'static str,
    /// The state in words.
    pub state_text: &'static str,
    pub start_ms: u64,
    pub end_ms: u64,
    pub duration_ms: u64,
    pub n_shards: u16,
    /// While nodes sync their new shards: how many shards reported, of how many needed.
    pub change: Option<ChangeProgress>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeProgress {
    pub reported_shards: u32,
    pub needed_shards: u32,
    pub reported_nodes: usize,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageView {
    pub used: u64,
    pub total: u64,
}

/// A member of the current or the next committee, and what its health route said.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub name: String,
    pub address: String,
    pub node_id: String,
    pub shards_now: usize,
    /// Shards in the next committee (absent when the ledger does not tell).
    pub shards_next: Option<usize>,
    pub capacity: u64,
    pub up: bool,
    pub error: Option<String>,
    /// Time the health request took.
    pub rtt_ms: Option<u64>,
    pub epoch: Option<u64>,
    pub status: Option<String>,
    pub events_persisted: Option<u64>,
    /// Ledger events not yet processed by the node.
    pub event_lag: Option<u64>,
    /// Whether the node reported `event_lag` itself (else it is the ledger's event count less
    /// the node's persisted events).
    pub lag_reported: bool,
    /// Drift status and digests the node reports, by field name, if it reports any.
    pub drift: Vec<Field>,
    pub shards_ready: Option<u64>,
    pub shards_in_transfer: Option<u64>,
    pub shards_in_recovery: Option<u64>,
    pub shards_read_only: Option<u64>,
    /// The ledger's storage-challenge tally of the node in the latest challenged epoch.
    pub challenges: Option<ChallengeCell>,
}

/// One node's storage challenges in one epoch, as the ledger tallied them.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeCell {
    pub epoch: u32,
    /// Challenges issued to its shards and reported, and how they went.
    pub challenged: u32,
    pub passed: u32,
    pub failed: u32,
    pub no_answer: u32,
    /// Challenges it owed as a challenger, and of those not issued (all, without a report).
    pub duties: u32,
    pub not_issued: u32,
    pub reported: bool,
}

/// A field name and its value as text.
#[derive(Clone, Debug, Serialize)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// One ledger server (a replica, where the ledger is replicated).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerView {
    pub url: String,
    pub up: bool,
    pub error: Option<String>,
    pub status: Option<String>,
    pub epoch: Option<u64>,
    /// Entries applied.
    pub entries: Option<u64>,
    pub durable_entries: Option<u64>,
    pub events: Option<u64>,
    pub digest: Option<String>,
    /// Other scalar fields of its health answer (a replica's role or position, say).
    pub extra: Vec<Field>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub index: u64,
    pub epoch: u32,
    pub kind: String,
    pub summary: String,
    pub blob_id: Option<String>,
    pub tx_digest: String,
}

/// The charts' data, oldest first; `null` where a value was not measured.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    pub t_ms: Vec<u64>,
    /// Daemon requests per second.
    pub daemon_ops: Vec<Option<f64>>,
    /// Storage-node requests per second, all nodes together (health and metrics excluded).
    pub node_ops: Vec<Option<f64>>,
    /// Mean store latency over the interval, in milliseconds.
    pub store_ms: Vec<Option<f64>>,
    /// Mean read latency over the interval, in milliseconds.
    pub read_ms: Vec<Option<f64>>,
}
