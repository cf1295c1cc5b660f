//! The state's canonical encoding for snapshots.

use std::collections::BTreeMap;
use std::sync::Arc;

use floe_core::{Epoch, ObjectId};
use serde::{Deserialize, Serialize};

use super::LedgerState;
use crate::challenge::EpochChallenges;
use crate::lazy_map::{FixedKey, Layout, LazyMap};
use crate::types::{Address, Committee, EpochState, NodeId, StorageNode, SystemParams};
use serde::de::DeserializeOwned;

/// Serde for maps keyed by 32-byte IDs, whose order (`Ord`) is the order of their BCS bytes.
///
/// BCS writes a map as its length and then its entries in the order of their keys' bytes,
/// which is exactly a sequence of `(key, value)` pairs. Written as that sequence (the map
/// already iterates in that order), the bytes are the same without BCS buffering and sorting
/// every entry. Read as that sequence, checked strictly ascending (what BCS itself checks of a
/// map, so a non-canonical encoding is still refused), and built in one pass, the map skips the
/// per-entry search and the copy of every key. Human-readable formats use an ordinary map.
pub(crate) mod id_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S, K, V>(map: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize,
        V: Serialize,
    {
        if serializer.is_human_readable() {
            return map.serialize(serializer);
        }
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        if deserializer.is_human_readable() {
            return BTreeMap::deserialize(deserializer);
        }
        let entries = Vec::<(K, V)>::deserialize(deserializer)?;
        if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(serde::de::Error::custom(
                "map keys are not in strictly ascending order",
            ));
        }
        Ok(entries.into_iter().collect())
    }
}

/// Where the entries of the state's lazily loaded maps end within its encoding, so that a
/// snapshot can be opened without decoding them (see [`crate::lazy_map`]).
///
/// The four maps (storage resources, blob objects, object events, records by blob ID) are
/// consecutive fields of the state; each index gives the byte where the map's length starts
/// and the byte after each of its entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateIndex {
    pub maps: Vec<MapIndex>,
}

/// One map of a [`StateIndex`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapIndex {
    pub start: u64,
    pub ends: Vec<u64>,
}

/// Why an indexed state could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateLoadError {
    #[error("the state index lists {0} maps, not {LAZY_MAPS}")]
    MapCount(usize),
    #[error("map {map} starts at byte {start}, not where the previous part ends ({expected})")]
    Start {
        map: usize,
        start: u64,
        expected: usize,
    },
    #[error("map {map}: {error}")]
    Map {
        map: usize,
        error: crate::lazy_map::EncodedMapError,
    },
    #[error("the state's {part} does not decode: {error}")]
    Part { part: &'static str, error: String },
}

/// Map `map` of `index`, which must start at `*at`; `*at` is moved past it. The map keeps the
/// index's entry ends (taken from `index`).
fn load_map<K: FixedKey, V: DeserializeOwned>(
    bytes: &Arc<Vec<u8>>,
    origin: usize,
    index: &mut StateIndex,
    map: usize,
    at: &mut usize,
) -> Result<LazyMap<K, V>, StateLoadError> {
    let m = &mut index.maps[map];
    if m.start != *at as u64 {
        return Err(StateLoadError::Start {
            map,
            start: m.start,
            expected: *at,
        });
    }
    let ends = std::mem::take(&mut m.ends);
    let (loaded, end) = LazyMap::from_encoded(bytes.clone(), origin, *at, ends, Layout::Pairs)
        .map_err(|error| StateLoadError::Map { map, error })?;
    *at = end;
    Ok(loaded)
}

/// The state's maps loaded lazily, in field order.
const LAZY_MAPS: usize = 4;

/// [`id_map::serialize`] for a borrowed map (the same bytes as the owned field writes).
fn id_map_ref<S, K, V>(map: &&BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    K: Serialize,
    V: Serialize,
{
    id_map::serialize(map, serializer)
}

/// The state's fields before its lazily loaded maps, in field order (as written).
#[derive(Serialize)]
struct HeadRef<'a> {
    params: &'a SystemParams,
    epoch: Epoch,
    epoch_state: &'a EpochState,
    committee: &'a Committee,
    previous_committee: &'a Option<Committee>,
    selected_committee: &'a Option<Committee>,
    #[serde(serialize_with = "id_map_ref")]
    nodes: &'a BTreeMap<NodeId, StorageNode>,
    #[serde(serialize_with = "id_map_ref")]
    accounts: &'a BTreeMap<Address, u64>,
}

