//! A map keyed by 32-byte IDs whose entries can stay encoded until first used.
//!
//! A restart loads the ledger's state from a snapshot. Decoding every blob, storage resource
//! and certificate there costs time in proportion to the history, yet a restarted ledger
//! touches only the few entries its next transactions name. A [`LazyMap`] built with
//! [`LazyMap::from_encoded`] keeps the snapshot's bytes (shared), the keys and where each entry
//! ends, and decodes a value the first time it is read. Changes go to an ordinary ordered map
//! laid over the encoded base, so the base is never rewritten.
//!
//! The map's canonical encoding is the BCS encoding of a `BTreeMap<K, V>` (a length, then the
//! entries in key order), whichever way it was built: [`LazyMap::encode_into`] copies the
//! bytes of base entries as they are and encodes only what changed.

use std::collections::{BTreeMap, btree_map};
use std::fmt;
use std::iter::Peekable;
use std::sync::{Arc, OnceLock};

use floe_core::{BlobId, ObjectId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The length of every key's encoding.
pub const KEY_LEN: usize = 32;

/// A key whose BCS encoding is its 32 bytes as they are (so byte order is key order).
pub trait FixedKey: Ord + Copy {
    fn from_key_bytes(bytes: [u8; KEY_LEN]) -> Self;
    fn key_bytes(&self) -> &[u8; KEY_LEN];
}

impl FixedKey for ObjectId {
    fn from_key_bytes(bytes: [u8; KEY_LEN]) -> Self {
        ObjectId(bytes)
    }
    fn key_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl FixedKey for BlobId {
    fn from_key_bytes(bytes: [u8; KEY_LEN]) -> Self {
        BlobId(bytes)
    }
    fn key_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// How an entry sits in the encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// A `(key, value)` pair: the value's encoding follows the key's (a BCS map).
    #[default]
    Pairs,
    /// A record whose encoding begins with its own key (a BCS sequence of records sorted by
    /// that key).
    Records,
}

/// Why encoded entries were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodedMapError {
    #[error("the entry count at byte {0} is missing or malformed")]
    Count(usize),
    #[error("the encoding counts {counted} entries but {indexed} entry ends are given")]
    CountMismatch { counted: usize, indexed: usize },
    #[error(
        "entry {index} spans bytes {start}..{end}, which is not a {KEY_LEN}-byte key and a value within the {len} bytes"
    )]
    Bounds {
        index: usize,
        start: usize,
        end: usize,
        len: usize,
    },
    #[error("the keys are not in strictly ascending order at entry {0}")]
    Order(usize),
    #[error("the entries end at byte {end}, before the end of the {len} bytes")]
    Trailing { end: usize, len: usize },
}

/// Decoded entries are kept in chunks of this many cells, each allocated when one of its
/// entries is first decoded (so loading allocates nothing per entry).
const CHUNK: usize = 256;

/// The decoded entries of one chunk.
type Chunk<K, V> = Box<[OnceLock<Box<(K, V)>>]>;

/// Entries still encoded, as loaded. Nothing is copied or allocated per entry: keys are read
/// from the bytes, and the entry ends are the index's own vector.
#[derive(Clone)]
struct Base<K, V> {
    bytes: Arc<Vec<u8>>,
    /// Where entry 0 starts in `bytes`.
    first: usize,
    /// Where the offsets in `ends` count from in `bytes`.
    origin: usize,
    /// Entry `i` ends at byte `origin + ends[i]` (checked in range when loaded).
    ends: Vec<u64>,
    layout: Layout,
    /// Entries decoded so far by reads, with their keys (see [`CHUNK`]).
    cells: Vec<OnceLock<Chunk<K, V>>>,
}

