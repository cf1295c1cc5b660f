//! Helpers shared by the fuzz targets.

use std::fmt::Debug;
use std::sync::OnceLock;

use floe_core::{BlobMetadataWithId, EncodingConfig, compute_metadata};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes `data` as BCS `T`. Decoding may fail but must not panic. Whatever decodes must
/// re-encode to exactly `data` (the layouts are canonical), and the re-encoding must decode to an
/// equal value. Returns the decoded value for further checks.
pub fn bcs_round_trip<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let value: T = bcs::from_bytes(data).ok()?;
    let encoded = bcs::to_bytes(&value).expect("a decoded value re-encodes");
    let again: T = bcs::from_bytes(&encoded).expect("a re-encoding decodes");
    assert_eq!(again, value, "decode(encode(x)) != x");
    assert_eq!(encoded, data, "BCS encoding is not canonical for {value:?}");
    Some(value)
}

/// Shard counts the targets verify decoded values against.
pub const SHARD_COUNTS: [u16; 3] = [4, 10, 1000];

/// A small, consistent blob's metadata at n = 4 (p = 2, s = 3, symbol size 2), to run decoded
/// slivers and proofs through the verifiers.
pub fn small_metadata() -> &'static (EncodingConfig, BlobMetadataWithId) {
    static META: OnceLock<(EncodingConfig, BlobMetadataWithId)> = OnceLock::new();
    META.get_or_init(|| {
        let config = EncodingConfig::new(4).expect("4 shards is valid");
        let metadata = compute_metadata(&config, b"floe fuzz").expect("9 bytes fit");
        (config, metadata)
    })
}
