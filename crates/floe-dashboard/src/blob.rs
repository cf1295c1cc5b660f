//! A blob's facts for its page: the ledger's status and the event behind it, the blob object,
//! where each shard's slivers are (asked of the nodes, bounded), and a quilt's patches.

use std::time::Duration;

use floe_client::QuiltPatchListItem;
use floe_core::{BlobId, ObjectId, SliverPairIndex, SliverType};
use floe_ledger::api_types::{
    BlobStatusResponse, CertificateRecord, MemberInfo, ObjectResponse, SystemInfo,
};
use floe_ledger::status::BlobStatus;
use floe_ledger::types::BlobObject;
use futures_util::StreamExt;
use serde_json::Value;

use crate::Dashboard;
use crate::error::DashboardError;
use crate::fetch::get_json;
use crate::sampler::base_url;
use floe_crypto::NetworkPublicKey;

/// Sliver-level checks are made only for networks of at most this many shards (two requests
/// per shard); larger ones are shown per node, from the metadata.
pub const MAX_SHARDS_CHECKED: u16 = 128;
/// Quilt patches listed on a page.
pub const MAX_PATCHES_SHOWN: usize = 1000;
const NODE_TIMEOUT: Duration = Duration::from_millis(3000);
const MAX_ANSWER_BYTES: usize = 64 << 10;
const CONCURRENCY: usize = 16;

/// What the search box was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Blob(BlobId),
    Object(ObjectId),
}

/// A blob ID (base64url), or an object ID (`0x` and hex, or 64 hex digits).
pub fn parse_id(text: &str) -> Result<Lookup, DashboardError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DashboardError::BadId("an empty ID".into()));
    }
    if !t.starts_with("0x")
        && let Ok(b) = t.parse::<BlobId>()
    {
        return Ok(Lookup::Blob(b));
    }
    t.parse::<ObjectId>()
        .map(Lookup::Object)
        .map_err(|_| DashboardError::BadId(t.chars().take(100).collect()))
}

/// How one shard of the blob stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardState {
    /// Both slivers stored.
    Stored,
    /// One of the two.
    Partial,
    /// Neither.
    Missing,
    /// The node holds the metadata (slivers not checked, a large network).
    MetadataOnly,
    /// The node did not answer.
    Unreachable,
}

/// One shard: its node and its sliver pair for this blob.
#[derive(Clone, Debug)]
pub struct ShardCell {
    pub shard: u16,
    pub pair: u16,
    pub node: usize,
    pub state: ShardState,
}

/// What a node said about the blob.
#[derive(Clone, Debug)]
pub struct NodeAnswer {
    pub name: String,
    pub address: String,
    pub shards: usize,
    /// Its blob status (Walrus's JSON) or why there is none.
    pub status: Result<Value, String>,
    pub metadata: Result<String, String>,
}

/// Everything the blob page shows.
pub struct BlobFacts {
    pub blob_id: BlobId,
    pub status: BlobStatusResponse,
    pub object: Option<BlobObject>,
    pub system: Option<SystemInfo>,
    pub nodes: Vec<NodeAnswer>,
    pub shards: Vec<ShardCell>,
    /// A quilt's patches (`None`: not a quilt).
    pub patches: Option<Result<Vec<QuiltPatchListItem>, String>>,
    /// The ledger's record of the blob's first certificate (`Ok(None)`: none kept), or why it
    /// could not be fetched.
    pub certificate: Result<Option<CertificateRecord>, String>,
    /// The latest challenged epoch's outcomes for this blob, with the failing nodes' names
    /// (`Ok(None)`: no challenges recorded yet, or that epoch's committee is not known).
    pub challenges: Result<Option<floe_client::BlobChallenges>, String>,
}

impl BlobFacts {
    pub fn is_quilt(&self) -> bool {
        self.object.as_ref().is_some_and(|o| {
            o.attributes
                .get(floe_client::BLOB_TYPE_ATTRIBUTE)
                .map(String::as_str)
                == Some(floe_client::QUILT_BLOB_TYPE)
        })
    }
}

