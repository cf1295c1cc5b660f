//! Thin wrapper over `reed-solomon-simd` 3.1.0 with one reusable encoder and decoder per thread.
//!
//! Each call codes one line of the matrix (a row or a column) with `shard_bytes = symbol_size`,
//! exactly as Walrus does: the crate's internal 64-byte block layout makes the bytes of a
//! multi-symbol shard differ, so symbols are never batched into one shard.

use std::cell::RefCell;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::merkle::{Scratch, ZeroTrees};

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
    /// The last zero-subtree table used on this thread (see [`zeros_for`]).
    pub(crate) zeros: Option<ZeroTrees>,
}

/// The zero-subtree table in `slot` for `symbol_len`, tall enough for `n_leaves` leaves,
/// rebuilt (a few hashes) only when the symbol length or height changes.
pub(crate) fn zeros_for(
    slot: &mut Option<ZeroTrees>,
    symbol_len: usize,
    n_leaves: usize,
) -> &ZeroTrees {
    let height = crate::merkle::tree_height(n_leaves);
    match slot {
        Some(z) if z.symbol_len() == symbol_len && z.max_height() >= height => {}
        _ => *slot = Some(ZeroTrees::new(symbol_len, height)),
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

impl Coder {
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
        let key = (k, n - k, symbol_size);
        let enc = match &mut self.enc {
            Some((enc, params)) if *params == key => enc,
            Some((enc, params)) => {
                enc.reset(k, n - k, symbol_size)?;
                *params = key;
                enc
            }
            slot @ None => {
                let enc = ReedSolomonEncoder::new(k, n - k, symbol_size)?;
                &mut slot.insert((enc, key)).0
            }
        };
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
