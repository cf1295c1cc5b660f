//! The ledger over time: its epoch clock, restarts that recover the same state, events
//! readable once acknowledged, and a reopen right after a drop.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_clock_advances_epochs_by_itself() {
    let net = TestNet::new(4, 10, 1_000);
    let dir = tempdir();
    let ledger = Ledger::open(dir.path(), net.config.clone(), Arc::new(SystemClock)).unwrap();
    ledger.spawn_epoch_clock(Duration::from_millis(50));
    let server = Server::serve(ledger).await;

    let start = Instant::now();
    let mut cursor = 0u64;
    let mut started = Vec::new();
    let mut done = Vec::new();
    let (mut selected, mut challenges) = (Vec::new(), Vec::new());
    while done.len() < 2 && start.elapsed() < Duration::from_secs(5) {
        let page = server
            .get_ok(&format!("/v1/events?cursor={cursor}&waitMs=500"))
            .await;
        for e in page["events"].as_array().unwrap() {
            match event_kind(e) {
                ("epochChangeStart", b) => started.push(b["epoch"].as_u64().unwrap()),
                ("epochChangeDone", b) => done.push(b["epoch"].as_u64().unwrap()),
                ("epochParametersSelected", b) => selected.push(b["nextEpoch"].as_u64().unwrap()),
                ("challengesStarted", b) => challenges.push(b["epoch"].as_u64().unwrap()),
                (other, _) => panic!("unexpected event {other}: {e}"),
            }
        }
        cursor = page["nextCursor"].as_u64().unwrap();
    }
    let elapsed = start.elapsed();
    println!("epochs started {started:?}, done {done:?} after {elapsed:?}");
    assert!(
        started.len() >= 2 && done.len() >= 2,
        "fewer than two epoch changes within {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "two epoch changes took {elapsed:?}"
    );
    assert_eq!(started[..2], [1, 2]);
    assert_eq!(done[..2], [1, 2]);
    // Each next committee was fixed (half an epoch in) before its epoch started, and each
    // finished change fixed that epoch's storage challenges.
    assert_eq!([&selected[..2], &challenges[..2]], [[1, 2], [1, 2]]);

    let system = server.get_ok("/v1/system").await;
    let epoch = system["epoch"].as_u64().unwrap();
    assert!(epoch >= 2, "{system}");
    assert_eq!(system["committee"]["epoch"], epoch);
    assert_eq!(system["previousCommittee"]["epoch"], epoch - 1);
    assert_eq!(system["epochState"], "done");
    // The epoch in force is the one the clock says (give or take one tick).
    let by_clock = (now_ms() - net.config.genesis_time_ms) / 1000;
    assert!(
        epoch + 1 >= by_clock && epoch <= by_clock,
        "{epoch} vs {by_clock}"
    );

    // A certificate from an old epoch no longer certifies.
    let dave = AccountKey::from_seed(&seed("dave", 0));
    let blob = synthetic_blob(400, 100);
    let seq = server.next_sequence(&dave).await;
    let registered = server
        .submit_ok(&dave.sign(seq, register_kind(blob, epoch as u32 + 5, false)))
        .await;
    let object = registered_object(&registered);
    let stale = net.certificate(
        blob.0,
        object,
        false,
        0,
        &net.signers_with_weight(net.quorum()),
    );
    let (status, body) = server
        .post_tx(&dave.sign(
            seq + 1,
            TxKind::CertifyBlob {
                blob_object: object,
                certificate: stale,
            },
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"]["details"][0]["reason"], "WRONG_EPOCH",
        "{body}"
    );

    server.shutdown().await;
}

