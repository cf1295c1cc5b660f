//! The ledger's HTTP API against a real server on a real socket: every route, the success and
//! error envelopes, long-polling, the epoch clock, and a restart on the same data directory.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_core::metadata::derive_blob_id;
use floe_core::{BlobId, EncodingConfig, EncodingType, ObjectId, compute_metadata};
use floe_crypto::{BlobPersistenceType, Certificate, Confirmation, ProtocolKeyPair, SignedMessage};
use floe_ledger::{AccountKey, GenesisConfig, GenesisNode, LedgerState, SignedTransaction, TxKind};
use floe_ledger_service::{Ledger, OpenError, SystemClock};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------------
// Test network: a genesis with BLS node keys, kept in committee (signer-bitmap) order.
// ---------------------------------------------------------------------------------------------

use common::seed;

fn now_ms() -> u64 {
    floe_ledger_service::Clock::now_ms(&SystemClock)
}

struct TestNet {
    config: GenesisConfig,
    /// The genesis state, for the committee's certificate weights.
    genesis_state: LedgerState,
    /// BLS keys in committee member order.
    keys: Vec<ProtocolKeyPair>,
}

impl TestNet {
    fn new(n_nodes: usize, n_shards: u16, epoch_duration_ms: u64) -> Self {
        let bls: Vec<_> = (0..n_nodes)
            .map(|i| ProtocolKeyPair::from_seed(&seed("bls", i as u64)))
            .collect();
        let nodes = bls
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let op = AccountKey::from_seed(&seed("operator", i as u64));
                GenesisNode::new(
                    format!("node-{i}"),
                    format!("127.0.0.1:{}", 31000 + i),
                    k,
                    &op,
                    1 << 40,
                )
            })
            .collect();
        let config = GenesisConfig::new(n_shards, epoch_duration_ms, now_ms(), nodes);
        let genesis_state = LedgerState::genesis(&config).expect("valid genesis");
        let keys = genesis_state
            .committee()
            .members
            .iter()
            .map(|m| {
                let pk = genesis_state.nodes()[&m.node_id].protocol_key;
                bls.iter()
                    .find(|k| *k.public_key() == pk)
                    .expect("every member has a key")
                    .clone()
            })
            .collect();
        Self {
            config,
            genesis_state,
            keys,
        }
    }

    /// The smallest committee prefix whose shards sum to at least `weight`.
    fn signers_with_weight(&self, weight: u16) -> Vec<usize> {
        let mut acc = 0u16;
        let mut out = Vec::new();
        for (i, m) in self.genesis_state.committee().members.iter().enumerate() {
            if acc >= weight {
                break;
            }
            acc += m.shards.len() as u16;
            out.push(i);
        }
        out
    }

    fn quorum(&self) -> u16 {
        self.genesis_state.encoding_config().quorum()
    }

    /// A confirmation certificate (for an epoch-0 committee) signed by `signers`.
    fn certificate(
        &self,
        blob_id: BlobId,
        object: ObjectId,
        deletable: bool,
        epoch: u32,
        signers: &[usize],
    ) -> Certificate {
        let persistence = if deletable {
            BlobPersistenceType::Deletable { object_id: object }
        } else {
            BlobPersistenceType::Permanent
        };
        let msg = Confirmation::new(epoch, blob_id, persistence).to_message();
        let partials: Vec<_> = signers
            .iter()
            .map(|&i| (i, SignedMessage::sign(&self.keys[i], &msg)))
            .collect();
        Certificate::aggregate(self.genesis_state.committee_weights(), &partials).unwrap()
    }

    fn quorum_certificate(
        &self,
        blob_id: BlobId,
        object: ObjectId,
        deletable: bool,
    ) -> Certificate {
        self.certificate(
            blob_id,
            object,
            deletable,
            0,
            &self.signers_with_weight(self.quorum()),
        )
    }
}

/// A synthetic blob: its ID is derived exactly as the ledger checks it.
fn synthetic_blob(tag: u64, size: u64) -> (BlobId, [u8; 32], u64) {
    let root = seed("root", tag);
    (derive_blob_id(EncodingType::RS2, size, &root), root, size)
}

