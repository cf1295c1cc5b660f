//! Transactions, their Ed25519 signatures, and log entries.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use floe_core::{BlobId, EncodingType, Epoch, ObjectId, TxDigest};
use floe_crypto::{
    Certificate, NetworkPublicKey, ProofOfPossession, ProtocolPublicKey, ProtocolSignature,
};

use crate::challenge::ChallengeReport;
use serde::{Deserialize, Serialize};

use crate::types::{Address, NodeId};

/// Domain separator of transaction signatures.
const TX_SIGNING_DOMAIN: &[u8] = b"floe-ledger-tx-v1";

/// What a transaction asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum TxKind {
    /// Buy `encoded_size` bytes for `[current epoch, end_epoch)`.
    ReserveSpace { encoded_size: u64, end_epoch: Epoch },
    /// Register a blob into an owned, unused storage resource.
    #[serde(rename_all = "camelCase")]
    RegisterBlob {
        storage: ObjectId,
        blob_id: BlobId,
        root_hash: [u8; 32],
        size: u64,
        encoding_type: EncodingType,
        deletable: bool,
    },
    /// Reserve exactly the encoded size of the blob and register it, in one step.
    #[serde(rename_all = "camelCase")]
    ReserveAndRegister {
        end_epoch: Epoch,
        blob_id: BlobId,
        root_hash: [u8; 32],
        size: u64,
        encoding_type: EncodingType,
        deletable: bool,
    },
    /// Certify a registered blob with a quorum certificate over its confirmation.
    #[serde(rename_all = "camelCase")]
    CertifyBlob {
        blob_object: ObjectId,
        certificate: Certificate,
    },
    /// Mark a blob ID invalid with f+1 weight of invalid-blob attestations.
    InvalidateBlob { certificate: Certificate },
    /// Delete a deletable blob (owner only); its storage returns to the owner.
    #[serde(rename_all = "camelCase")]
    DeleteBlob { blob_object: ObjectId },
    /// Extend a certified blob's lifetime to `new_end_epoch` (owner only).
    #[serde(rename_all = "camelCase")]
    ExtendBlob {
        blob_object: ObjectId,
        new_end_epoch: Epoch,
    },
    /// A committee member reports that it holds all its shards of `epoch`.
    #[serde(rename_all = "camelCase")]
    EpochSyncDone { node_id: NodeId, epoch: Epoch },
    /// Give a blob object to another account (owner only; not once deleted). Appended last:
    /// variant indices are part of the log's BCS encoding.
    #[serde(rename_all = "camelCase")]
    TransferBlob {
        blob_object: ObjectId,
        recipient: Address,
    },
    /// Register a storage node operated by the sender. The proof of possession binds the
    /// protocol key to the sender's address in the current epoch. It joins the committee at the
    /// next epoch change (appended: variant indices are part of the log's encoding).
    #[serde(rename_all = "camelCase")]
    RegisterNode {
        name: String,
        network_address: String,
        protocol_key: ProtocolPublicKey,
        proof_of_possession: ProofOfPossession,
        capacity: u64,
        weight: u64,
        /// The public key of the node's TLS certificate (clients pin it); `None` for a node
        /// that serves plain HTTP.
        #[serde(default)]
        network_public_key: Option<NetworkPublicKey>,
    },
    /// The node's owner withdraws it: its weight becomes 0 and it leaves the committee at the
    /// next epoch change.
    #[serde(rename_all = "camelCase")]
    DeregisterNode { node_id: NodeId },
    /// The node's owner sets its weight (positive), effective at the next epoch change.
    #[serde(rename_all = "camelCase")]
    SetNodeWeight { node_id: NodeId, weight: u64 },
    /// Set key–value attributes of a blob object (owner only, while live). Appended: variant
    /// indices are part of the log's encoding.
    #[serde(rename_all = "camelCase")]
    SetBlobAttributes {
        blob_object: ObjectId,
        attributes: Vec<(String, String)>,
    },
    /// Remove the given attribute keys of a blob object, or all of them when `keys` is `None`
    /// (owner only, while live).
    #[serde(rename_all = "camelCase")]
    RemoveBlobAttributes {
        blob_object: ObjectId,
        keys: Option<Vec<String>>,
    },
    /// A committee member's signed report on the storage challenges it owed this epoch (see
    /// [`crate::challenge`]); sent by the node's owner. Appended: variant indices are part of
    /// the log's encoding.
    #[serde(rename_all = "camelCase")]
    SubmitChallengeReport {
        report: ChallengeReport,
        signature: ProtocolSignature,
    },
    /// The node's owner sets the public key of its TLS certificate (a node registered without
    /// one, or a rotated key). Effective at once: clients pin it from their next committee read,
    /// so the node should restart with the new key right after. Appended: variant indices are
    /// part of the log's encoding.
    #[serde(rename_all = "camelCase")]
    SetNetworkKey {
        node_id: NodeId,
        network_public_key: NetworkPublicKey,
    },
    /// Wrap a certified blob object the sender owns into a new shared blob (Walrus's
    /// `SharedBlob`): from then on anyone may extend it, and nobody may delete, transfer or
    /// change it. Floe charges nothing for storage, so a shared blob holds no funds. Appended:
    /// variant indices are part of the log's encoding.
    #[serde(rename_all = "camelCase")]
    ShareBlob { blob_object: ObjectId },
    /// Extend the blob wrapped in a shared blob to `new_end_epoch` (anyone).
    #[serde(rename_all = "camelCase")]
    ExtendSharedBlob {
        shared_blob: ObjectId,
        new_end_epoch: Epoch,
    },
}

