//! The chunks of a streamed HTTP body: short byte runs copied into shared buffers, long
//! pieces passed on uncopied.
//!
//! Each chunk of a streamed body goes out as (at least) one HTTP/2 DATA frame, and an HTTP/2
//! peer counts frames of under 256 bytes that it holds unread against a budget: past it, the
//! peer closes the whole connection, and every request on it fails ("stream closed because of
//! a broken pipe"). h2 (0.4.20 here) does this against framing-overhead floods, and hyper does
//! not expose the budget. So every body we stream with many small pieces (a sliver batch, a
//! small blob's rows) is cut by a [`BodyChunks`] into chunks of a useful size.

use bytes::Bytes;

/// A streamed body's chunks, as they are built.
#[derive(Clone, Debug)]
pub struct BodyChunks {
    chunks: Vec<Bytes>,
    /// Short bytes not yet cut into a chunk.
    pending: Vec<u8>,
    /// Pieces this long or longer become chunks of their own, uncopied.
    zero_copy_min: usize,
    /// The pending buffer becomes a chunk at [`Self::cut_if_full`] once it holds this many
    /// bytes.
    cut_at: usize,
}

impl BodyChunks {
    pub fn new(zero_copy_min: usize, cut_at: usize) -> Self {
        BodyChunks {
            chunks: Vec::new(),
            pending: Vec::new(),
            zero_copy_min,
            cut_at,
        }
    }

    /// Appends short bytes (framing, say): always copied.
    pub fn copy(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Appends a piece: a chunk of its own if it is at least `zero_copy_min` bytes long (the
    /// bytes before it cut into a chunk first), otherwise copied.
    pub fn piece(&mut self, piece: Bytes) {
        if piece.len() >= self.zero_copy_min {
            self.cut();
            self.chunks.push(piece);
        } else {
            self.copy(&piece);
        }
    }

    /// Cuts the pending bytes into a chunk if they reached `cut_at`.
    pub fn cut_if_full(&mut self) {
        if self.pending.len() >= self.cut_at {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if !self.pending.is_empty() {
            self.chunks.push(std::mem::take(&mut self.pending).into());
        }
    }

    /// The chunks, the pending bytes last.
    pub fn finish(mut self) -> Vec<Bytes> {
        self.cut();
        self.chunks
    }
}
