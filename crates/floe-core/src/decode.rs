//! Blob reconstruction from slivers, with the consistency checks of Walrus.
//!
//! * From any p = n−2f distinct primary slivers: RS-decode each of the s columns.
//! * From any s = n−f distinct secondary slivers: RS-decode each of the p rows.
//!
//! Every sliver is verified against the metadata before use; slivers that fail are skipped and
//! counted, so a reader can feed everything it received, Byzantine replies included.

use std::ops::Range;

use rayon::prelude::*;

use crate::config::EncodingConfig;
use crate::encode::{EncodeError, compute_metadata};
use crate::ids::{SliverIndex, SliverType};
use crate::metadata::BlobMetadataWithId;
use crate::rs::{RsError, line_batches, with_worker};
use crate::sliver::{SliverData, expanded_root};

/// What to check after decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConsistencyCheck {
    /// Nothing beyond the per-sliver verification.
    Skip,
    /// Re-derive the systematic slivers that were not received and check their hashes.
    #[default]
    Default,
    /// Re-encode the whole blob and compare blob IDs.
    Strict,
}

/// Why a blob could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "not enough valid {axis} slivers: have {have}, need {need} ({rejected} failed verification)"
    )]
    NotEnoughSlivers {
        axis: SliverType,
        have: usize,
        need: usize,
        rejected: usize,
    },
    #[error("the blob is inconsistently encoded: {0}")]
    Inconsistent(String),
    #[error("metadata is unusable: {0}")]
    BadMetadata(String),
    #[error(transparent)]
    Rs(#[from] RsError),
}

/// The outcome of a successful decode.
#[derive(Debug)]
pub struct Decoded {
    pub blob: Vec<u8>,
    /// Slivers that were offered but failed verification (wrong data, wrong index, …).
    pub rejected: usize,
}

/// A sliver checked against a blob's metadata (index range, symbol size, length, the Merkle
/// root of its expansion). Only [`VerifiedSliver::verify`] makes one, so a decoder given these
/// need not hash them again ([`decode_from_verified_primary`]).
#[derive(Clone, Debug)]
pub struct VerifiedSliver {
    sliver: SliverData,
    axis: SliverType,
    blob_id: crate::ids::BlobId,
}

impl VerifiedSliver {
    /// Check `sliver` of `axis` against `metadata` (already verified against its blob ID).
    pub fn verify(
        sliver: SliverData,
        axis: SliverType,
        config: &EncodingConfig,
        metadata: &BlobMetadataWithId,
    ) -> Result<Self, crate::sliver::SliverError> {
        sliver.verify(axis, config, &metadata.metadata)?;
        Ok(Self {
            sliver,
            axis,
            blob_id: metadata.blob_id,
        })
    }
    pub fn sliver(&self) -> &SliverData {
        &self.sliver
    }
    pub fn axis(&self) -> SliverType {
        self.axis
    }
    pub fn into_inner(self) -> SliverData {
        self.sliver
    }
}

/// Keep the first `need` distinct slivers that verify against the metadata.
fn select_verified(
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
    axis: SliverType,
    slivers: Vec<SliverData>,
    need: usize,
) -> Result<(Vec<SliverData>, usize), DecodeError> {
    let checked: Vec<(SliverData, bool)> = slivers
        .into_par_iter()
        .map(|s| {
            let ok = s.verify(axis, config, &metadata.metadata).is_ok();
            (s, ok)
        })
        .collect();
    let mut seen = vec![false; config.n()];
    let mut good = Vec::with_capacity(need);
    let mut rejected = 0;
    for (s, ok) in checked {
        if !ok {
            rejected += 1;
        } else if !seen[s.index.as_usize()] && good.len() < need {
            seen[s.index.as_usize()] = true;
            good.push(s);
        }
    }
    if good.len() < need {
        return Err(DecodeError::NotEnoughSlivers {
            axis,
            have: good.len(),
            need,
            rejected,
        });
    }
    Ok((good, rejected))
}

/// The matrix shape of a blob: source rows p, columns s, n, length and symbol size.
struct Shape {
    p: usize,
    s: usize,
    n: usize,
    len: u64,
    sym: usize,
}

