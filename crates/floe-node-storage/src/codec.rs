//! On-disk layout: keyspace names, keys and versioned values.
//!
//! Every value is BCS of an enum whose first variant is `V1`, so its first byte is the version
//! tag (0 = V1). Decoding checks the tag before BCS so that a value written by a newer build is
//! reported as [`StoreError::UnsupportedVersion`] and anything else unreadable as
//! [`StoreError::Corrupt`]; neither panics. Slivers are encoded by hand for speed, byte for
//! byte as BCS of `StoredSliver::V1(SliverData)` (the tests check this against `bcs`).
//!
//! The keyspaces and their keys and values are listed in the crate docs.

use std::collections::BTreeMap;

use floe_core::{
    BlobId, BlobMetadata, Epoch, ObjectId, ShardIndex, SliverData, SliverIndex, SliverType,
    TxDigest, uleb128,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::blob_info::{BlobInfo, ObjectInfo};
use crate::error::StoreError;
use crate::segments::Location;
use crate::store::MigrationCursor;

/// Keyspace holding blob metadata.
pub(crate) const META: &str = "meta";
/// Keyspace holding blob infos.
pub(crate) const BLOB_INFO: &str = "blob-info";
/// Keyspace holding single node-wide records.
pub(crate) const NODE_STATE: &str = "node-state";
/// Key of the ledger event cursor in [`NODE_STATE`].
pub(crate) const CURSOR_KEY: &[u8] = b"event-cursor";

/// Keyspace holding the slivers of every shard (format version 2).
pub(crate) const SLIVERS: &str = "slivers";

/// The axis byte of a sliver key: 0 primary, 1 secondary.
fn axis_byte(axis: SliverType) -> u8 {
    match axis {
        SliverType::Primary => 0,
        SliverType::Secondary => 1,
    }
}

/// Key of a sliver in [`SLIVERS`]: shard index (u16 BE), axis byte, blob ID. So the slivers of
/// one shard, and of one axis within it, are contiguous and in blob-ID order.
pub(crate) fn sliver_key(shard: ShardIndex, axis: SliverType, blob_id: &BlobId) -> [u8; 35] {
    let mut key = [0u8; 35];
    key[..2].copy_from_slice(&shard.get().to_be_bytes());
    key[2] = axis_byte(axis);
    key[3..].copy_from_slice(&blob_id.0);
    key
}

/// Prefix of every sliver key of `shard`.
pub(crate) fn shard_prefix(shard: ShardIndex) -> [u8; 2] {
    shard.get().to_be_bytes()
}

/// The sliver keys of `(shard, axis)` are those in `[first, end)`.
pub(crate) fn axis_range(shard: ShardIndex, axis: SliverType) -> ([u8; 3], [u8; 3]) {
    let [hi, lo] = shard.get().to_be_bytes();
    let axis = axis_byte(axis);
    ([hi, lo, axis], [hi, lo, axis + 1])
}

/// The blob ID of a sliver key.
pub(crate) fn parse_sliver_key(key: &[u8]) -> Result<BlobId, StoreError> {
    key.get(3..)
        .and_then(|id| <[u8; 32]>::try_from(id).ok())
        .filter(|_| key.len() == 35)
        .map(BlobId)
        .ok_or_else(|| {
            StoreError::corrupt(
                format!("key in keyspace {SLIVERS}"),
                format!(
                    "expected 35 bytes (shard, axis, blob ID), found {}",
                    key.len()
                ),
            )
        })
}

/// Prefix of the markers in [`NODE_STATE`] of shards dropped whose slivers may remain.
pub(crate) const DROPPING_PREFIX: &[u8] = b"dropping/";

/// `prefix` then the shard index (u16 BE): a per-shard key in [`NODE_STATE`].
fn shard_state_key(prefix: &[u8], shard: ShardIndex) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&shard.get().to_be_bytes());
    key
}

/// Inverse of [`shard_state_key`]; `what` names the kind of key in the error.
fn parse_shard_state_key(prefix: &[u8], key: &[u8], what: &str) -> Result<ShardIndex, StoreError> {
    key.strip_prefix(prefix)
        .and_then(|rest| <[u8; 2]>::try_from(rest).ok())
        .map(|b| ShardIndex(u16::from_be_bytes(b)))
        .ok_or_else(|| {
            StoreError::corrupt(
                format!("key in keyspace {NODE_STATE}"),
                format!("not a {what} key: {key:?}"),
            )
        })
}

