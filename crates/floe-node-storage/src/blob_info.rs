//! What a storage node knows about a blob from ledger events.
//!
//! A blob ID can be registered several times on the ledger (each registration is its own ledger
//! object with its own lifetime, and may be deletable or permanent). [`BlobInfo`] keeps one
//! [`ObjectInfo`] per registration plus the invalid-blob marker, and answers the lifetime
//! questions the node asks (may I accept slivers, is it certified, may I delete the data).
//!
//! Lifetimes follow the ledger: a registration with `end_epoch = e` is live in epochs `< e` and
//! expired from epoch `e` on. A blob marked invalid (an `InvalidBlobId` event) is neither
//! registered nor certified, whatever its registrations say.

use std::collections::BTreeMap;

use floe_core::{Epoch, ObjectId, TxDigest};
use serde::{Deserialize, Serialize};

/// The ledger state of one registration (one ledger blob object) of a blob ID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// First epoch in which the registration has expired (exclusive end of its lifetime).
    pub end_epoch: Epoch,
    /// Whether the owner may delete the registration before `end_epoch`.
    pub deletable: bool,
    /// Epoch of the certification event, if the registration was certified.
    pub certified_epoch: Option<Epoch>,
    /// Whether the registration was deleted by its owner.
    pub deleted: bool,
    /// Ledger event index of the registration event.
    pub registered_event: u64,
    /// Ledger event index of the certification event.
    pub certified_event: Option<u64>,
    /// Digest of the ledger entry that emitted the registration event (all zeros when it is
    /// unknown: infos stored by builds before entry digests existed).
    pub registered_tx: TxDigest,
    /// Digest of the ledger entry that emitted the certification event.
    pub certified_tx: Option<TxDigest>,
}

impl ObjectInfo {
    /// Not deleted and not expired in `epoch`.
    pub fn is_live(&self, epoch: Epoch) -> bool {
        !self.deleted && epoch < self.end_epoch
    }

    /// Live in `epoch` and certified in `epoch` or earlier.
    pub fn is_certified_live(&self, epoch: Epoch) -> bool {
        self.is_live(epoch) && self.certified_epoch.is_some_and(|c| c <= epoch)
    }
}

/// What the node knows about a blob ID from ledger events.
///
/// Stored versioned on disk (BCS of a private `enum StoredBlobInfo { V1(…), V2(BlobInfo) }`;
/// V1 lacks the entry digests, which read back as all zeros).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobInfo {
    /// One entry per ledger registration of this blob ID.
    pub objects: BTreeMap<ObjectId, ObjectInfo>,
    /// Ledger event index of the `InvalidBlobId` event, if the blob was proven inconsistent.
    pub invalid_event: Option<u64>,
    /// Digest of the ledger entry that emitted the `InvalidBlobId` event.
    pub invalid_tx: Option<TxDigest>,
}

impl BlobInfo {
    /// The blob was marked invalid on the ledger.
    pub fn is_invalid(&self) -> bool {
        self.invalid_event.is_some()
    }

    fn live_objects(&self, epoch: Epoch) -> impl Iterator<Item = &ObjectInfo> {
        self.objects
            .values()
            .filter(move |o| !self.is_invalid() && o.is_live(epoch))
    }

    /// At least one registration is live in `epoch` and the blob is not invalid.
    pub fn is_registered_live(&self, epoch: Epoch) -> bool {
        self.live_objects(epoch).next().is_some()
    }

    /// At least one live registration is certified (in `epoch` or earlier) and the blob is not
    /// invalid.
    pub fn is_certified_live(&self, epoch: Epoch) -> bool {
        self.live_objects(epoch)
            .any(|o| o.certified_epoch.is_some_and(|c| c <= epoch))
    }

    /// `object` is a live, deletable registration of this (valid) blob in `epoch`.
    pub fn live_deletable(&self, object: &ObjectId, epoch: Epoch) -> bool {
        !self.is_invalid()
            && self
                .objects
                .get(object)
                .is_some_and(|o| o.deletable && o.is_live(epoch))
    }

