//! Aggregate certificates over one protocol message, checked against a committee's weights.
//!
//! A certificate carries a signer bitmap (member `i` sets bit `i % 8` of byte `i / 8`), the
//! message bytes and the aggregate of the signers' signatures. It is checked with fast aggregate
//! verification — one pairing check against the sum of the signers' public keys — which is sound
//! only because every committee key was accepted with a [`crate::ProofOfPossession`] at
//! registration. [`CommitteeWeights`] assumes its keys passed that check.

use blst::BLST_ERROR;
use blst::min_pk::{AggregateSignature, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::keys::{BLS_DST, ProtocolPublicKey, ProtocolSignature};
use crate::messages::{MessageBody, MessageError, ProtocolMessage};
use crate::signed::SignedMessage;

/// Errors from building or checking a certificate, or from building a committee view.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// A committee must have at least one member and one shard.
    #[error("the committee has no members or no shards")]
    EmptyCommittee,
    /// The members' weights must add up to the number of shards.
    #[error("member weights sum to {sum}, but the committee has {n_shards} shards")]
    WeightMismatch {
        /// Sum of the member weights.
        sum: u64,
        /// The declared number of shards.
        n_shards: u16,
    },
    /// No partial signatures were given, or the bitmap names no signer.
    #[error("a certificate needs at least one signer")]
    NoSigners,
    /// A signer index is not a committee member.
    #[error("signer index {index} is out of range for a committee of {members} members")]
    SignerOutOfRange {
        /// The offending index.
        index: usize,
        /// Committee size.
        members: usize,
    },
    /// The same member signed twice.
    #[error("member {0} appears more than once")]
    DuplicateSigner(usize),
    /// A partial signature is over different bytes than the first one.
    #[error("member {0} signed a different message")]
    MessageMismatch(usize),
    /// A partial signature does not verify under its member's key.
    #[error("the signature of member {0} does not verify")]
    InvalidPartialSignature(usize),
    /// The bitmap does not have `ceil(members / 8)` bytes.
    #[error("signer bitmap has {actual} bytes, expected {expected}")]
    BitmapLength {
        /// Required length.
        expected: usize,
        /// Actual length.
        actual: usize,
    },
    /// The bitmap sets bits at or beyond the member count.
    #[error("signer bitmap sets bits beyond the {members} committee members")]
    BitmapExtraBits {
        /// Committee size.
        members: usize,
    },
    /// The signers do not carry enough weight.
    #[error("signers hold {weight} shards, at least {required} are required")]
    InsufficientWeight {
        /// Weight of the signers.
        weight: u64,
        /// Required weight.
        required: u64,
    },
    /// The aggregate signature does not verify.
    #[error("the aggregate signature does not verify")]
    InvalidAggregateSignature,
    /// Partial signatures verified against another committee (other keys or weights).
    #[error("partial signatures were verified against another committee than this one")]
    OtherCommittee,
    /// The certified bytes are not the expected kind of message.
    #[error(transparent)]
    Message(#[from] MessageError),
}

/// One committee member as seen by certificate checks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CommitteeMember {
    /// The member's protocol key (assumed proof-of-possession checked).
    pub public_key: ProtocolPublicKey,
    /// The number of shards the member holds.
    pub weight: u16,
}

/// An ordered committee with per-member weights (shard counts). Member order defines the
/// signer-bitmap positions.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CommitteeWeights {
    members: Vec<CommitteeMember>,
    n_shards: u16,
    /// Blake2b-256 of the members' keys and weights, in order, and `n_shards`: names this
    /// committee in the [`VerifiedPartials`] checked against it.
    fingerprint: [u8; 32],
}