/// Resolve `lookup` to a blob ID and gather its facts.
pub async fn gather(d: &Dashboard, lookup: Lookup) -> Result<BlobFacts, DashboardError> {
    let ledger = d.client.ledger();
    let ledger_err =
        |e: floe_ledger_client::LedgerClientError| DashboardError::Ledger(e.to_string());
    let (blob_id, mut object) = match lookup {
        Lookup::Blob(b) => (b, None),
        Lookup::Object(id) => match ledger.object(&id).await.map_err(ledger_err)? {
            // A shared blob shows as the blob object it wraps.
            Some(o) => match o.into_blob() {
                Some(o) => (o.blob_id, Some(o)),
                None => return Err(DashboardError::NotABlob(id.to_string())),
            },
            None => return Err(DashboardError::NoSuchObject(id.to_string())),
        },
    };
    let (status, system, certificate) = tokio::join!(
        ledger.blob_status(&blob_id),
        ledger.system(),
        ledger.blob_certificate(&blob_id)
    );
    let certificate = certificate.map_err(|e| e.to_string());
    let status = status.map_err(ledger_err)?;
    let system = system.ok();
    if object.is_none() {
        object = match status_object(&status.status) {
            Some(id) => match ledger.object(&id).await {
                Ok(Some(ObjectResponse::Blob(o))) => Some(o),
                _ => None,
            },
            None => None,
        };
    }
    let (nodes, shards) = match (&system, &status.status) {
        (Some(s), st) if !matches!(st, BlobStatus::Nonexistent) => ask_nodes(d, s, &blob_id).await,
        _ => (Vec::new(), Vec::new()),
    };
    let challenges = match &system {
        Some(system) => d
            .client
            .last_blob_challenges(system, &blob_id)
            .await
            .map_err(|e| e.to_string()),
        None => Ok(None),
    };
    let mut facts = BlobFacts {
        blob_id,
        status,
        object,
        system,
        nodes,
        shards,
        patches: None,
        certificate,
        challenges,
    };
    if facts.is_quilt() {
        facts.patches = Some(quilt_patches(d, &blob_id).await);
    }
    Ok(facts)
}

fn status_object(s: &BlobStatus) -> Option<ObjectId> {
    match s {
        BlobStatus::Registered { object_id, .. } | BlobStatus::Certified { object_id, .. } => {
            Some(*object_id)
        }
        _ => None,
    }
}

async fn quilt_patches(
    d: &Dashboard,
    quilt_id: &BlobId,
) -> Result<Vec<QuiltPatchListItem>, String> {
    let work = async {
        let quilt = d
            .client
            .open_quilt(quilt_id)
            .await
            .map_err(|e| e.to_string())?;
        let index = quilt.index().await.map_err(|e| e.to_string())?;
        let mut list = QuiltPatchListItem::list(*quilt_id, &index);
        list.truncate(MAX_PATCHES_SHOWN);
        Ok(list)
    };
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .unwrap_or_else(|_| Err("the quilt's index was not read within 20 s".into()))
}

/// Ask every committee member about the blob, and (on small networks) each of its slivers.
async fn ask_nodes(
    d: &Dashboard,
    s: &SystemInfo,
    blob_id: &BlobId,
) -> (Vec<NodeAnswer>, Vec<ShardCell>) {
    let members = &s.committee.members;
    let nodes = node_answers(d, members, blob_id).await;
    let n = s.n_shards;
    let cells = (0..n).filter_map(|pair| {
        let shard = SliverPairIndex(pair).to_shard_index(n, blob_id).0;
        let node = s.committee.owner_of(shard)?;
        Some((shard, pair, node))
    });
    let check_slivers = n <= MAX_SHARDS_CHECKED;
    let mut shards: Vec<ShardCell> =
        futures_util::stream::iter(cells.map(|(shard, pair, node)| {
            let answer = &nodes[node];
            let key = members[node].pinned_keys();
            async move {
                let state = if answer.metadata.is_err() {
                    ShardState::Unreachable
                } else if check_slivers {
                    sliver_state(d, (&answer.address, &key), blob_id, pair).await
                } else if answer.metadata.as_deref() == Ok("stored") {
                    ShardState::MetadataOnly
                } else {
                    ShardState::Missing
                };
                ShardCell {
                    shard,
                    pair,
                    node,
                    state,
                }
            }
        }))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    shards.sort_by_key(|c| c.shard);
    (nodes, shards)
}