/// Opens the ledger in `dir`, retrying (for at most 5 s) while the previous instance's log lock
/// is still held; returns it with the number of refused attempts.
async fn reopen(dir: &Path, config: &GenesisConfig) -> (Arc<Ledger>, u32) {
    let t = Instant::now();
    let mut locked_attempts = 0;
    loop {
        match Ledger::open(dir, config.clone(), Arc::new(SystemClock)) {
            Ok(l) => return (l, locked_attempts),
            Err(OpenError::Log(floe_log::LogError::Locked { .. }))
                if t.elapsed() < Duration::from_secs(5) =>
            {
                locked_attempts += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("reopen failed after {:?}: {e}", t.elapsed()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Restart on the same directory.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovers_the_same_state() {
    let net = TestNet::new(7, 100, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let accounts: Vec<_> = (0..3)
        .map(|i| AccountKey::from_seed(&seed("restart", i)))
        .collect();
    let mut acked = Vec::new();
    let mut objects = Vec::new();
    let mut events = Vec::new();
    for (a, who) in accounts.iter().enumerate() {
        for k in 0..2u64 {
            let blob = synthetic_blob(500 + 10 * a as u64 + k, 1 + 1000 * k);
            let seq = 2 * k;
            let r = server
                .submit_ok(&who.sign(seq, register_kind(blob, 10, k == 0)))
                .await;
            let object = registered_object(&r);
            acked.push((r["entryIndex"].as_u64().unwrap(), r["digest"].clone()));
            events.extend(r["events"].as_array().unwrap().iter().cloned());
            let c = server
                .submit_ok(&who.sign(
                    seq + 1,
                    TxKind::CertifyBlob {
                        blob_object: object,
                        certificate: net.quorum_certificate(blob.0, object, k == 0),
                    },
                ))
                .await;
            acked.push((c["entryIndex"].as_u64().unwrap(), c["digest"].clone()));
            events.extend(c["events"].as_array().unwrap().iter().cloned());
            objects.push((object, blob.0));
        }
    }
    let before = server.get_ok("/v1/health").await;
    assert_eq!(before["entries"], 12);

    // Stop the server and drop every handle on the ledger. (The log's worker thread releases
    // the file lock a moment after the last handle goes: see `reopen_right_after_drop_is_not_locked`.)
    let ledger = server.shutdown().await;
    drop(ledger);
    let (ledger, locked_attempts) = reopen(dir.path(), &net.config).await;
    if locked_attempts > 0 {
        eprintln!("the log stayed locked for {locked_attempts} reopen attempts after the drop");
    }
    let server = Server::serve(ledger).await;

    let after = server.get_ok("/v1/health").await;
    assert_eq!(after["digest"], before["digest"]);
    assert_eq!(after["stateHash"], before["stateHash"]);
    assert_eq!(after["entries"], before["entries"]);
    assert_eq!(after["events"], before["events"]);
    let page = server.get_ok("/v1/events").await;
    assert_eq!(
        page["events"],
        Value::Array(events),
        "the recovered event stream"
    );
    assert_eq!(page["nextCursor"], before["events"]);
    for (i, digest) in &acked {
        assert_eq!(
            server.get_ok(&format!("/v1/entries/{i}")).await["digest"],
            *digest
        );
    }
    for (object, blob_id) in &objects {
        let o = server.get_ok(&format!("/v1/objects/{object}")).await;
        assert_eq!(o["blob"]["certifiedEpoch"], 0, "{o}");
        let s = server.get_ok(&format!("/v1/blobs/{blob_id}")).await;
        assert_eq!(s["status"]["status"], "certified", "{s}");
    }

    // Sequence numbers continue where they were.
    for who in &accounts {
        assert_eq!(server.next_sequence(who).await, 4);
        assert_error(
            server
                .post_tx(&who.sign(3, register_kind(synthetic_blob(600, 5), 3, false)))
                .await,
            StatusCode::CONFLICT,
            "BAD_SEQUENCE",
        );
    }
    let r = server
        .submit_ok(&accounts[0].sign(4, register_kind(synthetic_blob(601, 5), 3, false)))
        .await;
    assert_eq!(r["entryIndex"], 12);
    assert_eq!(server.next_sequence(&accounts[0]).await, 5);

    // While the ledger is open, a second open of the same directory is refused.
    match Ledger::open(dir.path(), net.config.clone(), Arc::new(SystemClock)) {
        Err(OpenError::Log(floe_log::LogError::Locked { .. })) => {}
        Err(e) => panic!("unexpected error for a second open: {e}"),
        Ok(_) => panic!("a second ledger opened the same directory"),
    }

    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Read-your-writes on the event stream.
// ---------------------------------------------------------------------------------------------

/// Once a submission is acknowledged, its events are durable, so the event stream must serve
/// them without waiting. Known bug (reported): `Ledger::events` reads `durable_events`, which a
/// separate task (`spawn_watermark_follower`) copies from the log's watermark *after* the
/// acknowledgement can already have been sent, so a read right after an ack can miss the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_are_readable_at_once() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let who = AccountKey::from_seed(&seed("ryw", 0));
    let (mut ledger_misses, mut http_misses) = (0, 0);
    for i in 0..200u64 {
        // Through the library: submit, then read the stream from the new event's index.
        let tx = who.sign(
            2 * i,
            register_kind(synthetic_blob(10_000 + 2 * i, 10), 2, false),
        );
        let accepted = server.ledger.submit_tx(tx).await.unwrap();
        let first = accepted.events[0].index;
        if server
            .ledger
            .events(first, 10, Duration::ZERO)
            .await
            .is_empty()
        {
            ledger_misses += 1;
        }
        // Over HTTP: POST, then GET /v1/events from the new event's index.
        let tx = who.sign(
            2 * i + 1,
            register_kind(synthetic_blob(10_001 + 2 * i, 10), 2, false),
        );
        let accepted = server.submit_ok(&tx).await;
        let first = accepted["events"][0]["index"].as_u64().unwrap();
        let page = server.get_ok(&format!("/v1/events?cursor={first}")).await;
        if page["events"].as_array().unwrap().is_empty() {
            http_misses += 1;
        }
    }
    server.shutdown().await;
    assert_eq!(
        (ledger_misses, http_misses),
        (0, 0),
        "acknowledged events missing from an immediate read (library, HTTP) out of 200 each"
    );
}

/// Dropping the last `Arc<Ledger>` must release the log, so the directory can be reopened at
/// once. Known bug (reported): the `GroupCommitter` is dropped without joining its worker
/// thread, which closes the log file (and its `flock`) only when it next runs; and the
/// watermark-follower task briefly holds a strong `Arc<Ledger>` after every commit, so the
/// "last" handle a caller drops may not be the last. With the CPU busy, an immediate reopen is
/// refused with `Locked` in roughly half the attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_right_after_drop_is_not_locked() {
    let net = TestNet::new(1, 10, 3_600_000);
    let who = AccountKey::from_seed(&seed("reopen", 0));
    // Busy threads make the race visible, as on a loaded machine.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..3)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let (mut locked, mut still_shared) = (0, 0);
    let dir = tempdir();
    for i in 0..50u64 {
        let (ledger, _) = reopen(dir.path(), &net.config).await;
        let tx = who.sign(i, register_kind(synthetic_blob(20_000 + i, 10), 2, false));
        ledger.submit_tx(tx).await.unwrap();
        if Arc::strong_count(&ledger) > 1 {
            still_shared += 1;
        }
        drop(ledger);
        match Ledger::open(dir.path(), net.config.clone(), Arc::new(SystemClock)) {
            Ok(l) => drop(l),
            Err(OpenError::Log(floe_log::LogError::Locked { .. })) => locked += 1,
            Err(e) => panic!("reopen failed: {e}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    assert_eq!(
        (locked, still_shared),
        (0, 0),
        "(immediate reopens refused as Locked, rounds where another Arc<Ledger> was alive right \
         after an acknowledged submit) out of 50"
    );
}

/// A ledger whose genesis predates versioned rules steps up to this build's rules once, by its
/// epoch clock's first act; a restart replays that entry and writes no second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_ledger_steps_its_rules_up_once() {
    let mut net = TestNet::new(4, 10, 3_600_000);
    net.config.rules = 1;
    let dir = tempdir();
    let ledger = Ledger::open(dir.path(), net.config.clone(), Arc::new(SystemClock)).unwrap();
    let rules = |l: &Arc<Ledger>| {
        let l = l.clone();
        async move { l.read(|s, _| (s.rules(), s.entry_count())).await.unwrap() }
    };
    assert_eq!(rules(&ledger).await, (1, 0));
    ledger.spawn_epoch_clock(Duration::from_millis(50));
    let t = Instant::now();
    while rules(&ledger).await.0 != floe_ledger::RULES_VERSION {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the epoch clock did not step the rules up within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rules(&ledger).await, (floe_ledger::RULES_VERSION, 1));
    assert_eq!(ledger.step_rules().await.unwrap(), None, "one step only");
    drop(ledger);

    let (ledger, _) = reopen(dir.path(), &net.config).await;
    assert_eq!(rules(&ledger).await, (floe_ledger::RULES_VERSION, 1));
    assert_eq!(ledger.step_rules().await.unwrap(), None);
}
