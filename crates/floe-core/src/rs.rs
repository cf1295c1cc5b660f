//! Thin wrapper over `reed-solomon-simd` 3.1.0 with one reusable encoder and decoder per thread.
//!
//! Each call codes one line of the matrix (a row or a column) with `shard_bytes = symbol_size`,
//! exactly as Walrus does: the crate's internal 64-byte block layout makes the bytes of a
//! multi-symbol shard differ, so symbols are never batched into one shard.

use std::cell::RefCell;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::merkle::{HashMemo, Scratch};

/// Errors from the Reed–Solomon layer (never expected for valid parameters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsError {
    #[error("reed-solomon: {0}")]
    Codec(String),
    #[error("not enough distinct symbols to decode: have {have}, need {need}")]
    NotEnoughSymbols { have: usize, need: usize },
}

impl From<reed_solomon_simd::Error> for RsError {
    fn from(e: reed_solomon_simd::Error) -> Self {
        RsError::Codec(e.to_string())
    }
}

/// Per-thread coding state: coders, hashing scratch and byte buffers.
#[derive(Default)]
pub(crate) struct Worker {
    pub(crate) coder: Coder,
    pub(crate) scratch: Scratch,
    pub(crate) buf: Vec<u8>,
    pub(crate) buf2: Vec<u8>,
    /// The last hash memo used on this thread (see [`memo_for`]).
    pub(crate) memo: Option<HashMemo>,
}

/// The hash memo in `slot` for `symbol_len`, tall enough for `n_leaves` leaves, rebuilt (a
/// few hashes) only when the symbol length or height changes.
pub(crate) fn memo_for(
    slot: &mut Option<HashMemo>,
    symbol_len: usize,
    n_leaves: usize,
) -> &HashMemo {
    let height = crate::merkle::tree_height(n_leaves);
    match slot {
        Some(z) if z.symbol_len() == symbol_len && z.max_height() >= height => {}
        _ => *slot = Some(HashMemo::new(symbol_len, height)),
    }
    slot.as_ref().expect("just filled")
}

/// A reusable encoder and decoder, reset only when the line parameters change.
#[derive(Default)]
pub(crate) struct Coder {
    enc: Option<(ReedSolomonEncoder, (usize, usize, usize))>,
    dec: Option<(ReedSolomonDecoder, (usize, usize, usize))>,
}

thread_local! {
    static WORKER: RefCell<Worker> = RefCell::new(Worker::default());
}

/// Run `f` with this thread's worker.
pub(crate) fn with_worker<R>(f: impl FnOnce(&mut Worker) -> R) -> R {
    WORKER.with(|w| f(&mut w.borrow_mut()))
}

/// How many lines of `symbol_size`-byte symbols [`Coder::encode_lines`] codes in one call.
///
/// `reed-solomon-simd` pads a shard shorter than 64 bytes to one 64-byte chunk of 32 GF(2^16)
/// elements: the shard's first half gives the low bytes of elements 0, 1, …, its second half
/// the high bytes (and a recovery shard is read back the same way). Every element position is
/// coded on its own, with the same operations, so the symbols of several lines can share one
/// 64-byte shard, each line in its own elements, and come out exactly as if coded apart. A
/// symbol of up to 32 bytes fills symbol_size / 2 elements, so 64 / symbol_size lines fit; a
/// longer one gains nothing (1).
pub(crate) fn lines_per_shard(symbol_size: usize) -> usize {
    if (2..=32).contains(&symbol_size) && symbol_size.is_multiple_of(2) {
        64 / symbol_size
    } else {
        1
    }
}

/// The bytes of one 64-byte chunk (`CHUNK`), split into low and high halves.
const CHUNK: usize = 64;

impl Coder {
    /// The encoder for (k, n − k, shard size), reset only when those change.
    fn encoder(
        &mut self,
        k: usize,
        n: usize,
        shard_bytes: usize,
    ) -> Result<&mut ReedSolomonEncoder, RsError> {
        let key = (k, n - k, shard_bytes);
        match &mut self.enc {
            Some((_, params)) if *params == key => {}
            Some((enc, params)) => {
                enc.reset(k, n - k, shard_bytes)?;
                *params = key;
            }
            None => self.enc = Some((ReedSolomonEncoder::new(k, n - k, shard_bytes)?, key)),
        }
        Ok(&mut self.enc.as_mut().expect("set above").0)
    }

