//! A transaction sent again after its first answer was lost is answered with its first outcome
//! by any replica, also one that restarted from a snapshot holding it (cleanly, or after a
//! crash), one that replayed the whole log, and one that started from a peer's snapshot.
//!
//! Found by the replica suite under kill -9 (seed 11162871755951326619 of `floe-cli`'s
//! `ledger_replicas`): a client kept getting BAD_SEQUENCE for a transaction the log held,
//! because replicas remembered accepted transactions only in memory. The table of recent
//! transactions is now part of the replicated state's snapshots (format 12), under the
//! committed root. A real 3-member etcd cluster (child processes); needs the `etcd` binary
//! (`apt-get install etcd-server`) and fails with that message otherwise.

use std::sync::Arc;

use floe_ledger::{AccountKey, SignedTransaction};
use floe_ledger_client::LedgerClient;
use floe_ledger_service::{Accepted, Ledger};

mod common;
use common::replicas::{
    assert_agree, converge, etcd, keep_all, open, options, register, serve_on, settled,
    submit_registrations,
};
use common::{genesis, seed};

/// `ledger` answers `tx` with `first`, and refuses another transaction with its sequence
/// number.
async fn answers_with_first_outcome(
    who: &str,
    ledger: &Ledger,
    tx: &SignedTransaction,
    first: &Accepted,
) {
    let again = ledger
        .submit_tx(tx.clone())
        .await
        .unwrap_or_else(|e| panic!("{who}: the retry was refused: {e}"));
    assert_eq!(again.entry_index, first.entry_index, "{who}");
    assert_eq!(again.events, first.events, "{who}");
    assert_eq!(again.digest, first.digest, "{who}");
    let account = AccountKey::from_seed(&seed("user", 7));
    let other = account.sign(tx.tx.sequence, register(7, 99).0);
    let e = ledger.submit_tx(other).await.unwrap_err();
    assert!(e.to_string().contains("sequence"), "{who}: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_is_answered_with_its_first_outcome_after_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let members = etcd(dir.path()).await;
    let g = genesis();
    // A snapshot every 20 entries; every record kept, so that a new replica can replay them.
    let opts = || keep_all(&members, 20, vec![]);
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let a = open(&a_dir, &g, opts()).await;
    let b = open(&b_dir, &g, opts()).await;
    let account = AccountKey::from_seed(&seed("user", 7));
    let tx = account.sign(0, register(7, 0).0);
    let first = a.submit_tx(tx.clone()).await.unwrap();
    assert!(!first.events.is_empty(), "a registration emits events");
    // More entries after it: periodic snapshots at 20 and 40 hold it.
    let last = submit_registrations(&a, 8, 0..45).await;
    converge(&[&a, &b], last + 1).await;
    answers_with_first_outcome("a, which applied it", &a, &tx, &first).await;

    // A stops cleanly (a snapshot at its position) and reopens from it.
    a.close().await.unwrap();
    drop(a);
    let a = open(&a_dir, &g, opts()).await;
    assert!(a.open_stats().replayed < 5, "a restarted from its snapshot");
    answers_with_first_outcome("a, restarted from its snapshot", &a, &tx, &first).await;

    // B stops without a final snapshot (as after kill -9): its newest periodic snapshot and
    // the log's tail.
    drop(b);
    let b = open(&b_dir, &g, opts()).await;
    answers_with_first_outcome("b, restarted after a crash", &b, &tx, &first).await;

    // C, new (no peers), replays the whole log.
    let c = open(&dir.path().join("c"), &g, opts()).await;
    assert!(c.open_stats().replayed > first.entry_index);
    converge(&[&c], a.progress().0).await;
    answers_with_first_outcome("c, new", &c, &tx, &first).await;

    // Over HTTP, a client of the restarted replica alone gets the first outcome too.
    let a = serve_on(a, 0).await;
    let client = LedgerClient::new(a.url.clone());
    let r = client.submit(&tx).await.expect("the first outcome");
    assert_eq!(r.entry_index, first.entry_index);
    assert_eq!(r.events.len(), first.events.len());
    assert_agree(&a.ledger, &b).await;
    a.stop().await;
}

/// A replica that starts from a peer's verified snapshot (the peer's table comes with it,
/// under the committed root) answers a retry of a transaction the snapshot covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_started_from_a_peer_snapshot_answers_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let members = etcd(dir.path()).await;
    let g = genesis();
    let a = serve_on(
        open(&dir.path().join("a"), &g, keep_all(&members, 20, vec![])).await,
        0,
    )
    .await;
    let account = AccountKey::from_seed(&seed("user", 7));
    let tx = account.sign(0, register(7, 0).0);
    let first = a.ledger.submit_tx(tx.clone()).await.unwrap();
    let last = submit_registrations(&a.ledger, 9, 0..80).await;
    settled(&a.ledger, last).await;
    let c: Arc<Ledger> = open(
        &dir.path().join("c"),
        &g,
        options(&members, 20, vec![a.url.clone()]),
    )
    .await;
    let from = c.replica_status().unwrap().snapshot_seq;
    assert!(
        from.is_some_and(|seq| seq > first.entry_index),
        "c did not start from a's snapshot ({from:?})"
    );
    assert!(c.open_stats().replayed < 40, "c replayed the log");
    answers_with_first_outcome("c, from a peer's snapshot", &c, &tx, &first).await;
    a.stop().await;
}

/// The embedded ledger remembers too: after a crash (its snapshot and the log's tail) and after
/// a clean stop (a snapshot at its position).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_ledger_answers_a_retry_after_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Ledger::open_with_snapshots(
            dir.path(),
            genesis(),
            Arc::new(floe_ledger_service::SystemClock),
            5,
        )
        .unwrap()
    };
    let ledger = open();
    let account = AccountKey::from_seed(&seed("user", 7));
    let tx = account.sign(0, register(7, 0).0);
    let first = ledger.submit_tx(tx.clone()).await.unwrap();
    for i in 1..8 {
        ledger
            .submit_tx(account.sign(i, register(7, i).0))
            .await
            .unwrap();
    }
    answers_with_first_outcome("the embedded ledger", &ledger, &tx, &first).await;
    common::wait_for_snapshot(dir.path(), 5).await;
    drop(ledger);
    let ledger = open();
    assert!(
        ledger.open_stats().replayed > 0,
        "the tail after the snapshot"
    );
    answers_with_first_outcome("after a crash", &ledger, &tx, &first).await;
    ledger.close().await.unwrap();
    drop(ledger);
    let ledger = open();
    assert_eq!(ledger.open_stats().replayed, 0, "a clean stop's snapshot");
    answers_with_first_outcome("after a clean stop", &ledger, &tx, &first).await;
}
