//! Possession audits: a few sampled symbols of a shard's two slivers, each with its Merkle
//! proof against the blob's metadata, at positions fixed by a fresh nonce.
//!
//! An auditor sends a shard's node an [`AuditRequest`] (a random 32-byte nonce and a sample
//! count). The node derives the positions with [`sample_positions`], reads both slivers of the
//! shard's pair, and answers, for each axis, the symbols of that sliver's expansion at those
//! positions with their proofs in the sliver's own tree ([`AuditSamples::from_slivers`]). The
//! roots of those trees are the pair's hashes in the metadata, so [`AuditSamples::verify`]
//! checks every symbol without the sliver: a few KiB per shard instead of the sliver.
//!
//! Pure computation: no I/O, no randomness (the nonce comes from the caller).

use serde::{Deserialize, Serialize};

use crate::config::EncodingConfig;
use crate::ids::{BlobId, ShardIndex, SliverIndex, SliverType};
use crate::merkle::blake2b256;
use crate::metadata::BlobMetadata;
use crate::recovery::{GeneralRecoverySymbol, RecoveryError, SymbolSource};
use crate::sliver::SliverData;

/// The most samples per axis a request may ask for (a node refuses more).
pub const MAX_AUDIT_SAMPLES: u16 = 32;
/// The samples per axis `floe audit` asks for by default.
pub const DEFAULT_AUDIT_SAMPLES: u16 = 4;
/// Domain separator of the position derivation (version 1).
const POSITION_DOMAIN: &[u8] = b"floe-audit-positions-v1";

/// A fresh random value chosen by the auditor for one shard.
pub type AuditNonce = [u8; 32];

/// An audit request, versioned. BCS: variant tag (`0` = V1), then the fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AuditRequest {
    /// Version 1 (tag 0): 32 + 2 + 32 + 2 bytes.
    V1(AuditRequestV1),
}

/// Version 1 of [`AuditRequest`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AuditRequestV1 {
    /// The audited blob.
    pub blob_id: BlobId,
    /// The audited shard (u16 LE).
    pub shard: ShardIndex,
    /// The auditor's fresh nonce.
    pub nonce: AuditNonce,
    /// Symbols asked for per axis, 1..=[`MAX_AUDIT_SAMPLES`] (u16 LE).
    pub samples: u16,
}

impl AuditRequest {
    /// The version-1 fields (the only version so far).
    pub fn v1(&self) -> &AuditRequestV1 {
        match self {
            AuditRequest::V1(r) => r,
        }
    }
}

/// Why samples do not prove possession.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The sample count is 0 or above [`MAX_AUDIT_SAMPLES`].
    #[error("sample count {0} is outside 1..={MAX_AUDIT_SAMPLES}")]
    BadSampleCount(u16),
    /// The shard is not one of the system's.
    #[error("shard {shard} is out of range for {n} shards")]
    ShardOutOfRange {
        /// The shard given.
        shard: u16,
        /// The number of shards.
        n: u16,
    },
    /// The answer holds a different number of symbols than asked for.
    #[error("{axis} sliver: {got} symbols, {expected} asked for")]
    WrongCount {
        /// The sliver's axis.
        axis: SliverType,
        /// Symbols in the answer.
        got: usize,
        /// Symbols asked for.
        expected: usize,
    },
    /// A symbol comes from another sliver or stands at another position than asked.
    #[error("{axis} sliver: sample {sample} is not the symbol asked for ({what})")]
    WrongSymbol {
        /// The sliver's axis.
        axis: SliverType,
        /// The sample's position in the answer.
        sample: usize,
        /// What differs.
        what: &'static str,
    },
    /// A symbol's size or Merkle proof does not check against the metadata.
    #[error("{axis} sliver: sample {sample}: {source}")]
    BadProof {
        /// The sliver's axis.
        axis: SliverType,
        /// The sample's position in the answer.
        sample: usize,
        /// The failed check.
        source: RecoveryError,
    },
    /// The node's own sliver could not be expanded (building an answer).
    #[error("cannot build samples from the {axis} sliver: {source}")]
    Build {
        /// The sliver's axis.
        axis: SliverType,
        /// The failure.
        source: RecoveryError,
    },
}

/// Checks a sample count.
pub fn check_sample_count(samples: u16) -> Result<(), AuditError> {
    if samples == 0 || samples > MAX_AUDIT_SAMPLES {
        return Err(AuditError::BadSampleCount(samples));
    }
    Ok(())
}

