//! BLS12-381 "min-pk" protocol keys and signatures.
//!
//! Public keys are compressed G1 points (48 bytes), signatures compressed G2 points (96 bytes),
//! secret keys 32-byte big-endian scalars. Messages are hashed to G2 with the ciphersuite
//! [`BLS_DST`] (the basic "NUL" scheme); rogue-key attacks on same-message aggregation are ruled
//! out by requiring a proof of possession when a key is registered (see
//! [`crate::ProofOfPossession`]).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use blst::BLST_ERROR;
use blst::min_pk::{PublicKey, SecretKey, Signature};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::serde_util::{decode_base64, deserialize_fixed, encode_base64, serialize_fixed};

/// The domain-separation tag used for hashing messages to G2.
pub const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_";
/// Length of a compressed public key (a G1 point).
pub const PUBLIC_KEY_LENGTH: usize = 48;
/// Length of a compressed signature (a G2 point).
pub const SIGNATURE_LENGTH: usize = 96;
/// Length of a secret key (a big-endian scalar).
pub const SECRET_KEY_LENGTH: usize = 32;
/// The scheme flag prefixed to the secret key in the tagged base64 key-file format (BLS12-381).
pub const BLS_SCHEME_FLAG: u8 = 0x00;

/// Errors from decoding keys and signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The input has the wrong number of bytes.
    #[error("expected {expected} bytes, got {actual}")]
    WrongLength {
        /// The required length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// The secret key is zero or not below the group order.
    #[error("invalid secret key: must be a non-zero scalar below the BLS12-381 group order")]
    InvalidSecretKey,
    /// The public key is not a valid compressed G1 point of the prime-order subgroup.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(&'static str),
    /// The signature is not a valid compressed G2 point of the prime-order subgroup.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// The text is not valid standard base64.
    #[error("invalid base64: {0}")]
    Base64(String),
    /// The tagged key starts with a scheme flag other than [`BLS_SCHEME_FLAG`].
    #[error("unknown key scheme flag {0:#04x}; expected 0x00 (BLS12-381)")]
    UnknownSchemeFlag(u8),
}

/// A signature failed to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("BLS signature verification failed")]
pub struct SignatureError;

fn describe_point_error(err: BLST_ERROR) -> &'static str {
    match err {
        BLST_ERROR::BLST_BAD_ENCODING => "bad point encoding",
        BLST_ERROR::BLST_POINT_NOT_ON_CURVE => "point is not on the curve",
        BLST_ERROR::BLST_POINT_NOT_IN_GROUP => "point is not in the prime-order subgroup",
        BLST_ERROR::BLST_PK_IS_INFINITY => "point is the identity (infinity)",
        _ => "malformed point",
    }
}

fn check_length(bytes: &[u8], expected: usize) -> Result<(), KeyError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(KeyError::WrongLength {
            expected,
            actual: bytes.len(),
        })
    }
}

/// A validated BLS12-381 public key: a compressed G1 point, on the curve, in the prime-order
/// subgroup and not the identity.
///
/// Serde: binary formats (BCS) carry the 48 raw bytes without a length prefix; human-readable
/// formats (JSON) a standard base64 string.
#[derive(Clone, Copy)]
pub struct ProtocolPublicKey {
    point: PublicKey,
    bytes: [u8; PUBLIC_KEY_LENGTH],
}

impl ProtocolPublicKey {
    /// Decode and validate a 48-byte compressed public key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        check_length(bytes, PUBLIC_KEY_LENGTH)?;
        let point = PublicKey::uncompress(bytes)
            .map_err(|e| KeyError::InvalidPublicKey(describe_point_error(e)))?;
        point
            .validate()
            .map_err(|e| KeyError::InvalidPublicKey(describe_point_error(e)))?;
        Ok(Self::from_point(point))
    }

    fn from_point(point: PublicKey) -> Self {
        Self {
            point,
            bytes: point.compress(),
        }
    }

    /// The 48-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LENGTH] {
        self.bytes
    }

    /// The 48-byte compressed encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LENGTH] {
        &self.bytes
    }

    /// Standard base64 (with padding) of the compressed encoding.
    pub fn to_base64(&self) -> String {
        encode_base64(&self.bytes)
    }

    /// Verify `signature` over `message` under this key.
    pub fn verify(
        &self,
        message: &[u8],
        signature: &ProtocolSignature,
    ) -> Result<(), SignatureError> {
        // Both points were group-checked when constructed, so blst need not repeat the checks.
        match signature
            .point
            .verify(false, message, BLS_DST, &[], &self.point, false)
        {
            BLST_ERROR::BLST_SUCCESS => Ok(()),
            _ => Err(SignatureError),
        }
    }

    pub(crate) fn point(&self) -> &PublicKey {
        &self.point
    }
}

impl PartialEq for ProtocolPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for ProtocolPublicKey {}

impl Hash for ProtocolPublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl fmt::Display for ProtocolPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for ProtocolPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProtocolPublicKey({})", self.to_base64())
    }
}

impl FromStr for ProtocolPublicKey {
    type Err = KeyError;

    /// Parse standard base64 of the compressed encoding.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(&decode_base64(s).map_err(KeyError::Base64)?)
    }
}

impl Serialize for ProtocolPublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_fixed(&self.bytes, serializer)
    }
}

impl<'de> Deserialize<'de> for ProtocolPublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = deserialize_fixed::<D, PUBLIC_KEY_LENGTH>(deserializer)?;
        Self::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// A BLS12-381 signature (or aggregate signature): a compressed G2 point in the prime-order
