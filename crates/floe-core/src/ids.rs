//! Identifiers: blob IDs, object IDs, shard / sliver-pair / sliver indices, epochs, encoding type.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An epoch number. Epoch 0 is the genesis epoch.
pub type Epoch = u32;

/// Errors from parsing identifiers given as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    #[error(
        "not a blob ID: expected 43 URL-safe base64 characters, 64 hex digits (optionally with 0x), \
         or a decimal u256 (little-endian form), got {0:?}"
    )]
    BadBlobId(String),
    #[error("not an object ID: expected 64 hex digits with an optional 0x prefix, got {0:?}")]
    BadObjectId(String),
    #[error("decimal value does not fit in 256 bits")]
    DecimalOverflow,
    #[error(
        "unknown encoding type {0:?}: the only supported encoding is RS2 (\"rs2\", \"reed-solomon\")"
    )]
    UnknownEncoding(String),
    #[error("unknown sliver type {0:?}: expected \"primary\" or \"secondary\"")]
    UnknownSliverType(String),
}

/// A blob ID: Blake2b-256 over (encoding type, unencoded length, Merkle root). 32 bytes.
///
/// Text form: URL-safe base64 without padding (43 characters), exactly as Walrus prints it.
/// [`BlobId::to_hex`] and [`BlobId::to_decimal`] give the other accepted forms; [`FromStr`]
/// accepts all three.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    pub const LENGTH: usize = 32;

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The decimal form of the 32 bytes read as a little-endian u256 (the ledger/Move form).
    pub fn to_decimal(&self) -> String {
        let mut le = self.0;
        decimal_from_le(&mut le)
    }

    /// Parse the decimal u256 form (little-endian interpretation of the bytes).
    pub fn from_decimal(s: &str) -> Result<Self, IdParseError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdParseError::BadBlobId(s.to_string()));
        }
        let mut le = [0u8; 32];
        for digit in s.bytes() {
            // le = le * 10 + digit
            let mut carry = u32::from(digit - b'0');
            for byte in le.iter_mut() {
                let v = u32::from(*byte) * 10 + carry;
                *byte = (v & 0xff) as u8;
                carry = v >> 8;
            }
            if carry != 0 {
                return Err(IdParseError::DecimalOverflow);
            }
        }
        Ok(BlobId(le))
    }

    /// `self` as a big-endian unsigned integer, reduced modulo `n` (the pair → shard rotation).
    pub fn big_endian_mod(&self, n: u16) -> u16 {
        let n = u32::from(n);
        let rem = self
            .0
            .iter()
            .fold(0u32, |acc, &b| (acc * 256 + u32::from(b)) % n);
        rem as u16
    }
}

fn decimal_from_le(le: &mut [u8; 32]) -> String {
    let mut digits = Vec::new();
    loop {
        let mut rem = 0u32;
        let mut all_zero = true;
        for byte in le.iter_mut().rev() {
            let v = (rem << 8) | u32::from(*byte);
            *byte = (v / 10) as u8;
            rem = v % 10;
            all_zero &= *byte == 0;
        }
        digits.push(b'0' + rem as u8);
        if all_zero {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).expect("ascii digits")
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

impl FromStr for BlobId {
    type Err = IdParseError;

    /// Accepts base64url (43 chars), hex (64 digits, optional `0x`) or a decimal u256.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() == 43
            && let Ok(bytes) = URL_SAFE_NO_PAD.decode(s)
            && let Ok(arr) = <[u8; 32]>::try_from(bytes.as_slice())
        {
            return Ok(BlobId(arr));
        }
        if let Some(arr) = parse_hex32(s) {
            return Ok(BlobId(arr));
        }
        if !s.is_empty() && s.len() <= 78 && s.bytes().all(|b| b.is_ascii_digit()) {
            return BlobId::from_decimal(s);
        }
        Err(IdParseError::BadBlobId(s.to_string()))
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.to_base64())
    }
}

/// Binary formats (BCS) carry the 32 raw bytes; human-readable formats (JSON) the base64 text.
impl Serialize for BlobId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_base64())
        } else {
            crate::bytes32::serialize(&self.0, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for BlobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = String::deserialize(deserializer)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(BlobId(crate::bytes32::deserialize(deserializer)?))
        }
    }
}

/// The ID of a ledger object (a blob registration, a storage resource). 32 bytes, shown as `0x` hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = IdParseError;
    /// 64 hex digits with an optional `0x`, or, as Sui writes short IDs, `0x` and 1 to 64
    /// digits, left-padded with zeros (`0x1` is `0x00…01`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let padded = match s.strip_prefix("0x") {
            Some(digits) if (1..64).contains(&digits.len()) => format!("{digits:0>64}"),
            _ => s.to_string(),
        };
        parse_hex32(&padded)
            .map(ObjectId)
            .ok_or_else(|| IdParseError::BadObjectId(s.to_string()))
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_string())
        } else {
            crate::bytes32::serialize(&self.0, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = String::deserialize(deserializer)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(ObjectId(crate::bytes32::deserialize(deserializer)?))
        }
    }
}

