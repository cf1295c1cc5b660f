//! Scenarios 1 and 2: reads with nodes holding f shards stopped, then a wiped node that must
//! recover every sliver and is then needed for reads.

use super::*;

/// The nodes scenario 1 stopped (f shards together), and how (`node:Kill` or `node:Term`).
struct StoppedF {
    nodes: Vec<usize>,
    how: Vec<String>,
}

/// Scenario 2's wiped node and the two disjoint sets of nodes holding f shards around it.
struct Wipe {
    victim: usize,
    /// The nodes scenario 1 stopped, restarted before the wipe.
    stopped_a: Vec<usize>,
    /// Another f shards, stopped once the victim has recovered.
    stopped_b: Vec<usize>,
}

/// What the wiped node must hold (from a local encoding of the data), and how long it took.
struct Recovery {
    expected: Vec<(BlobId, SliverPairIndex, SliverType, SliverData)>,
    ids: Vec<BlobId>,
    recovered_in: Duration,
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

    // ---- 1. stop nodes holding f shards ----
    let mut s = Summary::new(seed, started);
    let stored = fifty_blobs_of_mixed_sizes_are_stored(&net, &client, &mut rng, &mut s).await;
    one_byte_over_the_limit_is_refused(&net, &client, &mut rng, &mut s.tally).await;
    the_client_sees_the_committee_of_the_nodes(&net, &client).await;
    let stopped_a = nodes_holding_f_shards_are_stopped_both_ways(&mut net, &mut rng).await;
    every_read_succeeds_with_f_shards_down(&net, &client, &stored, &stopped_a, s).await;

    // ---- 2. wipe a node; it recovers; reads need it ----
    let mut s = Summary::new(seed, Instant::now());
    let wipe =
        the_stopped_nodes_restart_and_a_victim_is_picked(&mut net, &mut rng, stopped_a).await;
    let recovery = the_wiped_victim_recovers_every_sliver(&mut net, &wipe, &stored).await;
    the_recovered_slivers_are_the_right_bytes(&net, &wipe, &recovery, &mut s.tally).await;
    reads_succeed_with_another_f_shards_down(&mut net, &client, &stored, &wipe, &mut s.tally).await;
    reads_succeed_from_the_p_shards_left(&mut net, &client, &stored, &wipe, &recovery, s).await;
}

/// Fifty blobs from 0 B to the network's maximum are stored (four at once) with every node up.
async fn fifty_blobs_of_mixed_sizes_are_stored(
    net: &Net,
    client: &Client,
    rng: &mut impl Rng,
    s: &mut Summary,
) -> Vec<Acked> {
    let max = net.system.max_blob_size as usize;
    let mut sizes = vec![0, 1, 2, 31, 32, 33, 1000, 4096, 65_536];
    sizes.extend([1 << 20, max - 1, max]);
    while sizes.len() < 42 {
        sizes.push(rng.random_range(1..=16 << 10));
    }
    while sizes.len() < 50 {
        sizes.push(rng.random_range(16 << 10..=1 << 20));
    }
    sizes.shuffle(rng);
    let mut set = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(4));
    for &len in &sizes {
        let data = Arc::new(random_bytes(rng, len));
        let (client, sem, opts) = (client.clone(), sem.clone(), options(rng));
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (len, store(&client, &data, &opts).await)
        });
    }
    let mut stored = Vec::new();
    while let Some(r) = set.join_next().await {
        let (len, result) = r.unwrap();
        s.tally.operations += 1;
        match result {
            Ok(a) => {
                s.tally.successes += 1;
                stored.push(a);
            }
            Err(e) => panic!("storing {len} bytes with every node up failed: {e}"),
        }
    }
    println!(
        "[stop_f] stored {} blobs ({} bytes, the largest {max}) in {:.1?}",
        stored.len(),
        sizes.iter().sum::<usize>(),
        s.started.elapsed()
    );
    stored
}

/// One byte over the network's limit is refused before anything is written.
async fn one_byte_over_the_limit_is_refused(
    net: &Net,
    client: &Client,
    rng: &mut impl Rng,
    tally: &mut Tally,
) {
    let max = net.system.max_blob_size as usize;
    tally.operations += 1;
    match client
        .store(vec![7; max + 1], &options(rng), Arc::new(NoProgress))
        .await
    {
        Err(ClientError::BlobTooLarge { .. }) => tally.expected_failures += 1,
        other => panic!("a blob over the limit: {:?}", other.map(|o| o.result)),
    }
}

/// The committee the client sees (by which the nodes to stop are picked) is the nodes'.
async fn the_client_sees_the_committee_of_the_nodes(net: &Net, client: &Client) {
    let (_, committee) = client.committee().await.unwrap();
    for i in 0..NODES {
        let m = &committee.members[net.member(i)];
        assert_eq!(m.info.network_address, net.state.node_addresses[i]);
        assert_eq!(m.weight(), net.weight(i));
    }
    assert_eq!(u64::from(committee.config.max_faulty()), net.f());
}

