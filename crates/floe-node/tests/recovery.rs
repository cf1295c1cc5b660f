//! Four real nodes and a real ledger on loopback sockets. A blob is stored and certified; one
//! node's data directory is wiped and the node restarted: it must recover every sliver of its
//! shards from its peers, through verified recovery symbols.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_core::{BlobId, EncodingConfig, EncodingType, ShardIndex, Sliver, SliverType, encode};
use floe_crypto::{
    Certificate, CommitteeMember, CommitteeWeights, ProofOfPossession, ProtocolKeyPair,
};
use floe_ledger::api_types::SystemInfo;
use floe_ledger::{AccountKey, GenesisConfig, GenesisNode, TxKind};
use floe_ledger_client::{AccountSession, LedgerClient};
use floe_ledger_service::{Ledger, SystemClock};
use floe_node::config::{Limits, NodeConfig, NodeKeysFile};
use floe_node_client::NodeClient;

const N: u16 = 10;
const NODES: usize = 4;

fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

struct NodeSlot {
    dir: PathBuf,
    address: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

async fn run_node(slot: &mut NodeSlot, ledger_url: &str, listener: tokio::net::TcpListener) {
    let config = NodeConfig {
        storage_path: slot.dir.join("data"),
        keys_path: slot.dir.join("keys.json"),
        listen_address: slot.address.clone(),
        ledger_url: ledger_url.into(),
        limits: Limits {
            sync_delay_ms: 0,
            ..Limits::default()
        },
    };
    let node = floe_node::start(config).await.unwrap();
    node.spawn_follower();
    slot.task = Some(tokio::spawn(async move {
        axum::serve(listener, floe_node::api::router(node))
            .await
            .unwrap();
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_recovers_every_sliver_of_its_shards() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("floe_node=info")
        .with_test_writer()
        .try_init();
    let root = tempfile::tempdir().unwrap();
    let keys: Vec<ProtocolKeyPair> = (0..NODES)
        .map(|i| ProtocolKeyPair::from_seed(&seed("bls", i as u64)))
        .collect();
    let ops: Vec<AccountKey> = (0..NODES)
        .map(|i| AccountKey::from_seed(&seed("op", i as u64)))
        .collect();
    let mut listeners = Vec::new();
    let mut slots = Vec::new();
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
        listeners.push(Some(l));
        slots.push(NodeSlot {
            dir,
            address,
            task: None,
        });
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
                network_address: slots[i].address.clone(),
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
    for i in 0..NODES {
        let l = listeners[i].take().unwrap();
        run_node(&mut slots[i], &ledger_url, l).await;
    }

    // Store a blob the way a client does: register, upload every node its pairs, collect
    // confirmations, certify.
    let ledger_client = LedgerClient::new(ledger_url.clone());
    let system: SystemInfo = ledger_client.system().await.unwrap();
    let config = EncodingConfig::new(N).unwrap();
    let data: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let e = encode(&config, &data).unwrap();
    let blob_id: BlobId = e.blob_id();
    let user = AccountSession::new(
        AccountKey::from_seed(&seed("user", 0)),
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
        // Wait for the node to see the registration, then upload.
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
    let cert = Certificate::aggregate(&weights, &partials).unwrap();
    user.submit(TxKind::CertifyBlob {
        blob_object: object.unwrap(),
        certificate: cert,
    })
    .await
    .unwrap();

    // Wipe the last committee member and restart it on the same address.
    let victim_member = system.committee.members.len() - 1;
    let victim_addr = system.committee.members[victim_member]
        .network_address
        .clone();
    let v = slots.iter().position(|s| s.address == victim_addr).unwrap();
    let task = slots[v].task.take().unwrap();
    task.abort();
    let _ = task.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::remove_dir_all(slots[v].dir.join("data")).unwrap();
    let l = tokio::net::TcpListener::bind(&victim_addr).await.unwrap();
    let started = Instant::now();
    run_node(&mut slots[v], &ledger_url, l).await;

    let client = NodeClient::new(http.clone(), &victim_addr, Duration::from_secs(10));
    let shards = &system.committee.members[victim_member].shards;
    let deadline = Instant::now() + Duration::from_secs(20);
    'wait: loop {
        let mut all = true;
        for &s in shards {
            let pair = ShardIndex(s).to_pair_index(N, &blob_id);
            for axis in [SliverType::Primary, SliverType::Secondary] {
                if client
                    .sliver_status(&blob_id, pair, axis)
                    .await
                    .ok()
                    .as_deref()
                    != Some("stored")
                {
                    all = false;
                }
            }
        }
        if all {
            break 'wait;
        }
        if Instant::now() >= deadline {
            let status = client.blob_status(&blob_id).await;
            let meta = http
                .get(format!(
                    "http://{victim_addr}/v1/blobs/{blob_id}/metadata/status"
                ))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            eprintln!("metadata status on the wiped node: {meta}");
            let health = http
                .get(format!("http://{victim_addr}/v1/health"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            panic!(
                "the wiped node did not recover its slivers in time; status {status:?}; health {health}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "wiped node recovered {} sliver pairs in {:?}",
        shards.len(),
        started.elapsed()
    );
    // What it recovered is exactly the encoding, and it confirms again.
    for &s in shards {
        let pair = ShardIndex(s).to_pair_index(N, &blob_id);
        let p = e.sliver_pair(pair);
        assert_eq!(
            client
                .get_sliver(&blob_id, pair, SliverType::Primary)
                .await
                .unwrap(),
            p.primary
        );
        assert_eq!(
            client
                .get_sliver(&blob_id, pair, SliverType::Secondary)
                .await
                .unwrap(),
            p.secondary
        );
    }
    let signed = client.confirmation(&blob_id, None).await.unwrap();
    signed
        .verify_confirmation(
            &system.committee.members[victim_member].protocol_key,
            0,
            &blob_id,
            &floe_crypto::BlobPersistenceType::Permanent,
        )
        .unwrap();
}
