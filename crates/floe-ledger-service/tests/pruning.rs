//! The embedded log pruned behind the ledger's snapshots: whole segment files go, a restart
//! still ends in the same state, events, digests and certificates, and a ledger whose
//! snapshots are all gone refuses to start instead of replaying a partial history.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_ledger::AccountKey;
use floe_ledger_service::{Ledger, LocalOptions, OpenError, SystemClock};
use floe_log::LogOptions;
use floe_log::format::sealed_segment_name;

mod common;
use common::{genesis, register, seed, wait_for_snapshot};

fn options(prune: bool) -> LocalOptions {
    LocalOptions {
        snapshot_every: 10,
        prune,
        log: LogOptions {
            segment_bytes: 4096,
            ..LogOptions::default()
        },
    }
}

async fn open(dir: &Path, prune: bool) -> Arc<Ledger> {
    // The previous instance's committer releases the log's lock as it stops.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Ledger::open_local(dir, genesis(), Arc::new(SystemClock), options(prune)) {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                eprintln!("open: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("open: {e}"),
        }
    }
}

async fn load(ledger: &Ledger, from: u64, to: u64) {
    let account = AccountKey::from_seed(&seed("user", 0));
    for i in from..to {
        let (kind, _) = register(i);
        ledger.submit_tx(account.sign(i, kind)).await.unwrap();
    }
}

fn first_segment(dir: &Path) -> std::path::PathBuf {
    dir.join(sealed_segment_name(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruned_log_restarts_to_the_same_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), true).await;
    load(&ledger, 0, 150).await;
    // Pruning follows the snapshot writes, in the background.
    let deadline = Instant::now() + Duration::from_secs(10);
    while first_segment(dir.path()).exists() || !dir.path().join("ledger.log").exists() {
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            Instant::now() < deadline,
            "the log was never pruned: {files:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hash = ledger.read(|s, _| s.state_hash()).await.unwrap();
    let events = ledger.events(0, 10_000, Duration::ZERO).await;
    let digests: Vec<_> = (0..150).map(|i| ledger.digest_after(i).unwrap()).collect();
    wait_for_snapshot(dir.path(), 150).await;
    drop(ledger);

    let reopened = open(dir.path(), true).await;
    assert_eq!(reopened.progress().0, 150);
    assert!(
        reopened.open_stats().replayed < 10,
        "{:?}",
        reopened.open_stats()
    );
    assert_eq!(reopened.read(|s, _| s.state_hash()).await.unwrap(), hash);
    // Events and digests of pruned entries come from the snapshot.
    assert_eq!(reopened.events(0, 10_000, Duration::ZERO).await, events);
    for (i, d) in digests.iter().enumerate() {
        assert_eq!(reopened.digest_after(i as u64), Some(*d), "entry {i}");
    }
    // `/v1/health`'s summary: its state hash is remembered per state, and follows each change.
    let summary = reopened.summary().await.unwrap();
    assert_eq!((summary.1, summary.2), (digests[149], hash));
    load(&reopened, 150, 160).await;
    let after = reopened.summary().await.unwrap();
    let now = reopened.read(|s, _| s.state_hash()).await.unwrap();
    assert_ne!(after.2, hash);
    assert_eq!(after.2, now);
    assert_eq!(reopened.summary().await.unwrap(), after);
    drop(reopened);

    // Without any snapshot, the pruned log cannot rebuild the state: a clear refusal, not a
    // ledger that silently starts over from the genesis.
    // The snapshot at 160 is written in the background: let it (and its clean-up of older
    // ones) finish before the directory goes.
    wait_for_snapshot(dir.path(), 160).await;
    let snapshots = dir.path().join("snapshots");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir_all(&snapshots) {
            Ok(()) => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "snapshots not removable: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = loop {
        match Ledger::open_local(dir.path(), genesis(), Arc::new(SystemClock), options(true)) {
            Err(OpenError::Log(floe_log::LogError::Locked { .. })) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => break e,
            Ok(_) => panic!("a pruned log without snapshots opened"),
        }
    };
    assert!(
        matches!(err, OpenError::Pruned { first } if first > 0),
        "{err}"
    );
    assert!(err.to_string().contains("snapshots"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pruning_every_segment_stays() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), false).await;
    load(&ledger, 0, 150).await;
    assert_eq!(ledger.close().await.unwrap(), Some(150));
    drop(ledger);
    assert!(first_segment(dir.path()).exists());
    let (log, replay) = floe_log::FileLog::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(replay.len(), 150, "every entry is still in the log");
    assert!(log.segment_count() > 2, "150 entries in 4 KiB files");
}
