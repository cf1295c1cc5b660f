//! Serde helpers shared by keys, signed messages and certificates.
//!
//! Two encodings are provided:
//!
//! * fixed-size byte arrays (public keys, signatures): in binary formats a tuple of exactly `N`
//!   bytes — in BCS that is the raw bytes with **no** length prefix, the layout Walrus uses for BLS
//!   keys and signatures — and in human-readable formats a standard base64 string with padding;
//! * variable-length byte vectors: in binary formats an ordinary `Vec<u8>` (BCS: ULEB128 length,
//!   then the bytes), in human-readable formats a standard base64 string with padding.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de;
use serde::{Deserialize, Deserializer, Serializer};

/// Encode bytes as standard base64 with padding.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decode standard base64 with padding, returning the decoder's message on failure.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    STANDARD.decode(text.trim()).map_err(|e| e.to_string())
}

/// Serialize a fixed-size byte array (see the module documentation).
pub(crate) fn serialize_fixed<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.serialize_str(&encode_base64(bytes))
    } else {
        floe_core::bytes32::serialize_words(bytes, serializer)
    }
}

/// Deserialize a fixed-size byte array (see the module documentation).
pub(crate) fn deserialize_fixed<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error> {
    if deserializer.is_human_readable() {
        let text = String::deserialize(deserializer)?;
        let bytes = decode_base64(&text).map_err(de::Error::custom)?;
        let expected = format!("exactly {N} bytes");
        <[u8; N]>::try_from(bytes.as_slice())
            .map_err(|_| de::Error::invalid_length(bytes.len(), &expected.as_str()))
    } else {
        floe_core::bytes32::deserialize_words(deserializer)
    }
}

/// `#[serde(with = ...)]` module for `Vec<u8>` fields: base64 text when human-readable, a plain
/// byte vector otherwise.
pub(crate) mod base64_vec {
    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Serialize the bytes.
    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&super::encode_base64(bytes))
        } else {
            // As BCS bytes: the same encoding as a sequence of u8 (length, then the bytes),
            // written and read in one call instead of one per byte.
            serde_bytes::serialize(bytes, serializer)
        }
    }

    /// Deserialize the bytes.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            super::decode_base64(&text).map_err(de::Error::custom)
        } else {
            serde_bytes::ByteBuf::deserialize(deserializer).map(serde_bytes::ByteBuf::into_vec)
        }
    }
}
