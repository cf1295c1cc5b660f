//! Shard migration survives a restart of the new owner: the cursor of each (shard, axis) is
//! stored with the slivers it covers, and a restarted node pulls from there, not from the start.
//!
//! The crash is staged deterministically: the joining node is stopped before the change that
//! gives it shards, and the cursors a crash mid-migration would leave are written into its
//! store (one primary axis half pulled, one secondary axis finished). Restarted, it must pull
//! exactly the rest, rebuild what the cursors skipped by RedStuff recovery, end with every
//! sliver of its shards, and leave finished cursors behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_client::{Client, ClientConfig, Lifetime, NoProgress, StoreOptions};
use floe_core::{BlobId, ShardIndex, SliverType};
use floe_ledger::AccountKey;
use floe_ledger_client::LedgerClient;
use floe_node_storage::{FjallStore, MigrationCursor, NodeStore, StoreOptions as DiskOptions};
use floe_testbed::{Testbed, TestbedOptions, node_protocol_key};

const BLOBS: u64 = 24;

fn data(seed: u64, i: u64) -> Vec<u8> {
    let len = 2000 + (i as usize * 7919) % 6000;
    let mut out = Vec::with_capacity(len + 32);
    let mut h = floe_core::merkle::blake2b256(&[b"resume", &seed.to_le_bytes(), &i.to_le_bytes()]);
    while out.len() < len {
        out.extend_from_slice(&h);
        h = floe_core::merkle::blake2b256(&[&h]);
    }
    out.truncate(len);
    out
}

async fn missing(bed: &Testbed, nodes: std::ops::Range<usize>, ids: &[BlobId]) -> usize {
    let mut total = 0;
    for i in nodes {
        let node = bed.node(i).expect("running");
        let view = node.view();
        for id in ids {
            total += node.missing_slivers(&view, id).unwrap().len();
        }
    }
    total
}

/// The joining node: its index in the testbed, the epoch from which it owns shards, and
/// those shards (sorted).
struct Joiner {
    new: usize,
    epoch: u32,
    shards: Vec<u16>,
}

/// A staged crash mid-migration of a joining node, its restart, and what it pulls and leaves
/// behind, as named steps on one network.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_node_resumes_its_shard_migration_from_the_stored_cursor() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000;
    println!("seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let mut bed = Testbed::start(
        dir.path(),
        TestbedOptions {
            nodes: 4,
            n_shards: 20,
            epoch_duration_ms: 8000,
            seed,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ledger = LedgerClient::new(bed.ledger_url());
    let client = Client::new(
        ClientConfig {
            ledger_url: bed.ledger_url(),
            ..Default::default()
        },
        Some(AccountKey::from_seed(&[7; 32])),
    )
    .unwrap();

    let ids = store_blobs_that_outlive_the_test(&client, seed).await;
    every_previous_owner_holds_every_sliver_of_its_shards(&bed, &ids).await;
    let joiner =
        a_fifth_node_registers_and_stops_before_it_is_given_shards(&mut bed, &ledger, seed).await;
    let mid = write_the_cursors_a_crash_mid_migration_leaves(&bed, &joiner, &ids);
    the_restarted_node_finishes_its_migration(&mut bed, &joiner, &ids).await;
    the_pull_resumed_at_the_stored_cursors_and_skipped_the_finished_axis(&bed, &joiner, &ids, mid);
    the_cursors_left_behind_say_every_axis_is_finished(&mut bed, &joiner).await;
    bed.shutdown().await;
}

/// Blobs that outlive the test, stored a few at a time: all [`BLOBS`] of them, distinct.
async fn store_blobs_that_outlive_the_test(client: &Client, seed: u64) -> Vec<BlobId> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = Vec::new();
    for i in 0..BLOBS {
        let client = client.clone();
        tasks.spawn(async move {
            let options = StoreOptions {
                lifetime: Lifetime::Max,
                ..Default::default()
            };
            for _ in 0..5 {
                match client
                    .store(data(seed, i), &options, Arc::new(NoProgress))
                    .await
                {
                    Ok(out) => return out.result.blob_id().unwrap(),
                    Err(e) => tracing::info!(error = %e, "store failed; retrying"),
                }
            }
            panic!("blob {i} could not be stored");
        });
        if tasks.len() >= 6
            && let Some(r) = tasks.join_next().await
        {
            ids.push(r.unwrap());
        }
    }
    ids.extend(tasks.join_all().await);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as u64, BLOBS);
    ids
}

