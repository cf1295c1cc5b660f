//! A bounded buffer for uploads that arrive before their registration event.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use floe_core::{BlobId, BlobMetadata, ShardIndex, SliverData, SliverType};

#[derive(Default)]
pub struct PendingBlob {
    pub metadata: Option<BlobMetadata>,
    pub slivers: Vec<(ShardIndex, SliverType, SliverData)>,
    bytes: usize,
    created: Option<Instant>,
}

/// Entries and bytes are bounded; entries older than the TTL are dropped.
pub struct PendingBuffer {
    blobs: HashMap<BlobId, PendingBlob>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    ttl: Duration,
}

/// The buffer is full.
#[derive(Debug)]
pub struct Saturated;

impl PendingBuffer {
    pub fn new(max_entries: usize, max_bytes: usize, ttl: Duration) -> Self {
        Self {
            blobs: HashMap::new(),
            bytes: 0,
            max_entries,
            max_bytes,
            ttl,
        }
    }

    fn expire(&mut self, now: Instant) {
        let ttl = self.ttl;
        let mut freed = 0;
        self.blobs.retain(|_, b| {
            let keep = b.created.is_none_or(|c| now.duration_since(c) < ttl);
            if !keep {
                freed += b.bytes;
            }
            keep
        });
        self.bytes -= freed;
    }

    fn entry(&mut self, blob_id: &BlobId, size: usize) -> Result<&mut PendingBlob, Saturated> {
        let now = Instant::now();
        self.expire(now);
        let is_new = !self.blobs.contains_key(blob_id);
        let entries = self
            .blobs
            .values()
            .map(|b| b.slivers.len() + 1)
            .sum::<usize>();
        if self.bytes + size > self.max_bytes
            || entries + 1 > self.max_entries
            || (is_new && self.blobs.len() >= self.max_entries)
        {
            return Err(Saturated);
        }
        self.bytes += size;
        let b = self.blobs.entry(*blob_id).or_default();
        b.created.get_or_insert(now);
        b.bytes += size;
        Ok(b)
    }

    pub fn put_metadata(
        &mut self,
        blob_id: &BlobId,
        metadata: BlobMetadata,
    ) -> Result<(), Saturated> {
        let size = metadata.hashes().len() * 66 + 64;
        let b = self.entry(blob_id, size)?;
        b.metadata = Some(metadata);
        Ok(())
    }

    pub fn put_sliver(
        &mut self,
        blob_id: &BlobId,
        shard: ShardIndex,
        axis: SliverType,
        sliver: SliverData,
    ) -> Result<(), Saturated> {
        let size = sliver.symbols.len() + 16;
        let b = self.entry(blob_id, size)?;
        b.slivers.retain(|(s, a, _)| !(*s == shard && *a == axis));
        b.slivers.push((shard, axis, sliver));
        Ok(())
    }

    pub fn metadata(&self, blob_id: &BlobId) -> Option<&BlobMetadata> {
        self.blobs.get(blob_id).and_then(|b| b.metadata.as_ref())
    }

    pub fn has_sliver(&self, blob_id: &BlobId, shard: ShardIndex, axis: SliverType) -> bool {
        self.blobs
            .get(blob_id)
            .is_some_and(|b| b.slivers.iter().any(|(s, a, _)| *s == shard && *a == axis))
    }

    /// Remove and return what is buffered for `blob_id`.
    pub fn take(&mut self, blob_id: &BlobId) -> Option<PendingBlob> {
        let b = self.blobs.remove(blob_id)?;
        self.bytes -= b.bytes;
        Some(b)
    }

    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }
}