impl Shape {
    fn of(config: &EncodingConfig, metadata: &BlobMetadataWithId) -> Result<Self, DecodeError> {
        let sym = metadata
            .metadata
            .symbol_size(config)
            .map_err(|e| DecodeError::BadMetadata(e.to_string()))?;
        Ok(Self {
            p: usize::from(config.n_primary_source()),
            s: usize::from(config.n_secondary_source()),
            n: config.n(),
            len: metadata.metadata.unencoded_length(),
            sym: usize::from(sym),
        })
    }
}

/// How many leading systematic primary slivers (rows) hold the blob's bytes; the rows after
/// them, up to p, are all padding. Fewer than p only for blobs smaller than the matrix.
pub fn data_rows(
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
) -> Result<usize, DecodeError> {
    let Shape { p, s, len, sym, .. } = Shape::of(config, metadata)?;
    let row = (s * sym) as u64;
    Ok((len.div_ceil(row.max(1)) as usize).min(p))
}

/// Decode a blob from its leading systematic rows alone: primary slivers 0..k, where k is
/// [`data_rows`]. The other source rows are padding, hence zero in a correctly encoded blob;
/// the consistency check confirms it (`Default`: every padding row's hash in the metadata is
/// the hash of a zero row; `Strict`: the re-encoded blob ID). A blob whose padding is not zero
/// fails with [`DecodeError::Inconsistent`], and the caller reads it the ordinary way.
pub fn decode_from_data_rows(
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
    rows: Vec<SliverData>,
    check: ConsistencyCheck,
) -> Result<Decoded, DecodeError> {
    let Shape { p, s, n, len, sym } = Shape::of(config, metadata)?;
    let k = data_rows(config, metadata)?;
    let (rows, rejected) = select_verified(config, metadata, SliverType::Primary, rows, k)?;
    if let Some(r) = rows.iter().find(|r| r.index.as_usize() >= k) {
        return Err(DecodeError::BadMetadata(format!(
            "row {} is not one of the {k} data rows",
            r.index
        )));
    }
    let mut blob = vec![0u8; p * s * sym];
    for r in &rows {
        blob[r.index.as_usize() * s * sym..][..s * sym].copy_from_slice(&r.symbols);
    }
    if check == ConsistencyCheck::Default && k < p {
        // Every padding row expands to zeros: one root serves them all.
        let zero = expanded_root(
            config,
            SliverType::Primary,
            sym as u16,
            &blob[(p - 1) * s * sym..],
        )?;
        for r in k..p {
            let pair = SliverIndex(r as u16).to_pair_index(SliverType::Primary, n as u16);
            let expected = metadata
                .metadata
                .sliver_hash(pair, SliverType::Primary)
                .ok_or_else(|| DecodeError::BadMetadata("fewer hashes than shards".into()))?;
            if expected.bytes() != &zero {
                return Err(DecodeError::Inconsistent(format!(
                    "padding row {r} is not zero"
                )));
            }
        }
    }
    check_consistency(config, metadata, &blob, sym, check, |axis, _| {
        axis == SliverType::Primary
    })?;
    blob.truncate(len as usize);
    Ok(Decoded { blob, rejected })
}

/// Decode a blob from primary slivers (at least p distinct valid ones among `slivers`).
pub fn decode_from_primary(
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
    slivers: Vec<SliverData>,
    check: ConsistencyCheck,
) -> Result<Decoded, DecodeError> {
    let p = usize::from(config.n_primary_source());
    let (rows, rejected) = select_verified(config, metadata, SliverType::Primary, slivers, p)?;
    decode_rows_of_primary(config, metadata, rows, rejected, check)
}

/// [`decode_from_primary`] from slivers already verified against this blob's metadata: they
/// are not hashed again (which is most of a decode from systematic slivers). Slivers verified
/// for another blob or axis are refused.
pub fn decode_from_verified_primary(
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
    slivers: Vec<VerifiedSliver>,
    check: ConsistencyCheck,
) -> Result<Decoded, DecodeError> {
    let rows = distinct_verified_primary(config, metadata, slivers)?;
    decode_rows_of_primary(config, metadata, rows, 0, check)
}

