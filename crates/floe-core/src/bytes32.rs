//! Serde for 32-byte identifiers in binary formats, in four 8-byte words.
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
    let mut tuple = serializer.serialize_tuple(4)?;
    for word in bytes.chunks_exact(8) {
        tuple.serialize_element(&u64::from_le_bytes(word.try_into().expect("8 bytes")))?;
    }
    tuple.end()
}

/// Read what [`serialize`] wrote.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
    deserializer.deserialize_tuple(4, Words)
}

struct Words;

impl<'de> Visitor<'de> for Words {
    type Value = [u8; 32];

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("32 bytes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; 32], A::Error> {
        let mut out = [0u8; 32];
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
