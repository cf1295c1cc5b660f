//! Slivers, their wire layout, and verification against blob metadata.

use serde::{Deserialize, Serialize};

use crate::config::EncodingConfig;
use crate::ids::{SliverIndex, SliverPairIndex, SliverType};
use crate::merkle::{Digest, MerkleTree, leaf_hashes, roots_of_many};
use crate::metadata::BlobMetadata;
use crate::rs::{RsError, memo_for, with_worker};

/// The symbols of one sliver.
///
/// BCS layout (wire version 1): `symbols` (ULEB128 length + bytes), `symbol_size` (u16 LE),
/// `index` (u16 LE: the sliver's index on its own axis). The axis is carried by [`Sliver`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SliverData {
    /// Serialised as one byte string (the same BCS bytes as a `Vec<u8>`, copied in bulk).
    #[serde(with = "serde_bytes")]
    pub symbols: Vec<u8>,
    pub symbol_size: u16,
    pub index: SliverIndex,
}

/// A sliver with its axis (BCS: `Primary` = 0, `Secondary` = 1, then the [`SliverData`]).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Sliver {
    Primary(SliverData),
    Secondary(SliverData),
}

/// Primary sliver k and secondary sliver n−1−k.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SliverPair {
    pub primary: SliverData,
    pub secondary: SliverData,
}

impl SliverPair {
    pub fn index(&self) -> SliverPairIndex {
        SliverPairIndex(self.primary.index.0)
    }
}

/// Why a sliver was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SliverError {
    #[error("sliver index {index} out of range for {n_shards} shards")]
    IndexOutOfRange { index: u16, n_shards: u16 },
    #[error("sliver symbol size {got} does not match the metadata's {expected}")]
    SymbolSizeMismatch { got: u16, expected: u16 },
    #[error("{axis} sliver has {got} bytes, expected {expected}")]
    WrongLength {
        axis: SliverType,
        got: usize,
        expected: usize,
    },
    #[error("{axis} sliver {index} does not match its hash in the metadata")]
    HashMismatch { axis: SliverType, index: u16 },
    #[error("metadata is unusable: {0}")]
    BadMetadata(String),
    #[error(transparent)]
    Rs(#[from] RsError),
}

impl SliverData {
    pub fn new(_axis: SliverType, index: SliverIndex, symbol_size: u16, symbols: Vec<u8>) -> Self {
        Self {
            symbols,
            symbol_size,
            index,
        }
    }

    pub fn symbol(&self, i: usize) -> &[u8] {
        let sym = usize::from(self.symbol_size);
        &self.symbols[i * sym..][..sym]
    }

    pub fn n_symbols(&self) -> usize {
        self.symbols.len() / usize::from(self.symbol_size.max(1))
    }

    /// Checks this sliver of `axis` against `metadata`: index range, symbol size, length, and
    /// the Merkle root of its expansion to n symbols.
    pub fn verify(
        &self,
        axis: SliverType,
        config: &EncodingConfig,
        metadata: &BlobMetadata,
    ) -> Result<(), SliverError> {
        let expected = self.expected_root(axis, config, metadata)?;
        if expanded_root(config, axis, self.symbol_size, &self.symbols)? != expected {
            return Err(self.mismatch(axis));
        }
        Ok(())
    }

