//! Encoding with bounded memory: the slivers that are not the blob's own bytes go to a spill
//! store (a temporary file, for the client) instead of memory.
//!
//! A full encode holds 4.5× the blob (all n² symbols: n primary slivers of s symbols, n
//! secondary slivers of p). Of those, only the blob itself (the p source rows) has to stay in
//! memory: the source primary slivers are its rows, the source secondary slivers are its
//! columns, gathered when asked for. The rest, primary repair rows `p..n` (2× the blob) and
//! secondary repair columns `s..n` (0.5×), is written to the store as it is coded and read back
//! per sliver. The repair columns go to the store as phase 1 codes them (a few MiB of rows at a
//! time), and each column block of phase 2 reads back those it codes. Peak memory: the blob and
//! the coding threads' buffers. Same slivers and metadata as [`crate::encode::encode`], byte
//! for byte.
//!
//! Store layout: primary repair row `p + i` at `i · s · sym`, then secondary repair column
//! `s + j` at `(n − p) · s · sym + j · p · sym`.

use crate::config::EncodingConfig;
use crate::encode::{
    EncodeError, Geometry, RepairColumns, RepairTarget, Rows, SpillStore, phase_columns, phase_rows,
};
use crate::ids::{BlobId, SliverIndex, SliverType};
use crate::metadata::BlobMetadataWithId;

/// An encoded blob whose repair slivers live in a [`SpillStore`].
pub struct SpilledBlob {
    config: EncodingConfig,
    symbol_size: u16,
    g: Geometry,
    /// The padded p × s source matrix (the blob), row-major.
    source: Vec<u8>,
    store: Box<dyn SpillStore>,
    metadata: BlobMetadataWithId,
}

impl SpilledBlob {
    pub fn config(&self) -> &EncodingConfig {
        &self.config
    }
    pub fn symbol_size(&self) -> u16 {
        self.symbol_size
    }
    pub fn blob_id(&self) -> BlobId {
        self.metadata.blob_id
    }
    pub fn metadata(&self) -> &BlobMetadataWithId {
        &self.metadata
    }

    /// Bytes of the blob in memory (the padded source matrix): what this encoding keeps.
    pub fn resident_bytes(&self) -> usize {
        self.source.len()
    }

    /// Sliver `index` on `axis`, when it is a run of the blob's own bytes in memory (the source
    /// primary slivers, rows `0..p`); `None` for the others, which [`Self::read_sliver`] makes.
    pub fn sliver_in_memory(&self, axis: SliverType, index: SliverIndex) -> Option<&[u8]> {
        let (g, i) = (&self.g, index.as_usize());
        (axis == SliverType::Primary && i < g.p)
            .then(|| &self.source[i * g.s * g.sym..][..g.s * g.sym])
    }

    /// Sliver `index` on `axis` into `out` (replacing its contents): copied from the blob,
    /// gathered from its columns, or read from the store.
    pub fn read_sliver(
        &self,
        axis: SliverType,
        index: SliverIndex,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        out.clear();
        out.resize(self.config.sliver_len(axis, self.symbol_size), 0);
        self.read_sliver_into(axis, index, out)
    }

    /// Sliver `index` on `axis` into `out`, which must be exactly a sliver of `axis` long.
    pub fn read_sliver_into(
        &self,
        axis: SliverType,
        index: SliverIndex,
        out: &mut [u8],
    ) -> Result<(), EncodeError> {
        let Geometry { n, p, s, sym } = self.g;
        let i = index.as_usize();
        if i >= n {
            return Err(EncodeError::Spill(format!(
                "sliver {i} does not exist: the blob has {n}"
            )));
        }
        let len = self.config.sliver_len(axis, self.symbol_size);
        if out.len() != len {
            return Err(EncodeError::Spill(format!(
                "a {axis:?} sliver is {len} bytes, not {}",
                out.len()
            )));
        }
        let read = |offset: usize, out: &mut [u8]| {
            self.store
                .read_exact_at(offset as u64, out)
                .map_err(EncodeError::Spill)
        };
        match axis {
            SliverType::Primary if i < p => out.copy_from_slice(&self.source[i * s * sym..][..len]),
            SliverType::Primary => read((i - p) * s * sym, out)?,
            SliverType::Secondary if i < s => {
                for (r, symbol) in out.chunks_exact_mut(sym).enumerate() {
                    symbol.copy_from_slice(&self.source[(r * s + i) * sym..][..sym]);
                }
            }
            SliverType::Secondary => read(repair_columns_at(&self.g) + (i - s) * p * sym, out)?,
        }
        Ok(())
    }
}

/// Where the secondary repair columns start in the store (after the primary repair rows).
fn repair_columns_at(g: &Geometry) -> usize {
    (g.n - g.p) * g.s * g.sym
}

/// Bytes [`encode_spilled`] writes to its store for a blob of `len` bytes.
pub fn spilled_bytes(config: &EncodingConfig, len: u64) -> Result<u64, EncodeError> {
    let g = Geometry::new(config, config.symbol_size(len)?);
    Ok((((g.n - g.p) * g.s + (g.n - g.s) * g.p) * g.sym) as u64)
}