/// Every member's answer about the blob (its status and whether it holds the metadata).
async fn node_answers(d: &Dashboard, members: &[MemberInfo], blob_id: &BlobId) -> Vec<NodeAnswer> {
    // Owned per-node facts: a closure over borrowed members would not be `Send` for any
    // lifetime, which the router's handlers must be.
    let owned: Vec<(String, String, usize, Vec<NetworkPublicKey>)> = members
        .iter()
        .map(|m| {
            let key = m.pinned_keys();
            (
                m.name.clone(),
                m.network_address.clone(),
                m.shards.len(),
                key,
            )
        })
        .collect();
    futures_util::stream::iter(
        owned
            .into_iter()
            .map(|(name, address, shards, key)| async move {
                let (base, http) = node_route(d, &address, &key);
                let (status_url, meta_url) = (
                    format!("{base}/v1/blobs/{blob_id}/status"),
                    format!("{base}/v1/blobs/{blob_id}/metadata/status"),
                );
                let status = get_json(&http, &status_url, NODE_TIMEOUT, MAX_ANSWER_BYTES);
                let meta = get_json(&http, &meta_url, NODE_TIMEOUT, MAX_ANSWER_BYTES);
                let (status, meta) = tokio::join!(status, meta);
                NodeAnswer {
                    name,
                    address,
                    shards,
                    status: status.map_err(|e| e.to_string()),
                    metadata: meta
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .map_err(|e| e.to_string()),
                }
            }),
    )
    .buffered(CONCURRENCY)
    .collect()
    .await
}

/// A node's base URL and client: HTTPS pinned to its registered network key, or plain HTTP.
fn node_route(d: &Dashboard, address: &str, key: &[NetworkPublicKey]) -> (String, reqwest::Client) {
    d.client
        .node_http()
        .route(address, key)
        .unwrap_or_else(|_| (base_url(address), d.http.clone()))
}

/// Both slivers of `pair` asked of the node at `address` (registered with `key`).
async fn sliver_state(
    d: &Dashboard,
    (address, key): (&str, &[NetworkPublicKey]),
    blob_id: &BlobId,
    pair: u16,
) -> ShardState {
    let (base, http) = node_route(d, address, key);
    let one = |axis: SliverType| {
        let url = format!("{base}/v1/blobs/{blob_id}/slivers/{pair}/{axis}/status");
        let http = http.clone();
        async move { get_json(&http, &url, NODE_TIMEOUT, MAX_ANSWER_BYTES).await }
    };
    let (p, s) = tokio::join!(one(SliverType::Primary), one(SliverType::Secondary));
    let stored = |r: &Result<Value, crate::fetch::FetchError>| matches!(r, Ok(v) if v.as_str() == Some("stored"));
    match (&p, &s) {
        (Err(_), Err(_)) => ShardState::Unreachable,
        _ if stored(&p) && stored(&s) => ShardState::Stored,
        _ if stored(&p) || stored(&s) => ShardState::Partial,
        _ => ShardState::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_told_apart_and_garbage_is_refused() {
        let blob = BlobId([7; 32]);
        assert_eq!(parse_id(&blob.to_string()).unwrap(), Lookup::Blob(blob));
        assert_eq!(
            parse_id("0x1").unwrap(),
            Lookup::Object("0x1".parse().unwrap())
        );
        assert!(matches!(
            parse_id("not an id"),
            Err(DashboardError::BadId(_))
        ));
        assert!(matches!(parse_id("  "), Err(DashboardError::BadId(_))));
        assert!(matches!(
            parse_id("<script>"),
            Err(DashboardError::BadId(_))
        ));
    }
}
