//! Recovery with a lying peer: seven real nodes (n = 10, f = 3); one node's address is fronted
//! by a proxy that corrupts every recovery symbol (with proof), every decoding symbol (without
//! proof), or both, that it forwards. A wiped node must still recover exactly its slivers: bad
//! proven symbols are skipped one by one; a sliver rebuilt from bad decoding symbols fails its
//! check against the metadata and is settled with proven symbols instead.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use common::{Cluster, Rewrite};
use floe_core::recovery::{EitherDecodingSymbol, GeneralRecoverySymbol};
use floe_core::{ShardIndex, SliverType};
use floe_node::node::DecodingSymbols;

const N: u16 = 10;
const NODES: usize = 7;

/// What the lying proxy corrupts.
#[derive(Clone, Copy, Debug)]
struct Lies {
    recovery_symbols: bool,
    decoding_symbols: bool,
}

fn flip(s: &mut EitherDecodingSymbol) {
    match s {
        EitherDecodingSymbol::Primary(d) | EitherDecodingSymbol::Secondary(d) => d.data[0] ^= 0xa5,
    }
}

/// A rewrite that flips a byte in every symbol `lies` names, counting them in `corrupted`:
/// [recovery, decoding].
fn corrupt_symbols(lies: Lies, corrupted: Arc<[AtomicU64; 2]>) -> Rewrite {
    Arc::new(move |path: &str, mut bytes: Bytes| {
        if lies.recovery_symbols
            && path.contains("/recoverySymbols")
            && let Ok(mut symbols) = bcs::from_bytes::<Vec<GeneralRecoverySymbol>>(&bytes)
        {
            for s in &mut symbols {
                flip(&mut s.symbol);
                corrupted[0].fetch_add(1, Ordering::Relaxed);
            }
            bytes = bcs::to_bytes(&symbols).unwrap().into();
        }
        if lies.decoding_symbols
            && path.contains("/decodingSymbols")
            && let Ok(mut map) = bcs::from_bytes::<DecodingSymbols>(&bytes)
        {
            for s in map.values_mut().flatten() {
                flip(s);
                corrupted[1].fetch_add(1, Ordering::Relaxed);
            }
            bytes = bcs::to_bytes(&map).unwrap().into();
        }
        bytes
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_skips_a_peer_that_serves_corrupted_symbols() {
    // Proven recovery symbols only, as if decoding symbols were switched off.
    let [recovery, _] = recover_despite(
        Lies {
            recovery_symbols: true,
            decoding_symbols: false,
        },
        false,
    )
    .await;
    println!("corrupted recovery symbols served by the liar: {recovery}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_survives_a_peer_that_corrupts_decoding_symbols() {
    let [_, decoding] = recover_despite(
        Lies {
            recovery_symbols: false,
            decoding_symbols: true,
        },
        true,
    )
    .await;
    // The victim's primary sliver needs symbols from every other shard but one, so the liar
    // was asked at least once.
    assert!(decoding > 0, "the lying peer was never asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_survives_a_peer_that_corrupts_every_symbol() {
    let [_, decoding] = recover_despite(
        Lies {
            recovery_symbols: true,
            decoding_symbols: true,
        },
        true,
    )
    .await;
    assert!(decoding > 0, "the lying peer was never asked");
}

/// Store a blob, wipe the victim, and check that it recovers exactly its slivers while one
/// peer lies as `lies` says. Returns the symbols corrupted: [recovery, decoding].
async fn recover_despite(lies: Lies, decoding_symbols: bool) -> [u64; 2] {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("floe_node=info")
        .with_test_writer()
        .try_init();
    let mut cluster = Cluster::prepare(NODES, N).await;
    cluster.limits.sync_decoding_symbols = decoding_symbols;
    // The liar holds 2 shards, the victim 1: together 3 = f, so recovery must still succeed.
    let liar = (0..NODES)
        .find(|&i| cluster.shards_of(i).len() == 2)
        .unwrap();
    let victim = (0..NODES)
        .find(|&i| cluster.shards_of(i).len() == 1)
        .unwrap();
    let corrupted: Arc<[AtomicU64; 2]> = Arc::default();
    cluster
        .start_lying_node(liar, corrupt_symbols(lies, corrupted.clone()))
        .await;
    cluster.start_all().await;
    let data: Vec<u8> = (0..30_000u32)
        .map(|i| (i.wrapping_mul(2246822519) >> 11) as u8)
        .collect();
    let e = cluster.store_and_certify(&data).await;
    let blob_id = e.blob_id();

    // Wipe the victim and restart it; it recovers despite the liar.
    cluster.wipe_and_restart(victim).await;
    let client = cluster.client(victim);
    let pair = ShardIndex(cluster.shards_of(victim)[0]).to_pair_index(N, &blob_id);
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
    let counts = [0, 1].map(|i| corrupted[i].load(Ordering::Relaxed));
    println!(
        "recovered despite a lying peer ({lies:?}); corrupted symbols served by it: {} recovery, {} decoding",
        counts[0], counts[1]
    );
    counts
}
