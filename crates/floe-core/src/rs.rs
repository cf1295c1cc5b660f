//! Thin wrapper over `reed-solomon-simd` 3.1.0 with one reusable encoder and decoder per thread.
//!
//! A line of the matrix (a row or a column) is coded as Walrus codes it, with
//! `shard_bytes = symbol_size`. Several lines may share one coder call only when their symbols
//! are packed so that each GF(2^16) element of each symbol stays whole ([`lines_per_shard`],
//! `Packing`): the crate's 64-byte chunk layout would otherwise pair bytes of different
//! symbols into one element and change the result.

use std::cell::RefCell;

use reed_solomon_simd::engine::DefaultEngine;
use reed_solomon_simd::rate::{DefaultRateDecoder, LowRateDecoder, RateDecoder};
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
    /// The decoders of [`Coder::decode_lines`], the crate's choice of rate and the low rate.
    batch: Option<(DefaultRateDecoder<DefaultEngine>, (usize, usize, usize))>,
    low: Option<(LowRateDecoder<DefaultEngine>, (usize, usize, usize))>,
}

/// The rate decoder in `slot` for (k, r, shard size), reset only when those change.
fn rate_decoder<D: RateDecoder<DefaultEngine>>(
    slot: &mut Option<(D, (usize, usize, usize))>,
    k: usize,
    r: usize,
    shard_bytes: usize,
) -> Result<&mut D, RsError> {
    let key = (k, r, shard_bytes);
    match slot {
        Some((_, params)) if *params == key => {}
        Some((dec, params)) => {
            dec.reset(k, r, shard_bytes)?;
            *params = key;
        }
        None => *slot = Some((D::new(k, r, shard_bytes, DefaultEngine::new(), None)?, key)),
    }
    Ok(&mut slot.as_mut().expect("set above").0)
}

thread_local! {
    static WORKER: RefCell<Worker> = RefCell::new(Worker::default());
}

/// Run `f` with this thread's worker.
pub(crate) fn with_worker<R>(f: impl FnOnce(&mut Worker) -> R) -> R {
    WORKER.with(|w| f(&mut w.borrow_mut()))
}

/// Drop this thread's coding state (coders and their work buffers, hashing scratch, the hash
/// memo); the next coding call on the thread builds it again. Each piece is sized by the
/// largest job the thread ran, so a thread that coded a 64 MiB blob keeps several MiB.
pub fn release_thread_buffers() {
    WORKER.with(|w| {
        if let Ok(mut w) = w.try_borrow_mut() {
            *w = Worker::default();
        }
    });
}

/// Whether this thread keeps coding state: a coder, a hash memo or buffers.
fn thread_keeps_coding_state() -> bool {
    WORKER.with(|w| {
        w.try_borrow().is_ok_and(|w| {
            let c = &w.coder;
            c.enc.is_some()
                || c.dec.is_some()
                || c.batch.is_some()
                || c.low.is_some()
                || w.memo.is_some()
                || w.buf.capacity() + w.buf2.capacity() + w.scratch.capacity_bytes() > 0
        })
    })
}

/// Whether any thread of the rayon pool keeps coding state (what [`release_pool_buffers`]
/// drops).
pub fn pool_keeps_coding_state() -> bool {
    rayon::broadcast(|_| thread_keeps_coding_state())
        .into_iter()
        .any(|kept| kept)
}