/// The same, as read.
#[derive(Deserialize)]
struct Head {
    params: SystemParams,
    epoch: Epoch,
    epoch_state: EpochState,
    committee: Committee,
    previous_committee: Option<Committee>,
    selected_committee: Option<Committee>,
    #[serde(with = "id_map")]
    nodes: BTreeMap<NodeId, StorageNode>,
    #[serde(with = "id_map")]
    accounts: BTreeMap<Address, u64>,
}

/// The state's fields after its lazily loaded maps, in field order (as written).
#[derive(Serialize)]
struct TailRef<'a> {
    used_capacity: &'a BTreeMap<Epoch, u64>,
    entry_count: u64,
    event_count: u64,
    digest: &'a [u8; 32],
    challenges: &'a BTreeMap<Epoch, EpochChallenges>,
    #[serde(serialize_with = "id_map_ref")]
    shared_blobs: &'a BTreeMap<ObjectId, ObjectId>,
    #[serde(serialize_with = "id_map_ref")]
    shared_of: &'a BTreeMap<ObjectId, ObjectId>,
    rules: u16,
}

/// The same, as read.
#[derive(Deserialize)]
struct Tail {
    used_capacity: BTreeMap<Epoch, u64>,
    entry_count: u64,
    event_count: u64,
    digest: [u8; 32],
    challenges: BTreeMap<Epoch, EpochChallenges>,
    #[serde(with = "id_map")]
    shared_blobs: BTreeMap<ObjectId, ObjectId>,
    #[serde(with = "id_map")]
    shared_of: BTreeMap<ObjectId, ObjectId>,
    rules: u16,
}

impl LedgerState {
    /// The state's canonical encoding (BCS; every map is ordered, so equal states give equal
    /// bytes). Caches are not part of it.
    pub fn to_snapshot_bytes(&self) -> Vec<u8> {
        self.to_snapshot_parts().0
    }

    /// [`to_snapshot_bytes`](Self::to_snapshot_bytes) with the index that lets
    /// [`from_snapshot_parts`](Self::from_snapshot_parts) load it without decoding its large
    /// maps. Entries loaded that way and not changed since are copied, not encoded again.
    pub fn to_snapshot_parts(&self) -> (Vec<u8>, StateIndex) {
        let mut out = bcs::to_bytes(&HeadRef {
            params: &self.params,
            epoch: self.epoch,
            epoch_state: &self.epoch_state,
            committee: &self.committee,
            previous_committee: &self.previous_committee,
            selected_committee: &self.selected_committee,
            nodes: &self.nodes,
            accounts: &self.accounts,
        })
        .expect("the state serialises");
        let mut index = StateIndex::default();
        let mut map = |out: &mut Vec<u8>, encode: &dyn Fn(&mut Vec<u8>, &mut Vec<u64>)| {
            let mut m = MapIndex {
                start: out.len() as u64,
                ends: Vec::new(),
            };
            encode(out, &mut m.ends);
            index.maps.push(m);
        };
        map(&mut out, &|o, e| self.storage.encode_into(o, e));
        map(&mut out, &|o, e| self.blobs.encode_into(o, e));
        map(&mut out, &|o, e| self.object_events.encode_into(o, e));
        map(&mut out, &|o, e| self.by_blob_id.encode_into(o, e));
        bcs::serialize_into(
            &mut out,
            &TailRef {
                used_capacity: &self.used_capacity,
                entry_count: self.entry_count,
                event_count: self.event_count,
                digest: &self.digest,
                challenges: &self.challenges,
                shared_blobs: &self.shared_blobs,
                shared_of: &self.shared_of,
                rules: self.rules,
            },
        )
        .expect("the state serialises");
        (out, index)
    }

