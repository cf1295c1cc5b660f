//! Building a QuiltV1 blob from patches.

use super::index::{QuiltIndex, QuiltPatch, Tags, tags_to_bcs};
use super::symbol_size::compute_symbol_size;
use super::{
    INDEX_PREFIX_LEN, IdentifierError, MASK_HAS_TAGS, MAX_INDEX_COLUMNS, MAX_SECTION_LEN,
    PATCH_HEADER_LEN, PATCH_HEADER_VERSION_V1, QUILT_VERSION_V1, QuiltError,
};
use crate::EncodingConfig;

/// One file to put in a quilt.
#[derive(Debug, Clone)]
pub struct QuiltPatchInput<'a> {
    pub identifier: String,
    pub tags: Tags,
    pub data: &'a [u8],
}

/// A built quilt: the blob bytes (p·s·S, row-major) and the index with every column range.
#[derive(Debug, Clone)]
pub struct BuiltQuilt {
    pub bytes: Vec<u8>,
    pub symbol_size: u16,
    pub index: QuiltIndex,
    /// Columns taken by the index (k).
    pub index_columns: u16,
}

/// Checks an identifier: non-empty, no trailing whitespace, no control character, and a BCS
/// form shorter than 65,535 bytes.
pub fn validate_identifier(identifier: &str) -> Result<(), IdentifierError> {
    let Some(last) = identifier.chars().next_back() else {
        return Err(IdentifierError::Empty);
    };
    if last.is_whitespace() {
        return Err(IdentifierError::TrailingWhitespace);
    }
    if let Some(c) = identifier.chars().find(|c| c.is_control()) {
        return Err(IdentifierError::ControlCharacter(u32::from(c)));
    }
    let bcs_len = crate::uleb128::len(identifier.len()) + identifier.len();
    if bcs_len >= MAX_SECTION_LEN {
        return Err(IdentifierError::TooLong(bcs_len));
    }
    Ok(())
}

/// A patch's header and sections, everything of its region except the data.
struct PatchHead {
    head: Vec<u8>,
    /// The region's size: header + sections + data.
    region: u64,
}

fn patch_head(input: &QuiltPatchInput<'_>) -> Result<PatchHead, QuiltError> {
    let identifier = bcs::to_bytes(&input.identifier).expect("BCS of a string cannot fail");
    let tags = (!input.tags.is_empty()).then(|| tags_to_bcs(&input.tags));
    if let Some(tags) = &tags
        && tags.len() > MAX_SECTION_LEN
    {
        return Err(QuiltError::TagsTooLarge {
            identifier: input.identifier.clone(),
            size: tags.len(),
        });
    }
    let sections = 2 + identifier.len() + tags.as_ref().map_or(0, |t| 2 + t.len());
    let length = sections as u64 + input.data.len() as u64;
    let length32 = u32::try_from(length).map_err(|_| QuiltError::PatchTooLarge {
        identifier: input.identifier.clone(),
        size: input.data.len() as u64,
    })?;
    let mut head = Vec::with_capacity(PATCH_HEADER_LEN + sections);
    head.push(PATCH_HEADER_VERSION_V1);
    head.extend_from_slice(&length32.to_le_bytes());
    head.push(if tags.is_some() { MASK_HAS_TAGS } else { 0 });
    head.extend_from_slice(&(identifier.len() as u16).to_le_bytes());
    head.extend_from_slice(&identifier);
    if let Some(tags) = &tags {
        head.extend_from_slice(&(tags.len() as u16).to_le_bytes());
        head.extend_from_slice(tags);
    }
    Ok(PatchHead {
        head,
        region: PATCH_HEADER_LEN as u64 + length,
    })
}