macro_rules! index_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u16);

        impl $name {
            pub fn get(self) -> u16 {
                self.0
            }
            pub fn as_usize(self) -> usize {
                usize::from(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<u16> for $name {
            fn from(v: u16) -> Self {
                Self(v)
            }
        }
    };
}

index_type!(
    /// A shard, 0..n_shards. Shards are what nodes own; weights are counted in shards.
    ShardIndex
);
index_type!(
    /// A sliver pair, 0..n_shards: pair k = (primary sliver k, secondary sliver n−1−k).
    SliverPairIndex
);
index_type!(
    /// The index of a sliver on its own axis (row for primary, column for secondary), 0..n_shards.
    SliverIndex
);

impl SliverPairIndex {
    /// The sliver index on `axis` of this pair.
    pub fn to_sliver_index(self, axis: SliverType, n_shards: u16) -> SliverIndex {
        match axis {
            SliverType::Primary => SliverIndex(self.0),
            SliverType::Secondary => SliverIndex(n_shards - 1 - self.0),
        }
    }

    /// The shard that stores this pair for `blob_id`: `(pair + offset) mod n`, where the offset is
    /// the blob ID read as a big-endian integer, mod n.
    pub fn to_shard_index(self, n_shards: u16, blob_id: &BlobId) -> ShardIndex {
        PairRotation::of(blob_id, n_shards).shard(self)
    }
}

/// One blob's placement of its sliver pairs on n shards (see
/// [`SliverPairIndex::to_shard_index`]), with the 32-byte modular reduction done once: for the
/// many lookups of one read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairRotation {
    offset: u16,
    n_shards: u16,
}

impl PairRotation {
    pub fn of(blob_id: &BlobId, n_shards: u16) -> Self {
        Self {
            offset: blob_id.big_endian_mod(n_shards),
            n_shards,
        }
    }

    /// The shard storing `pair` (in range: `pair < n_shards`).
    pub fn shard(&self, pair: SliverPairIndex) -> ShardIndex {
        let n = u32::from(self.n_shards);
        ShardIndex(((u32::from(pair.0) + u32::from(self.offset)) % n) as u16)
    }
}

impl SliverIndex {
    /// The pair this sliver belongs to (the same formula both ways).
    pub fn to_pair_index(self, axis: SliverType, n_shards: u16) -> SliverPairIndex {
        match axis {
            SliverType::Primary => SliverPairIndex(self.0),
            SliverType::Secondary => SliverPairIndex(n_shards - 1 - self.0),
        }
    }
}

impl ShardIndex {
    /// The pair stored on this shard for `blob_id`: `(n + shard − offset) mod n`.
    pub fn to_pair_index(self, n_shards: u16, blob_id: &BlobId) -> SliverPairIndex {
        let offset = u32::from(blob_id.big_endian_mod(n_shards));
        let n = u32::from(n_shards);
        SliverPairIndex(((n + u32::from(self.0) - offset) % n) as u16)
    }
}

/// The two axes of the RedStuff matrix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SliverType {
    /// Rows of the expanded matrix (first `n − f` columns kept). Rows `0..n−2f` are the raw blob.
    Primary,
    /// Columns of the expanded matrix (first `n − 2f` rows kept).
    Secondary,
}

impl SliverType {
    pub fn orthogonal(self) -> Self {
        match self {
            SliverType::Primary => SliverType::Secondary,
            SliverType::Secondary => SliverType::Primary,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SliverType::Primary => "primary",
            SliverType::Secondary => "secondary",
        }
    }
}

impl fmt::Display for SliverType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SliverType {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "primary" => Ok(SliverType::Primary),
            "secondary" => Ok(SliverType::Secondary),
            other => Err(IdParseError::UnknownSliverType(other.to_string())),
        }
    }
}

/// The encoding of a blob. Only `RS2` (byte 1) exists; byte 0 (the retired RaptorQ variant) is
/// rejected when decoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum EncodingType {
    #[default]
    RS2,
}

impl EncodingType {
    pub const RS2_BYTE: u8 = 1;

    pub fn to_byte(self) -> u8 {
        match self {
            EncodingType::RS2 => Self::RS2_BYTE,
        }
    }

    pub fn from_byte(b: u8) -> Option<Self> {
        (b == Self::RS2_BYTE).then_some(EncodingType::RS2)
    }
}

impl fmt::Display for EncodingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedStuff/Reed-Solomon")
    }
}

impl FromStr for EncodingType {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rs2" | "reed-solomon" | "redstuff/reed-solomon" => Ok(EncodingType::RS2),
            _ => Err(IdParseError::UnknownEncoding(s.to_string())),
        }
    }
}

/// BCS: one byte (enum variant index 1). JSON: `"RS2"`.
impl Serialize for EncodingType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str("RS2")
        } else {
            serializer.serialize_u8(self.to_byte())
        }
    }
}

