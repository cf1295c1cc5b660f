//! Recovery symbols with Merkle proofs, sliver recovery, and inconsistency proofs.
//!
//! Symbol (r, c) of the expanded matrix lies on primary sliver r and on secondary sliver c. A
//! node holding secondary sliver c expands it to n symbols and can hand out (r, c) for any r,
//! with the proof of leaf r in column c's tree (whose root is in the metadata); likewise a node
//! holding primary sliver r hands out (r, c) with a proof in row r's tree.
//!
//! * A primary sliver is recovered from s = n−f symbols of its row (secondary code).
//! * A secondary sliver is recovered from p = n−2f symbols of its column (primary code).
//!
//! If the recovered sliver does not match the metadata, the blob was encoded inconsistently and
//! the symbols used form an [`InconsistencyProof`] that anyone can check.

use serde::{Deserialize, Serialize};

use crate::config::EncodingConfig;
use crate::ids::{SliverIndex, SliverType};
use crate::merkle::{MerkleProof, MerkleTree};
use crate::metadata::BlobMetadata;
use crate::rs::{RsError, with_worker};
use crate::sliver::{SliverData, SliverError, expand, expanded_root};

/// One symbol of a target sliver: `index` is its position in the target's n-symbol expansion,
/// which is also the index of the orthogonal sliver it was taken from.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DecodingSymbol {
    pub index: u16,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// A decoding symbol tagged with the axis of the sliver it helps rebuild.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum EitherDecodingSymbol {
    Primary(DecodingSymbol),
    Secondary(DecodingSymbol),
}

impl EitherDecodingSymbol {
    pub fn target_axis(&self) -> SliverType {
        match self {
            EitherDecodingSymbol::Primary(_) => SliverType::Primary,
            EitherDecodingSymbol::Secondary(_) => SliverType::Secondary,
        }
    }
    pub fn symbol(&self) -> &DecodingSymbol {
        match self {
            EitherDecodingSymbol::Primary(s) | EitherDecodingSymbol::Secondary(s) => s,
        }
    }
}

/// A recovery symbol as served by a node: the symbol, the target sliver's index on its axis, and
/// the proof of the symbol in the tree of the orthogonal (source) sliver.
///
/// BCS (wire version 1): symbol (enum tag, u16 index, bytes), target index (u16), proof.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GeneralRecoverySymbol {
    pub symbol: EitherDecodingSymbol,
    pub target_index: SliverIndex,
    pub proof: MerkleProof,
}

/// A recovery symbol whose target axis is known from context (inside an inconsistency proof).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RecoverySymbol {
    pub symbol: DecodingSymbol,
    pub proof: MerkleProof,
}

/// Proof that a blob is inconsistently encoded: exactly the number of symbols needed to recover
/// sliver `target_index` of an axis, all proven against the metadata, which decode to a sliver
/// whose hash is not the one in the metadata. The axis travels beside it (the node route names
/// it).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct InconsistencyProof {
    pub target_index: SliverIndex,
    pub symbols: Vec<RecoverySymbol>,
}

/// Errors of recovery and of proof verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error("sliver index {0} is out of range")]
    IndexOutOfRange(u16),
    #[error("recovery symbol has {got} bytes, expected the symbol size {expected}")]
    WrongSymbolSize { got: usize, expected: usize },
    #[error("recovery symbol {index} for {axis} sliver {target} has an invalid Merkle proof")]
    InvalidProof {
        axis: SliverType,
        target: u16,
        index: u16,
    },
    #[error("not enough valid symbols to recover {axis} sliver {target}: have {have}, need {need}")]
    NotEnoughSymbols {
        axis: SliverType,
        target: u16,
        have: usize,
        need: usize,
    },
    #[error("inconsistency proof must hold exactly {expected} distinct symbols, it holds {got}")]
    WrongSymbolCount { got: usize, expected: usize },
    #[error(
        "the symbols decode to a sliver that matches the metadata: the blob is not proven inconsistent"
    )]
    NotInconsistent,
    #[error(
        "the decoding symbols rebuild a {axis} sliver {target} that does not match the metadata"
    )]
    DecodedSliverMismatch { axis: SliverType, target: u16 },
    #[error("metadata is unusable: {0}")]
    BadMetadata(String),
    #[error(transparent)]
    Rs(#[from] RsError),
}

