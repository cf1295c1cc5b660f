//! Quilts against a real local network (a ledger and seven storage nodes on loopback sockets,
//! n = 10 shards): store, then read patches by identifier, by tag and by patch ID, fetching only
//! their columns; with a column's node down, the column is rebuilt from decoding symbols, and
//! with rebuilding turned off the whole quilt is read instead.

use floe_test_support::{data, test_seed};
use std::sync::Arc;

use floe_client::{Client, ClientConfig, Lifetime, NoProgress, StoreOptions};
use floe_core::quilt::{QuiltPatchInput, Tags};
use floe_core::{SliverIndex, SliverType};
use floe_ledger::AccountKey;
use floe_testbed::{Testbed, TestbedOptions};

async fn network() -> (tempfile::TempDir, Testbed, Client) {
    let dir = tempfile::tempdir().unwrap();
    let bed = Testbed::start(
        dir.path(),
        TestbedOptions {
            nodes: 7,
            n_shards: 10,
            epoch_duration_ms: 3_600_000,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_read_from_their_columns_and_survive_a_missing_column() {
    let seed = test_seed("patches_read_from_their_columns_and_survive_a_missing_column");
    let (_dir, mut bed, client) = network().await;
    // n = 10: s = 7 columns, so up to 6 patches; sizes make some patches span several columns.
    let files: Vec<(String, Tags, Vec<u8>)> = [
        ("index.html", 3_000),
        ("b.css", 10),
        ("a.js", 9_000),
        ("empty", 0),
        ("z/ü.png", 20_000),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, len))| {
        let tags: Tags = if i % 2 == 0 {
            [("kind".to_string(), "even".to_string())].into()
        } else {
            Tags::new()
        };
        (name.to_string(), tags, data(seed + i as u64, *len))
    })
    .collect();
    let inputs: Vec<QuiltPatchInput<'_>> = files
        .iter()
        .map(|(id, tags, bytes)| QuiltPatchInput {
            identifier: id.clone(),
            tags: tags.clone(),
            data: bytes,
        })
        .collect();
    let options = StoreOptions {
        lifetime: Lifetime::Epochs(2),
        deletable: true,
        force: false,
    };
    let stored = client
        .store_quilt(&inputs, &options, Arc::new(NoProgress))
        .await
        .unwrap();
    let quilt_id = stored.quilt_id;
    let result = stored.result();
    assert_eq!(result.stored_quilt_blobs.len(), files.len());

    let quilt = client.open_quilt(&quilt_id).await.unwrap();
    let index = quilt.index().await.unwrap();
    assert_eq!(index, stored.index);
    let after_index = quilt.stats();
    assert_eq!(after_index.slivers, 1, "the index fits column 0");
    for (id, tags, bytes) in &files {
        let patch = index.get(id).unwrap();
        let before = quilt.stats();
        let read = quilt.patch(patch).await.unwrap();
        assert_eq!(&read.data, bytes, "{id}");
        assert_eq!(&read.tags, tags, "{id}");
        let cost = quilt.stats();
        assert_eq!(
            cost.slivers - before.slivers,
            usize::from(patch.end - patch.start),
            "{id}: only its columns"
        );
        assert!(!cost.whole_blob);
        // By patch ID: no index, same bytes.
        let by_id = quilt
            .patch_by_internal_id(patch.internal_id())
            .await
            .unwrap();
        assert_eq!(by_id, read);
    }
    let even: Vec<&str> = index
        .with_tag("kind", "even")
        .map(|p| p.identifier.as_str())
        .collect();
    assert_eq!(even, ["a.js", "index.html", "z/ü.png"]);
    let total = quilt.stats();
    println!(
        "{} patches: {} slivers, {} sliver bytes, {} metadata bytes",
        index.patches.len(),
        total.slivers,
        total.sliver_bytes,
        total.metadata_bytes
    );

    // Stop the node holding the largest patch's first column: the column is rebuilt from
    // other nodes' decoding symbols, verified against the metadata, and the whole quilt is
    // not read.
    let big = index.get("z/ü.png").unwrap();
    let (_, committee) = client.committee().await.unwrap();
    let member = committee.holder_of(&quilt_id, SliverType::Secondary, SliverIndex(big.start));
    let address = committee.members[member].info.network_address.clone();
    let node = (0..bed.node_count())
        .find(|&i| bed.node_address(i) == address)
        .unwrap();
    bed.stop_node(node).await;
    let fresh = client.open_quilt(&quilt_id).await.unwrap();
    let read = fresh.patch(big).await.unwrap();
    assert_eq!(read.data, files[4].2);
    let stats = fresh.stats();
    assert!(stats.recovered >= 1, "{stats:?}");
    assert!(!stats.whole_blob, "{stats:?}");

    // The same read with rebuilding turned off (`max_unavailable_slivers_to_recover = 0`)
    // falls back to reading the whole quilt once, and still returns the patch's bytes; the
    // next patch is cut from that copy without fetching anything more.
    let mut config = client.config().clone();
    config.quilt.max_unavailable_slivers_to_recover = 0;
    let no_rebuild = Client::new(config, None).unwrap();
    let whole = no_rebuild.open_quilt(&quilt_id).await.unwrap();
    let read = whole.patch(big).await.unwrap();
    assert_eq!(read.data, files[4].2);
    let stats = whole.stats();
    assert_eq!(stats.recovered, 0, "{stats:?}");
    assert!(stats.whole_blob, "{stats:?}");
    assert!(stats.whole_blob_bytes > 0, "{stats:?}");
    let fetched = stats.slivers;
    let other = whole.patch(index.get("a.js").unwrap()).await.unwrap();
    assert_eq!(other.data, files[2].2);
    assert_eq!(whole.stats().slivers, fetched, "cut from the whole quilt");
    bed.shutdown().await;
}