    /// The node may delete the blob's metadata and slivers in `epoch`: the blob is invalid, or
    /// no registration is live any more (all deleted or expired).
    pub fn can_delete_data(&self, epoch: Epoch) -> bool {
        self.is_invalid() || !self.is_registered_live(epoch)
    }

    /// The latest end epoch among the certified live registrations: the blob stays certified
    /// until then (exclusive). `None` if it is not certified live in `epoch`.
    pub fn certified_end_epoch(&self, epoch: Epoch) -> Option<Epoch> {
        self.live_objects(epoch)
            .filter(|o| o.certified_epoch.is_some_and(|c| c <= epoch))
            .map(|o| o.end_epoch)
            .max()
    }

    /// The earliest certification epoch among the registrations that are not deleted (expiry is
    /// not considered: there is no epoch argument). `None` if none was certified.
    pub fn initial_certified_epoch(&self) -> Option<Epoch> {
        self.objects
            .values()
            .filter(|o| !o.deleted)
            .filter_map(|o| o.certified_epoch)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(end: Epoch, deletable: bool, certified: Option<Epoch>) -> ObjectInfo {
        ObjectInfo {
            end_epoch: end,
            deletable,
            certified_epoch: certified,
            deleted: false,
            registered_event: 1,
            certified_event: certified.map(|_| 2),
            registered_tx: TxDigest([1; 32]),
            certified_tx: certified.map(|_| TxDigest([2; 32])),
        }
    }

    fn id(b: u8) -> ObjectId {
        ObjectId([b; 32])
    }

    #[test]
    fn empty_info_is_dead() {
        let info = BlobInfo::default();
        assert!(!info.is_registered_live(0));
        assert!(!info.is_certified_live(0));
        assert!(info.can_delete_data(0));
        assert_eq!(info.certified_end_epoch(0), None);
        assert_eq!(info.initial_certified_epoch(), None);
    }

    #[test]
    fn lifetimes_are_end_exclusive() {
        let mut info = BlobInfo::default();
        info.objects.insert(id(1), obj(5, false, Some(2)));
        assert!(info.is_registered_live(4));
        assert!(!info.is_registered_live(5));
        assert!(!info.is_certified_live(1), "certified only from epoch 2");
        assert!(info.is_certified_live(2));
        assert!(info.is_certified_live(4));
        assert!(!info.is_certified_live(5));
        assert!(!info.can_delete_data(4));
        assert!(info.can_delete_data(5));
        assert_eq!(info.certified_end_epoch(3), Some(5));
        assert_eq!(info.certified_end_epoch(5), None);
    }

    #[test]
    fn several_registrations() {
        let mut info = BlobInfo::default();
        info.objects.insert(id(1), obj(10, true, Some(3)));
        info.objects.insert(id(2), obj(20, false, None));
        info.objects.insert(id(3), obj(15, true, Some(4)));
        assert_eq!(info.certified_end_epoch(5), Some(15));
        assert_eq!(info.initial_certified_epoch(), Some(3));
        assert!(info.live_deletable(&id(1), 5));
        assert!(!info.live_deletable(&id(2), 5), "permanent");
        assert!(!info.live_deletable(&id(9), 5), "unknown object");

        info.objects.get_mut(&id(1)).unwrap().deleted = true;
        assert!(!info.live_deletable(&id(1), 5));
        assert_eq!(info.initial_certified_epoch(), Some(4));
        info.objects.get_mut(&id(3)).unwrap().deleted = true;
        assert!(!info.is_certified_live(5));
        assert!(info.is_registered_live(5), "the permanent one remains");
        assert!(!info.can_delete_data(19));
        assert!(info.can_delete_data(20));
    }

    #[test]
    fn invalid_overrides_everything() {
        let mut info = BlobInfo::default();
        info.objects.insert(id(1), obj(10, true, Some(1)));
        info.invalid_event = Some(42);
        assert!(!info.is_registered_live(2));
        assert!(!info.is_certified_live(2));
        assert!(!info.live_deletable(&id(1), 2));
        assert!(info.can_delete_data(2));
        assert_eq!(info.certified_end_epoch(2), None);
    }
}
