//! Sliver writes, reads and deletions of [`FjallStore`], with large batches in segment files
//! (see `segments.rs`).
//!
//! Every change to the `slivers` keyspace runs under `FjallStore::reclaim`: it reads the values
//! it replaces or removes, and when one pointed into a segment, decrements that segment's live
//! count in the same engine batch. After the commit the dead ranges are released, outside the
//! lock. So a segment's record always counts exactly the values that point into it.

use std::collections::{BTreeMap, HashSet};

use fjall::OwnedWriteBatch;
use floe_core::{BlobId, ShardIndex, SliverData, SliverType};

use crate::codec::{self, SliverEntry};
use crate::error::StoreError;
use crate::fjall_store::FjallStore;
use crate::segments::Location;

/// A sliver to write: where it goes, and the sliver.
pub(crate) type SliverItem<'a> = (ShardIndex, SliverType, BlobId, &'a SliverData);

impl FjallStore {
    /// Writes slivers in one atomic batch: to a new segment if together they reach the
    /// segment threshold, inline otherwise. The caller has checked that the shards are held
    /// and holds the shard set for reading. A key given twice keeps its last sliver.
    pub(crate) fn write_slivers(&self, items: &[SliverItem<'_>]) -> Result<(), StoreError> {
        let mut seen = HashSet::new();
        let mut unique: Vec<&SliverItem<'_>> = items
            .iter()
            .rev()
            .filter(|(shard, axis, blob, _)| seen.insert((*shard, *axis, *blob)))
            .collect();
        unique.reverse();
        if unique.is_empty() {
            return Ok(());
        }
        let bytes: u64 = unique.iter().map(|i| i.3.symbols.len() as u64).sum();
        let segment = if bytes >= self.segment_min_bytes {
            let slivers: Vec<&SliverData> = unique.iter().map(|i| i.3).collect();
            Some(self.segments.write(&slivers)?)
        } else {
            None
        };
        let result = self.commit_slivers(&unique, segment.as_ref());
        if result.is_err()
            && let Some((id, _)) = segment
        {
            // Never referenced: remove it now rather than on the next open.
            self.segments.release(&[], &[id]);
        }
        result
    }

    fn commit_slivers(
        &self,
        items: &[&SliverItem<'_>],
        segment: Option<&(u64, Vec<Location>)>,
    ) -> Result<(), StoreError> {
        let _reclaim = self.reclaim.lock().unwrap_or_else(|e| e.into_inner());
        let mut batch = OwnedWriteBatch::with_capacity(self.db.clone(), items.len() + 1);
        let mut dead = Vec::new();
        for (i, (shard, axis, blob_id, sliver)) in items.iter().enumerate() {
            let key = codec::sliver_key(*shard, *axis, blob_id);
            if let Some(old) = self.slivers.get(key)?
                && let Some(at) = codec::location_of(&old)
            {
                dead.push(at?);
            }
            match segment {
                Some((_, locations)) => {
                    batch.insert(&self.slivers, key, codec::encode_location(&locations[i])?)
                }
                None => batch.insert(&self.slivers, key, codec::encode_sliver(sliver)?),
            }
        }
        if let Some((id, locations)) = segment {
            let live = u32::try_from(locations.len())
                .map_err(|_| StoreError::corrupt("segment", "more than 2^32 slivers"))?;
            batch.insert(
                &self.node_state,
                codec::segment_record_key(*id),
                codec::encode_segment_record(live)?,
            );
        }
        let emptied = self.unreference(&mut batch, &dead)?;
        self.commit(batch)?;
        drop(_reclaim);
        self.segments.release(&dead, &emptied);
        Ok(())
    }

    /// Adds to `batch` the decrements of the live counts of the segments `dead` points into;
    /// the segments whose count reaches zero (their records are removed). The caller holds
    /// `reclaim` until the batch is committed.
    fn unreference(
        &self,
        batch: &mut OwnedWriteBatch,
        dead: &[Location],
    ) -> Result<Vec<u64>, StoreError> {
        let mut per_segment: BTreeMap<u64, u32> = BTreeMap::new();
        for at in dead {
            *per_segment.entry(at.segment).or_default() += 1;
        }
        let mut emptied = Vec::new();
        for (id, gone) in per_segment {
            let key = codec::segment_record_key(id);
            let live = match self.node_state.get(&key)? {
                Some(v) => codec::decode_segment_record(id, &v)?,
                None => {
                    return Err(StoreError::corrupt(
                        format!("segment {id:016x}"),
                        "a sliver points into it but it has no record",
                    ));
                }
            };
            match live.checked_sub(gone) {
                Some(0) => {
                    batch.remove(&self.node_state, key);
                    emptied.push(id);
                }
                Some(left) => {
                    batch.insert(&self.node_state, key, codec::encode_segment_record(left)?)
                }
                None => {
                    return Err(StoreError::corrupt(
                        format!("record of segment {id:016x}"),
                        format!("{gone} slivers removed but only {live} counted"),
                    ));
                }
            }
        }
        Ok(emptied)
    }

    /// Removes the given `slivers` keys in one batch, with their segments' counts.
    pub(crate) fn remove_slivers(
        &self,
        keys: impl IntoIterator<Item = impl AsRef<[u8]>>,
        extra: impl FnOnce(&mut OwnedWriteBatch),
    ) -> Result<(), StoreError> {
        let reclaim = self.reclaim.lock().unwrap_or_else(|e| e.into_inner());
        let mut batch = self.db.batch();
        let mut dead = Vec::new();
        for key in keys {
            let key = key.as_ref();
            if let Some(old) = self.slivers.get(key)? {
                if let Some(at) = codec::location_of(&old) {
                    dead.push(at?);
                }
                batch.remove(&self.slivers, key);
            }
        }
        extra(&mut batch);
        let emptied = self.unreference(&mut batch, &dead)?;
        self.commit(batch)?;
        drop(reclaim);
        self.segments.release(&dead, &emptied);
        Ok(())
    }

    /// Reads one sliver, inline or from its segment.
    pub(crate) fn read_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
    ) -> Result<Option<SliverData>, StoreError> {
        let _gate = self.segments.read_gate();
        let Some(value) = self.slivers.get(codec::sliver_key(shard, axis, blob_id))? else {
            return Ok(None);
        };
        match codec::decode_sliver_entry(shard, axis, blob_id, &value)? {
            SliverEntry::Inline(sliver) => Ok(Some(sliver)),
            SliverEntry::Located(at) => {
                let bytes = self.segments.read(&at)?;
                codec::decode_sliver_vec(shard, axis, blob_id, bytes).map(Some)
            }
        }
    }

    /// The segments that have a record.
    pub(crate) fn recorded_segments(node_state: &fjall::Keyspace) -> Result<Vec<u64>, StoreError> {
        node_state
            .prefix(codec::SEGMENT_RECORD_PREFIX)
            .map(|guard| codec::parse_segment_record_key(&guard.key()?))
            .collect()
    }
}