/// subgroup.
///
/// Serde: binary formats (BCS) carry the 96 raw bytes without a length prefix; human-readable
/// formats (JSON) a standard base64 string.
#[derive(Clone, Copy)]
pub struct ProtocolSignature {
    point: Signature,
    bytes: [u8; SIGNATURE_LENGTH],
}

impl ProtocolSignature {
    /// Decode a 96-byte compressed signature, checking that it lies in the prime-order subgroup.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        check_length(bytes, SIGNATURE_LENGTH)?;
        let point = Signature::uncompress(bytes)
            .map_err(|e| KeyError::InvalidSignature(describe_point_error(e)))?;
        point
            .validate(false)
            .map_err(|e| KeyError::InvalidSignature(describe_point_error(e)))?;
        Ok(Self::from_point(point))
    }

    pub(crate) fn from_point(point: Signature) -> Self {
        Self {
            point,
            bytes: point.compress(),
        }
    }

    /// The 96-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LENGTH] {
        self.bytes
    }

    /// The 96-byte compressed encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_LENGTH] {
        &self.bytes
    }

    /// Standard base64 (with padding) of the compressed encoding.
    pub fn to_base64(&self) -> String {
        encode_base64(&self.bytes)
    }

    pub(crate) fn point(&self) -> &Signature {
        &self.point
    }
}

impl PartialEq for ProtocolSignature {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for ProtocolSignature {}

impl Hash for ProtocolSignature {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl fmt::Display for ProtocolSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for ProtocolSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProtocolSignature({})", self.to_base64())
    }
}

impl FromStr for ProtocolSignature {
    type Err = KeyError;

    /// Parse standard base64 of the compressed encoding.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(&decode_base64(s).map_err(KeyError::Base64)?)
    }
}

impl Serialize for ProtocolSignature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_fixed(&self.bytes, serializer)
    }
}

impl<'de> Deserialize<'de> for ProtocolSignature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = deserialize_fixed::<D, SIGNATURE_LENGTH>(deserializer)?;
        Self::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// A BLS12-381 min-pk key pair used to sign protocol messages.
///
/// `Debug` shows only the public key. The secret scalar is zeroised by blst when dropped.
#[derive(Clone)]
pub struct ProtocolKeyPair {
    secret: SecretKey,
    public: ProtocolPublicKey,
}

impl ProtocolKeyPair {
    /// Derive a key pair from 32 bytes of input keying material (IETF BLS `KeyGen`, empty
    /// key info). The same seed always gives the same key.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let secret = SecretKey::key_gen(seed, &[])
            .expect("KeyGen accepts any input keying material of at least 32 bytes");
        Self::from_secret(secret)
    }

    /// Generate a fresh key pair from 32 bytes drawn from `rng` (inject a seeded RNG in tests,
    /// an OS-backed one otherwise).
    pub fn generate<R: rand::RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let key = Self::from_seed(&seed);
        seed.fill(0);
        key
    }

    /// Load a key pair from the 32-byte big-endian secret scalar.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        check_length(bytes, SECRET_KEY_LENGTH)?;
        let secret = SecretKey::from_bytes(bytes).map_err(|_| KeyError::InvalidSecretKey)?;
        Ok(Self::from_secret(secret))
    }

    fn from_secret(secret: SecretKey) -> Self {
        let public = ProtocolPublicKey::from_point(secret.sk_to_pk());
        Self { secret, public }
    }

    /// The 32-byte big-endian secret scalar. Handle with care.
    pub fn to_secret_bytes(&self) -> [u8; SECRET_KEY_LENGTH] {
        self.secret.to_bytes()
    }

    /// The key-file text form: standard base64 of `0x00 ‖ secret scalar` (33 bytes).
    pub fn to_tagged_base64(&self) -> String {
        let mut tagged = [0u8; 1 + SECRET_KEY_LENGTH];
        tagged[0] = BLS_SCHEME_FLAG;
        tagged[1..].copy_from_slice(&self.to_secret_bytes());
        let text = encode_base64(&tagged);
        tagged.fill(0);
        text
    }

    /// Parse the key-file text form produced by [`Self::to_tagged_base64`]. Surrounding
    /// whitespace is ignored.
    pub fn from_tagged_base64(text: &str) -> Result<Self, KeyError> {
        let mut bytes = decode_base64(text).map_err(KeyError::Base64)?;
        let result = match bytes.split_first() {
            None => Err(KeyError::WrongLength {
                expected: 1 + SECRET_KEY_LENGTH,
                actual: 0,
            }),
            Some((&flag, _)) if flag != BLS_SCHEME_FLAG => Err(KeyError::UnknownSchemeFlag(flag)),
            Some((_, secret)) if secret.len() != SECRET_KEY_LENGTH => Err(KeyError::WrongLength {
                expected: 1 + SECRET_KEY_LENGTH,
                actual: bytes.len(),
            }),
            Some((_, secret)) => Self::from_secret_bytes(secret),
        };
        bytes.fill(0);
        result
    }

    /// The public key.
    pub fn public_key(&self) -> &ProtocolPublicKey {
        &self.public
    }

    /// Sign arbitrary bytes. Protocol code should sign [`crate::ProtocolMessage`]s via
    /// [`crate::SignedMessage::sign`] so that the intent prefix provides domain separation.
    pub fn sign(&self, message: &[u8]) -> ProtocolSignature {
        ProtocolSignature::from_point(self.secret.sign(message, BLS_DST, &[]))
    }
}

impl fmt::Debug for ProtocolKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}
