//! Four real nodes and a real ledger on loopback sockets. A blob is stored and certified; one
//! node's data directory is wiped and the node restarted: it must recover every sliver of its
//! shards from its peers, through verified recovery symbols.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use floe_core::{ShardIndex, SliverType};

const N: u16 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_recovers_every_sliver_of_its_shards() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("floe_node=info")
        .with_test_writer()
        .try_init();
    let mut cluster = Cluster::prepare(4, N).await;
    cluster.start_all().await;
    let data: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let e = cluster.store_and_certify(&data).await;
    let blob_id = e.blob_id();

    // Wipe the last committee member and restart it on the same address.
    let victim_addr = cluster
        .system
        .committee
        .members
        .last()
        .unwrap()
        .network_address
        .clone();
    let v = cluster
        .addresses
        .iter()
        .position(|a| *a == victim_addr)
        .unwrap();
    let started = Instant::now();
    cluster.wipe_and_restart(v).await;

    let client = cluster.client(v);
    let shards = cluster.shards_of(v);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
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
            break;
        }
        if Instant::now() >= deadline {
            let status = client.blob_status(&blob_id).await;
            panic!("the wiped node did not recover its slivers in time; status {status:?}");
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
    let key = cluster.system.committee.members[cluster.member_of(v)].protocol_key;
    signed
        .verify_confirmation(
            &key,
            0,
            &blob_id,
            &floe_crypto::BlobPersistenceType::Permanent,
        )
        .unwrap();
}