/// The positions (0..n, in the sliver's n-symbol expansion) sampled on `axis` of `shard`:
/// `Blake2b-256(domain ‖ nonce ‖ blob ID ‖ shard u16 LE ‖ axis byte ‖ i u16 LE)`, its first 8
/// bytes as a u64 LE, mod n, for i in 0..samples. Anyone holding the request recomputes them.
pub fn sample_positions(
    nonce: &AuditNonce,
    blob_id: &BlobId,
    shard: ShardIndex,
    axis: SliverType,
    samples: u16,
    n_shards: u16,
) -> Vec<SliverIndex> {
    let axis_byte = [match axis {
        SliverType::Primary => 0u8,
        SliverType::Secondary => 1u8,
    }];
    (0..samples)
        .map(|i| {
            let h = blake2b256(&[
                POSITION_DOMAIN,
                nonce,
                blob_id.as_bytes(),
                &shard.0.to_le_bytes(),
                &axis_byte,
                &i.to_le_bytes(),
            ]);
            let mut first = [0u8; 8];
            first.copy_from_slice(&h[..8]);
            let position = u64::from_le_bytes(first) % u64::from(n_shards.max(1));
            SliverIndex(position as u16)
        })
        .collect()
}

/// The sampled symbols of one shard's sliver pair, each proven in its own sliver's tree.
///
/// BCS: the primary samples, then the secondary samples, each a vector of
/// [`GeneralRecoverySymbol`]. A sample of the primary sliver is a symbol *for* a secondary
/// target (its position), and vice versa.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AuditSamples {
    /// Symbols of the shard's primary sliver.
    pub primary: Vec<GeneralRecoverySymbol>,
    /// Symbols of the shard's secondary sliver.
    pub secondary: Vec<GeneralRecoverySymbol>,
}

impl AuditSamples {
    /// The answer to `request` from the node's own two slivers of the shard's pair.
    pub fn from_slivers(
        config: &EncodingConfig,
        request: &AuditRequestV1,
        primary: &SliverData,
        secondary: &SliverData,
    ) -> Result<Self, AuditError> {
        check_sample_count(request.samples)?;
        let n = config.n_shards();
        let pick = |axis: SliverType, sliver: &SliverData| {
            let source = SymbolSource::new(config, axis, sliver)
                .map_err(|source| AuditError::Build { axis, source })?;
            sample_positions(
                &request.nonce,
                &request.blob_id,
                request.shard,
                axis,
                request.samples,
                n,
            )
            .into_iter()
            .map(|p| {
                source.symbol_for(p).ok_or(AuditError::Build {
                    axis,
                    source: RecoveryError::IndexOutOfRange(p.0),
                })
            })
            .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            primary: pick(SliverType::Primary, primary)?,
            secondary: pick(SliverType::Secondary, secondary)?,
        })
    }

    /// Checks that these are exactly the symbols `request` asks for, from the slivers of the
    /// shard's pair, each with a valid proof against `metadata` (already verified against the
    /// blob ID by the caller).
    pub fn verify(
        &self,
        config: &EncodingConfig,
        metadata: &BlobMetadata,
        request: &AuditRequestV1,
    ) -> Result<(), AuditError> {
        check_sample_count(request.samples)?;
        let n = config.n_shards();
        if request.shard.0 >= n {
            return Err(AuditError::ShardOutOfRange {
                shard: request.shard.0,
                n,
            });
        }
        let pair = request.shard.to_pair_index(n, &request.blob_id);
        for (axis, symbols) in [
            (SliverType::Primary, &self.primary),
            (SliverType::Secondary, &self.secondary),
        ] {
            let positions = sample_positions(
                &request.nonce,
                &request.blob_id,
                request.shard,
                axis,
                request.samples,
                n,
            );
            if symbols.len() != positions.len() {
                return Err(AuditError::WrongCount {
                    axis,
                    got: symbols.len(),
                    expected: positions.len(),
                });
            }
            let own_index = pair.to_sliver_index(axis, n);
            for (sample, (symbol, position)) in symbols.iter().zip(&positions).enumerate() {
                let wrong = |what| AuditError::WrongSymbol { axis, sample, what };
                if symbol.symbol.target_axis() != axis.orthogonal() {
                    return Err(wrong("taken from the other axis"));
                }
                if symbol.symbol.symbol().index != own_index.0 {
                    return Err(wrong("taken from another sliver"));
                }
                if symbol.target_index != *position {
                    return Err(wrong("at another position"));
                }
                symbol
                    .verify(config, metadata)
                    .map_err(|source| AuditError::BadProof {
                        axis,
                        sample,
                        source,
                    })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
