//! Ledger replicas that start far behind: one behind a compaction bootstraps from a peer's
//! snapshot, and a new one far behind a log that still holds every entry takes a peer's
//! snapshot instead of replaying them. A real 3-member etcd cluster (child processes), replicas
//! served over HTTP.
//!
//! Needs the `etcd` binary (`apt-get install etcd-server`); fails with that message otherwise.

use std::time::Duration;

use floe_ledger::Event;
use floe_ledger_etcd::EtcdLogConfig;

mod common;
use common::genesis;
use common::replicas::{
    assert_agree, converge, etcd, keep_all, open, options, serve_on, settled, submit_registrations,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_behind_a_compaction_bootstraps_from_a_peer_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let members = etcd(dir.path()).await;
    let g = genesis();
    let a = serve_on(
        open(&dir.path().join("a"), &g, options(&members, 20, vec![])).await,
        0,
    )
    .await;
    submit_registrations(&a.ledger, 1, 0..10).await;
    // Replica b sees the beginning, then stops.
    let b_dir = dir.path().join("b");
    let b = open(&b_dir, &g, options(&members, 20, vec![a.url.clone()])).await;
    assert!(b.progress().0 >= 10);
    drop(b);
    // Enough entries for several checkpoints, so records b needs are pruned.
    let last = submit_registrations(&a.ledger, 1, 10..110).await;
    settled(&a.ledger, last).await;
    let log =
        floe_ledger_etcd::EtcdLog::connect(&EtcdLogConfig::new(members.endpoints(), "/test/"))
            .await
            .unwrap();
    let (lo, _) = log.bounds().await.unwrap().unwrap();
    eprintln!("oldest record kept: {lo}");
    assert!(lo > 10, "nothing was pruned (oldest record {lo})");

    let b = open(&b_dir, &g, options(&members, 20, vec![a.url.clone()])).await;
    let target = a.ledger.progress().0;
    converge(&[&b], target).await;
    assert_agree(&a.ledger, &b).await;
    let events_a: Vec<Event> = a.ledger.events(0, 1000, Duration::ZERO).await;
    let events_b: Vec<Event> = b.events(0, 1000, Duration::ZERO).await;
    assert_eq!(
        events_a, events_b,
        "the bootstrapped replica serves the same events"
    );
}

/// A new replica far behind a log that still holds every entry takes a peer's verified
/// snapshot instead of replaying them all, skipping a peer that does not answer; one only a
/// little behind replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_replica_far_behind_starts_from_a_peer_snapshot_not_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let members = etcd(dir.path()).await;
    let g = genesis();
    // Replica a: a snapshot every 20 entries, keeping every record (nothing is pruned).
    let a = serve_on(
        open(&dir.path().join("a"), &g, keep_all(&members, 20, vec![])).await,
        0,
    )
    .await;
    let last = submit_registrations(&a.ledger, 9, 0..150).await;
    settled(&a.ledger, last).await;
    let a_snapshot = a.ledger.replica_status().unwrap().snapshot_seq.unwrap();
    assert!(a_snapshot >= 140, "a's newest snapshot is at {a_snapshot}");
    // A peer that refuses connections comes first.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let c = open(
        &dir.path().join("c"),
        &g,
        options(&members, 20, vec![dead, a.url.clone()]),
    )
    .await;
    let stats = c.open_stats();
    let from = c.replica_status().unwrap().snapshot_seq;
    eprintln!(
        "c opened from a's snapshot at {from:?}, replaying {} entries",
        stats.replayed
    );
    assert!(
        from.is_some_and(|seq| seq >= 140),
        "c did not start from a's snapshot ({from:?})"
    );
    assert!(
        stats.replayed < 40,
        "c replayed {} entries of a log whose first {a_snapshot} a peer had in a snapshot",
        stats.replayed
    );
    converge(&[&c], a.ledger.progress().0).await;
    assert_agree(&a.ledger, &c).await;

    // Replica d, started when the log's end is less than two snapshots away, replays.
    let d_dir = dir.path().join("d");
    let d = open(&d_dir, &g, options(&members, 200, vec![a.url.clone()])).await;
    assert!(
        d.open_stats().replayed >= 150,
        "d replayed only {} entries",
        d.open_stats().replayed
    );
    assert_agree(&a.ledger, &d).await;
}
