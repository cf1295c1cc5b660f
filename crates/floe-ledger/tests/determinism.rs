//! Random workloads applied twice, and replayed from their log, give identical digests, state
//! hashes and events. The seed is part of the proptest input (printed on failure).

mod common;

use common::{Net, seed};
use floe_ledger::{AccountKey, LedgerState, LogEntry, TxKind};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Drive `net` with `steps` random operations; returns how many were accepted.
fn random_workload(net: &mut Net, rng: &mut ChaCha8Rng, steps: usize) -> usize {
    let accounts: Vec<AccountKey> = (0..3)
        .map(|i| AccountKey::from_seed(&seed("acct", i)))
        .collect();
    let mut blobs = Vec::new();
    let mut accepted = 0;
    for step in 0..steps {
        let who = &accounts[rng.random_range(0..accounts.len())];
        let epoch = net.state.epoch();
        let ok = match rng.random_range(0..10) {
            0 | 1 => {
                let data: Vec<u8> = (0..rng.random_range(0..300))
                    .map(|_| rng.random())
                    .collect();
                let end = epoch + rng.random_range(0..6);
                match net.register(who, &data, end, rng.random_bool(0.7)) {
                    Ok((id, obj)) => {
                        blobs.push((id, obj, who.clone()));
                        true
                    }
                    Err(_) => false,
                }
            }
            2 | 3 if !blobs.is_empty() => {
                let (id, obj, owner) = blobs[rng.random_range(0..blobs.len())].clone();
                let deletable = net.state.blob_object(&obj).unwrap().deletable;
                let signers = if rng.random_bool(0.8) {
                    net.quorum_signers()
                } else {
                    net.signers_with_weight(10)
                };
                let cert = net.certificate(id, obj, deletable, epoch, &signers);
                net.submit(
                    &owner,
                    TxKind::CertifyBlob {
                        blob_object: obj,
                        certificate: cert,
                    },
                )
                .is_ok()
            }
            4 if !blobs.is_empty() => {
                let (_, obj, owner) = blobs[rng.random_range(0..blobs.len())].clone();
                let actor = if rng.random_bool(0.8) {
                    owner
                } else {
                    who.clone()
                };
                net.submit(&actor, TxKind::DeleteBlob { blob_object: obj })
                    .is_ok()
            }
            5 if !blobs.is_empty() => {
                let (_, obj, owner) = blobs[rng.random_range(0..blobs.len())].clone();
                net.submit(
                    &owner,
                    TxKind::ExtendBlob {
                        blob_object: obj,
                        new_end_epoch: epoch + rng.random_range(0..10),
                    },
                )
                .is_ok()
            }
            6 => {
                let now = net.state.epoch_start_ms(epoch + rng.random_range(0..2));
                net.apply(LogEntry::Clock { now_ms: now }).is_ok()
            }
            7 => net
                .submit(
                    who,
                    TxKind::ReserveSpace {
                        encoded_size: rng.random_range(0..1 << 20),
                        end_epoch: epoch + rng.random_range(0..60),
                    },
                )
                .is_ok(),
            8 if !blobs.is_empty() => {
                let k = rng.random_range(0..blobs.len());
                let (_, obj, owner) = blobs[k].clone();
                let to = accounts[rng.random_range(0..accounts.len())].clone();
                let actor = if rng.random_bool(0.8) {
                    owner
                } else {
                    who.clone()
                };
                let ok = net
                    .submit(
                        &actor,
                        TxKind::TransferBlob {
                            blob_object: obj,
                            recipient: to.address(),
                        },
                    )
                    .is_ok();
                if ok {
                    blobs[k].2 = to;
                }
                ok
            }
            _ => {
                // Garbage: a transaction with a wrong sequence number.
                let tx = who.sign(
                    1000 + step as u64,
                    TxKind::ReserveSpace {
                        encoded_size: 1,
                        end_epoch: epoch + 1,
                    },
                );
                net.apply(LogEntry::Tx(tx)).is_ok()
            }
        };
        accepted += usize::from(ok);
    }
    accepted
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn same_entries_same_state(seed_value in any::<u64>()) {
        let mut a = Net::new(7, 70);
        let accepted = random_workload(&mut a, &mut ChaCha8Rng::seed_from_u64(seed_value), 120);
        prop_assert!(accepted > 10, "workload too trivial: {} accepted", accepted);
        let mut b = Net::new(7, 70);
        random_workload(&mut b, &mut ChaCha8Rng::seed_from_u64(seed_value), 120);
        prop_assert_eq!(a.state.digest(), b.state.digest());
        prop_assert_eq!(a.state.state_hash(), b.state.state_hash());
        prop_assert_eq!(&a.events, &b.events);

        // Replay the accepted log on a fresh genesis, through its byte form.
        let (config, _, _) = common::genesis_config(7, 70, 1 << 40);
        let mut replayed = LedgerState::genesis(&config).unwrap();
        let mut events = Vec::new();
        let mut digests = Vec::new();
        for entry in &a.log {
            let decoded = LogEntry::from_bytes(&entry.to_bytes()).unwrap();
            events.extend(replayed.apply(&decoded).expect("an accepted entry applies again"));
            digests.push(replayed.digest());
        }
        prop_assert_eq!(replayed.digest(), a.state.digest());
        prop_assert_eq!(replayed.state_hash(), a.state.state_hash());
        prop_assert_eq!(events, a.events.clone());
        prop_assert_eq!(replayed.entry_count(), a.log.len() as u64);

        // Replay again in windows whose certificates are checked ahead (as a restarting ledger
        // does), with window sizes drawn from the seed: the same digests after every entry.
        let mut rng = ChaCha8Rng::seed_from_u64(seed_value ^ 0x5eed);
        let mut windowed = LedgerState::genesis(&config).unwrap();
        let mut start = 0;
        while start < a.log.len() {
            let end = (start + rng.random_range(1..40)).min(a.log.len());
            let window = &a.log[start..end];
            windowed.preverify(window);
            for (i, entry) in window.iter().enumerate() {
                windowed.apply(entry).expect("an accepted entry applies after preverify");
                prop_assert_eq!(windowed.digest(), digests[start + i], "digest after entry {}", start + i);
            }
            start = end;
        }
        prop_assert_eq!(windowed.state_hash(), a.state.state_hash());
    }
}

