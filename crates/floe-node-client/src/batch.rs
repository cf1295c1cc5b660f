//! The body of the batched sliver upload, built without copying large slivers and without
//! tiny HTTP/2 frames ([`crate::chunks`] says why those break connections): the framing and
//! every short sliver are copied into shared buffers of up to [`COALESCE_BYTES`], and only
//! slivers of [`ZERO_COPY_MIN`] bytes or more travel as chunks of their own, uncopied. A
//! loaded node used to drop the daemon's shared connection in the middle of a burst of small
//! PUTs (the `floe bench e2e` flake) when each field of every sliver was a chunk.

use floe_core::{SliverIndex, SliverPairIndex, SliverType};

use crate::chunks::BodyChunks;

/// Symbols this long or longer are sent as a chunk of their own, pointing into the caller's
/// buffer; shorter ones are copied next to their framing.
pub const ZERO_COPY_MIN: usize = 16 * 1024;
/// A buffer of framing and short slivers becomes a chunk once it holds this many bytes.
pub const COALESCE_BYTES: usize = 64 * 1024;

/// The sliver batch's wire version.
pub const SLIVER_BATCH_VERSION: u8 = 1;

/// The body of the batched upload `PUT /v1/blobs/{id}/slivers`: the BCS encoding of
/// `SliverBatch { version: 1, slivers: Vec<(SliverPairIndex, Sliver)> }` (wire version 1), as
/// a list of chunks in which the symbols of each large sliver are the caller's [`Bytes`],
/// never copied (a view into the encoded blob, say). Cloning the finished body clones
/// handles, so retries are free.
///
/// [`Bytes`]: bytes::Bytes
#[derive(Clone, Debug)]
pub struct SliverBatchBody {
    chunks: BodyChunks,
    /// A sliver's head (pair, axis, length), reused from one push to the next.
    head: Vec<u8>,
    count: usize,
}

impl Default for SliverBatchBody {
    fn default() -> Self {
        Self::new()
    }
}

impl SliverBatchBody {
    pub fn new() -> Self {
        SliverBatchBody {
            chunks: BodyChunks::new(ZERO_COPY_MIN, COALESCE_BYTES),
            head: Vec::with_capacity(16),
            count: 0,
        }
    }

    /// Appends sliver `index` of `axis` (pair `pair`) with its symbols.
    pub fn push(
        &mut self,
        pair: SliverPairIndex,
        axis: SliverType,
        index: SliverIndex,
        symbol_size: u16,
        symbols: bytes::Bytes,
    ) {
        let head = &mut self.head;
        head.clear();
        head.extend_from_slice(&pair.0.to_le_bytes());
        head.push(match axis {
            SliverType::Primary => 0,
            SliverType::Secondary => 1,
        });
        floe_core::uleb128::push(head, symbols.len());
        self.chunks.copy(head);
        self.chunks.piece(symbols);
        self.chunks.copy(&symbol_size.to_le_bytes());
        self.chunks.copy(&index.0.to_le_bytes());
        self.count += 1;
        self.chunks.cut_if_full();
    }

    /// Slivers pushed so far.
    pub fn slivers(&self) -> usize {
        self.count
    }

    /// The finished body: version, sliver count, the slivers.
    pub fn finish(self) -> FinishedBatch {
        let mut header = vec![SLIVER_BATCH_VERSION];
        floe_core::uleb128::push(&mut header, self.count);
        let mut chunks = self.chunks.finish();
        // The first chunk is always a buffer of framing (a sliver's head comes before its
        // symbols), at most `COALESCE_BYTES` plus one short sliver: the header joins it.
        match chunks.first_mut() {
            Some(first) => {
                header.extend_from_slice(first);
                *first = header.into();
            }
            None => chunks.push(header.into()),
        }
        let len = chunks.iter().map(|c| c.len()).sum();
        FinishedBatch {
            chunks: chunks.into(),
            len,
        }
    }
}

/// A finished batch body: shared chunks and their total length.
#[derive(Clone, Debug)]
pub struct FinishedBatch {
    chunks: std::sync::Arc<[bytes::Bytes]>,
    len: usize,
}

impl FinishedBatch {
    /// Total bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The lengths of the chunks the body is streamed in.
    pub fn chunk_lens(&self) -> impl Iterator<Item = usize> + '_ {
        self.chunks.iter().map(|c| c.len())
    }

    /// The body as one buffer (a copy).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for c in self.chunks.iter() {
            out.extend_from_slice(c);
        }
        out
    }

    pub(crate) fn body(&self) -> reqwest::Body {
        let chunks = self.chunks.clone();
        let stream = futures_util::stream::iter(
            (0..chunks.len()).map(move |i| Ok::<_, std::io::Error>(chunks[i].clone())),
        );
        reqwest::Body::wrap_stream(stream)
    }
}