    /// The root `metadata` holds for this sliver of `axis`, once its index range, symbol size
    /// and length are checked against it.
    fn expected_root(
        &self,
        axis: SliverType,
        config: &EncodingConfig,
        metadata: &BlobMetadata,
    ) -> Result<Digest, SliverError> {
        let n = config.n_shards();
        if self.index.0 >= n {
            return Err(SliverError::IndexOutOfRange {
                index: self.index.0,
                n_shards: n,
            });
        }
        let expected_sym = metadata
            .symbol_size(config)
            .map_err(|e| SliverError::BadMetadata(e.to_string()))?;
        if self.symbol_size != expected_sym {
            return Err(SliverError::SymbolSizeMismatch {
                got: self.symbol_size,
                expected: expected_sym,
            });
        }
        let expected_len = config.sliver_len(axis, expected_sym);
        if self.symbols.len() != expected_len {
            return Err(SliverError::WrongLength {
                axis,
                got: self.symbols.len(),
                expected: expected_len,
            });
        }
        let pair = self.index.to_pair_index(axis, n);
        let expected = metadata
            .sliver_hash(pair, axis)
            .ok_or_else(|| SliverError::BadMetadata("fewer hashes than shards".into()))?;
        Ok(*expected.bytes())
    }

    fn mismatch(&self, axis: SliverType) -> SliverError {
        SliverError::HashMismatch {
            axis,
            index: self.index.0,
        }
    }
}

/// [`SliverData::verify`] for many slivers of one blob at once, with the same result: `Ok`
/// when every one verifies, else the error of one that does not.
///
/// Small symbols make this much cheaper than one sliver at a time: slivers of the same axis
/// share coder calls (see [`expanded_roots`]), and their trees are hashed together. The work
/// is spread over the rayon pool.
pub fn verify_slivers(
    slivers: &[(SliverType, &SliverData)],
    config: &EncodingConfig,
    metadata: &BlobMetadata,
) -> Result<(), SliverError> {
    use rayon::prelude::*;
    let checked = slivers
        .iter()
        .map(|&(axis, data)| Ok((axis, data, data.expected_root(axis, config, metadata)?)))
        .collect::<Result<Vec<_>, SliverError>>()?;
    let Some(symbol_size) = slivers.first().map(|(_, d)| d.symbol_size) else {
        return Ok(());
    };
    // Slivers share a coder call only with slivers of their own axis.
    let (primary, secondary): (Vec<_>, Vec<_>) = checked
        .into_iter()
        .partition(|(axis, ..)| *axis == SliverType::Primary);
    let per_call = crate::rs::lines_per_shard(usize::from(symbol_size));
    [primary, secondary]
        .par_iter()
        .flat_map(|group| group.par_chunks(per_call))
        .try_for_each(|chunk| {
            let axis = chunk[0].0;
            let symbols: Vec<&[u8]> = chunk.iter().map(|(_, d, _)| d.symbols.as_slice()).collect();
            let roots = expanded_roots(config, axis, symbol_size, &symbols)?;
            match chunk
                .iter()
                .zip(&roots)
                .find(|((.., want), got)| want != *got)
            {
                Some(((_, data, _), _)) => Err(data.mismatch(axis)),
                None => Ok(()),
            }
        })
}

impl Sliver {
    pub fn axis(&self) -> SliverType {
        match self {
            Sliver::Primary(_) => SliverType::Primary,
            Sliver::Secondary(_) => SliverType::Secondary,
        }
    }
    pub fn data(&self) -> &SliverData {
        match self {
            Sliver::Primary(d) | Sliver::Secondary(d) => d,
        }
    }
    pub fn into_data(self) -> SliverData {
        match self {
            Sliver::Primary(d) | Sliver::Secondary(d) => d,
        }
    }
    pub fn new(axis: SliverType, data: SliverData) -> Self {
        match axis {
            SliverType::Primary => Sliver::Primary(data),
            SliverType::Secondary => Sliver::Secondary(data),
        }
    }
    pub fn verify(
        &self,
        config: &EncodingConfig,
        metadata: &BlobMetadata,
    ) -> Result<(), SliverError> {
        self.data().verify(self.axis(), config, metadata)
    }
}

/// The code that extends a sliver of `axis` to n symbols: a primary sliver (s symbols) is a
/// row, extended with the secondary code; a secondary sliver (p symbols) a column, extended with
/// the primary code. Returns (source count k, n).
pub(crate) fn expansion_code(config: &EncodingConfig, axis: SliverType) -> (usize, usize) {
    (usize::from(config.n_source_for(axis)), config.n())
}

