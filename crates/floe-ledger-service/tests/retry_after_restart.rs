//! A transaction retried after its first attempt's outcome was lost, when the replica asked
//! again has restarted from a snapshot that already holds it.
//!
//! A replica answers a retried transaction with its first outcome from a table of the
//! transactions it applied itself; installing a snapshot (a restart, a bootstrap from a peer)
//! starts that table afresh. Found by the replica suite under kill -9 (seed
//! 11162871755951326619 of `floe-cli`'s `ledger_replicas`): a client kept getting
//! BAD_SEQUENCE for a transaction the log held. A client of several replicas now asks the
//! others before it gives up on a used sequence number.

use floe_ledger::AccountKey;
use floe_ledger_client::LedgerClient;

mod common;
use common::replicas::{converge, etcd, open, options, register, serve_on};
use common::{genesis, seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_is_answered_by_a_replica_that_remembers_it() {
    let dir = tempfile::tempdir().unwrap();
    let members = etcd(dir.path()).await;
    let g = genesis();
    let every = 1_000;
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let a = open(&a_dir, &g, options(&members, every, vec![])).await;
    let b = open(&b_dir, &g, options(&members, every, vec![])).await;
    let account = AccountKey::from_seed(&seed("user", 7));
    let tx = account.sign(0, register(7, 0).0);
    let first = a.submit_tx(tx.clone()).await.unwrap();
    converge(&[&a, &b], first.entry_index + 1).await;

    // A stops cleanly (a snapshot that holds the transaction) and reopens from it: it no
    // longer knows what the transaction's outcome was, only that sequence 0 is used.
    a.close().await.unwrap();
    drop(a);
    let a = open(&a_dir, &g, options(&members, every, vec![])).await;
    let e = a.submit_tx(tx.clone()).await.unwrap_err();
    assert!(e.to_string().contains("sequence"), "{e}");

    // A client of both, asking the restarted one first, gets the first outcome from the other.
    let (a, b) = (serve_on(a, 0).await, serve_on(b, 0).await);
    let client = LedgerClient::with_urls(vec![a.url.clone(), b.url.clone()]);
    let r = client
        .submit(&tx)
        .await
        .expect("a peer remembers the outcome");
    assert_eq!(r.entry_index, first.entry_index);
    assert_eq!(r.events.len(), first.events.len());

    // With only the replica that forgot, the used sequence number is the answer.
    let alone = LedgerClient::new(a.url.clone());
    let e = alone.submit(&tx).await.unwrap_err();
    assert_eq!(e.reason(), Some("BAD_SEQUENCE"), "{e}");
    a.stop().await;
    b.stop().await;
}
