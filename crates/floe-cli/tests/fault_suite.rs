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
};
use floe_core::sliver::metadata_from_slivers;
use floe_core::{
    BlobId, ObjectId, Sliver, SliverData, SliverIndex, SliverPair, SliverPairIndex, SliverType,
    encode,
};
use floe_crypto::Certificate;
use floe_ledger::{AccountKey, BlobStatus, EventKind, TxKind};
use floe_ledger_client::AccountSession;
use floe_node::config::Limits;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
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

/// Scenarios 1 and 2 on one network: reads with nodes holding f shards stopped, then a wiped
/// node that must recover everything and is then needed for reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_f_shards_then_wipe_and_recover_a_node() {
    let _serial = SERIAL.lock().await;
    let seed = support::test_seed("stop_f+wipe");
    let started = Instant::now();
    let mut rng = rng(seed, "stop_f");
    let mut net = Net::start("stop_f", seed, limits()).await;
    let client = net.client(0);
    let f = net.f();

    // ---- 1. stop nodes holding f shards ----
    let max = net.system.max_blob_size as usize;
    let mut sizes = vec![
        0,
        1,
        2,
        31,
        32,
        33,
        1000,
        4096,
        65_536,
        1 << 20,
        max - 1,
        max,
    ];
    while sizes.len() < 42 {
        sizes.push(rng.random_range(1..=16 << 10));
    }
    while sizes.len() < 50 {
        sizes.push(rng.random_range(16 << 10..=1 << 20));
    }
    sizes.shuffle(&mut rng);
    let mut tally = Tally::default();
    let mut set = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(4));
    for &len in &sizes {
        let data = Arc::new(random_bytes(&mut rng, len));
        let (client, sem, opts) = (client.clone(), sem.clone(), options(&mut rng));
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (len, store(&client, &data, &opts).await)
        });
    }
    let mut stored = Vec::new();
    while let Some(r) = set.join_next().await {
        let (len, result) = r.unwrap();
        tally.operations += 1;
        match result {
            Ok(a) => {
                tally.successes += 1;
                stored.push(a);
            }
            Err(e) => panic!("storing {len} bytes with every node up failed: {e}"),
        }
    }
    println!(
        "[stop_f] stored {} blobs ({} bytes, the largest {max}) in {:.1?}",
        stored.len(),
        sizes.iter().sum::<usize>(),
        started.elapsed()
    );
    // One byte over the network's limit is refused before anything is written.
    tally.operations += 1;
    match client
        .store(vec![7; max + 1], &options(&mut rng), Arc::new(NoProgress))
        .await
    {
        Err(ClientError::BlobTooLarge { .. }) => tally.expected_failures += 1,
        other => panic!("a blob over the limit: {:?}", other.map(|o| o.result)),
    }

    // The nodes to stop are picked by the committee the client sees.
    let (_, committee) = client.committee().await.unwrap();
    for i in 0..NODES {
        let m = &committee.members[net.member(i)];
        assert_eq!(m.info.network_address, net.state.node_addresses[i]);
        assert_eq!(m.weight(), net.weight(i));
    }
    assert_eq!(u64::from(committee.config.max_faulty()), f);
    let stopped_a = net
        .pick_f_set(&mut rng, &[])
        .expect("a set of nodes holding f shards");
    let first = if rng.random_bool(0.5) {
        Stop::Kill
    } else {
        Stop::Term
    };
    let mut how = Vec::new();
    for (k, &i) in stopped_a.iter().enumerate() {
        // Both ways of stopping when two or more nodes go down.
        let h = match (k % 2, first) {
            (0, s) => s,
            (_, Stop::Kill) => Stop::Term,
            (_, Stop::Term) => Stop::Kill,
        };
        net.stop_node(i, h).await;
        how.push(format!("{i}:{h:?}"));
    }
    assert_eq!(
        stopped_a.iter().map(|&i| net.weight(i)).sum::<u64>(),
        f,
        "exactly f shards are down"
    );
    let problems = read_all(&client, &contents(&stored), &mut tally).await;
    tally.print(
        "1-stop-f-shards",
        seed,
        started,
        &format!("stopped=[{}] shards_down={f}", how.join(",")),
    );
    assert!(
        problems.is_empty(),
        "reads failed:\n{}",
        problems.join("\n")
    );
    assert_eq!((tally.lost, tally.wrong), (0, 0));
    assert_eq!(tally.successes, 2 * stored.len() as u64);

    // ---- 2. wipe a node; it recovers; reads need it ----
    let started = Instant::now();
    let mut tally = Tally::default();
    for &i in &stopped_a {
        net.start_node(i).await;
    }
    // The victim: the heaviest node not stopped above; then another f shards, disjoint
    // from both, to stop once it has recovered.
    let victim = (0..NODES)
        .filter(|i| !stopped_a.contains(i))
        .max_by_key(|&i| (net.weight(i), i))
        .unwrap();
    let mut exclude = stopped_a.clone();
    exclude.push(victim);
    let stopped_b = net
        .pick_f_set(&mut rng, &exclude)
        .expect("a second set of nodes holding f shards, disjoint from the first and the victim");
    // What the victim must hold, from a local encoding of the data.
    let expected: Vec<(BlobId, SliverPairIndex, SliverType, SliverData)> = {
        let blobs: Vec<(BlobId, Arc<Vec<u8>>)> = contents(&stored);
        let pairs_of: Vec<Vec<SliverPairIndex>> = blobs
            .iter()
            .map(|(id, _)| net.pairs_of(victim, id))
            .collect();
        let config = net.config;
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for ((id, data), pairs) in blobs.iter().zip(pairs_of) {
                let e = encode(&config, data).unwrap();
                assert_eq!(
                    e.blob_id(),
                    *id,
                    "the client stored the blob ID of its data"
                );
                for pair in pairs {
                    let p = e.sliver_pair(pair);
                    out.push((*id, pair, SliverType::Primary, p.primary));
                    out.push((*id, pair, SliverType::Secondary, p.secondary));
                }
            }
            out
        })
        .await
        .unwrap()
    };
    let ids: Vec<BlobId> = stored.iter().map(|a| a.blob_id).collect();
    net.wait_replicated(&ids, Duration::from_secs(30))
        .await
        .expect("every node holds its slivers before the wipe");
    net.wipe_node(victim).await;
    assert!(!net.node_dir(victim).join("data").exists());
    let wiped_at = Instant::now();
    net.start_node(victim).await;
    let recovered_in = net
        .wait_replicated(&ids, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("node {victim} did not recover after its wipe: {e}"));
    println!(
        "[wipe] node {victim} ({} shards) recovered {} slivers of {} blobs {:.1?} after restarting ({:.1?} after the wipe)",
        net.weight(victim),
        expected.len(),
        ids.len(),
        recovered_in,
        wiped_at.elapsed()
    );
    // The recovered slivers are the right bytes.
    let vclient = net.node_client(victim);
    let mut bad = Vec::new();
    for (id, pair, axis, sliver) in &expected {
        tally.operations += 1;
        match vclient.get_sliver(id, *pair, *axis).await {
            Ok(got) if got == *sliver => tally.successes += 1,
            Ok(_) => {
                tally.wrong += 1;
                bad.push(format!("{id} pair {pair} {axis}: different bytes"));
            }
            Err(e) => {
                tally.lost += 1;
                bad.push(format!("{id} pair {pair} {axis}: {e}"));
            }
        }
    }
    for id in &ids {
        tally.operations += 1;
        match vclient.get_metadata(id).await {
            Ok(m) if m.blob_id == *id => tally.successes += 1,
            Ok(_) => {
                tally.wrong += 1;
                bad.push(format!("{id}: metadata of another blob"));
            }
            Err(e) => {
                tally.lost += 1;
                bad.push(format!("{id} metadata: {e}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "recovered data is wrong:\n{}",
        bad.join("\n")
    );
    // Another f shards down (the victim up): every read succeeds.
    for &i in &stopped_b {
        net.stop_node(i, Stop::Kill).await;
    }
    let problems = read_all(&client, &contents(&stored), &mut tally).await;
    assert!(
        problems.is_empty(),
        "reads with nodes {stopped_b:?} down failed:\n{}",
        problems.join("\n")
    );
    // Both sets down (2f shards, beyond the guarantee): the n − 2f = p shards left, the
    // victim's among them, are exactly enough, so every read depends on what it recovered.
    for &i in &stopped_a {
        net.stop_node(i, Stop::Term).await;
    }
    let left: u64 = net.running().iter().map(|&i| net.weight(i)).sum();
    assert_eq!(left, u64::from(net.config.n_primary_source()));
    assert!(net.is_running(victim));
    let problems = read_all(&client, &contents(&stored), &mut tally).await;
    tally.print(
        "2-wipe-and-recover",
        seed,
        started,
        &format!(
            "wiped=node-{victim} recovered_slivers={} recovery={:.1}s then_stopped={stopped_b:?} then_also={stopped_a:?} shards_left={left}",
            expected.len(),
            recovered_in.as_secs_f64()
        ),
    );
    assert!(
        problems.is_empty(),
        "reads from the {left} shards left (nodes {:?}) failed:\n{}",
        net.running(),
        problems.join("\n")
    );
    assert_eq!((tally.lost, tally.wrong), (0, 0));
}

/// Scenario 3: SIGKILL random nodes (never more than f shards down at once) and restart them
/// while writers store blobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_kills_during_a_write_load_lose_nothing_acknowledged() {
    let _serial = SERIAL.lock().await;
    let seed = support::test_seed("node_kills");
    let started = Instant::now();
    let mut net = Net::start("node_kills", seed, limits()).await;
    let mut chaos = rng(seed, "chaos");
    let f = net.f();
    let stop = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let writers = spawn_load(&net, seed, 4, &stop, &in_flight);

    let load_for = Duration::from_secs(10);
    let load_started = Instant::now();
    let mut rounds = Vec::new();
    let mut kill_times = Vec::new();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // At least four rounds even on a slow machine (bounded).
    while (load_started.elapsed() < load_for || rounds.len() < 4)
        && load_started.elapsed() < 3 * load_for
    {
        // Up to f shards: nodes in random order, each taken if it still fits.
        let target = chaos.random_range(1..=f);
        let mut order: Vec<usize> = (0..NODES).collect();
        order.shuffle(&mut chaos);
        let mut victims = Vec::new();
        let mut weight = 0;
        for i in order {
            if weight + net.weight(i) <= target {
                weight += net.weight(i);
                victims.push(i);
            }
        }
        let busy = in_flight.load(Ordering::SeqCst);
        kill_times.push(Instant::now());
        for &i in &victims {
            net.stop_node(i, Stop::Kill).await;
        }
        let down: u64 = (0..NODES)
            .filter(|&i| !net.is_running(i))
            .map(|i| net.weight(i))
            .sum();
        assert!(down <= f, "{down} shards down");
        rounds.push((victims.clone(), weight, busy));
        tokio::time::sleep(Duration::from_millis(chaos.random_range(300..1200))).await;
        for &i in &victims {
            net.start_node(i).await;
        }
        tokio::time::sleep(Duration::from_millis(chaos.random_range(200..800))).await;
    }
    stop.store(true, Ordering::Relaxed);
    let load = join_load(writers).await;
    let load_time = load_started.elapsed();

    let mut tally = Tally {
        operations: load.attempts,
        successes: load.acked.len() as u64,
        expected_failures: load.failed(),
        ..Tally::default()
    };
    // Everything acknowledged ends up on every node (the killed ones recover what they
    // missed), then reads back with f shards down.
    let ids: Vec<BlobId> = load.acked.iter().map(|a| a.blob_id).collect();
    let replicated = net.wait_replicated(&ids, Duration::from_secs(60)).await;
    let stopped = net.pick_f_set(&mut chaos, &[]).unwrap();
    for &i in &stopped {
        net.stop_node(i, Stop::Term).await;
    }
    let client = net.client(100);
    let problems = read_all(&client, &contents(&load.acked), &mut tally).await;
    let killed_busy = rounds.iter().filter(|r| r.2 > 0).count();
    // Acknowledged stores that were under way when nodes were killed.
    let across = load
        .acked
        .iter()
        .filter(|a| kill_times.iter().any(|&t| a.spans(t)))
        .count();
    tally.print(
        "3-node-kills-under-load",
        seed,
        started,
        &format!(
            "load={:.1}s kill_rounds={} nodes_killed={} kills_with_stores_in_flight={killed_busy} acked_stores_spanning_a_kill={across} failures={:?} replicated_after={} read_with_stopped={stopped:?}",
            load_time.as_secs_f64(),
            rounds.len(),
            rounds.iter().map(|r| r.0.len()).sum::<usize>(),
            load.failures.iter().map(|(k, (n, _))| (*k, *n)).collect::<Vec<_>>(),
            match &replicated {
                Ok(d) => format!("{:.1}s", d.as_secs_f64()),
                Err(_) => "never".into(),
            },
        ),
    );
    for r in &rounds {
        println!(
            "[node_kills] killed {:?} ({} shards) with {} stores in flight",
            r.0, r.1, r.2
        );
    }
    assert!(
        problems.is_empty(),
        "acknowledged blobs lost:\n{}",
        problems.join("\n")
    );
    assert_eq!((tally.lost, tally.wrong), (0, 0));
    let unexpected = load.unexpected(&["INSUFFICIENT_CONFIRMATIONS"]);
    assert!(
        unexpected.is_empty(),
        "unexpected store failures: {unexpected:?}"
    );
    replicated.unwrap_or_else(|e| panic!("acknowledged blobs not fully replicated: {e}"));
    assert!(rounds.len() >= 4, "only {} kill rounds", rounds.len());
    assert!(
        killed_busy >= rounds.len() - 1,
        "most kills must hit stores in flight: {rounds:?}"
    );
    assert!(
        across >= 1,
        "no acknowledged store was under way during a kill"
    );
    assert!(
        load.acked.len() >= 20,
        "the load acknowledged only {} stores",
        load.acked.len()
    );
}

/// Scenario 4: SIGKILL the ledger (twice) during a write load and restart it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_kills_during_a_write_load_lose_no_acknowledged_store() {
    let _serial = SERIAL.lock().await;
    let seed = support::test_seed("ledger_kills");
    let started = Instant::now();
    let mut net = Net::start("ledger_kills", seed, limits()).await;
    let mut chaos = rng(seed, "chaos");
    let stop = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let writers = spawn_load(&net, seed, 4, &stop, &in_flight);

    let load_started = Instant::now();
    let mut kills = Vec::new();
    let mut kill_times = Vec::new();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(chaos.random_range(1000..2000))).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while in_flight.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let busy = in_flight.load(Ordering::SeqCst);
        kill_times.push(Instant::now());
        net.stop_ledger(Stop::Kill).await;
        let outage = Duration::from_millis(chaos.random_range(500..1500));
        tokio::time::sleep(outage).await;
        let t = Instant::now();
        net.start_ledger().await;
        kills.push((busy, outage, t.elapsed()));
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    let load = join_load(writers).await;
    let load_time = load_started.elapsed();

    let mut tally = Tally {
        operations: load.attempts,
        successes: load.acked.len() as u64,
        expected_failures: load.failed(),
        ..Tally::default()
    };
    // Every acknowledged store is still certified on the ledger, and its object too.
    let client = net.client(100);
    let mut lost = Vec::new();
    for a in &load.acked {
        let status = client.verified_status(&a.blob_id, None).await.unwrap();
        if !matches!(status.status, BlobStatus::Certified { .. }) {
            lost.push(format!("{}: ledger status {:?}", a.blob_id, status.status));
            continue;
        }
        let object = a.object.expect("a new store creates an object");
        match net.ledger.object(&object).await.unwrap() {
            Some(floe_ledger::api_types::ObjectResponse::Blob(b))
                if b.blob_id == a.blob_id && b.certified_epoch.is_some() => {}
            other => lost.push(format!("{}: object {object} is now {other:?}", a.blob_id)),
        }
    }
    tally.lost += lost.len() as u64;
    let ids: Vec<BlobId> = load.acked.iter().map(|a| a.blob_id).collect();
    let replicated = net.wait_replicated(&ids, Duration::from_secs(60)).await;
    let stopped = net.pick_f_set(&mut chaos, &[]).unwrap();
    for &i in &stopped {
        net.stop_node(i, Stop::Kill).await;
    }
    let problems = read_all(&client, &contents(&load.acked), &mut tally).await;
    let across = load
        .acked
        .iter()
        .filter(|a| kill_times.iter().any(|&t| a.spans(t)))
        .count();
    // The log the two crashes left replays to exactly the state the ledger served.
    let replay = net.stop_ledger_and_replay().await;
    tally.print(
        "4-ledger-kills-under-load",
        seed,
        started,
        &format!(
            "load={:.1}s ledger_kills={} stores_in_flight_at_kills={:?} outages_ms={:?} acked_stores_spanning_a_kill={across} failures={:?} read_with_stopped={stopped:?} replay={}",
            load_time.as_secs_f64(),
            kills.len(),
            kills.iter().map(|k| k.0).collect::<Vec<_>>(),
            kills
                .iter()
                .map(|k| (k.1 + k.2).as_millis())
                .collect::<Vec<_>>(),
            load.failures.iter().map(|(k, (n, _))| (*k, *n)).collect::<Vec<_>>(),
            match &replay {
                Ok(r) => format!("ok({r})"),
                Err(_) => "FAILED".into(),
            },
        ),
    );
    replay.unwrap_or_else(|e| panic!("the ledger log does not replay to what it served: {e}"));
    assert!(
        lost.is_empty(),
        "acknowledged stores lost on the ledger:\n{}",
        lost.join("\n")
    );
    assert!(
        problems.is_empty(),
        "acknowledged blobs unreadable:\n{}",
        problems.join("\n")
    );
    assert_eq!((tally.lost, tally.wrong), (0, 0));
    let unexpected = load.unexpected(&["LEDGER_ERROR", "INSUFFICIENT_CONFIRMATIONS"]);
    assert!(
        unexpected.is_empty(),
        "unexpected store failures: {unexpected:?}"
    );
    replicated.unwrap_or_else(|e| panic!("acknowledged blobs not fully replicated: {e}"));
    assert!(
        kills.iter().all(|k| k.0 > 0),
        "every ledger kill must hit stores in flight: {kills:?}"
    );
    assert!(
        load.failed() >= 1,
        "no store noticed the ledger outages; failures {:?}",
        load.failures
    );
    assert!(
        load.acked.len() >= 20,
        "the load acknowledged only {} stores",
        load.acked.len()
    );
}

