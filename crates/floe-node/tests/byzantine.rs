//! Recovery with a lying peer: seven real nodes (n = 10, f = 3); one node's address is fronted
//! by a proxy that corrupts every recovery symbol it forwards. A wiped node must still recover
//! exactly its slivers, skipping the bad symbols.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use floe_core::recovery::{EitherDecodingSymbol, GeneralRecoverySymbol};
use floe_core::{EncodingConfig, EncodingType, ShardIndex, Sliver, SliverType, encode};
use floe_crypto::{
    Certificate, CommitteeMember, CommitteeWeights, ProofOfPossession, ProtocolKeyPair,
};
use floe_ledger::{AccountKey, GenesisConfig, GenesisNode, TxKind};
use floe_ledger_client::{AccountSession, LedgerClient};
use floe_ledger_service::{Ledger, SystemClock};
use floe_node::config::{Limits, NodeConfig, NodeKeysFile};
use floe_node_client::NodeClient;

const N: u16 = 10;
const NODES: usize = 7;

fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    corrupted: Arc<AtomicU64>,
}

/// Forward everything to the real node; flip a byte in every recovery symbol on the way back.
async fn proxy(State(p): State<Proxy>, req: Request) -> Response {
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
    if path.contains("/recoverySymbols")
        && status.is_success()
        && let Ok(mut symbols) = bcs::from_bytes::<Vec<GeneralRecoverySymbol>>(&bytes)
    {
        for s in &mut symbols {
            match &mut s.symbol {
                EitherDecodingSymbol::Primary(d) | EitherDecodingSymbol::Secondary(d) => {
                    d.data[0] ^= 0xa5
                }
            }
            p.corrupted.fetch_add(1, Ordering::Relaxed);
        }
        bytes = bcs::to_bytes(&symbols).unwrap().into();
    }
    let mut r = (status, bytes).into_response();
    if let Some(ct) = ct {
        r.headers_mut().insert("content-type", ct);
    }
    r
}

