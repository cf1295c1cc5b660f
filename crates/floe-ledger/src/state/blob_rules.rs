//! The rules of blob objects: registration, certification, invalidation, deletion, extension
//! and transfer. Like every rule, each checks everything before its first mutation.

use floe_core::metadata::derive_blob_id;
use floe_core::{BlobId, Epoch, ObjectId};
use floe_crypto::{
    BlobPersistenceType, Certificate, Confirmation, InvalidBlobIdMessage, ProtocolMessage,
};

use super::{Effects, LedgerState, ObjectEvents, Threshold};
use crate::error::TxError;
use crate::event::EventKind;
use crate::types::{Address, BlobObject, StorageResource};

impl LedgerState {
    pub(super) fn owned_live_blob(
        &self,
        id: &ObjectId,
        sender: &Address,
    ) -> Result<&BlobObject, TxError> {
        let blob = self.blobs.get(id).ok_or(TxError::NoSuchObject(*id))?;
        if let Some(shared) = self.shared_of.get(id) {
            return Err(TxError::SharedBlob {
                blob: *id,
                shared: *shared,
            });
        }
        if &blob.owner != sender {
            return Err(TxError::NotOwner(*id));
        }
        self.check_live(blob)?;
        Ok(blob)
    }

    /// Neither deleted nor expired in the current epoch.
    pub(super) fn check_live(&self, blob: &BlobObject) -> Result<(), TxError> {
        if blob.deleted {
            return Err(TxError::Deleted(blob.id));
        }
        if self.epoch >= blob.end_epoch() {
            return Err(TxError::Expired {
                end: blob.end_epoch(),
                epoch: self.epoch,
            });
        }
        Ok(())
    }