impl<K: FixedKey, V: DeserializeOwned> Base<K, V> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn start(&self, i: usize) -> usize {
        match i {
            0 => self.first,
            _ => self.origin + self.ends[i - 1] as usize,
        }
    }

    fn raw(&self, i: usize) -> &[u8] {
        &self.bytes[self.start(i)..self.origin + self.ends[i] as usize]
    }

    fn key_bytes(&self, i: usize) -> &[u8] {
        let start = self.start(i);
        &self.bytes[start..start + KEY_LEN]
    }

    fn key(&self, i: usize) -> K {
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(self.key_bytes(i));
        K::from_key_bytes(key)
    }

    /// The index of `key` among the entries (their keys are ascending, as checked on load).
    fn find(&self, key: &K) -> Option<usize> {
        let wanted = key.key_bytes();
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key_bytes(mid).cmp(wanted.as_slice()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    fn decode(&self, i: usize) -> V {
        let raw = self.raw(i);
        let value = match self.layout {
            Layout::Pairs => &raw[KEY_LEN..],
            Layout::Records => raw,
        };
        // The bytes were checked (a snapshot's checksum) and written by this build's encoder.
        bcs::from_bytes(value).unwrap_or_else(|e| {
            panic!("entry {i} of a loaded map does not decode ({e}): the snapshot's checksum passed, so its writer is at fault")
        })
    }

    fn cell(&self, i: usize) -> &OnceLock<Box<(K, V)>> {
        let chunk = self.cells[i / CHUNK]
            .get_or_init(|| std::iter::repeat_with(OnceLock::new).take(CHUNK).collect());
        &chunk[i % CHUNK]
    }

    fn entry(&self, i: usize) -> &(K, V) {
        self.cell(i)
            .get_or_init(|| Box::new((self.key(i), self.decode(i))))
    }

    fn value(&self, i: usize) -> &V {
        &self.entry(i).1
    }

    fn decoded(&self, i: usize) -> bool {
        self.cells[i / CHUNK]
            .get()
            .is_some_and(|chunk| chunk[i % CHUNK].get().is_some())
    }

    fn take(&mut self, i: usize) -> V {
        let cached = self.cells[i / CHUNK]
            .get_mut()
            .and_then(|chunk| chunk[i % CHUNK].take());
        match cached {
            Some(entry) => entry.1,
            None => self.decode(i),
        }
    }
}

/// An ordered map from 32-byte IDs to values, decoded lazily when loaded from encoded bytes.
#[derive(Clone)]
pub struct LazyMap<K, V> {
    base: Option<Base<K, V>>,
    /// Entries inserted or changed since the base was loaded (`Some`), and base entries
    /// removed (`None`). Base entries under a key here are out of date.
    overlay: BTreeMap<K, Option<V>>,
    len: usize,
    layout: Layout,
}

impl<K, V> Default for LazyMap<K, V> {
    fn default() -> Self {
        LazyMap {
            base: None,
            overlay: BTreeMap::new(),
            len: 0,
            layout: Layout::Pairs,
        }
    }
}

/// Read a ULEB128 sequence length as BCS writes it; returns it and its length in bytes.
fn read_uleb(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // BCS refuses a non-minimal encoding and lengths above 2^31 - 1.
            if (i > 0 && b == 0) || value > u64::from(u32::MAX >> 1) {
                return None;
            }
            return Some((value as usize, i + 1));
        }
    }
    None
}

