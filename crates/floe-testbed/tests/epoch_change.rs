//! Epoch changes under load: nodes join, leave (one of them crashed and never cooperating) and
//! change weight over five consecutive changes while writers and readers run. Every certified
//! blob stays readable, every member ends with all slivers of its shards, and expired blobs'
//! data is deleted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use floe_client::{Client, ClientConfig, Lifetime, NoProgress, ReadOptions, StoreOptions};
use floe_core::{BlobId, Epoch};
use floe_ledger::AccountKey;
use floe_ledger_client::LedgerClient;
use floe_node::node::StoredStatus;
use floe_testbed::{Testbed, TestbedOptions};

type Stored = Arc<Mutex<BTreeMap<BlobId, (Vec<u8>, Epoch)>>>;

fn data(i: u64) -> Vec<u8> {
    let len = 1000 + (i as usize * 7919) % 30_000;
    let mut out = Vec::with_capacity(len + 32);
    let mut h = floe_core::merkle::blake2b256(&[b"epoch-test", &i.to_le_bytes()]);
    while out.len() < len {
        out.extend_from_slice(&h);
        h = floe_core::merkle::blake2b256(&[&h]);
    }
    out.truncate(len);
    out
}

/// Wait until the ledger is past `epoch` with no change in progress; returns the new epoch.
async fn wait_change_done(ledger: &LedgerClient, epoch: Epoch) -> Epoch {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = ledger.system().await.unwrap();
        if s.epoch > epoch && !s.epoch_state.is_syncing() {
            return s.epoch;
        }
        assert!(
            Instant::now() < deadline,
            "epoch change after {epoch} did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait for the start of the next change (the epoch moves past `epoch`).
async fn wait_change_start(ledger: &LedgerClient, epoch: Epoch) -> Instant {
    loop {
        if ledger.system().await.unwrap().epoch > epoch {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Shards per testbed node index in the current committee.
async fn shard_counts(bed: &Testbed, ledger: &LedgerClient) -> BTreeMap<usize, usize> {
    let system = ledger.system().await.unwrap();
    let mut out = BTreeMap::new();
    for i in 0..bed.node_count() {
        let Some(id) = bed.node_id(i).await.unwrap() else {
            continue;
        };
        if let Some(m) = system.committee.members.iter().find(|m| m.node_id == id) {
            out.insert(i, m.shards.len());
        }
    }
    out
}

/// What the writer and the reader count while committees change.
#[derive(Clone, Default)]
struct Counts {
    reads: Arc<AtomicU64>,
    wrong: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
}

/// A writer and a reader running against the network until stopped.
struct Load {
    stored: Stored,
    stop: Arc<AtomicBool>,
    counts: Counts,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Load {
    fn start(client: &Client) -> Self {
        let stored: Stored = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Counts::default();
        let tasks = [
            tokio::spawn(write(client.clone(), stored.clone(), stop.clone())),
            tokio::spawn(read(
                client.clone(),
                stored.clone(),
                stop.clone(),
                counts.clone(),
            )),
        ];
        Self {
            stored,
            stop,
            counts,
            tasks,
        }
    }

    async fn stop(self) -> (Stored, Counts) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        (self.stored, self.counts)
    }
}

/// Writer: short-lived and long-lived blobs.
async fn write(client: Client, stored: Stored, stop: Arc<AtomicBool>) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let bytes = data(i);
        let options = StoreOptions {
            // Half expire during the test, half outlive it.
            lifetime: Lifetime::Epochs(if i.is_multiple_of(2) {
                1 + (i % 4) as u32
            } else {
                40
            }),
            ..Default::default()
        };
        match client
            .store(bytes.clone(), &options, Arc::new(NoProgress))
            .await
        {
            Ok(out) => {
                let object = out.object.expect("newly created");
                stored
                    .lock()
                    .unwrap()
                    .insert(object.blob_id, (bytes, object.end_epoch()));
            }
            // A store that straddles an epoch boundary may fail; it is not certified.
            Err(e) => tracing::info!(error = %e, "store failed"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reader: random certified live blobs, all the time.
async fn read(client: Client, stored: Stored, stop: Arc<AtomicBool>, counts: Counts) {
    let ledger = LedgerClient::new(client.config().ledger_url.clone());
    let mut k = 0usize;
    while !stop.load(Ordering::Relaxed) {
        k += 1;
        let pick = {
            let s = stored.lock().unwrap();
            (!s.is_empty()).then(|| {
                let (id, (d, end)) = s.iter().nth(k * 31 % s.len()).unwrap();
                (*id, d.clone(), *end)
            })
        };
        let Some((id, bytes, end)) = pick else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        match client
            .read(&id, ReadOptions::default(), Arc::new(NoProgress))
            .await
        {
            Ok(got) if got == bytes => {
                counts.reads.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {
                counts.wrong.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let epoch = ledger.system().await.map(|s| s.epoch).unwrap_or(0);
                if epoch < end {
                    tracing::error!(blob = %id, error = %e, "read of a live blob failed");
                    counts.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The five membership changes, in order.
const STEPS: [&str; 5] = [
    "add 3",
    "remove 3 (one crashed)",
    "weights",
    "weights",
    "add 1",
];

/// Make change `step` on the testbed.
async fn make_change(bed: &mut Testbed, step: usize) {
    match step {
        0 => {
            for _ in 0..3 {
                bed.add_node(1).await.unwrap();
            }
        }
        1 => {
            // Node 1 crashes and never comes back; 0, 1 and 2 leave.
            bed.stop_node(1).await;
            for i in 0..3 {
                bed.remove_node(i).await.unwrap();
            }
        }
        2 => {
            bed.set_node_weight(3, 3).await.unwrap();
            bed.set_node_weight(7, 2).await.unwrap();
        }
        3 => {
            bed.set_node_weight(3, 1).await.unwrap();
            bed.set_node_weight(8, 2).await.unwrap();
        }
        _ => {
            bed.add_node(2).await.unwrap();
        }
    }
}

/// Whether the committee now shows change `step`, given the shards per node before it.
fn change_shows(
    step: usize,
    before: &BTreeMap<usize, usize>,
    now: &BTreeMap<usize, usize>,
) -> bool {
    let shards = |c: &BTreeMap<usize, usize>, i: usize| c.get(&i).copied().unwrap_or(0);
    match step {
        0 => (7..10).all(|i| shards(now, i) > 0),
        1 => (0..3).all(|i| shards(now, i) == 0),
        2 => shards(now, 3) > shards(before, 3) && shards(now, 7) > shards(before, 7),
        3 => shards(now, 3) < shards(before, 3) && shards(now, 8) > shards(before, 8),
        _ => shards(now, 10) > 0,
    }
}

/// Make change `step` and follow epoch changes until the committee shows it; returns how long
/// the epoch change that applied it took.
async fn change_committee(bed: &mut Testbed, ledger: &LedgerClient, step: usize) -> Duration {
    let what = STEPS[step];
    let mut epoch = wait_change_done(ledger, 0)
        .await
        .max(ledger.system().await.unwrap().epoch);
    let before = shard_counts(bed, ledger).await;
    make_change(bed, step).await;
    // The next committee is fixed half an epoch in: a change made after that takes effect
    // one epoch later. Follow changes until the committee shows this one.
    let mut changes = 0;
    let took = loop {
        let start = wait_change_start(ledger, epoch).await;
        epoch = wait_change_done(ledger, epoch).await;
        let took = start.elapsed();
        let now = shard_counts(bed, ledger).await;
        changes += 1;
        if change_shows(step, &before, &now) {
            break took;
        }
        assert!(
            changes < 3,
            "step {what}: the committee never changed: {now:?}"
        );
    };
    println!(
        "change {} ({what}): epoch {epoch}, {took:?}; shards per node {:?}",
        step + 1,
        shard_counts(bed, ledger).await
    );
    if step == 1 {
        // The leavers may stop once the change is done.
        bed.stop_node(0).await;
        bed.stop_node(2).await;
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committees_change_without_losing_a_blob() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,floe_node::epoch=info".into()),
        )
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let limits = floe_node::config::Limits {
        maintenance_interval_secs: 2,
        ..Default::default()
    };
    let mut bed = Testbed::start(
        dir.path(),
        TestbedOptions {
            nodes: 7,
            n_shards: 70,
            epoch_duration_ms: 3000,
            seed: 7,
            node_limits: limits,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ledger = LedgerClient::new(bed.ledger_url());
    let config = ClientConfig {
        ledger_url: bed.ledger_url(),
        ..Default::default()
    };
    let client = Client::new(config, Some(AccountKey::from_seed(&[9; 32]))).unwrap();
    let load = Load::start(&client);
    // Let some data accumulate before the first change.
    while load.stored.lock().unwrap().len() < 10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut timings = Vec::new();
    for step in 0..STEPS.len() {
        timings.push(change_committee(&mut bed, &ledger, step).await);
    }
    let (stored, counts) = load.stop().await;
    let epoch = ledger.system().await.unwrap().epoch;
    let blobs = stored.lock().unwrap().clone();
    let (checked, expired) = every_live_blob_reads_back(&client, &blobs, epoch, &counts).await;
    members_hold_their_slivers_and_expired_data_is_gone(&bed, &blobs, epoch).await;
    let (reads, wrong, lost) = (
        counts.reads.load(Ordering::Relaxed),
        counts.wrong.load(Ordering::Relaxed),
        counts.lost.load(Ordering::Relaxed),
    );
    println!(
        "blobs stored {}, checked at the end {checked}, expired {expired}, reads during changes {reads}, lost {lost}, wrong {wrong}",
        blobs.len()
    );
    println!("time per change: {timings:?}");
    print_migration(&bed);
    assert_eq!(lost, 0);
    assert_eq!(wrong, 0);
    assert!(checked > 0);
    bed.shutdown().await;
}

/// Every blob live at `epoch` reads back with its bytes; returns (checked, expired) and adds
/// wrong and lost reads to `counts`.
async fn every_live_blob_reads_back(
    client: &Client,
    blobs: &BTreeMap<BlobId, (Vec<u8>, Epoch)>,
    epoch: Epoch,
    counts: &Counts,
) -> (usize, usize) {
    let (mut checked, mut expired) = (0, 0);
    for (id, (bytes, end)) in blobs {
        if *end <= epoch {
            expired += 1;
            continue;
        }
        let got = client
            .read(id, ReadOptions::default(), Arc::new(NoProgress))
            .await;
        match got {
            Ok(g) if g == *bytes => checked += 1,
            Ok(_) => {
                counts.wrong.fetch_add(1, Ordering::Relaxed);
            }
            // Epochs are short: the blob may have expired since `epoch` was read.
            Err(floe_client::ClientError::Expired { end_epoch, .. }) if end_epoch == *end => {
                expired += 1;
            }
            Err(e) => {
                tracing::error!(blob = %id, error = %e, "final read failed");
                counts.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    (checked, expired)
}

/// Every member holds all slivers of its shards (members finish syncing in the background
/// after the quorum reported: they get time), and expired blobs' data is gone.
async fn members_hold_their_slivers_and_expired_data_is_gone(
    bed: &Testbed,
    blobs: &BTreeMap<BlobId, (Vec<u8>, Epoch)>,
    epoch: Epoch,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..bed.node_count() {
        let Some(node) = bed.node(i) else { continue };
        loop {
            let view = node.view();
            let mut missing = 0;
            for (id, (_, end)) in blobs {
                if *end > view.epoch {
                    missing += node.missing_slivers(&view, id).unwrap().len();
                }
            }
            if missing == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} misses {missing} slivers"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        for (id, (_, end)) in blobs {
            if *end + 1 < epoch {
                // Expired at least one full epoch ago: the epoch change's GC removed it.
                assert_eq!(
                    node.metadata_status(id).unwrap(),
                    StoredStatus::Nonexistent,
                    "node {i} kept the data of expired blob {id}"
                );
            }
        }
    }
}

/// What moved by shard sync and what recovery rebuilt, summed over the nodes.
fn print_migration(bed: &Testbed) {
    let (mut slivers, mut bytes, mut recovered) = (0, 0, 0);
    for i in 0..bed.node_count() {
        if let Some(node) = bed.node(i) {
            let m = node.migration_stats();
            slivers += m.slivers_migrated;
            bytes += m.bytes_migrated;
            recovered += m.blobs_recovered;
        }
    }
    println!(
        "migrated by shard sync: {slivers} slivers, {bytes} bytes; blobs rebuilt by recovery: {recovered}"
    );
}
