//! A blob read as the pieces it arrived in. When every systematic primary sliver was received,
//! the blob *is* those slivers' symbols, row after row: a reader that can send pieces (the
//! aggregator's HTTP body) needs no contiguous copy of it, and memory holds the blob once.

use bytes::Bytes;
use floe_core::{SliverData, SliverIndex};

/// A blob's bytes: `parts` in order, `len` bytes in all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlobParts {
    parts: Vec<Bytes>,
    len: u64,
}

impl BlobParts {
    /// The blob of length `len` held by `rows`, the systematic primary slivers 0, 1, … in order
    /// (each `row_len` bytes; only those holding the first `len` bytes are kept). `None`
    /// unless the rows are exactly 0, 1, … and hold at least `len` bytes.
    pub(crate) fn from_rows(rows: Vec<SliverData>, row_len: usize, len: u64) -> Option<Self> {
        let mut parts = Vec::with_capacity(rows.len());
        let mut left = len;
        for (i, row) in rows.into_iter().enumerate() {
            if left == 0 {
                break;
            }
            if row.index != SliverIndex(u16::try_from(i).ok()?) || row.symbols.len() != row_len {
                return None;
            }
            let mut bytes = Bytes::from(row.symbols);
            if (bytes.len() as u64) > left {
                bytes.truncate(left as usize);
            }
            left -= bytes.len() as u64;
            parts.push(bytes);
        }
        (left == 0).then_some(Self { parts, len })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    pub fn into_parts(self) -> Vec<Bytes> {
        self.parts
    }

    /// The pieces, with each run of pieces shorter than `min` bytes joined into buffers of
    /// about `min` (copies of those only; a longer piece is passed on as it is): a streamed
    /// body's pieces must not be tiny HTTP/2 frames ([`floe_node_client::chunks`]), and a
    /// small blob's rows would be.
    pub fn into_coalesced_parts(self, min: usize) -> Vec<Bytes> {
        let mut chunks = floe_node_client::BodyChunks::new(min, min);
        for part in self.parts {
            chunks.piece(part);
            chunks.cut_if_full();
        }
        chunks.finish()
    }

    /// The bytes in one buffer (a copy, unless there is a single piece).
    pub fn into_vec(self) -> Vec<u8> {
        if self.parts.len() == 1 {
            let mut parts = self.parts;
            return parts.pop().map(Vec::from).unwrap_or_default();
        }
        let mut out = Vec::with_capacity(self.len as usize);
        for p in &self.parts {
            out.extend_from_slice(p);
        }
        out
    }
}

impl From<Vec<u8>> for BlobParts {
    fn from(blob: Vec<u8>) -> Self {
        let len = blob.len() as u64;
        let parts = if blob.is_empty() {
            Vec::new()
        } else {
            vec![Bytes::from(blob)]
        };
        Self { parts, len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u16, fill: u8, len: usize) -> SliverData {
        SliverData {
            symbols: vec![fill; len],
            symbol_size: 2,
            index: SliverIndex(i),
        }
    }

    #[test]
    fn rows_in_order_make_the_blob_without_its_padding() {
        let rows = vec![row(0, 1, 4), row(1, 2, 4), row(2, 3, 4)];
        let parts = BlobParts::from_rows(rows, 4, 6).expect("rows 0 and 1 hold 6 bytes");
        assert_eq!(parts.len(), 6);
        assert_eq!(parts.parts().len(), 2, "the third row is padding only");
        assert_eq!(parts.clone().into_vec(), vec![1, 1, 1, 1, 2, 2]);
        let one = BlobParts::from(parts.into_vec());
        assert_eq!(
            (one.len(), one.parts().len()),
            (6, 1),
            "one buffer, one piece"
        );
        assert_eq!(one.into_vec(), vec![1, 1, 1, 1, 2, 2]);
    }

    #[test]
    fn short_pieces_are_joined_and_long_ones_passed_on() {
        let pieces: Vec<Bytes> = [3usize, 3, 3, 10, 2, 2, 2, 2, 1]
            .iter()
            .enumerate()
            .map(|(i, n)| Bytes::from(vec![i as u8; *n]))
            .collect();
        let long = pieces[3].as_ptr();
        let len = pieces.iter().map(|p| p.len() as u64).sum();
        let blob = BlobParts { parts: pieces, len };
        let whole = blob.clone().into_vec();
        let joined = blob.into_coalesced_parts(5);
        let lens: Vec<usize> = joined.iter().map(|p| p.len()).collect();
        assert_eq!(lens, vec![6, 3, 10, 6, 3]);
        assert_eq!(joined[2].as_ptr(), long, "a long piece is not copied");
        assert_eq!(joined.concat(), whole);
    }

    #[test]
    fn rows_out_of_order_missing_or_short_are_refused() {
        assert!(BlobParts::from_rows(vec![row(1, 1, 4), row(0, 2, 4)], 4, 8).is_none());
        assert!(
            BlobParts::from_rows(vec![row(0, 1, 4)], 4, 8).is_none(),
            "too few bytes"
        );
        assert!(
            BlobParts::from_rows(vec![row(0, 1, 3)], 4, 3).is_none(),
            "short row"
        );
        let empty = BlobParts::from_rows(vec![row(0, 1, 4)], 4, 0).expect("empty blob");
        assert!(empty.is_empty() && empty.parts().is_empty());
    }
}
