//! Encoding parameters derived from the number of shards.

use crate::ids::EncodingType;

/// The smallest supported number of shards (f = 1).
pub const MIN_N_SHARDS: u16 = 4;
/// The largest supported number of shards.
pub const MAX_N_SHARDS: u16 = 16_384;
/// The largest symbol size of RS2: `u16::MAX − 1` (symbols must have an even length).
pub const MAX_SYMBOL_SIZE: u16 = u16::MAX - 1;
/// Symbols of RS2 have an even number of bytes (GF(2^16) elements).
pub const SYMBOL_ALIGNMENT: u64 = 2;

/// Errors in encoding parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "unsupported number of shards {0}: n_shards must be between {MIN_N_SHARDS} and {MAX_N_SHARDS}"
    )]
    BadShardCount(u64),
    #[error("blob of {size} bytes is too large for {n_shards} shards: the maximum is {max} bytes")]
    DataTooLarge { size: u64, n_shards: u16, max: u64 },
}

/// The RedStuff parameters of a system with `n_shards` shards.
///
/// f = ⌊(n−1)/3⌋; the message matrix has p = n−2f rows ("primary source symbols") and
/// s = n−f columns ("secondary source symbols").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EncodingConfig {
    n_shards: u16,
}

impl EncodingConfig {
    pub fn new(n_shards: u16) -> Result<Self, ConfigError> {
        if !(MIN_N_SHARDS..=MAX_N_SHARDS).contains(&n_shards) {
            return Err(ConfigError::BadShardCount(u64::from(n_shards)));
        }
        Ok(Self { n_shards })
    }

    /// Like [`EncodingConfig::new`] for a wider integer (CLI input).
    pub fn from_u64(n_shards: u64) -> Result<Self, ConfigError> {
        let n = u16::try_from(n_shards).map_err(|_| ConfigError::BadShardCount(n_shards))?;
        Self::new(n)
    }

    pub fn encoding_type(&self) -> EncodingType {
        EncodingType::RS2
    }

    pub fn n_shards(&self) -> u16 {
        self.n_shards
    }

    pub fn n(&self) -> usize {
        usize::from(self.n_shards)
    }

    /// f: the number of faulty shards tolerated.
    pub fn max_faulty(&self) -> u16 {
        (self.n_shards - 1) / 3
    }

    /// n − f: the quorum weight (in shards) of a certificate.
    pub fn quorum(&self) -> u16 {
        self.n_shards - self.max_faulty()
    }

    /// f + 1: the weight that guarantees one correct shard.
    pub fn validity(&self) -> u16 {
        self.max_faulty() + 1
    }

    /// p = n − 2f: rows of the message matrix = symbols of a secondary sliver.
    pub fn n_primary_source(&self) -> u16 {
        self.n_shards - 2 * self.max_faulty()
    }

    /// s = n − f: columns of the message matrix = symbols of a primary sliver.
    pub fn n_secondary_source(&self) -> u16 {
        self.n_shards - self.max_faulty()
    }

    /// p · s: source symbols of a blob.
    pub fn n_source_symbols(&self) -> u64 {
        u64::from(self.n_primary_source()) * u64::from(self.n_secondary_source())
    }

    /// The number of source symbols on `axis`' code: s for a primary sliver (it is a row of the
    /// secondary code... of length s), p for a secondary sliver.
    pub fn n_source_for(&self, axis: crate::SliverType) -> u16 {
        match axis {
            crate::SliverType::Primary => self.n_secondary_source(),
            crate::SliverType::Secondary => self.n_primary_source(),
        }
    }

    /// Symbols needed to recover a sliver of `axis` from recovery symbols: the source count of
    /// the orthogonal code (n − f for primary, n − 2f for secondary).
    pub fn n_symbols_for_recovery(&self, axis: crate::SliverType) -> u16 {
        self.n_source_for(axis)
    }

    /// The largest blob: p · s · 65534 bytes.
    pub fn max_blob_size(&self) -> u64 {
        self.n_source_symbols() * u64::from(MAX_SYMBOL_SIZE)
    }

    /// The symbol size for a blob of `size` bytes: ⌈max(size,1) / (p·s)⌉ rounded up to even.
    pub fn symbol_size(&self, size: u64) -> Result<u16, ConfigError> {
        let per = size.max(1).div_ceil(self.n_source_symbols());
        let aligned = per.div_ceil(SYMBOL_ALIGNMENT) * SYMBOL_ALIGNMENT;
        u16::try_from(aligned)
            .ok()
            .filter(|s| *s <= MAX_SYMBOL_SIZE)
            .ok_or(ConfigError::DataTooLarge {
                size,
                n_shards: self.n_shards,
                max: self.max_blob_size(),
            })
    }

    /// Bytes of a primary sliver: s · symbol_size.
    pub fn primary_sliver_len(&self, symbol_size: u16) -> usize {
        usize::from(self.n_secondary_source()) * usize::from(symbol_size)
    }

    /// Bytes of a secondary sliver: p · symbol_size.
    pub fn secondary_sliver_len(&self, symbol_size: u16) -> usize {
        usize::from(self.n_primary_source()) * usize::from(symbol_size)
    }