/// [`release_thread_buffers`] on every thread of the rayon pool (waiting for each to take
/// it): for a process gone idle, so that what its coding threads keep can be returned to the
/// system.
pub fn release_pool_buffers() {
    rayon::broadcast(|_| release_thread_buffers());
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

    /// The decoder for (k, n − k, shard size), reset only when those change.
    fn decoder(
        &mut self,
        k: usize,
        n: usize,
        shard_bytes: usize,
    ) -> Result<&mut ReedSolomonDecoder, RsError> {
        let key = (k, n - k, shard_bytes);
        match &mut self.dec {
            Some((_, params)) if *params == key => {}
            Some((dec, params)) => {
                dec.reset(k, n - k, shard_bytes)?;
                *params = key;
            }
            None => self.dec = Some((ReedSolomonDecoder::new(k, n - k, shard_bytes)?, key)),
        }
        Ok(&mut self.dec.as_mut().expect("set above").0)
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
        let dec = self.decoder(k, n, symbol_size)?;
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

    /// Restore the source symbols of `lines` lines that were all received at the same expanded
    /// `positions`: `source(l, j)` is line `l`'s symbol at `positions[j]`. The first `k`
    /// distinct positions below `n` are used. `sink(l, i, data)` receives every source symbol
    /// `i` of line `l` that is not among the positions used (the received ones are the
    /// caller's already), in no particular order.
    ///
    /// Everything that depends only on the erasure pattern (the decoder's set-up and its
    /// evaluation of the error locator, a transform over all 2^16 field elements) is done once
    /// per batch of lines instead of once per line: the lines' symbols at one position are
    /// packed into one wide shard ([`Packing`]), every field element intact.
    ///
    /// The result equals [`Coder::decode`] on each line: with exactly `k` symbols received,
    /// every GF(2^16) element has exactly one codeword through it, whatever the bytes, and
    /// every correct decoder finds it. That leaves a choice of decoder. When k rounded up to a
    /// power of two, K, is at most n − k rounded up, R, the crate's code is its low-rate form:
    /// source symbols at points 0..k, zero padding up to K, repair symbol i at K + i. (For
    /// K = R the crate picks the high rate, one chunk with repair symbol i at i and source
    /// symbol j at K + j: the same code with every point shifted by K, which the unit tests
    /// below confirm.) The repair symbols after the last one received are then only more
    /// erasures, so a low-rate decoder told of just r = (last received repair index + 1) of
    /// them decodes the same code with a transform of (K + r) rounded up to a power of two
    /// instead of (K + n − k): 1024 instead of 2048 points at n = 1000 when the repair rows
    /// received are among the first 512, as a read that tries rows in order gets them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decode_lines<'a>(
        &mut self,
        k: usize,
        n: usize,
        symbol_size: usize,
        positions: &[usize],
        lines: usize,
        source: impl Fn(usize, usize) -> &'a [u8],
        mut sink: impl FnMut(usize, usize, &[u8]),
    ) -> Result<(), RsError> {
        let erasures = Erasures::select(k, n, positions)?;
        let Some(last) = erasures
            .used
            .iter()
            .map(|&(_, pos)| pos)
            .filter(|&pos| pos >= k)
            .max()
        else {
            return Ok(()); // all k source symbols were received
        };
        let low_rate = k.next_power_of_two() <= (n - k).next_power_of_two();
        let mut scratch = (Vec::new(), vec![0u8; symbol_size]);
        for batch in line_batches(lines, symbol_size, 1) {
            let pack = Packing::new(symbol_size, batch.start, batch.len());
            let bytes = pack.shard_bytes();
            if low_rate {
                let dec = rate_decoder(&mut self.low, k, last + 1 - k, bytes)?;
                decode_batch(dec, k, &erasures, &pack, &mut scratch, &source, &mut sink)?;
            } else {
                let dec = rate_decoder(&mut self.batch, k, n - k, bytes)?;
                decode_batch(dec, k, &erasures, &pack, &mut scratch, &source, &mut sink)?;
            }
        }
        Ok(())
    }
}

