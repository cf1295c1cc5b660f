//! The client against a real local network: a ledger and seven storage nodes on loopback
//! sockets (n = 10 shards, f = 3), each with its own fjall store.

use floe_test_support::{data, test_seed};
use std::sync::Arc;
use std::time::Duration;

use floe_client::{
    BlobStoreResult, CertifiedBy, Client, ClientConfig, ClientError, Lifetime, NoProgress,
    ReadOptions, StoreOptions,
};
use floe_core::{BlobId, ShardIndex, SliverData, SliverType};
use floe_ledger::AccountKey;
use floe_node::config::Limits;
use floe_node_storage::NodeStore;
use floe_testbed::{Testbed, TestbedOptions};

const NODES: usize = 7;
const N: u16 = 10;

async fn network(epoch_ms: u64) -> (tempfile::TempDir, Testbed, Client) {
    network_with(epoch_ms, N).await
}

async fn network_with(epoch_ms: u64, n_shards: u16) -> (tempfile::TempDir, Testbed, Client) {
    let dir = tempfile::tempdir().unwrap();
    let bed = Testbed::start(
        dir.path(),
        TestbedOptions {
            nodes: NODES,
            n_shards,
            epoch_duration_ms: epoch_ms,
            node_limits: Limits {
                sync_delay_ms: 0,
                maintenance_interval_secs: 1,
                ..Limits::default()
            },
            ..TestbedOptions::default()
        },
    )
    .await
    .unwrap();
    let mut config = ClientConfig {
        ledger_url: bed.ledger_url(),
        ..ClientConfig::default()
    };
    config.communication.request_timeout_ms = 5_000;
    config.communication.max_attempts = 2;
    let client = Client::new(config, Some(AccountKey::from_seed(&[7; 32]))).unwrap();
    (dir, bed, client)
}

fn permanent(epochs: u32) -> StoreOptions {
    StoreOptions {
        lifetime: Lifetime::Epochs(epochs),
        deletable: false,
        force: false,
    }
}

async fn store(client: &Client, bytes: &[u8], options: &StoreOptions) -> BlobStoreResult {
    client
        .store(bytes.to_vec(), options, Arc::new(NoProgress))
        .await
        .unwrap()
        .result
}

async fn read(client: &Client, blob_id: &BlobId) -> Result<Vec<u8>, ClientError> {
    client
        .read(blob_id, ReadOptions::default(), Arc::new(NoProgress))
        .await
}

/// A client with the default patience (a minute per node request, 5 attempts), unlike the
/// quick-to-give-up one of [`network`]; its wallet derives from `wallet`.
fn patient_client(bed: &Testbed, wallet: u8) -> Client {
    let mut config = ClientConfig {
        ledger_url: bed.ledger_url(),
        ..ClientConfig::default()
    };
    config.communication.request_timeout_ms = 60_000;
    config.communication.max_attempts = 5;
    Client::new(config, Some(AccountKey::from_seed(&[wallet; 32]))).unwrap()
}