impl CommitteeWeights {
    /// Build the view. The weights must sum to `n_shards`, which must be positive. All keys are
    /// assumed to have been accepted with a valid proof of possession.
    pub fn new(members: Vec<CommitteeMember>, n_shards: u16) -> Result<Self, CertificateError> {
        if members.is_empty() || n_shards == 0 {
            return Err(CertificateError::EmptyCommittee);
        }
        let sum: u64 = members.iter().map(|m| u64::from(m.weight)).sum();
        if sum != u64::from(n_shards) {
            return Err(CertificateError::WeightMismatch { sum, n_shards });
        }
        let mut bytes = Vec::with_capacity(members.len() * 50 + 2);
        for m in &members {
            bytes.extend_from_slice(m.public_key.as_bytes());
            bytes.extend_from_slice(&m.weight.to_le_bytes());
        }
        bytes.extend_from_slice(&n_shards.to_le_bytes());
        let fingerprint = floe_core::merkle::blake2b256(&[&bytes]);
        Ok(Self {
            members,
            n_shards,
            fingerprint,
        })
    }

    /// The members in bitmap order.
    pub fn members(&self) -> &[CommitteeMember] {
        &self.members
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a committee has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The total number of shards `n`.
    pub fn n_shards(&self) -> u16 {
        self.n_shards
    }

    /// The tolerated number of faulty shards, `f = (n − 1) / 3`.
    pub fn max_faulty(&self) -> u16 {
        (self.n_shards - 1) / 3
    }

    /// The quorum weight `n − f` needed to certify a blob.
    pub fn quorum_threshold(&self) -> u64 {
        u64::from(self.n_shards - self.max_faulty())
    }

    /// The validity weight `f + 1` (at least one honest signer), e.g. for invalid-blob
    /// attestations.
    pub fn validity_threshold(&self) -> u64 {
        u64::from(self.max_faulty()) + 1
    }

    /// The bitmap length for this committee, `ceil(members / 8)`.
    pub fn bitmap_len(&self) -> usize {
        self.members.len().div_ceil(8)
    }

    /// Split partial signatures `(member index, signed message)` into those over `message`
    /// that verify under their member's key, and the rest (another message, an index out of
    /// range or a bad signature).
    ///
    /// All are checked at once, as one aggregate; each is checked alone only when that fails.
    /// So the honest case costs one pairing check, not one per partial.
    pub fn split_valid(&self, message: &[u8], partials: Partials) -> (VerifiedPartials, Partials) {
        let committee = self.fingerprint;
        if self.all_verify(message, &partials) {
            return (
                VerifiedPartials {
                    committee,
                    partials,
                },
                Vec::new(),
            );
        }
        let (good, bad) = partials.into_iter().partition(|(index, partial)| {
            partial.serialized_message == message
                && self
                    .members
                    .get(*index)
                    .is_some_and(|m| partial.verify_signature(&m.public_key).is_ok())
        });
        (
            VerifiedPartials {
                committee,
                partials: good,
            },
            bad,
        )
    }

    /// Whether the partials are all over `message` and verify as one aggregate (true when
    /// there are none).
    fn all_verify(&self, message: &[u8], partials: &[(usize, SignedMessage)]) -> bool {
        if partials.is_empty() {
            return true;
        }
        match gather(self, partials) {
            Ok(g) if g.message == message => aggregate_points(&g.signatures)
                .is_ok_and(|aggregate| aggregate_verifies(&aggregate, message, &g.keys)),
            _ => false,
        }
    }
}

/// Partial signatures that [`CommitteeWeights::split_valid`] found valid: each is over the
/// message it was given and verifies under its member's key. Only `split_valid` makes them,
/// so [`Certificate::from_verified`] can aggregate them without a pairing check; they name the
/// committee they were checked against, and aggregate only under that one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPartials {
    /// The fingerprint of the committee whose keys verified them.
    committee: [u8; 32],
    partials: Partials,
}

impl VerifiedPartials {
    /// The signers' member indices.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.partials.iter().map(|(index, _)| *index)
    }

    /// How many partial signatures the set holds.
    pub fn len(&self) -> usize {
        self.partials.len()
    }

    /// Whether the set holds none.
    pub fn is_empty(&self) -> bool {
        self.partials.is_empty()
    }
}

/// The signers' bitmap, their signatures and keys, and the one message they all signed.
struct Gathered<'a> {
    bitmap: Vec<u8>,
    message: &'a [u8],
    signatures: Vec<&'a Signature>,
    keys: Vec<&'a PublicKey>,
}