/// Append a sequence length as BCS writes it (ULEB128).
pub fn write_uleb(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

impl<K: FixedKey, V: DeserializeOwned> LazyMap<K, V> {
    /// An empty map whose entries are encoded in `layout`.
    pub fn with_layout(layout: Layout) -> Self {
        LazyMap {
            layout,
            ..Self::default()
        }
    }

    /// The map encoded at `bytes[origin + start..]` (a BCS length, then entries in `layout`),
    /// where entry `i` ends at byte `origin + ends[i]` (offsets are relative to `origin`, where
    /// the section holding the map begins). The keys and bounds are checked here (read in
    /// place: nothing is copied per entry, and `ends` is kept as it is); the values are decoded
    /// when first read. Returns the map and where its last entry ends (relative to `origin`).
    pub fn from_encoded(
        bytes: Arc<Vec<u8>>,
        origin: usize,
        start: usize,
        ends: Vec<u64>,
        layout: Layout,
    ) -> Result<(Self, usize), EncodedMapError> {
        let start = origin.saturating_add(start);
        let (count, len_bytes) = bytes
            .get(start..)
            .and_then(read_uleb)
            .ok_or(EncodedMapError::Count(start))?;
        if count != ends.len() {
            return Err(EncodedMapError::CountMismatch {
                counted: count,
                indexed: ends.len(),
            });
        }
        let first = start + len_bytes;
        let mut previous = first;
        let mut last_key: Option<&[u8]> = None;
        for (index, &end) in ends.iter().enumerate() {
            let end = usize::try_from(end)
                .unwrap_or(usize::MAX)
                .saturating_add(origin);
            if end <= previous + KEY_LEN || end > bytes.len() {
                return Err(EncodedMapError::Bounds {
                    index,
                    start: previous,
                    end,
                    len: bytes.len(),
                });
            }
            let key = &bytes[previous..previous + KEY_LEN];
            if last_key.is_some_and(|last| last >= key) {
                return Err(EncodedMapError::Order(index));
            }
            last_key = Some(key);
            previous = end;
        }
        let cells = std::iter::repeat_with(OnceLock::new)
            .take(count.div_ceil(CHUNK))
            .collect();
        let map = LazyMap {
            base: Some(Base {
                bytes,
                first,
                origin,
                ends,
                layout,
                cells,
            }),
            overlay: BTreeMap::new(),
            len: count,
            layout,
        };
        Ok((map, previous - origin))
    }

    /// A map of these entries (a later entry under the same key wins).
    pub fn from_entries(entries: impl IntoIterator<Item = (K, V)>, layout: Layout) -> Self {
        let overlay: BTreeMap<K, Option<V>> =
            entries.into_iter().map(|(k, v)| (k, Some(v))).collect();
        LazyMap {
            base: None,
            len: overlay.len(),
            overlay,
            layout,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries loaded encoded and not decoded yet (for tests and metrics).
    pub fn undecoded(&self) -> usize {
        self.base.as_ref().map_or(0, |b| {
            (0..b.len())
                .filter(|&i| !b.decoded(i) && !self.overlay.contains_key(&b.key(i)))
                .count()
        })
    }

    fn base_index(&self, key: &K) -> Option<usize> {
        self.base.as_ref()?.find(key)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        if let Some(slot) = self.overlay.get(key) {
            return slot.as_ref();
        }
        let base = self.base.as_ref()?;
        let i = base.find(key)?;
        Some(base.value(i))
    }

    pub fn contains_key(&self, key: &K) -> bool {
        match self.overlay.get(key) {
            Some(slot) => slot.is_some(),
            None => self.base_index(key).is_some(),
        }
    }

    /// Move a base entry into the overlay (decoding it if no read did).
    fn take_base(&mut self, key: K) -> Option<V> {
        let i = self.base_index(&key)?;
        Some(self.base.as_mut()?.take(i))
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        if !self.overlay.contains_key(key) {
            let value = self.take_base(*key)?;
            self.overlay.insert(*key, Some(value));
        }
        self.overlay.get_mut(key)?.as_mut()
    }

    /// Insert, returning the value the key had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let old = match self.overlay.get_mut(&key) {
            Some(slot) => slot.take(),
            None => self.take_base(key),
        };
        if old.is_none() {
            self.len += 1;
        }
        self.overlay.insert(key, Some(value));
        old
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let in_base = self.base_index(key).is_some();
        let old = match self.overlay.get_mut(key) {
            Some(slot) => slot.take(),
            None => self.take_base(*key),
        };
        if in_base {
            // Out of date below: keep the key in the overlay, removed.
            self.overlay.insert(*key, None);
        } else {
            self.overlay.remove(key);
        }
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// The value under `key`, inserting `make()` first if there is none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        if !self.contains_key(&key) {
            self.insert(key, make());
        }
        self.get_mut(&key).expect("present: found or just inserted")
    }

    /// The value under `key`, inserting the default first if there is none.
    pub fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        self.get_or_insert_with(key, V::default)
    }

    /// The entries in key order (base entries are decoded as they are reached).
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter(self.merge())
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Append the map's canonical encoding (its BCS length, then its entries in this map's
    /// layout and in key order) to `out`, and where each entry ends (an offset into `out`) to
    /// `ends`. Base entries are copied as loaded; only changed entries are encoded.
    pub fn encode_into(&self, out: &mut Vec<u8>, ends: &mut Vec<u64>)
    where
        K: Serialize,
        V: Serialize,
    {
        write_uleb(out, self.len);
        let encode = |out: &mut Vec<u8>, key: &K, value: &V| match self.layout {
            Layout::Pairs => bcs::serialize_into(out, &(key, value)),
            Layout::Records => bcs::serialize_into(out, value),
        };
        for step in self.merge() {
            match step {
                Step::Base(base, i) => out.extend_from_slice(base.raw(i)),
                Step::Overlay(key, value) => {
                    encode(out, key, value).expect("a ledger value serialises")
                }
            }
            ends.push(out.len() as u64);
        }
    }

    /// The entries in key order, base entries by position (overlay entries shadow them).
    fn merge(&self) -> Merge<'_, K, V> {
        Merge {
            base: self.base.as_ref(),
            position: 0,
            overlay: self.overlay.iter().peekable(),
        }
    }
}

