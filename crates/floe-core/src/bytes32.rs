//! Serde for 32-byte identifiers (and other byte arrays) in binary formats, in 8-byte words.
//!
//! Serde's own `[u8; 32]` goes through the format one byte at a time (32 calls each way); in
//! BCS that is most of the time spent decoding the ledger's state, whose maps are keyed and
//! filled with 32-byte IDs. A tuple of four `u64` is the same 32 bytes in BCS (a tuple has no
//! framing and a `u64` is 8 little-endian bytes), in four calls. Only for formats where that
//! holds (BCS, the one binary format Floe uses); human-readable formats take the IDs' text
//! forms before reaching here.

use serde::de::{Error, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserializer, Serializer};

/// Write `bytes` as four little-endian `u64` words (in BCS: the 32 bytes as they are).
pub fn serialize<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
    serialize_words(bytes, serializer)
}

/// Read what [`serialize`] wrote.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
    deserialize_words(deserializer)
}

/// Any array of a multiple of 8 bytes (keys and signatures too) as `N / 8` little-endian `u64`
/// words: in BCS, the `N` bytes as they are. Other lengths go one byte at a time.
pub fn serialize_words<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if !N.is_multiple_of(8) {
        let mut tuple = serializer.serialize_tuple(N)?;
        for byte in bytes {
            tuple.serialize_element(byte)?;
        }
        return tuple.end();
    }
    let mut tuple = serializer.serialize_tuple(N / 8)?;
    for word in bytes.chunks_exact(8) {
        tuple.serialize_element(&u64::from_le_bytes(word.try_into().expect("8 bytes")))?;
    }
    tuple.end()
}

/// Read what [`serialize_words`] wrote.
pub fn deserialize_words<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error> {
    if !N.is_multiple_of(8) {
        return deserializer.deserialize_tuple(N, Words::<N>);
    }
    deserializer.deserialize_tuple(N / 8, Words::<N>)
}

struct Words<const N: usize>;

impl<'de, const N: usize> Visitor<'de> for Words<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{N} bytes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
        let mut out = [0u8; N];
        if !N.is_multiple_of(8) {
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(i, &self))?;
            }
            return Ok(out);
        }
        for (i, word) in out.chunks_exact_mut(8).enumerate() {
            let w: u64 = seq
                .next_element()?
                .ok_or_else(|| A::Error::invalid_length(i * 8, &self))?;
            word.copy_from_slice(&w.to_le_bytes());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Id(#[serde(with = "super")] [u8; 32]);

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Wide(
        #[serde(
            serialize_with = "super::serialize_words",
            deserialize_with = "super::deserialize_words"
        )]
        [u8; 96],
        #[serde(
            serialize_with = "super::serialize_words",
            deserialize_with = "super::deserialize_words"
        )]
        [u8; 5],
    );

    #[test]
    fn other_lengths_are_their_raw_bytes_too() {
        let a: [u8; 96] = std::array::from_fn(|i| i as u8 ^ 0x3C);
        let b = [9u8, 8, 7, 6, 5];
        let bytes = bcs::to_bytes(&Wide(a, b)).unwrap();
        assert_eq!(bytes, [&a[..], &b[..]].concat());
        assert_eq!(bcs::from_bytes::<Wide>(&bytes).unwrap(), Wide(a, b));
        assert!(bcs::from_bytes::<Wide>(&bytes[..100]).is_err());
    }

    #[test]
    fn the_bcs_bytes_are_the_raw_bytes_and_round_trip() {
        let raw: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xA5);
        let bytes = bcs::to_bytes(&Id(raw)).unwrap();
        assert_eq!(bytes, bcs::to_bytes(&raw).unwrap());
        assert_eq!(bytes, raw);
        assert_eq!(bcs::from_bytes::<Id>(&bytes).unwrap(), Id(raw));
        // Short input is an error, not a zero-padded ID.
        assert!(bcs::from_bytes::<Id>(&bytes[..31]).is_err());
        // In a sequence, each takes exactly its 32 bytes.
        let two = vec![Id(raw), Id([7; 32])];
        let enc = bcs::to_bytes(&two).unwrap();
        assert_eq!(enc.len(), 1 + 64);
        assert_eq!(bcs::from_bytes::<Vec<Id>>(&enc).unwrap(), two);
    }
}