/// Nodes (by testbed index) that together hold at most `f` shards, as many as possible.
async fn nodes_holding_f(client: &Client, bed: &Testbed) -> Vec<usize> {
    let (system, committee) = client.committee().await.unwrap();
    let f = u64::from(committee.config.max_faulty());
    let mut chosen = Vec::new();
    let mut weight = 0;
    let mut by_weight: Vec<usize> = (0..bed.node_count()).collect();
    let weight_of = |i: usize| {
        system
            .committee
            .members
            .iter()
            .find(|m| m.network_address == bed.node_address(i))
            .unwrap()
            .shards
            .len() as u64
    };
    by_weight.sort_by_key(|&i| std::cmp::Reverse(weight_of(i)));
    for i in by_weight {
        if weight + weight_of(i) <= f {
            weight += weight_of(i);
            chosen.push(i);
        }
    }
    assert_eq!(weight, f, "the committee lets exactly f shards fail");
    chosen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_of_edge_sizes_and_reads_with_f_shards_down() {
    let seed = test_seed("round_trips_of_edge_sizes_and_reads_with_f_shards_down");
    let (_dir, mut bed, client) = network(3_600_000).await;
    let (_, committee) = client.committee().await.unwrap();
    // Symbol-size boundaries: a blob of k·(source symbols) bytes fills symbols exactly.
    let source = committee.config.n_source_symbols() as usize;
    let sizes = [
        0,
        1,
        2,
        source - 1,
        source,
        source + 1,
        2 * source * 2,
        1 << 20,
    ];
    let mut stored = Vec::new();
    for (k, &len) in sizes.iter().enumerate() {
        let bytes = data(seed + k as u64, len);
        let r = store(&client, &bytes, &permanent(2)).await;
        let BlobStoreResult::NewlyCreated { blob_object, .. } = &r else {
            panic!("size {len}: expected a new blob, got {r:?}");
        };
        assert_eq!(blob_object.size, len as u64);
        assert!(blob_object.certified_epoch.is_some());
        assert_eq!(
            read(&client, &blob_object.blob_id).await.unwrap(),
            bytes,
            "size {len}"
        );
        stored.push((blob_object.blob_id, bytes));
    }
    // Stop the nodes of f shards: every blob still reads back.
    let down = nodes_holding_f(&client, &bed).await;
    for &i in &down {
        bed.stop_node(i).await;
    }
    for (id, bytes) in &stored {
        assert_eq!(&read(&client, id).await.unwrap(), bytes);
    }
    // And a write still reaches its point of availability without them.
    let bytes = data(seed ^ 0xff, 100_000);
    let r = store(&client, &bytes, &permanent(1)).await;
    let id = r.blob_id().unwrap();
    assert!(matches!(r, BlobStoreResult::NewlyCreated { .. }));
    assert_eq!(read(&client, &id).await.unwrap(), bytes);
    // With one more shard down a write cannot certify, and says why.
    let extra = (0..bed.node_count()).find(|i| !down.contains(i)).unwrap();
    bed.stop_node(extra).await;
    let err = client
        .store(data(seed ^ 0xee, 1000), &permanent(1), Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::NotEnoughConfirmations { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("needed"), "{err}");
    bed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serving_wrong_slivers_is_detected_and_never_returned() {
    let seed = test_seed("a_node_serving_wrong_slivers_is_detected_and_never_returned");
    let (_dir, mut bed, client) = network(3_600_000).await;
    let bytes = data(seed, 200_000);
    let id = store(&client, &bytes, &permanent(2))
        .await
        .blob_id()
        .unwrap();
    // Corrupt every primary sliver on the heaviest node's disk (it then lies on every read).
    let liar = nodes_holding_f(&client, &bed).await[0];
    bed.stop_node(liar).await;
    {
        let store = floe_node_storage::FjallStore::open(
            &bed.node_dir(liar).join("data"),
            Default::default(),
        )
        .unwrap();
        let mut corrupted = 0;
        for shard in store.shards().unwrap() {
            let ShardIndex(_) = shard;
            if let Some(s) = store.get_sliver(shard, SliverType::Primary, &id).unwrap() {
                let mut symbols = s.symbols.clone();
                symbols[0] ^= 0x5a;
                let bad = SliverData::new(SliverType::Primary, s.index, s.symbol_size, symbols);
                store
                    .put_sliver(shard, SliverType::Primary, &id, &bad)
                    .unwrap();
                corrupted += 1;
            }
        }
        assert!(corrupted > 0);
        store.persist().unwrap();
    }
    bed.start_node(liar).await.unwrap();
    // Reads still succeed, with the right bytes, as long as the liar is the only fault…
    for _ in 0..3 {
        assert_eq!(read(&client, &id).await.unwrap(), bytes);
    }
    // …and with f shards faulty in total (the liar plus stopped nodes), too.
    let others: Vec<usize> = nodes_holding_f(&client, &bed)
        .await
        .into_iter()
        .filter(|&i| i != liar)
        .collect();
    let (system, _) = client.committee().await.unwrap();
    let weight = |i: usize| {
        system
            .committee
            .members
            .iter()
            .find(|m| m.network_address == bed.node_address(i))
            .unwrap()
            .shards
            .len()
    };
    let mut faulty = weight(liar);
    let mut stop = Vec::new();
    for i in others {
        if faulty + weight(i) <= 3 {
            faulty += weight(i);
            stop.push(i);
        }
    }
    for i in stop {
        bed.stop_node(i).await;
    }
    assert_eq!(read(&client, &id).await.unwrap(), bytes);
    bed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_are_distinct_and_lifecycle_operations_work() {
    let seed = test_seed("status_answers_are_distinct_and_lifecycle_operations_work");
    let (_dir, bed, client) = network(3_600_000).await;
    // Does not exist.
    let missing = BlobId([9; 32]);
    assert!(matches!(
        read(&client, &missing).await,
        Err(ClientError::BlobNotFound(_))
    ));
    // Registered but never uploaded: not certified.
    let bytes = data(seed, 5000);
    let (system, committee) = client.committee().await.unwrap();
    let encoded = floe_core::encode(&committee.config, &bytes).unwrap();
    let ledger = floe_ledger_client::AccountSession::new(
        AccountKey::from_seed(&[8; 32]),
        client.ledger().clone(),
    );
    ledger
        .submit(floe_ledger::TxKind::ReserveAndRegister {
            end_epoch: system.epoch + 2,
            blob_id: encoded.blob_id(),
            root_hash: encoded.metadata().metadata.root_hash(),
            size: bytes.len() as u64,
            encoding_type: floe_core::EncodingType::RS2,
            deletable: true,
        })
        .await
        .unwrap();
    let err = read(&client, &encoded.blob_id()).await.unwrap_err();
    assert!(matches!(err, ClientError::NotCertified(_)), "{err}");

    // Permanent store, then the already-certified path (no new registration).
    let r = store(&client, &bytes, &permanent(2)).await;
    let id = r.blob_id().unwrap();
    assert_eq!(id, encoded.blob_id());
    let again = store(&client, &bytes, &permanent(1)).await;
    assert!(
        matches!(
            again,
            BlobStoreResult::AlreadyCertified {
                certified_by: CertifiedBy::Event(_),
                ..
            }
        ),
        "{again:?}"
    );
    // Asking for a longer lifetime than certified stores again.
    let longer = store(&client, &bytes, &permanent(4)).await;
    assert!(matches!(longer, BlobStoreResult::NewlyCreated { .. }));
    // `force` stores even when certified.
    let forced = StoreOptions {
        force: true,
        ..permanent(1)
    };
    assert!(matches!(
        store(&client, &bytes, &forced).await,
        BlobStoreResult::NewlyCreated { .. }
    ));

    // Status agrees across the nodes.
    let status = client.verified_status(&id, None).await.unwrap();
    assert!(matches!(
        status.status,
        floe_ledger::BlobStatus::Certified { .. }
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = client.verified_status(&id, None).await.unwrap();
        if s.nodes.agreeing_shards == u64::from(N) {
            assert!(s.nodes.confirmed);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A deletable blob: store, list, extend, delete, then reads say deleted.
    let other = data(seed + 1, 3000);
    let r = store(
        &client,
        &other,
        &StoreOptions {
            lifetime: Lifetime::Epochs(1),
            deletable: true,
            force: false,
        },
    )
    .await;
    let BlobStoreResult::NewlyCreated { blob_object, .. } = r else {
        panic!("{r:?}")
    };
    assert!(blob_object.deletable);
    let listed = client.list_blobs(false).await.unwrap();
    assert!(listed.iter().any(|b| b.id == blob_object.id));
    let end = client.extend(&blob_object.id, 2).await.unwrap();
    assert_eq!(end, blob_object.storage.end_epoch + 2);
    // Storing it again as deletable finds the owned certified object.
    let again = store(
        &client,
        &other,
        &StoreOptions {
            lifetime: Lifetime::Epochs(1),
            deletable: true,
            force: false,
        },
    )
    .await;
    assert_eq!(
        again,
        BlobStoreResult::AlreadyCertified {
            blob_id: blob_object.blob_id,
            certified_by: CertifiedBy::Object(blob_object.id),
            end_epoch: end,
        }
    );
    assert_eq!(read(&client, &blob_object.blob_id).await.unwrap(), other);
    client.delete(&blob_object.id).await.unwrap();
    let err = read(&client, &blob_object.blob_id).await.unwrap_err();
    assert!(matches!(err, ClientError::Deleted(_)), "{err}");
    // Permanent blobs cannot be deleted.
    let perm = client.owned_objects_of(&id).await.unwrap();
    assert!(client.delete(&perm[0].id).await.is_err());

    // Lifetimes outside the network's limits are refused before anything is written.
    let err = client
        .store(
            bytes.clone(),
            &StoreOptions {
                lifetime: Lifetime::Epochs(1000),
                ..permanent(1)
            },
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::BadLifetime(_)), "{err}");
    bed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_ranges_read_only_what_is_asked_and_bad_ranges_are_refused() {
    let seed = test_seed("byte_ranges_read_only_what_is_asked_and_bad_ranges_are_refused");
    let (_dir, bed, client) = network(3_600_000).await;
    let bytes = data(seed, 300_001);
    let id = store(&client, &bytes, &permanent(1))
        .await
        .blob_id()
        .unwrap();
    for (start, len) in [(0u64, 1u64), (0, 300_001), (12_345, 100_000), (300_000, 1)] {
        let got = client.read_range(&id, start, len).await.unwrap();
        assert_eq!(got, &bytes[start as usize..(start + len) as usize]);
    }
    for (start, len) in [(300_001u64, 1u64), (0, 0), (10, 300_000)] {
        let err = client.read_range(&id, start, len).await.unwrap_err();
        assert!(
            matches!(err, ClientError::RangeNotSatisfiable { .. }),
            "{err}"
        );
    }
    bed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_blobs_read_as_expired() {
    let seed = test_seed("expired_blobs_read_as_expired");
    let (_dir, bed, client) = network(2_000).await;
    let bytes = data(seed, 10_000);
    let id = store(&client, &bytes, &permanent(1))
        .await
        .blob_id()
        .unwrap();
    assert_eq!(read(&client, &id).await.unwrap(), bytes);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match read(&client, &id).await {
            Err(ClientError::Expired { .. }) => break,
            Ok(b) => assert_eq!(b, bytes),
            Err(e) => panic!("unexpected error before expiry: {e}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_hangs_stalls_neither_writes_nor_reads() {
    let seed = test_seed("a_node_that_hangs_stalls_neither_writes_nor_reads");
    let (_dir, mut bed, _) = network(3_600_000).await;
    // A client that would wait a whole minute for an answer.
    let client = patient_client(&bed, 5);
    let before = data(seed, 150_000);
    let id_before = store(&client, &before, &permanent(1))
        .await
        .blob_id()
        .unwrap();
    // Replace the heaviest node by a socket that accepts connections and never answers.
    let hung = nodes_holding_f(&client, &bed).await[0];
    let (held, accepted) = freeze(&mut bed, hung).await;
    let t = std::time::Instant::now();
    let bytes = data(seed + 1, 150_000);
    let outcome = client
        .store(bytes.clone(), &permanent(1), Arc::new(NoProgress))
        .await
        .unwrap();
    let store_time = t.elapsed();
    assert!(
        store_time < Duration::from_secs(20),
        "the write waited for the hung node: {store_time:?}"
    );
    assert!(outcome.confirmed_weight < u64::from(N));
    // Once the quorum confirmed, the store probed the nodes it still waited for and stopped
    // waiting for the one that did not answer: the client now knows it as silent.
    assert!(
        client.node_is_silent(bed.node_address(hung)),
        "the store's tail did not find the hung node silent"
    );
    let id = outcome.result.blob_id().unwrap();
    for (id, want) in [(id, &bytes), (id_before, &before)] {
        let t = std::time::Instant::now();
        assert_eq!(&read(&client, &id).await.unwrap(), want);
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the read waited for the hung node: {:?}",
            t.elapsed()
        );
    }
    // The client remembers the node that hung: further reads do not ask it (the others hold
    // more than enough slivers), so they open no connection to it.
    let asked = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(asked > 0, "the hung node was never asked");
    for (id, want) in [(id, &bytes), (id_before, &before)] {
        assert_eq!(&read(&client, &id).await.unwrap(), want);
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        asked,
        "reads kept asking a node that hung"
    );
    held.abort();
    bed.shutdown().await;
}

/// Replace node `i` by a socket that accepts connections and never answers (a frozen
/// process looks like this: the kernel still completes the handshakes). Returns the task
/// holding the connections and how many it accepted.
async fn freeze(
    bed: &mut Testbed,
    i: usize,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    bed.stop_node(i).await;
    let listener = tokio::net::TcpListener::bind(bed.node_address(i))
        .await
        .unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            conns.push(c);
        }
    });
    (held, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_more_than_f_shards_silent_a_write_fails_at_once_naming_them() {
    let seed = test_seed("with_more_than_f_shards_silent_a_write_fails_at_once_naming_them");
    let (_dir, mut bed, _) = network(3_600_000).await;
    // A client that would retry each node request for minutes before giving up.
    let client = patient_client(&bed, 6);
    let stored = data(seed, 20_000);
    let id = store(&client, &stored, &permanent(2))
        .await
        .blob_id()
        .unwrap();
    // Nodes holding f shards, and one more: more than f shards silent.
    let mut frozen = nodes_holding_f(&client, &bed).await;
    let extra = (0..bed.node_count()).find(|i| !frozen.contains(i)).unwrap();
    frozen.push(extra);
    let mut held = Vec::new();
    for &i in &frozen {
        held.push(freeze(&mut bed, i).await.0);
    }
    let t = std::time::Instant::now();
    let err = client
        .store(data(seed + 1, 20_000), &permanent(1), Arc::new(NoProgress))
        .await
        .unwrap_err();
    let took = t.elapsed();
    println!("the write failed after {took:?}: {err}");
    let ClientError::NotEnoughConfirmations { failures, .. } = &err else {
        panic!("expected not enough confirmations, got {err}");
    };
    // The nodes named silent are frozen ones, and hold enough shards to explain the failure:
    // the write stops as soon as the silent ones make a quorum impossible, so a frozen node
    // not yet found silent by then may go unnamed.
    let silent: Vec<_> = failures
        .iter()
        .filter(|f| f.reason.starts_with("silent"))
        .collect();
    let frozen_addresses: Vec<&str> = frozen.iter().map(|&i| bed.node_address(i)).collect();
    for f in &silent {
        assert!(
            frozen_addresses.iter().any(|a| f.node.contains(a)),
            "{} is named silent but answers: {err}",
            f.node
        );
    }
    let f = u64::from(floe_core::EncodingConfig::new(N).unwrap().max_faulty());
    let silent_shards: u64 = silent.iter().map(|s| s.shards as u64).sum();
    assert!(
        silent_shards > f,
        "only {silent_shards} shards named silent: {err}"
    );
    // One line per node, whatever the requests: the message stays short.
    assert!(err.to_string().matches("silent").count() <= frozen.len());
    // Far from the minutes that timeouts and retries would take.
    assert!(took < Duration::from_secs(30), "the write took {took:?}");
    // Reads need only n − 2f shards: the blob stored before is still read, byte for byte.
    assert_eq!(read(&client, &id).await.unwrap(), stored);
    for h in held {
        h.abort();
    }
    bed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mib_blob_round_trips() {
    let seed = test_seed("a_50_mib_blob_round_trips");
    // At n = 10 the largest blob is 1.8 MB (65535-byte symbols); n = 100 allows 149 MB.
    let (_dir, bed, client) = network_with(3_600_000, 100).await;
    let bytes = data(seed, 50 << 20);
    let id = store(&client, &bytes, &permanent(1))
        .await
        .blob_id()
        .unwrap();
    assert!(read(&client, &id).await.unwrap() == bytes);
    bed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spilled_encodings_round_trip_and_an_unusable_spill_dir_is_a_clear_error() {
    let seed = test_seed("spilled_encodings_round_trip_and_an_unusable_spill_dir_is_a_clear_error");
    let (dir, bed, _) = network(3_600_000).await;
    let spilling = |spill_dir: std::path::PathBuf, wallet: u8| {
        let mut config = ClientConfig {
            ledger_url: bed.ledger_url(),
            ..ClientConfig::default()
        };
        config.communication.spill_above_bytes = 1_000;
        config.communication.spill_dir = Some(spill_dir);
        Client::new(config, Some(AccountKey::from_seed(&[wallet; 32]))).unwrap()
    };
    // Sizes below and above the threshold, one of them with a symbol per byte pair, one with
    // the largest symbols n = 10 allows.
    let client = spilling(dir.path().to_path_buf(), 8);
    for (i, len) in [999usize, 1_000, 4_321, 300_000, 1_700_000]
        .into_iter()
        .enumerate()
    {
        let bytes = data(seed + i as u64, len);
        let id = store(&client, &bytes, &permanent(1))
            .await
            .blob_id()
            .unwrap();
        assert!(read(&client, &id).await.unwrap() == bytes, "{len} bytes");
    }
    // A spill directory that does not exist: blobs that would spill fail with what to do,
    // smaller ones are encoded in memory and stored.
    let missing = dir.path().join("no-such-dir");
    let client = spilling(missing.clone(), 9);
    let e = client
        .store(data(seed, 5_000), &permanent(1), Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "SPILL_FAILED", "{e}");
    let message = e.to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("spill_dir"), "{message}");
    let small = data(seed, 900);
    let id = store(&client, &small, &permanent(1))
        .await
        .blob_id()
        .unwrap();
    assert!(read(&client, &id).await.unwrap() == small);
    bed.shutdown().await;
}
