//! A test cluster: a real ledger and real nodes on loopback sockets, and the client-side write
//! path (register, upload, confirmations, certificate, certification).
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
use floe_crypto::{Certificate, CommitteeMember, CommitteeWeights, ProtocolKeyPair, SignedMessage};
use floe_ledger::api_types::SystemInfo;
use floe_ledger::{AccountKey, GenesisConfig, GenesisNode, TxKind};
use floe_ledger_client::{AccountSession, LedgerClient, LedgerClientError};
use floe_ledger_service::{Ledger, SystemClock};
use floe_node::config::{Limits, NodeConfig, NodeKeysFile};
use floe_node_client::NodeClient;

pub fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

pub struct Cluster {
    pub root: tempfile::TempDir,
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
    /// Keys, genesis and a running ledger for `nodes` nodes; returns the bound (not yet
    /// served) public listener of each node.
    pub async fn prepare(nodes: usize, n_shards: u16) -> (Self, Vec<tokio::net::TcpListener>) {
        Self::prepare_with_epochs(nodes, n_shards, 3_600_000).await
    }

    /// As [`Self::prepare`], with epochs of `epoch_duration_ms`; the ledger advances them on
    /// its wall clock.
    pub async fn prepare_with_epochs(
        nodes: usize,
        n_shards: u16,
        epoch_duration_ms: u64,
    ) -> (Self, Vec<tokio::net::TcpListener>) {
        let root = tempfile::tempdir().unwrap();
        let keys: Vec<ProtocolKeyPair> = (0..nodes)
            .map(|i| ProtocolKeyPair::from_seed(&seed("bls", i as u64)))
            .collect();
        let ops: Vec<AccountKey> = (0..nodes)
            .map(|i| AccountKey::from_seed(&seed("op", i as u64)))
            .collect();
        let mut listeners = Vec::new();
        let mut addresses = Vec::new();
        for i in 0..nodes {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = l.local_addr().unwrap().to_string();
            let dir = root.path().join(format!("node-{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let file = NodeKeysFile {
                name: format!("node-{i}"),
                network_address: address.clone(),
                protocol_key: keys[i].to_tagged_base64(),
                account_seed: hex::encode(ops[i].seed()),
                network_key: None,
            };
            std::fs::write(dir.join("keys.json"), serde_json::to_string(&file).unwrap()).unwrap();
            listeners.push(l);
            addresses.push(address);
        }
        let genesis = GenesisConfig::new(
            n_shards,
            epoch_duration_ms,
            floe_ledger_service::Clock::now_ms(&SystemClock),
            (0..nodes)
                .map(|i| {
                    GenesisNode::new(
                        format!("node-{i}"),
                        addresses[i].clone(),
                        &keys[i],
                        &ops[i],
                        1 << 40,
                    )
                })
                .collect(),
        );
        let ledger =
            Ledger::open(&root.path().join("ledger"), genesis, Arc::new(SystemClock)).unwrap();
        ledger.spawn_epoch_clock(Duration::from_millis(50));
        let ll = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ledger_url = format!("http://{}", ll.local_addr().unwrap());
        tokio::spawn(floe_ledger_service::serve(
            ledger,
            ll,
            std::future::pending(),
        ));
        let client = LedgerClient::new(ledger_url.clone());
        let system = client.system().await.unwrap();
        let cluster = Self {
            root,
            n_shards,
            addresses,
            ledger_url,
            ledger: client,
            system,
            http: reqwest::Client::new(),
            limits: Limits {
                sync_delay_ms: 0,
                ..Limits::default()
            },
        };
        (cluster, listeners)
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.root.path().join(format!("node-{i}"))
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

    /// Start node `i` (its storage in its directory) serving on `listener`.
    pub async fn start_node(
        &self,
        i: usize,
        listener: tokio::net::TcpListener,
    ) -> tokio::task::JoinHandle<()> {
        let config = NodeConfig {
            storage_path: self.node_dir(i).join("data"),
            keys_path: self.node_dir(i).join("keys.json"),
            listen_address: listener.local_addr().unwrap().to_string(),
            ledger_url: self.ledger_url.clone(),
            ledger_urls: Vec::new(),
            limits: self.limits.clone(),
            // Plain HTTP: these tests talk to nodes with raw HTTP requests.
            tls: floe_node::config::TlsConfig {
                disable_tls: true,
                certificate_path: None,
            },
        };
        let every = Duration::from_secs(self.limits.maintenance_interval_secs.max(1));
        let node = floe_node::start(config).await.unwrap();
        floe_node::workers::start(
            &node,
            floe_node::workers::WorkerOptions {
                maintenance_every: Some(every),
            },
        );
        tokio::spawn(async move {
            floe_node::api::serve(node, listener, std::future::pending())
                .await
                .unwrap();
        })
    }

    /// Stop node `i`'s server task, wipe its data directory, and restart it on its address.
    pub async fn wipe_and_restart(
        &self,
        i: usize,
        task: tokio::task::JoinHandle<()>,
    ) -> tokio::task::JoinHandle<()> {
        task.abort();
        let _ = task.await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::remove_dir_all(self.node_dir(i).join("data")).unwrap();
        let l = tokio::net::TcpListener::bind(&self.addresses[i])
            .await
            .unwrap();
        self.start_node(i, l).await
    }

    /// Start node `i` on a private port and serve `public` (its address in the ledger) as a
    /// proxy to it that passes every successful answer's body through `rewrite`: a node that
    /// lies about what it stores.
    pub async fn start_lying_node(
        &self,
        i: usize,
        public: tokio::net::TcpListener,
        rewrite: Rewrite,
    ) -> tokio::task::JoinHandle<()> {
        let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = format!("http://{}", inner.local_addr().unwrap());
        let task = self.start_node(i, inner).await;
        let state = LyingProxy {
            upstream,
            http: reqwest::Client::new(),
            rewrite,
        };
        let app = axum::Router::new().fallback(lying_proxy).with_state(state);
        tokio::spawn(async move { axum::serve(public, app).await.unwrap() });
        task
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