#[cfg(test)]
mod tests {
    use floe_core::{Sliver, SliverData};

    use super::*;

    #[derive(serde::Serialize)]
    struct Batch {
        version: u8,
        slivers: Vec<(SliverPairIndex, Sliver)>,
    }

    fn slivers(k: usize, len: usize) -> Vec<(SliverPairIndex, Sliver)> {
        (0..k)
            .map(|i| {
                let data = SliverData {
                    symbols: (0..len + i).map(|b| (b * 7 + i) as u8).collect(),
                    symbol_size: 3,
                    index: SliverIndex((i % 200) as u16 * 300),
                };
                let s = if i % 2 == 0 {
                    Sliver::Primary(data)
                } else {
                    Sliver::Secondary(data)
                };
                (SliverPairIndex(i as u16 * 2 + 1), s)
            })
            .collect()
    }

    fn body_of(slivers: &[(SliverPairIndex, Sliver)]) -> FinishedBatch {
        let mut body = SliverBatchBody::new();
        for (pair, s) in slivers {
            let d = s.data();
            body.push(
                *pair,
                s.axis(),
                d.index,
                d.symbol_size,
                d.symbols.clone().into(),
            );
        }
        body.finish()
    }

    #[test]
    fn batch_body_is_the_bcs_of_the_batch() {
        // Lengths on both sides of the one- and two-byte ULEB128 boundaries, counts too, and
        // on both sides of the zero-copy and buffer limits.
        for (k, len) in [
            (0usize, 0usize),
            (1, 0),
            (3, 127),
            (2, 128),
            (130, 5),
            (4, 20_000),
            (3, ZERO_COPY_MIN - 1),
            (2, ZERO_COPY_MIN),
            (40, 3000),
            (5, COALESCE_BYTES),
        ] {
            let slivers = slivers(k, len);
            let expected = bcs::to_bytes(&Batch {
                version: 1,
                slivers: slivers.clone(),
            })
            .unwrap();
            let body = body_of(&slivers);
            assert_eq!(body.len(), expected.len());
            assert_eq!(body.to_vec(), expected, "{k} slivers of {len}+ bytes");
            assert_eq!(body.chunk_lens().sum::<usize>(), expected.len());
        }
    }

    #[test]
    fn short_slivers_share_chunks_and_long_ones_are_not_copied() {
        // A small blob's batch: 2000 slivers of 2 bytes go out as one chunk, not 6000.
        let mut body = SliverBatchBody::new();
        for i in 0..2000u16 {
            let symbols = bytes::Bytes::from(vec![i as u8; 2]);
            body.push(
                SliverPairIndex(i),
                SliverType::Secondary,
                SliverIndex(i),
                2,
                symbols,
            );
        }
        let body = body.finish();
        assert_eq!(body.chunk_lens().collect::<Vec<_>>(), vec![body.len()]);

        // Many short slivers: chunks of about the buffer limit.
        let body = body_of(&slivers(100, 3000));
        let lens: Vec<usize> = body.chunk_lens().collect();
        assert_eq!(lens.len(), 5, "{lens:?}");
        assert!(lens[..4].iter().all(|l| *l >= COALESCE_BYTES), "{lens:?}");

        // Long slivers: each one's symbols are the caller's bytes, between short framing.
        let data: Vec<bytes::Bytes> = (0..3)
            .map(|i| bytes::Bytes::from(vec![i as u8; ZERO_COPY_MIN + i]))
            .collect();
        let mut body = SliverBatchBody::new();
        for (i, d) in data.iter().enumerate() {
            body.push(
                SliverPairIndex(i as u16),
                SliverType::Primary,
                SliverIndex(i as u16),
                1,
                d.clone(),
            );
        }
        let body = body.finish();
        let lens: Vec<usize> = body.chunk_lens().collect();
        assert_eq!(
            lens.len(),
            7,
            "framing, symbols, …, the last framing: {lens:?}"
        );
        for (i, d) in data.iter().enumerate() {
            assert_eq!(
                body.chunks[2 * i + 1].as_ptr(),
                d.as_ptr(),
                "sliver {i} was copied"
            );
        }
    }
}