    /// Decode [`to_snapshot_bytes`](Self::to_snapshot_bytes) and rebuild the derived caches.
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<Self, bcs::Error> {
        let mut state: LedgerState = bcs::from_bytes(bytes)?;
        state.refresh_weights();
        Ok(state)
    }

    /// Load [`to_snapshot_parts`](Self::to_snapshot_parts): the parts around the large maps
    /// are decoded, the maps' keys and bounds are checked, and their values are decoded when
    /// first used. The bytes should have passed a checksum: a value that does not decode when
    /// it is first used is a fault of the writer, and panics.
    ///
    /// The state's encoding is `bytes[section]` (it may share a buffer with other sections);
    /// the index counts from the section's start.
    pub fn from_snapshot_parts(
        bytes: Arc<Vec<u8>>,
        section: std::ops::Range<usize>,
        mut index: StateIndex,
    ) -> Result<Self, StateLoadError> {
        if index.maps.len() != LAZY_MAPS {
            return Err(StateLoadError::MapCount(index.maps.len()));
        }
        let part = |part: &'static str, e: bcs::Error| StateLoadError::Part {
            part,
            error: e.to_string(),
        };
        let Some(state) = bytes.get(section.clone()) else {
            return Err(StateLoadError::Part {
                part: "section",
                error: format!("{section:?} is not within the {} bytes", bytes.len()),
            });
        };
        let head_end = index.maps[0].start as usize;
        let head: Head = bcs::from_bytes(state.get(..head_end).unwrap_or_default())
            .map_err(|e| part("fields before its maps", e))?;
        // Each map must start where the previous part ends; the tail must then decode from
        // where the last map ends to the section's end.
        let mut at = head_end;
        let storage = load_map(&bytes, section.start, &mut index, 0, &mut at)?;
        let blobs = load_map(&bytes, section.start, &mut index, 1, &mut at)?;
        let object_events = load_map(&bytes, section.start, &mut index, 2, &mut at)?;
        let by_blob_id = load_map(&bytes, section.start, &mut index, 3, &mut at)?;
        let tail: Tail = bcs::from_bytes(state.get(at..).unwrap_or_default())
            .map_err(|e| part("fields after its maps", e))?;
        let mut state = LedgerState {
            params: head.params,
            epoch: head.epoch,
            epoch_state: head.epoch_state,
            committee: head.committee,
            previous_committee: head.previous_committee,
            selected_committee: head.selected_committee,
            nodes: head.nodes,
            accounts: head.accounts,
            storage,
            blobs,
            object_events,
            by_blob_id,
            used_capacity: tail.used_capacity,
            entry_count: tail.entry_count,
            event_count: tail.event_count,
            digest: tail.digest,
            challenges: tail.challenges,
            shared_blobs: tail.shared_blobs,
            shared_of: tail.shared_of,
            rules: tail.rules,
            weights: None,
            verified: Default::default(),
        };
        state.refresh_weights();
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use floe_core::ObjectId;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Holder(#[serde(with = "super::id_map")] BTreeMap<ObjectId, u8>);

    #[test]
    fn id_maps_read_back_and_refuse_what_bcs_refuses() {
        let map: BTreeMap<ObjectId, u8> = (0..5u8)
            .map(|i| (ObjectId([i.wrapping_mul(91); 32]), i))
            .collect();
        let bytes = bcs::to_bytes(&Holder(map.clone())).unwrap();
        assert_eq!(
            bytes,
            bcs::to_bytes(&map).unwrap(),
            "the map's own encoding"
        );
        assert_eq!(bcs::from_bytes::<Holder>(&bytes).unwrap(), Holder(map));
        // The same entries out of order, or a key twice: BCS refuses such a map, and so do we.
        let entry = |k: u8, v: u8| {
            let mut e = vec![k; 32];
            e.push(v);
            e
        };
        for pairs in [[(9, 0), (3, 1)], [(3, 0), (3, 1)]] {
            let mut raw = vec![2u8];
            for (k, v) in pairs {
                raw.extend(entry(k, v));
            }
            assert!(bcs::from_bytes::<BTreeMap<ObjectId, u8>>(&raw).is_err());
            assert!(bcs::from_bytes::<Holder>(&raw).is_err(), "{pairs:?}");
        }
    }
}