#[test]
fn a_snapshot_restores_an_equal_state_that_applies_the_same_way() {
    let seed_value = 11;
    eprintln!("seed {seed_value}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed_value);
    let mut net = Net::new(4, 40);
    let accepted = random_workload(&mut net, &mut rng, 60);
    assert!(accepted > 10, "the workload must build some state");
    let state = net.state.clone();
    let bytes = state.to_snapshot_bytes();
    let mut restored = LedgerState::from_snapshot_bytes(&bytes).unwrap();
    assert_eq!(restored, state);
    assert_eq!(restored.state_hash(), state.state_hash());
    assert_eq!(
        restored.to_snapshot_bytes(),
        bytes,
        "the encoding is canonical"
    );
    // Both continue identically.
    let mut twin = Net::new(4, 40);
    twin.state = restored.clone();
    let mut rng_a = ChaCha8Rng::seed_from_u64(seed_value + 1);
    let mut rng_b = ChaCha8Rng::seed_from_u64(seed_value + 1);
    random_workload(&mut net, &mut rng_a, 30);
    random_workload(&mut twin, &mut rng_b, 30);
    assert_eq!(twin.state.digest(), net.state.digest());
    assert_eq!(twin.state.state_hash(), net.state.state_hash());
    assert!(LedgerState::from_snapshot_bytes(&bytes[..bytes.len() / 2]).is_err());
    // A checkpoint entry changes nothing.
    let events = restored
        .apply(&LogEntry::Checkpoint {
            seq: 7,
            state_root: [1; 32],
        })
        .unwrap();
    assert!(events.is_empty());
    assert_eq!(restored, state);
}

#[test]
fn a_snapshot_loaded_lazily_is_the_same_state_and_applies_the_same_way() {
    for seed_value in [3u64, 17, 29] {
        eprintln!("seed {seed_value}");
        let mut rng = ChaCha8Rng::seed_from_u64(seed_value);
        let mut net = Net::new(4, 40);
        let accepted = random_workload(&mut net, &mut rng, 80);
        assert!(accepted > 10, "the workload must build some state");
        let (bytes, index) = net.state.to_snapshot_parts();
        assert_eq!(
            bytes,
            bcs::to_bytes(&net.state).unwrap(),
            "the canonical BCS"
        );
        let whole = 0..bytes.len();
        let lazy = LedgerState::from_snapshot_parts(
            std::sync::Arc::new(bytes.clone()),
            whole,
            index.clone(),
        )
        .unwrap();
        assert_eq!(lazy.state_hash(), net.state.state_hash());
        assert_eq!(lazy, net.state);
        // Both continue identically, the loaded one decoding entries as it goes.
        let mut twin = Net::new(4, 40);
        // This one's section shares a buffer with other bytes around it.
        let mut shared = vec![7u8; 11];
        shared.extend(&bytes);
        shared.extend([9u8; 5]);
        let section = 11..11 + bytes.len();
        twin.state =
            LedgerState::from_snapshot_parts(std::sync::Arc::new(shared), section, index).unwrap();
        let mut rng_a = ChaCha8Rng::seed_from_u64(seed_value + 1);
        let mut rng_b = ChaCha8Rng::seed_from_u64(seed_value + 1);
        random_workload(&mut net, &mut rng_a, 60);
        random_workload(&mut twin, &mut rng_b, 60);
        assert_eq!(twin.state.digest(), net.state.digest());
        assert_eq!(twin.state.state_hash(), net.state.state_hash());
        // Written again (unchanged entries copied as loaded), it is the same encoding.
        let (again, again_index) = twin.state.to_snapshot_parts();
        assert_eq!(again, net.state.to_snapshot_bytes());
        assert_eq!(again_index, net.state.to_snapshot_parts().1);
        assert_eq!(twin.state, net.state);
    }
}

#[test]
fn a_state_index_that_does_not_fit_its_bytes_is_refused() {
    let mut net = Net::new(4, 40);
    random_workload(&mut net, &mut ChaCha8Rng::seed_from_u64(8), 60);
    let (bytes, index) = net.state.to_snapshot_parts();
    let bytes = std::sync::Arc::new(bytes);
    let load = |index: &floe_ledger::StateIndex| {
        LedgerState::from_snapshot_parts(bytes.clone(), 0..bytes.len(), index.clone()).map(|_| ())
    };
    assert_eq!(load(&index), Ok(()));
    for section in [0..bytes.len() - 1, 1..bytes.len(), 0..bytes.len() + 1] {
        let loaded =
            LedgerState::from_snapshot_parts(bytes.clone(), section.clone(), index.clone());
        assert!(loaded.is_err(), "{section:?}");
    }
    let mut short = index.clone();
    short.maps.pop();
    assert!(load(&short).is_err());
    let mut moved = index.clone();
    moved.maps[1].start += 1;
    assert!(load(&moved).is_err());
    let mut dropped = index.clone();
    dropped.maps[1].ends.pop();
    assert!(load(&dropped).is_err());
    let mut swapped = index.clone();
    assert!(
        swapped.maps[1].ends.len() >= 2,
        "the workload registers blobs"
    );
    swapped.maps[1].ends.swap(0, 1);
    assert!(load(&swapped).is_err());
}

/// The bytes of the state, the log's entries and the events belong to the protocol: state hashes
/// are compared across builds and replicas, transactions are signed over their BCS, snapshots
/// are checked against committed roots. A fixed workload must keep giving these exact hashes;
/// if one changes, the change is a format change that needs a version step, not a speed-up.
#[test]
fn the_encodings_are_pinned() {
    let mut net = Net::new(4, 40);
    let accepted = random_workload(&mut net, &mut ChaCha8Rng::seed_from_u64(5), 80);
    assert!(accepted > 10, "the workload must build some state");
    let hash = |bytes: &[u8]| hex::encode(floe_core::merkle::blake2b256(&[bytes]));
    let log: Vec<u8> = net.log.iter().flat_map(LogEntry::to_bytes).collect();
    let got = [
        hex::encode(net.state.state_hash()),
        hex::encode(net.state.digest()),
        hash(&net.state.to_snapshot_bytes()),
        hash(&bcs::to_bytes(&net.events).unwrap()),
        hash(&log),
    ];
    assert_eq!(got, PINNED, "state hash, digest, snapshot, events, log");
}

/// Computed with plain BCS (serde's own arrays and maps), before the faster ID and map codecs.
const PINNED: [&str; 5] = [
    "5406fe6e41609524e5b973c90a27174a1de6954e5750ca810162e3530c53dba4",
    "f693dfe7bc3cf00bc62220096cf1bdaedea9610a33be7c9168fc94e7ca4825f3",
    "452ccd81dad508235369559de5a418e44b6cc15d2f695b94304054227d26ac96",
    "22f4a77f7b594aceb60f5b437f9dcb07e2eef45be40bb106df1faa864ce161a1",
    "f8b94a2f1bb53e0b598b6a6f444a077ccd747dc35aa60cfbea3e75d7d86fadc9",
];