/// Scenario 5: an inconsistently encoded blob, certified by a malicious client that skipped
/// the node holding the altered sliver, is proven invalid by that node's recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inconsistent_blob_is_marked_invalid_and_never_read() {
    let _serial = SERIAL.lock().await;
    let seed = support::test_seed("invalid_blob");
    let started = Instant::now();
    let mut rng = rng(seed, "invalid_blob");
    let net = Net::start("invalid_blob", seed, limits()).await;
    let client = net.client(0);
    let mut tally = Tally::default();

    // Honest blobs around it must stay readable.
    let mut honest = Vec::new();
    for _ in 0..3 {
        let len = small_size(&mut rng);
        let data = Arc::new(random_bytes(&mut rng, len));
        tally.operations += 1;
        honest.push(store(&client, &data, &options(&mut rng)).await.unwrap());
        tally.successes += 1;
    }

    // Alter one byte of a systematic primary sliver and publish the hashes of what is sent:
    // every sliver verifies against the metadata, the encoding is inconsistent.
    let config = net.config;
    let n = usize::from(N_SHARDS);
    let len = rng.random_range(10_000..40_000);
    let data = random_bytes(&mut rng, len);
    let encoded = encode(&config, &data).unwrap();
    let mut primary: Vec<SliverData> = (0..N_SHARDS)
        .map(|i| encoded.sliver(SliverType::Primary, SliverIndex(i)))
        .collect();
    let secondary: Vec<SliverData> = (0..N_SHARDS)
        .map(|i| encoded.sliver(SliverType::Secondary, SliverIndex(i)))
        .collect();
    let row = rng.random_range(0..usize::from(config.n_primary_source()));
    let pos = rng.random_range(0..primary[row].symbols.len());
    primary[row].symbols[pos] ^= 1 << rng.random_range(0..8);
    let bad = metadata_from_slivers(&config, data.len() as u64, &primary, &secondary).unwrap();
    bad.verify(&config).unwrap();
    let blob_id = bad.blob_id;
    assert_ne!(blob_id, encoded.blob_id());
    let pairs: Vec<SliverPair> = (0..n)
        .map(|k| SliverPair {
            primary: primary[k].clone(),
            secondary: secondary[n - 1 - k].clone(),
        })
        .collect();
    let victim = net.node_of_shard(
        SliverPairIndex(row as u16)
            .to_shard_index(N_SHARDS, &blob_id)
            .0,
    );

    // Register, upload to every node but the victim, gather their confirmations, certify.
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    let user = AccountSession::new(AccountKey::from_seed(&key), net.ledger.clone());
    let reg = user
        .submit(TxKind::ReserveAndRegister {
            end_epoch: net.system.epoch + 2,
            blob_id,
            root_hash: bad.metadata.root_hash(),
            size: data.len() as u64,
            encoding_type: floe_core::EncodingType::RS2,
            deletable: false,
        })
        .await
        .unwrap();
    let object = reg
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::BlobRegistered { object_id, .. } => Some(*object_id),
            _ => None,
        })
        .unwrap();
    let (_, committee) = client.committee().await.unwrap();
    let mut partials = Vec::new();
    for i in (0..NODES).filter(|&i| i != victim) {
        let node = net.node_client(i);
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = node.put_metadata(&blob_id, &bad.metadata).await {
            assert!(
                Instant::now() < deadline,
                "node {i} never took the metadata: {e}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let slivers: Vec<(SliverPairIndex, Sliver)> = net
            .pairs_of(i, &blob_id)
            .into_iter()
            .flat_map(|pair| {
                let p = pairs[usize::from(pair.0)].clone();
                [
                    (pair, Sliver::Primary(p.primary)),
                    (pair, Sliver::Secondary(p.secondary)),
                ]
            })
            .collect();
        node.put_sliver_batch(&blob_id, slivers).await.unwrap();
        partials.push((
            net.member(i),
            node.confirmation(&blob_id, None).await.unwrap(),
        ));
    }
    let certificate = Certificate::aggregate(&committee.weights, &partials).unwrap();
    user.submit(TxKind::CertifyBlob {
        blob_object: object,
        certificate,
    })
    .await
    .unwrap();
    tally.operations += 1;
    tally.successes += 1;
    println!(
        "[invalid_blob] certified {blob_id} (primary sliver {row} altered at byte {pos}); node {victim} got nothing and must recover it"
    );

    let read = |check: ConsistencyCheck| {
        let client = client.clone();
        async move {
            client
                .read(&blob_id, ReadOptions { check }, Arc::new(NoProgress))
                .await
        }
    };
    // Right away (most likely before the invalidation): no data either way.
    let mut early = Vec::new();
    tally.operations += 1;
    match read(ConsistencyCheck::Default).await {
        Ok(bytes) => {
            tally.wrong += 1;
            early.push(format!("returned {} bytes", bytes.len()));
        }
        Err(e @ (ClientError::Inconsistent(_) | ClientError::Invalid(_))) => {
            tally.expected_failures += 1;
            early.push(e.kind().to_string());
        }
        Err(e) => panic!("a read of the certified inconsistent blob failed oddly: {e}"),
    }
    // The victim's sync proves the inconsistency; the ledger marks the blob invalid.
    let invalid_after = wait_invalid(&net, &blob_id, Duration::from_secs(30)).await;
    let mut answers = Vec::new();
    if invalid_after.is_ok() {
        for check in [
            ConsistencyCheck::Default,
            ConsistencyCheck::Skip,
            ConsistencyCheck::Strict,
        ] {
            tally.operations += 1;
            match read(check).await {
                Err(ClientError::Invalid(id)) if id == blob_id => tally.expected_failures += 1,
                Ok(bytes) => {
                    tally.wrong += 1;
                    answers.push(format!("{check:?}: {} bytes", bytes.len()));
                }
                Err(e) => {
                    tally.wrong += 1;
                    answers.push(format!("{check:?}: {e}"));
                }
            }
        }
    }
    // Every node learns it (and reports it through its status route).
    let deadline = Instant::now() + Duration::from_secs(15);
    let agreement = loop {
        let s = client.verified_status(&blob_id, None).await.unwrap();
        if s.nodes.agreeing_shards == u64::from(N_SHARDS) || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let problems = read_all(&client, &contents(&honest), &mut tally).await;
    tally.print(
        "5-inconsistent-blob",
        seed,
        started,
        &format!(
            "blob={blob_id} skipped=node-{victim} early_read={early:?} invalid_after={} nodes_agreeing={}/{N_SHARDS}",
            match &invalid_after {
                Ok(d) => format!("{:.1}s", d.as_secs_f64()),
                Err(_) => "never".into(),
            },
            agreement.nodes.agreeing_shards
        ),
    );
    invalid_after.unwrap_or_else(|e| panic!("the inconsistent blob was not invalidated: {e}"));
    assert!(answers.is_empty(), "reads of the invalid blob: {answers:?}");
    assert!(
        matches!(agreement.status, BlobStatus::Invalid { .. }),
        "{:?}",
        agreement.status
    );
    assert_eq!(
        agreement.nodes.agreeing_shards,
        u64::from(N_SHARDS),
        "every node reports the blob invalid"
    );
    assert!(problems.is_empty(), "honest blobs: {problems:?}");
    assert_eq!((tally.lost, tally.wrong), (0, 0), "early read: {early:?}");
}