/// The p systematic primary slivers (rows `0..p`, in order) from p distinct verified primary
/// slivers, some of them repair rows: the systematic ones received are passed on as they are,
/// the missing ones decoded and each checked against its metadata hash (what
/// [`ConsistencyCheck::Default`] checks). No buffer of the whole blob is made: a reader that
/// streams the rows holds the slivers and the decoded rows, not a decoded copy of the blob too.
pub fn systematic_rows_from_verified_primary(
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
    slivers: Vec<VerifiedSliver>,
) -> Result<Vec<SliverData>, DecodeError> {
    let rows = distinct_verified_primary(config, metadata, slivers)?;
    let shape = Shape::of(config, metadata)?;
    let Shape { p, sym, .. } = shape;
    let (source, decoded) = decode_missing_rows(&rows, &shape)?;
    let bad = decoded
        .par_iter()
        .find_any(|(r, row)| !row_matches(config, metadata, sym, *r, row));
    if let Some((r, _)) = bad {
        return Err(row_mismatch(*r));
    }
    let mut received: Vec<Option<SliverData>> = rows.into_iter().map(Some).collect();
    let mut decoded = decoded.into_iter();
    (0..p)
        .map(|r| {
            let symbols = match source[r] {
                Ok(j) => received[j].take().map(|row| row.symbols),
                Err(_) => decoded.next().map(|(_, row)| row),
            };
            symbols
                .map(|symbols| SliverData {
                    symbols,
                    symbol_size: sym as u16,
                    index: SliverIndex(r as u16),
                })
                .ok_or_else(|| {
                    DecodeError::BadMetadata(format!("row {r} neither received nor decoded"))
                })
        })
        .collect()
}

/// Exactly p distinct primary slivers verified for `metadata`'s blob, the first of each index.
fn distinct_verified_primary(
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
    slivers: Vec<VerifiedSliver>,
) -> Result<Vec<SliverData>, DecodeError> {
    let p = usize::from(config.n_primary_source());
    if let Some(v) = slivers
        .iter()
        .find(|v| v.blob_id != metadata.blob_id || v.axis != SliverType::Primary)
    {
        return Err(DecodeError::BadMetadata(format!(
            "a sliver verified as {} sliver of blob {} given for the primary slivers of {}",
            v.axis, v.blob_id, metadata.blob_id
        )));
    }
    let mut seen = vec![false; config.n()];
    let mut rows = Vec::with_capacity(p);
    for v in slivers {
        let i = v.sliver.index.as_usize();
        if !seen[i] && rows.len() < p {
            seen[i] = true;
            rows.push(v.sliver);
        }
    }
    if rows.len() < p {
        return Err(DecodeError::NotEnoughSlivers {
            axis: SliverType::Primary,
            have: rows.len(),
            need: p,
            rejected: 0,
        });
    }
    Ok(rows)
}

/// Decode from exactly p distinct verified primary slivers.
fn decode_rows_of_primary(
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
    mut rows: Vec<SliverData>,
    rejected: usize,
    check: ConsistencyCheck,
) -> Result<Decoded, DecodeError> {
    let Shape { p, s, n, len, sym } = Shape::of(config, metadata)?;
    rows.sort_by_key(|r| r.index);
    let systematic = rows.iter().all(|r| r.index.as_usize() < p);
    let mut blob = vec![0u8; p * s * sym];
    if systematic {
        for r in &rows {
            blob[r.index.as_usize() * s * sym..][..s * sym].copy_from_slice(&r.symbols);
        }
    } else {
        decode_columns(&rows, &Shape { p, s, n, len, sym }, &mut blob)?;
    }
    let received: Vec<bool> = {
        let mut v = vec![false; p];
        rows.iter()
            .filter(|r| r.index.as_usize() < p)
            .for_each(|r| v[r.index.as_usize()] = true);
        v
    };
    check_consistency(config, metadata, &blob, sym, check, |axis, i| {
        axis == SliverType::Primary && received[i]
    })?;
    blob.truncate(len as usize);
    Ok(Decoded { blob, rejected })
}

/// Decode a blob from secondary slivers (at least s distinct valid ones among `slivers`).
pub fn decode_from_secondary(
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
    slivers: Vec<SliverData>,
    check: ConsistencyCheck,
) -> Result<Decoded, DecodeError> {
    let Shape { p, s, n, len, sym } = Shape::of(config, metadata)?;
    let (cols, rejected) = select_verified(config, metadata, SliverType::Secondary, slivers, s)?;
    let mut blob = vec![0u8; p * s * sym];
    decode_rows(&cols, &Shape { p, s, n, len, sym }, &mut blob)?;
    let mut received = vec![false; s];
    cols.iter()
        .filter(|c| c.index.as_usize() < s)
        .for_each(|c| received[c.index.as_usize()] = true);
    check_consistency(config, metadata, &blob, sym, check, |axis, i| {
        axis == SliverType::Secondary && received[i]
    })?;
    blob.truncate(len as usize);
    Ok(Decoded { blob, rejected })
}

