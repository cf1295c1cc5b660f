//! The whole-system fault suite: real `floe ledger run` and `floe node run` processes (7 nodes,
//! 10 shards, f = 3), driven over HTTP by the client library, while processes are stopped,
//! SIGKILLed, wiped and restarted. Each scenario prints one `SUMMARY` line (operations,
//! successes, expected failures, certified blobs lost, wrong reads, seed) and fails unless
//! nothing certified was lost, nothing read back differs, and the faults it is about actually
//! happened. `FLOE_TEST_SEED` repeats a run's random choices (not its timing).
//!
//! 1. `stop_f`: 50 blobs of mixed sizes (0 B to the maximum); nodes holding f shards stopped
//!    (SIGTERM and SIGKILL); every read succeeds, byte for byte.
//! 2. `wipe`: a node is killed, its data directory deleted, and restarted; it recovers every
//!    sliver of its shards (status routes, then the bytes), and reads succeed with another f
//!    shards stopped, and even with only n − 2f shards left, the recovered node among them.
//! 3. `node_kills`: nodes (≤ f shards at once) SIGKILLed and restarted under a write load;
//!    every acknowledged blob ends up fully replicated and reads back with f shards down.
//! 4. `ledger_kills`: the ledger SIGKILLed and restarted under a write load; every
//!    acknowledged store is still certified on the ledger and readable, and an offline
//!    `floe ledger replay` of the crashed log reproduces the digest and state hash it served.
//! 5. `invalid_blob`: a malicious client certifies an inconsistently encoded blob, skipping
//!    the node that must then recover it; the network marks it invalid and reads answer
//!    `Invalid`, never data.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use floe_client::{
    Client, ClientError, ConsistencyCheck, Lifetime, NoProgress, ReadOptions, StoreOptions,
    VerifiedStatus,
};
use floe_core::sliver::metadata_from_slivers;
use floe_core::{
    BlobId, BlobMetadataWithId, ObjectId, Sliver, SliverData, SliverIndex, SliverPair,
    SliverPairIndex, SliverType, encode,
};
use floe_crypto::Certificate;
use floe_ledger::{AccountKey, BlobStatus, EventKind, TxKind};
use floe_ledger_client::AccountSession;
use floe_node::config::Limits;
use rand::Rng;
use rand::seq::SliceRandom;
use support::{N_SHARDS, NODES, Net, SERIAL, Stop, Tally, random_bytes, read_all, rng, small_size};

/// Nodes recover quickly after a certification (a short delay lets in-flight uploads land)
/// and retry incomplete syncs every second.
fn limits() -> Limits {
    Limits {
        sync_delay_ms: 200,
        maintenance_interval_secs: 1,
        ..Limits::default()
    }
}

fn options(rng: &mut impl Rng) -> StoreOptions {
    StoreOptions {
        lifetime: Lifetime::Epochs(2),
        deletable: rng.random_bool(0.5),
        force: false,
    }
}

/// One acknowledged store.
#[derive(Clone)]
struct Acked {
    blob_id: BlobId,
    object: Option<ObjectId>,
    data: Arc<Vec<u8>>,
    /// When the store began and returned.
    span: (Instant, Instant),
}

impl Acked {
    /// Whether the store was under way at `t`.
    fn spans(&self, t: Instant) -> bool {
        self.span.0 <= t && t <= self.span.1
    }
}

async fn store(
    client: &Client,
    data: &Arc<Vec<u8>>,
    options: &StoreOptions,
) -> Result<Acked, ClientError> {
    let began = Instant::now();
    let out = client
        .store(data.to_vec(), options, Arc::new(NoProgress))
        .await?;
    Ok(Acked {
        blob_id: out
            .result
            .blob_id()
            .expect("a successful store names its blob"),
        object: out.object.map(|o| o.id),
        data: data.clone(),
        span: (began, Instant::now()),
    })
}

fn contents(acked: &[Acked]) -> Vec<(BlobId, Arc<Vec<u8>>)> {
    acked.iter().map(|a| (a.blob_id, a.data.clone())).collect()
}

/// What the writers of a load did.
#[derive(Default)]
struct Load {
    acked: Vec<Acked>,
    /// Failed stores by error kind, with one example message each.
    failures: BTreeMap<&'static str, (u64, String)>,
    attempts: u64,
}

impl Load {
    fn failed(&self) -> u64 {
        self.failures.values().map(|(n, _)| n).sum()
    }

    /// Failures of kinds other than `allowed`, described.
    fn unexpected(&self, allowed: &[&str]) -> Vec<String> {
        self.failures
            .iter()
            .filter(|(k, _)| !allowed.contains(k))
            .map(|(k, (n, example))| format!("{n} × {k}, e.g. {example}"))
            .collect()
    }
}

/// `writers` concurrent writers (each its own client and wallet) storing mostly small blobs
/// until `stop` is set. `in_flight` counts stores under way.
fn spawn_load(
    net: &Net,
    seed: u64,
    writers: u64,
    stop: &Arc<AtomicBool>,
    in_flight: &Arc<AtomicUsize>,
) -> tokio::task::JoinSet<Load> {
    let mut set = tokio::task::JoinSet::new();
    for w in 0..writers {
        let client = net.client(w);
        let (stop, in_flight) = (stop.clone(), in_flight.clone());
        let mut rng = rng(seed, &format!("writer-{w}"));
        set.spawn(async move {
            let mut load = Load::default();
            while !stop.load(Ordering::Relaxed) {
                let len = small_size(&mut rng);
                let data = Arc::new(random_bytes(&mut rng, len));
                let opts = options(&mut rng);
                in_flight.fetch_add(1, Ordering::SeqCst);
                let result = store(&client, &data, &opts).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                load.attempts += 1;
                match result {
                    Ok(a) => load.acked.push(a),
                    Err(e) => {
                        let entry = load.failures.entry(e.kind()).or_insert((0, e.to_string()));
                        entry.0 += 1;
                        // Do not spin while the network is down.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            load
        });
    }
    set
}

async fn join_load(mut set: tokio::task::JoinSet<Load>) -> Load {
    let mut all = Load::default();
    while let Some(l) = set.join_next().await {
        let l = l.expect("a writer panicked");
        all.acked.extend(l.acked);
        all.attempts += l.attempts;
        for (k, (n, example)) in l.failures {
            all.failures.entry(k).or_insert((0, example)).0 += n;
        }
    }
    all
}

/// Wait until the ledger reports `blob_id` invalid; returns how long that took.
async fn wait_invalid(net: &Net, blob_id: &BlobId, timeout: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let status = net
            .ledger
            .blob_status(blob_id)
            .await
            .map_err(|e| e.to_string())?;
        if matches!(status.status, BlobStatus::Invalid { .. }) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "the ledger still reports {:?} after {timeout:?}",
                status.status
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A scenario's `SUMMARY` line: what it counted, its seed and when it began.
struct Summary {
    tally: Tally,
    seed: u64,
    started: Instant,
}

impl Summary {
    fn new(seed: u64, started: Instant) -> Summary {
        Summary {
            tally: Tally::default(),
            seed,
            started,
        }
    }
}

// The scenarios, a file each; one test binary, so that `SERIAL` keeps them apart.
#[path = "fault_suite/invalid_blob.rs"]
mod invalid_blob;
#[path = "fault_suite/kills.rs"]
mod kills;
#[path = "fault_suite/stop_and_wipe.rs"]
mod stop_and_wipe;