    pub(super) fn check_blob(
        &self,
        blob_id: BlobId,
        root_hash: &[u8; 32],
        size: u64,
        encoding_type: floe_core::EncodingType,
        storage_size: u64,
    ) -> Result<(), TxError> {
        let encoded = self
            .encoding_config()
            .encoded_length(size)
            .map_err(|e| TxError::BlobTooLarge(e.to_string()))?;
        if encoded > storage_size {
            return Err(TxError::StorageTooSmall {
                needed: encoded,
                available: storage_size,
            });
        }
        let derived = derive_blob_id(encoding_type, size, root_hash);
        if derived != blob_id {
            return Err(TxError::BlobIdMismatch {
                claimed: blob_id,
                derived,
            });
        }
        if self
            .by_blob_id
            .get(&blob_id)
            .is_some_and(|r| r.invalid_event.is_some())
        {
            return Err(TxError::BlobInvalid(blob_id));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn register(
        &mut self,
        owner: Address,
        blob_id: BlobId,
        size: u64,
        encoding_type: floe_core::EncodingType,
        deletable: bool,
        storage: StorageResource,
        out: &mut Effects,
    ) {
        let id = out.new_object_id();
        let end_epoch = storage.end_epoch;
        let event = out.emit(EventKind::BlobRegistered {
            blob_id,
            object_id: id,
            owner,
            size,
            end_epoch,
            deletable,
        });
        self.blobs.insert(
            id,
            BlobObject {
                id,
                owner,
                blob_id,
                size,
                encoding_type,
                registered_epoch: self.epoch,
                certified_epoch: None,
                storage,
                deletable,
                deleted: false,
                attributes: Default::default(),
            },
        );
        self.object_events.insert(
            id,
            ObjectEvents {
                registered: event,
                certified: None,
                last: event,
            },
        );
        self.by_blob_id.get_or_default(blob_id).objects.push(id);
    }

    pub(super) fn certify(
        &mut self,
        id: &ObjectId,
        certificate: &Certificate,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        let blob = self.blobs.get(id).ok_or(TxError::NoSuchObject(*id))?;
        if blob.deleted {
            return Err(TxError::Deleted(*id));
        }
        if self.epoch >= blob.end_epoch() {
            return Err(TxError::Expired {
                end: blob.end_epoch(),
                epoch: self.epoch,
            });
        }
        if blob.certified_epoch.is_some() {
            return Err(TxError::AlreadyCertified(*id));
        }
        if self
            .by_blob_id
            .get(&blob.blob_id)
            .is_some_and(|r| r.invalid_event.is_some())
        {
            return Err(TxError::BlobInvalid(blob.blob_id));
        }
        let message = Confirmation::from_bytes(&certificate.serialized_message)
            .map_err(|e| TxError::BadCertificate(e.to_string()))?;
        if message.epoch != self.epoch {
            return Err(TxError::WrongEpoch {
                message: message.epoch,
                current: self.epoch,
            });
        }
        let expected = if blob.deletable {
            BlobPersistenceType::Deletable { object_id: *id }
        } else {
            BlobPersistenceType::Permanent
        };
        if message.blob_id != blob.blob_id || message.persistence != expected {
            return Err(TxError::BadCertificate(format!(
                "the certificate confirms {} ({:?}), but the object is {} ({:?})",
                message.blob_id, message.persistence, blob.blob_id, expected
            )));
        }
        let (blob_id, end_epoch, deletable) = (blob.blob_id, blob.end_epoch(), blob.deletable);
        self.check_certificate(certificate, Threshold::Quorum)?;
        let event = out.emit(EventKind::BlobCertified {
            blob_id,
            object_id: *id,
            end_epoch,
            deletable,
            is_extension: false,
        });
        self.blobs.get_mut(id).expect("checked").certified_epoch = Some(self.epoch);
        let ev = self.object_events.get_or_default(*id);
        ev.certified = Some(event);
        ev.last = event;
        Ok(())
    }

    /// Mark a blob ID invalid with f + 1 weight of attestations of its inconsistency.
    pub(super) fn invalidate(
        &mut self,
        certificate: &Certificate,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        let message: InvalidBlobIdMessage =
            ProtocolMessage::from_bytes(&certificate.serialized_message)
                .map_err(|e| TxError::BadCertificate(e.to_string()))?;
        if message.epoch != self.epoch {
            return Err(TxError::WrongEpoch {
                message: message.epoch,
                current: self.epoch,
            });
        }
        let blob_id = message.body.blob_id;
        if self
            .by_blob_id
            .get(&blob_id)
            .is_some_and(|r| r.invalid_event.is_some())
        {
            return Err(TxError::BlobInvalid(blob_id));
        }
        self.check_certificate(certificate, Threshold::Validity)?;
        let event = out.emit(EventKind::InvalidBlobId { blob_id });
        self.by_blob_id.get_or_default(blob_id).invalid_event = Some(event);
        Ok(())
    }

    /// Delete a live deletable blob object (owner only); its storage returns to the owner.
    pub(super) fn delete_blob(
        &mut self,
        sender: &Address,
        id: &ObjectId,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        let blob = self.owned_live_blob(id, sender)?;
        if !blob.deletable {
            return Err(TxError::NotDeletable(*id));
        }
        let (blob_id, end_epoch, was_certified) = (
            blob.blob_id,
            blob.end_epoch(),
            blob.certified_epoch.is_some(),
        );
        let storage = blob.storage.clone();
        let event = out.emit(EventKind::BlobDeleted {
            blob_id,
            object_id: *id,
            end_epoch,
            was_certified,
        });
        self.blobs.get_mut(id).expect("checked").deleted = true;
        self.object_events.get_or_default(*id).last = event;
        self.storage.insert(storage.id, storage);
        Ok(())
    }

    /// Extend a live certified blob object (owner only) to `new_end_epoch`.
    pub(super) fn extend_blob(
        &mut self,
        sender: &Address,
        id: &ObjectId,
        new_end_epoch: Epoch,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        self.owned_live_blob(id, sender)?;
        self.extend_live_blob(id, new_end_epoch, out)
    }

    /// Extend a live blob object (who may do so is checked by the caller).
    pub(super) fn extend_live_blob(
        &mut self,
        id: &ObjectId,
        new_end_epoch: Epoch,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        let blob = self.blobs.get(id).ok_or(TxError::NoSuchObject(*id))?;
        if blob.certified_epoch.is_none() {
            return Err(TxError::NotCertified(*id));
        }
        if new_end_epoch <= blob.end_epoch() {
            return Err(TxError::NotAnExtension {
                end: blob.end_epoch(),
                requested: new_end_epoch,
            });
        }
        let size = blob.storage.storage_size;
        let res = self.check_reservation(size, blob.end_epoch(), new_end_epoch)?;
        self.reserve(&res, size);
        let blob = self.blobs.get_mut(id).expect("checked");
        blob.storage.end_epoch = new_end_epoch;
        let (blob_id, deletable) = (blob.blob_id, blob.deletable);
        let event = out.emit(EventKind::BlobCertified {
            blob_id,
            object_id: *id,
            end_epoch: new_end_epoch,
            deletable,
            is_extension: true,
        });
        let ev = self.object_events.get_or_default(*id);
        ev.certified = Some(event);
        ev.last = event;
        Ok(())
    }

    /// Give a blob object to `recipient` (owner only; not once deleted). The object keeps its
    /// ID, storage, lifetime and certification; only who may delete or extend it changes.
    /// Expired objects may move too: they only explain a blob's history.
    pub(super) fn transfer_blob(
        &mut self,
        sender: &Address,
        id: &ObjectId,
        recipient: Address,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        let blob = self.blobs.get(id).ok_or(TxError::NoSuchObject(*id))?;
        if let Some(shared) = self.shared_of.get(id) {
            return Err(TxError::SharedBlob {
                blob: *id,
                shared: *shared,
            });
        }
        if &blob.owner != sender {
            return Err(TxError::NotOwner(*id));
        }
        if blob.deleted {
            return Err(TxError::Deleted(*id));
        }
        // The status of the blob ID does not change, so no object event index moves.
        out.emit(EventKind::BlobTransferred {
            blob_id: blob.blob_id,
            object_id: *id,
            from: *sender,
            to: recipient,
        });
        let blob = self.blobs.get_mut(id).expect("checked");
        blob.owner = recipient;
        blob.storage.owner = recipient;
        Ok(())
    }
}