impl<'de> Deserialize<'de> for EncodingType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = String::deserialize(deserializer)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            let b = u8::deserialize(deserializer)?;
            EncodingType::from_byte(b).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unsupported encoding type byte {b} (only RS2 = 1)"
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_id_text_forms_round_trip() {
        let id: BlobId = "RcU82Mwf-CFkv1LaI_2qcpANwpGUuG3TMwnVzZxD2kY"
            .parse()
            .unwrap();
        assert_eq!(
            id.to_string(),
            "RcU82Mwf-CFkv1LaI_2qcpANwpGUuG3TMwnVzZxD2kY"
        );
        assert_eq!(id.to_hex().parse::<BlobId>().unwrap(), id);
        assert_eq!(format!("0x{}", id.to_hex()).parse::<BlobId>().unwrap(), id);
        assert_eq!(id.to_decimal().parse::<BlobId>().unwrap(), id);
        assert_eq!(BlobId::from_decimal(&id.to_decimal()).unwrap(), id);
    }

    #[test]
    fn decimal_is_little_endian() {
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        bytes[1] = 1;
        assert_eq!(BlobId(bytes).to_decimal(), "257");
        assert_eq!(BlobId::from_decimal("257").unwrap(), BlobId(bytes));
        assert_eq!(BlobId([0; 32]).to_decimal(), "0");
        let max = BlobId([0xff; 32]).to_decimal();
        assert_eq!(max.len(), 78);
        assert_eq!(BlobId::from_decimal(&max).unwrap(), BlobId([0xff; 32]));
        let mut too_big = max.clone();
        too_big.push('0');
        assert!(BlobId::from_decimal(&too_big).is_err());
    }

    #[test]
    fn bad_blob_ids_are_rejected() {
        for s in [
            "",
            "abc",
            "zz",
            "RcU82Mwf-CFkv1LaI_2qcpANwpGUuG3TMwnVzZxD2k",
            "0xgg",
        ] {
            assert!(s.parse::<BlobId>().is_err(), "{s}");
        }
    }

    #[test]
    fn short_object_ids_are_left_padded() {
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!("0x1".parse::<ObjectId>().unwrap(), ObjectId(one));
        assert_eq!("0x01".parse::<ObjectId>().unwrap(), ObjectId(one));
        let mut abc = [0u8; 32];
        abc[30] = 0x0a;
        abc[31] = 0xbc;
        assert_eq!("0xabc".parse::<ObjectId>().unwrap(), ObjectId(abc));
        let full = format!("0x{}", "11".repeat(32));
        assert_eq!(full.parse::<ObjectId>().unwrap(), ObjectId([0x11; 32]));
        assert_eq!(
            "11".repeat(32).parse::<ObjectId>().unwrap(),
            ObjectId([0x11; 32])
        );
        for bad in ["0x", "1", "0xg", &format!("0x{}", "1".repeat(65)), "abc"] {
            assert!(bad.parse::<ObjectId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rotation_is_big_endian_and_invertible() {
        let mut bytes = [0u8; 32];
        bytes[31] = 7; // big-endian value 7
        let id = BlobId(bytes);
        assert_eq!(id.big_endian_mod(10), 7);
        for n in [4u16, 10, 1000] {
            for k in 0..n {
                let pair = SliverPairIndex(k);
                let shard = pair.to_shard_index(n, &id);
                assert_eq!(shard.to_pair_index(n, &id), pair);
            }
        }
        assert_eq!(SliverPairIndex(0).to_shard_index(10, &id), ShardIndex(7));
        let rotation = PairRotation::of(&id, 10);
        assert_eq!(rotation.shard(SliverPairIndex(5)), ShardIndex(2));
        assert_eq!(SliverPairIndex(5).to_shard_index(10, &id), ShardIndex(2));
    }

    #[test]
    fn encoding_type_bcs_and_json() {
        assert_eq!(bcs::to_bytes(&EncodingType::RS2).unwrap(), vec![1]);
        assert!(bcs::from_bytes::<EncodingType>(&[0]).is_err());
        assert_eq!(
            serde_json::to_string(&EncodingType::RS2).unwrap(),
            "\"RS2\""
        );
        for s in ["rs2", "reed-solomon", "RedStuff/Reed-Solomon"] {
            assert_eq!(s.parse::<EncodingType>().unwrap(), EncodingType::RS2);
        }
        assert_eq!(EncodingType::RS2.to_string(), "RedStuff/Reed-Solomon");
    }

    #[test]
    fn sliver_index_pair_conversions() {
        let n = 10;
        assert_eq!(
            SliverPairIndex(2).to_sliver_index(SliverType::Secondary, n),
            SliverIndex(7)
        );
        assert_eq!(
            SliverIndex(7).to_pair_index(SliverType::Secondary, n),
            SliverPairIndex(2)
        );
        assert_eq!(
            SliverPairIndex(2).to_sliver_index(SliverType::Primary, n),
            SliverIndex(2)
        );
    }
}