/// Encode the blob in `buffer`'s first `len` bytes, keeping only the blob in memory and writing
/// the repair slivers to `store` (see the module's documentation).
pub fn encode_spilled(
    config: &EncodingConfig,
    mut buffer: Vec<u8>,
    len: u64,
    store: Box<dyn SpillStore>,
) -> Result<SpilledBlob, EncodeError> {
    let symbol_size = config.symbol_size(len)?;
    let g = Geometry::new(config, symbol_size);
    buffer.truncate(len as usize);
    // Exactly, as in `encode_buffer`.
    buffer.reserve_exact((g.p * g.s * g.sym).saturating_sub(buffer.len()));
    buffer.resize(g.p * g.s * g.sym, 0);
    // The repair columns go to the store as phase 1 codes them, and each column block of phase
    // 2 reads back its own.
    let mut columns = RepairColumns::Spill(&*store, repair_columns_at(&g) as u64);
    let rows = Rows::Memory(&buffer);
    phase_rows(&g, &rows, &mut columns)?;
    let hashes = phase_columns(
        &g,
        &rows,
        &[],
        columns.reading(),
        RepairTarget::Spill(&*store),
    )?;
    Ok(SpilledBlob {
        config: *config,
        symbol_size,
        g,
        source: buffer,
        store,
        metadata: BlobMetadataWithId::new(len, hashes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A spill store in memory, shared with the test so that it can see what was written.
    #[derive(Clone, Default)]
    struct MemStore(Arc<Mutex<Vec<u8>>>);

    impl SpillStore for MemStore {
        fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<(), String> {
            let mut v = self.0.lock().map_err(|e| e.to_string())?;
            let end = offset as usize + bytes.len();
            if v.len() < end {
                v.resize(end, 0);
            }
            v[offset as usize..end].copy_from_slice(bytes);
            Ok(())
        }
        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
            let v = self.0.lock().map_err(|e| e.to_string())?;
            let src = v
                .get(offset as usize..offset as usize + buf.len())
                .ok_or("read past the end")?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    /// A store whose writes fail.
    struct FullDisk;

    impl SpillStore for FullDisk {
        fn write_at(&self, _: u64, _: &[u8]) -> Result<(), String> {
            Err("No space left on device".into())
        }
        fn read_exact_at(&self, _: u64, _: &mut [u8]) -> Result<(), String> {
            Err("nothing written".into())
        }
    }

    fn blob(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn spilled_slivers_and_metadata_equal_the_in_memory_encoding() {
        // Sizes that give 2-byte symbols (the memo's path), odd symbols, and several blocks.
        for (n, len, seed) in [
            (10u16, 3_000usize, 1u64),
            (31, 50_000, 2),
            (100, 700_001, 3),
        ] {
            let config = EncodingConfig::new(n).unwrap();
            let data = blob(len, seed);
            let full = crate::encode::encode(&config, &data).unwrap();
            let store = MemStore::default();
            let spilled =
                encode_spilled(&config, data.clone(), len as u64, Box::new(store.clone())).unwrap();
            assert_eq!(spilled.metadata(), full.metadata(), "n = {n}, len = {len}");
            let written = store.0.lock().unwrap().len() as u64;
            assert_eq!(written, spilled_bytes(&config, len as u64).unwrap());
            let mut out = Vec::new();
            for axis in [SliverType::Primary, SliverType::Secondary] {
                for i in 0..n {
                    let index = SliverIndex(i);
                    spilled.read_sliver(axis, index, &mut out).unwrap();
                    assert_eq!(out, full.sliver_bytes(axis, index), "{axis:?} {i}, n = {n}");
                    if let Some(b) = spilled.sliver_in_memory(axis, index) {
                        assert_eq!(b, full.sliver_bytes(axis, index));
                    }
                }
            }
            let p = usize::from(config.n_primary_source());
            let primary_in_memory = (0..n)
                .filter(|&i| {
                    spilled
                        .sliver_in_memory(SliverType::Primary, SliverIndex(i))
                        .is_some()
                })
                .count();
            assert_eq!(primary_in_memory, p);
            assert_eq!(
                spilled.resident_bytes(),
                p * full.config().primary_sliver_len(full.symbol_size())
            );
        }
    }

    #[test]
    fn a_failing_store_is_an_error_and_a_missing_sliver_too() {
        let config = EncodingConfig::new(10).unwrap();
        let e = encode_spilled(&config, blob(5_000, 9), 5_000, Box::new(FullDisk));
        let Err(e) = e else {
            panic!("a store that cannot be written must fail the encoding");
        };
        assert!(e.to_string().contains("No space left"), "{e}");
        let ok = encode_spilled(
            &config,
            blob(5_000, 9),
            5_000,
            Box::new(MemStore::default()),
        )
        .unwrap();
        let mut out = Vec::new();
        let e = ok
            .read_sliver(SliverType::Primary, SliverIndex(10), &mut out)
            .unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
