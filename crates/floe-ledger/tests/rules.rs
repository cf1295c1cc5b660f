//! One test per ledger rule: each accepted path, and a rejection for every way to break it.

mod common;

use common::{Net, seed};
use floe_core::{BlobId, EncodingType};
use floe_ledger::{AccountKey, BlobStatus, EventKind, LogEntry, TxError, TxKind};

fn alice() -> AccountKey {
    AccountKey::from_seed(&seed("alice", 0))
}
fn bob() -> AccountKey {
    AccountKey::from_seed(&seed("bob", 0))
}

#[test]
fn register_certify_and_status() {
    let mut net = Net::new(10, 100);
    let a = alice();
    assert_eq!(net.status(&BlobId([1; 32])), BlobStatus::Nonexistent);
    let (blob_id, obj) = net.register(&a, b"hello floe", 5, true).unwrap();
    assert!(matches!(
        net.status(&blob_id),
        BlobStatus::Registered { end_epoch: 5, .. }
    ));
    let events = net.certify(&a, blob_id, obj, true).unwrap();
    assert!(matches!(
        events[0].kind,
        EventKind::BlobCertified {
            end_epoch: 5,
            is_extension: false,
            ..
        }
    ));
    match net.status(&blob_id) {
        BlobStatus::Certified {
            end_epoch,
            initial_certified_epoch,
            permanent,
            event,
            ..
        } => {
            assert_eq!(
                (end_epoch, initial_certified_epoch, permanent),
                (5, 0, false)
            );
            assert_eq!(event, events[0].index);
        }
        other => panic!("{other:?}"),
    }
    // Event indices are consecutive from 0.
    for (i, e) in net.events.iter().enumerate() {
        assert_eq!(e.index, i as u64);
    }
}

