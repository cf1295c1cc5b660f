//! Shared blobs: the owner of a certified blob object wraps it into a shared blob; from then
//! on anyone extends it through the shared blob, and nobody (its former owner included)
//! deletes, transfers, extends directly or changes it. The state keeps them across a snapshot.

mod common;

use common::{Net, seed};
use floe_ledger::{AccountKey, EventKind, LedgerState, TxError, TxKind};

fn alice() -> AccountKey {
    AccountKey::from_seed(&seed("alice", 0))
}
fn bob() -> AccountKey {
    AccountKey::from_seed(&seed("bob", 0))
}

#[test]
fn anyone_extends_a_shared_blob_and_nobody_deletes_or_moves_it() {
    let mut net = Net::new(7, 70);
    let (a, b) = (alice(), bob());
    let (blob_id, obj) = net.register(&a, b"share me", 3, true).unwrap();

    // Only certified blobs, only by their owner.
    let share = TxKind::ShareBlob { blob_object: obj };
    assert_eq!(
        net.submit(&a, share.clone()).unwrap_err(),
        TxError::NotCertified(obj)
    );
    net.certify(&a, blob_id, obj, true).unwrap();
    assert_eq!(
        net.submit(&b, share.clone()).unwrap_err(),
        TxError::NotOwner(obj)
    );
    assert_eq!(net.submit(&a, share.clone()).unwrap(), vec![]);
    let shared = net.state.shared_blob_of(&obj).expect("shared");
    assert_ne!(shared, obj, "a shared blob is an object of its own");
    let view = net.state.shared_blob(&shared).unwrap();
    assert_eq!((view.id, view.blob.id), (shared, obj));
    // Shared once only.
    assert_eq!(
        net.submit(&a, share).unwrap_err(),
        TxError::SharedBlob { blob: obj, shared }
    );

    // Its former owner can no longer act on the blob object itself.
    let hash = net.state.state_hash();
    for kind in [
        TxKind::DeleteBlob { blob_object: obj },
        TxKind::ExtendBlob {
            blob_object: obj,
            new_end_epoch: 9,
        },
        TxKind::TransferBlob {
            blob_object: obj,
            recipient: b.address(),
        },
        TxKind::RemoveBlobAttributes {
            blob_object: obj,
            keys: None,
        },
    ] {
        assert_eq!(
            net.submit(&a, kind).unwrap_err(),
            TxError::SharedBlob { blob: obj, shared }
        );
    }
    assert_eq!(
        net.state.state_hash(),
        hash,
        "a refused rule changed nothing"
    );

    // Anyone extends it, through the shared blob; the extension is a BlobCertified event.
    let events = net
        .submit(
            &b,
            TxKind::ExtendSharedBlob {
                shared_blob: shared,
                new_end_epoch: 6,
            },
        )
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
        vec![EventKind::BlobCertified {
            blob_id,
            object_id: obj,
            end_epoch: 6,
            deletable: true,
            is_extension: true,
        }]
    );
    assert_eq!(net.state.shared_blob(&shared).unwrap().blob.end_epoch(), 6);
    // Not shortened, not an unknown shared blob.
    assert_eq!(
        net.submit(
            &a,
            TxKind::ExtendSharedBlob {
                shared_blob: shared,
                new_end_epoch: 5,
            },
        )
        .unwrap_err(),
        TxError::NotAnExtension {
            end: 6,
            requested: 5
        }
    );
    let missing = floe_core::ObjectId([9; 32]);
    assert_eq!(
        net.submit(
            &a,
            TxKind::ExtendSharedBlob {
                shared_blob: missing,
                new_end_epoch: 8,
            },
        )
        .unwrap_err(),
        TxError::NoSuchObject(missing)
    );

    // A snapshot keeps shared blobs.
    let restored = LedgerState::from_snapshot_bytes(&net.state.to_snapshot_bytes()).unwrap();
    assert_eq!(restored, net.state);
    assert_eq!(restored.shared_blob_of(&obj), Some(shared));

    // Once expired, it can no longer be extended.
    net.tick_to_epoch(6);
    assert_eq!(
        net.submit(
            &b,
            TxKind::ExtendSharedBlob {
                shared_blob: shared,
                new_end_epoch: 9,
            },
        )
        .unwrap_err(),
        TxError::Expired { end: 6, epoch: 6 }
    );
}