/// One entry of [`LazyMap::merge`].
enum Step<'a, K, V> {
    /// Entry `i` of the encoded base, unchanged.
    Base(&'a Base<K, V>, usize),
    /// An entry inserted or changed since the base was loaded.
    Overlay(&'a K, &'a V),
}

/// The walk that merges a map's encoded base with its overlay, in key order: what both
/// [`Iter`] and [`LazyMap::encode_into`] follow.
struct Merge<'a, K, V> {
    base: Option<&'a Base<K, V>>,
    position: usize,
    overlay: Peekable<btree_map::Iter<'a, K, Option<V>>>,
}

impl<'a, K: FixedKey, V: DeserializeOwned> Iterator for Merge<'a, K, V> {
    type Item = Step<'a, K, V>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let base = self.base.filter(|b| self.position < b.len());
            let base_key = base.map(|b| b.key(self.position));
            let take_base = match (base_key, self.overlay.peek()) {
                (None, None) => return None,
                (Some(b), Some((o, _))) => b < **o,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            if let (true, Some(base)) = (take_base, base) {
                self.position += 1;
                return Some(Step::Base(base, self.position - 1));
            }
            let (key, slot) = self.overlay.next()?;
            if base_key == Some(*key) {
                // The overlay's entry replaces (or removes) the base's.
                self.position += 1;
            }
            if let Some(value) = slot {
                return Some(Step::Overlay(key, value));
            }
        }
    }
}

/// [`LazyMap::iter`].
pub struct Iter<'a, K, V>(Merge<'a, K, V>);

impl<'a, K: FixedKey, V: DeserializeOwned> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.0.next()? {
            Step::Base(base, i) => {
                let (key, value) = base.entry(i);
                (key, value)
            }
            Step::Overlay(key, value) => (key, value),
        })
    }
}

impl<K: FixedKey, V: DeserializeOwned + PartialEq> PartialEq for LazyMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: FixedKey, V: DeserializeOwned + Eq> Eq for LazyMap<K, V> {}

impl<K: FixedKey + fmt::Debug, V: DeserializeOwned + fmt::Debug> fmt::Debug for LazyMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Serialised as a map (human-readable formats), or as BCS writes a map: its entries in key
/// order, each a `(key, value)` pair, or the record alone in [`Layout::Records`].
impl<K, V> Serialize for LazyMap<K, V>
where
    K: FixedKey + Serialize,
    V: DeserializeOwned + Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        // The length first: BCS writes it before the entries.
        if serializer.is_human_readable() {
            let mut map = serializer.serialize_map(Some(self.len))?;
            for (k, v) in self.iter() {
                map.serialize_entry(k, v)?;
            }
            return map.end();
        }
        let mut seq = serializer.serialize_seq(Some(self.len))?;
        for (k, v) in self.iter() {
            match self.layout {
                Layout::Pairs => seq.serialize_element(&(k, v))?,
                Layout::Records => seq.serialize_element(v)?,
            }
        }
        seq.end()
    }
}

/// Read as [`Layout::Pairs`]: a map, or BCS pairs in strictly ascending key order (what BCS
/// checks of a map, so a non-canonical encoding is refused). Every value is decoded.
impl<'de, K, V> Deserialize<'de> for LazyMap<K, V>
where
    K: FixedKey + Deserialize<'de>,
    V: DeserializeOwned,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = crate::state::snapshot::id_map::deserialize(deserializer)?;
        Ok(Self::from_entries(map, Layout::Pairs))
    }
}

#[cfg(test)]
mod tests;