#[test]
fn forged_and_underweight_certificates_are_rejected() {
    let mut net = Net::new(10, 100);
    let a = alice();
    let (blob_id, obj) = net.register(&a, b"data", 5, false).unwrap();
    // One short of quorum (60 < 67 shards).
    let under = net.certificate(blob_id, obj, false, 0, &net.signers_with_weight(60));
    let err = net
        .submit(
            &a,
            TxKind::CertifyBlob {
                blob_object: obj,
                certificate: under,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "BAD_CERTIFICATE", "{err}");
    // A bitmap claiming signers whose signatures are not in the aggregate.
    let mut forged = net.certificate(blob_id, obj, false, 0, &net.signers_with_weight(60));
    forged.signers_bitmap = net
        .certificate(blob_id, obj, false, 0, &net.quorum_signers())
        .signers_bitmap;
    let err = net
        .submit(
            &a,
            TxKind::CertifyBlob {
                blob_object: obj,
                certificate: forged,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "BAD_CERTIFICATE", "{err}");
    // Signed by keys outside the committee.
    let mut outsider = net.certificate(blob_id, obj, false, 0, &net.quorum_signers());
    let foreign = floe_crypto::ProtocolKeyPair::from_seed(&seed("outsider", 0));
    let msg =
        floe_crypto::Confirmation::new(0, blob_id, floe_crypto::BlobPersistenceType::Permanent);
    outsider.signature = foreign.sign(&msg.to_bytes());
    let err = net
        .submit(
            &a,
            TxKind::CertifyBlob {
                blob_object: obj,
                certificate: outsider,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "BAD_CERTIFICATE", "{err}");
    // Wrong persistence (deletable certificate for a permanent blob).
    let wrong = net.certificate(blob_id, obj, true, 0, &net.quorum_signers());
    let err = net
        .submit(
            &a,
            TxKind::CertifyBlob {
                blob_object: obj,
                certificate: wrong,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "BAD_CERTIFICATE", "{err}");
    // Still certifiable with a real quorum.
    net.certify(&a, blob_id, obj, false).unwrap();
}

#[test]
fn certificate_for_the_wrong_epoch_or_object_is_rejected() {
    let mut net = Net::new(7, 70);
    let a = alice();
    let (blob_id, obj) = net.register(&a, b"epochs", 10, true).unwrap();
    let (_, other_obj) = net.register(&a, b"epochs", 10, true).unwrap();
    let stale = net.certificate(blob_id, obj, true, 0, &net.quorum_signers());
    net.tick_to_epoch(1);
    let err = net
        .submit(
            &a,
            TxKind::CertifyBlob {
                blob_object: obj,
                certificate: stale,
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            TxError::WrongEpoch {
                message: 0,
                current: 1
            }
        ),
        "{err}"
    );
    // A deletable certificate binds its object ID.
    let for_other = net.certificate(blob_id, other_obj, true, 1, &net.quorum_signers());
    let err = net
        .submit(
            &a,
            TxKind::CertifyBlob {
                blob_object: obj,
                certificate: for_other,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "BAD_CERTIFICATE");
    net.certify(&a, blob_id, obj, true).unwrap();
    let err = net.certify(&a, blob_id, obj, true).unwrap_err();
    assert!(matches!(err, TxError::AlreadyCertified(_)));
}

#[test]
fn blob_id_must_match_its_derivation() {
    let mut net = Net::new(4, 10);
    let a = alice();
    let config = floe_core::EncodingConfig::new(10).unwrap();
    let meta = floe_core::compute_metadata(&config, b"abc").unwrap();
    let kind = |blob_id, size| TxKind::ReserveAndRegister {
        end_epoch: 3,
        blob_id,
        root_hash: meta.metadata.root_hash(),
        size,
        encoding_type: EncodingType::RS2,
        deletable: true,
    };
    let err = net.submit(&a, kind(BlobId([9; 32]), 3)).unwrap_err();
    assert_eq!(err.code(), "BLOB_ID_MISMATCH");
    // Right ID, wrong size: the ID commits to the size.
    let err = net.submit(&a, kind(meta.blob_id, 4)).unwrap_err();
    assert_eq!(err.code(), "BLOB_ID_MISMATCH");
    net.submit(&a, kind(meta.blob_id, 3)).unwrap();
}

#[test]
fn only_the_owner_deletes_or_extends() {
    let mut net = Net::new(4, 10);
    let (a, b) = (alice(), bob());
    let (blob_id, obj) = net.register(&a, b"mine", 5, true).unwrap();
    net.certify(&a, blob_id, obj, true).unwrap();
    let before = net.state.state_hash();
    let err = net
        .submit(&b, TxKind::DeleteBlob { blob_object: obj })
        .unwrap_err();
    assert!(matches!(err, TxError::NotOwner(_)));
    let err = net
        .submit(
            &b,
            TxKind::ExtendBlob {
                blob_object: obj,
                new_end_epoch: 9,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::NotOwner(_)));
    assert_eq!(
        net.state.state_hash(),
        before,
        "rejections leave the state untouched"
    );
    net.submit(
        &a,
        TxKind::ExtendBlob {
            blob_object: obj,
            new_end_epoch: 9,
        },
    )
    .unwrap();
    assert!(matches!(
        net.status(&blob_id),
        BlobStatus::Certified { end_epoch: 9, .. }
    ));
    let events = net
        .submit(&a, TxKind::DeleteBlob { blob_object: obj })
        .unwrap();
    assert!(matches!(
        events[0].kind,
        EventKind::BlobDeleted {
            was_certified: true,
            ..
        }
    ));
    assert!(matches!(net.status(&blob_id), BlobStatus::Deleted { .. }));
    // Deleting returns the storage to the owner; deleting twice fails.
    assert_eq!(net.state.storage_of(&a.address()).count(), 1);
    let err = net
        .submit(&a, TxKind::DeleteBlob { blob_object: obj })
        .unwrap_err();
    assert!(matches!(err, TxError::Deleted(_)));
}

#[test]
fn permanent_blobs_cannot_be_deleted_and_extensions_must_extend() {
    let mut net = Net::new(4, 10);
    let a = alice();
    let (blob_id, obj) = net.register(&a, b"forever", 5, false).unwrap();
    let err = net
        .submit(
            &a,
            TxKind::ExtendBlob {
                blob_object: obj,
                new_end_epoch: 8,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::NotCertified(_)));
    net.certify(&a, blob_id, obj, false).unwrap();
    assert!(matches!(
        net.status(&blob_id),
        BlobStatus::Certified {
            permanent: true,
            ..
        }
    ));
    let err = net
        .submit(&a, TxKind::DeleteBlob { blob_object: obj })
        .unwrap_err();
    assert!(matches!(err, TxError::NotDeletable(_)));
    let err = net
        .submit(
            &a,
            TxKind::ExtendBlob {
                blob_object: obj,
                new_end_epoch: 5,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::NotAnExtension { .. }));
}

#[test]
fn capacity_and_epochs_ahead_are_bounded() {
    // 4 nodes × 1 MB capacity: 4 MB per epoch.
    let mut net = Net::with_capacity(4, 10, 1_000_000);
    let a = alice();
    net.submit(
        &a,
        TxKind::ReserveSpace {
            encoded_size: 3_000_000,
            end_epoch: 3,
        },
    )
    .unwrap();
    let err = net
        .submit(
            &a,
            TxKind::ReserveSpace {
                encoded_size: 1_500_000,
                end_epoch: 2,
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, TxError::CapacityExceeded { epoch: 0, .. }),
        "{err}"
    );
    // Epoch 3 onwards is free again.
    net.tick_to_epoch(3);
    net.submit(
        &a,
        TxKind::ReserveSpace {
            encoded_size: 1_500_000,
            end_epoch: 4,
        },
    )
    .unwrap();
    let err = net
        .submit(
            &a,
            TxKind::ReserveSpace {
                encoded_size: 10,
                end_epoch: 3 + 54,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::TooFarAhead { .. }));
    net.submit(
        &a,
        TxKind::ReserveSpace {
            encoded_size: 10,
            end_epoch: 3 + 53,
        },
    )
    .unwrap();
    let err = net
        .submit(
            &a,
            TxKind::ReserveSpace {
                encoded_size: 10,
                end_epoch: 3,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::EndNotInFuture { .. }));
    let err = net
        .submit(
            &a,
            TxKind::ReserveSpace {
                encoded_size: 0,
                end_epoch: 5,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::ZeroSize));
}

#[test]
fn storage_resources_are_owned_sized_and_current() {
    let mut net = Net::new(4, 10);
    let (a, b) = (alice(), bob());
    let events = net
        .submit(
            &a,
            TxKind::ReserveSpace {
                encoded_size: 100,
                end_epoch: 5,
            },
        )
        .unwrap();
    let EventKind::StorageReserved {
        object_id: storage, ..
    } = events[0].kind
    else {
        panic!()
    };
    let config = floe_core::EncodingConfig::new(10).unwrap();
    let meta = floe_core::compute_metadata(&config, b"x").unwrap();
    let register = |storage| TxKind::RegisterBlob {
        storage,
        blob_id: meta.blob_id,
        root_hash: meta.metadata.root_hash(),
        size: 1,
        encoding_type: EncodingType::RS2,
        deletable: true,
    };
    let err = net.submit(&a, register(storage)).unwrap_err();
    assert!(matches!(err, TxError::StorageTooSmall { .. }), "{err}");
    let enc = config.encoded_length(1).unwrap();
    let events = net
        .submit(
            &a,
            TxKind::ReserveSpace {
                encoded_size: enc,
                end_epoch: 5,
            },
        )
        .unwrap();
    let EventKind::StorageReserved { object_id: big, .. } = events[0].kind else {
        panic!()
    };
    let err = net.submit(&b, register(big)).unwrap_err();
    assert!(matches!(err, TxError::NotOwner(_)));
    net.submit(&a, register(big)).unwrap();
    // The resource is consumed by the registration.
    let err = net.submit(&a, register(big)).unwrap_err();
    assert!(matches!(err, TxError::NoSuchObject(_)));
}

#[test]
fn duplicate_registrations_are_separate_objects() {
    let mut net = Net::new(4, 10);
    let (a, b) = (alice(), bob());
    let (blob_id, o1) = net.register(&a, b"same bytes", 4, true).unwrap();
    let (blob_id2, o2) = net.register(&b, b"same bytes", 8, true).unwrap();
    assert_eq!(blob_id, blob_id2);
    assert_ne!(o1, o2);
    assert_eq!(
        net.state.blob_record(&blob_id).unwrap().objects,
        vec![o1, o2]
    );
    net.certify(&a, blob_id, o1, true).unwrap();
    // Certified by o1 until 4; o2 is only registered.
    assert!(matches!(
        net.status(&blob_id),
        BlobStatus::Certified { end_epoch: 4, .. }
    ));
    net.certify(&b, blob_id, o2, true).unwrap();
    assert!(matches!(
        net.status(&blob_id),
        BlobStatus::Certified { end_epoch: 8, .. }
    ));
    // Deleting one registration leaves the other certified.
    net.submit(&b, TxKind::DeleteBlob { blob_object: o2 })
        .unwrap();
    assert!(matches!(
        net.status(&blob_id),
        BlobStatus::Certified { end_epoch: 4, .. }
    ));
}

#[test]
fn expiry_is_exclusive_of_the_end_epoch() {
    let mut net = Net::new(4, 10);
    let a = alice();
    let (blob_id, obj) = net.register(&a, b"short", 2, true).unwrap();
    net.certify(&a, blob_id, obj, true).unwrap();
    net.tick_to_epoch(1);
    assert!(matches!(net.status(&blob_id), BlobStatus::Certified { .. }));
    net.tick_to_epoch(2);
    assert!(matches!(
        net.status(&blob_id),
        BlobStatus::Expired { end_epoch: 2, .. }
    ));
    let err = net
        .submit(
            &a,
            TxKind::ExtendBlob {
                blob_object: obj,
                new_end_epoch: 6,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::Expired { .. }));
    let err = net
        .submit(&a, TxKind::DeleteBlob { blob_object: obj })
        .unwrap_err();
    assert!(matches!(err, TxError::Expired { .. }));
    // An uncertified registration cannot be certified after expiry either.
    let (id2, obj2) = net.register(&a, b"late", 3, true).unwrap();
    let cert = net.certificate(id2, obj2, true, 2, &net.quorum_signers());
    net.tick_to_epoch(3);
    let err = net
        .submit(
            &a,
            TxKind::CertifyBlob {
                blob_object: obj2,
                certificate: cert,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::Expired { .. }));
}

#[test]
fn invalidation_needs_f_plus_one_and_sticks() {
    let mut net = Net::new(10, 100); // f = 33: validity needs 34 shards = 4 members
    let a = alice();
    let (blob_id, obj) = net.register(&a, b"bad encoding", 5, true).unwrap();
    let weak = net.invalid_certificate(blob_id, 0, &net.signers_with_weight(30));
    let err = net
        .submit(&a, TxKind::InvalidateBlob { certificate: weak })
        .unwrap_err();
    assert_eq!(err.code(), "BAD_CERTIFICATE");
    let cert = net.invalid_certificate(blob_id, 0, &net.signers_with_weight(34));
    let events = net
        .submit(
            &a,
            TxKind::InvalidateBlob {
                certificate: cert.clone(),
            },
        )
        .unwrap();
    assert!(matches!(events[0].kind, EventKind::InvalidBlobId { .. }));
    assert!(matches!(net.status(&blob_id), BlobStatus::Invalid { .. }));
    let err = net
        .submit(&a, TxKind::InvalidateBlob { certificate: cert })
        .unwrap_err();
    assert!(matches!(err, TxError::BlobInvalid(_)));
    let err = net.certify(&a, blob_id, obj, true).unwrap_err();
    assert!(matches!(err, TxError::BlobInvalid(_)));
    let err = net.register(&a, b"bad encoding", 5, true).unwrap_err();
    assert!(matches!(err, TxError::BlobInvalid(_)));
}

#[test]
fn signatures_and_sequence_numbers_are_enforced() {
    let mut net = Net::new(4, 10);
    let a = alice();
    let kind = TxKind::ReserveSpace {
        encoded_size: 10,
        end_epoch: 2,
    };
    let mut tx = a.sign(0, kind.clone());
    tx.signature[0] ^= 1;
    assert_eq!(
        net.apply(LogEntry::Tx(tx)).unwrap_err(),
        TxError::BadSignature
    );
    let mut tx = a.sign(0, kind.clone());
    tx.tx.kind = TxKind::ReserveSpace {
        encoded_size: 11,
        end_epoch: 2,
    };
    assert_eq!(
        net.apply(LogEntry::Tx(tx)).unwrap_err(),
        TxError::BadSignature
    );
    let tx = a.sign(0, kind.clone());
    net.apply(LogEntry::Tx(tx.clone())).unwrap();
    // Replaying the same signed transaction fails.
    assert_eq!(
        net.apply(LogEntry::Tx(tx)).unwrap_err(),
        TxError::BadSequence {
            expected: 1,
            got: 0
        }
    );
    let err = net.apply(LogEntry::Tx(a.sign(5, kind))).unwrap_err();
    assert_eq!(
        err,
        TxError::BadSequence {
            expected: 1,
            got: 5
        }
    );
}

#[test]
fn epochs_follow_the_clock() {
    let mut net = Net::new(4, 10);
    let start = net.state.epoch_start_ms(1);
    let half = net.state.selection_time_ms(0);
    let err = net.apply(LogEntry::Clock { now_ms: half - 1 }).unwrap_err();
    assert!(matches!(err, TxError::StaleClock { .. }));
    // Half an epoch in, the next committee is fixed; the epoch does not move yet.
    let events = net.apply(LogEntry::Clock { now_ms: start - 1 }).unwrap();
    assert_eq!(
        events[0].kind,
        EventKind::EpochParametersSelected { next_epoch: 1 }
    );
    assert_eq!(net.state.epoch(), 0);
    let events = net
        .apply(LogEntry::Clock {
            now_ms: start + 5000,
        })
        .unwrap();
    // One epoch per clock entry; an unchanged committee finishes the change at once.
    assert_eq!(net.state.epoch(), 1);
    assert!(matches!(
        events[0].kind,
        EventKind::EpochChangeStart { epoch: 1 }
    ));
    assert!(matches!(
        events[1].kind,
        EventKind::EpochChangeDone { epoch: 1 }
    ));
    assert_eq!(net.state.committee().epoch, 1);
    assert_eq!(net.state.previous_committee().unwrap().epoch, 0);
    net.apply(LogEntry::Clock {
        now_ms: start + 5000,
    })
    .unwrap();
    assert_eq!(net.state.epoch(), 2);
    // Sync reports are refused when no change is in progress.
    let op = net.operators[0].clone();
    let node = net.state.committee().members[0].node_id;
    let err = net
        .submit(
            &op,
            TxKind::EpochSyncDone {
                node_id: node,
                epoch: 2,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::NoEpochChange(2)));
}

#[test]
fn genesis_checks_proofs_of_possession() {
    let (mut config, _, _) = common::genesis_config(4, 10, 1 << 30);
    config.nodes[1].proof_of_possession = config.nodes[0].proof_of_possession;
    let err = floe_ledger::LedgerState::genesis(&config).unwrap_err();
    assert!(err.to_string().contains("proof of possession"), "{err}");
    let (mut config, _, _) = common::genesis_config(4, 10, 1 << 30);
    config.n_shards = 3;
    assert!(floe_ledger::LedgerState::genesis(&config).is_err());
}

#[test]
fn pre_verified_certificates_apply_and_bad_ones_do_not_verify() {
    let mut net = Net::new(10, 100);
    let a = alice();
    let (blob_id, obj) = net.register(&a, b"pre-verified", 5, true).unwrap();
    // An under-weight certificate fails the out-of-lock check, so nothing is recorded.
    let weak = net.certificate(blob_id, obj, true, 0, &net.signers_with_weight(60));
    let seq = net.state.next_sequence(&a.address());
    let entry = LogEntry::Tx(a.sign(
        seq,
        TxKind::CertifyBlob {
            blob_object: obj,
            certificate: weak,
        },
    ));
    assert_eq!(net.state.certificate_check(&entry).unwrap().run(), None);
    assert_eq!(net.apply(entry).unwrap_err().code(), "BAD_CERTIFICATE");
    // A good one is checked outside, recorded, and applies with the same result as without.
    let good = net.certificate(blob_id, obj, true, 0, &net.quorum_signers());
    let entry = LogEntry::Tx(a.sign(
        seq,
        TxKind::CertifyBlob {
            blob_object: obj,
            certificate: good,
        },
    ));
    let key = net
        .state
        .certificate_check(&entry)
        .unwrap()
        .run()
        .expect("valid certificate");
    let mut without_cache = net.state.clone();
    net.state.record_verified(key);
    let with = net.state.apply(&entry).unwrap();
    let without = without_cache.apply(&entry).unwrap();
    assert_eq!(with, without);
    assert_eq!(net.state.digest(), without_cache.digest());
}
