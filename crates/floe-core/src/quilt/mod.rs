//! Quilts (Walrus QuiltV1): many small files ("patches") in one RS2 blob, each readable on its
//! own from the secondary slivers (columns) it occupies.
//!
//! The quilt is an ordinary blob of exactly p·s·S bytes, laid out as the row-major p × s symbol
//! matrix. It is written and read as one column-major stream: column c is systematic secondary
//! sliver c, whose p symbols hold C = p·S bytes. Every region starts at byte 0 of a column and
//! covers whole columns:
//!
//! * columns 0 … k−1: version 0x01, the u32 LE length L, then BCS(QuiltIndexV1) (k ≤ 10);
//! * then one region per patch, in identifier order: the 6-byte header (version 0x01, u32 LE
//!   length, mask), the identifier section, the optional tags section and the data;
//! * unused bytes are zero.
//!
//! * [`symbol_size`]: the rule that picks S (it decides the quilt ID).
//! * [`build`]: [`build_quilt`] and the identifier and tag rules.
//! * [`read`]: the index and patch decoders over column streams, and [`QuiltReader`] over a
//!   whole quilt blob.
//! * [`patch_id`]: [`QuiltPatchId`] (quilt ID ‖ 5-byte internal ID, base64url).

pub mod build;
pub mod index;
pub mod patch_id;
pub mod read;
pub mod symbol_size;

pub use build::{BuiltQuilt, QuiltPatchInput, build_quilt, validate_identifier};
pub use index::{QuiltIndex, QuiltPatch, Tags};
pub use patch_id::{QuiltPatchId, QuiltPatchInternalId};
pub use read::{PatchContents, QuiltReader, decode_index, decode_patch, index_columns_from_prefix};
pub use symbol_size::compute_symbol_size;

/// The only quilt format version: the first byte of column 0.
pub const QUILT_VERSION_V1: u8 = 1;
/// The version byte of a patch header (`BlobHeaderV1`).
pub const PATCH_HEADER_VERSION_V1: u8 = 1;
/// The version byte of an internal patch ID.
pub const PATCH_ID_VERSION_V1: u8 = 1;
/// Bytes before the index: the version and the u32 length.
pub const INDEX_PREFIX_LEN: usize = 5;
/// Bytes of a patch header: version, u32 length, mask.
pub const PATCH_HEADER_LEN: usize = 6;
/// The index occupies at most this many columns.
pub const MAX_INDEX_COLUMNS: u16 = 10;
/// Mask bit of a patch header: a tags section follows the identifier.
pub const MASK_HAS_TAGS: u8 = 1;
/// The identifier and the tags are each preceded by a u16 size, so their BCS forms stay below.
pub const MAX_SECTION_LEN: usize = u16::MAX as usize;

/// Why an identifier is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("the identifier is empty")]
    Empty,
    #[error("the identifier ends in whitespace")]
    TrailingWhitespace,
    #[error("the identifier contains the control character U+{0:04X}")]
    ControlCharacter(u32),
    #[error("the identifier is {0} bytes in BCS; it must be shorter than 65,535")]
    TooLong(usize),
}

/// Errors of building or reading a quilt. Each names what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuiltError {
    #[error("a quilt needs at least one patch")]
    Empty,
    #[error("invalid identifier {identifier:?}: {reason}")]
    InvalidIdentifier {
        identifier: String,
        reason: IdentifierError,
    },
    #[error("duplicate identifier {0:?}: identifiers must be unique within a quilt")]
    DuplicateIdentifier(String),
    #[error("the tags of {identifier:?} are {size} bytes in BCS; at most 65,535 are allowed")]
    TagsTooLarge { identifier: String, size: usize },
    #[error("patch {identifier:?} is {size} bytes; a patch holds at most 4 GiB")]
    PatchTooLarge { identifier: String, size: u64 },
    #[error("too many patches: {regions} regions (index included) for {columns} columns")]
    TooManyPatches { regions: usize, columns: u64 },
    #[error("the quilt needs a symbol size of {needed} bytes; RS2 allows at most 65,534")]
    QuiltTooLarge { needed: u64 },
    #[error("no sizes given to the symbol-size rule")]
    NoSizes,
    #[error("a quilt blob of {len} bytes is not a non-zero multiple of p·s = {source_symbols}")]
    BadBlobLength { len: u64, source_symbols: u64 },
    #[error("unsupported quilt version {0} (only 1 is known)")]
    UnsupportedQuiltVersion(u8),
    #[error("the index is {len} bytes; at most {max} fit in {MAX_INDEX_COLUMNS} columns")]
    IndexTooLarge { len: u64, max: u64 },
    #[error("truncated {what}: {needed} bytes needed, {available} available")]
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("the quilt index does not decode: {0}")]
    IndexDecode(String),
    #[error(
        "the quilt index is inconsistent: patch {patch} ends at column {end}, which is not after \
         its start {start} or beyond the {columns} columns"
    )]
    BadIndexRange {
        patch: usize,
        start: u16,
        end: u16,
        columns: u16,
    },
    #[error("unsupported patch header version {0} (only 1 is known)")]
    UnsupportedPatchVersion(u8),
    #[error("the patch header does not decode: {0}")]
    PatchHeaderDecode(String),
    #[error("the patch header names {header:?} but the index names {index:?}")]
    IdentifierMismatch { index: String, header: String },
    #[error("no patch {0:?} in this quilt")]
    PatchNotFound(String),
    #[error("a quilt patch ID is at least 33 bytes; got {0}")]
    PatchIdTooShort(usize),
    #[error("not a quilt patch ID: {0:?} is not URL-safe base64")]
    PatchIdEncoding(String),
    #[error("unsupported internal patch ID (version {version}, {len} bytes)")]
    UnsupportedPatchId { version: u8, len: usize },
    #[error("patch ID range {start}..{end} is empty or outside the {columns} columns")]
    BadPatchRange { start: u16, end: u16, columns: u16 },
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
}