    /// Bytes of a sliver of `axis`.
    pub fn sliver_len(&self, axis: crate::SliverType, symbol_size: u16) -> usize {
        match axis {
            crate::SliverType::Primary => self.primary_sliver_len(symbol_size),
            crate::SliverType::Secondary => self.secondary_sliver_len(symbol_size),
        }
    }

    /// The largest sliver any blob can have: s · 65534 bytes.
    pub fn max_sliver_len(&self) -> usize {
        self.primary_sliver_len(MAX_SYMBOL_SIZE)
    }

    /// Length of the serialised metadata hashes: n · 64 + 32 (two hashes per pair, plus the ID).
    pub fn metadata_len(&self) -> u64 {
        u64::from(self.n_shards) * 64 + 32
    }

    /// The encoded length used for storage accounting: n · ((p + s) · symbol_size + n·64 + 32).
    /// Every shard is charged for a sliver pair and a full copy of the metadata.
    pub fn encoded_length(&self, size: u64) -> Result<u64, ConfigError> {
        let sym = u64::from(self.symbol_size(size)?);
        let pair = u64::from(self.n_primary_source() + self.n_secondary_source()) * sym;
        Ok(u64::from(self.n_shards) * (pair + self.metadata_len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_symbol_table() {
        for (n, p, s) in [
            (4, 2, 3),
            (7, 3, 5),
            (9, 5, 7),
            (10, 4, 7),
            (31, 11, 21),
            (51, 19, 35),
            (100, 34, 67),
            (101, 35, 68),
            (301, 101, 201),
            (1000, 334, 667),
        ] {
            let c = EncodingConfig::new(n).unwrap();
            assert_eq!(
                (c.n_primary_source(), c.n_secondary_source()),
                (p, s),
                "n = {n}"
            );
        }
    }

    #[test]
    fn max_blob_sizes() {
        for (n, max) in [
            (4, 393_204u64),
            (7, 983_010),
            (10, 1_834_952),
            (100, 149_286_452),
            (1000, 14_599_533_452),
        ] {
            assert_eq!(
                EncodingConfig::new(n).unwrap().max_blob_size(),
                max,
                "n = {n}"
            );
        }
    }

    #[test]
    fn encoded_lengths() {
        let c10 = EncodingConfig::new(10).unwrap();
        let c1000 = EncodingConfig::new(1000).unwrap();
        assert_eq!(
            c10.encoded_length(1).unwrap(),
            10 * (2 * (4 + 7) + 10 * 64 + 32)
        );
        assert_eq!(
            c1000.encoded_length(1).unwrap(),
            1000 * (2 * (334 + 667) + 1000 * 64 + 32)
        );
        assert_eq!(c10.encoded_length(28 * 100).unwrap(), 10 * (11 * 100 + 672));
        assert_eq!(
            c1000.encoded_length(334 * 667 * 100).unwrap(),
            1000 * (1001 * 100 + 64032)
        );
        assert_eq!(c1000.encoded_length(17).unwrap(), 66_034_000);
        assert_eq!(c1000.encoded_length(1 << 20).unwrap(), 70_038_000);
        assert_eq!(c1000.encoded_length(1 << 30).unwrap(), 4_888_852_000);
    }

    #[test]
    fn symbol_sizes_and_limits() {
        let c = EncodingConfig::new(10).unwrap();
        assert_eq!(c.symbol_size(0).unwrap(), 2);
        assert_eq!(c.symbol_size(1).unwrap(), 2);
        assert_eq!(c.symbol_size(56).unwrap(), 2);
        assert_eq!(c.symbol_size(57).unwrap(), 4);
        assert_eq!(c.symbol_size(c.max_blob_size()).unwrap(), MAX_SYMBOL_SIZE);
        assert!(matches!(
            c.symbol_size(c.max_blob_size() + 1),
            Err(ConfigError::DataTooLarge { max: 1_834_952, .. })
        ));
        assert_eq!(c.metadata_len(), 672);
        assert_eq!(EncodingConfig::new(1000).unwrap().metadata_len(), 64_032);
        assert_eq!(
            EncodingConfig::new(1000).unwrap().max_sliver_len(),
            43_711_178
        );
    }

    #[test]
    fn shard_count_bounds() {
        assert!(EncodingConfig::new(3).is_err());
        assert!(EncodingConfig::new(MAX_N_SHARDS + 1).is_err());
        assert!(EncodingConfig::from_u64(70_000).is_err());
        assert!(EncodingConfig::new(10_000).is_ok());
        let c = EncodingConfig::new(1000).unwrap();
        assert_eq!((c.max_faulty(), c.quorum(), c.validity()), (333, 667, 334));
    }

    #[test]
    fn reed_solomon_supports_every_allowed_n() {
        for n in MIN_N_SHARDS..=MAX_N_SHARDS {
            let c = EncodingConfig::new(n).unwrap();
            let (p, s) = (
                usize::from(c.n_primary_source()),
                usize::from(c.n_secondary_source()),
            );
            assert!(
                reed_solomon_simd::ReedSolomonEncoder::supports(p, c.n() - p),
                "n = {n}"
            );
            assert!(
                reed_solomon_simd::ReedSolomonEncoder::supports(s, c.n() - s),
                "n = {n}"
            );
        }
    }
}
