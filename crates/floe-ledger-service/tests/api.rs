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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_with_the_success_envelope() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let alice = AccountKey::from_seed(&seed("alice", 0));

    // GET /v1/health on an empty ledger.
    let health = server.get_ok("/v1/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["entries"], 0);
    assert_eq!(health["durableEntries"], 0);
    assert_eq!(health["events"], 0);
    assert_eq!(health["epoch"], 0);
    assert_eq!(health["digest"].as_str().unwrap().len(), 64);
    assert_eq!(
        health["stateHash"].as_str().unwrap(),
        hex::encode(net.genesis_state.state_hash())
    );

    // GET /v1/system: parameters and a committee whose shards partition 0..n_shards.
    let system = server.get_ok("/v1/system").await;
    assert_eq!(system["epoch"], 0);
    assert_eq!(system["nShards"], 10);
    assert_eq!(system["epochDurationMs"], 3_600_000);
    assert_eq!(system["genesisTimeMs"], net.config.genesis_time_ms);
    assert_eq!(system["maxEpochsAhead"], 53);
    assert_eq!(system["totalCapacity"], 4u64 << 40);
    assert_eq!(system["usedCapacity"], 0);
    assert_eq!(
        system["maxBlobSize"],
        EncodingConfig::new(10).unwrap().max_blob_size()
    );
    assert_eq!(
        system["nextEpochStartMs"].as_u64().unwrap()
            - system["currentEpochStartMs"].as_u64().unwrap(),
        3_600_000
    );
    assert!(system["previousCommittee"].is_null(), "{system}");
    let committee = &system["committee"];
    assert_eq!(committee["epoch"], 0);
    assert_eq!(committee["nShards"], 10);
    let members = committee["members"].as_array().unwrap();
    assert_eq!(members.len(), 4);
    let mut shards: Vec<u64> = members
        .iter()
        .flat_map(|m| {
            m["shards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap())
        })
        .collect();
    shards.sort_unstable();
    assert_eq!(
        shards,
        (0..10).collect::<Vec<u64>>(),
        "every shard assigned exactly once"
    );
    for (m, key) in members.iter().zip(&net.keys) {
        assert!(m["name"].as_str().unwrap().starts_with("node-"));
        assert!(m["networkAddress"].is_string());
        assert!(m["owner"].as_str().unwrap().starts_with("0x"));
        assert_eq!(m["capacity"], 1u64 << 40);
        // Members are listed in signer-bitmap order: their keys match ours, in order.
        assert_eq!(
            m["protocolKey"],
            serde_json::to_value(key.public_key()).unwrap()
        );
    }

    // GET /v1/blobs/{id}: a blob nobody registered.
    let data_bytes = b"floe api test blob".repeat(100);
    let meta = compute_metadata(&EncodingConfig::new(10).unwrap(), &data_bytes).unwrap();
    let blob_id = meta.blob_id;
    let root = meta.metadata.root_hash();
    assert_eq!(
        derive_blob_id(EncodingType::RS2, data_bytes.len() as u64, &root),
        blob_id
    );
    let status = server.get_ok(&format!("/v1/blobs/{blob_id}")).await;
    assert_eq!(status["status"]["status"], "nonexistent", "{status}");
    assert_eq!(status["blobId"], blob_id.to_string());
    assert!(status["event"].is_null());

    // POST /v1/transactions: ReserveAndRegister.
    let register = alice.sign(
        0,
        register_kind((blob_id, root, data_bytes.len() as u64), 5, true),
    );
    let registered = server.submit_ok(&register).await;
    assert_eq!(registered["entryIndex"], 0);
    let register_digest = registered["digest"].as_str().unwrap().to_string();
    assert_eq!(register_digest.len(), 64);
    let events = registered["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{registered}");
    assert_eq!(events[0]["index"], 0);
    assert_eq!(events[0]["entryIndex"], 0);
    assert_eq!(events[0]["epoch"], 0);
    let (kind, body) = event_kind(&events[0]);
    assert_eq!(kind, "blobRegistered");
    assert_eq!(body["blobId"], blob_id.to_string());
    assert_eq!(body["owner"], alice.address().to_string());
    assert_eq!(body["endEpoch"], 5);
    assert_eq!(body["deletable"], true);
    let object = registered_object(&registered);

    // Registered status, with its event.
    let status = server.get_ok(&format!("/v1/blobs/{blob_id}")).await;
    assert_eq!(status["status"]["status"], "registered", "{status}");
    assert_eq!(status["status"]["endEpoch"], 5);
    assert_eq!(status["status"]["objectId"], object.to_string());
    assert_eq!(status["event"], events[0]);

    // The other accepted blob-ID forms name the same blob.
    for form in [
        blob_id.to_hex(),
        format!("0x{}", blob_id.to_hex()),
        blob_id.to_decimal(),
    ] {
        let s = server.get_ok(&format!("/v1/blobs/{form}")).await;
        assert_eq!(s["status"]["status"], "registered", "{form}: {s}");
    }

    // POST /v1/transactions: CertifyBlob with a quorum certificate.
    let certify = alice.sign(
        1,
        TxKind::CertifyBlob {
            blob_object: object,
            certificate: net.quorum_certificate(blob_id, object, true),
        },
    );
    let certified = server.submit_ok(&certify).await;
    assert_eq!(certified["entryIndex"], 1);
    let certify_digest = certified["digest"].as_str().unwrap().to_string();
    assert_ne!(certify_digest, register_digest);
    let cert_event = certified["events"][0].clone();
    assert_eq!(event_kind(&cert_event).0, "blobCertified");
    assert_eq!(cert_event["index"], 1);

    let status = server.get_ok(&format!("/v1/blobs/{blob_id}")).await;
    let st = &status["status"];
    assert_eq!(st["status"], "certified", "{status}");
    assert_eq!(st["endEpoch"], 5);
    assert_eq!(st["initialCertifiedEpoch"], 0);
    assert_eq!(st["objectId"], object.to_string());
    assert_eq!(st["permanent"], false);
    assert_eq!(st["event"], 1);
    assert_eq!(
        status["event"], cert_event,
        "the certifying event is included"
    );
    assert_eq!(status["epoch"], 0);

    // GET /v1/objects/{id}: a blob object.
    let obj = server.get_ok(&format!("/v1/objects/{object}")).await;
    let blob = &obj["blob"];
    assert_eq!(blob["id"], object.to_string(), "{obj}");
    assert_eq!(blob["owner"], alice.address().to_string());
    assert_eq!(blob["blobId"], blob_id.to_string());
    assert_eq!(blob["size"], data_bytes.len() as u64);
    assert_eq!(blob["encodingType"], "RS2");
    assert_eq!(blob["certifiedEpoch"], 0);
    assert_eq!(blob["deletable"], true);
    assert_eq!(blob["deleted"], false);
    assert_eq!(blob["storage"]["endEpoch"], 5);
    // Object IDs parse without the 0x prefix too.
    let obj2 = server
        .get_ok(&format!("/v1/objects/{}", hex::encode(object.0)))
        .await;
    assert_eq!(obj2, obj);

    // A storage resource: ReserveSpace.
    let reserve = alice.sign(
        2,
        TxKind::ReserveSpace {
            encoded_size: 1 << 20,
            end_epoch: 3,
        },
    );
    let reserved = server.submit_ok(&reserve).await;
    let (kind, body) = event_kind(&reserved["events"][0]);
    assert_eq!(kind, "storageReserved");
    let storage_id = body["objectId"].as_str().unwrap().to_string();
    let obj = server.get_ok(&format!("/v1/objects/{storage_id}")).await;
    assert_eq!(obj["storage"]["id"], storage_id, "{obj}");
    assert_eq!(obj["storage"]["storageSize"], 1 << 20);
    assert_eq!(obj["storage"]["startEpoch"], 0);
    assert_eq!(obj["storage"]["endEpoch"], 3);

    // A storage node (genesis nodes are objects too).
    let node_id = members[0]["nodeId"].as_str().unwrap();
    let obj = server.get_ok(&format!("/v1/objects/{node_id}")).await;
    assert_eq!(obj["node"]["id"], node_id, "{obj}");
    assert_eq!(obj["node"]["protocolKey"], members[0]["protocolKey"]);

    // A missing object.
    assert_error(
        server
            .get(&format!("/v1/objects/{}", ObjectId([7; 32])))
            .await,
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
    );

    // GET /v1/accounts/{address}.
    let acct = server
        .get_ok(&format!("/v1/accounts/{}", alice.address()))
        .await;
    assert_eq!(acct["address"], alice.address().to_string());
    assert_eq!(acct["nextSequence"], 3);
    assert_eq!(acct["blobs"].as_array().unwrap().len(), 1);
    assert_eq!(acct["blobs"][0]["id"], object.to_string());
    assert_eq!(acct["storage"].as_array().unwrap().len(), 1);
    assert_eq!(acct["storage"][0]["id"], storage_id);
    let nobody = AccountKey::from_seed(&seed("nobody", 0));
    let acct = server
        .get_ok(&format!("/v1/accounts/{}", nobody.address()))
        .await;
    assert_eq!(acct["nextSequence"], 0);
    assert_eq!(acct["blobs"], json!([]));
    assert_eq!(acct["nodes"], json!([]));
    // An operator's account lists the node it runs, so tools need not scan events to find it.
    let operator = AccountKey::from_seed(&seed("operator", 1));
    let acct = server
        .get_ok(&format!("/v1/accounts/{}", operator.address()))
        .await;
    assert_eq!(acct["nodes"].as_array().unwrap().len(), 1, "{acct}");
    assert_eq!(acct["nodes"][0]["name"], "node-1");
    assert_eq!(acct["nodes"][0]["owner"], operator.address().to_string());

    // GET /v1/entries/{i}: the digests the submissions returned.
    for (i, digest) in [(0, &register_digest), (1, &certify_digest)] {
        let e = server.get_ok(&format!("/v1/entries/{i}")).await;
        assert_eq!(e["index"], i);
        assert_eq!(e["digest"].as_str().unwrap(), digest.as_str());
    }
    let e = server.get_ok("/v1/entries/2").await;
    assert_eq!(e["digest"], reserved["digest"]);
    assert_error(
        server.get("/v1/entries/3").await,
        StatusCode::NOT_FOUND,
        "ENTRY_NOT_FOUND",
    );

    // GET /v1/health after three entries.
    let health = server.get_ok("/v1/health").await;
    assert_eq!(health["entries"], 3);
    assert_eq!(health["durableEntries"], 3);
    assert_eq!(health["events"], 3);
    assert_eq!(health["digest"], reserved["digest"]);
    assert!(health["failure"].is_null());

    // GET /v1/api: an OpenAPI document naming every route.
    let (status, api) = server.get("/v1/api").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        api["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{api}"
    );
    let paths = api["paths"].as_object().expect("paths");
    for route in [
        "/v1/transactions",
        "/v1/system",
        "/v1/blobs/{blob_id}",
        "/v1/objects/{object_id}",
        "/v1/accounts/{address}",
        "/v1/events",
        "/v1/entries/{index}",
        "/v1/health",
        "/v1/api",
    ] {
        assert!(paths.contains_key(route), "{route} missing from /v1/api");
    }
    assert!(paths["/v1/transactions"].get("post").is_some());
    assert!(paths["/v1/events"].get("get").is_some());

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_page_with_cursor_and_limit() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let bob = AccountKey::from_seed(&seed("bob", 0));

    // No events yet: an empty page, cursor unchanged, answered at once without waitMs.
    let page = server.get_ok("/v1/events").await;
    assert_eq!(page["events"], json!([]));
    assert_eq!(page["nextCursor"], 0);

    // Seven entries with one event each.
    let mut submitted = Vec::new();
    for i in 0..7u64 {
        let tx = bob.sign(
            i,
            register_kind(synthetic_blob(100 + i, 1000 + i), 2, false),
        );
        submitted.push(server.submit_ok(&tx).await);
    }
    // The stream can trail acknowledgements by a moment (see
    // `acknowledged_events_are_readable_at_once`): wait until the last event is served.
    let tail = server.get_ok("/v1/events?cursor=6&waitMs=5000").await;
    assert_eq!(tail["events"].as_array().unwrap().len(), 1, "{tail}");
    // Pages of 3: 0..3, 3..6, 6..7, then empty.
    let mut cursor = 0u64;
    let mut seen = Vec::new();
    for expected_len in [3usize, 3, 1, 0] {
        let page = server
            .get_ok(&format!("/v1/events?cursor={cursor}&limit=3"))
            .await;
        let events = page["events"].as_array().unwrap();
        assert_eq!(events.len(), expected_len, "{page}");
        for (j, e) in events.iter().enumerate() {
            assert_eq!(e["index"], cursor + j as u64);
        }
        let next = page["nextCursor"].as_u64().unwrap();
        assert_eq!(next, cursor + expected_len as u64);
        cursor = next;
        seen.extend(events.iter().cloned());
    }
    assert_eq!(seen.len(), 7);
    for (e, s) in seen.iter().zip(&submitted) {
        assert_eq!(
            *e, s["events"][0],
            "the stream carries the submitted events"
        );
    }
    // Without a limit: everything from the cursor.
    let page = server.get_ok("/v1/events?cursor=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 5);
    assert_eq!(page["nextCursor"], 7);
    // A cursor past the end, and limit=0 (clamped to 1).
    let page = server.get_ok("/v1/events?cursor=1000").await;
    assert_eq!(page["events"], json!([]));
    assert_eq!(page["nextCursor"], 1000);
    let page = server.get_ok("/v1/events?cursor=0&limit=0").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    // A cursor beyond u32/usize ranges does not panic.
    let page = server
        .get_ok(&format!("/v1/events?cursor={}&limit=1000", u64::MAX))
        .await;
    assert_eq!(page["events"], json!([]));

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_once_a_submission_is_acknowledged() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Arc::new(Server::start(dir.path(), &net.config).await);
    let carol = AccountKey::from_seed(&seed("carol", 0));
    server
        .submit_ok(&carol.sign(0, register_kind(synthetic_blob(200, 10), 2, false)))
        .await;
    let cursor = server.get_ok("/v1/health").await["events"]
        .as_u64()
        .unwrap();
    assert_eq!(cursor, 1);

    // Nothing new: a short wait returns empty after roughly the wait.
    let t = Instant::now();
    let page = server
        .get_ok(&format!("/v1/events?cursor={cursor}&waitMs=300"))
        .await;
    let waited = t.elapsed();
    assert_eq!(page["events"], json!([]));
    assert!(
        waited >= Duration::from_millis(250),
        "returned early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");

    // A 5 s long-poll started before the submission returns promptly after it.
    let poller = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let page = server
                .get_ok(&format!("/v1/events?cursor={cursor}&waitMs=5000"))
                .await;
            (page, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poller.is_finished(),
        "the long-poll returned before any event"
    );
    let accepted = server
        .submit_ok(&carol.sign(1, register_kind(synthetic_blob(201, 10), 2, false)))
        .await;
    let acked_at = Instant::now();
    let (page, returned_at) = tokio::time::timeout(Duration::from_secs(10), poller)
        .await
        .expect("the long-poll returns")
        .unwrap();
    let lag = returned_at.saturating_duration_since(acked_at);
    println!("long-poll returned {lag:?} after the acknowledgement");
    assert!(lag < Duration::from_secs(1), "long-poll lagged {lag:?}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(events[0], accepted["events"][0]);
    assert_eq!(page["nextCursor"], cursor + 1);

    Arc::try_unwrap(server).ok().unwrap().shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Errors: the right 4xx and an error envelope, never a panic or 5xx.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_4xx_with_error_envelopes() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let alice = AccountKey::from_seed(&seed("alice", 1));
    let mallory = AccountKey::from_seed(&seed("mallory", 1));

    let blob = synthetic_blob(300, 4096);
    let good = alice.sign(0, register_kind(blob, 4, true));
    let good_json = serde_json::to_value(&good).unwrap();

    // Malformed JSON.
    assert_error(
        server.post_raw(&b"{\"tx\": {"[..]).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    assert_error(
        server.post_raw(&b"not json at all"[..]).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Valid JSON, wrong shape.
    assert_error(
        server.post_json(&json!({"tx": 1, "signature": "00"})).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    assert_error(
        server.post_json(&json!([1, 2, 3])).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Empty body.
    assert_error(
        server.post_raw(Vec::<u8>::new()).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Unknown top-level field.
    let mut extra = good_json.clone();
    extra["extra"] = json!(true);
    assert_error(
        server.post_json(&extra).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Unknown field in tx.
    let mut extra = good_json.clone();
    extra["tx"]["gasBudget"] = json!(1000);
    assert_error(
        server.post_json(&extra).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Unknown field nested in tx.kind.
    let mut extra = good_json.clone();
    extra["tx"]["kind"]["reserveAndRegister"]["bogus"] = json!(1);
    assert_error(
        server.post_json(&extra).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Unknown transaction kind.
    let mut extra = good_json.clone();
    extra["tx"]["kind"] = json!({"mintMoney": {"amount": 1}});
    assert_error(
        server.post_json(&extra).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Signature of the wrong length.
    let mut extra = good_json.clone();
    extra["signature"] = json!("abcd");
    assert_error(
        server.post_json(&extra).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Body over 512 KiB: a large but well-formed JSON document.
    let mut huge = good_json.clone();
    huge["padding"] = json!("x".repeat(600 * 1024));
    assert_error(
        server.post_json(&huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "BODY_TOO_LARGE",
    );
    // None of the above reached the ledger.
    assert_eq!(server.get_ok("/v1/health").await["entries"], 0);

    // Bad signature: one bit flipped.
    let mut forged = good.clone();
    forged.signature[10] ^= 0x01;
    assert_error(
        server.post_tx(&forged).await,
        StatusCode::UNAUTHORIZED,
        "BAD_SIGNATURE",
    );
    // A signature by another key over the same transaction.
    let mut stolen = mallory.sign(0, register_kind(blob, 4, true));
    stolen.tx.sender = alice.public_key();
    assert_error(
        server.post_tx(&stolen).await,
        StatusCode::UNAUTHORIZED,
        "BAD_SIGNATURE",
    );

    // Wrong sequence (too high, then replayed).
    assert_error(
        server
            .post_tx(&alice.sign(5, register_kind(blob, 4, true)))
            .await,
        StatusCode::CONFLICT,
        "BAD_SEQUENCE",
    );
    let registered = server.submit_ok(&good).await;
    let object = registered_object(&registered);
    assert_error(
        server.post_tx(&good).await,
        StatusCode::CONFLICT,
        "BAD_SEQUENCE",
    );

    // Non-owner delete.
    assert_error(
        server
            .post_tx(&mallory.sign(
                0,
                TxKind::DeleteBlob {
                    blob_object: object,
                },
            ))
            .await,
        StatusCode::FORBIDDEN,
        "NOT_OWNER",
    );
    // Rejections do not consume the sender's sequence number.
    assert_eq!(server.next_sequence(&mallory).await, 0);

    // Under-weight certificate: signed by members holding fewer than n − f shards.
    let quorum = net.quorum();
    let mut signers = net.signers_with_weight(quorum);
    signers.pop();
    let weight: usize = signers
        .iter()
        .map(|&i| net.genesis_state.committee().members[i].shards.len())
        .sum();
    assert!(weight < usize::from(quorum));
    let weak = net.certificate(blob.0, object, true, 0, &signers);
    assert_error(
        server
            .post_tx(&alice.sign(
                1,
                TxKind::CertifyBlob {
                    blob_object: object,
                    certificate: weak,
                },
            ))
            .await,
        StatusCode::BAD_REQUEST,
        "BAD_CERTIFICATE",
    );
    // A quorum certificate for another blob object.
    let other = net.quorum_certificate(blob.0, ObjectId([9; 32]), true);
    assert_error(
        server
            .post_tx(&alice.sign(
                1,
                TxKind::CertifyBlob {
                    blob_object: object,
                    certificate: other,
                },
            ))
            .await,
        StatusCode::BAD_REQUEST,
        "BAD_CERTIFICATE",
    );
    // Certifying a missing object.
    assert_error(
        server
            .post_tx(&alice.sign(
                1,
                TxKind::CertifyBlob {
                    blob_object: ObjectId([9; 32]),
                    certificate: net.quorum_certificate(blob.0, ObjectId([9; 32]), true),
                },
            ))
            .await,
        StatusCode::NOT_FOUND,
        "NO_SUCH_OBJECT",
    );
    // A blob ID that does not match its derivation.
    let (_, root, size) = synthetic_blob(301, 10);
    assert_error(
        server
            .post_tx(&alice.sign(
                1,
                TxKind::ReserveAndRegister {
                    end_epoch: 3,
                    blob_id: blob.0,
                    root_hash: root,
                    size,
                    encoding_type: EncodingType::RS2,
                    deletable: false,
                },
            ))
            .await,
        StatusCode::BAD_REQUEST,
        "BLOB_ID_MISMATCH",
    );
    // The blob is still only registered, and alice's sequence is 1.
    let st = server.get_ok(&format!("/v1/blobs/{}", blob.0)).await;
    assert_eq!(st["status"]["status"], "registered");
    assert_eq!(server.next_sequence(&alice).await, 1);

    // Bad path parameters.
    for bad in ["not-a-blob-id", "0x1234", "%20", "zzzz"] {
        assert_error(
            server.get(&format!("/v1/blobs/{bad}")).await,
            StatusCode::BAD_REQUEST,
            "BAD_BLOB_ID",
        );
    }
    assert_error(
        server.get("/v1/objects/0xzz").await,
        StatusCode::BAD_REQUEST,
        "BAD_OBJECT_ID",
    );
    assert_error(
        server.get("/v1/accounts/alice").await,
        StatusCode::BAD_REQUEST,
        "BAD_ADDRESS",
    );

    // Bad query parameters on /v1/events.
    for q in [
        "cursor=abc",
        "limit=-1",
        "waitMs=soon",
        "cursor=1.5",
        "unknownParam=1",
    ] {
        assert_error(
            server.get(&format!("/v1/events?{q}")).await,
            StatusCode::BAD_REQUEST,
            "BAD_QUERY",
        );
    }

    // Unknown routes.
    for path in ["/v1/nope", "/", "/v2/health", "/v1/blobs", "/v1/blobs/a/b"] {
        assert_error(
            server.get(path).await,
            StatusCode::NOT_FOUND,
            "NO_SUCH_ROUTE",
        );
    }

    // The server is still healthy and nothing was logged but the one registration.
    let health = server.get_ok("/v1/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["entries"], 1);

    server.shutdown().await;
}

/// Errors raised by axum's own extractors and router, outside the handlers' error mapping.
/// Known gap in `src/api.rs` (reported): `GET /v1/entries/abc` answers a plain-text 400 from the
/// `Path<u64>` extractor, and a wrong method on a known route answers 405 with an empty body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_level_errors_use_the_error_envelope() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let mut failures = Vec::new();

    // A non-numeric entry index (the `Path<u64>` extractor).
    let got = server.get("/v1/entries/abc").await;
    if !(got.0.is_client_error() && got.1.get("error").is_some()) {
        failures.push(format!("GET /v1/entries/abc -> {} {}", got.0, got.1));
    }
    // A known route with the wrong method.
    let resp = server
        .client
        .get(server.url("/v1/transactions"))
        .send()
        .await
        .unwrap();
    let got = split(resp).await;
    if !(got.0.is_client_error() && got.1.get("error").is_some()) {
        failures.push(format!("GET /v1/transactions -> {} {}", got.0, got.1));
    }
    let resp = server
        .client
        .post(server.url("/v1/health"))
        .send()
        .await
        .unwrap();
    let got = split(resp).await;
    if !(got.0.is_client_error() && got.1.get("error").is_some()) {
        failures.push(format!("POST /v1/health -> {} {}", got.0, got.1));
    }
    server.shutdown().await;
    assert!(
        failures.is_empty(),
        "answers without an error envelope:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The epoch clock.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_clock_advances_epochs_by_itself() {
    let net = TestNet::new(4, 10, 1_000);
    let dir = tempdir();
    let ledger = Ledger::open(dir.path(), net.config.clone(), Arc::new(SystemClock)).unwrap();
    ledger.spawn_epoch_clock(Duration::from_millis(50));
    let server = Server::serve(ledger).await;

    let start = Instant::now();
    let mut cursor = 0u64;
    let mut started = Vec::new();
    let mut done = Vec::new();
    let (mut selected, mut challenges) = (Vec::new(), Vec::new());
    while done.len() < 2 && start.elapsed() < Duration::from_secs(5) {
        let page = server
            .get_ok(&format!("/v1/events?cursor={cursor}&waitMs=500"))
            .await;
        for e in page["events"].as_array().unwrap() {
            match event_kind(e) {
                ("epochChangeStart", b) => started.push(b["epoch"].as_u64().unwrap()),
                ("epochChangeDone", b) => done.push(b["epoch"].as_u64().unwrap()),
                ("epochParametersSelected", b) => selected.push(b["nextEpoch"].as_u64().unwrap()),
                ("challengesStarted", b) => challenges.push(b["epoch"].as_u64().unwrap()),
                (other, _) => panic!("unexpected event {other}: {e}"),
            }
        }
        cursor = page["nextCursor"].as_u64().unwrap();
    }
    let elapsed = start.elapsed();
    println!("epochs started {started:?}, done {done:?} after {elapsed:?}");
    assert!(
        started.len() >= 2 && done.len() >= 2,
        "fewer than two epoch changes within {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "two epoch changes took {elapsed:?}"
    );
    assert_eq!(started[..2], [1, 2]);
    assert_eq!(done[..2], [1, 2]);
    // Each next committee was fixed (half an epoch in) before its epoch started, and each
    // finished change fixed that epoch's storage challenges.
    assert_eq!([&selected[..2], &challenges[..2]], [[1, 2], [1, 2]]);

    let system = server.get_ok("/v1/system").await;
    let epoch = system["epoch"].as_u64().unwrap();
    assert!(epoch >= 2, "{system}");
    assert_eq!(system["committee"]["epoch"], epoch);
    assert_eq!(system["previousCommittee"]["epoch"], epoch - 1);
    assert_eq!(system["epochState"], "done");
    // The epoch in force is the one the clock says (give or take one tick).
    let by_clock = (now_ms() - net.config.genesis_time_ms) / 1000;
    assert!(
        epoch + 1 >= by_clock && epoch <= by_clock,
        "{epoch} vs {by_clock}"
    );

    // A certificate from an old epoch no longer certifies.
    let dave = AccountKey::from_seed(&seed("dave", 0));
    let blob = synthetic_blob(400, 100);
    let seq = server.next_sequence(&dave).await;
    let registered = server
        .submit_ok(&dave.sign(seq, register_kind(blob, epoch as u32 + 5, false)))
        .await;
    let object = registered_object(&registered);
    let stale = net.certificate(
        blob.0,
        object,
        false,
        0,
        &net.signers_with_weight(net.quorum()),
    );
    let (status, body) = server
        .post_tx(&dave.sign(
            seq + 1,
            TxKind::CertifyBlob {
                blob_object: object,
                certificate: stale,
            },
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"]["details"][0]["reason"], "WRONG_EPOCH",
        "{body}"
    );

    server.shutdown().await;
}

/// Opens the ledger in `dir`, retrying (for at most 5 s) while the previous instance's log lock
/// is still held; returns it with the number of refused attempts.
async fn reopen(dir: &Path, config: &GenesisConfig) -> (Arc<Ledger>, u32) {
    let t = Instant::now();
    let mut locked_attempts = 0;
    loop {
        match Ledger::open(dir, config.clone(), Arc::new(SystemClock)) {
            Ok(l) => return (l, locked_attempts),
            Err(OpenError::Log(floe_log::LogError::Locked { .. }))
                if t.elapsed() < Duration::from_secs(5) =>
            {
                locked_attempts += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("reopen failed after {:?}: {e}", t.elapsed()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Restart on the same directory.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovers_the_same_state() {
    let net = TestNet::new(7, 100, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let accounts: Vec<_> = (0..3)
        .map(|i| AccountKey::from_seed(&seed("restart", i)))
        .collect();
    let mut acked = Vec::new();
    let mut objects = Vec::new();
    let mut events = Vec::new();
    for (a, who) in accounts.iter().enumerate() {
        for k in 0..2u64 {
            let blob = synthetic_blob(500 + 10 * a as u64 + k, 1 + 1000 * k);
            let seq = 2 * k;
            let r = server
                .submit_ok(&who.sign(seq, register_kind(blob, 10, k == 0)))
                .await;
            let object = registered_object(&r);
            acked.push((r["entryIndex"].as_u64().unwrap(), r["digest"].clone()));
            events.extend(r["events"].as_array().unwrap().iter().cloned());
            let c = server
                .submit_ok(&who.sign(
                    seq + 1,
                    TxKind::CertifyBlob {
                        blob_object: object,
                        certificate: net.quorum_certificate(blob.0, object, k == 0),
                    },
                ))
                .await;
            acked.push((c["entryIndex"].as_u64().unwrap(), c["digest"].clone()));
            events.extend(c["events"].as_array().unwrap().iter().cloned());
            objects.push((object, blob.0));
        }
    }
    let before = server.get_ok("/v1/health").await;
    assert_eq!(before["entries"], 12);

    // Stop the server and drop every handle on the ledger. (The log's worker thread releases
    // the file lock a moment after the last handle goes: see `reopen_right_after_drop_is_not_locked`.)
    let ledger = server.shutdown().await;
    drop(ledger);
    let (ledger, locked_attempts) = reopen(dir.path(), &net.config).await;
    if locked_attempts > 0 {
        eprintln!("the log stayed locked for {locked_attempts} reopen attempts after the drop");
    }
    let server = Server::serve(ledger).await;

    let after = server.get_ok("/v1/health").await;
    assert_eq!(after["digest"], before["digest"]);
    assert_eq!(after["stateHash"], before["stateHash"]);
    assert_eq!(after["entries"], before["entries"]);
    assert_eq!(after["events"], before["events"]);
    let page = server.get_ok("/v1/events").await;
    assert_eq!(
        page["events"],
        Value::Array(events),
        "the recovered event stream"
    );
    assert_eq!(page["nextCursor"], before["events"]);
    for (i, digest) in &acked {
        assert_eq!(
            server.get_ok(&format!("/v1/entries/{i}")).await["digest"],
            *digest
        );
    }
    for (object, blob_id) in &objects {
        let o = server.get_ok(&format!("/v1/objects/{object}")).await;
        assert_eq!(o["blob"]["certifiedEpoch"], 0, "{o}");
        let s = server.get_ok(&format!("/v1/blobs/{blob_id}")).await;
        assert_eq!(s["status"]["status"], "certified", "{s}");
    }

    // Sequence numbers continue where they were.
    for who in &accounts {
        assert_eq!(server.next_sequence(who).await, 4);
        assert_error(
            server
                .post_tx(&who.sign(3, register_kind(synthetic_blob(600, 5), 3, false)))
                .await,
            StatusCode::CONFLICT,
            "BAD_SEQUENCE",
        );
    }
    let r = server
        .submit_ok(&accounts[0].sign(4, register_kind(synthetic_blob(601, 5), 3, false)))
        .await;
    assert_eq!(r["entryIndex"], 12);
    assert_eq!(server.next_sequence(&accounts[0]).await, 5);

    // While the ledger is open, a second open of the same directory is refused.
    match Ledger::open(dir.path(), net.config.clone(), Arc::new(SystemClock)) {
        Err(OpenError::Log(floe_log::LogError::Locked { .. })) => {}
        Err(e) => panic!("unexpected error for a second open: {e}"),
        Ok(_) => panic!("a second ledger opened the same directory"),
    }

    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Read-your-writes on the event stream.
// ---------------------------------------------------------------------------------------------

/// Once a submission is acknowledged, its events are durable, so the event stream must serve
/// them without waiting. Known bug (reported): `Ledger::events` reads `durable_events`, which a
/// separate task (`spawn_watermark_follower`) copies from the log's watermark *after* the
/// acknowledgement can already have been sent, so a read right after an ack can miss the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_are_readable_at_once() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let who = AccountKey::from_seed(&seed("ryw", 0));
    let (mut ledger_misses, mut http_misses) = (0, 0);
    for i in 0..200u64 {
        // Through the library: submit, then read the stream from the new event's index.
        let tx = who.sign(
            2 * i,
            register_kind(synthetic_blob(10_000 + 2 * i, 10), 2, false),
        );
        let accepted = server.ledger.submit_tx(tx).await.unwrap();
        let first = accepted.events[0].index;
        if server
            .ledger
            .events(first, 10, Duration::ZERO)
            .await
            .is_empty()
        {
            ledger_misses += 1;
        }
        // Over HTTP: POST, then GET /v1/events from the new event's index.
        let tx = who.sign(
            2 * i + 1,
            register_kind(synthetic_blob(10_001 + 2 * i, 10), 2, false),
        );
        let accepted = server.submit_ok(&tx).await;
        let first = accepted["events"][0]["index"].as_u64().unwrap();
        let page = server.get_ok(&format!("/v1/events?cursor={first}")).await;
        if page["events"].as_array().unwrap().is_empty() {
            http_misses += 1;
        }
    }
    server.shutdown().await;
    assert_eq!(
        (ledger_misses, http_misses),
        (0, 0),
        "acknowledged events missing from an immediate read (library, HTTP) out of 200 each"
    );
}

/// Dropping the last `Arc<Ledger>` must release the log, so the directory can be reopened at
/// once. Known bug (reported): the `GroupCommitter` is dropped without joining its worker
/// thread, which closes the log file (and its `flock`) only when it next runs; and the
/// watermark-follower task briefly holds a strong `Arc<Ledger>` after every commit, so the
/// "last" handle a caller drops may not be the last. With the CPU busy, an immediate reopen is
/// refused with `Locked` in roughly half the attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_right_after_drop_is_not_locked() {
    let net = TestNet::new(1, 10, 3_600_000);
    let who = AccountKey::from_seed(&seed("reopen", 0));
    // Busy threads make the race visible, as on a loaded machine.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..3)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let (mut locked, mut still_shared) = (0, 0);
    let dir = tempdir();
    for i in 0..50u64 {
        let (ledger, _) = reopen(dir.path(), &net.config).await;
        let tx = who.sign(i, register_kind(synthetic_blob(20_000 + i, 10), 2, false));
        ledger.submit_tx(tx).await.unwrap();
        if Arc::strong_count(&ledger) > 1 {
            still_shared += 1;
        }
        drop(ledger);
        match Ledger::open(dir.path(), net.config.clone(), Arc::new(SystemClock)) {
            Ok(l) => drop(l),
            Err(OpenError::Log(floe_log::LogError::Locked { .. })) => locked += 1,
            Err(e) => panic!("reopen failed: {e}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    assert_eq!(
        (locked, still_shared),
        (0, 0),
        "(immediate reopens refused as Locked, rounds where another Arc<Ledger> was alive right \
         after an acknowledged submit) out of 50"
    );
}