/// Nodes holding exactly f shards together are stopped, by SIGKILL and by SIGTERM.
async fn nodes_holding_f_shards_are_stopped_both_ways(
    net: &mut Net,
    rng: &mut impl Rng,
) -> StoppedF {
    let stopped_a = net
        .pick_f_set(rng, &[])
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
        net.f(),
        "exactly f shards are down"
    );
    StoppedF {
        nodes: stopped_a,
        how,
    }
}

/// With f shards down every stored blob reads back, byte for byte.
async fn every_read_succeeds_with_f_shards_down(
    net: &Net,
    client: &Client,
    stored: &[Acked],
    stopped: &StoppedF,
    mut s: Summary,
) {
    let f = net.f();
    let problems = read_all(client, &contents(stored), &mut s.tally).await;
    s.tally.print(
        "1-stop-f-shards",
        s.seed,
        s.started,
        &format!("stopped=[{}] shards_down={f}", stopped.how.join(",")),
    );
    assert!(
        problems.is_empty(),
        "reads failed:\n{}",
        problems.join("\n")
    );
    assert_eq!((s.tally.lost, s.tally.wrong), (0, 0));
    assert_eq!(s.tally.successes, 2 * stored.len() as u64);
}

/// The stopped nodes restart; the victim is the heaviest other node, then another f shards.
async fn the_stopped_nodes_restart_and_a_victim_is_picked(
    net: &mut Net,
    rng: &mut impl Rng,
    stopped_a: StoppedF,
) -> Wipe {
    let stopped_a = stopped_a.nodes;
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
        .pick_f_set(rng, &exclude)
        .expect("a second set of nodes holding f shards, disjoint from the first and the victim");
    Wipe {
        victim,
        stopped_a,
        stopped_b,
    }
}

/// Once every node holds its slivers, the victim is wiped and restarted, and recovers them all.
async fn the_wiped_victim_recovers_every_sliver(
    net: &mut Net,
    wipe: &Wipe,
    stored: &[Acked],
) -> Recovery {
    let victim = wipe.victim;
    // What the victim must hold, from a local encoding of the data.
    let expected = {
        let blobs: Vec<(BlobId, Arc<Vec<u8>>)> = contents(stored);
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
    Recovery {
        expected,
        ids,
        recovered_in,
    }
}

/// The victim serves the recovered slivers and metadata, the right bytes.
async fn the_recovered_slivers_are_the_right_bytes(
    net: &Net,
    wipe: &Wipe,
    recovery: &Recovery,
    tally: &mut Tally,
) {
    let vclient = net.node_client(wipe.victim);
    let mut bad = Vec::new();
    for (id, pair, axis, sliver) in &recovery.expected {
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
    for id in &recovery.ids {
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
}

/// Another f shards down (the victim up): every read succeeds.
async fn reads_succeed_with_another_f_shards_down(
    net: &mut Net,
    client: &Client,
    stored: &[Acked],
    wipe: &Wipe,
    tally: &mut Tally,
) {
    let stopped_b = &wipe.stopped_b;
    for &i in stopped_b {
        net.stop_node(i, Stop::Kill).await;
    }
    let problems = read_all(client, &contents(stored), tally).await;
    assert!(
        problems.is_empty(),
        "reads with nodes {stopped_b:?} down failed:\n{}",
        problems.join("\n")
    );
}

/// Both sets down (2f shards): the p shards left, the victim's among them, serve every read.
async fn reads_succeed_from_the_p_shards_left(
    net: &mut Net,
    client: &Client,
    stored: &[Acked],
    wipe: &Wipe,
    recovery: &Recovery,
    mut s: Summary,
) {
    let (victim, stopped_a, stopped_b) = (wipe.victim, &wipe.stopped_a, &wipe.stopped_b);
    // Beyond the guarantee: the n − 2f = p shards left, the victim's among them, are exactly
    // enough, so every read depends on what it recovered.
    for &i in stopped_a {
        net.stop_node(i, Stop::Term).await;
    }
    let left: u64 = net.running().iter().map(|&i| net.weight(i)).sum();
    assert_eq!(left, u64::from(net.config.n_primary_source()));
    assert!(net.is_running(victim));
    let problems = read_all(client, &contents(stored), &mut s.tally).await;
    s.tally.print(
        "2-wipe-and-recover",
        s.seed,
        s.started,
        &format!(
            "wiped=node-{victim} recovered_slivers={} recovery={:.1}s then_stopped={stopped_b:?} then_also={stopped_a:?} shards_left={left}",
            recovery.expected.len(),
            recovery.recovered_in.as_secs_f64()
        ),
    );
    assert!(
        problems.is_empty(),
        "reads from the {left} shards left (nodes {:?}) failed:\n{}",
        net.running(),
        problems.join("\n")
    );
    assert_eq!((s.tally.lost, s.tally.wrong), (0, 0));
}
