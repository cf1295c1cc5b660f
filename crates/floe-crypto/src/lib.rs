//! Floe's protocol cryptography, byte-compatible with Walrus:
//!
//! * [`keys`]: BLS12-381 min-pk key pairs, public keys (48-byte G1) and signatures (96-byte G2);
//! * [`messages`]: intent-prefixed protocol messages (storage confirmations, invalid-blob-ID
//!   attestations, proofs of possession, sync-shard requests) with exact byte layouts;
//! * [`signed`]: single-signer [`SignedMessage`]s and [`ProofOfPossession`];
//! * [`audit`]: a node's signed answer to a possession audit (intent 4, Floe only);
//! * [`network`]: the encoding of a node's network (TLS) public key, pinned by clients;
//! * [`certificate`]: aggregate [`Certificate`]s checked against a committee's shard weights.
//!
//! No I/O. Randomness is always supplied by the caller.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod certificate;
pub mod keys;
pub mod messages;
pub mod network;
mod serde_util;
pub mod signed;

#[cfg(test)]
mod tests;

pub use certificate::{
    Certificate, CertificateError, CommitteeMember, CommitteeWeights, VerifiedPartials,
};
pub use keys::{
    BLS_DST, BLS_SCHEME_FLAG, KeyError, PUBLIC_KEY_LENGTH, ProtocolKeyPair, ProtocolPublicKey,
    ProtocolSignature, SECRET_KEY_LENGTH, SIGNATURE_LENGTH, SignatureError,
};
pub use messages::{
    BlobPersistenceType, Confirmation, ConfirmationBody, ConfirmationMessage, INTENT_VERSION,
    Intent, IntentType, InvalidBlobIdBody, InvalidBlobIdMessage, MESSAGE_HEADER_LENGTH,
    MessageBody, MessageError, ParsedMessage, ProofOfPossessionBody, ProofOfPossessionMessage,
    ProtocolMessage, STORAGE_APP_ID, SyncShardMessage, SyncShardRequest, SyncShardRequestV1,
};
pub use network::{NETWORK_PUBLIC_KEY_LENGTH, NetworkKeyError, NetworkPublicKey};
pub use signed::{ProofOfPossession, SignedMessage, VerificationError};
