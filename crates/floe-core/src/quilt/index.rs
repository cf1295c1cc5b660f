//! The quilt index (`QuiltIndexV1`) and its BCS form.
//!
//! BCS(QuiltIndexV1) = ULEB128 patch count, then per patch `end_index` (u16 LE), the identifier
//! (BCS string) and the tags (BCS map). The start column is not serialized: patch 0 starts at
//! the first column after the index, every later patch where the previous one ended.
//!
//! BCS orders map entries by their serialized key bytes, length prefix included ("b" before
//! "aa"), and its decoder refuses any other order. `bcs` sorts a map that way when it
//! serializes, whatever the order of the `BTreeMap`; the tests pin this.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::patch_id::{QuiltPatchId, QuiltPatchInternalId};
use super::{QuiltError, read::bcs_error};
use crate::BlobId;

/// A patch's tags: string keys and values.
pub type Tags = BTreeMap<String, String>;

/// One patch of a quilt: its identifier, tags and column range `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuiltPatch {
    pub identifier: String,
    pub tags: Tags,
    pub start: u16,
    pub end: u16,
}

impl QuiltPatch {
    pub fn internal_id(&self) -> QuiltPatchInternalId {
        QuiltPatchInternalId {
            start: self.start,
            end: self.end,
        }
    }

    pub fn patch_id(&self, quilt_id: BlobId) -> QuiltPatchId {
        QuiltPatchId::new(quilt_id, self.internal_id())
    }
}

/// The index of a quilt: its patches in identifier order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuiltIndex {
    pub patches: Vec<QuiltPatch>,
}

/// The wire form of one index entry (field order matters).
#[derive(Serialize, Deserialize)]
struct WirePatch {
    end_index: u16,
    identifier: String,
    tags: Tags,
}

impl QuiltIndex {
    /// BCS(QuiltIndexV1).
    pub fn to_bcs(&self) -> Vec<u8> {
        let wire: Vec<WirePatch> = self
            .patches
            .iter()
            .map(|p| WirePatch {
                end_index: p.end,
                identifier: p.identifier.clone(),
                tags: p.tags.clone(),
            })
            .collect();
        bcs::to_bytes(&wire).expect("BCS of strings and integers cannot fail")
    }

    /// Decodes BCS(QuiltIndexV1) and sets each start: the first at `first_column` (k), every
    /// later one at the previous end. Ranges must be non-empty and within `n_columns`.
    pub fn from_bcs(bytes: &[u8], first_column: u16, n_columns: u16) -> Result<Self, QuiltError> {
        let wire: Vec<WirePatch> =
            bcs::from_bytes(bytes).map_err(|e| QuiltError::IndexDecode(bcs_error(e)))?;
        if wire.is_empty() {
            return Err(QuiltError::IndexDecode("the index lists no patch".into()));
        }
        let mut start = first_column;
        let mut patches = Vec::with_capacity(wire.len());
        for (i, w) in wire.into_iter().enumerate() {
            if w.end_index <= start || w.end_index > n_columns {
                return Err(QuiltError::BadIndexRange {
                    patch: i,
                    start,
                    end: w.end_index,
                    columns: n_columns,
                });
            }
            patches.push(QuiltPatch {
                identifier: w.identifier,
                tags: w.tags,
                start,
                end: w.end_index,
            });
            start = w.end_index;
        }
        Ok(Self { patches })
    }

    pub fn get(&self, identifier: &str) -> Option<&QuiltPatch> {
        self.patches.iter().find(|p| p.identifier == identifier)
    }

    /// Patches with tag `key` equal to `value`, in index order.
    pub fn with_tag<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> impl Iterator<Item = &'a QuiltPatch> + 'a {
        self.patches
            .iter()
            .filter(move |p| p.tags.get(key).is_some_and(|v| v == value))
    }

    /// The patch with exactly this column range.
    pub fn by_internal_id(&self, id: QuiltPatchInternalId) -> Option<&QuiltPatch> {
        self.patches
            .iter()
            .find(|p| p.start == id.start && p.end == id.end)
    }
}

/// BCS of a tag map, in BCS's canonical order.
pub(crate) fn tags_to_bcs(tags: &Tags) -> Vec<u8> {
    bcs::to_bytes(tags).expect("BCS of a string map cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_order_is_by_serialized_key() {
        let tags: Tags = [("aa".into(), "1".into()), ("b".into(), "2".into())].into();
        // The BTreeMap iterates "aa" first; BCS puts "b" (01 62) before "aa" (02 61 61).
        assert_eq!(
            tags_to_bcs(&tags),
            [2, 1, b'b', 1, b'2', 2, b'a', b'a', 1, b'1']
        );
        // The decoder accepts the canonical order and refuses the other one.
        let back: Tags = bcs::from_bytes(&tags_to_bcs(&tags)).unwrap();
        assert_eq!(back, tags);
        assert!(bcs::from_bytes::<Tags>(&[2, 2, b'a', b'a', 1, b'1', 1, b'b', 1, b'2']).is_err());
    }

    #[test]
    fn index_round_trip_and_implicit_starts() {
        let index = QuiltIndex {
            patches: vec![
                QuiltPatch {
                    identifier: "a.txt".into(),
                    tags: Tags::new(),
                    start: 1,
                    end: 4,
                },
                QuiltPatch {
                    identifier: "b.txt".into(),
                    tags: [("k".into(), "v".into())].into(),
                    start: 4,
                    end: 6,
                },
            ],
        };
        let bytes = index.to_bcs();
        assert_eq!(bytes.len(), 23);
        assert_eq!(&bytes[..3], &[2, 4, 0]);
        assert_eq!(QuiltIndex::from_bcs(&bytes, 1, 7).unwrap(), index);
        assert!(matches!(
            QuiltIndex::from_bcs(&bytes, 4, 7),
            Err(QuiltError::BadIndexRange { patch: 0, .. })
        ));
        assert!(matches!(
            QuiltIndex::from_bcs(&bytes, 1, 5),
            Err(QuiltError::BadIndexRange { patch: 1, .. })
        ));
        assert!(matches!(
            QuiltIndex::from_bcs(&bytes[..20], 1, 7),
            Err(QuiltError::IndexDecode(_))
        ));
    }
}
