//! Snapshot files of the previous format still load: a ledger upgraded in place finds its
//! newest snapshot written by the older build, and with a pruned log it has nothing else to
//! start from. Version 8 held the events as BCS `Vec<Event>`; version 9 holds their encodings
//! back to back with where each ends, so that a restart does not decode them.

use std::sync::Arc;

use floe_ledger::{AccountKey, Event};
use floe_ledger_service::snapshot::{self, SNAPSHOT_VERSION};
use floe_ledger_service::{Ledger, SystemClock};
use serde::Serialize;

mod common;
use common::{genesis, register, seed};

/// The version 8 layout, written out here as that build wrote it.
#[derive(Serialize)]
struct SnapshotV8<'a> {
    version: u8,
    seq: u64,
    chain_head: [u8; 32],
    #[serde(with = "serde_bytes")]
    state: &'a [u8],
    #[serde(with = "serde_bytes")]
    events: &'a [u8],
    #[serde(with = "serde_bytes")]
    digests: &'a [u8],
    #[serde(with = "serde_bytes")]
    certificates: &'a [u8],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_8_snapshot_decodes_to_the_same_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let account = AccountKey::from_seed(&seed("user", 0));
    let ledger =
        Ledger::open_with_snapshots(dir.path(), genesis(), Arc::new(SystemClock), 5).unwrap();
    let (kind, certified) = register(0);
    let accepted = ledger.submit_tx(account.sign(0, kind)).await.unwrap();
    let object = common::registered_object(&accepted.events);
    ledger
        .submit_tx(account.sign(1, common::certify(certified, object)))
        .await
        .unwrap();
    for i in 2..5 {
        ledger
            .submit_tx(account.sign(i, register(i).0))
            .await
            .unwrap();
    }
    common::wait_for_snapshot(dir.path(), 5).await;
    let path = dir
        .path()
        .join("snapshots/snapshot-00000000000000000005.bin");
    let bytes = std::fs::read(&path).expect("the snapshot at 5");
    assert_eq!(bytes[0], SNAPSHOT_VERSION);
    let new = snapshot::decode(&bytes).unwrap();
    let events: Vec<Event> = new.events.to_vec();
    assert_eq!(events.len(), new.events.len());
    assert!(events.len() >= 5, "registrations and a certification");

    let mut certificates: Vec<_> = new.certificates.values().collect();
    certificates.sort_by_key(|c| c.blob_id);
    assert_eq!(certificates.len(), 1);
    let v8 = bcs::to_bytes(&SnapshotV8 {
        version: 8,
        seq: new.seq,
        chain_head: new.chain_head,
        state: &new.state.to_snapshot_bytes(),
        events: &bcs::to_bytes(&events).unwrap(),
        digests: &new.digests.concat(),
        certificates: &bcs::to_bytes(&certificates).unwrap(),
    })
    .unwrap();
    let old = snapshot::decode(&v8).unwrap();
    assert_eq!(old.seq, new.seq);
    assert_eq!(old.chain_head, new.chain_head);
    assert_eq!(old.state.state_hash(), new.state.state_hash());
    assert_eq!(old.events, new.events, "the same encoded events");
    assert_eq!(old.digests, new.digests);
    assert_eq!(old.certificates, new.certificates);
    // Re-encoded, it is the current format, byte for byte what the ledger wrote.
    let again = snapshot::encode(
        old.seq,
        old.chain_head,
        &old.state,
        &old.events,
        &old.digests,
        &old.certificates,
    );
    assert_eq!(again, bytes);

    // A version this build never wrote is refused with what it reads.
    let mut future = bytes.clone();
    future[0] = SNAPSHOT_VERSION + 1;
    let err = snapshot::decode(&future).unwrap_err().to_string();
    assert!(err.contains("this build reads 8 to 9"), "{err}");
    drop(ledger);
}