/// The outcome of a recovery attempt that had enough valid symbols.
#[derive(Debug)]
pub enum Recovered {
    /// The sliver, verified against the metadata.
    Sliver(SliverData),
    /// The blob is inconsistent; here is the proof.
    Inconsistent(InconsistencyProof),
}

/// Which metadata hash a symbol of target (`axis`, `target`) at position `index` is proven
/// against, as (root, leaf index): the orthogonal sliver `index`'s tree, leaf `target`.
fn proof_anchor(
    config: &EncodingConfig,
    metadata: &BlobMetadata,
    axis: SliverType,
    target: u16,
    index: u16,
) -> Result<([u8; 32], usize), RecoveryError> {
    let n = config.n_shards();
    if target >= n {
        return Err(RecoveryError::IndexOutOfRange(target));
    }
    if index >= n {
        return Err(RecoveryError::IndexOutOfRange(index));
    }
    let source_axis = axis.orthogonal();
    let pair = SliverIndex(index).to_pair_index(source_axis, n);
    let root = metadata
        .sliver_hash(pair, source_axis)
        .ok_or_else(|| RecoveryError::BadMetadata("fewer hashes than shards".into()))?;
    Ok((*root.bytes(), usize::from(target)))
}

fn check_symbol(
    config: &EncodingConfig,
    metadata: &BlobMetadata,
    axis: SliverType,
    target: u16,
    symbol: &DecodingSymbol,
    proof: &MerkleProof,
) -> Result<(), RecoveryError> {
    let sym = usize::from(
        metadata
            .symbol_size(config)
            .map_err(|e| RecoveryError::BadMetadata(e.to_string()))?,
    );
    if symbol.data.len() != sym {
        return Err(RecoveryError::WrongSymbolSize {
            got: symbol.data.len(),
            expected: sym,
        });
    }
    let (root, leaf) = proof_anchor(config, metadata, axis, target, symbol.index)?;
    if !proof.verify(&root, &symbol.data, leaf, config.n()) {
        return Err(RecoveryError::InvalidProof {
            axis,
            target,
            index: symbol.index,
        });
    }
    Ok(())
}

impl GeneralRecoverySymbol {
    /// Checks the symbol's size and its proof against the metadata.
    pub fn verify(
        &self,
        config: &EncodingConfig,
        metadata: &BlobMetadata,
    ) -> Result<(), RecoveryError> {
        let axis = self.symbol.target_axis();
        check_symbol(
            config,
            metadata,
            axis,
            self.target_index.0,
            self.symbol.symbol(),
            &self.proof,
        )
    }
}

/// A node's view of one of its slivers, expanded once, from which it answers symbol requests.
pub struct SymbolSource {
    axis: SliverType,
    index: SliverIndex,
    symbol_size: usize,
    expanded: Vec<u8>,
    tree: MerkleTree,
}

impl SymbolSource {
    /// Expand `sliver` (of `axis`) and build its tree.
    pub fn new(
        config: &EncodingConfig,
        axis: SliverType,
        sliver: &SliverData,
    ) -> Result<Self, RecoveryError> {
        let expanded = expand(config, axis, sliver.symbol_size, &sliver.symbols)?;
        let tree = MerkleTree::from_symbols(&expanded, usize::from(sliver.symbol_size));
        Ok(Self {
            axis,
            index: sliver.index,
            symbol_size: usize::from(sliver.symbol_size),
            expanded,
            tree,
        })
    }