    /// Encode `lines` independent lines of `k` source symbols each (symbol `i` of line `l` is
    /// `source(l, i)`) into their `n − k` repair symbols (`sink(l, i, sym)` for repair symbol
    /// `i` of line `l`), packing [`lines_per_shard`] lines into each call to the coder. The
    /// result is the same as [`Coder::encode`] on each line.
    pub(crate) fn encode_lines<'a>(
        &mut self,
        k: usize,
        n: usize,
        symbol_size: usize,
        lines: usize,
        source: impl Fn(usize, usize) -> &'a [u8],
        mut sink: impl FnMut(usize, usize, &[u8]),
    ) -> Result<(), RsError> {
        let per = lines_per_shard(symbol_size);
        if per == 1 {
            for l in 0..lines {
                self.encode(k, n, symbol_size, (0..k).map(|i| source(l, i)), |i, d| {
                    sink(l, i, d)
                })?;
            }
            return Ok(());
        }
        let half = symbol_size / 2;
        let lo_hi = CHUNK / 2;
        let mut shard = [0u8; CHUNK];
        let mut symbol = [0u8; CHUNK / 2];
        for first in (0..lines).step_by(per) {
            let group = per.min(lines - first);
            let enc = self.encoder(k, n, CHUNK)?;
            for i in 0..k {
                for j in 0..group {
                    let s = source(first + j, i);
                    shard[j * half..][..half].copy_from_slice(&s[..half]);
                    shard[lo_hi + j * half..][..half].copy_from_slice(&s[half..symbol_size]);
                }
                enc.add_original_shard(shard)?;
            }
            let result = enc.encode()?;
            for (i, rec) in result.recovery_iter().enumerate() {
                for j in 0..group {
                    symbol[..half].copy_from_slice(&rec[j * half..][..half]);
                    symbol[half..symbol_size].copy_from_slice(&rec[lo_hi + j * half..][..half]);
                    sink(first + j, i, &symbol[..symbol_size]);
                }
            }
        }
        Ok(())
    }

    /// Encode `k` source symbols (from `sources`) into `n − k` repair symbols; `sink(i, sym)` is
    /// called for repair symbol `i` (= expanded position `k + i`).
    pub(crate) fn encode<'a>(
        &mut self,
        k: usize,
        n: usize,
        symbol_size: usize,
        sources: impl Iterator<Item = &'a [u8]>,
        mut sink: impl FnMut(usize, &[u8]),
    ) -> Result<(), RsError> {
        let enc = self.encoder(k, n, symbol_size)?;
        for s in sources {
            enc.add_original_shard(s)?;
        }
        let result = enc.encode()?;
        for (i, sym) in result.recovery_iter().enumerate() {
            sink(i, sym);
        }
        Ok(())
    }

    /// Restore the `k` source symbols of a line from any `k` of its `n` expanded symbols.
    /// `symbols` yields (expanded position, data); positions must be distinct and < n. `sink(i,
    /// data)` receives every source symbol `i in 0..k`, given or restored.
    pub(crate) fn decode<'a>(
        &mut self,
        k: usize,
        n: usize,
        symbol_size: usize,
        symbols: impl Iterator<Item = (usize, &'a [u8])>,
        mut sink: impl FnMut(usize, &[u8]),
    ) -> Result<(), RsError> {
        let mut have = 0usize;
        let mut originals: Vec<Option<&[u8]>> = vec![None; k];
        let mut recovery: Vec<(usize, &[u8])> = Vec::new();
        for (pos, data) in symbols {
            if have == k {
                break;
            }
            if pos < k {
                if originals[pos].is_none() {
                    originals[pos] = Some(data);
                    have += 1;
                }
            } else if pos < n && !recovery.iter().any(|(p, _)| *p == pos - k) {
                recovery.push((pos - k, data));
                have += 1;
            }
        }
        if have < k {
            return Err(RsError::NotEnoughSymbols { have, need: k });
        }
        if recovery.is_empty() {
            for (i, s) in originals.iter().enumerate() {
                sink(i, s.expect("all originals present"));
            }
            return Ok(());
        }
        let key = (k, n - k, symbol_size);
        let dec = match &mut self.dec {
            Some((dec, params)) if *params == key => dec,
            Some((dec, params)) => {
                dec.reset(k, n - k, symbol_size)?;
                *params = key;
                dec
            }
            slot @ None => {
                let dec = ReedSolomonDecoder::new(k, n - k, symbol_size)?;
                &mut slot.insert((dec, key)).0
            }
        };
        for (i, s) in originals.iter().enumerate() {
            if let Some(s) = s {
                dec.add_original_shard(i, s)?;
            }
        }
        for (i, s) in &recovery {
            dec.add_recovery_shard(*i, s)?;
        }
        let result = dec.decode()?;
        for (i, s) in originals.iter().enumerate() {
            match s {
                Some(s) => sink(i, s),
                None => sink(
                    i,
                    result
                        .restored_original(i)
                        .ok_or_else(|| RsError::Codec(format!("original {i} not restored")))?,
                ),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packed lines come out exactly as lines coded one by one, for every symbol size that
    /// packs and some that do not, partial last groups, and both of the crate's rate paths.
    #[test]
    fn packed_lines_match_lines_coded_apart() {
        let mut x: u32 = 12345;
        let mut byte = move || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        };
        let mut coder = Coder::default();
        for (k, n) in [
            (2usize, 4usize),
            (3, 7),
            (4, 10),
            (34, 100),
            (67, 100),
            (334, 1000),
        ] {
            for sym in [2usize, 4, 6, 8, 10, 14, 16, 22, 30, 32, 34, 62, 64, 66, 130] {
                let per = lines_per_shard(sym);
                for lines in [1, per.saturating_sub(1).max(1), per, per + 1, 3 * per + 2] {
                    let data: Vec<u8> = (0..lines * k * sym).map(|_| byte()).collect();
                    let source = |l: usize, i: usize| &data[(l * k + i) * sym..][..sym];
                    let mut packed = vec![0u8; lines * (n - k) * sym];
                    coder
                        .encode_lines(k, n, sym, lines, source, |l, i, d| {
                            packed[(l * (n - k) + i) * sym..][..sym].copy_from_slice(d)
                        })
                        .unwrap();
                    let mut apart = Vec::with_capacity(packed.len());
                    for l in 0..lines {
                        coder
                            .encode(k, n, sym, (0..k).map(|i| source(l, i)), |_, d| {
                                apart.extend_from_slice(d)
                            })
                            .unwrap();
                    }
                    assert_eq!(packed, apart, "k={k} n={n} sym={sym} lines={lines}");
                }
            }
        }
    }
}
