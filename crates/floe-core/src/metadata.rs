//! Blob metadata (one hash pair per sliver pair), its BCS layout, blob-ID derivation and
//! verification.

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, EncodingConfig};
use crate::ids::{BlobId, EncodingType, SliverPairIndex, SliverType};
use crate::merkle::{Digest, Node, Scratch, leaf_hashes, root_from_leaf_hashes};

/// The Merkle roots of the two expanded slivers of one pair.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SliverPairMetadata {
    pub primary_hash: Node,
    pub secondary_hash: Node,
}

impl SliverPairMetadata {
    pub fn hash(&self, axis: SliverType) -> &Node {
        match axis {
            SliverType::Primary => &self.primary_hash,
            SliverType::Secondary => &self.secondary_hash,
        }
    }
}

/// Version 1 of the metadata body.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlobMetadataV1 {
    pub encoding_type: EncodingType,
    pub unencoded_length: u64,
    pub hashes: Vec<SliverPairMetadata>,
}

/// Blob metadata, versioned (BCS: variant 0 = V1).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum BlobMetadata {
    V1(BlobMetadataV1),
}

/// Metadata together with the blob ID it claims to belong to.
///
/// BCS: 32-byte ID, `0x00` (V1), encoding byte, u64 LE length, ULEB128 count, then per pair
/// (tag + 32 B, tag + 32 B).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlobMetadataWithId {
    pub blob_id: BlobId,
    pub metadata: BlobMetadata,
}

/// Why metadata was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata has {got} sliver-pair hashes, expected {expected} (one per shard)")]
    WrongHashCount { got: usize, expected: usize },
    #[error(
        "metadata claims {length} bytes, above the maximum blob size {max} for this shard count"
    )]
    TooLarge { length: u64, max: u64 },
    #[error("metadata hashes derive blob ID {computed}, not the claimed {claimed}")]
    BlobIdMismatch { claimed: BlobId, computed: BlobId },
}

impl BlobMetadata {
    pub fn v1(&self) -> &BlobMetadataV1 {
        match self {
            BlobMetadata::V1(v) => v,
        }
    }
    pub fn encoding_type(&self) -> EncodingType {
        self.v1().encoding_type
    }
    pub fn unencoded_length(&self) -> u64 {
        self.v1().unencoded_length
    }
    pub fn hashes(&self) -> &[SliverPairMetadata] {
        &self.v1().hashes
    }

    /// The hash of sliver pair `pair` on `axis`, if the index is in range.
    pub fn sliver_hash(&self, pair: SliverPairIndex, axis: SliverType) -> Option<&Node> {
        self.hashes().get(pair.as_usize()).map(|h| h.hash(axis))
    }

    /// Merkle root over the pairs' 64-byte (primary ‖ secondary) leaves.
    pub fn root_hash(&self) -> Digest {
        let leaves: Vec<[u8; 64]> = self
            .hashes()
            .iter()
            .map(|h| {
                let mut leaf = [0u8; 64];
                leaf[..32].copy_from_slice(h.primary_hash.bytes());
                leaf[32..].copy_from_slice(h.secondary_hash.bytes());
                leaf
            })
            .collect();
        let mut scratch = Scratch::default();
        let mut hashed = vec![[0u8; 32]; leaves.len()];
        leaf_hashes(
            leaves.iter().map(|l| &l[..]),
            64,
            None,
            &mut hashed,
            &mut scratch,
        );
        root_from_leaf_hashes(&hashed, &[], &mut scratch)
    }

    /// The blob ID these hashes commit to.
    pub fn compute_blob_id(&self) -> BlobId {
        derive_blob_id(
            self.encoding_type(),
            self.unencoded_length(),
            &self.root_hash(),
        )
    }