/// Every previous owner (the genesis nodes) holds every sliver of its shards within a minute.
async fn every_previous_owner_holds_every_sliver_of_its_shards(bed: &Testbed, ids: &[BlobId]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while missing(bed, 0..4, ids).await > 0 {
        assert!(Instant::now() < deadline, "the genesis nodes never settled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fifth node registers and stops before it is given shards; within a minute a committee
/// gives it some.
async fn a_fifth_node_registers_and_stops_before_it_is_given_shards(
    bed: &mut Testbed,
    ledger: &LedgerClient,
    seed: u64,
) -> Joiner {
    let base = ledger.system().await.unwrap().epoch;
    let new = bed.add_node(1).await.unwrap();
    bed.stop_node(new).await;
    let key = *node_protocol_key(seed, new).public_key();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (epoch, shards) = loop {
        let s = ledger.system().await.unwrap();
        if let Some(m) = s.committee.members.iter().find(|m| m.protocol_key == key)
            && !m.shards.is_empty()
        {
            let mut shards = m.shards.clone();
            shards.sort();
            break (s.epoch, shards);
        }
        assert!(
            Instant::now() < deadline,
            "node {new} is not in a committee after epoch {base}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("node {new} owns shards {shards:?} from epoch {epoch}");
    Joiner { new, epoch, shards }
}

/// Writes the cursors a crash mid-migration would leave into the stopped node's store, and
/// returns the middle blob its first shard's primary cursor points at.
fn write_the_cursors_a_crash_mid_migration_leaves(
    bed: &Testbed,
    j: &Joiner,
    ids: &[BlobId],
) -> BlobId {
    let Joiner { new, epoch, shards } = j;
    let epoch = *epoch;
    // What a crash mid-migration leaves: the first shard's primary axis pulled up to the middle
    // blob, its secondary axis finished; nothing recorded for the other shards.
    let special = ShardIndex(shards[0]);
    let mid = ids[ids.len() / 2];
    let store = FjallStore::open(&bed.node_dir(*new).join("data"), DiskOptions::default()).unwrap();
    let at = |next| MigrationCursor { epoch, next };
    store
        .set_migration_cursor(special, SliverType::Primary, &at(Some(mid)))
        .unwrap();
    store
        .set_migration_cursor(special, SliverType::Secondary, &at(None))
        .unwrap();
    // A cursor of an older change is ignored.
    if let Some(&other) = shards.get(1) {
        store
            .set_migration_cursor(
                ShardIndex(other),
                SliverType::Primary,
                &MigrationCursor {
                    epoch: epoch - 1,
                    next: None,
                },
            )
            .unwrap();
    }
    mid
}

/// Restarted, the node finishes its migration for the change within a minute, with no sliver
/// of its shards missing.
async fn the_restarted_node_finishes_its_migration(bed: &mut Testbed, j: &Joiner, ids: &[BlobId]) {
    let new = j.new;
    bed.start_node(new).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let node = bed.node(new).unwrap();
        let done = node.migration_stats().last_epoch == Some(j.epoch);
        if done && missing(bed, new..new + 1, ids).await == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted node did not finish its migration: {:?}, {} slivers missing",
            node.migration_stats(),
            missing(bed, new..new + 1, ids).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The node pulled exactly the rest: every axis of the other shards, and the special shard's
/// primary axis from the middle blob on.
fn the_pull_resumed_at_the_stored_cursors_and_skipped_the_finished_axis(
    bed: &Testbed,
    j: &Joiner,
    ids: &[BlobId],
    mid: BlobId,
) {
    let stats = bed.node(j.new).unwrap().migration_stats();
    let from_mid = ids.iter().filter(|id| **id >= mid).count() as u64;
    let expected = (j.shards.len() as u64 - 1) * 2 * BLOBS + from_mid;
    println!(
        "migrated {} slivers ({} bytes), expected {expected}; {} blobs rebuilt by recovery",
        stats.slivers_migrated, stats.bytes_migrated, stats.blobs_recovered
    );
    assert_eq!(
        stats.slivers_migrated, expected,
        "the pull must resume at the stored cursors and skip the finished axis"
    );
    // The slivers the cursors skipped came by recovery (the migration's fallback or the
    // background sync, whichever ran first); the wait above checked that none is missing.
}

/// Stopped again, the node's store holds a finished cursor of the change for every axis of
/// every shard it owns.
async fn the_cursors_left_behind_say_every_axis_is_finished(bed: &mut Testbed, j: &Joiner) {
    let Joiner { new, epoch, .. } = *j;
    bed.stop_node(new).await;
    let store = FjallStore::open(&bed.node_dir(new).join("data"), DiskOptions::default()).unwrap();
    for &s in &j.shards {
        for axis in [SliverType::Primary, SliverType::Secondary] {
            assert_eq!(
                store.migration_cursor(ShardIndex(s), axis).unwrap(),
                Some(MigrationCursor { epoch, next: None }),
                "cursor of shard {s} {axis:?}"
            );
        }
    }
    drop(store);
}
