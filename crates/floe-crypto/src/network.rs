//! The public half of a node's **network key**: the secp256r1 (P-256) key of its TLS
//! certificate. It is registered on the ledger (Walrus's `network_public_key`: the 33-byte
//! compressed SEC1 point), and clients pin it: a node's TLS handshake is accepted when the
//! certificate's key is the registered one, whoever signed the certificate.
//!
//! Only the encoding lives here (no I/O, no TLS); key generation and the TLS verifier are in
//! `floe-tls`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::serde_util::{deserialize_fixed, encode_base64, serialize_fixed};

/// Length of a compressed P-256 point.
pub const NETWORK_PUBLIC_KEY_LENGTH: usize = 33;

/// A P-256 public key in compressed SEC1 form (`02|03 ‖ x`).
///
/// Serde: BCS carries the 33 raw bytes without a length prefix; JSON a standard base64 string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetworkPublicKey([u8; NETWORK_PUBLIC_KEY_LENGTH]);

/// Bytes that are not a compressed P-256 point's encoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetworkKeyError {
    /// Not 33 bytes.
    #[error("a network public key is {NETWORK_PUBLIC_KEY_LENGTH} bytes, got {0}")]
    Length(usize),
    /// Not a compressed point's prefix.
    #[error("a compressed network public key starts with 0x02 or 0x03, got {0:#04x}")]
    Prefix(u8),
    /// Not an uncompressed point (65 bytes, `04 ‖ x ‖ y`).
    #[error(
        "an uncompressed network public key is 65 bytes starting with 0x04, got {len} bytes starting with {first:#04x}"
    )]
    Uncompressed {
        /// Its length.
        len: usize,
        /// Its first byte.
        first: u8,
    },
}

impl NetworkPublicKey {
    /// Decode the 33-byte compressed form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, NetworkKeyError> {
        let array: [u8; NETWORK_PUBLIC_KEY_LENGTH] = bytes
            .try_into()
            .map_err(|_| NetworkKeyError::Length(bytes.len()))?;
        if !matches!(array[0], 2 | 3) {
            return Err(NetworkKeyError::Prefix(array[0]));
        }
        Ok(Self(array))
    }

    /// Compress an uncompressed SEC1 point (`04 ‖ x ‖ y`, 65 bytes), the form X.509 carries.
    pub fn from_uncompressed(bytes: &[u8]) -> Result<Self, NetworkKeyError> {
        if bytes.len() != 65 || bytes[0] != 4 {
            return Err(NetworkKeyError::Uncompressed {
                len: bytes.len(),
                first: bytes.first().copied().unwrap_or(0),
            });
        }
        let mut out = [0u8; NETWORK_PUBLIC_KEY_LENGTH];
        // The parity of y picks the prefix.
        out[0] = 2 | (bytes[64] & 1);
        out[1..].copy_from_slice(&bytes[1..33]);
        Ok(Self(out))
    }

    /// The 33-byte compressed encoding.
    pub fn as_bytes(&self) -> &[u8; NETWORK_PUBLIC_KEY_LENGTH] {
        &self.0
    }

    /// Standard base64, as in JSON.
    pub fn to_base64(&self) -> String {
        encode_base64(&self.0)
    }
}

impl fmt::Debug for NetworkPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkPublicKey({})", self.to_base64())
    }
}

impl fmt::Display for NetworkPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl Serialize for NetworkPublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_fixed(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for NetworkPublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = deserialize_fixed::<D, NETWORK_PUBLIC_KEY_LENGTH>(deserializer)?;
        Self::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_keeps_x_and_the_parity_of_y() {
        let mut point = [0u8; 65];
        point[0] = 4;
        for (i, b) in point[1..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let even = NetworkPublicKey::from_uncompressed(&point).unwrap();
        assert_eq!(even.as_bytes()[0], 3, "y ends in 63: odd");
        assert_eq!(&even.as_bytes()[1..], &point[1..33]);
        point[64] = 62;
        assert_eq!(
            NetworkPublicKey::from_uncompressed(&point)
                .unwrap()
                .as_bytes()[0],
            2
        );
    }

    #[test]
    fn bad_encodings_are_refused_with_a_reason() {
        assert_eq!(
            NetworkPublicKey::from_bytes(&[2; 32]),
            Err(NetworkKeyError::Length(32))
        );
        assert_eq!(
            NetworkPublicKey::from_bytes(&[4; 33]),
            Err(NetworkKeyError::Prefix(4))
        );
        assert!(NetworkPublicKey::from_uncompressed(&[2; 33]).is_err());
    }

    #[test]
    fn bcs_is_the_raw_bytes_and_json_is_base64() {
        let key = NetworkPublicKey::from_bytes(&[2; 33]).unwrap();
        assert_eq!(bcs::to_bytes(&key).unwrap(), vec![2; 33]);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{}\"", key.to_base64()));
        assert_eq!(
            serde_json::from_str::<NetworkPublicKey>(&json).unwrap(),
            key
        );
        assert_eq!(bcs::from_bytes::<NetworkPublicKey>(&[2; 33]).unwrap(), key);
    }
}