/// The n-symbol expansion of a sliver: its own symbols followed by the repair symbols.
pub fn expand(
    config: &EncodingConfig,
    axis: SliverType,
    symbol_size: u16,
    symbols: &[u8],
) -> Result<Vec<u8>, RsError> {
    let (k, n) = expansion_code(config, axis);
    let sym = usize::from(symbol_size);
    let mut out = Vec::with_capacity(n * sym);
    out.extend_from_slice(symbols);
    with_worker(|w| {
        w.coder
            .encode(k, n, sym, symbols.chunks_exact(sym), |_, d| {
                out.extend_from_slice(d)
            })
    })?;
    Ok(out)
}

/// The Merkle root over a sliver's n-symbol expansion: the hash the metadata holds for it.
///
/// Small blobs make many slivers all zero, and the rest long runs of zero symbols. An all-zero
/// sliver of the right length expands to zeros (the code is linear), so its root is the
/// all-zero tree's, with no coding and one hash per level; elsewhere zero symbols, all-zero
/// subtrees and 2-byte symbols' leaves come from the memo (see [`crate::merkle::HashMemo`]).
/// Same root either way.
pub fn expanded_root(
    config: &EncodingConfig,
    axis: SliverType,
    symbol_size: u16,
    symbols: &[u8],
) -> Result<Digest, RsError> {
    let roots = expanded_roots(config, axis, symbol_size, &[symbols])?;
    Ok(roots[0])
}

/// [`expanded_root`] of each of `slivers` (all of `axis`, with symbols of `symbol_size`
/// bytes), on this thread. Symbols of up to 32 bytes leave most of the coder's 64-byte chunk
/// unused, so the slivers share its calls ([`crate::rs::lines_per_shard`] to a call), and all
/// their trees are hashed level by level together.
pub fn expanded_roots(
    config: &EncodingConfig,
    axis: SliverType,
    symbol_size: u16,
    slivers: &[&[u8]],
) -> Result<Vec<Digest>, RsError> {
    let (k, n) = expansion_code(config, axis);
    let sym = usize::from(symbol_size);
    if sym == 0 {
        return Err(RsError::Codec("symbols of 0 bytes".into()));
    }
    if let Some(bad) = slivers.iter().find(|s| s.len() != k * sym) {
        let got = bad.len();
        return Err(RsError::Codec(format!(
            "a sliver of {got} bytes, expected {k} symbols of {sym} bytes"
        )));
    }
    with_worker(|w| {
        let memo = memo_for(&mut w.memo, sym, n);
        let mut roots = vec![memo.zero_root(n); slivers.len()];
        // An all-zero sliver expands to zeros (the code is linear): its root is the zero root.
        let dense: Vec<usize> = (0..slivers.len())
            .filter(|&i| slivers[i].iter().any(|&b| b != 0))
            .collect();
        if dense.is_empty() {
            return Ok(roots);
        }
        let r = n - k;
        let mut repair = std::mem::take(&mut w.buf);
        repair.clear();
        repair.resize(dense.len() * r * sym, 0);
        let coded = w.coder.encode_lines(
            k,
            n,
            sym,
            dense.len(),
            |l, i| &slivers[dense[l]][i * sym..][..sym],
            |l, i, d| repair[(l * r + i) * sym..][..sym].copy_from_slice(d),
        );
        if let Err(e) = coded {
            w.buf = repair;
            return Err(e);
        }
        let mut leaves = vec![[0u8; 32]; dense.len() * n];
        for (l, &s) in dense.iter().enumerate() {
            let line = slivers[s]
                .chunks_exact(sym)
                .chain(repair[l * r * sym..][..r * sym].chunks_exact(sym));
            leaf_hashes(
                line,
                sym,
                Some(memo),
                &mut leaves[l * n..][..n],
                &mut w.scratch,
            );
        }
        w.buf = repair;
        let dense_roots = roots_of_many(&leaves, n, None, memo.zero_roots(0), &mut w.scratch);
        for (&s, root) in dense.iter().zip(dense_roots) {
            roots[s] = root;
        }
        Ok(roots)
    })
}

