//! Floe's pure core: identifiers and the RedStuff (RS2) two-dimensional erasure code,
//! byte-compatible with Walrus. No I/O, no async, no network.
//!
//! * [`config`]: parameters from the shard count (f, p = n−2f, s = n−f, sizes, limits).
//! * [`encode`]: sliver pairs, metadata and blob ID; a metadata-only path.
//! * [`decode`]: blob reconstruction with consistency checks.
//! * [`audit`]: possession audits: sampled symbols of a shard's slivers with their proofs.
//! * [`recovery`]: recovery symbols with proofs, sliver recovery, inconsistency proofs.
//! * [`merkle`], [`metadata`], [`sliver`]: the hashed structures and their wire layouts.
//! * [`tx_digest`]: ledger entry digests in Walrus's base58 `txDigest` form.
#![forbid(unsafe_code)]

pub mod audit;
pub mod bytes32;
pub mod config;
pub mod decode;
pub mod encode;
pub mod ids;
pub mod merkle;
pub mod metadata;
pub mod quilt;
pub mod recovery;
mod rs;
pub mod sliver;
pub mod spill;
pub mod tx_digest;
pub mod uleb128;

pub use config::{ConfigError, EncodingConfig};
pub use decode::{
    ConsistencyCheck, DecodeError, Decoded, VerifiedSliver, data_rows, decode_from_data_rows,
    decode_from_primary, decode_from_secondary, decode_from_verified_primary,
    systematic_rows_from_verified_primary,
};
pub use encode::{BlobSource, EncodeError, EncodedBlob, SpillStore, compute_metadata, encode};
pub use ids::{
    BlobId, EncodingType, Epoch, IdParseError, ObjectId, PairRotation, ShardIndex, SliverIndex,
    SliverPairIndex, SliverType,
};
pub use metadata::{BlobMetadata, BlobMetadataWithId, MetadataError, SliverPairMetadata};
pub use recovery::{
    DecodingSymbol, EitherDecodingSymbol, GeneralRecoverySymbol, InconsistencyProof, Recovered,
    RecoveryError, RecoverySymbol, SymbolSource, decode_sliver_from_symbols, recover_sliver,
};
pub use rs::{RsError, pool_keeps_coding_state, release_pool_buffers, release_thread_buffers};
pub use sliver::{Sliver, SliverData, SliverError, SliverPair};
pub use spill::{SpilledBlob, encode_spilled};
pub use tx_digest::{TxDigest, TxDigestParseError};
