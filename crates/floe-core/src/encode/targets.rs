//! Where the encoder's phases put what they code, and where phase 2 finds phase 1's output:
//! memory, or a [`SpillStore`] (see `crate::spill`). The phases themselves do not tell the two
//! apart; the reads and writes that differ are here.

use rayon::prelude::*;

use super::{EncodeError, Geometry};

/// Where an encoder puts the slivers it does not keep in memory (see
/// [`crate::spill::encode_spilled`]). Offsets are the encoder's; the store only keeps bytes.
pub trait SpillStore: Send + Sync {
    /// Write `bytes` at `offset`.
    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<(), String>;
    /// Fill `buf` with the bytes written at `offset..offset + buf.len()`.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String>;
}

/// Groups of source rows (`lines_per_shard` rows each) coded per parallel batch in phase 1.
const ROW_BATCH: usize = 16;
/// Repair symbols of the rows phase 1 codes at once when its columns go to a spill store.
const SPILL_ROW_BATCH_BYTES: usize = 4 << 20;
/// Columns whose repair symbols are staged together before being written to the rows.
const WRITE_CHUNK: usize = 4;
/// Bytes of one row written to a spill store at once (a run of columns of one block).
const SPILL_WRITE_BYTES: usize = 8 << 10;

/// The secondary repair columns `s..n` (p symbols each, back to back): written by phase 1
/// (`M = &mut [u8]`), read by phase 2 (`M = &[u8]`, see [`Self::reading`]).
pub(crate) enum RepairColumns<'a, M> {
    Memory(M),
    /// In a spill store, from this offset on.
    Spill(&'a dyn SpillStore, u64),
}

impl<M> RepairColumns<'_, M> {
    /// Rows phase 1 codes at once, for rows of `repair_bytes` repair symbols coded `per` to a
    /// call. For a spill store: enough for long writes, while the batch's repair symbols stay a
    /// few MiB.
    pub(crate) fn row_batch(&self, repair_bytes: usize, per: usize) -> usize {
        match self {
            RepairColumns::Memory(_) => ROW_BATCH * per,
            RepairColumns::Spill(..) => (SPILL_ROW_BATCH_BYTES / repair_bytes.max(1))
                .max(1)
                .next_multiple_of(per),
        }
    }
}

impl RepairColumns<'_, &mut [u8]> {
    /// The same columns, for phase 2 to read.
    pub(crate) fn reading(&self) -> RepairColumns<'_, &[u8]> {
        match self {
            RepairColumns::Memory(m) => RepairColumns::Memory(&**m),
            RepairColumns::Spill(store, at) => RepairColumns::Spill(*store, *at),
        }
    }

    /// Write rows `start..end` of every column, column j's symbols made by `part(j, out)`.
    pub(crate) fn write_rows(
        &mut self,
        g: &Geometry,
        (start, end): (usize, usize),
        part: impl Fn(usize, &mut [u8]) + Sync,
    ) -> Result<(), EncodeError> {
        let (p, sym) = (g.p, g.sym);
        match self {
            RepairColumns::Memory(cols) => {
                cols.par_chunks_mut(p * sym)
                    .enumerate()
                    .for_each(|(j, col)| part(j, &mut col[start * sym..end * sym]));
                Ok(())
            }
            RepairColumns::Spill(store, at) => {
                let (store, at) = (*store, *at);
                (0..g.n - g.s).into_par_iter().try_for_each(|j| {
                    let mut out = vec![0u8; (end - start) * sym];
                    part(j, &mut out);
                    let offset = at + ((j * p + start) * sym) as u64;
                    store.write_at(offset, &out).map_err(EncodeError::Spill)
                })
            }
        }
    }
}

impl RepairColumns<'_, &[u8]> {
    /// The repair columns a column block `c0..c1` reads, and the column they start at: all of
    /// them in memory (from column s), or the block's own read from the store into `buf`.
    pub(crate) fn for_block<'b>(
        &'b self,
        g: &Geometry,
        (c0, c1): (usize, usize),
        buf: &'b mut Vec<u8>,
    ) -> Result<(&'b [u8], usize), EncodeError> {
        match self {
            RepairColumns::Memory(cols) => Ok((cols, g.s)),
            RepairColumns::Spill(store, at) => {
                let from = c0.max(g.s);
                buf.resize(c1.saturating_sub(from) * g.p * g.sym, 0);
                if !buf.is_empty() {
                    let offset = at + ((from - g.s) * g.p * g.sym) as u64;
                    store
                        .read_exact_at(offset, buf)
                        .map_err(EncodeError::Spill)?;
                }
                Ok((&buf[..], from))
            }
        }
    }
}

impl Clone for RepairColumns<'_, &[u8]> {
    fn clone(&self) -> Self {
        *self
    }
}
impl Copy for RepairColumns<'_, &[u8]> {}

/// Where phase 2 puts the primary repair rows `p..n`.
pub(crate) enum RepairTarget<'a> {
    /// Nowhere: metadata only.
    None,
    /// Into these rows, back to back.
    Memory(&'a mut [u8]),
    /// Into a spill store, row `p + i` at offset `i · s · symbol_size`.
    Spill(&'a dyn SpillStore),
}

/// The repair rows p..n of the primary slivers, one lock per row, so that column blocks coded in
/// parallel write their (disjoint) columns straight into the slivers.
type RepairRows<'a> = [std::sync::Mutex<&'a mut [u8]>];

/// [`RepairTarget`] as the column blocks see it.
pub(crate) enum RepairOut<'a> {
    None,
    Memory(&'a RepairRows<'a>),
    Spill(&'a dyn SpillStore),
}

impl RepairOut<'_> {
    /// Source columns whose repair symbols a block stages before writing them to the rows.
    pub(crate) fn write_chunk(&self, sym: usize) -> usize {
        match self {
            RepairOut::Spill(_) => {
                (SPILL_WRITE_BYTES / sym).clamp(WRITE_CHUNK, super::COLUMN_BLOCK)
            }
            _ => WRITE_CHUNK,
        }
    }

    /// Write a staged run of columns from `first` on: `rows` yields each repair row's part.
    pub(crate) fn write_run<'r>(
        &self,
        g: &Geometry,
        first: usize,
        rows: impl Iterator<Item = &'r [u8]>,
    ) -> Result<(), EncodeError> {
        match self {
            RepairOut::None => {}
            RepairOut::Memory(locked) => {
                for (row, part) in locked.iter().zip(rows) {
                    let mut row = row.lock().unwrap_or_else(|e| e.into_inner());
                    row[first * g.sym..][..part.len()].copy_from_slice(part);
                }
            }
            RepairOut::Spill(store) => {
                for (i, part) in rows.enumerate() {
                    let offset = (i * g.s + first) * g.sym;
                    store
                        .write_at(offset as u64, part)
                        .map_err(EncodeError::Spill)?;
                }
            }
        }
        Ok(())
    }
}
