//! Intent-prefixed protocol messages, byte-compatible with Walrus.
//!
//! Every message is `intent type (u8) ‖ intent version (u8, 0) ‖ app id (u8, 3) ‖ epoch (u32
//! little-endian) ‖ BCS(body)`. The intent type ties the bytes to one kind of body, so a signature
//! over one kind of message can never be replayed as another.
//!
//! | intent | body                                   | total length      |
//! |--------|----------------------------------------|-------------------|
//! | 0      | owner address (32) ‖ BLS public key (48) | 87              |
//! | 1      | blob ID (32) ‖ persistence (1 or 33)   | 40 or 72          |
//! | 2      | blob ID (32)                           | 39                |
//! | 3      | sync-shard request (`V1` tag ‖ 47)     | 55                |
//! | 4      | audit answer (`V1` tag ‖ …, see [`crate::audit`]) | variable (Floe only) |

use std::fmt::Debug;

use floe_core::{BlobId, Epoch, ObjectId, ShardIndex, SliverType};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys::ProtocolPublicKey;

/// The only intent version defined.
pub const INTENT_VERSION: u8 = 0;
/// The app ID of the storage protocol.
pub const STORAGE_APP_ID: u8 = 3;
/// Length of the fixed message header: three intent bytes and the epoch.
pub const MESSAGE_HEADER_LENGTH: usize = 7;

/// The kinds of protocol message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum IntentType {
    /// A proof that the signer holds the secret key of a public key (key registration).
    ProofOfPossession = 0,
    /// A storage node confirms it stores its slivers of a blob.
    StorageConfirmation = 1,
    /// A storage node attests that a blob ID is inconsistently encoded.
    InvalidBlobId = 2,
    /// A storage node asks another for slivers of a shard (node-to-node only).
    SyncShard = 3,
    /// A storage node answers a possession audit (Floe's extension; not a Walrus intent).
    AuditAnswer = 4,
}

impl IntentType {
    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// Parse the wire byte; `None` for unknown types.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::ProofOfPossession),
            1 => Some(Self::StorageConfirmation),
            2 => Some(Self::InvalidBlobId),
            3 => Some(Self::SyncShard),
            4 => Some(Self::AuditAnswer),
            _ => None,
        }
    }
}

/// The three-byte prefix of every protocol message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Intent {
    /// What kind of message follows.
    pub intent_type: IntentType,
    /// Always [`INTENT_VERSION`].
    pub version: u8,
    /// Always [`STORAGE_APP_ID`].
    pub app_id: u8,
}

impl Intent {
    /// The storage-app intent of the given type.
    pub const fn storage(intent_type: IntentType) -> Self {
        Self {
            intent_type,
            version: INTENT_VERSION,
            app_id: STORAGE_APP_ID,
        }
    }

    /// The three wire bytes.
    pub fn to_bytes(self) -> [u8; 3] {
        [self.intent_type.to_byte(), self.version, self.app_id]
    }
}

/// Errors from parsing protocol-message bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Fewer bytes than the 7-byte header.
    #[error("message is {len} bytes, shorter than the {MESSAGE_HEADER_LENGTH}-byte header")]
    TooShort {
        /// The length given.
        len: usize,
    },
    /// The intent type byte is not a known type.
    #[error("unknown intent type {0}")]
    UnknownIntent(u8),
    /// The intent type is known but not the one expected.
    #[error("wrong intent type: expected {expected:?}, got {actual:?}")]
    WrongIntent {
        /// The intent the caller asked for.
        expected: IntentType,
        /// The intent found in the message.
        actual: IntentType,
    },
    /// The intent version is not [`INTENT_VERSION`].
    #[error("unsupported intent version {0} (expected {INTENT_VERSION})")]
    UnsupportedVersion(u8),
    /// The app ID is not [`STORAGE_APP_ID`].
    #[error("wrong app ID {0} (expected {STORAGE_APP_ID})")]
    WrongAppId(u8),
    /// The body ended before it was complete.
    #[error("message body is truncated")]
    TruncatedBody,
    /// Bytes remain after a complete body.
    #[error("trailing bytes after the message body")]
    TrailingBytes,
    /// The body is malformed (for example an unknown enum tag).
    #[error("malformed message body: {0}")]
    MalformedBody(String),
}

pub(crate) mod sealed {
    /// Restricts [`super::MessageBody`] to the bodies defined in this crate.
    pub trait Sealed {}
}

/// A message body with a fixed intent type. Sealed: only the bodies of this crate implement it,
/// all of which have infallible BCS encodings.
pub trait MessageBody:
    sealed::Sealed + Serialize + DeserializeOwned + Clone + PartialEq + Debug
{
    /// The intent type of messages carrying this body.
    const INTENT: IntentType;
}