/// A transaction: who sends it, its place in the sender's sequence, and what it does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transaction {
    /// The sender's Ed25519 public key.
    #[serde(with = "hex32")]
    pub sender: [u8; 32],
    /// Must equal the sender account's next sequence number (replay protection).
    pub sequence: u64,
    pub kind: TxKind,
}

/// A transaction with the sender's signature over `domain ‖ BCS(tx)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedTransaction {
    pub tx: Transaction,
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

/// An entry of the ledger's ordered log. (Transactions dominate the log, so boxing them would
/// only add an allocation per entry.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogEntry {
    /// A signed transaction.
    Tx(SignedTransaction),
    /// The ledger's clock passed `now_ms`; epochs advance to match it.
    Clock { now_ms: u64 },
    /// A replica's commitment to its snapshot after the first `seq` log entries: the root of
    /// the snapshot's canonical encoding. Written only to the replicated log, where replicas
    /// compare it with their own snapshots and bootstrapping replicas check a peer's snapshot
    /// against it. It changes nothing in the state.
    Checkpoint {
        seq: u64,
        #[serde(with = "hex32")]
        state_root: [u8; 32],
    },
    /// From this entry on, the ledger applies the rules of `version` (see
    /// [`crate::rules`]). A running ledger writes it once when its state's rules are older
    /// than this build's, so that a log replays under the rules each entry was applied with.
    Rules { version: u16 },
}

/// First byte of every encoded log entry. Entries written before entries were versioned start
/// with their BCS variant index (0–2), which can never be this byte.
pub const LOG_ENTRY_MARKER: u8 = 0xF1;
/// The newest version of the log entry encoding, `LOG_ENTRY_MARKER ‖ version ‖ BCS(LogEntry)`.
/// Version 1 added the network key to `RegisterNode`; version 2 added [`LogEntry::Rules`].
/// Each entry is written with the oldest version that can express it, so entries of version 1
/// keep their bytes (and the ledger's running digest over them) from build to build.
pub const LOG_ENTRY_VERSION: u8 = 2;

/// A log entry's bytes that this build cannot read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryDecodeError {
    #[error(
        "an unversioned log entry (written before Floe versioned its log entries); this build reads versions 1 to {LOG_ENTRY_VERSION}: start from a fresh data directory"
    )]
    Unversioned,
    #[error(
        "log entry format version {0}; this build reads versions 1 to {LOG_ENTRY_VERSION}: upgrade this build"
    )]
    Version(u8),
    #[error(
        "the log moves to ledger rules version {0}; this build applies versions 1 to {max}: upgrade this build",
        max = crate::rules::RULES_VERSION
    )]
    Rules(u16),
    #[error("a log entry that does not decode: {0}")]
    Decode(String),
}

impl EntryDecodeError {
    /// Whether the entry was written by a newer build: a replica must stop rather than skip it,
    /// or it would go on under older rules than its peers.
    pub fn is_from_newer_build(&self) -> bool {
        matches!(
            self,
            EntryDecodeError::Version(_) | EntryDecodeError::Rules(_)
        )
    }
}

impl LogEntry {
    /// The oldest encoding version that can express this entry.
    pub fn format_version(&self) -> u8 {
        match self {
            LogEntry::Rules { .. } => 2,
            _ => 1,
        }
    }

