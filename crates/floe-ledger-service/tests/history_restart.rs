//! A restart reads the state from the newest snapshot and leaves the history (events, digests,
//! certificates) to another thread. Writes accepted meanwhile join the history in order; a
//! snapshot whose history is damaged stops writes with a reason that says what to do, is set
//! aside, and the next start recovers everything from the previous snapshot and the log.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_core::BlobId;
use floe_ledger::AccountKey;
use floe_ledger_service::{Ledger, LocalOptions, SubmitError, SystemClock};

mod common;
use common::{
    certify, genesis, register, registered_object, seed, snapshot_file, wait_for_snapshot,
};

const SNAPSHOT_EVERY: u64 = 10;

async fn open(dir: &Path) -> Arc<Ledger> {
    let options = LocalOptions {
        snapshot_every: SNAPSHOT_EVERY,
        ..LocalOptions::default()
    };
    // The previous instance's committer releases the log's lock as it stops.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Ledger::open_local(dir, genesis(), Arc::new(SystemClock), options.clone()) {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                eprintln!("open: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("open: {e}"),
        }
    }
}

/// Register and certify blobs `from..to` (two entries each; the account's nonces follow).
async fn store(ledger: &Ledger, from: u64, to: u64) -> Vec<BlobId> {
    let account = AccountKey::from_seed(&seed("user", 0));
    let mut blobs = Vec::new();
    for i in from..to {
        let (kind, blob_id) = register(i);
        let accepted = ledger.submit_tx(account.sign(2 * i, kind)).await.unwrap();
        let object = registered_object(&accepted.events);
        ledger
            .submit_tx(account.sign(2 * i + 1, certify(blob_id, object)))
            .await
            .unwrap();
        blobs.push(blob_id);
    }
    blobs
}

/// Everything a restart must bring back: the state hash, every event, the digest after every
/// entry, each blob's certificate.
#[derive(Debug, PartialEq)]
struct Seen {
    hash: [u8; 32],
    events: Vec<floe_ledger::Event>,
    digests: Vec<Option<[u8; 32]>>,
    certificates: Vec<Option<floe_ledger::api_types::CertificateRecord>>,
}

async fn seen(ledger: &Ledger, blobs: &[BlobId]) -> Seen {
    let entries = ledger.progress().0;
    let mut certificates = Vec::new();
    for b in blobs {
        certificates.push(ledger.certificate(b).await.unwrap());
    }
    Seen {
        hash: ledger.read(|s, _| s.state_hash()).await.unwrap(),
        events: ledger.events(0, 100_000, Duration::ZERO).await,
        digests: (0..entries).map(|i| ledger.digest_after(i)).collect(),
        certificates,
    }
}

/// Flip a byte of the events section of a version 12 snapshot (after the header's 145 bytes
/// and the state's two sections, whose lengths are the first two entries of its table).
fn damage_events(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes[0], 12, "a version 12 snapshot");
    let len = |i: usize| {
        let at = 45 + 12 * i;
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize
    };
    let (events, events_len) = (145 + len(0) + len(1), len(2));
    assert!(events_len > 0, "the snapshot holds events");
    bytes[events + events_len / 2] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_the_history_read_join_it_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    let mut blobs = store(&ledger, 0, 12).await;
    assert_eq!(ledger.close().await.unwrap(), Some(24));
    let before = seen(&ledger, &blobs).await;
    drop(ledger);

    // Write first, read afterwards: the writes are recorded while the history may still be
    // on its way, and must land after it.
    let reopened = open(dir.path()).await;
    assert_eq!(
        reopened.open_stats().replayed,
        0,
        "restarted from the snapshot at 24"
    );
    blobs.extend(store(&reopened, 12, 15).await);
    let after = seen(&reopened, &blobs).await;
    assert_eq!(after.events[..before.events.len()], before.events[..]);
    assert_eq!(after.digests[..24], before.digests[..]);
    assert_eq!(after.certificates[..12], before.certificates[..]);
    assert!(
        after.digests.iter().all(Option::is_some),
        "{:?}",
        after.digests
    );
    assert!(after.certificates.iter().all(Option::is_some));
    wait_for_snapshot(dir.path(), 30).await;
    drop(reopened);

    // A ledger that never restarted has the same events and certificates (its digests and
    // state hash differ: its genesis starts at another time).
    let other = tempfile::tempdir().unwrap();
    let straight = open(other.path()).await;
    store(&straight, 0, 15).await;
    let expected = seen(&straight, &blobs).await;
    assert_eq!(after.events, expected.events);
    assert_eq!(after.certificates, expected.certificates);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_history_stops_writes_and_the_next_start_recovers_it() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    let blobs = store(&ledger, 0, 12).await;
    assert_eq!(ledger.close().await.unwrap(), Some(24));
    let before = seen(&ledger, &blobs).await;
    drop(ledger);
    let newest = snapshot_file(dir.path(), 24);
    damage_events(&newest);

    // The state is intact, so the ledger starts; its history is found damaged once read.
    let damaged = open(dir.path()).await;
    assert_eq!(damaged.progress().0, 24);
    let reason = damaged.wait_history().unwrap_err();
    assert!(reason.contains("events checksum"), "{reason}");
    assert!(reason.contains("restart the ledger"), "{reason}");
    assert_eq!(damaged.poisoned().as_deref(), Some(reason.as_str()));
    // The state still answers; only the history (and so writes) are unavailable.
    assert_eq!(damaged.read_state(|s| s.entry_count()).await.unwrap(), 24);
    assert!(damaged.read(|s, _| s.entry_count()).await.is_err());
    let account = AccountKey::from_seed(&seed("user", 0));
    let refused = damaged
        .submit_tx(account.sign(24, register(99).0))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, SubmitError::LogFailed(r) if r.contains("restart the ledger")),
        "{refused:?}"
    );
    // Reading the events says why too (the events route answers 503 with it).
    let refused = damaged.try_events(0, 10, Duration::ZERO).await.unwrap_err();
    assert!(
        matches!(&refused, SubmitError::LogFailed(r) if r == &reason),
        "{refused:?}"
    );
    assert!(!newest.exists(), "the damaged snapshot is set aside");
    let mut aside = newest.clone().into_os_string();
    aside.push(".damaged");
    assert!(Path::new(&aside).exists());
    drop(damaged);

    // The previous snapshot (at 20) and the log after it give back everything.
    let recovered = open(dir.path()).await;
    assert_eq!(recovered.open_stats().replayed, 4);
    recovered
        .wait_history()
        .expect("the previous snapshot's history reads");
    assert_eq!(seen(&recovered, &blobs).await, before);
    assert_eq!(recovered.poisoned(), None);
    store(&recovered, 12, 13).await;
}
