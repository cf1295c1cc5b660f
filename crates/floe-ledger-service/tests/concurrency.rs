//! Regression: submitters and event long-polls running together must never deadlock (a read
//! guard on the durable watermark once stayed alive across the state lock).

use std::sync::Arc;
use std::time::Duration;

use floe_ledger::AccountKey;
use floe_ledger_service::{Ledger, SystemClock};

mod common;
use common::{genesis, register, seed};

/// Runs on its own runtime in its own thread, so that a deadlock (which blocks the runtime's
/// threads and its timers) still fails the test instead of hanging it.
#[test]
fn submitters_and_event_pollers_never_deadlock() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(workload());
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("deadlock: submitters and pollers did not finish within 60 s");
}

async fn workload() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis();
    let ledger = Ledger::open(dir.path(), genesis, Arc::new(SystemClock)).unwrap();
    const SUBMITTERS: u64 = 16;
    const PER: u64 = 60;
    let work = async {
        let mut tasks = Vec::new();
        for p in 0..4 {
            let ledger = ledger.clone();
            tasks.push(tokio::spawn(async move {
                let mut cursor = 0;
                while cursor < SUBMITTERS * PER {
                    let page = ledger
                        .events(cursor, 7 + p, Duration::from_millis(200))
                        .await;
                    cursor += page.len() as u64;
                }
            }));
        }
        for s in 0..SUBMITTERS {
            let ledger = ledger.clone();
            tasks.push(tokio::spawn(async move {
                let account = AccountKey::from_seed(&seed("user", s));
                for i in 0..PER {
                    let (kind, _) = register(s * 1000 + i);
                    ledger.submit_tx(account.sign(i, kind)).await.unwrap();
                    // Interleave reads that take the state lock and the watermark.
                    let _ = ledger.read(|s, _| s.entry_count()).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    };
    work.await;
    let (applied, durable) = ledger.progress();
    assert_eq!((applied, durable), (SUBMITTERS * PER, SUBMITTERS * PER));
}

/// Open the ledger in `dir` with a snapshot every 5 entries, retrying (for at most a second)
/// while the previous instance still holds the log's lock.
async fn reopen(dir: &std::path::Path, genesis: &floe_ledger::GenesisConfig) -> Arc<Ledger> {
    let mut attempt = 0;
    loop {
        match Ledger::open_with_snapshots(dir, genesis.clone(), Arc::new(SystemClock), 5) {
            Ok(l) => return l,
            Err(e) if attempt < 50 => {
                attempt += 1;
                eprintln!("reopen: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopen: {e}"),
        }
    }
}

/// The embedded log with snapshots: a restart loads the newest snapshot and applies only the
/// tail, and ends in the same state, events and digests as the ledger before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_restart_from_a_snapshot_equals_the_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis();
    let account = AccountKey::from_seed(&seed("user", 0));
    let ledger =
        Ledger::open_with_snapshots(dir.path(), genesis.clone(), Arc::new(SystemClock), 5).unwrap();
    // Entry 1 certifies the blob of entry 0: its certificate must survive the restart too.
    let (kind, certified) = register(0);
    let accepted = ledger.submit_tx(account.sign(0, kind)).await.unwrap();
    let object = common::registered_object(&accepted.events);
    let kind = common::certify(certified, object);
    ledger.submit_tx(account.sign(1, kind)).await.unwrap();
    for i in 2..23 {
        let (kind, _) = register(i);
        ledger.submit_tx(account.sign(i, kind)).await.unwrap();
    }
    let certificate = ledger.certificate(&certified).await.unwrap().unwrap();
    let hash = ledger.read(|s, _| s.state_hash()).await.unwrap();
    let events = ledger.events(0, 1000, Duration::ZERO).await;
    let digests: Vec<_> = (0..23).map(|i| ledger.digest_after(i).unwrap()).collect();
    drop(ledger);
    // Snapshots are written in the background once durable: wait for the one at 20.
    common::wait_for_snapshot(dir.path(), 20).await;
    let snap = dir
        .path()
        .join("snapshots/snapshot-00000000000000000020.bin");
    let reopened = reopen(dir.path(), &genesis).await;
    assert_eq!(reopened.progress().0, 23);
    assert_eq!(reopened.read(|s, _| s.state_hash()).await.unwrap(), hash);
    assert_eq!(reopened.events(0, 1000, Duration::ZERO).await, events);
    // Every acknowledged entry keeps its digest, those the snapshot covers included (the
    // snapshot carries them: the crash test checks acknowledged entries by this route).
    for (i, d) in digests.iter().enumerate() {
        assert_eq!(reopened.digest_after(i as u64), Some(*d), "entry {i}");
    }
    assert_eq!(reopened.digest_after(23), None);
    // The certificate of a blob certified before the snapshot is still served.
    let again = reopened.certificate(&certified).await.unwrap();
    assert_eq!(again.map(|c| c.event_index), Some(certificate.event_index));
    // And it goes on from there.
    let (kind, _) = register(23);
    let accepted = reopened.submit_tx(account.sign(23, kind)).await.unwrap();
    assert_eq!(accepted.entry_index, 23);
    let hash = reopened.read(|s, _| s.state_hash()).await.unwrap();
    drop(reopened);

    // The log is read keeping payloads from the newest snapshot's position only. When that
    // snapshot turns out damaged, the open falls back to the one before (at 15) and reads the
    // log again from there.
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&snap, bytes).unwrap();
    let fallback = reopen(dir.path(), &genesis).await;
    assert_eq!(fallback.open_stats().replayed, 24 - 15);
    assert_eq!(fallback.read(|s, _| s.state_hash()).await.unwrap(), hash);
    for (i, d) in digests.iter().enumerate() {
        assert_eq!(fallback.digest_after(i as u64), Some(*d), "entry {i}");
    }
}

/// A clean stop (`Ledger::close`, which `serve` calls after draining) writes a snapshot at the
/// last applied entry, so the next start replays nothing; a second close has nothing to add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_close_leaves_nothing_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis();
    let account = AccountKey::from_seed(&seed("user", 0));
    let open = || {
        Ledger::open_with_snapshots(dir.path(), genesis.clone(), Arc::new(SystemClock), 100)
            .unwrap()
    };
    let ledger = open();
    for i in 0..7 {
        let (kind, _) = register(i);
        ledger.submit_tx(account.sign(i, kind)).await.unwrap();
    }
    let hash = ledger.read(|s, _| s.state_hash()).await.unwrap();
    // 7 entries, snapshots every 100: none yet, so without a close a restart replays all 7.
    assert_eq!(ledger.close().await.unwrap(), Some(7));
    assert_eq!(
        ledger.close().await.unwrap(),
        None,
        "already at the last entry"
    );
    drop(ledger);
    let reopened = open();
    assert_eq!(
        reopened.open_stats().replayed,
        0,
        "{:?}",
        reopened.open_stats()
    );
    assert_eq!(reopened.progress().0, 7);
    assert_eq!(reopened.read(|s, _| s.state_hash()).await.unwrap(), hash);
    // Without snapshots configured, close writes none.
    let other = tempfile::tempdir().unwrap();
    let plain = Ledger::open(other.path(), genesis.clone(), Arc::new(SystemClock)).unwrap();
    assert_eq!(plain.close().await.unwrap(), None);
}
