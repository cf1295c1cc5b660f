//! One real ledger and one real storage node holding every shard, on loopback sockets with
//! on-disk storage: the harness of the node API tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_core::BlobId;
use floe_crypto::ProtocolKeyPair;
use floe_ledger::{AccountKey, GenesisConfig, GenesisNode};
use floe_ledger_service::{Ledger, SystemClock};
use floe_node::config::{Limits, NodeConfig, NodeKeysFile};
use serde_json::Value;

pub const N: u16 = 10;

pub fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

pub struct Net {
    pub ledger_url: String,
    pub node_url: String,
    pub key: ProtocolKeyPair,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub node_task: tokio::task::JoinHandle<()>,
}

pub async fn start_ledger(dir: &std::path::Path, key: &ProtocolKeyPair, op: &AccountKey) -> String {
    // One node holding every shard: its confirmation alone is a quorum.
    let genesis = GenesisConfig::new(
        N,
        3_600_000,
        floe_ledger_service::Clock::now_ms(&SystemClock),
        vec![GenesisNode::new("node-0", "127.0.0.1:0", key, op, 1 << 40)],
    );
    let ledger = Ledger::open(&dir.join("ledger"), genesis, Arc::new(SystemClock)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(floe_ledger_service::serve(
        ledger,
        listener,
        std::future::pending(),
    ));
    url
}

pub async fn start_node(
    dir: &std::path::Path,
    ledger_url: &str,
    max_body: usize,
) -> (String, tokio::task::JoinHandle<()>) {
    let limits = Limits {
        max_body_bytes: max_body,
        ..Limits::default()
    };
    start_node_with(dir, ledger_url, limits).await
}

/// The node's configuration: data under `dir`, plain HTTP.
pub fn node_config(dir: &std::path::Path, ledger_url: &str, limits: Limits) -> NodeConfig {
    NodeConfig {
        storage_path: dir.join("node-data"),
        keys_path: dir.join("node-keys.json"),
        listen_address: "127.0.0.1:0".into(),
        ledger_url: ledger_url.into(),
        ledger_urls: Vec::new(),
        limits,
        // Plain HTTP: these tests talk to nodes with raw HTTP requests.
        tls: floe_node::config::TlsConfig {
            disable_tls: true,
            certificate_path: None,
        },
    }
}

pub async fn start_node_with(
    dir: &std::path::Path,
    ledger_url: &str,
    limits: Limits,
) -> (String, tokio::task::JoinHandle<()>) {
    let config = node_config(dir, ledger_url, limits);
    let node = floe_node::start(config).await.unwrap();
    floe_node::workers::start(
        &node,
        floe_node::workers::WorkerOptions {
            maintenance_every: None,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, floe_node::api::router(node))
            .await
            .unwrap();
    });
    (url, task)
}

/// A temporary directory holding the node's key file, and a ledger whose genesis committee is
/// that node alone.
pub async fn ledger_and_keys() -> (tempfile::TempDir, ProtocolKeyPair, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = ProtocolKeyPair::from_seed(&seed("node", 0));
    let op = AccountKey::from_seed(&seed("op", 0));
    let keys = NodeKeysFile {
        name: "node-0".into(),
        network_address: "127.0.0.1:0".into(),
        protocol_key: key.to_tagged_base64(),
        account_seed: hex::encode(op.seed()),
        network_key: None,
    };
    std::fs::write(
        dir.path().join("node-keys.json"),
        serde_json::to_string(&keys).unwrap(),
    )
    .unwrap();
    let ledger_url = start_ledger(dir.path(), &key, &op).await;
    (dir, key, ledger_url)
}

impl Net {
    pub async fn new() -> Self {
        let (dir, key, ledger_url) = ledger_and_keys().await;
        let (node_url, node_task) = start_node(dir.path(), &ledger_url, 1 << 20).await;
        Self {
            ledger_url,
            node_url,
            key,
            dir,
            http: reqwest::Client::new(),
            node_task,
        }
    }

    pub async fn put(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.node_url))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        get_json(&self.http, &format!("{}{path}", self.node_url)).await
    }

    pub async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let r = get(&self.http, &format!("{}{path}", self.node_url)).await;
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }

    pub async fn wait_status(&self, blob_id: &BlobId, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, v) = self.get_json(&format!("/v1/blobs/{blob_id}/status")).await;
            let data = v["success"]["data"].clone();
            if pred(&data) {
                return data;
            }
            assert!(
                Instant::now() < deadline,
                "status never matched; last {data}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn reason(v: &Value) -> String {
    v["error"]["details"][0]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

pub async fn get(http: &reqwest::Client, url: &str) -> reqwest::Response {
    http.get(url).send().await.unwrap()
}

/// GET `url`: the status and the JSON body (`null` if it is not JSON).
pub async fn get_json(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = get(http, url).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
