//! Garbage collection on real nodes: the data of a blob its owner deletes, and of a blob whose
//! registration expires at an epoch change, is removed from every node (metadata and every
//! sliver), while a live blob stored beside it stays untouched.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use floe_core::{BlobId, EncodedBlob, EncodingConfig, ShardIndex, SliverType, encode};
use floe_ledger::{BlobStatus, TxKind};
use floe_ledger_client::AccountSession;

const N: u16 = 10;

fn blob(tag: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| common::seed("gc", (tag << 32) | (i / 32))[(i % 32) as usize])
        .collect()
}

/// Every sliver of every node's shards, and the metadata, of `blob_id` are stored (`true`) or
/// gone (`false`) on every node, within `timeout`.
async fn wait_stored_everywhere(
    cluster: &Cluster,
    blob_id: &BlobId,
    stored: bool,
    timeout: Duration,
) {
    let want = if stored { "stored" } else { "nonexistent" };
    let deadline = Instant::now() + timeout;
    for i in 0..cluster.addresses.len() {
        let client = cluster.client(i);
        let shards = cluster.shards_of(i).to_vec();
        loop {
            let mut mismatch = None;
            for &s in &shards {
                let pair = ShardIndex(s).to_pair_index(N, blob_id);
                for axis in [SliverType::Primary, SliverType::Secondary] {
                    let st = client.sliver_status(blob_id, pair, axis).await.unwrap();
                    if st != want {
                        mismatch = Some(format!("{axis} sliver of pair {pair} is {st}"));
                    }
                }
            }
            let meta: serde_json::Value = cluster
                .http
                .get(format!(
                    "http://{}/v1/blobs/{blob_id}/metadata/status",
                    cluster.addresses[i]
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if meta["success"]["data"] != want {
                mismatch = Some(format!("metadata is {}", meta["success"]["data"]));
            }
            let Some(m) = mismatch else { break };
            assert!(
                Instant::now() < deadline,
                "node {i}: expected every piece of {blob_id} {want}, but {m}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What a node answers for a collected blob: not found, for slivers and metadata.
async fn assert_collected(cluster: &Cluster, blob_id: &BlobId) {
    for i in 0..cluster.addresses.len() {
        let client = cluster.client(i);
        let status = client.blob_status(blob_id).await.unwrap();
        assert_eq!(status, "nonexistent", "node {i}");
        let &s = cluster.shards_of(i).first().unwrap();
        let pair = ShardIndex(s).to_pair_index(N, blob_id);
        let err = client
            .get_sliver(blob_id, pair, SliverType::Primary)
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.reason()),
            (Some(404), Some("SLIVER_NOT_FOUND")),
            "node {i}: {err}"
        );
        let err = client.get_metadata(blob_id).await.unwrap_err();
        assert_eq!(
            (err.status(), err.reason()),
            (Some(404), Some("METADATA_NOT_FOUND")),
            "node {i}: {err}"
        );
        let err = client.confirmation(blob_id, None).await.unwrap_err();
        assert_eq!(err.reason(), Some("NOT_REGISTERED"), "node {i}: {err}");
    }
}

/// The kept blob is still served, byte for byte, by every node.
async fn assert_kept(cluster: &Cluster, e: &EncodedBlob) {
    let blob_id = e.blob_id();
    for i in 0..cluster.addresses.len() {
        let client = cluster.client(i);
        for &s in cluster.shards_of(i) {
            let pair = ShardIndex(s).to_pair_index(N, &blob_id);
            let p = e.sliver_pair(pair);
            let got = client
                .get_sliver(&blob_id, pair, SliverType::Primary)
                .await
                .unwrap();
            assert_eq!(got, p.primary, "node {i}");
            let got = client
                .get_sliver(&blob_id, pair, SliverType::Secondary)
                .await
                .unwrap();
            assert_eq!(got, p.secondary, "node {i}");
        }
        assert_eq!(client.get_metadata(&blob_id).await.unwrap(), *e.metadata());
    }
}

/// Register `e` until `end_epoch_after` epochs from now, upload and certify; retried when an
/// epoch change gets in the way (confirmations carry the epoch they were signed in).
async fn store_in_epoch(
    cluster: &Cluster,
    user: &AccountSession,
    e: &EncodedBlob,
    end_epoch_after: u32,
) -> (floe_core::ObjectId, u32) {
    for attempt in 1..=6 {
        let system = cluster.ledger.system().await.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        // Too close to the epoch's end: start in the next one.
        if system.next_epoch_start_ms.saturating_sub(now) < 1_500 {
            let wait = system.next_epoch_start_ms.saturating_sub(now) + 200;
            tokio::time::sleep(Duration::from_millis(wait)).await;
            continue;
        }
        let epoch = system.epoch;
        let end_epoch = epoch + end_epoch_after;
        let Ok(object) = cluster.register(user, e.metadata(), end_epoch, false).await else {
            continue;
        };
        match cluster
            .upload_and_certify(user, object, e.metadata(), &e.sliver_pairs(), false, &[])
            .await
        {
            Ok(()) => return (object, end_epoch),
            Err(err) => println!("attempt {attempt}: certification in epoch {epoch} failed: {err}"),
        }
    }
    panic!("could not certify within an epoch in 6 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_blob_is_collected_from_every_node() {
    let started = Instant::now();
    let mut cluster = Cluster::prepare(4, N).await;
    cluster.start_all().await;
    let config = EncodingConfig::new(N).unwrap();
    let kept = cluster.store_and_certify(&blob(1, 9_000)).await;

    let e = encode(&config, &blob(2, 12_000)).unwrap();
    let blob_id = e.blob_id();
    let user = cluster.user(3);
    let object = cluster
        .register(&user, e.metadata(), 5, true)
        .await
        .unwrap();
    cluster
        .upload_and_certify(&user, object, e.metadata(), &e.sliver_pairs(), true, &[])
        .await
        .unwrap();
    wait_stored_everywhere(&cluster, &blob_id, true, Duration::from_secs(5)).await;
    for i in 0..cluster.addresses.len() {
        cluster
            .wait_node_status(i, &blob_id, Duration::from_secs(5), |v| {
                v["deletable"]["deletableCounts"]["count_deletable_certified"] == 1
            })
            .await;
    }

    user.submit(TxKind::DeleteBlob {
        blob_object: object,
    })
    .await
    .unwrap();
    let status = cluster.ledger.blob_status(&blob_id).await.unwrap().status;
    assert!(matches!(status, BlobStatus::Deleted { .. }), "{status:?}");
    wait_stored_everywhere(&cluster, &blob_id, false, Duration::from_secs(10)).await;
    assert_collected(&cluster, &blob_id).await;
    assert_kept(&cluster, &kept).await;
    println!("test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_blob_is_collected_at_the_epoch_change() {
    let started = Instant::now();
    const EPOCH_MS: u64 = 3_000;
    let mut cluster = Cluster::prepare_with_epochs(4, N, EPOCH_MS).await;
    // No periodic scan during the test: collection must come from the epoch change itself.
    cluster.limits.maintenance_interval_secs = 3_600;
    cluster.start_all().await;
    let config = EncodingConfig::new(N).unwrap();
    let user = cluster.user(4);

    let kept = encode(&config, &blob(5, 7_000)).unwrap();
    store_in_epoch(&cluster, &user, &kept, 40).await;
    let e = encode(&config, &blob(6, 11_000)).unwrap();
    let blob_id = e.blob_id();
    let (_, end_epoch) = store_in_epoch(&cluster, &user, &e, 1).await;
    println!(
        "expiring blob certified {:?} into the test; it expires at epoch {end_epoch}",
        started.elapsed()
    );
    // Every member confirmed it, so every member stored all of its slivers.

    // The ledger reaches the end epoch; every node then drops the blob's data.
    let deadline = Instant::now() + Duration::from_millis(EPOCH_MS + 5_000);
    loop {
        let st = cluster.ledger.blob_status(&blob_id).await.unwrap();
        if matches!(st.status, BlobStatus::Expired { .. }) {
            assert!(st.epoch >= end_epoch);
            break;
        }
        assert!(Instant::now() < deadline, "never expired: {:?}", st.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_stored_everywhere(&cluster, &blob_id, false, Duration::from_secs(5)).await;
    assert_collected(&cluster, &blob_id).await;
    assert_kept(&cluster, &kept).await;
    println!("test took {:?}", started.elapsed());
}
