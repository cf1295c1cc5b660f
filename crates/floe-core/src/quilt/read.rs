//! Reading quilts: the index and patches from column-major streams (the concatenated data of
//! consecutive secondary slivers), and [`QuiltReader`] over a whole quilt blob.
//!
//! Every decoder is total: any input gives a value or a [`QuiltError`] naming the fault.

use super::index::{QuiltIndex, QuiltPatch, Tags};
use super::patch_id::QuiltPatchInternalId;
use super::{
    INDEX_PREFIX_LEN, MASK_HAS_TAGS, MAX_INDEX_COLUMNS, PATCH_HEADER_LEN, PATCH_HEADER_VERSION_V1,
    QUILT_VERSION_V1, QuiltError,
};
use crate::EncodingConfig;

pub(crate) fn bcs_error(e: bcs::Error) -> String {
    e.to_string()
}

/// A patch as read: identifier, tags and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchContents {
    pub identifier: String,
    pub tags: Tags,
    pub data: Vec<u8>,
}

fn take<'a>(
    bytes: &mut &'a [u8],
    n: usize,
    what: &'static str,
    available: usize,
) -> Result<&'a [u8], QuiltError> {
    if bytes.len() < n {
        return Err(QuiltError::Truncated {
            what,
            needed: n as u64,
            available: available.min(bytes.len()) as u64,
        });
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

/// From the start of column 0 (at least 5 bytes): the number of index columns k and the index
/// length L. Refuses unknown versions and an L that cannot fit in 10 columns.
pub fn index_columns_from_prefix(
    column0: &[u8],
    column_len: usize,
) -> Result<(u16, u32), QuiltError> {
    let mut rest = column0;
    let prefix = take(&mut rest, INDEX_PREFIX_LEN, "index prefix", column0.len())?;
    if prefix[0] != QUILT_VERSION_V1 {
        return Err(QuiltError::UnsupportedQuiltVersion(prefix[0]));
    }
    let len = u32::from_le_bytes(prefix[1..5].try_into().expect("4 bytes"));
    let max = (usize::from(MAX_INDEX_COLUMNS) * column_len).saturating_sub(INDEX_PREFIX_LEN);
    if len as usize > max {
        return Err(QuiltError::IndexTooLarge {
            len: u64::from(len),
            max: max as u64,
        });
    }
    let columns = (INDEX_PREFIX_LEN + len as usize).div_ceil(column_len.max(1));
    Ok((columns as u16, len))
}

/// Decodes the index from the stream of columns 0 … k−1 (`column_len` bytes each) of a quilt
/// with `n_columns` columns.
pub fn decode_index(
    stream: &[u8],
    column_len: usize,
    n_columns: u16,
) -> Result<QuiltIndex, QuiltError> {
    let (k, len) = index_columns_from_prefix(stream, column_len)?;
    let mut rest = &stream[INDEX_PREFIX_LEN..];
    let body = take(&mut rest, len as usize, "quilt index", stream.len())?;
    QuiltIndex::from_bcs(body, k, n_columns)
}

/// Decodes the patch at the start of `stream` (its columns, concatenated). With `expected`, the
/// identifier in the header must equal it (the index's name for the range).
pub fn decode_patch(stream: &[u8], expected: Option<&str>) -> Result<PatchContents, QuiltError> {
    let mut rest = stream;
    let header = take(&mut rest, PATCH_HEADER_LEN, "patch header", stream.len())?;
    if header[0] != PATCH_HEADER_VERSION_V1 {
        return Err(QuiltError::UnsupportedPatchVersion(header[0]));
    }
    let length = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as usize;
    let mask = header[5];
    let mut body = take(&mut rest, length, "patch", stream.len())?;
    let total = length;
    let id_len = u16::from_le_bytes(
        take(&mut body, 2, "identifier size", total)?
            .try_into()
            .expect("2 bytes"),
    );
    let id_bytes = take(&mut body, usize::from(id_len), "identifier", total)?;
    let identifier: String = bcs::from_bytes(id_bytes)
        .map_err(|e| QuiltError::PatchHeaderDecode(format!("identifier: {}", bcs_error(e))))?;
    let tags = if mask & MASK_HAS_TAGS != 0 {
        let tags_len = u16::from_le_bytes(
            take(&mut body, 2, "tags size", total)?
                .try_into()
                .expect("2 bytes"),
        );
        let tag_bytes = take(&mut body, usize::from(tags_len), "tags", total)?;
        bcs::from_bytes(tag_bytes)
            .map_err(|e| QuiltError::PatchHeaderDecode(format!("tags: {}", bcs_error(e))))?
    } else {
        Tags::new()
    };
    if let Some(expected) = expected
        && expected != identifier
    {
        return Err(QuiltError::IdentifierMismatch {
            index: expected.to_string(),
            header: identifier,
        });
    }
    Ok(PatchContents {
        identifier,
        tags,
        data: body.to_vec(),
    })
}

/// Reads a whole quilt blob (row-major p·s·S bytes).
pub struct QuiltReader<'a> {
    bytes: &'a [u8],
    rows: usize,
    columns: usize,
    symbol: usize,
}

impl<'a> QuiltReader<'a> {
    /// Refuses a blob whose length is not a non-zero multiple of p·s.
    pub fn new(config: &EncodingConfig, bytes: &'a [u8]) -> Result<Self, QuiltError> {
        let source_symbols = config.n_source_symbols();
        let len = bytes.len() as u64;
        if len == 0 || !len.is_multiple_of(source_symbols) {
            return Err(QuiltError::BadBlobLength {
                len,
                source_symbols,
            });
        }
        Ok(Self {
            bytes,
            rows: usize::from(config.n_primary_source()),
            columns: usize::from(config.n_secondary_source()),
            symbol: (len / source_symbols) as usize,
        })
    }

    /// Bytes per column: p · S.
    pub fn column_len(&self) -> usize {
        self.rows * self.symbol
    }

    /// Columns `[start, end)` as one column-major stream.
    pub fn columns(&self, start: u16, end: u16) -> Vec<u8> {
        let (start, end) = (usize::from(start), usize::from(end).min(self.columns));
        let mut out = Vec::with_capacity(end.saturating_sub(start) * self.column_len());
        for col in start..end {
            for row in 0..self.rows {
                let at = (row * self.columns + col) * self.symbol;
                out.extend_from_slice(&self.bytes[at..at + self.symbol]);
            }
        }
        out
    }

    pub fn index(&self) -> Result<QuiltIndex, QuiltError> {
        let (k, _) = index_columns_from_prefix(&self.columns(0, 1), self.column_len())?;
        decode_index(&self.columns(0, k), self.column_len(), self.columns as u16)
    }

    /// The patch the index lists as `patch`; its header must carry the same identifier.
    pub fn patch(&self, patch: &QuiltPatch) -> Result<PatchContents, QuiltError> {
        let range = patch.internal_id().check(self.columns as u16)?;
        decode_patch(
            &self.columns(range.start, range.end),
            Some(&patch.identifier),
        )
    }

    /// The patch in the column range of a patch ID (no index needed).
    pub fn patch_by_internal_id(
        &self,
        id: QuiltPatchInternalId,
    ) -> Result<PatchContents, QuiltError> {
        let range = id.check(self.columns as u16)?;
        decode_patch(&self.columns(range.start, range.end), None)
    }

    pub fn patch_by_identifier(&self, identifier: &str) -> Result<PatchContents, QuiltError> {
        let index = self.index()?;
        let patch = index
            .get(identifier)
            .ok_or_else(|| QuiltError::PatchNotFound(identifier.to_string()))?;
        self.patch(patch)
    }
}
