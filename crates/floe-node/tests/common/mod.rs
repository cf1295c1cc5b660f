//! A test cluster: a [`Testbed`] (a real ledger and real nodes on loopback sockets) whose nodes
//! each test starts itself, and the client-side write path (register, upload, confirmations,
//! certificate, certification).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use floe_core::{
    BlobId, BlobMetadataWithId, EncodedBlob, EncodingConfig, EncodingType, ObjectId, ShardIndex,
    Sliver, SliverPair, encode,
};
use floe_crypto::{Certificate, CommitteeMember, CommitteeWeights, SignedMessage};
use floe_ledger::api_types::SystemInfo;
use floe_ledger::{AccountKey, TxKind};
use floe_ledger_client::{AccountSession, LedgerClient, LedgerClientError};
use floe_node::config::Limits;
use floe_node_client::NodeClient;
use floe_testbed::{Testbed, TestbedOptions};

pub fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

/// The testbed's key seed: node keys and operator accounts derive from it.
const BED_SEED: u64 = 0;

/// A [`Testbed`] over plain HTTP whose nodes the test starts one by one (some behind a lying
/// proxy), with the client-side write path on top.
pub struct Cluster {
    pub bed: Testbed,
    root: tempfile::TempDir,
    pub n_shards: u16,
    /// Public address of node i (as in the genesis).
    pub addresses: Vec<String>,
    pub ledger_url: String,
    pub ledger: LedgerClient,
    pub system: SystemInfo,
    pub http: reqwest::Client,
    /// Limits of the nodes started from now on (tests may change them before starting nodes).
    pub limits: Limits,
}

impl Cluster {
    /// A ledger and `nodes` nodes' keys, genesis and held addresses; no node runs yet.
    pub async fn prepare(nodes: usize, n_shards: u16) -> Self {
        Self::prepare_with_epochs(nodes, n_shards, 3_600_000).await
    }

    /// As [`Self::prepare`], with epochs of `epoch_duration_ms`; the ledger advances them on
    /// its wall clock.
    pub async fn prepare_with_epochs(nodes: usize, n_shards: u16, epoch_duration_ms: u64) -> Self {
        let root = tempfile::tempdir().unwrap();
        let bed = Testbed::start(
            &root.path().join("bed"),
            TestbedOptions {
                nodes,
                n_shards,
                epoch_duration_ms,
                seed: BED_SEED,
                // Plain HTTP: these tests talk to nodes with raw HTTP requests.
                disable_tls: true,
                start_nodes: false,
                ..TestbedOptions::default()
            },
        )
        .await
        .unwrap();
        let ledger_url = bed.ledger_url();
        let client = LedgerClient::new(ledger_url.clone());
        let system = client.system().await.unwrap();
        Self {
            addresses: bed.state().node_addresses.clone(),
            bed,
            root,
            n_shards,
            ledger_url,
            ledger: client,
            system,
            http: reqwest::Client::new(),
            limits: Limits {
                sync_delay_ms: 0,
                ..Limits::default()
            },
        }
    }

    /// Start every node not started yet.
    pub async fn start_all(&mut self) {
        for i in 0..self.addresses.len() {
            self.start_node(i).await;
        }
    }

    /// Start node `i` (no-op if it runs) with [`Self::limits`].
    pub async fn start_node(&mut self, i: usize) {
        self.bed.set_node_limits(self.limits.clone());
        self.bed.start_node(i).await.unwrap();
    }

    /// Stop node `i`, wipe its data directory, and start it again on its address.
    pub async fn wipe_and_restart(&mut self, i: usize) {
        self.bed.wipe_node(i).await.unwrap();
        self.start_node(i).await;
    }

