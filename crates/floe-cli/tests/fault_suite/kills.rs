//! Scenarios 3 and 4: nodes, then the ledger, SIGKILLed and restarted under a write load.

use super::*;

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
