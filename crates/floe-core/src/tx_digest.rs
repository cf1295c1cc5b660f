//! [`TxDigest`]: the 32-byte digest of a ledger entry, shown as base58 wherever Walrus shows a
//! transaction digest (`txDigest` in event IDs), and the base58 code it is shown in (Bitcoin's
//! alphabet, leading zero bytes as leading `1`s).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Base58 text of `bytes`.
pub fn base58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    // Base-58 digits, least significant first: repeated multiply-and-add of the bytes.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &byte in &bytes[zeros..] {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(
        digits
            .iter()
            .rev()
            .map(|&d| char::from(ALPHABET[usize::from(d)])),
    );
    out
}

/// The bytes of base58 `text`, or `None` if it holds a character outside the alphabet.
pub fn base58_decode(text: &str) -> Option<Vec<u8>> {
    let zeros = text.bytes().take_while(|&c| c == b'1').count();
    // Bytes, least significant first.
    let mut bytes: Vec<u8> = Vec::with_capacity(text.len());
    for c in text.bytes().skip(zeros) {
        let mut carry = ALPHABET.iter().position(|&a| a == c)? as u32;
        for b in bytes.iter_mut() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Some(out)
}

/// The digest of a ledger entry (a transaction or a clock tick): Blake2b-256 of its bytes.
/// Text form: base58 of the 32 bytes, as Walrus clients decode `txDigest`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxDigest(pub [u8; 32]);

impl fmt::Display for TxDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base58_encode(&self.0))
    }
}

impl fmt::Debug for TxDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxDigest({self})")
    }
}

/// Why text is not a transaction digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a transaction digest (base58 of 32 bytes)")]
pub struct TxDigestParseError(pub String);

impl FromStr for TxDigest {
    type Err = TxDigestParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        base58_decode(s)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(TxDigest)
            .ok_or_else(|| TxDigestParseError(s.to_string()))
    }
}

impl Serialize for TxDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            crate::bytes32::serialize(&self.0, s)
        }
    }
}

impl<'de> Deserialize<'de> for TxDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            crate::bytes32::deserialize(d).map(TxDigest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Small cases, and the example of the base58 draft specification.
        assert_eq!(base58_encode(b""), "");
        assert_eq!(base58_encode(&[0]), "1");
        assert_eq!(base58_encode(&[0, 0, 1]), "112");
        assert_eq!(base58_encode(&[57]), "z");
        assert_eq!(base58_encode(&[58]), "21");
        assert_eq!(base58_encode(b"Hello World!"), "2NEpo7TZRRrLZSi2U");
        assert_eq!(base58_encode(&[0; 32]), "1".repeat(32));
        assert_eq!(base58_decode("2NEpo7TZRRrLZSi2U").unwrap(), b"Hello World!");
        assert_eq!(base58_decode("0OIl"), None, "not in the alphabet");
    }

    #[test]
    fn round_trips_and_rejects_wrong_lengths() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200 {
            let mut d = [0u8; 32];
            for b in d.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Many zero bytes, leading ones included.
                *b = if x.is_multiple_of(3) { 0 } else { x as u8 };
            }
            let t = TxDigest(d);
            assert_eq!(t.to_string().parse::<TxDigest>().unwrap(), t);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{t}\""));
            assert_eq!(serde_json::from_str::<TxDigest>(&json).unwrap(), t);
            assert_eq!(bcs::to_bytes(&t).unwrap(), d.to_vec());
        }
        assert!("2NEpo7TZRRrLZSi2U".parse::<TxDigest>().is_err(), "12 bytes");
    }
}