/// Key of the marker saying that the slivers of `shard` are being deleted.
pub(crate) fn dropping_key(shard: ShardIndex) -> Vec<u8> {
    shard_state_key(DROPPING_PREFIX, shard)
}

/// Inverse of [`dropping_key`].
pub(crate) fn parse_dropping_key(key: &[u8]) -> Result<ShardIndex, StoreError> {
    parse_shard_state_key(DROPPING_PREFIX, key, "dropping marker")
}

/// Name of the format-1 keyspace holding the slivers of `(shard, axis)`, e.g.
/// `shard-0007-primary` (format 1 is only read, to upgrade it; tests lay it out).
#[cfg(test)]
pub(crate) fn shard_keyspace(shard: ShardIndex, axis: SliverType) -> String {
    format!("shard-{:04}-{}", shard.get(), axis.as_str())
}

/// Inverse of [`shard_keyspace`]; `None` for any other name.
pub(crate) fn parse_shard_keyspace(name: &str) -> Option<(ShardIndex, SliverType)> {
    let rest = name.strip_prefix("shard-")?;
    let (num, axis) = rest.split_once('-')?;
    if !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let shard: u16 = num.parse().ok()?;
    if format!("{shard:04}") != num {
        return None; // not the canonical spelling (missing or extra leading zeros)
    }
    Some((ShardIndex(shard), axis.parse().ok()?))
}

/// Prefix of the shard records in [`NODE_STATE`]: `shard/` then the shard index (u16 BE).
pub(crate) const SHARD_RECORD_PREFIX: &[u8] = b"shard/";

/// Prefix of the shard-migration cursors in [`NODE_STATE`].
pub(crate) const MIGRATION_PREFIX: &[u8] = b"migration/";

/// Key of the migration cursor of (`shard`, `axis`): `migration/`, the shard index (u16 BE),
/// then the axis (0 primary, 1 secondary).
pub(crate) fn migration_key(shard: ShardIndex, axis: SliverType) -> Vec<u8> {
    let mut key = shard_state_key(MIGRATION_PREFIX, shard);
    key.push(axis_byte(axis));
    key
}

/// Key of the record saying that `shard` is held.
pub(crate) fn shard_record_key(shard: ShardIndex) -> Vec<u8> {
    shard_state_key(SHARD_RECORD_PREFIX, shard)
}

/// Inverse of [`shard_record_key`].
pub(crate) fn parse_shard_record_key(key: &[u8]) -> Result<ShardIndex, StoreError> {
    parse_shard_state_key(SHARD_RECORD_PREFIX, key, "shard record")
}

/// The key of a blob ID: its 32 raw bytes.
pub(crate) fn blob_key(blob_id: &BlobId) -> [u8; 32] {
    blob_id.0
}

/// Parses a key back into a blob ID.
pub(crate) fn parse_blob_key(keyspace: &str, key: &[u8]) -> Result<BlobId, StoreError> {
    <[u8; 32]>::try_from(key).map(BlobId).map_err(|_| {
        StoreError::corrupt(
            format!("key in keyspace {keyspace}"),
            format!("expected a 32-byte blob ID, found {} bytes", key.len()),
        )
    })
}

/// Number of value versions this build reads, for every kind but blob infos (at V1).
const KNOWN_VERSIONS: u8 = 1;
/// Blob infos: V1, and V2 (with the digests of the ledger entries of their events).
const BLOB_INFO_VERSIONS: u8 = 2;

