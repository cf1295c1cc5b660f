//! The encoded blob an upload sends from: wholly in memory, or with its repair slivers spilled
//! to a temporary file (blobs of `spill_above_bytes` or more; see [`floe_core::spill`]).

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use floe_core::encode::encode_buffer;
use floe_core::{
    BlobId, BlobMetadataWithId, EncodeError, EncodedBlob, EncodingConfig, SliverIndex,
    SliverPairIndex, SliverType, SpillStore, SpilledBlob, encode_spilled,
};
use floe_node_client::{FinishedBatch, SliverBatchBody};

use crate::{ClientError, CommunicationConfig};

/// An encoded blob, as the upload sees it.
pub(crate) enum Encoded {
    Memory(EncodedBlob),
    Spilled(SpilledBlob),
}

impl Encoded {
    /// Encode `data` (its first `size` bytes), spilling when `comm` says so. Blocking: call it
    /// off the async runtime.
    pub(crate) fn encode(
        config: &EncodingConfig,
        data: Vec<u8>,
        size: u64,
        comm: &CommunicationConfig,
    ) -> Result<Self, ClientError> {
        if comm.spill_above_bytes == 0 || size < comm.spill_above_bytes {
            return Ok(Encoded::Memory(encode_buffer(config, data, size)?));
        }
        let dir = comm.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
        let store = FileStore::new(&dir)?;
        match encode_spilled(config, data, size, Box::new(store)) {
            Ok(e) => {
                // The coding threads' buffers grew to this blob's column blocks (about 6 MiB a
                // thread for 64 MiB at n = 1000) and would stay while the slivers upload: an
                // encoding this large is worth dropping them at once.
                floe_core::release_pool_buffers();
                Ok(Encoded::Spilled(e))
            }
            Err(EncodeError::Spill(reason)) => Err(ClientError::Spill {
                dir: dir.display().to_string(),
                reason,
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn blob_id(&self) -> BlobId {
        self.metadata().blob_id
    }
    pub(crate) fn metadata(&self) -> &BlobMetadataWithId {
        match self {
            Encoded::Memory(e) => e.metadata(),
            Encoded::Spilled(e) => e.metadata(),
        }
    }
    pub(crate) fn config(&self) -> &EncodingConfig {
        match self {
            Encoded::Memory(e) => e.config(),
            Encoded::Spilled(e) => e.config(),
        }
    }
    pub(crate) fn symbol_size(&self) -> u16 {
        match self {
            Encoded::Memory(e) => e.symbol_size(),
            Encoded::Spilled(e) => e.symbol_size(),
        }
    }
    pub(crate) fn is_spilled(&self) -> bool {
        matches!(self, Encoded::Spilled(_))
    }

    /// The sliver's bytes where they are in memory.
    fn in_memory(&self, axis: SliverType, index: SliverIndex) -> Option<&[u8]> {
        match self {
            Encoded::Memory(e) => Some(e.sliver_bytes(axis, index)),
            Encoded::Spilled(e) => e.sliver_in_memory(axis, index),
        }
    }

    /// The upload body of these pairs' slivers. Slivers in memory are referenced, not copied;
    /// a spilled blob's other slivers are read back into one buffer for the whole batch (a
    /// block the allocator maps on its own when large, so that its pages go back to the system
    /// as soon as the batch is sent). Reads from a file: call it off the async runtime.
    pub(crate) fn batch_body(
        self: &Arc<Self>,
        pairs: &[SliverPairIndex],
    ) -> Result<FinishedBatch, String> {
        let n = self.config().n_shards();
        let sym = self.symbol_size();
        let slivers = || {
            pairs.iter().flat_map(move |&pair| {
                [SliverType::Primary, SliverType::Secondary]
                    .map(|axis| (pair, axis, pair.to_sliver_index(axis, n)))
            })
        };
        // Read back, in order: those not in memory.
        let mut read = Bytes::new();
        if let Encoded::Spilled(e) = &**self {
            let missing =
                slivers().filter(|&(_, axis, index)| self.in_memory(axis, index).is_none());
            let total: usize = missing
                .clone()
                .map(|(_, axis, _)| self.config().sliver_len(axis, sym))
                .sum();
            let mut buf = vec![0u8; total];
            let mut rest = &mut buf[..];
            for (_, axis, index) in missing {
                let (out, tail) = rest.split_at_mut(self.config().sliver_len(axis, sym));
                e.read_sliver_into(axis, index, out)
                    .map_err(|e| format!("reading sliver {index:?} back: {e}"))?;
                rest = tail;
            }
            read = Bytes::from(buf);
        }
        let mut body = SliverBatchBody::new();
        let mut at = 0;
        for (pair, axis, index) in slivers() {
            let bytes = if self.in_memory(axis, index).is_some() {
                Bytes::from_owner(SliverView {
                    blob: self.clone(),
                    axis,
                    index,
                })
            } else {
                let len = self.config().sliver_len(axis, sym);
                at += len;
                read.slice(at - len..at)
            };
            body.push(pair, axis, index, sym, bytes);
        }
        Ok(body.finish())
    }
}

/// One sliver held in memory by an encoded blob, as the owner of a zero-copy [`Bytes`]: upload
/// bodies point into the blob instead of copying it.
struct SliverView {
    blob: Arc<Encoded>,
    axis: SliverType,
    index: SliverIndex,
}

impl AsRef<[u8]> for SliverView {
    fn as_ref(&self) -> &[u8] {
        // Made only for slivers in memory (see `Encoded::sliver`).
        self.blob
            .in_memory(self.axis, self.index)
            .unwrap_or_default()
    }
}

/// An unlinked temporary file as a spill store: its pages live in the page cache, which the
/// kernel may write back and reclaim, and are freed with the file when the blob is dropped.
struct FileStore(std::fs::File);

impl FileStore {
    fn new(dir: &Path) -> Result<Self, ClientError> {
        tempfile::tempfile_in(dir)
            .map(FileStore)
            .map_err(|e| ClientError::Spill {
                dir: dir.display().to_string(),
                reason: e.to_string(),
            })
    }
}

impl SpillStore for FileStore {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<(), String> {
        self.0
            .write_all_at(bytes, offset)
            .map_err(|e| e.to_string())
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        self.0.read_exact_at(buf, offset).map_err(|e| e.to_string())
    }
}