/// One decoder call of [`Coder::decode_lines`] for the lines of `pack`; `scratch` holds the
/// packed shard and one unpacked symbol.
fn decode_batch<'a, D: RateDecoder<DefaultEngine>>(
    dec: &mut D,
    k: usize,
    erasures: &Erasures,
    pack: &Packing,
    (shard, symbol): &mut (Vec<u8>, Vec<u8>),
    source: &impl Fn(usize, usize) -> &'a [u8],
    sink: &mut impl FnMut(usize, usize, &[u8]),
) -> Result<(), RsError> {
    shard.clear();
    shard.resize(pack.shard_bytes(), 0);
    for &(j, pos) in &erasures.used {
        for l in 0..pack.lines {
            pack.pack(l, source(pack.first + l, j), shard);
        }
        if pos < k {
            dec.add_original_shard(pos, &shard)?;
        } else {
            dec.add_recovery_shard(pos - k, &shard)?;
        }
    }
    let result = dec.decode()?;
    for &i in &erasures.missing {
        let restored = result
            .restored_original(i)
            .ok_or_else(|| RsError::Codec(format!("original {i} not restored")))?;
        for l in 0..pack.lines {
            pack.unpack(l, restored, symbol);
            sink(pack.first + l, i, symbol);
        }
    }
    Ok(())
}

/// Which received positions a decode uses and which source symbols it restores.
struct Erasures {
    /// (index into the offered positions, expanded position): the first `k` distinct ones < n.
    used: Vec<(usize, usize)>,
    /// Source positions (< k) not among `used`, ascending.
    missing: Vec<usize>,
}

impl Erasures {
    fn select(k: usize, n: usize, positions: &[usize]) -> Result<Self, RsError> {
        let mut seen = vec![false; n];
        let mut used = Vec::with_capacity(k);
        for (j, &pos) in positions.iter().enumerate() {
            if used.len() == k {
                break;
            }
            if pos < n && !seen[pos] {
                seen[pos] = true;
                used.push((j, pos));
            }
        }
        if used.len() < k {
            return Err(RsError::NotEnoughSymbols {
                have: used.len(),
                need: k,
            });
        }
        let missing = (0..k).filter(|&i| !seen[i]).collect();
        Ok(Self { used, missing })
    }
}

/// The shard bytes a batched decode aims at: large enough that the per-decode work (about a
/// millisecond at n = 1000) is small beside the per-byte work, small enough that the decoder's
/// working space (≈ 2n shards) stays a few MiB per thread.
const DECODE_SHARD_BYTES: usize = 2048;

/// Split `lines` lines of `symbol_size`-byte symbols into contiguous batches of near-equal
/// size for [`Coder::decode_lines`]: each packs into a shard of about [`DECODE_SHARD_BYTES`],
/// and there are at least `min_batches` of them (for parallelism) while lines last.
pub(crate) fn line_batches(
    lines: usize,
    symbol_size: usize,
    min_batches: usize,
) -> impl Iterator<Item = std::ops::Range<usize>> {
    let by_bytes = (lines * symbol_size).div_ceil(DECODE_SHARD_BYTES);
    let count = by_bytes.max(min_batches).min(lines); // no lines, no batches
    (0..count).map(move |b| b * lines / count..(b + 1) * lines / count)
}

/// How the symbols of several lines share one shard while every GF(2^16) element of every
/// symbol stays whole. `reed-solomon-simd` reads a shard as 64-byte chunks of 32 elements, the
/// low bytes in the first half and the high bytes in the second; a shorter last chunk of `t`
/// bytes gives its first `t/2` bytes as low and its last `t/2` as high bytes. So a symbol's
/// whole chunks are copied as they are (line after line), and the tails are packed side by side
/// into shared chunks, `64 / t` to a chunk, each in its own elements (as [`lines_per_shard`]).
struct Packing {
    /// The first line packed, and how many.
    first: usize,
    lines: usize,
    symbol_size: usize,
    /// Bytes of a symbol in whole 64-byte chunks.
    whole: usize,
    /// Bytes of a symbol's last, shorter chunk (0 if none).
    tail: usize,
    /// Tails per shared chunk.
    per: usize,
}

impl Packing {
    fn new(symbol_size: usize, first: usize, lines: usize) -> Self {
        let tail = symbol_size % CHUNK;
        Self {
            first,
            lines,
            symbol_size,
            whole: symbol_size - tail,
            tail,
            per: CHUNK.checked_div(tail).unwrap_or(1),
        }
    }

