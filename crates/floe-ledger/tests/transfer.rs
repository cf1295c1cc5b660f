//! The transfer rule: only the owner gives a blob object away, never a deleted one; the object
//! keeps its identity, lifetime and certification, and the recipient becomes its owner for
//! every later rule (delete, extend, transfer).

mod common;

use common::{Net, seed};
use floe_ledger::{AccountKey, BlobStatus, EventKind, TxError, TxKind};

fn alice() -> AccountKey {
    AccountKey::from_seed(&seed("alice", 0))
}
fn bob() -> AccountKey {
    AccountKey::from_seed(&seed("bob", 0))
}

fn transfer(
    net: &mut Net,
    who: &AccountKey,
    object: floe_core::ObjectId,
    to: &AccountKey,
) -> Result<Vec<floe_ledger::Event>, TxError> {
    net.submit(
        who,
        TxKind::TransferBlob {
            blob_object: object,
            recipient: to.address(),
        },
    )
}

#[test]
fn the_owner_transfers_and_the_recipient_owns_from_then_on() {
    let mut net = Net::new(7, 70);
    let (a, b) = (alice(), bob());
    let (blob_id, obj) = net.register(&a, b"transfer me", 5, true).unwrap();
    net.certify(&a, blob_id, obj, true).unwrap();
    let before = net.state.blob_object(&obj).unwrap().clone();

    // Not the owner: refused, nothing changes.
    let hash = net.state.state_hash();
    let err = transfer(&mut net, &b, obj, &b).unwrap_err();
    assert_eq!(err, TxError::NotOwner(obj));
    assert_eq!(net.state.state_hash(), hash);
    // No such object.
    let missing = floe_core::ObjectId([7; 32]);
    assert_eq!(
        transfer(&mut net, &a, missing, &b).unwrap_err(),
        TxError::NoSuchObject(missing)
    );

    let events = transfer(&mut net, &a, obj, &b).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].kind,
        EventKind::BlobTransferred {
            blob_id,
            object_id: obj,
            from: a.address(),
            to: b.address(),
        }
    );
    assert_eq!(events[0].kind.blob_id(), Some(blob_id));
    let after = net.state.blob_object(&obj).unwrap().clone();
    assert_eq!(after.owner, b.address());
    assert_eq!(after.storage.owner, b.address());
    assert_eq!(
        (after.id, after.certified_epoch, after.end_epoch()),
        (before.id, before.certified_epoch, before.end_epoch())
    );
    // Accounts list it under the recipient only.
    assert!(net.state.blobs_of(&b.address()).any(|x| x.id == obj));
    assert!(!net.state.blobs_of(&a.address()).any(|x| x.id == obj));
    // The blob's status is unchanged (and still names the certification event).
    assert!(matches!(
        net.status(&blob_id),
        BlobStatus::Certified { object_id, .. } if object_id == obj
    ));

    // The former owner can no longer act on it; the new owner can.
    for kind in [
        TxKind::DeleteBlob { blob_object: obj },
        TxKind::ExtendBlob {
            blob_object: obj,
            new_end_epoch: 9,
        },
        TxKind::TransferBlob {
            blob_object: obj,
            recipient: a.address(),
        },
    ] {
        assert_eq!(net.submit(&a, kind).unwrap_err(), TxError::NotOwner(obj));
    }
    net.submit(
        &b,
        TxKind::ExtendBlob {
            blob_object: obj,
            new_end_epoch: 9,
        },
    )
    .unwrap();
    net.submit(&b, TxKind::DeleteBlob { blob_object: obj })
        .unwrap();
    // The storage of the deleted blob returns to the recipient.
    assert!(
        net.state
            .storage_of(&b.address())
            .any(|s| s.id == after.storage.id)
    );
    assert!(
        !net.state
            .storage_of(&a.address())
            .any(|s| s.id == after.storage.id)
    );
    // A deleted object cannot move.
    assert_eq!(
        transfer(&mut net, &b, obj, &a).unwrap_err(),
        TxError::Deleted(obj)
    );
}

#[test]
fn uncertified_and_expired_objects_move_and_certification_still_works() {
    let mut net = Net::new(7, 70);
    let (a, b) = (alice(), bob());
    // Registered but not certified: transferable, and still certifiable afterwards.
    let (blob_id, obj) = net.register(&a, b"pending", 3, false).unwrap();
    transfer(&mut net, &a, obj, &b).unwrap();
    net.certify(&b, blob_id, obj, false).unwrap();
    assert_eq!(
        net.state.blob_object(&obj).unwrap().owner,
        b.address(),
        "certifying does not change the owner"
    );
    // Expired: the object still exists and may change hands.
    net.tick_to_epoch(3);
    assert!(matches!(net.status(&blob_id), BlobStatus::Expired { .. }));
    transfer(&mut net, &b, obj, &a).unwrap();
    assert_eq!(net.state.blob_object(&obj).unwrap().owner, a.address());
    // Transferring to oneself is allowed (a no-op apart from the event).
    transfer(&mut net, &a, obj, &a).unwrap();
    assert_eq!(net.state.blob_object(&obj).unwrap().owner, a.address());
}