async fn start_node(
    dir: &std::path::Path,
    ledger_url: &str,
    listener: tokio::net::TcpListener,
) -> tokio::task::JoinHandle<()> {
    let config = NodeConfig {
        storage_path: dir.join("data"),
        keys_path: dir.join("keys.json"),
        listen_address: listener.local_addr().unwrap().to_string(),
        ledger_url: ledger_url.into(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_skips_a_peer_that_serves_corrupted_symbols() {
    let root = tempfile::tempdir().unwrap();
    let keys: Vec<ProtocolKeyPair> = (0..NODES)
        .map(|i| ProtocolKeyPair::from_seed(&seed("bls", i as u64)))
        .collect();
    let ops: Vec<AccountKey> = (0..NODES)
        .map(|i| AccountKey::from_seed(&seed("op", i as u64)))
        .collect();
    let mut publics = Vec::new();
    let mut addresses = Vec::new();
    for i in 0..NODES {
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
        publics.push(Some(l));
        addresses.push(address);
    }
    let genesis = GenesisConfig {
        version: 1,
        n_shards: N,
        epoch_duration_ms: 3_600_000,
        genesis_time_ms: floe_ledger_service::Clock::now_ms(&SystemClock),
        max_epochs_ahead: 53,
        nodes: (0..NODES)
            .map(|i| GenesisNode {
                name: format!("node-{i}"),
                network_address: addresses[i].clone(),
                protocol_key: *keys[i].public_key(),
                proof_of_possession: ProofOfPossession::create(&keys[i], 0, &ops[i].address().0),
                owner: ops[i].address(),
                capacity: 1 << 40,
                weight: 1,
            })
            .collect(),
    };
    let ledger = Ledger::open(&root.path().join("ledger"), genesis, Arc::new(SystemClock)).unwrap();
    let ll = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ledger_url = format!("http://{}", ll.local_addr().unwrap());
    tokio::spawn(floe_ledger_service::serve(
        ledger,
        ll,
        std::future::pending(),
    ));
    let ledger_client = LedgerClient::new(ledger_url.clone());
    let system = ledger_client.system().await.unwrap();
    let member_of = |addr: &str| {
        system
            .committee
            .members
            .iter()
            .position(|m| m.network_address == addr)
            .unwrap()
    };
    // The liar holds 2 shards, the victim 1: together 3 = f, so recovery must still succeed.
    let liar = (0..NODES)
        .find(|&i| {
            system.committee.members[member_of(&addresses[i])]
                .shards
                .len()
                == 2
        })
        .unwrap();
    let victim = (0..NODES)
        .find(|&i| {
            system.committee.members[member_of(&addresses[i])]
                .shards
                .len()
                == 1
        })
        .unwrap();
    let corrupted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, public) in publics.iter_mut().enumerate() {
        let public = public.take().unwrap();
        let dir = root.path().join(format!("node-{i}"));
        if i == liar {
            let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let upstream = format!("http://{}", inner.local_addr().unwrap());
            tasks.push(Some(start_node(&dir, &ledger_url, inner).await));
            let state = Proxy {
                upstream,
                http: reqwest::Client::new(),
                corrupted: corrupted.clone(),
            };
            let app = axum::Router::new().fallback(proxy).with_state(state);
            tokio::spawn(async move { axum::serve(public, app).await.unwrap() });
        } else {
            tasks.push(Some(start_node(&dir, &ledger_url, public).await));
        }
    }

    // Store and certify a blob.
    let config = EncodingConfig::new(N).unwrap();
    let data: Vec<u8> = (0..30_000u32)
        .map(|i| (i.wrapping_mul(2246822519) >> 11) as u8)
        .collect();
    let e = encode(&config, &data).unwrap();
    let blob_id = e.blob_id();
    let user = AccountSession::new(
        AccountKey::from_seed(&seed("user", 9)),
        ledger_client.clone(),
    );
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
    let object = reg.events.iter().find_map(|ev| match &ev.kind {
        floe_ledger::EventKind::BlobRegistered { object_id, .. } => Some(*object_id),
        _ => None,
    });
    let http = reqwest::Client::new();
    let mut partials = Vec::new();
    for (idx, member) in system.committee.members.iter().enumerate() {
        let client = NodeClient::new(
            http.clone(),
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
                "node {idx} never saw the registration"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let slivers: Vec<_> = member
            .shards
            .iter()
            .flat_map(|&s| {
                let pair = ShardIndex(s).to_pair_index(N, &blob_id);
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
        system
            .committee
            .members
            .iter()
            .map(|m| CommitteeMember {
                public_key: m.protocol_key,
                weight: m.shards.len() as u16,
            })
            .collect(),
        N,
    )
    .unwrap();
    user.submit(TxKind::CertifyBlob {
        blob_object: object.unwrap(),
        certificate: Certificate::aggregate(&weights, &partials).unwrap(),
    })
    .await
    .unwrap();

    // Wipe the victim and restart it; it recovers despite the liar.
    let task = tasks[victim].take().unwrap();
    task.abort();
    let _ = task.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let vdir = root.path().join(format!("node-{victim}"));
    std::fs::remove_dir_all(vdir.join("data")).unwrap();
    let l = tokio::net::TcpListener::bind(&addresses[victim])
        .await
        .unwrap();
    let _restarted = start_node(&vdir, &ledger_url, l).await;
    let client = NodeClient::new(http.clone(), &addresses[victim], Duration::from_secs(10));
    let shard = system.committee.members[member_of(&addresses[victim])].shards[0];
    let pair = ShardIndex(shard).to_pair_index(N, &blob_id);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = client
            .sliver_status(&blob_id, pair, SliverType::Primary)
            .await
            .ok();
        let s = client
            .sliver_status(&blob_id, pair, SliverType::Secondary)
            .await
            .ok();
        if p.as_deref() == Some("stored") && s.as_deref() == Some("stored") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery despite only f unavailable or lying shards"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expected = e.sliver_pair(pair);
    assert_eq!(
        client
            .get_sliver(&blob_id, pair, SliverType::Primary)
            .await
            .unwrap(),
        expected.primary
    );
    assert_eq!(
        client
            .get_sliver(&blob_id, pair, SliverType::Secondary)
            .await
            .unwrap(),
        expected.secondary
    );
    println!(
        "recovered despite a lying peer; corrupted symbols served by it: {}",
        corrupted.load(Ordering::Relaxed)
    );
}