    /// Start node `i` behind a proxy on its public address that passes every successful
    /// answer's body through `rewrite`: a node that lies about what it stores.
    pub async fn start_lying_node(&mut self, i: usize, rewrite: Rewrite) {
        self.bed.set_node_limits(self.limits.clone());
        self.bed
            .start_node_behind(i, move |public, upstream| {
                let state = LyingProxy {
                    upstream,
                    http: reqwest::Client::new(),
                    rewrite,
                };
                let app = axum::Router::new().fallback(lying_proxy).with_state(state);
                tokio::spawn(async move { axum::serve(public, app).await.unwrap() })
            })
            .await
            .unwrap();
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.bed.node_dir(i)
    }

    /// The session of node `i`'s operator account.
    pub fn operator(&self, i: usize) -> AccountSession {
        AccountSession::new(floe_testbed::node_account(BED_SEED, i), self.ledger.clone())
    }

    /// The committee member index of node `i`.
    pub fn member_of(&self, i: usize) -> usize {
        self.system
            .committee
            .members
            .iter()
            .position(|m| m.network_address == self.addresses[i])
            .unwrap()
    }

    pub fn shards_of(&self, i: usize) -> &[u16] {
        &self.system.committee.members[self.member_of(i)].shards
    }

    pub fn client(&self, i: usize) -> NodeClient {
        NodeClient::new(
            self.http.clone(),
            &self.addresses[i],
            Duration::from_secs(10),
        )
    }

    /// The client of committee member `member`.
    pub fn member_client(&self, member: usize) -> NodeClient {
        NodeClient::new(
            self.http.clone(),
            &self.system.committee.members[member].network_address,
            Duration::from_secs(10),
        )
    }

    /// The node index (as in [`Self::addresses`]) of committee member `member`.
    pub fn node_of_member(&self, member: usize) -> usize {
        let address = &self.system.committee.members[member].network_address;
        self.addresses.iter().position(|a| a == address).unwrap()
    }

    /// The committee member owning `shard`.
    pub fn owner_of(&self, shard: ShardIndex) -> usize {
        self.system.committee.owner_of(shard.0).unwrap()
    }

    pub fn user(&self, k: u64) -> AccountSession {
        AccountSession::new(AccountKey::from_seed(&seed("user", k)), self.ledger.clone())
    }

    pub fn weights(&self) -> CommitteeWeights {
        CommitteeWeights::new(
            self.system
                .committee
                .members
                .iter()
                .map(|m| CommitteeMember {
                    public_key: m.protocol_key,
                    weight: m.shards.len() as u16,
                })
                .collect(),
            self.n_shards,
        )
        .unwrap()
    }

    /// Register `metadata`'s blob; returns its ledger object.
    pub async fn register(
        &self,
        user: &AccountSession,
        metadata: &BlobMetadataWithId,
        end_epoch: u32,
        deletable: bool,
    ) -> Result<ObjectId, LedgerClientError> {
        let reg = user
            .submit(TxKind::ReserveAndRegister {
                end_epoch,
                blob_id: metadata.blob_id,
                root_hash: metadata.metadata.root_hash(),
                size: metadata.metadata.unencoded_length(),
                encoding_type: EncodingType::RS2,
                deletable,
            })
            .await?;
        Ok(reg
            .events
            .iter()
            .find_map(|ev| match &ev.kind {
                floe_ledger::EventKind::BlobRegistered { object_id, .. } => Some(*object_id),
                _ => None,
            })
            .unwrap())
    }