/// Fill the source matrix `blob` (row-major) from `p` distinct primary slivers, some of them
/// repair rows: received systematic rows are copied, the others decoded column by column
/// straight into their place ([`decode_missing_into`]). Temporary memory is the decoders'
/// working space alone.
fn decode_columns(rows: &[SliverData], shape: &Shape, blob: &mut [u8]) -> Result<(), RsError> {
    let (positions, source) = row_sources(rows, shape.p);
    let mut missing = Vec::new();
    for (row, source) in blob.chunks_mut(shape.s * shape.sym).zip(&source) {
        match *source {
            Ok(j) => row.copy_from_slice(&rows[j].symbols),
            Err(_) => missing.push(row),
        }
    }
    decode_missing_into(rows, shape, &positions, &source, missing)
}

/// For each source row, `Ok(j)`: `rows[j]` holds it; `Err(m)`: it is the m-th missing one.
type RowSources = Vec<Result<usize, usize>>;
/// Decoded rows: `(row index, its s symbols)`, in order.
type DecodedRows = Vec<(usize, Vec<u8>)>;

/// The source rows `rows` lack, decoded: `(row index, its s symbols)` in order, with where
/// each source row comes from.
fn decode_missing_rows(
    rows: &[SliverData],
    shape: &Shape,
) -> Result<(RowSources, DecodedRows), RsError> {
    let (positions, source) = row_sources(rows, shape.p);
    let mut decoded: DecodedRows = (0..shape.p)
        .filter(|&r| source[r].is_err())
        .map(|r| (r, vec![0u8; shape.s * shape.sym]))
        .collect();
    let targets = decoded.iter_mut().map(|(_, row)| &mut row[..]).collect();
    decode_missing_into(rows, shape, &positions, &source, targets)?;
    Ok((source, decoded))
}

/// The positions of `rows`, and where each of the `p` source rows comes from.
fn row_sources(rows: &[SliverData], p: usize) -> (Vec<usize>, RowSources) {
    let positions: Vec<usize> = rows.iter().map(|r| r.index.as_usize()).collect();
    let mut source: RowSources = vec![Err(usize::MAX); p];
    for (j, &pos) in positions.iter().enumerate() {
        if pos < p {
            source[pos] = Ok(j);
        }
    }
    let missing = source.iter_mut().filter(|r| r.is_err());
    missing.enumerate().for_each(|(m, r)| *r = Err(m));
    (positions, source)
}

/// Decode the missing source rows into `targets` (the m-th missing row's s symbols in
/// `targets[m]`), in batches of columns that share one decoder call
/// ([`Coder::decode_lines`](crate::rs::Coder::decode_lines)). The batches' columns of a row
/// are disjoint slices of it, so the batches decode in parallel, each straight into its own.
fn decode_missing_into(
    rows: &[SliverData],
    shape: &Shape,
    positions: &[usize],
    source: &[Result<usize, usize>],
    targets: Vec<&mut [u8]>,
) -> Result<(), RsError> {
    let Shape { p, s, n, sym, .. } = *shape;
    let batches: Vec<Range<usize>> =
        line_batches(s, sym, 2 * rayon::current_num_threads()).collect();
    // parts[b][m]: batch b's columns of the m-th missing row.
    let mut parts: Vec<Vec<&mut [u8]>> = batches
        .iter()
        .map(|_| Vec::with_capacity(targets.len()))
        .collect();
    for row in targets {
        let mut rest = row;
        for (cols, part) in batches.iter().zip(parts.iter_mut()) {
            let (own, tail) = std::mem::take(&mut rest).split_at_mut(cols.len() * sym);
            part.push(own);
            rest = tail;
        }
    }
    batches
        .par_iter()
        .zip(parts.par_iter_mut())
        .try_for_each(|(cols, part)| {
            with_worker(|w| {
                let symbol = |l: usize, j: usize| rows[j].symbol(cols.start + l);
                w.coder
                    .decode_lines(p, n, sym, positions, cols.len(), symbol, |l, i, d| {
                        if let Err(m) = source[i] {
                            part[m][l * sym..][..sym].copy_from_slice(d);
                        }
                    })
            })
        })
}

