//! One real ledger and one real storage node holding every shard, on loopback sockets with
//! on-disk storage: the harness of the node API tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use floe_core::BlobId;
use floe_crypto::ProtocolKeyPair;
use floe_node::config::Limits;
use floe_testbed::{Testbed, TestbedOptions};
use serde_json::Value;

pub const N: u16 = 10;

pub fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

/// The testbed's key seed.
const BED_SEED: u64 = 0;

/// A [`Testbed`] of one node holding every shard (its confirmation alone is a quorum) over
/// plain HTTP, with the node not started: for tests that start it their own way. The testbed
/// lives in the returned directory.
pub async fn bed(limits: Limits) -> (tempfile::TempDir, Testbed) {
    let root = tempfile::tempdir().unwrap();
    let bed = Testbed::start(
        &root.path().join("bed"),
        TestbedOptions {
            nodes: 1,
            n_shards: N,
            seed: BED_SEED,
            node_limits: limits,
            // Plain HTTP: these tests talk to the node with raw HTTP requests.
            disable_tls: true,
            start_nodes: false,
            ..TestbedOptions::default()
        },
    )
    .await
    .unwrap();
    (root, bed)
}

/// The limits of [`Net::new`]'s node: 1 MiB bodies, no periodic maintenance during a test, and
/// upload buffers freed after 1–2 s without uploads.
pub fn net_limits() -> Limits {
    Limits {
        max_body_bytes: 1 << 20,
        maintenance_interval_secs: 24 * 3600,
        upload_buffers_idle_ms: 1000,
        ..Limits::default()
    }
}

/// The one-node network, its node running.
pub struct Net {
    pub bed: Testbed,
    pub ledger_url: String,
    pub node_url: String,
    pub key: ProtocolKeyPair,
    pub http: reqwest::Client,
    _root: tempfile::TempDir,
}

impl Net {
    pub async fn new() -> Self {
        Self::with_limits(net_limits()).await
    }

    pub async fn with_limits(limits: Limits) -> Self {
        let (root, mut bed) = bed(limits).await;
        bed.start_node(0).await.unwrap();
        Self {
            ledger_url: bed.ledger_url(),
            node_url: format!("http://{}", bed.node_address(0)),
            key: floe_testbed::node_protocol_key(BED_SEED, 0),
            http: reqwest::Client::new(),
            bed,
            _root: root,
        }
    }

    /// Stop the node and start it again on the same directory and address.
    pub async fn restart_node(&mut self) {
        self.bed.stop_node(0).await;
        self.bed.start_node(0).await.unwrap();
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
