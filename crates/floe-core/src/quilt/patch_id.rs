//! Patch IDs. The internal ID (V1) is `01 ‖ start u16 LE ‖ end u16 LE` (end exclusive); a
//! [`QuiltPatchId`] is the 32-byte quilt ID followed by it, 37 bytes, shown as URL-safe base64
//! without padding (50 characters). A patch ID names a column range of one quilt, not content.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{PATCH_ID_VERSION_V1, QuiltError};
use crate::BlobId;

/// The column range `[start, end)` of a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuiltPatchInternalId {
    pub start: u16,
    pub end: u16,
}

impl QuiltPatchInternalId {
    pub const LEN: usize = 5;

    pub fn to_bytes(self) -> [u8; 5] {
        let [s0, s1] = self.start.to_le_bytes();
        let [e0, e1] = self.end.to_le_bytes();
        [PATCH_ID_VERSION_V1, s0, s1, e0, e1]
    }

    /// Parses a V1 internal ID; any other version or length is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, QuiltError> {
        match bytes {
            [PATCH_ID_VERSION_V1, s0, s1, e0, e1] => Ok(Self {
                start: u16::from_le_bytes([*s0, *s1]),
                end: u16::from_le_bytes([*e0, *e1]),
            }),
            _ => Err(QuiltError::UnsupportedPatchId {
                version: bytes.first().copied().unwrap_or(0),
                len: bytes.len(),
            }),
        }
    }

    /// Checks the range is non-empty and within `n_columns`.
    pub fn check(self, n_columns: u16) -> Result<Self, QuiltError> {
        if self.start < self.end && self.end <= n_columns {
            Ok(self)
        } else {
            Err(QuiltError::BadPatchRange {
                start: self.start,
                end: self.end,
                columns: n_columns,
            })
        }
    }
}

/// A quilt ID and the raw internal ID that follows it. Parsing accepts any tail of at least one
/// byte (as Walrus does); [`QuiltPatchId::internal_id`] interprets it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct QuiltPatchId {
    pub quilt_id: BlobId,
    pub patch: Vec<u8>,
}

impl QuiltPatchId {
    pub fn new(quilt_id: BlobId, internal: QuiltPatchInternalId) -> Self {
        Self {
            quilt_id,
            patch: internal.to_bytes().to_vec(),
        }
    }

    pub fn internal_id(&self) -> Result<QuiltPatchInternalId, QuiltError> {
        QuiltPatchInternalId::from_bytes(&self.patch)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.quilt_id.0.to_vec();
        out.extend_from_slice(&self.patch);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, QuiltError> {
        if bytes.len() <= BlobId::LENGTH {
            return Err(QuiltError::PatchIdTooShort(bytes.len()));
        }
        let (id, patch) = bytes.split_at(BlobId::LENGTH);
        Ok(Self {
            quilt_id: BlobId(id.try_into().expect("32 bytes")),
            patch: patch.to_vec(),
        })
    }
}

impl FromStr for QuiltPatchId {
    type Err = QuiltError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Bound the work on hostile input: a V1 ID is 50 characters.
        if s.len() > 256 {
            let head: String = s.chars().take(32).collect();
            return Err(QuiltError::PatchIdEncoding(format!("{head}…")));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(s.trim())
            .map_err(|_| QuiltError::PatchIdEncoding(s.to_string()))?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Display for QuiltPatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.to_bytes()))
    }
}

impl fmt::Debug for QuiltPatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QuiltPatchId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_text_form() {
        let id = QuiltPatchId::new(
            BlobId([7; 32]),
            QuiltPatchInternalId {
                start: 1,
                end: 0x0102,
            },
        );
        let bytes = id.to_bytes();
        assert_eq!(bytes.len(), 37);
        assert_eq!(&bytes[32..], &[1, 1, 0, 2, 1]);
        let text = id.to_string();
        assert_eq!(text.len(), 50);
        assert_eq!(text.parse::<QuiltPatchId>().unwrap(), id);
    }

    /// The doc comment of Walrus's routes: IDs ending in `4iABAQANAA` and `4iABDQBnAA` name
    /// columns 1..13 and 13..103. The 40 leading characters encode 30 bytes of the quilt ID.
    #[test]
    fn upstream_doc_examples() {
        let prefix = "A".repeat(40);
        let a: QuiltPatchId = format!("{prefix}4iABAQANAA").parse().unwrap();
        let b: QuiltPatchId = format!("{prefix}4iABDQBnAA").parse().unwrap();
        assert_eq!(
            a.internal_id().unwrap(),
            QuiltPatchInternalId { start: 1, end: 13 }
        );
        assert_eq!(
            b.internal_id().unwrap(),
            QuiltPatchInternalId {
                start: 13,
                end: 103
            }
        );
        assert_eq!(a.quilt_id.0[30..], [0xe2, 0x20]);
    }

    #[test]
    fn bad_ids_are_refused() {
        assert_eq!(
            "AAAA".parse::<QuiltPatchId>(),
            Err(QuiltError::PatchIdTooShort(3))
        );
        assert!(matches!(
            "not base64!".parse::<QuiltPatchId>(),
            Err(QuiltError::PatchIdEncoding(_))
        ));
        // 36 bytes (the stale by-patch-id doc example's length): parses, but is no V1 ID.
        let short = QuiltPatchId::from_bytes(&[0; 36]).unwrap();
        assert_eq!(
            short.internal_id(),
            Err(QuiltError::UnsupportedPatchId { version: 0, len: 4 })
        );
        let empty = QuiltPatchInternalId { start: 3, end: 3 };
        assert!(empty.check(10).is_err());
        assert!(
            QuiltPatchInternalId { start: 3, end: 11 }
                .check(10)
                .is_err()
        );
    }
}
