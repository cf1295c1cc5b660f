//! Snapshot files of the previous format still load: a ledger upgraded in place finds its
//! newest snapshot written by the older build, and with a pruned log it has nothing else to
//! start from. Version 8 held the events as BCS `Vec<Event>`; version 9 holds their encodings
//! back to back with where each ends, so that a restart does not decode them. Version 10 adds
//! where each entry of the state's large maps and each certificate ends, so that a restart
//! decodes them only when used, and a checksum. Version 11 puts the same sections behind a
//! header with a checksum for each, so that a restart reads the state alone. Version 12 adds
//! a section: the transactions accepted in the last entries (a retry's first outcome); an
//! older file has none, and a ledger opened from it knows none from before it.

use std::sync::Arc;

use floe_ledger::{AccountKey, Event};
use floe_ledger_service::snapshot::{self, SNAPSHOT_VERSION};
use floe_ledger_service::{Ledger, SystemClock};
use serde::Serialize;

mod common;
use common::{genesis, register, seed};

/// The version 10 layout (followed by the CRC-32 of its BCS bytes), written out here as that
/// build wrote it.
#[derive(Serialize)]
struct SnapshotV10<'a> {
    version: u8,
    seq: u64,
    chain_head: [u8; 32],
    #[serde(with = "serde_bytes")]
    state: &'a [u8],
    #[serde(with = "serde_bytes")]
    state_index: &'a [u8],
    #[serde(with = "serde_bytes")]
    events: &'a [u8],
    #[serde(with = "serde_bytes")]
    event_ends: &'a [u8],
    #[serde(with = "serde_bytes")]
    digests: &'a [u8],
    #[serde(with = "serde_bytes")]
    certificates: &'a [u8],
    #[serde(with = "serde_bytes")]
    certificate_ends: &'a [u8],
}

/// The version 11 file: version 12's header and sections without the last section (the recent
/// transactions), as that build wrote it.
fn as_version_11(v12: &[u8]) -> Vec<u8> {
    let le_u64 = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
    assert_eq!(v12[0], 12);
    assert_eq!(&v12[41..45], &8u32.to_le_bytes());
    let table = &v12[45..45 + 8 * 12];
    let recent_len = le_u64(&table[7 * 12..7 * 12 + 8]) as usize;
    let mut out = vec![11];
    out.extend_from_slice(&v12[1..41]);
    out.extend(7u32.to_le_bytes());
    out.extend_from_slice(&table[..7 * 12]);
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_le_bytes());
    let body = &v12[45 + 8 * 12 + 4..];
    out.extend_from_slice(&body[..body.len() - recent_len]);
    out
}