/// The full Merkle tree over a sliver's expansion (for recovery-symbol proofs).
pub fn expanded_tree(
    config: &EncodingConfig,
    axis: SliverType,
    symbol_size: u16,
    symbols: &[u8],
) -> Result<(Vec<u8>, MerkleTree), RsError> {
    let expanded = expand(config, axis, symbol_size, symbols)?;
    let tree = MerkleTree::from_symbols(&expanded, usize::from(symbol_size));
    Ok((expanded, tree))
}

/// Metadata computed from slivers as given: primary hash k from primary sliver k, secondary
/// hash k from secondary sliver n−1−k. For a correct encoding this equals the encoder's
/// metadata; for tampered slivers it is what a malicious client would publish (tests and fault
/// injection build inconsistent blobs this way).
pub fn metadata_from_slivers(
    config: &EncodingConfig,
    unencoded_length: u64,
    primary: &[SliverData],
    secondary: &[SliverData],
) -> Result<crate::metadata::BlobMetadataWithId, RsError> {
    use rayon::prelude::*;
    let n = config.n();
    assert!(
        primary.len() == n && secondary.len() == n,
        "one sliver of each axis per shard"
    );
    let roots = |axis: SliverType, slivers: &[SliverData]| -> Result<Vec<Digest>, RsError> {
        let mut by_index: Vec<&SliverData> = slivers.iter().collect();
        by_index.sort_by_key(|s| s.index);
        by_index
            .par_iter()
            .map(|s| expanded_root(config, axis, s.symbol_size, &s.symbols))
            .collect()
    };
    let p = roots(SliverType::Primary, primary)?;
    let s = roots(SliverType::Secondary, secondary)?;
    let hashes = (0..n)
        .map(|k| crate::metadata::SliverPairMetadata {
            primary_hash: p[k].into(),
            secondary_hash: s[n - 1 - k].into(),
        })
        .collect();
    Ok(crate::metadata::BlobMetadataWithId::new(
        unencoded_length,
        hashes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode;

    /// The plain root: the whole expansion, every leaf hashed, no shortcut.
    fn plain_root(config: &EncodingConfig, axis: SliverType, sliver: &SliverData) -> Digest {
        let expanded = expand(config, axis, sliver.symbol_size, &sliver.symbols).unwrap();
        MerkleTree::from_symbols(&expanded, usize::from(sliver.symbol_size)).root()
    }

    /// A blob of `len` patterned bytes with a run of zeros in its third quarter, encoded for n
    /// shards: small ones give all-zero slivers and slivers with long zero runs.
    fn encoded_with_zero_run(n: u16, len: usize) -> (EncodingConfig, crate::EncodedBlob) {
        let config = EncodingConfig::new(n).unwrap();
        let mut blob: Vec<u8> = (0..len).map(|i| (i * 131 + 3) as u8).collect();
        blob[len / 2..len * 3 / 4].fill(0);
        let encoded = encode(&config, &blob).unwrap();
        (config, encoded)
    }

    /// Small blobs make slivers that are all zero or hold long zero runs: every sliver's root
    /// matches the plain computation and the metadata, and every sliver verifies.
    #[test]
    fn small_blob_slivers_match_plain_roots() {
        for (n, len) in [
            (4u16, 0usize),
            (4, 5),
            (7, 100),
            (10, 1),
            (10, 40),
            (100, 1024),
            (1000, 1024),
        ] {
            let (config, encoded) = encoded_with_zero_run(n, len);
            let metadata = &encoded.metadata().metadata;
            for axis in [SliverType::Primary, SliverType::Secondary] {
                for i in 0..n {
                    let sliver = encoded.sliver(axis, SliverIndex(i));
                    let root =
                        expanded_root(&config, axis, sliver.symbol_size, &sliver.symbols).unwrap();
                    let what = format!("n={n} len={len} {axis} {i}");
                    assert_eq!(root, plain_root(&config, axis, &sliver), "{what}");
                    sliver.verify(axis, &config, metadata).expect(&what);
                }
            }
        }
    }

    /// Slivers verified together (packed into shared coder calls, hashed together) give the
    /// plain roots and the same verdict as slivers verified one by one, for symbols of 2 bytes
    /// (32 to a call), of 18 (3 to a call, a partly used chunk) and of more than 32 (1 to a
    /// call); one changed byte in a packed group is found and named.
    #[test]
    fn slivers_verified_together_match_slivers_verified_apart() {
        for (n, len) in [
            (10u16, 1usize),
            (10, 500),
            (10, 10_000),
            (100, 1024),
            (1000, 1024),
        ] {
            let (config, encoded) = encoded_with_zero_run(n, len);
            let metadata = &encoded.metadata().metadata;
            let mut all: Vec<(SliverType, SliverData)> = Vec::new();
            for axis in [SliverType::Primary, SliverType::Secondary] {
                let slivers: Vec<SliverData> = (0..n)
                    .map(|i| encoded.sliver(axis, SliverIndex(i)))
                    .collect();
                let symbols: Vec<&[u8]> = slivers.iter().map(|s| s.symbols.as_slice()).collect();
                let roots = expanded_roots(&config, axis, encoded.symbol_size(), &symbols).unwrap();
                if n <= 100 {
                    for (s, root) in slivers.iter().zip(&roots) {
                        assert_eq!(*root, plain_root(&config, axis, s), "n={n} len={len}");
                    }
                }
                all.extend(slivers.into_iter().map(|s| (axis, s)));
            }
            let refs: Vec<_> = all.iter().map(|(a, d)| (*a, d)).collect();
            verify_slivers(&refs, &config, metadata).expect("an honest blob verifies");
            let victim = all
                .iter()
                .rposition(|(_, d)| d.symbols.iter().any(|&b| b != 0))
                .unwrap();
            all[victim].1.symbols[1] ^= 0x40;
            let (axis, index) = (all[victim].0, all[victim].1.index.0);
            let refs: Vec<_> = all.iter().map(|(a, d)| (*a, d)).collect();
            assert_eq!(
                verify_slivers(&refs, &config, metadata),
                Err(SliverError::HashMismatch { axis, index }),
                "n={n} len={len}"
            );
            assert_eq!(
                all[victim].1.verify(axis, &config, metadata),
                Err(SliverError::HashMismatch { axis, index })
            );
        }
    }

    /// The all-zero shortcut does not let a zero sliver pass for a non-zero one, nor the
    /// reverse.
    #[test]
    fn zero_and_non_zero_slivers_are_not_confused() {
        let config = EncodingConfig::new(10).unwrap();
        let encoded = encode(&config, &[9u8; 10]).unwrap();
        let metadata = &encoded.metadata().metadata;
        // Primary sliver 0 holds the blob; primary sliver 1 is all zero.
        let data = encoded.sliver(SliverType::Primary, SliverIndex(0));
        let zero = encoded.sliver(SliverType::Primary, SliverIndex(1));
        assert!(zero.symbols.iter().all(|&b| b == 0));
        let swapped = [
            SliverData {
                index: SliverIndex(1),
                ..data
            },
            SliverData {
                index: SliverIndex(0),
                ..zero
            },
        ];
        for sliver in swapped {
            assert_eq!(
                sliver.verify(SliverType::Primary, &config, metadata),
                Err(SliverError::HashMismatch {
                    axis: SliverType::Primary,
                    index: sliver.index.0
                })
            );
        }
    }
}