/// Builds a quilt of `patches` for `config`'s geometry. Patches are placed in identifier order
/// (byte-wise), each from byte 0 of a column; the symbol size follows Walrus's rule, so the
/// quilt ID equals Walrus's for the same files, identifiers and tags.
pub fn build_quilt(
    config: &EncodingConfig,
    patches: &[QuiltPatchInput<'_>],
) -> Result<BuiltQuilt, QuiltError> {
    if patches.is_empty() {
        return Err(QuiltError::Empty);
    }
    let p = u64::from(config.n_primary_source());
    let s = u64::from(config.n_secondary_source());
    // Bound the work before anything is serialized: every region takes at least a column.
    if patches.len() as u64 >= s {
        return Err(QuiltError::TooManyPatches {
            regions: patches.len() + 1,
            columns: s,
        });
    }
    let mut sorted: Vec<&QuiltPatchInput<'_>> = patches.iter().collect();
    sorted.sort_by(|a, b| a.identifier.cmp(&b.identifier));
    for pair in sorted.windows(2) {
        if pair[0].identifier == pair[1].identifier {
            return Err(QuiltError::DuplicateIdentifier(pair[0].identifier.clone()));
        }
    }
    for patch in &sorted {
        validate_identifier(&patch.identifier).map_err(|reason| QuiltError::InvalidIdentifier {
            identifier: patch.identifier.clone(),
            reason,
        })?;
    }
    let heads = sorted
        .iter()
        .map(|p| patch_head(p))
        .collect::<Result<Vec<_>, _>>()?;

    // The index's length does not depend on the end columns (fixed-width u16), so serialize it
    // once with placeholders to size it, then again with the real ends.
    let mut index = QuiltIndex {
        patches: sorted
            .iter()
            .map(|p| QuiltPatch {
                identifier: p.identifier.clone(),
                tags: p.tags.clone(),
                start: 0,
                end: 0,
            })
            .collect(),
    };
    let index_len = index.to_bcs().len() as u64;
    let index_region = INDEX_PREFIX_LEN as u64 + index_len;
    let mut sizes = Vec::with_capacity(heads.len() + 1);
    sizes.push(index_region);
    sizes.extend(heads.iter().map(|h| h.region));
    let symbol_size = compute_symbol_size(&sizes, s, p, u64::from(MAX_INDEX_COLUMNS))?;
    let column = p * u64::from(symbol_size);

    let index_columns = index_region.div_ceil(column) as u16;
    let mut next = index_columns;
    for (patch, head) in index.patches.iter_mut().zip(&heads) {
        patch.start = next;
        next += head.region.div_ceil(column) as u16;
        patch.end = next;
    }
    let bcs_index = index.to_bcs();
    debug_assert_eq!(bcs_index.len() as u64, index_len);

    let len = config.n_source_symbols() * u64::from(symbol_size);
    // The RS2 encoder must derive the same symbol size from the quilt's length.
    debug_assert_eq!(config.symbol_size(len)?, symbol_size);
    let mut writer = ColumnWriter::new(config, symbol_size);
    writer.write(
        0,
        &[
            &[QUILT_VERSION_V1],
            &(index_len as u32).to_le_bytes(),
            &bcs_index,
        ],
    );
    for ((patch, head), input) in index.patches.iter().zip(&heads).zip(&sorted) {
        writer.write(patch.start, &[&head.head, input.data]);
    }
    Ok(BuiltQuilt {
        bytes: writer.matrix,
        symbol_size,
        index,
        index_columns,
    })
}

/// Writes column-major regions into the row-major p × s matrix.
struct ColumnWriter {
    matrix: Vec<u8>,
    rows: usize,
    columns: usize,
    symbol: usize,
}

impl ColumnWriter {
    fn new(config: &EncodingConfig, symbol_size: u16) -> Self {
        let rows = usize::from(config.n_primary_source());
        let columns = usize::from(config.n_secondary_source());
        let symbol = usize::from(symbol_size);
        Self {
            matrix: vec![0; rows * columns * symbol],
            rows,
            columns,
            symbol,
        }
    }

    /// Writes the concatenation of `parts` from byte 0 of column `start`.
    fn write(&mut self, start: u16, parts: &[&[u8]]) {
        let column_len = self.rows * self.symbol;
        let mut offset = usize::from(start) * column_len; // in the column-major stream
        for part in parts {
            let mut rest = *part;
            while !rest.is_empty() {
                let (col, in_col) = (offset / column_len, offset % column_len);
                let (row, in_sym) = (in_col / self.symbol, in_col % self.symbol);
                let take = rest.len().min(self.symbol - in_sym);
                let at = (row * self.columns + col) * self.symbol + in_sym;
                self.matrix[at..at + take].copy_from_slice(&rest[..take]);
                rest = &rest[take..];
                offset += take;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_rules() {
        assert_eq!(validate_identifier(""), Err(IdentifierError::Empty));
        assert_eq!(
            validate_identifier("a "),
            Err(IdentifierError::TrailingWhitespace)
        );
        assert_eq!(
            validate_identifier("a\u{3000}"),
            Err(IdentifierError::TrailingWhitespace)
        );
        assert_eq!(
            validate_identifier("a\nb"),
            Err(IdentifierError::ControlCharacter(10))
        );
        assert_eq!(
            validate_identifier("a\u{85}b"),
            Err(IdentifierError::ControlCharacter(0x85))
        );
        // The code, not the docs, decides: a leading punctuation mark is fine.
        for ok in ["_test", "-test", ".test", " lead", "dir/file.txt", "ünï"] {
            assert_eq!(validate_identifier(ok), Ok(()), "{ok:?}");
        }
        // BCS length = 3 (ULEB128 of ≥ 16,384) + bytes; 65,531 bytes → 65,534: allowed.
        assert_eq!(validate_identifier(&"x".repeat(65_531)), Ok(()));
        assert_eq!(
            validate_identifier(&"x".repeat(65_532)),
            Err(IdentifierError::TooLong(65_535))
        );
    }
}
