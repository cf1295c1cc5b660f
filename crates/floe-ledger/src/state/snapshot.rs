//! The state's canonical encoding for snapshots.

use super::LedgerState;

/// Serde for maps keyed by 32-byte IDs, whose order (`Ord`) is the order of their BCS bytes.
///
/// BCS writes a map as its length and then its entries in the order of their keys' bytes,
/// which is exactly a sequence of `(key, value)` pairs. Written as that sequence (the map
/// already iterates in that order), the bytes are the same without BCS buffering and sorting
/// every entry. Read as that sequence, checked strictly ascending (what BCS itself checks of a
/// map, so a non-canonical encoding is still refused), and built in one pass, the map skips the
/// per-entry search and the copy of every key. Human-readable formats use an ordinary map.
pub(super) mod id_map {
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

impl LedgerState {
    /// The state's canonical encoding (BCS; every map is a `BTreeMap`, so equal states give
    /// equal bytes). Caches are not part of it.
    pub fn to_snapshot_bytes(&self) -> Vec<u8> {
        bcs::to_bytes(self).expect("the state serialises")
    }

    /// Decode [`to_snapshot_bytes`](Self::to_snapshot_bytes) and rebuild the derived caches.
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<Self, bcs::Error> {
        let mut state: LedgerState = bcs::from_bytes(bytes)?;
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