    /// The symbol this sliver holds for sliver `target` of the orthogonal axis.
    pub fn symbol_for(&self, target: SliverIndex) -> Option<GeneralRecoverySymbol> {
        let t = target.as_usize();
        let proof = self.tree.proof(t)?;
        let data = self.expanded[t * self.symbol_size..][..self.symbol_size].to_vec();
        let symbol = DecodingSymbol {
            index: self.index.0,
            data,
        };
        let symbol = match self.axis.orthogonal() {
            SliverType::Primary => EitherDecodingSymbol::Primary(symbol),
            SliverType::Secondary => EitherDecodingSymbol::Secondary(symbol),
        };
        Some(GeneralRecoverySymbol {
            symbol,
            target_index: target,
            proof,
        })
    }
}

/// Decode target sliver (`axis`, `target`) from exactly `k` symbols with distinct positions.
fn decode_target(
    config: &EncodingConfig,
    axis: SliverType,
    sym: usize,
    symbols: &[&DecodingSymbol],
) -> Result<Vec<u8>, RsError> {
    let k = usize::from(config.n_source_for(axis));
    let mut out = vec![0u8; k * sym];
    with_worker(|w| {
        let it = symbols.iter().map(|s| (usize::from(s.index), &s.data[..]));
        w.coder.decode(k, config.n(), sym, it, |i, d| {
            out[i * sym..][..sym].copy_from_slice(d)
        })
    })?;
    Ok(out)
}

/// Rebuild sliver (`axis`, `target`) from decoding symbols, which carry no proofs, and return
/// it only if it matches its hash in the metadata: that hash authenticates the result, so the
/// symbols need no proofs of their own.
///
/// Symbols of the wrong size, at out-of-range positions or at positions already seen are
/// skipped; the first `n_symbols_for_recovery(axis)` usable ones are decoded (pass the most
/// trusted first). [`RecoveryError::DecodedSliverMismatch`] means that a symbol was wrong or
/// that the blob is inconsistent; the two cannot be told apart without proofs, so the caller
/// falls back to [`recover_sliver`] with proven recovery symbols.
pub fn decode_sliver_from_symbols<'a>(
    config: &EncodingConfig,
    metadata: &BlobMetadata,
    axis: SliverType,
    target: SliverIndex,
    symbols: impl IntoIterator<Item = &'a DecodingSymbol>,
) -> Result<SliverData, RecoveryError> {
    if target.0 >= config.n_shards() {
        return Err(RecoveryError::IndexOutOfRange(target.0));
    }
    let need = usize::from(config.n_symbols_for_recovery(axis));
    let sym_size = metadata
        .symbol_size(config)
        .map_err(|e| RecoveryError::BadMetadata(e.to_string()))?;
    let sym = usize::from(sym_size);
    let mut seen = vec![false; config.n()];
    let mut used: Vec<&DecodingSymbol> = Vec::with_capacity(need);
    for s in symbols {
        if used.len() == need {
            break;
        }
        let idx = usize::from(s.index);
        if s.data.len() != sym || idx >= seen.len() || seen[idx] {
            continue;
        }
        seen[idx] = true;
        used.push(s);
    }
    if used.len() < need {
        return Err(RecoveryError::NotEnoughSymbols {
            axis,
            target: target.0,
            have: used.len(),
            need,
        });
    }
    let sliver = SliverData {
        symbols: decode_target(config, axis, sym, &used)?,
        symbol_size: sym_size,
        index: target,
    };
    match sliver.verify(axis, config, metadata) {
        Ok(()) => Ok(sliver),
        Err(SliverError::HashMismatch { .. }) => Err(RecoveryError::DecodedSliverMismatch {
            axis,
            target: target.0,
        }),
        Err(e) => Err(RecoveryError::BadMetadata(e.to_string())),
    }
}