    fn shard_bytes(&self) -> usize {
        let tails = if self.tail == 0 {
            0
        } else {
            self.lines.div_ceil(self.per)
        };
        self.lines * self.whole + tails * CHUNK
    }

    /// Where line `l`'s tail starts in the shard (its low bytes; the high ones 32 further).
    fn tail_at(&self, l: usize) -> usize {
        self.lines * self.whole + (l / self.per) * CHUNK + (l % self.per) * (self.tail / 2)
    }

    fn pack(&self, l: usize, symbol: &[u8], shard: &mut [u8]) {
        let (whole, half) = (self.whole, self.tail / 2);
        shard[l * whole..][..whole].copy_from_slice(&symbol[..whole]);
        if half > 0 {
            let at = self.tail_at(l);
            shard[at..][..half].copy_from_slice(&symbol[whole..][..half]);
            shard[at + CHUNK / 2..][..half]
                .copy_from_slice(&symbol[whole + half..self.symbol_size]);
        }
    }

    fn unpack(&self, l: usize, shard: &[u8], symbol: &mut [u8]) {
        let (whole, half) = (self.whole, self.tail / 2);
        symbol[..whole].copy_from_slice(&shard[l * whole..][..whole]);
        if half > 0 {
            let at = self.tail_at(l);
            symbol[whole..][..half].copy_from_slice(&shard[at..][..half]);
            symbol[whole + half..self.symbol_size]
                .copy_from_slice(&shard[at + CHUNK / 2..][..half]);
        }
    }
}

#[cfg(test)]
mod tests {