fn register_kind(blob: (BlobId, [u8; 32], u64), end_epoch: u32, deletable: bool) -> TxKind {
    TxKind::ReserveAndRegister {
        end_epoch,
        blob_id: blob.0,
        root_hash: blob.1,
        size: blob.2,
        encoding_type: EncodingType::RS2,
        deletable,
    }
}

// ---------------------------------------------------------------------------------------------
// A real server on 127.0.0.1:0.
// ---------------------------------------------------------------------------------------------

struct Server {
    base: String,
    client: reqwest::Client,
    ledger: Arc<Ledger>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(dir: &Path, config: &GenesisConfig) -> Server {
        let ledger =
            Ledger::open(dir, config.clone(), Arc::new(SystemClock)).expect("ledger opens");
        Self::serve(ledger).await
    }

    async fn serve(ledger: Arc<Ledger>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(floe_ledger_service::serve(
            Arc::clone(&ledger),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Server {
            base: format!("http://{addr}"),
            client,
            ledger,
            stop: Some(stop),
            task,
        }
    }

    /// Graceful shutdown; returns the ledger handle (the server's clones are gone).
    async fn shutdown(mut self) -> Arc<Ledger> {
        drop(self.client);
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the server stops within 10 s")
            .expect("the server task does not panic")
            .expect("the server exits cleanly");
        self.ledger
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        split(resp).await
    }

    async fn post_raw(&self, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url("/v1/transactions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        split(resp).await
    }

    async fn post_json(&self, body: &Value) -> (StatusCode, Value) {
        self.post_raw(serde_json::to_vec(body).unwrap()).await
    }

    async fn post_tx(&self, tx: &SignedTransaction) -> (StatusCode, Value) {
        self.post_json(&serde_json::to_value(tx).unwrap()).await
    }

    /// Submit and require acceptance; returns the `data` of the success envelope.
    async fn submit_ok(&self, tx: &SignedTransaction) -> Value {
        let (status, body) = self.post_tx(tx).await;
        assert_eq!(status, StatusCode::OK, "submission refused: {body}");
        data(&body).clone()
    }

    async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        data(&body).clone()
    }

    async fn next_sequence(&self, who: &AccountKey) -> u64 {
        self.get_ok(&format!("/v1/accounts/{}", who.address()))
            .await["nextSequence"]
            .as_u64()
            .unwrap()
    }
}

async fn split(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"__not_json__": String::from_utf8_lossy(&bytes).to_string()}));
    (status, value)
}

/// The `data` of a success envelope, after checking the envelope's shape.
#[track_caller]
fn data(body: &Value) -> &Value {
    let success = body
        .get("success")
        .unwrap_or_else(|| panic!("not a success envelope: {body}"));
    assert_eq!(success["code"], 200, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    &success["data"]
}

/// Checks the HTTP status and the error envelope with its reason.
#[track_caller]
fn assert_error(got: (StatusCode, Value), status: StatusCode, reason: &str) {
    let (http, body) = got;
    assert_eq!(http, status, "HTTP status; body {body}");
    let error = body
        .get("error")
        .unwrap_or_else(|| panic!("not an error envelope: {body}"));
    assert_eq!(error["code"], status.as_u16(), "{body}");
    assert!(error["status"].is_string(), "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let detail = &error["details"][0];
    assert_eq!(detail["@type"], "ErrorInfo", "{body}");
    assert_eq!(detail["reason"], reason, "{body}");
    assert_eq!(detail["domain"], "ledger.floe", "{body}");
}

fn event_kind(e: &Value) -> (&str, &Value) {
    let kind = e["kind"].as_object().expect("event kind is an object");
    assert_eq!(kind.len(), 1, "{e}");
    let (name, body) = kind.iter().next().unwrap();
    (name.as_str(), body)
}

fn registered_object(submit_data: &Value) -> ObjectId {
    submit_data["events"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| match event_kind(e) {
            ("blobRegistered", b) => Some(b["objectId"].as_str().unwrap().parse().unwrap()),
            _ => None,
        })
        .expect("a blobRegistered event")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Every route, success paths.
// ---------------------------------------------------------------------------------------------

// The scenarios, a file per concern.
#[path = "api/errors.rs"]
mod errors;
#[path = "api/events.rs"]
mod events;
#[path = "api/lifecycle.rs"]
mod lifecycle;
#[path = "api/success.rs"]
mod success;