    /// The versioned encoding (see [`LOG_ENTRY_VERSION`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![LOG_ENTRY_MARKER, self.format_version()];
        out.extend(bcs::to_bytes(self).expect("log entries serialise"));
        out
    }
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EntryDecodeError> {
        let (version, rest) = match bytes {
            [LOG_ENTRY_MARKER, v @ 1..=LOG_ENTRY_VERSION, rest @ ..] => (*v, rest),
            [LOG_ENTRY_MARKER, v, ..] => return Err(EntryDecodeError::Version(*v)),
            _ => return Err(EntryDecodeError::Unversioned),
        };
        let entry: LogEntry =
            bcs::from_bytes(rest).map_err(|e| EntryDecodeError::Decode(e.to_string()))?;
        if entry.format_version() != version {
            return Err(EntryDecodeError::Decode(format!(
                "an entry of format {} written as format {version}",
                entry.format_version()
            )));
        }
        match entry {
            LogEntry::Rules { version } if version > crate::rules::RULES_VERSION => {
                Err(EntryDecodeError::Rules(version))
            }
            entry => Ok(entry),
        }
    }

    /// The entry's digest, shown as Walrus's `txDigest` on the events it emits: a
    /// transaction's [`SignedTransaction::digest`], or the hash of a clock tick or checkpoint.
    pub fn digest(&self) -> TxDigest {
        match self {
            LogEntry::Tx(tx) => TxDigest(tx.digest()),
            LogEntry::Clock { now_ms } => TxDigest(floe_core::merkle::blake2b256(&[
                b"floe-clock",
                &now_ms.to_le_bytes(),
            ])),
            LogEntry::Checkpoint { seq, state_root } => TxDigest(floe_core::merkle::blake2b256(&[
                b"floe-checkpoint",
                &seq.to_le_bytes(),
                state_root,
            ])),
            LogEntry::Rules { version } => TxDigest(floe_core::merkle::blake2b256(&[
                b"floe-rules",
                &version.to_le_bytes(),
            ])),
        }
    }
}

/// An account's Ed25519 key.
#[derive(Clone)]
pub struct AccountKey(SigningKey);

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccountKey({})", self.address())
    }
}

impl AccountKey {
    /// The key derived from a 32-byte seed (callers supply randomness).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }
    pub fn address(&self) -> Address {
        Address::from_ed25519(&self.public_key())
    }
    /// Sign `kind` as this account's transaction number `sequence`.
    pub fn sign(&self, sequence: u64, kind: TxKind) -> SignedTransaction {
        let tx = Transaction {
            sender: self.public_key(),
            sequence,
            kind,
        };
        let signature = self.0.sign(&signing_bytes(&tx)).to_bytes();
        SignedTransaction { tx, signature }
    }
}

fn signing_bytes(tx: &Transaction) -> Vec<u8> {
    let mut bytes = TX_SIGNING_DOMAIN.to_vec();
    bytes.extend(bcs::to_bytes(tx).expect("transactions serialise"));
    bytes
}

impl SignedTransaction {
    pub fn sender_address(&self) -> Address {
        Address::from_ed25519(&self.tx.sender)
    }

    /// Checks the Ed25519 signature (strict verification: no malleable signatures).
    pub fn verify_signature(&self) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.tx.sender) else {
            return false;
        };
        let sig = Signature::from_bytes(&self.signature);
        key.verify_strict(&signing_bytes(&self.tx), &sig).is_ok()
    }

    /// The transaction digest: Blake2b-256 of its BCS form (signature included).
    pub fn digest(&self) -> [u8; 32] {
        floe_core::merkle::blake2b256(&[b"floe-tx", &bcs::to_bytes(self).expect("serialises")])
    }
}

macro_rules! hex_array {
    ($name:ident, $n:expr) => {
        pub(crate) mod $name {
            use serde::{Deserialize, Deserializer, Serializer};
            pub fn serialize<S: Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&hex::encode(v))
                } else {
                    serde_big_array(v, s)
                }
            }
            fn serde_big_array<S: Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeTuple;
                let mut t = s.serialize_tuple($n)?;
                for b in v {
                    t.serialize_element(b)?;
                }
                t.end()
            }
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; $n], D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    let mut out = [0u8; $n];
                    hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
                    Ok(out)
                } else {
                    struct V;
                    impl<'de> serde::de::Visitor<'de> for V {
                        type Value = [u8; $n];
                        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                            write!(f, "{} bytes", $n)
                        }
                        fn visit_seq<A: serde::de::SeqAccess<'de>>(
                            self,
                            mut a: A,
                        ) -> Result<Self::Value, A::Error> {
                            let mut out = [0u8; $n];
                            for (i, b) in out.iter_mut().enumerate() {
                                *b = a
                                    .next_element()?
                                    .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                            }
                            Ok(out)
                        }
                    }
                    d.deserialize_tuple($n, V)
                }
            }
        }
    };
}

hex_array!(hex32, 32);
hex_array!(hex64, 64);