    /// A thread's coding state is dropped on request, on its own thread or on every thread of
    /// the pool, and coding afterwards gives the same results.
    #[test]
    fn coding_state_is_released_and_rebuilt() {
        use rayon::prelude::*;
        let config = crate::EncodingConfig::new(10).unwrap();
        let blob: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let holds = || with_worker(|w| w.memo.is_some() || w.coder.enc.is_some());
        let root = || {
            let sliver: Vec<u8> = (0..7 * 180).map(|i| (i % 251) as u8).collect();
            crate::sliver::expanded_root(&config, crate::SliverType::Primary, 180, &sliver).unwrap()
        };
        let before = root();
        assert!(holds(), "coding leaves state on the thread");
        release_thread_buffers();
        assert!(!holds(), "released on this thread");
        assert_eq!(root(), before, "coding again gives the same root");

        // A pool of its own: the other tests of this binary code on the global pool at the
        // same time, and would refill its threads' state between the release and the check.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            let encoded = crate::encode(&config, &blob).unwrap();
            let on_pool = || rayon::broadcast(|_| holds());
            (0..64).into_par_iter().for_each(|_| {
                root();
            });
            assert!(on_pool().into_iter().any(|h| h), "the pool's threads coded");
            assert!(pool_keeps_coding_state());
            release_pool_buffers();
            assert!(!pool_keeps_coding_state(), "nothing kept after the release");
            assert!(
                on_pool().into_iter().all(|h| !h),
                "every pool thread released"
            );
            assert_eq!(
                crate::encode(&config, &blob).unwrap().blob_id(),
                encoded.blob_id()
            );
        });
    }

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

    /// Batches cover the lines in order, none empty, at least `min_batches` while lines last,
    /// and none (much) over the target shard size.
    #[test]
    fn line_batches_cover_the_lines() {
        for lines in [0usize, 1, 2, 7, 64, 333, 667, 5000] {
            for sym in [2usize, 38, 302, 4096] {
                for min in [1usize, 4] {
                    let batches: Vec<_> = line_batches(lines, sym, min).collect();
                    let mut next = 0;
                    for b in &batches {
                        assert_eq!(b.start, next, "{lines} {sym} {min}");
                        assert!(!b.is_empty(), "{lines} {sym} {min}");
                        assert!(b.len() == 1 || b.len() * sym <= 2 * DECODE_SHARD_BYTES);
                        next = b.end;
                    }
                    assert_eq!(next, lines);
                    assert!(batches.len() >= min.min(lines));
                }
            }
        }
    }

    /// Lines decoded in batches come out exactly as lines decoded one by one with
    /// [`Coder::decode`], for random erasure patterns (offered in random order, with repeats
    /// and out-of-range positions), symbol sizes with and without a short last chunk, batch
    /// splits, and both codewords and arbitrary bytes (which decode to garbage, the same
    /// garbage either way). The seed is the proptest input, printed on failure.
    mod batched_decode {
        use super::*;
        use proptest::prelude::*;
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        use rand_chacha::ChaCha8Rng;

        /// `lines` lines of `n` expanded symbols each: codewords, or random bytes.
        fn expanded_lines(
            rng: &mut ChaCha8Rng,
            coder: &mut Coder,
            (k, n, sym, lines): (usize, usize, usize, usize),
            codewords: bool,
        ) -> Vec<Vec<u8>> {
            (0..lines)
                .map(|_| {
                    let mut line = vec![0u8; n * sym];
                    rng.fill(&mut line[..]);
                    if codewords {
                        let (source, repair) = line.split_at_mut(k * sym);
                        let symbols = source.chunks(sym);
                        coder
                            .encode(k, n, sym, symbols, |i, d| {
                                repair[i * sym..][..sym].copy_from_slice(d)
                            })
                            .unwrap();
                    }
                    line
                })
                .collect()
        }

        /// k distinct positions of 0..n in random order, with a few repeats and out-of-range
        /// positions mixed in (which both decoders skip).
        fn pattern(rng: &mut ChaCha8Rng, k: usize, n: usize) -> Vec<usize> {
            // Often from a prefix of the positions, so that the last repair one varies.
            let window = if rng.random() {
                rng.random_range(k..=n)
            } else {
                n
            };
            let mut all: Vec<usize> = (0..window).collect();
            all.shuffle(rng);
            let mut positions = all[..k].to_vec();
            for _ in 0..rng.random_range(0..3) {
                let at = rng.random_range(0..positions.len());
                let extra = if rng.random() { positions[at] } else { n + at };
                positions.insert(rng.random_range(0..at + 1), extra);
            }
            positions
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

            #[test]
            fn equals_decoding_line_by_line(seed in any::<u64>()) {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let (k, n) = [(2, 4), (3, 7), (34, 100), (67, 100), (334, 1000), (667, 1000)]
                    [rng.random_range(0..6)];
                let sym = [2, 6, 30, 32, 34, 38, 62, 64, 66, 130, 302][rng.random_range(0..11)];
                let lines = rng.random_range(1..=60);
                let mut coder = Coder::default();
                let codewords = rng.random_bool(0.5);
                let data = expanded_lines(&mut rng, &mut coder, (k, n, sym, lines), codewords);
                let positions = pattern(&mut rng, k, n);
                let symbol = |l: usize, j: usize| &data[l][positions[j] * sym..][..sym];
                let mut batched = vec![vec![None; k]; lines];
                coder
                    .decode_lines(k, n, sym, &positions, lines, symbol, |l, i, d| {
                        assert!(batched[l][i].replace(d.to_vec()).is_none(), "{l} {i} twice");
                    })
                    .unwrap();
                for (l, line) in data.iter().enumerate() {
                    // Out-of-range positions carry any bytes: both decoders skip them.
                    let at = |pos: usize| if pos < n { &line[pos * sym..][..sym] } else { &line[..sym] };
                    let symbols = positions.iter().map(|&pos| (pos, at(pos)));
                    let mut alone = vec![Vec::new(); k];
                    coder.decode(k, n, sym, symbols, |i, d| alone[i] = d.to_vec()).unwrap();
                    for (i, got) in batched[l].iter().enumerate() {
                        if let Some(got) = got {
                            prop_assert_eq!(got, &alone[i], "k={} n={} sym={} line {} symbol {}", k, n, sym, l, i);
                        } else {
                            prop_assert!(positions[..].contains(&i), "symbol {} of line {} not restored", i, l);
                        }
                    }
                }
            }
        }
    }
}