/// A protocol message: an epoch and a typed body, with the intent implied by the body type.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProtocolMessage<T> {
    /// The epoch in which the message was produced.
    pub epoch: Epoch,
    /// The message contents.
    pub body: T,
}

impl<T: MessageBody> ProtocolMessage<T> {
    /// A message of `body` for `epoch`.
    pub fn new(epoch: Epoch, body: T) -> Self {
        Self { epoch, body }
    }

    /// The intent of this message type.
    pub fn intent() -> Intent {
        Intent::storage(T::INTENT)
    }

    /// The exact bytes that are signed: intent ‖ epoch (LE) ‖ BCS(body).
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = bcs::to_bytes(&self.body)
            .expect("the sealed message bodies contain only BCS-encodable fixed-layout fields");
        let mut out = Vec::with_capacity(MESSAGE_HEADER_LENGTH + body.len());
        out.extend_from_slice(&Self::intent().to_bytes());
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parse message bytes, checking the intent type, version and app ID and that the body is
    /// exactly one complete `T`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        let (intent, epoch, body) = parse_header(bytes)?;
        if intent != T::INTENT {
            return Err(MessageError::WrongIntent {
                expected: T::INTENT,
                actual: intent,
            });
        }
        Ok(Self {
            epoch,
            body: decode_body(body)?,
        })
    }
}

/// Split message bytes into a validated intent type, the epoch and the body bytes.
pub fn parse_header(bytes: &[u8]) -> Result<(IntentType, Epoch, &[u8]), MessageError> {
    let Some((header, body)) = bytes.split_first_chunk::<MESSAGE_HEADER_LENGTH>() else {
        return Err(MessageError::TooShort { len: bytes.len() });
    };
    let intent = IntentType::from_byte(header[0]).ok_or(MessageError::UnknownIntent(header[0]))?;
    if header[1] != INTENT_VERSION {
        return Err(MessageError::UnsupportedVersion(header[1]));
    }
    if header[2] != STORAGE_APP_ID {
        return Err(MessageError::WrongAppId(header[2]));
    }
    let epoch = Epoch::from_le_bytes([header[3], header[4], header[5], header[6]]);
    Ok((intent, epoch, body))
}

fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, MessageError> {
    bcs::from_bytes(body).map_err(|e| match e {
        bcs::Error::Eof => MessageError::TruncatedBody,
        bcs::Error::RemainingInput => MessageError::TrailingBytes,
        other => MessageError::MalformedBody(other.to_string()),
    })
}

/// Any protocol message, parsed according to its intent byte.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ParsedMessage {
    /// Intent 0.
    ProofOfPossession(ProtocolMessage<ProofOfPossessionBody>),
    /// Intent 1.
    StorageConfirmation(ProtocolMessage<ConfirmationBody>),
    /// Intent 2.
    InvalidBlobId(ProtocolMessage<InvalidBlobIdBody>),
    /// Intent 3.
    SyncShard(ProtocolMessage<SyncShardRequest>),
    /// Intent 4.
    AuditAnswer(ProtocolMessage<crate::audit::AuditAnswer>),
}

impl ParsedMessage {
    /// Parse message bytes of any known intent.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        let (intent, epoch, body) = parse_header(bytes)?;
        Ok(match intent {
            IntentType::ProofOfPossession => {
                Self::ProofOfPossession(ProtocolMessage::new(epoch, decode_body(body)?))
            }
            IntentType::StorageConfirmation => {
                Self::StorageConfirmation(ProtocolMessage::new(epoch, decode_body(body)?))
            }
            IntentType::InvalidBlobId => {
                Self::InvalidBlobId(ProtocolMessage::new(epoch, decode_body(body)?))
            }
            IntentType::SyncShard => {
                Self::SyncShard(ProtocolMessage::new(epoch, decode_body(body)?))
            }
            IntentType::AuditAnswer => {
                Self::AuditAnswer(ProtocolMessage::new(epoch, decode_body(body)?))
            }
        })
    }

    /// The intent type of the message.
    pub fn intent_type(&self) -> IntentType {
        match self {
            Self::ProofOfPossession(_) => IntentType::ProofOfPossession,
            Self::StorageConfirmation(_) => IntentType::StorageConfirmation,
            Self::InvalidBlobId(_) => IntentType::InvalidBlobId,
            Self::SyncShard(_) => IntentType::SyncShard,
            Self::AuditAnswer(_) => IntentType::AuditAnswer,
        }
    }

    /// The epoch of the message.
    pub fn epoch(&self) -> Epoch {
        match self {
            Self::ProofOfPossession(m) => m.epoch,
            Self::StorageConfirmation(m) => m.epoch,
            Self::InvalidBlobId(m) => m.epoch,
            Self::SyncShard(m) => m.epoch,
            Self::AuditAnswer(m) => m.epoch,
        }
    }
}

