//! Shard sync from a previous owner that lies: five real nodes (n = 10, f = 3), node 0 fronted
//! by a proxy that flips a byte in every sliver its `sync_shard` answers carry. Node 0 is then
//! deregistered, so its two shards move to the others at the next epoch change. The new owners
//! must detect the bad slivers against the metadata, give up on node 0, rebuild the slivers by
//! RedStuff recovery, and end holding exactly the right bytes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use common::{Cluster, Rewrite};
use floe_core::{BlobId, EncodedBlob, ShardIndex, SliverType};
use floe_ledger::TxKind;
use floe_node::shard_sync::{SYNC_SHARD_PATH, SyncShardResponse};
use floe_node_client::NodeClient;

const N: u16 = 10;
const NODES: usize = 5;
const EPOCH_MS: u64 = 4_000;

/// A rewrite that flips a byte in every sliver of a shard-sync batch, counting them.
fn corrupt_slivers(corrupted: Arc<AtomicU64>) -> Rewrite {
    Arc::new(move |path: &str, bytes: Bytes| {
        let Some(mut batch) = path
            .starts_with(SYNC_SHARD_PATH)
            .then(|| bcs::from_bytes::<SyncShardResponse>(&bytes).ok())
            .flatten()
        else {
            return bytes;
        };
        for (_, sliver) in &mut batch.slivers {
            if let Some(b) = sliver.symbols.first_mut() {
                *b ^= 0xa5;
                corrupted.fetch_add(1, Ordering::Relaxed);
            }
        }
        bcs::to_bytes(&batch).unwrap().into()
    })
}

/// Whether the new owner of `shard` (in `system`'s committee) holds both slivers of every blob,
/// byte for byte.
async fn holds_exactly(
    http: &reqwest::Client,
    system: &floe_ledger::api_types::SystemInfo,
    shard: u16,
    blobs: &[EncodedBlob],
) -> bool {
    let owner = &system.committee.members[system.committee.owner_of(shard).unwrap()];
    let client = NodeClient::new(
        http.clone(),
        &owner.network_address,
        Duration::from_secs(10),
    );
    for e in blobs {
        let blob_id: BlobId = e.blob_id();
        let pair = ShardIndex(shard).to_pair_index(N, &blob_id);
        let expected = e.sliver_pair(pair);
        for (axis, want) in [
            (SliverType::Primary, &expected.primary),
            (SliverType::Secondary, &expected.secondary),
        ] {
            match client.get_sliver(&blob_id, pair, axis).await {
                Ok(got) => assert_eq!(
                    &got, want,
                    "shard {shard} of {blob_id} ({axis:?}) holds wrong bytes"
                ),
                Err(_) => return false,
            }
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_owners_recover_the_shards_of_a_previous_owner_that_lies() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("floe_node=info")
        .with_test_writer()
        .try_init();
    let started = Instant::now();
    let mut cluster = Cluster::prepare_with_epochs(NODES, N, EPOCH_MS).await;
    let corrupted = Arc::new(AtomicU64::new(0));
    cluster
        .start_lying_node(0, corrupt_slivers(corrupted.clone()))
        .await;
    cluster.start_all().await;
    let blobs: Vec<EncodedBlob> = store_blobs(&cluster).await;
    let liar_shards = cluster.shards_of(0).to_vec();
    assert!(!liar_shards.is_empty());

    // Node 0's operator deregisters it: its shards move at a coming epoch change.
    let member = &cluster.system.committee.members[cluster.member_of(0)];
    let operator = cluster.operator(0);
    operator
        .submit(TxKind::DeregisterNode {
            node_id: member.node_id,
        })
        .await
        .unwrap();
    let liar_key = member.protocol_key;

    // Wait for a committee without node 0, then for its shards to be whole at their new owners.
    let deadline = Instant::now() + Duration::from_millis(4 * EPOCH_MS + 20_000);
    let system = loop {
        let s = cluster.ledger.system().await.unwrap();
        if s.committee
            .members
            .iter()
            .all(|m| m.protocol_key != liar_key)
        {
            break s;
        }
        assert!(Instant::now() < deadline, "node 0 never left the committee");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "node 0 left the committee in epoch {} ({:?} into the test)",
        system.epoch,
        started.elapsed()
    );
    for &shard in &liar_shards {
        while !holds_exactly(&cluster.http, &system, shard, &blobs).await {
            assert!(
                Instant::now() < deadline,
                "shard {shard} never became whole at its new owner"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let corrupted = corrupted.load(Ordering::Relaxed);
    println!(
        "node 0's shards {liar_shards:?} are whole at their new owners; the liar served {corrupted} \
         corrupted slivers, none stored ({:?})",
        started.elapsed()
    );
    assert!(
        corrupted > 0,
        "the new owners never asked node 0 for its shards, so the lie was never told"
    );
}

/// Three blobs stored and certified while every node is up.
async fn store_blobs(cluster: &Cluster) -> Vec<EncodedBlob> {
    let mut out = Vec::new();
    for k in 0..3u32 {
        let data: Vec<u8> = (0..20_000u32 + 3_000 * k)
            .map(|i| (i.wrapping_mul(2_246_822_519).wrapping_add(k) >> 11) as u8)
            .collect();
        out.push(cluster.store_and_certify(&data).await);
    }
    out
}