/// Check that `partials` name distinct committee members and sign the same bytes, and gather
/// what an aggregate needs. Signatures are not checked here.
fn gather<'a>(
    committee: &'a CommitteeWeights,
    partials: impl IntoIterator<Item = &'a (usize, SignedMessage)>,
) -> Result<Gathered<'a>, CertificateError> {
    let mut partials = partials.into_iter().peekable();
    let Some((_, first)) = partials.peek() else {
        return Err(CertificateError::NoSigners);
    };
    let mut g = Gathered {
        bitmap: vec![0u8; committee.bitmap_len()],
        message: &first.serialized_message,
        signatures: Vec::new(),
        keys: Vec::new(),
    };
    for (index, partial) in partials {
        let index = *index;
        let member = committee
            .members
            .get(index)
            .ok_or(CertificateError::SignerOutOfRange {
                index,
                members: committee.len(),
            })?;
        let (byte, mask) = (index / 8, 1u8 << (index % 8));
        if g.bitmap[byte] & mask != 0 {
            return Err(CertificateError::DuplicateSigner(index));
        }
        if partial.serialized_message != g.message {
            return Err(CertificateError::MessageMismatch(index));
        }
        g.bitmap[byte] |= mask;
        g.signatures.push(partial.signature.point());
        g.keys.push(member.public_key.point());
    }
    Ok(g)
}

/// The sum of `signatures` (each group-checked when decoded).
fn aggregate_points(signatures: &[&Signature]) -> Result<Signature, CertificateError> {
    AggregateSignature::aggregate(signatures, false)
        .map(|aggregate| aggregate.to_signature())
        .map_err(|_| CertificateError::NoSigners)
}

/// Partial signatures: `(member index, signed message)`.
pub type Partials = Vec<(usize, SignedMessage)>;

/// An aggregate certificate: which members signed, the common message, and the aggregate
/// signature.
///
/// Serde: JSON camelCase with base64 byte fields; BCS the plain struct (two length-prefixed byte
/// vectors, then the 96 signature bytes).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    /// Bit `i % 8` of byte `i / 8` is set if member `i` signed.
    #[serde(with = "crate::serde_util::base64_vec")]
    pub signers_bitmap: Vec<u8>,
    /// The certified message bytes.
    #[serde(with = "crate::serde_util::base64_vec")]
    pub serialized_message: Vec<u8>,
    /// The aggregate of the signers' signatures over `serialized_message`.
    pub signature: ProtocolSignature,
}

impl Certificate {
    /// Aggregate partial signatures `(member index, signed message)` over the same bytes.
    ///
    /// The partial signatures are verified together, as one aggregate against the sum of the
    /// members' keys; when that fails, the first partial that does not verify alone is named.
    /// Out-of-range and duplicate indices and differing messages are rejected. Weight is not
    /// checked here: call [`Self::verify_quorum`] or [`Self::verify_validity`] as appropriate.
    pub fn aggregate(
        committee: &CommitteeWeights,
        partials: &[(usize, SignedMessage)],
    ) -> Result<Self, CertificateError> {
        let g = gather(committee, partials)?;
        let aggregate = aggregate_points(&g.signatures)?;
        // One pairing check for all the partials; only when it fails is each checked apart, to
        // name the member whose signature is bad.
        if !aggregate_verifies(&aggregate, g.message, &g.keys) {
            let bad = partials.iter().find(|(index, partial)| {
                let key = &committee.members[*index].public_key;
                partial.verify_signature(key).is_err()
            });
            return Err(match bad {
                Some((index, _)) => CertificateError::InvalidPartialSignature(*index),
                None => CertificateError::InvalidAggregateSignature,
            });
        }
        Ok(Self {
            signers_bitmap: g.bitmap,
            serialized_message: g.message.to_vec(),
            signature: ProtocolSignature::from_point(aggregate),
        })
    }

