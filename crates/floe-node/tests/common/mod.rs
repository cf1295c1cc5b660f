//! A test cluster: a real ledger and real nodes on loopback sockets, and the client-side write
//! path (register, upload, confirmations, certificate, certification).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_core::{EncodedBlob, EncodingConfig, EncodingType, ShardIndex, Sliver, encode};
use floe_crypto::{
    Certificate, CommitteeMember, CommitteeWeights, ProofOfPossession, ProtocolKeyPair,
};
use floe_ledger::api_types::SystemInfo;
use floe_ledger::{AccountKey, GenesisConfig, GenesisNode, TxKind};
use floe_ledger_client::{AccountSession, LedgerClient};
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
}

impl Cluster {
    /// Keys, genesis and a running ledger for `nodes` nodes; returns the bound (not yet
    /// served) public listener of each node.
    pub async fn prepare(nodes: usize, n_shards: u16) -> (Self, Vec<tokio::net::TcpListener>) {
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
            };
            std::fs::write(dir.join("keys.json"), serde_json::to_string(&file).unwrap()).unwrap();
            listeners.push(l);
            addresses.push(address);
        }
        let genesis = GenesisConfig {
            version: 1,
            n_shards,
            epoch_duration_ms: 3_600_000,
            genesis_time_ms: floe_ledger_service::Clock::now_ms(&SystemClock),
            max_epochs_ahead: 53,
            nodes: (0..nodes)
                .map(|i| GenesisNode {
                    name: format!("node-{i}"),
                    network_address: addresses[i].clone(),
                    protocol_key: *keys[i].public_key(),
                    proof_of_possession: ProofOfPossession::create(
                        &keys[i],
                        0,
                        &ops[i].address().0,
                    ),
                    owner: ops[i].address(),
                    capacity: 1 << 40,
                    weight: 1,
                })
                .collect(),
        };
        let ledger =
            Ledger::open(&root.path().join("ledger"), genesis, Arc::new(SystemClock)).unwrap();
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
            limits: Limits {
                sync_delay_ms: 0,
                ..Limits::default()
            },
        };
        let node = floe_node::start(config).await.unwrap();
        node.spawn_follower();
        tokio::spawn(async move {
            axum::serve(listener, floe_node::api::router(node))
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

    pub fn client(&self, i: usize) -> NodeClient {
        NodeClient::new(
            self.http.clone(),
            &self.addresses[i],
            Duration::from_secs(10),
        )
    }

    /// Store `data` as a client does: register, upload every member its pairs (batched),
    /// collect confirmations, aggregate, certify.
    pub async fn store_and_certify(&self, data: &[u8]) -> EncodedBlob {
        let n = self.n_shards;
        let e = encode(&EncodingConfig::new(n).unwrap(), data).unwrap();
        let blob_id = e.blob_id();
        let user =
            AccountSession::new(AccountKey::from_seed(&seed("user", 0)), self.ledger.clone());
        let reg = user
            .submit(TxKind::ReserveAndRegister {
                end_epoch: 5,
                blob_id,
                root_hash: e.metadata().metadata.root_hash(),
                size: data.len() as u64,
                encoding_type: EncodingType::RS2,
                deletable: false,
            })
            .await
            .unwrap();
        let object = reg
            .events
            .iter()
            .find_map(|ev| match &ev.kind {
                floe_ledger::EventKind::BlobRegistered { object_id, .. } => Some(*object_id),
                _ => None,
            })
            .unwrap();
        let mut partials = Vec::new();
        for (idx, member) in self.system.committee.members.iter().enumerate() {
            let client = NodeClient::new(
                self.http.clone(),
                &member.network_address,
                Duration::from_secs(10),
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while client
                .put_metadata(&blob_id, &e.metadata().metadata)
                .await
                .is_err()
            {
                assert!(
                    Instant::now() < deadline,
                    "member {idx} never saw the registration"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let slivers: Vec<_> = member
                .shards
                .iter()
                .flat_map(|&s| {
                    let pair = ShardIndex(s).to_pair_index(n, &blob_id);
                    let p = e.sliver_pair(pair);
                    [
                        (pair, Sliver::Primary(p.primary)),
                        (pair, Sliver::Secondary(p.secondary)),
                    ]
                })
                .collect();
            client.put_sliver_batch(&blob_id, slivers).await.unwrap();
            partials.push((idx, client.confirmation(&blob_id, None).await.unwrap()));
        }
        let weights = CommitteeWeights::new(
            self.system
                .committee
                .members
                .iter()
                .map(|m| CommitteeMember {
                    public_key: m.protocol_key,
                    weight: m.shards.len() as u16,
                })
                .collect(),
            n,
        )
        .unwrap();
        let certificate = Certificate::aggregate(&weights, &partials).unwrap();
        user.submit(TxKind::CertifyBlob {
            blob_object: object,
            certificate,
        })
        .await
        .unwrap();
        e
    }
}