#[derive(Serialize)]
enum StoredBlobInfoRef<'a> {
    #[allow(dead_code)]
    V1(&'a BlobInfoV1),
    V2(&'a BlobInfo),
}

#[derive(Deserialize)]
enum StoredBlobInfo {
    V1(BlobInfoV1),
    V2(BlobInfo),
}

/// The V1 layout of a blob info: without entry digests.
#[derive(Serialize, Deserialize)]
struct BlobInfoV1 {
    objects: BTreeMap<ObjectId, ObjectInfoV1>,
    invalid_event: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct ObjectInfoV1 {
    end_epoch: Epoch,
    deletable: bool,
    certified_epoch: Option<Epoch>,
    deleted: bool,
    registered_event: u64,
    certified_event: Option<u64>,
}

impl From<BlobInfoV1> for BlobInfo {
    /// The digests V1 did not record read as all zeros.
    fn from(v1: BlobInfoV1) -> Self {
        let unknown = TxDigest::default();
        BlobInfo {
            objects: v1
                .objects
                .into_iter()
                .map(|(id, o)| {
                    let info = ObjectInfo {
                        end_epoch: o.end_epoch,
                        deletable: o.deletable,
                        certified_epoch: o.certified_epoch,
                        deleted: o.deleted,
                        registered_event: o.registered_event,
                        certified_event: o.certified_event,
                        registered_tx: unknown,
                        certified_tx: o.certified_event.map(|_| unknown),
                    };
                    (id, info)
                })
                .collect(),
            invalid_event: v1.invalid_event,
            invalid_tx: v1.invalid_event.map(|_| unknown),
        }
    }
}

#[derive(Serialize, Deserialize)]
enum StoredCursor {
    V1(u64),
}

#[derive(Serialize, Deserialize)]
enum StoredMigration {
    V1 { epoch: u32, next: Option<BlobId> },
}

/// A shard record. V1 carries nothing: its presence means the shard is held.
#[derive(Serialize, Deserialize)]
enum StoredShard {
    V1,
}

fn to_bcs<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    bcs::to_bytes(value).map_err(|e| StoreError::corrupt(what, format!("cannot encode: {e}")))
}

/// Checks that `bytes` starts with a version tag this build reads.
fn check_tag(what: impl Fn() -> String, bytes: &[u8]) -> Result<(), StoreError> {
    check_tag_of(what, bytes, KNOWN_VERSIONS)
}

/// Checks that `bytes` starts with one of the first `known` version tags.
fn check_tag_of(what: impl Fn() -> String, bytes: &[u8], known: u8) -> Result<(), StoreError> {
    let Some(&tag) = bytes.first() else {
        return Err(StoreError::corrupt(what(), "empty value"));
    };
    if tag >= known {
        return Err(StoreError::UnsupportedVersion {
            what: what(),
            version: u64::from(tag) + 1,
            supported: u64::from(known),
        });
    }
    Ok(())
}

/// Checks the version tag, then decodes BCS.
fn from_bcs<T: DeserializeOwned>(what: impl Fn() -> String, bytes: &[u8]) -> Result<T, StoreError> {
    check_tag(&what, bytes)?;
    bcs::from_bytes(bytes).map_err(|e| StoreError::corrupt(what(), e.to_string()))
}

/// Encodes a sliver value: tag 0 (V1), then BCS `SliverData`.
///
/// Written by hand because serde (de)serialises `Vec<u8>` byte by byte, which costs more than
/// the disk I/O for 64 KiB slivers; the bytes are exactly BCS (checked against `bcs` in tests).
/// The value is built straight into the engine's own buffer: an intermediate `Vec` cost one
/// more copy of every stored byte and, for fresh pages, the kernel's page zeroing (together
/// about a tenth of a node's CPU on the 64 MiB PUT profile).
pub(crate) fn encode_sliver(sliver: &SliverData) -> Result<fjall::Slice, StoreError> {
    let (head, tail) = sliver_frame(sliver)?;
    let total = head.len() + sliver.symbols.len() + tail.len();
    let mut parts = std::io::Read::chain(
        std::io::Read::chain(&head[..], sliver.symbols.as_slice()),
        &tail[..],
    );
    fjall::Slice::from_reader(&mut parts, total)
        .map_err(|e| StoreError::corrupt("sliver", e.to_string()))
}

/// What an inline sliver value holds before and after the symbols: the V1 tag and the
/// symbols' ULEB128 length, then the symbol size and the index.
pub(crate) fn sliver_frame(sliver: &SliverData) -> Result<(Vec<u8>, [u8; 4]), StoreError> {
    let len = u32::try_from(sliver.symbols.len())
        .ok()
        .filter(|&l| l <= uleb128::MAX_LEN)
        .ok_or_else(|| StoreError::corrupt("sliver", "too long to encode"))?;
    let (prefix, prefix_len) = uleb128::encode(len);
    let mut head = Vec::with_capacity(1 + prefix_len);
    head.push(0); // the V1 tag
    head.extend_from_slice(&prefix[..prefix_len]);
    let mut tail = [0u8; 4];
    tail[..2].copy_from_slice(&sliver.symbol_size.to_le_bytes());
    tail[2..].copy_from_slice(&sliver.index.get().to_le_bytes());
    Ok((head, tail))
}

/// The layout of an inline sliver value, checked as strictly as `bcs`: where the symbols
/// start, how many there are, and the symbol size and index that follow them.
struct SliverFrame {
    head: usize,
    len: usize,
    symbol_size: u16,
    index: SliverIndex,
}

fn parse_sliver_frame(what: impl Fn() -> String, bytes: &[u8]) -> Result<SliverFrame, StoreError> {
    check_tag(&what, bytes)?;
    let (len, rest) =
        uleb128::read(&bytes[1..]).map_err(|r| StoreError::corrupt(what(), r.to_string()))?;
    if rest.len() != len.saturating_add(4) {
        return Err(StoreError::corrupt(
            what(),
            format!(
                "{} bytes for {len} symbol bytes and 4 header bytes",
                rest.len()
            ),
        ));
    }
    let tail = &rest[len..];
    Ok(SliverFrame {
        head: bytes.len() - rest.len(),
        len,
        symbol_size: u16::from_le_bytes([tail[0], tail[1]]),
        index: SliverIndex(u16::from_le_bytes([tail[2], tail[3]])),
    })
}

/// Decodes a sliver value (the inverse of [`encode_sliver`], as strict as `bcs`).
pub(crate) fn decode_sliver(
    shard: ShardIndex,
    axis: SliverType,
    blob_id: &BlobId,
    bytes: &[u8],
) -> Result<SliverData, StoreError> {
    let f = parse_sliver_frame(
        || format!("{axis} sliver of blob {blob_id} in shard {shard}"),
        bytes,
    )?;
    Ok(SliverData {
        symbols: bytes[f.head..f.head + f.len].to_vec(),
        symbol_size: f.symbol_size,
        index: f.index,
    })
}

/// Decodes an inline sliver value read from a segment, reusing its buffer for the symbols.
pub(crate) fn decode_sliver_vec(
    shard: ShardIndex,
    axis: SliverType,
    blob_id: &BlobId,
    mut bytes: Vec<u8>,
) -> Result<SliverData, StoreError> {
    let what = || format!("{axis} sliver of blob {blob_id} in shard {shard} (in a segment)");
    let f = parse_sliver_frame(what, &bytes)?;
    bytes.truncate(f.head + f.len);
    bytes.drain(..f.head);
    Ok(SliverData {
        symbols: bytes,
        symbol_size: f.symbol_size,
        index: f.index,
    })
}

/// A value of the `slivers` keyspace: the sliver itself (V1) or where it is (V2).
#[derive(Serialize, Deserialize)]
enum StoredSliverEntry {
    V1(SliverData),
    V2(Location),
}

/// Versions of `slivers` values this build reads.
const SLIVER_ENTRY_VERSIONS: u8 = 2;

/// What a `slivers` value says.
pub(crate) enum SliverEntry {
    Inline(SliverData),
    Located(Location),
}

/// Encodes the value of a sliver stored in a segment.
pub(crate) fn encode_location(at: &Location) -> Result<Vec<u8>, StoreError> {
    to_bcs("sliver location", &StoredSliverEntry::V2(*at))
}

/// Decodes a `slivers` value.
pub(crate) fn decode_sliver_entry(
    shard: ShardIndex,
    axis: SliverType,
    blob_id: &BlobId,
    bytes: &[u8],
) -> Result<SliverEntry, StoreError> {
    let what = || format!("{axis} sliver of blob {blob_id} in shard {shard}");
    check_tag_of(what, bytes, SLIVER_ENTRY_VERSIONS)?;
    match location_of(bytes) {
        Some(at) => at.map(SliverEntry::Located),
        None => decode_sliver(shard, axis, blob_id, bytes).map(SliverEntry::Inline),
    }
}

/// The location in a `slivers` value, if it is one (V2); `None` for an inline sliver.
pub(crate) fn location_of(bytes: &[u8]) -> Option<Result<Location, StoreError>> {
    (bytes.first() == Some(&1)).then(|| {
        match bcs::from_bytes(bytes)
            .map_err(|e| StoreError::corrupt("sliver location", e.to_string()))?
        {
            StoredSliverEntry::V2(at) => Ok(at),
            StoredSliverEntry::V1(_) => Err(StoreError::corrupt("sliver location", "tag 1 is V2")),
        }
    })
}

/// Prefix of the segment records in [`NODE_STATE`]: `segment/` then the segment id (u64 BE).
pub(crate) const SEGMENT_RECORD_PREFIX: &[u8] = b"segment/";

/// Key of the record of segment `id`.
pub(crate) fn segment_record_key(id: u64) -> Vec<u8> {
    let mut key = SEGMENT_RECORD_PREFIX.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Inverse of [`segment_record_key`].
pub(crate) fn parse_segment_record_key(key: &[u8]) -> Result<u64, StoreError> {
    key.strip_prefix(SEGMENT_RECORD_PREFIX)
        .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| {
            StoreError::corrupt(
                format!("key in keyspace {NODE_STATE}"),
                format!("not a segment record key: {key:?}"),
            )
        })
}

/// A segment record: how many `slivers` values still point into the segment.
#[derive(Serialize, Deserialize)]
enum StoredSegment {
    V1 { live: u32 },
}

/// Encodes a segment record.
pub(crate) fn encode_segment_record(live: u32) -> Result<Vec<u8>, StoreError> {
    to_bcs("segment record", &StoredSegment::V1 { live })
}

/// Decodes a segment record: its live count.
pub(crate) fn decode_segment_record(id: u64, bytes: &[u8]) -> Result<u32, StoreError> {
    match from_bcs(|| format!("record of segment {id:016x}"), bytes)? {
        StoredSegment::V1 { live } => Ok(live),
    }
}

/// Encodes a metadata value.
pub(crate) fn encode_metadata(metadata: &BlobMetadata) -> Result<Vec<u8>, StoreError> {
    to_bcs("metadata", metadata)
}

/// Decodes a metadata value.
pub(crate) fn decode_metadata(blob_id: &BlobId, bytes: &[u8]) -> Result<BlobMetadata, StoreError> {
    from_bcs(|| format!("metadata of blob {blob_id}"), bytes)
}

/// Encodes a blob-info value.
pub(crate) fn encode_blob_info(info: &BlobInfo) -> Result<Vec<u8>, StoreError> {
    to_bcs("blob info", &StoredBlobInfoRef::V2(info))
}

/// Decodes a blob-info value (V1 or V2).
pub(crate) fn decode_blob_info(blob_id: &BlobId, bytes: &[u8]) -> Result<BlobInfo, StoreError> {
    let what = || format!("blob info of blob {blob_id}");
    check_tag_of(what, bytes, BLOB_INFO_VERSIONS)?;
    match bcs::from_bytes(bytes).map_err(|e| StoreError::corrupt(what(), e.to_string()))? {
        StoredBlobInfo::V1(info) => Ok(info.into()),
        StoredBlobInfo::V2(info) => Ok(info),
    }
}

/// Encodes the event cursor.
pub(crate) fn encode_cursor(cursor: u64) -> Result<Vec<u8>, StoreError> {
    to_bcs("event cursor", &StoredCursor::V1(cursor))
}

/// Decodes the event cursor.
pub(crate) fn decode_cursor(bytes: &[u8]) -> Result<u64, StoreError> {
    match from_bcs(|| "event cursor".to_string(), bytes)? {
        StoredCursor::V1(c) => Ok(c),
    }
}

/// Encodes a shard-migration cursor.
pub(crate) fn encode_migration(cursor: &MigrationCursor) -> Result<Vec<u8>, StoreError> {
    to_bcs(
        "migration cursor",
        &StoredMigration::V1 {
            epoch: cursor.epoch,
            next: cursor.next,
        },
    )
}

/// Decodes a shard-migration cursor.
pub(crate) fn decode_migration(
    shard: ShardIndex,
    axis: SliverType,
    bytes: &[u8],
) -> Result<MigrationCursor, StoreError> {
    match from_bcs(
        || format!("migration cursor of shard {shard} {axis:?}"),
        bytes,
    )? {
        StoredMigration::V1 { epoch, next } => Ok(MigrationCursor { epoch, next }),
    }
}

/// Encodes a shard record.
pub(crate) fn encode_shard_record() -> Result<Vec<u8>, StoreError> {
    to_bcs("shard record", &StoredShard::V1)
}

/// Decodes a shard record.
pub(crate) fn decode_shard_record(shard: ShardIndex, bytes: &[u8]) -> Result<(), StoreError> {
    match from_bcs(|| format!("record of shard {shard}"), bytes)? {
        StoredShard::V1 => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The layout the hand-written sliver codec must match.
    #[derive(Serialize, Deserialize)]
    enum StoredSliver {
        V1(SliverData),
    }

    fn sample(len: usize) -> SliverData {
        SliverData {
            symbols: (0..len).map(|i| (i * 31 % 251) as u8).collect(),
            symbol_size: 0xabcd,
            index: SliverIndex(0x1234),
        }
    }

    #[test]
    fn sliver_codec_is_bcs() {
        let id = BlobId([1; 32]);
        for len in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000, 2_097_152] {
            let s = sample(len);
            let bytes = encode_sliver(&s).unwrap().to_vec();
            assert_eq!(
                bytes,
                bcs::to_bytes(&StoredSliver::V1(s.clone())).unwrap(),
                "{len}"
            );
            assert_eq!(decode_sliver(ShardIndex(0), P, &id, &bytes).unwrap(), s);
        }
    }

    const P: SliverType = SliverType::Primary;

    proptest! {
        /// On any bytes the hand-written decoder agrees with `bcs` (both reject or both accept
        /// the same value).
        #[test]
        fn sliver_decoder_agrees_with_bcs(mut bytes in proptest::collection::vec(any::<u8>(), 0..40), cut in 0usize..40) {
            if !bytes.is_empty() {
                bytes[0] = 0;
            }
            bytes.truncate(cut.max(1));
            let ours = decode_sliver(ShardIndex(0), P, &BlobId([0; 32]), &bytes).ok();
            let theirs = bcs::from_bytes::<StoredSliver>(&bytes).ok().map(|StoredSliver::V1(s)| s);
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn sliver_decoder_agrees_with_bcs_on_valid_prefixes(len in 0usize..300, extra in proptest::collection::vec(any::<u8>(), 0..6), cut in 0usize..310) {
            let mut bytes = encode_sliver(&sample(len)).unwrap().to_vec();
            bytes.extend(extra);
            bytes.truncate(cut);
            let ours = decode_sliver(ShardIndex(0), P, &BlobId([0; 32]), &bytes).ok();
            let theirs = bcs::from_bytes::<StoredSliver>(&bytes).ok().map(|StoredSliver::V1(s)| s);
            prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn non_canonical_lengths_are_corrupt() {
        let id = BlobId([0; 32]);
        // Length 1 written as two bytes (0x81 0x00), then 1 symbol byte and 4 header bytes.
        let bytes = [0, 0x81, 0x00, 7, 0, 0, 0, 0];
        assert!(bcs::from_bytes::<StoredSliver>(&bytes).is_err());
        assert!(matches!(
            decode_sliver(ShardIndex(0), P, &id, &bytes),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn shard_names_round_trip() {
        for shard in [0u16, 7, 999, 9999, 10_000, u16::MAX] {
            for axis in [SliverType::Primary, SliverType::Secondary] {
                let name = shard_keyspace(ShardIndex(shard), axis);
                assert_eq!(parse_shard_keyspace(&name), Some((ShardIndex(shard), axis)));
            }
        }
        assert_eq!(
            shard_keyspace(ShardIndex(7), SliverType::Secondary),
            "shard-0007-secondary"
        );
        for bad in [
            "meta",
            "shard-7-primary",
            "shard-00007-primary",
            "shard-0007-tertiary",
            "shard-abcd-primary",
            "shard-99999-primary",
        ] {
            assert_eq!(parse_shard_keyspace(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_start_with_the_version_tag() {
        let sliver = SliverData {
            symbols: vec![1, 2, 3, 4],
            symbol_size: 2,
            index: SliverIndex(3),
        };
        let bytes = encode_sliver(&sliver).unwrap();
        assert_eq!(bytes[0], 0);
        assert_eq!(&bytes[1..], &bcs::to_bytes(&sliver).unwrap()[..]);
        assert!(matches!(
            decode_sliver(ShardIndex(0), P, &BlobId([0; 32]), &[1]),
            Err(StoreError::UnsupportedVersion { version: 2, .. })
        ));
        let id = BlobId([1; 32]);
        let back = decode_sliver(ShardIndex(0), SliverType::Primary, &id, &bytes).unwrap();
        assert_eq!(back, sliver);

        assert_eq!(encode_cursor(5).unwrap(), [0, 5, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            decode_cursor(&encode_cursor(u64::MAX).unwrap()).unwrap(),
            u64::MAX
        );
        let info = BlobInfo::default();
        assert_eq!(encode_blob_info(&info).unwrap(), [1, 0, 0, 0]);

        assert_eq!(encode_shard_record().unwrap(), [0]);
        decode_shard_record(ShardIndex(1), &[0]).unwrap();
        assert!(decode_shard_record(ShardIndex(1), &[0, 0]).is_err());
        let key = shard_record_key(ShardIndex(0x0102));
        assert_eq!(key, b"shard/\x01\x02");
        assert_eq!(parse_shard_record_key(&key).unwrap(), ShardIndex(0x0102));
        assert!(parse_shard_record_key(b"shard/\x01").is_err());
    }

    #[test]
    fn blob_infos_of_v1_read_with_unknown_digests_and_v2_round_trips() {
        let id = BlobId([3; 32]);
        let v1 = BlobInfoV1 {
            objects: [(
                ObjectId([4; 32]),
                ObjectInfoV1 {
                    end_epoch: 9,
                    deletable: true,
                    certified_epoch: Some(2),
                    deleted: false,
                    registered_event: 5,
                    certified_event: Some(6),
                },
            )]
            .into(),
            invalid_event: Some(7),
        };
        let bytes = to_bcs("v1", &StoredBlobInfoRef::V1(&v1)).unwrap();
        assert_eq!(bytes[0], 0);
        let info = decode_blob_info(&id, &bytes).unwrap();
        let o = &info.objects[&ObjectId([4; 32])];
        assert_eq!((o.registered_event, o.certified_event), (5, Some(6)));
        assert_eq!(o.registered_tx, TxDigest::default());
        assert_eq!(o.certified_tx, Some(TxDigest::default()));
        assert_eq!(
            (info.invalid_event, info.invalid_tx),
            (Some(7), Some(TxDigest::default()))
        );
        let mut info = info;
        info.objects
            .get_mut(&ObjectId([4; 32]))
            .unwrap()
            .registered_tx = TxDigest([8; 32]);
        let bytes = encode_blob_info(&info).unwrap();
        assert_eq!(bytes[0], 1, "written as V2");
        assert_eq!(decode_blob_info(&id, &bytes).unwrap(), info);
        assert!(matches!(
            decode_blob_info(&id, &[2, 0, 0]),
            Err(StoreError::UnsupportedVersion {
                version: 3,
                supported: 2,
                ..
            })
        ));
    }

    #[test]
    fn bad_values_are_typed_errors() {
        let id = BlobId([9; 32]);
        assert!(matches!(
            decode_cursor(&[]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode_cursor(&[0, 1, 2]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode_cursor(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 99]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode_blob_info(&id, &[3, 0, 0]),
            Err(StoreError::UnsupportedVersion {
                version: 4,
                supported: 2,
                ..
            })
        ));
        assert!(matches!(
            decode_metadata(&id, &[0xff, 0xff]),
            Err(StoreError::UnsupportedVersion { .. })
        ));
        let err = decode_sliver(ShardIndex(3), SliverType::Secondary, &id, &[0, 200]).unwrap_err();
        assert!(err.to_string().contains("secondary sliver"), "{err}");
    }
}