/// Fill the source matrix `blob` (row-major) from `s` distinct secondary slivers, decoding
/// every row. All rows were received at the same positions, so rows are decoded in batches
/// that share one decoder call, each batch straight into its own rows of `blob`.
fn decode_rows(cols: &[SliverData], shape: &Shape, blob: &mut [u8]) -> Result<(), RsError> {
    let Shape { p, s, n, sym, .. } = *shape;
    let row_bytes = s * sym;
    let positions: Vec<usize> = cols.iter().map(|c| c.index.as_usize()).collect();
    let mut parts: Vec<(Range<usize>, &mut [u8])> = Vec::new();
    let mut rest = blob;
    for rows in line_batches(p, sym, 2 * rayon::current_num_threads()) {
        let (part, tail) = rest.split_at_mut(rows.len() * row_bytes);
        parts.push((rows, part));
        rest = tail;
    }
    parts.into_par_iter().try_for_each(|(rows, part)| {
        for (j, c) in cols
            .iter()
            .enumerate()
            .filter(|(_, c)| c.index.as_usize() < s)
        {
            for (l, row) in part.chunks_mut(row_bytes).enumerate() {
                row[positions[j] * sym..][..sym].copy_from_slice(c.symbol(rows.start + l));
            }
        }
        with_worker(|w| {
            let symbol = |l: usize, j: usize| cols[j].symbol(rows.start + l);
            w.coder
                .decode_lines(s, n, sym, &positions, rows.len(), symbol, |l, i, d| {
                    part[l * row_bytes + i * sym..][..sym].copy_from_slice(d)
                })
        })
    })?;
    Ok(())
}

/// Whether systematic primary sliver `r`, re-derived as `row`, has the hash the metadata names
/// (the Default check, row by row).
fn row_matches(
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
    sym: usize,
    r: usize,
    row: &[u8],
) -> bool {
    let pair = SliverIndex(r as u16).to_pair_index(SliverType::Primary, config.n_shards());
    let hash = metadata.metadata.sliver_hash(pair, SliverType::Primary);
    match (
        expanded_root(config, SliverType::Primary, sym as u16, row),
        hash,
    ) {
        (Ok(root), Some(h)) => &root == h.bytes(),
        _ => false,
    }
}

fn row_mismatch(r: usize) -> DecodeError {
    DecodeError::Inconsistent(format!(
        "systematic primary sliver {r} re-derived from the decoded blob does not match the metadata"
    ))
}

/// Run `check` on the decoded (padded) source matrix `blob`. `already_verified(axis, i)` says
/// whether systematic sliver i of `axis` was received and verified, so it need not be rechecked.
fn check_consistency(
    config: &EncodingConfig,
    metadata: &BlobMetadataWithId,
    blob: &[u8],
    sym: usize,
    check: ConsistencyCheck,
    already_verified: impl Fn(SliverType, usize) -> bool + Sync,
) -> Result<(), DecodeError> {
    let p = usize::from(config.n_primary_source());
    let s = usize::from(config.n_secondary_source());
    match check {
        ConsistencyCheck::Skip => Ok(()),
        ConsistencyCheck::Default => {
            // The systematic primary slivers are the rows of the decoded matrix.
            let bad = (0..p)
                .into_par_iter()
                .filter(|&r| !already_verified(SliverType::Primary, r))
                .find_any(|&r| {
                    !row_matches(config, metadata, sym, r, &blob[r * s * sym..][..s * sym])
                });
            bad.map_or(Ok(()), |r| Err(row_mismatch(r)))
        }
        ConsistencyCheck::Strict => {
            let len = metadata.metadata.unencoded_length() as usize;
            let recomputed = compute_metadata(config, &blob[..len]).map_err(|e| match e {
                EncodeError::Rs(r) => DecodeError::Rs(r),
                other => DecodeError::BadMetadata(other.to_string()),
            })?;
            if recomputed.blob_id != metadata.blob_id {
                return Err(DecodeError::Inconsistent(format!(
                    "re-encoding the decoded blob gives blob ID {}, not {}",
                    recomputed.blob_id, metadata.blob_id
                )));
            }
            Ok(())
        }
    }
}