/// Whether a blob can be deleted before its storage expires. BCS: tag `0` for permanent, tag `1`
/// followed by the 32-byte blob object ID for deletable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum BlobPersistenceType {
    /// The blob stays until its storage expires.
    Permanent,
    /// The blob may be deleted by the owner of the blob object.
    Deletable {
        /// The ledger object registering the blob.
        object_id: ObjectId,
    },
}

/// Body of a storage confirmation (intent 1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct ConfirmationBody {
    /// The confirmed blob.
    pub blob_id: BlobId,
    /// How the confirmed blob is registered.
    pub persistence: BlobPersistenceType,
}

impl sealed::Sealed for ConfirmationBody {}
impl MessageBody for ConfirmationBody {
    const INTENT: IntentType = IntentType::StorageConfirmation;
}

/// A storage confirmation in flat form; converts to and from
/// `ProtocolMessage<ConfirmationBody>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Confirmation {
    /// The epoch of the confirmation.
    pub epoch: Epoch,
    /// The confirmed blob.
    pub blob_id: BlobId,
    /// How the confirmed blob is registered.
    pub persistence: BlobPersistenceType,
}

impl Confirmation {
    /// A confirmation of `blob_id` in `epoch`.
    pub fn new(epoch: Epoch, blob_id: BlobId, persistence: BlobPersistenceType) -> Self {
        Self {
            epoch,
            blob_id,
            persistence,
        }
    }

    /// As a protocol message.
    pub fn to_message(&self) -> ProtocolMessage<ConfirmationBody> {
        ProtocolMessage::new(
            self.epoch,
            ConfirmationBody {
                blob_id: self.blob_id,
                persistence: self.persistence,
            },
        )
    }

    /// The signed bytes (40 bytes when permanent, 72 when deletable).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_message().to_bytes()
    }

    /// Parse confirmation bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        ProtocolMessage::<ConfirmationBody>::from_bytes(bytes).map(Self::from)
    }
}

impl From<ProtocolMessage<ConfirmationBody>> for Confirmation {
    fn from(message: ProtocolMessage<ConfirmationBody>) -> Self {
        Self::new(
            message.epoch,
            message.body.blob_id,
            message.body.persistence,
        )
    }
}

impl From<Confirmation> for ProtocolMessage<ConfirmationBody> {
    fn from(confirmation: Confirmation) -> Self {
        confirmation.to_message()
    }
}

/// Body of an invalid-blob-ID attestation (intent 2): the 32 bytes of the blob ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct InvalidBlobIdBody {
    /// The blob found to be inconsistently encoded.
    pub blob_id: BlobId,
}

impl sealed::Sealed for InvalidBlobIdBody {}
impl MessageBody for InvalidBlobIdBody {
    const INTENT: IntentType = IntentType::InvalidBlobId;
}

/// Body of a proof of possession (intent 0): the owner's 32-byte ledger address followed by the
/// 48 raw bytes of the BLS public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct ProofOfPossessionBody {
    /// The ledger address of the key's owner.
    pub owner: [u8; 32],
    /// The public key whose secret key is proven.
    pub public_key: ProtocolPublicKey,
}

impl sealed::Sealed for ProofOfPossessionBody {}
impl MessageBody for ProofOfPossessionBody {
    const INTENT: IntentType = IntentType::ProofOfPossession;
}

/// A versioned request for slivers of a shard (intent 3). BCS: variant tag, then the fields.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum SyncShardRequest {
    /// Version 1 (tag 0).
    V1(SyncShardRequestV1),
}

/// Version 1 of [`SyncShardRequest`]: 2 + 1 + 32 + 8 + 4 bytes in BCS.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct SyncShardRequestV1 {
    /// The shard to sync (u16 LE).
    pub shard_index: ShardIndex,
    /// Which sliver axis to fetch (one byte: primary 0, secondary 1).
    pub sliver_type: SliverType,
    /// Return slivers of blobs starting at this ID (32 bytes).
    pub starting_blob_id: BlobId,
    /// At most this many slivers (u64 LE).
    pub sliver_count: u64,
    /// The epoch of the requester (u32 LE).
    pub epoch: Epoch,
}

impl sealed::Sealed for SyncShardRequest {}
impl MessageBody for SyncShardRequest {
    const INTENT: IntentType = IntentType::SyncShard;
}

/// A proof-of-possession message.
pub type ProofOfPossessionMessage = ProtocolMessage<ProofOfPossessionBody>;
/// A storage-confirmation message.
pub type ConfirmationMessage = ProtocolMessage<ConfirmationBody>;
/// An invalid-blob-ID message.
pub type InvalidBlobIdMessage = ProtocolMessage<InvalidBlobIdBody>;
/// A sync-shard request message.
pub type SyncShardMessage = ProtocolMessage<SyncShardRequest>;
