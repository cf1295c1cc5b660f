//! End to end, an inconsistently encoded blob is proven invalid: a malicious client alters one
//! primary sliver and publishes metadata computed from what it sends, so every sliver verifies
//! on upload. It certifies the blob with a quorum but never uploads to one node. That node, when
//! it recovers its slivers, finds the inconsistency, collects f+1 attestations from its peers,
//! and has the ledger invalidate the blob. Then every node reports the blob invalid, deletes its
//! data and refuses to serve it.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use floe_core::sliver::metadata_from_slivers;
use floe_core::{
    EncodingConfig, ShardIndex, SliverData, SliverIndex, SliverPair, SliverPairIndex, SliverType,
    encode,
};
use floe_ledger::BlobStatus;

const N: u16 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovering_node_proves_an_inconsistent_blob_invalid() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("floe_node=info")
        .with_test_writer()
        .try_init();
    let started = Instant::now();
    let seed: u64 = std::env::var("FLOE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("seed {seed} (rerun with FLOE_TEST_SEED={seed})");
    let rand = |i: u64| -> u64 {
        u64::from_le_bytes(
            common::seed("invalid-blob", seed ^ i)[..8]
                .try_into()
                .unwrap(),
        )
    };

    let mut cluster = Cluster::prepare(4, N).await;
    cluster.start_all().await;
    let config = EncodingConfig::new(N).unwrap();
    let data: Vec<u8> = (0..20_000u64)
        .map(|i| (rand(i / 8) >> (i % 8)) as u8)
        .collect();
    let honest = encode(&config, &data).unwrap();
    let mut primary: Vec<SliverData> = (0..N)
        .map(|i| honest.sliver(SliverType::Primary, SliverIndex(i)))
        .collect();
    let secondary: Vec<SliverData> = (0..N)
        .map(|i| honest.sliver(SliverType::Secondary, SliverIndex(i)))
        .collect();
    // Alter one byte of one primary sliver; publish the hashes of what is sent.
    let row = (rand(1_000_001) % u64::from(N)) as usize;
    let pos = (rand(1_000_002) % primary[row].symbols.len() as u64) as usize;
    primary[row].symbols[pos] ^= 0x5a;
    let bad = metadata_from_slivers(&config, data.len() as u64, &primary, &secondary).unwrap();
    bad.verify(&config).unwrap();
    let blob_id = bad.blob_id;
    let pairs: Vec<SliverPair> = (0..usize::from(N))
        .map(|k| SliverPair {
            primary: primary[k].clone(),
            secondary: secondary[usize::from(N) - 1 - k].clone(),
        })
        .collect();
    // The node holding the altered row never gets its slivers: it has to recover them. The
    // others hold at least n − f shards, enough to certify.
    let victim_member = cluster.owner_of(SliverPairIndex(row as u16).to_shard_index(N, &blob_id));
    let victim = cluster.node_of_member(victim_member);
    println!(
        "altered primary sliver {row} at byte {pos}; blob {blob_id}; node {victim} must recover it"
    );

    let user = cluster.user(7);
    let object = cluster.register(&user, &bad, 5, false).await.unwrap();
    cluster
        .upload_and_certify(&user, object, &bad, &pairs, false, &[victim_member])
        .await
        .unwrap();
    let certified_at = Instant::now();

    // The ledger learns the blob is invalid from the victim's sync.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = cluster.ledger.blob_status(&blob_id).await.unwrap();
        if matches!(status.status, BlobStatus::Invalid { .. }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the blob was never invalidated; ledger status {:?}",
            status.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "invalidated {:?} after certification",
        certified_at.elapsed()
    );

    // Every node reports it invalid, deleted its data and refuses to serve it.
    for i in 0..cluster.addresses.len() {
        let status = cluster
            .wait_node_status(i, &blob_id, Duration::from_secs(10), |v| {
                v.get("invalid").is_some()
            })
            .await;
        assert!(
            status["invalid"]["event"]["eventSeq"].is_string(),
            "{status}"
        );
        let client = cluster.client(i);
        let member = cluster.member_of(i);
        for &s in &cluster.system.committee.members[member].shards {
            let pair = ShardIndex(s).to_pair_index(N, &blob_id);
            for axis in [SliverType::Primary, SliverType::Secondary] {
                let err = client.get_sliver(&blob_id, pair, axis).await.unwrap_err();
                assert_eq!(
                    (err.status(), err.reason()),
                    (Some(400), Some("INVALID_BLOB")),
                    "node {i}: {err}"
                );
                assert_eq!(
                    client.sliver_status(&blob_id, pair, axis).await.unwrap(),
                    "nonexistent",
                    "node {i} still stores {axis} sliver of pair {pair}"
                );
            }
        }
        let err = client.get_metadata(&blob_id).await.unwrap_err();
        assert_eq!(err.reason(), Some("INVALID_BLOB"), "node {i}: {err}");
        // Uploads and confirmations are refused too.
        let err = client
            .put_metadata(&blob_id, &bad.metadata)
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Some("INVALID_BLOB"), "node {i}: {err}");
        let err = client.confirmation(&blob_id, None).await.unwrap_err();
        assert_eq!(err.reason(), Some("INVALID_BLOB"), "node {i}: {err}");
    }
    // The metadata is gone from every store as well (its status route reads the store).
    for i in 0..cluster.addresses.len() {
        let r = cluster
            .http
            .get(format!(
                "http://{}/v1/blobs/{blob_id}/metadata/status",
                cluster.addresses[i]
            ))
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["success"]["data"], "nonexistent", "node {i}");
    }
    println!("test took {:?}", started.elapsed());
}