    /// Upload to committee member `member` the metadata (once it has seen the registration)
    /// and, batched, every pair it holds; `pairs[k]` is pair k.
    pub async fn upload_to_member(
        &self,
        member: usize,
        metadata: &BlobMetadataWithId,
        pairs: &[SliverPair],
    ) -> Result<(), String> {
        let blob_id = metadata.blob_id;
        let client = self.member_client(member);
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = client.put_metadata(&blob_id, &metadata.metadata).await {
            if Instant::now() >= deadline {
                return Err(format!("member {member} never accepted the metadata: {e}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let slivers: Vec<_> = self.system.committee.members[member]
            .shards
            .iter()
            .flat_map(|&s| {
                let pair = ShardIndex(s).to_pair_index(self.n_shards, &blob_id);
                let p = pairs[usize::from(pair.0)].clone();
                [
                    (pair, Sliver::Primary(p.primary)),
                    (pair, Sliver::Secondary(p.secondary)),
                ]
            })
            .collect();
        client
            .put_sliver_batch(&blob_id, slivers)
            .await
            .map_err(|e| format!("member {member}: {e}"))?;
        Ok(())
    }

    /// Upload to every member except `skip`, collect their confirmations and certify.
    pub async fn upload_and_certify(
        &self,
        user: &AccountSession,
        object: ObjectId,
        metadata: &BlobMetadataWithId,
        pairs: &[SliverPair],
        deletable: bool,
        skip: &[usize],
    ) -> Result<(), String> {
        let blob_id = metadata.blob_id;
        let mut partials: Vec<(usize, SignedMessage)> = Vec::new();
        for member in 0..self.system.committee.members.len() {
            if skip.contains(&member) {
                continue;
            }
            self.upload_to_member(member, metadata, pairs).await?;
            let object = deletable.then_some(&object);
            let signed = self
                .member_client(member)
                .confirmation(&blob_id, object)
                .await
                .map_err(|e| format!("member {member}: {e}"))?;
            partials.push((member, signed));
        }
        let certificate = Certificate::aggregate(&self.weights(), &partials).unwrap();
        user.submit(TxKind::CertifyBlob {
            blob_object: object,
            certificate,
        })
        .await
        .map_err(|e| format!("certification: {e}"))?;
        Ok(())
    }

    /// Store `data` as a client does: register, upload every member its pairs (batched),
    /// collect confirmations, aggregate, certify.
    pub async fn store_and_certify(&self, data: &[u8]) -> EncodedBlob {
        let e = encode(&EncodingConfig::new(self.n_shards).unwrap(), data).unwrap();
        let user = self.user(0);
        let object = self.register(&user, e.metadata(), 5, false).await.unwrap();
        self.upload_and_certify(&user, object, e.metadata(), &e.sliver_pairs(), false, &[])
            .await
            .unwrap();
        e
    }

    /// Poll node `i`'s `/status` of `blob_id` until `pred` holds; panics after `timeout`.
    pub async fn wait_node_status(
        &self,
        i: usize,
        blob_id: &BlobId,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        let client = self.client(i);
        loop {
            let status = client.blob_status(blob_id).await;
            if let Ok(v) = &status
                && pred(v)
            {
                return v.clone();
            }
            assert!(
                Instant::now() < deadline,
                "node {i}: the status of {blob_id} never matched; last {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Rewrites the body of a successful answer on its way back: (path and query, body) → body.
pub type Rewrite = Arc<dyn Fn(&str, Bytes) -> Bytes + Send + Sync>;

#[derive(Clone)]
struct LyingProxy {
    upstream: String,
    http: reqwest::Client,
    rewrite: Rewrite,
}

/// Forward a request to the real node; rewrite the body of its answer if it succeeded.
async fn lying_proxy(State(p): State<LyingProxy>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|x| x.to_string())
        .unwrap_or_default();
    let method = req.method().clone();
    let body = axum::body::to_bytes(req.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    let upstream = p
        .http
        .request(method, format!("{}{path}", p.upstream))
        .body(body)
        .send()
        .await;
    let Ok(resp) = upstream else {
        return (axum::http::StatusCode::BAD_GATEWAY, "upstream down").into_response();
    };
    let status = resp.status();
    let ct = resp.headers().get("content-type").cloned();
    let mut bytes: Bytes = resp.bytes().await.unwrap_or_default();
    if status.is_success() {
        bytes = (p.rewrite)(&path, bytes);
    }
    let mut r = (status, bytes).into_response();
    if let Some(ct) = ct {
        r.headers_mut().insert("content-type", ct);
    }
    r
}