/// Recover sliver (`axis`, `target`) from recovery symbols. Invalid symbols, symbols for another
/// target and duplicates are skipped. With enough valid symbols, returns either the verified
/// sliver or, if the blob is inconsistent, a proof of it.
pub fn recover_sliver(
    config: &EncodingConfig,
    metadata: &BlobMetadata,
    axis: SliverType,
    target: SliverIndex,
    symbols: impl IntoIterator<Item = GeneralRecoverySymbol>,
) -> Result<Recovered, RecoveryError> {
    let need = usize::from(config.n_symbols_for_recovery(axis));
    let sym_size = metadata
        .symbol_size(config)
        .map_err(|e| RecoveryError::BadMetadata(e.to_string()))?;
    let mut seen = vec![false; config.n()];
    let mut used: Vec<RecoverySymbol> = Vec::with_capacity(need);
    for s in symbols {
        if used.len() == need {
            break;
        }
        if s.target_index != target || s.symbol.target_axis() != axis {
            continue;
        }
        let idx = usize::from(s.symbol.symbol().index);
        if idx >= seen.len() || seen[idx] || s.verify(config, metadata).is_err() {
            continue;
        }
        seen[idx] = true;
        let GeneralRecoverySymbol { symbol, proof, .. } = s;
        let symbol = match symbol {
            EitherDecodingSymbol::Primary(d) | EitherDecodingSymbol::Secondary(d) => d,
        };
        used.push(RecoverySymbol { symbol, proof });
    }
    if used.len() < need {
        return Err(RecoveryError::NotEnoughSymbols {
            axis,
            target: target.0,
            have: used.len(),
            need,
        });
    }
    let refs: Vec<&DecodingSymbol> = used.iter().map(|r| &r.symbol).collect();
    let symbols = decode_target(config, axis, usize::from(sym_size), &refs)?;
    let sliver = SliverData {
        symbols,
        symbol_size: sym_size,
        index: target,
    };
    match sliver.verify(axis, config, metadata) {
        Ok(()) => Ok(Recovered::Sliver(sliver)),
        Err(SliverError::HashMismatch { .. }) => Ok(Recovered::Inconsistent(InconsistencyProof {
            target_index: target,
            symbols: used,
        })),
        Err(e) => Err(RecoveryError::BadMetadata(e.to_string())),
    }
}