/// The version 9 layout, written out here as that build wrote it.
#[derive(Serialize)]
struct SnapshotV9<'a> {
    version: u8,
    seq: u64,
    chain_head: [u8; 32],
    #[serde(with = "serde_bytes")]
    state: &'a [u8],
    #[serde(with = "serde_bytes")]
    events: &'a [u8],
    #[serde(with = "serde_bytes")]
    event_ends: &'a [u8],
    #[serde(with = "serde_bytes")]
    digests: &'a [u8],
    #[serde(with = "serde_bytes")]
    certificates: &'a [u8],
}

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
async fn version_8_and_9_snapshots_decode_to_the_same_snapshot() {
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
    assert_eq!(new.recent.len(), 5, "the five transactions are recent");
    assert!(new.recent.complete_at(new.seq));

    assert_eq!(new.certificates.len(), 1);
    let (certificates, certificate_ends) = new.certificates.encode();
    let le = |v: &[u64]| v.iter().flat_map(|e| e.to_le_bytes()).collect::<Vec<u8>>();
    let (state, state_index) = new.state.to_snapshot_parts();
    let mut v10 = bcs::to_bytes(&SnapshotV10 {
        version: 10,
        seq: new.seq,
        chain_head: new.chain_head,
        state: &state,
        state_index: &bcs::to_bytes(&state_index).unwrap(),
        events: new.events.bytes(),
        event_ends: &le(new.events.ends()),
        digests: &new.digests.concat(),
        certificates: &certificates,
        certificate_ends: &le(&certificate_ends),
    })
    .unwrap();
    let crc = crc32fast::hash(&v10);
    v10.extend(crc.to_le_bytes());
    let v9 = bcs::to_bytes(&SnapshotV9 {
        version: 9,
        seq: new.seq,
        chain_head: new.chain_head,
        state: &new.state.to_snapshot_bytes(),
        events: new.events.bytes(),
        event_ends: &le(new.events.ends()),
        digests: &new.digests.concat(),
        certificates: &certificates,
    })
    .unwrap();
    let v8 = bcs::to_bytes(&SnapshotV8 {
        version: 8,
        seq: new.seq,
        chain_head: new.chain_head,
        state: &new.state.to_snapshot_bytes(),
        events: &bcs::to_bytes(&events).unwrap(),
        digests: &new.digests.concat(),
        certificates: &certificates,
    })
    .unwrap();
    let v11 = as_version_11(&bytes);
    for old in [&v8, &v9, &v10, &v11] {
        let old = snapshot::decode(old).unwrap();
        assert!(old.recent.is_empty() && !old.recent.complete_at(old.seq));
        assert_eq!(old.seq, new.seq);
        assert_eq!(old.chain_head, new.chain_head);
        assert_eq!(old.state.state_hash(), new.state.state_hash());
        assert_eq!(old.state, new.state, "decoded at once, or when used");
        assert_eq!(old.events, new.events, "the same encoded events");
        assert_eq!(old.digests, new.digests);
        assert_eq!(old.certificates, new.certificates);
        // Re-encoded, it is the current format, byte for byte what the ledger wrote.
        // (With the recent transactions, which the older formats did not hold.)
        let again = snapshot::encode(
            old.seq,
            old.chain_head,
            &old.state,
            (&old.events, &old.digests, &old.certificates),
            &new.recent,
        );
        assert_eq!(again, bytes);
    }
    // Read from disk (the file read checks a version 10 file's checksum as it reads), every
    // version loads to the same snapshot.
    for file in [&v8, &v9, &v10, &v11, &bytes] {
        let disk = tempfile::tempdir().unwrap();
        std::fs::create_dir(disk.path().join("snapshots")).unwrap();
        std::fs::write(
            disk.path()
                .join(format!("snapshots/snapshot-{:020}.bin", new.seq)),
            file,
        )
        .unwrap();
        let (loaded, read) = snapshot::load_newest(disk.path()).unwrap().unwrap();
        assert_eq!(read.as_slice(), file.as_slice());
        assert_eq!(loaded.state, new.state, "version {}", file[0]);
        assert_eq!(loaded.events, new.events);
        assert_eq!(loaded.digests, new.digests);
        assert_eq!(loaded.certificates, new.certificates);
        assert_eq!(loaded.recent.len(), if file[0] == 12 { 5 } else { 0 });
    }

    // A version this build never wrote is refused with what it reads.
    let mut future = bytes.clone();
    future[0] = SNAPSHOT_VERSION + 1;
    let err = snapshot::decode(&future).unwrap_err().to_string();
    assert!(err.contains("this build reads 8 to 12"), "{err}");

    // A damaged byte anywhere is caught by a checksum (the header's or its section's) before
    // anything is decoded, in every format that has them.
    for file in [&bytes, &v11, &v10] {
        for at in [1, 60, file.len() / 2, file.len() - 1] {
            let mut damaged = file.clone();
            damaged[at] ^= 0x20;
            let err = snapshot::decode(&damaged).unwrap_err().to_string();
            assert!(err.contains("checksum"), "byte {at}: {err}");
        }
    }
    // A file cut short, or longer than its header says, is refused.
    for len in [bytes.len() - 1, 100] {
        let err = snapshot::decode(&bytes[..len]).unwrap_err().to_string();
        assert!(err.contains("bytes"), "{len} bytes: {err}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let err = snapshot::decode(&longer).unwrap_err().to_string();
    assert!(err.contains("the file has"), "{err}");
    drop(ledger);
}
