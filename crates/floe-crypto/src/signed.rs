//! Signed protocol messages and proofs of possession.

use floe_core::{BlobId, Epoch};
use serde::{Deserialize, Serialize};

use crate::keys::{ProtocolKeyPair, ProtocolPublicKey, ProtocolSignature};
use crate::messages::{
    BlobPersistenceType, Confirmation, ConfirmationBody, InvalidBlobIdBody, MessageBody,
    MessageError, ProofOfPossessionBody, ProtocolMessage, SyncShardRequest,
};

/// Errors from verifying a signed message against expectations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerificationError {
    /// The signed bytes are not a valid message of the expected kind.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The message is for another epoch.
    #[error("epoch mismatch: expected {expected}, the message has {actual}")]
    EpochMismatch {
        /// The epoch the caller expected.
        expected: Epoch,
        /// The epoch in the message.
        actual: Epoch,
    },
    /// The message body differs from what the caller expected.
    #[error("message contents differ from the expected contents")]
    ContentMismatch,
    /// The signature does not verify under the public key.
    #[error("signature does not verify under the given public key")]
    InvalidSignature,
}

/// A protocol message's bytes with one signer's signature over exactly those bytes.
///
/// Serde: JSON `{"serializedMessage":"<base64>","signature":"<base64>"}`; BCS is the plain
/// struct (ULEB128 length ‖ message bytes ‖ 96 signature bytes).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedMessage {
    /// The signed message bytes (see [`ProtocolMessage::to_bytes`]).
    #[serde(with = "crate::serde_util::base64_vec")]
    pub serialized_message: Vec<u8>,
    /// The signature over `serialized_message`.
    pub signature: ProtocolSignature,
}

impl SignedMessage {
    /// Serialize `message` and sign it with `keypair`.
    pub fn sign<T: MessageBody>(keypair: &ProtocolKeyPair, message: &ProtocolMessage<T>) -> Self {
        let serialized_message = message.to_bytes();
        let signature = keypair.sign(&serialized_message);
        Self {
            serialized_message,
            signature,
        }
    }

    /// Check only the signature over the raw bytes.
    pub fn verify_signature(
        &self,
        public_key: &ProtocolPublicKey,
    ) -> Result<(), VerificationError> {
        public_key
            .verify(&self.serialized_message, &self.signature)
            .map_err(|_| VerificationError::InvalidSignature)
    }

    /// Parse the message as a `T` message and check the signature.
    pub fn verify<T: MessageBody>(
        &self,
        public_key: &ProtocolPublicKey,
    ) -> Result<ProtocolMessage<T>, VerificationError> {
        let message = ProtocolMessage::<T>::from_bytes(&self.serialized_message)?;
        self.verify_signature(public_key)?;
        Ok(message)
    }

    /// Parse the message as a `T` message, check that it is for `epoch` with exactly `body`, and
    /// check the signature (last, as the costliest step).
    pub fn verify_contents<T: MessageBody>(
        &self,
        public_key: &ProtocolPublicKey,
        epoch: Epoch,
        body: &T,
    ) -> Result<ProtocolMessage<T>, VerificationError> {
        let message = ProtocolMessage::<T>::from_bytes(&self.serialized_message)?;
        if message.epoch != epoch {
            return Err(VerificationError::EpochMismatch {
                expected: epoch,
                actual: message.epoch,
            });
        }
        if message.body != *body {
            return Err(VerificationError::ContentMismatch);
        }
        self.verify_signature(public_key)?;
        Ok(message)
    }

    /// Verify a storage confirmation of `blob_id` with `persistence` for `epoch`.
    pub fn verify_confirmation(
        &self,
        public_key: &ProtocolPublicKey,
        epoch: Epoch,
        blob_id: &BlobId,
        persistence: &BlobPersistenceType,
    ) -> Result<Confirmation, VerificationError> {
        let body = ConfirmationBody {
            blob_id: *blob_id,
            persistence: *persistence,
        };
        self.verify_contents(public_key, epoch, &body)
            .map(Confirmation::from)
    }

    /// Verify an invalid-blob-ID attestation of `blob_id` for `epoch`.
    pub fn verify_invalid_blob_id(
        &self,
        public_key: &ProtocolPublicKey,
        epoch: Epoch,
        blob_id: &BlobId,
    ) -> Result<ProtocolMessage<InvalidBlobIdBody>, VerificationError> {
        self.verify_contents(public_key, epoch, &InvalidBlobIdBody { blob_id: *blob_id })
    }

    /// Verify a sync-shard request signed for `epoch`, returning the request.
    pub fn verify_sync_shard_request(
        &self,
        public_key: &ProtocolPublicKey,
        epoch: Epoch,
    ) -> Result<SyncShardRequest, VerificationError> {
        let message = ProtocolMessage::<SyncShardRequest>::from_bytes(&self.serialized_message)?;
        if message.epoch != epoch {
            return Err(VerificationError::EpochMismatch {
                expected: epoch,
                actual: message.epoch,
            });
        }
        self.verify_signature(public_key)?;
        Ok(message.body)
    }
}

/// A proof that the holder of a BLS secret key binds it to a ledger address in an epoch: a
/// signature over the 87-byte intent-0 message `[0, 0, 3] ‖ epoch ‖ owner ‖ public key`.
///
/// Certificates aggregate signatures over one message, which is only sound if every
/// aggregated key was shown with such a proof when it was registered (this rules out rogue-key
/// attacks).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProofOfPossession {
    /// The signature over the proof-of-possession message.
    pub signature: ProtocolSignature,
}

impl ProofOfPossession {
    /// The message that is signed for `public_key`, `epoch` and `owner`.
    pub fn message(
        public_key: &ProtocolPublicKey,
        epoch: Epoch,
        owner: &[u8; 32],
    ) -> ProtocolMessage<ProofOfPossessionBody> {
        ProtocolMessage::new(
            epoch,
            ProofOfPossessionBody {
                owner: *owner,
                public_key: *public_key,
            },
        )
    }

    /// Prove possession of `keypair`'s secret key for `owner` in `epoch`.
    pub fn create(keypair: &ProtocolKeyPair, epoch: Epoch, owner: &[u8; 32]) -> Self {
        let message = Self::message(keypair.public_key(), epoch, owner);
        Self {
            signature: keypair.sign(&message.to_bytes()),
        }
    }

    /// Check the proof for `public_key`, `epoch` and `owner`.
    pub fn verify(
        &self,
        public_key: &ProtocolPublicKey,
        epoch: Epoch,
        owner: &[u8; 32],
    ) -> Result<(), VerificationError> {
        let message = Self::message(public_key, epoch, owner);
        public_key
            .verify(&message.to_bytes(), &self.signature)
            .map_err(|_| VerificationError::InvalidSignature)
    }
}