    /// Checks this metadata against `config` and the claimed `blob_id`.
    pub fn verify(&self, config: &EncodingConfig, blob_id: &BlobId) -> Result<(), MetadataError> {
        if self.hashes().len() != config.n() {
            return Err(MetadataError::WrongHashCount {
                got: self.hashes().len(),
                expected: config.n(),
            });
        }
        if self.unencoded_length() > config.max_blob_size() {
            return Err(MetadataError::TooLarge {
                length: self.unencoded_length(),
                max: config.max_blob_size(),
            });
        }
        let computed = self.compute_blob_id();
        if &computed != blob_id {
            return Err(MetadataError::BlobIdMismatch {
                claimed: *blob_id,
                computed,
            });
        }
        Ok(())
    }

    /// The symbol size implied by the length and shard count.
    pub fn symbol_size(&self, config: &EncodingConfig) -> Result<u16, ConfigError> {
        config.symbol_size(self.unencoded_length())
    }
}

impl BlobMetadataWithId {
    /// Builds metadata from per-pair hashes and derives its ID.
    pub fn new(unencoded_length: u64, hashes: Vec<SliverPairMetadata>) -> Self {
        let metadata = BlobMetadata::V1(BlobMetadataV1 {
            encoding_type: EncodingType::RS2,
            unencoded_length,
            hashes,
        });
        let blob_id = metadata.compute_blob_id();
        Self { blob_id, metadata }
    }

    pub fn verify(&self, config: &EncodingConfig) -> Result<(), MetadataError> {
        self.metadata.verify(config, &self.blob_id)
    }

    pub fn to_bcs(&self) -> Vec<u8> {
        bcs::to_bytes(self).expect("metadata serialises")
    }
}

/// Blob ID = Blake2b-256(encoding byte ‖ length u64 LE ‖ root).
pub fn derive_blob_id(encoding: EncodingType, unencoded_length: u64, root: &Digest) -> BlobId {
    BlobId(crate::merkle::blake2b256(&[
        &[encoding.to_byte()],
        &unencoded_length.to_le_bytes(),
        root,
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> BlobMetadataWithId {
        let hashes = (0..n)
            .map(|i| SliverPairMetadata {
                primary_hash: Node::Digest([i as u8; 32]),
                secondary_hash: Node::Digest([(i + 100) as u8; 32]),
            })
            .collect();
        BlobMetadataWithId::new(17, hashes)
    }

    #[test]
    fn bcs_layout() {
        let m = sample(4);
        let bytes = m.to_bcs();
        assert_eq!(&bytes[..32], m.blob_id.as_bytes());
        assert_eq!(bytes[32], 0, "V1 tag");
        assert_eq!(bytes[33], 1, "RS2");
        assert_eq!(&bytes[34..42], &17u64.to_le_bytes());
        assert_eq!(bytes[42], 4, "ULEB128 count");
        assert_eq!(bytes[43], 1, "Digest tag");
        assert_eq!(bytes.len(), 43 + 4 * 66);
        let back: BlobMetadataWithId = bcs::from_bytes(&bytes).unwrap();
        assert_eq!(back, m);
        // Encoding type 0 (RaptorQ) is rejected at deserialisation.
        let mut raptor = bytes.clone();
        raptor[33] = 0;
        assert!(bcs::from_bytes::<BlobMetadataWithId>(&raptor).is_err());
    }

    #[test]
    fn verification_rules() {
        let config = EncodingConfig::new(4).unwrap();
        let m = sample(4);
        m.verify(&config).unwrap();
        let mut wrong_id = m.clone();
        wrong_id.blob_id.0[0] ^= 1;
        assert!(matches!(
            wrong_id.verify(&config),
            Err(MetadataError::BlobIdMismatch { .. })
        ));
        assert!(matches!(
            sample(5).verify(&config),
            Err(MetadataError::WrongHashCount {
                got: 5,
                expected: 4
            })
        ));
        let BlobMetadata::V1(mut v1) = m.metadata.clone();
        v1.unencoded_length = config.max_blob_size() + 1;
        let big = BlobMetadata::V1(v1);
        let id = big.compute_blob_id();
        assert!(matches!(
            big.verify(&config, &id),
            Err(MetadataError::TooLarge { .. })
        ));
    }
}
