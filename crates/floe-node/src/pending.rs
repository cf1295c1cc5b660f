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

    fn fresh(ttl: Duration, b: &PendingBlob, now: Instant) -> bool {
        b.created.is_none_or(|c| now.duration_since(c) < ttl)
    }

    /// Drop every entry older than the TTL; returns how many blobs were dropped.
    pub fn expire(&mut self, now: Instant) -> usize {
        let ttl = self.ttl;
        let (mut freed, mut dropped) = (0, 0);
        self.blobs.retain(|_, b| {
            let keep = Self::fresh(ttl, b, now);
            if !keep {
                freed += b.bytes;
                dropped += 1;
            }
            keep
        });
        self.bytes -= freed;
        dropped
    }

    /// A blob's entry if it has not outlived the TTL.
    fn live(&self, blob_id: &BlobId) -> Option<&PendingBlob> {
        self.blobs
            .get(blob_id)
            .filter(|b| Self::fresh(self.ttl, b, Instant::now()))
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

    /// The buffered metadata, unless it outlived the TTL.
    pub fn metadata(&self, blob_id: &BlobId) -> Option<&BlobMetadata> {
        self.live(blob_id).and_then(|b| b.metadata.as_ref())
    }

    /// Whether the sliver is buffered and has not outlived the TTL.
    pub fn has_sliver(&self, blob_id: &BlobId, shard: ShardIndex, axis: SliverType) -> bool {
        self.live(blob_id)
            .is_some_and(|b| b.slivers.iter().any(|(s, a, _)| *s == shard && *a == axis))
    }

    /// Remove and return what is buffered for `blob_id`; an entry that outlived the TTL is
    /// dropped, never returned.
    pub fn take(&mut self, blob_id: &BlobId) -> Option<PendingBlob> {
        let b = self.blobs.remove(blob_id)?;
        self.bytes -= b.bytes;
        Self::fresh(self.ttl, &b, Instant::now()).then_some(b)
    }

    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_core::{EncodingConfig, SliverIndex, encode};

    fn blob(tag: u8) -> floe_core::EncodedBlob {
        encode(&EncodingConfig::new(4).unwrap(), &[tag; 100]).unwrap()
    }

    #[test]
    fn entries_outlive_neither_reads_nor_take_past_the_ttl() {
        let ttl = Duration::from_millis(40);
        let mut buf = PendingBuffer::new(100, 1 << 20, ttl);
        let (a, b) = (blob(1), blob(2));
        let sliver = a.sliver(SliverType::Primary, SliverIndex(0));
        buf.put_metadata(&a.blob_id(), a.metadata().metadata.clone())
            .unwrap();
        buf.put_sliver(&a.blob_id(), ShardIndex(0), SliverType::Primary, sliver)
            .unwrap();
        buf.put_metadata(&b.blob_id(), b.metadata().metadata.clone())
            .unwrap();
        assert!(buf.metadata(&a.blob_id()).is_some());
        assert!(buf.has_sliver(&a.blob_id(), ShardIndex(0), SliverType::Primary));
        let taken = buf.take(&b.blob_id()).unwrap();
        assert!(taken.metadata.is_some());
        std::thread::sleep(ttl + Duration::from_millis(20));
        // Past the TTL: invisible, and never handed out for flushing.
        assert!(buf.metadata(&a.blob_id()).is_none());
        assert!(!buf.has_sliver(&a.blob_id(), ShardIndex(0), SliverType::Primary));
        assert_eq!(buf.len(), 1, "not yet purged");
        assert_eq!(buf.expire(Instant::now()), 1);
        assert!(buf.is_empty());
        assert_eq!(buf.bytes, 0);
        buf.put_metadata(&a.blob_id(), a.metadata().metadata.clone())
            .unwrap();
        std::thread::sleep(ttl + Duration::from_millis(20));
        assert!(buf.take(&a.blob_id()).is_none());
        assert_eq!(buf.bytes, 0);
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut buf = PendingBuffer::new(2, 1 << 20, Duration::from_secs(60));
        let (a, b, c) = (blob(1), blob(2), blob(3));
        buf.put_metadata(&a.blob_id(), a.metadata().metadata.clone())
            .unwrap();
        buf.put_metadata(&b.blob_id(), b.metadata().metadata.clone())
            .unwrap();
        assert!(
            buf.put_metadata(&c.blob_id(), c.metadata().metadata.clone())
                .is_err()
        );
        let mut small = PendingBuffer::new(100, 10, Duration::from_secs(60));
        assert!(
            small
                .put_metadata(&a.blob_id(), a.metadata().metadata.clone())
                .is_err()
        );
        assert!(small.is_empty());
    }
}