    /// Aggregate partial signatures that were verified already, in one or more sets (each from
    /// [`CommitteeWeights::split_valid`] over `committee`): the same checks as
    /// [`Self::aggregate`] but the pairing, which their verification made. A set verified
    /// against another committee is [`CertificateError::OtherCommittee`].
    pub fn from_verified(
        committee: &CommitteeWeights,
        sets: &[VerifiedPartials],
    ) -> Result<Self, CertificateError> {
        if sets
            .iter()
            .any(|set| set.committee != committee.fingerprint)
        {
            return Err(CertificateError::OtherCommittee);
        }
        let g = gather(committee, sets.iter().flat_map(|set| &set.partials))?;
        let aggregate = aggregate_points(&g.signatures)?;
        Ok(Self {
            signers_bitmap: g.bitmap,
            serialized_message: g.message.to_vec(),
            signature: ProtocolSignature::from_point(aggregate),
        })
    }

    /// The member indices set in the bitmap, after checking the bitmap's shape.
    pub fn signers(&self, committee: &CommitteeWeights) -> Result<Vec<usize>, CertificateError> {
        let expected = committee.bitmap_len();
        if self.signers_bitmap.len() != expected {
            return Err(CertificateError::BitmapLength {
                expected,
                actual: self.signers_bitmap.len(),
            });
        }
        let members = committee.len();
        let mut signers = Vec::new();
        for (byte_index, &byte) in self.signers_bitmap.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    let index = byte_index * 8 + bit;
                    if index >= members {
                        return Err(CertificateError::BitmapExtraBits { members });
                    }
                    signers.push(index);
                }
            }
        }
        Ok(signers)
    }

    /// The total weight of the members set in the bitmap.
    pub fn signer_weight(&self, committee: &CommitteeWeights) -> Result<u64, CertificateError> {
        Ok(self
            .signers(committee)?
            .into_iter()
            .map(|i| u64::from(committee.members[i].weight))
            .sum())
    }

    /// Check a quorum certificate: well-formed bitmap, signer weight at least `n − f`, and a
    /// valid aggregate signature.
    pub fn verify_quorum(&self, committee: &CommitteeWeights) -> Result<(), CertificateError> {
        self.verify_with_threshold(committee, committee.quorum_threshold())
    }

    /// Check a validity certificate: well-formed bitmap, signer weight at least `f + 1`, and a
    /// valid aggregate signature.
    pub fn verify_validity(&self, committee: &CommitteeWeights) -> Result<(), CertificateError> {
        self.verify_with_threshold(committee, committee.validity_threshold())
    }

    /// [`Self::verify_quorum`], then parse the certified bytes as a `T` message.
    pub fn verify_quorum_message<T: MessageBody>(
        &self,
        committee: &CommitteeWeights,
    ) -> Result<ProtocolMessage<T>, CertificateError> {
        let message = ProtocolMessage::<T>::from_bytes(&self.serialized_message)?;
        self.verify_quorum(committee)?;
        Ok(message)
    }

    fn verify_with_threshold(
        &self,
        committee: &CommitteeWeights,
        required: u64,
    ) -> Result<(), CertificateError> {
        let signers = self.signers(committee)?;
        if signers.is_empty() {
            return Err(CertificateError::NoSigners);
        }
        let weight: u64 = signers
            .iter()
            .map(|&i| u64::from(committee.members[i].weight))
            .sum();
        if weight < required {
            return Err(CertificateError::InsufficientWeight { weight, required });
        }
        let keys: Vec<&PublicKey> = signers
            .iter()
            .map(|&i| committee.members[i].public_key.point())
            .collect();
        if aggregate_verifies(self.signature.point(), &self.serialized_message, &keys) {
            Ok(())
        } else {
            Err(CertificateError::InvalidAggregateSignature)
        }
    }
}

/// Fast aggregate verification: one pairing check of `signature` over `message` against the
/// sum of `keys`. Keys were validated on construction and PoP-checked at registration, which is
/// what makes this sound; the signature was group-checked when decoded.
fn aggregate_verifies(signature: &Signature, message: &[u8], keys: &[&PublicKey]) -> bool {
    signature.fast_aggregate_verify(false, message, BLS_DST, keys) == BLST_ERROR::BLST_SUCCESS
}