impl InconsistencyProof {
    /// Succeeds iff this proves the blob inconsistent on `axis`: exactly the needed number of
    /// distinct, proven symbols that decode to a sliver whose hash differs from the metadata's.
    pub fn verify(
        &self,
        axis: SliverType,
        config: &EncodingConfig,
        metadata: &BlobMetadata,
    ) -> Result<(), RecoveryError> {
        let need = usize::from(config.n_symbols_for_recovery(axis));
        let mut seen = vec![false; config.n()];
        for s in &self.symbols {
            let idx = usize::from(s.symbol.index);
            if idx < seen.len() {
                if seen[idx] {
                    return Err(RecoveryError::WrongSymbolCount {
                        got: self.symbols.len(),
                        expected: need,
                    });
                }
                seen[idx] = true;
            }
        }
        if self.symbols.len() != need {
            return Err(RecoveryError::WrongSymbolCount {
                got: self.symbols.len(),
                expected: need,
            });
        }
        for s in &self.symbols {
            check_symbol(
                config,
                metadata,
                axis,
                self.target_index.0,
                &s.symbol,
                &s.proof,
            )?;
        }
        let sym = metadata
            .symbol_size(config)
            .map_err(|e| RecoveryError::BadMetadata(e.to_string()))?;
        let refs: Vec<&DecodingSymbol> = self.symbols.iter().map(|r| &r.symbol).collect();
        let sliver = decode_target(config, axis, usize::from(sym), &refs)?;
        let root = expanded_root(config, axis, sym, &sliver)?;
        let pair = self.target_index.to_pair_index(axis, config.n_shards());
        let expected = metadata
            .sliver_hash(pair, axis)
            .ok_or_else(|| RecoveryError::BadMetadata("fewer hashes than shards".into()))?;
        if &root == expected.bytes() {
            return Err(RecoveryError::NotInconsistent);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{EncodedBlob, encode};

    const N: u16 = 10;

    fn setup() -> (EncodingConfig, EncodedBlob) {
        let config = EncodingConfig::new(N).unwrap();
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        let e = encode(&config, &data).unwrap();
        (config, e)
    }

    /// Every decoding symbol of target (`axis`, `target`): position i from orthogonal sliver i.
    fn symbols_for(
        config: &EncodingConfig,
        e: &EncodedBlob,
        axis: SliverType,
        target: u16,
    ) -> Vec<DecodingSymbol> {
        (0..N)
            .map(|i| {
                let source = e.sliver(axis.orthogonal(), SliverIndex(i));
                let src = SymbolSource::new(config, axis.orthogonal(), &source).unwrap();
                let s = src.symbol_for(SliverIndex(target)).unwrap();
                s.symbol.symbol().clone()
            })
            .collect()
    }

    #[test]
    fn decodes_every_sliver_from_any_positions() {
        let (config, e) = setup();
        let meta = &e.metadata().metadata;
        for axis in [SliverType::Primary, SliverType::Secondary] {
            let need = usize::from(config.n_symbols_for_recovery(axis));
            for target in 0..N {
                let all = symbols_for(&config, &e, axis, target);
                // From the last positions (repair symbols included) and from the first.
                for subset in [&all[all.len() - need..], &all[..need]] {
                    let got = decode_sliver_from_symbols(
                        &config,
                        meta,
                        axis,
                        SliverIndex(target),
                        subset,
                    )
                    .unwrap();
                    assert_eq!(got, e.sliver(axis, SliverIndex(target)));
                }
            }
        }
    }

    #[test]
    fn a_wrong_symbol_is_caught_by_the_metadata() {
        let (config, e) = setup();
        let meta = &e.metadata().metadata;
        let axis = SliverType::Secondary;
        let need = usize::from(config.n_symbols_for_recovery(axis));
        let mut all = symbols_for(&config, &e, axis, 3);
        all[1].data[0] ^= 1;
        let err = decode_sliver_from_symbols(&config, meta, axis, SliverIndex(3), &all[..need])
            .unwrap_err();
        assert_eq!(
            err,
            RecoveryError::DecodedSliverMismatch { axis, target: 3 }
        );
        // A wrong symbol beyond the first `need` usable ones is never used.
        let mut all = symbols_for(&config, &e, axis, 3);
        all[need].data[0] ^= 1;
        assert!(decode_sliver_from_symbols(&config, meta, axis, SliverIndex(3), &all).is_ok());
    }

    #[test]
    fn skips_bad_sizes_duplicates_and_out_of_range_positions() {
        let (config, e) = setup();
        let meta = &e.metadata().metadata;
        let axis = SliverType::Primary;
        let need = usize::from(config.n_symbols_for_recovery(axis));
        let all = symbols_for(&config, &e, axis, 7);
        let mut offered = vec![
            DecodingSymbol {
                index: all[0].index,
                data: vec![0; all[0].data.len() + 2],
            },
            DecodingSymbol {
                index: N,
                data: all[0].data.clone(),
            },
        ];
        offered.extend(all[..need - 1].iter().cloned());
        // A duplicate position with different bytes: the first one seen wins.
        offered.push(DecodingSymbol {
            index: all[0].index,
            data: vec![0xff; all[0].data.len()],
        });
        let short = decode_sliver_from_symbols(&config, meta, axis, SliverIndex(7), &offered);
        assert_eq!(
            short,
            Err(RecoveryError::NotEnoughSymbols {
                axis,
                target: 7,
                have: need - 1,
                need
            })
        );
        offered.push(all[need - 1].clone());
        let got =
            decode_sliver_from_symbols(&config, meta, axis, SliverIndex(7), &offered).unwrap();
        assert_eq!(got, e.sliver(axis, SliverIndex(7)));
        assert_eq!(
            decode_sliver_from_symbols(&config, meta, axis, SliverIndex(N), &offered),
            Err(RecoveryError::IndexOutOfRange(N))
        );
    }
}
