//! [`NodeStore`] in memory, for tests of the code above the store.
//!
//! Same semantics as [`crate::FjallStore`] (shard errors, ordering, pagination, atomic
//! batches), nothing persisted, values kept decoded.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use floe_core::{BlobId, BlobMetadata, ShardIndex, SliverData, SliverType};

use crate::blob_info::BlobInfo;
use crate::error::StoreError;
use crate::store::{MigrationCursor, NodeStore};

type Slivers = BTreeMap<BlobId, SliverData>;

#[derive(Default)]
struct State {
    metadata: BTreeMap<BlobId, BlobMetadata>,
    /// Per shard: (primary, secondary).
    shards: BTreeMap<ShardIndex, (Slivers, Slivers)>,
    blob_info: BTreeMap<BlobId, BlobInfo>,
    cursor: u64,
    migration: BTreeMap<(ShardIndex, SliverType), MigrationCursor>,
}

impl State {
    fn slivers(&self, shard: ShardIndex, axis: SliverType) -> Result<&Slivers, StoreError> {
        let (p, s) = self
            .shards
            .get(&shard)
            .ok_or(StoreError::ShardNotFound(shard))?;
        Ok(match axis {
            SliverType::Primary => p,
            SliverType::Secondary => s,
        })
    }

    fn slivers_mut(
        &mut self,
        shard: ShardIndex,
        axis: SliverType,
    ) -> Result<&mut Slivers, StoreError> {
        let (p, s) = self
            .shards
            .get_mut(&shard)
            .ok_or(StoreError::ShardNotFound(shard))?;
        Ok(match axis {
            SliverType::Primary => p,
            SliverType::Secondary => s,
        })
    }
}

/// A [`NodeStore`] that keeps everything in memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl NodeStore for MemoryStore {
    fn put_metadata(&self, blob_id: &BlobId, metadata: &BlobMetadata) -> Result<(), StoreError> {
        self.state().metadata.insert(*blob_id, metadata.clone());
        Ok(())
    }

    fn get_metadata(&self, blob_id: &BlobId) -> Result<Option<BlobMetadata>, StoreError> {
        Ok(self.state().metadata.get(blob_id).cloned())
    }

    fn has_metadata(&self, blob_id: &BlobId) -> Result<bool, StoreError> {
        Ok(self.state().metadata.contains_key(blob_id))
    }

    fn create_shard(&self, shard: ShardIndex) -> Result<(), StoreError> {
        self.state().shards.entry(shard).or_default();
        Ok(())
    }

    fn shards(&self) -> Result<Vec<ShardIndex>, StoreError> {
        Ok(self.state().shards.keys().copied().collect())
    }

    fn drop_shard(&self, shard: ShardIndex) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.shards.remove(&shard).is_some() {
            for axis in [SliverType::Primary, SliverType::Secondary] {
                state.migration.remove(&(shard, axis));
            }
        }
        Ok(())
    }

    fn put_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
        sliver: &SliverData,
    ) -> Result<(), StoreError> {
        self.state()
            .slivers_mut(shard, axis)?
            .insert(*blob_id, sliver.clone());
        Ok(())
    }

    fn put_slivers(
        &self,
        items: &[(ShardIndex, SliverType, BlobId, SliverData)],
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some((shard, ..)) = items
            .iter()
            .find(|(shard, ..)| !state.shards.contains_key(shard))
        {
            return Err(StoreError::ShardNotFound(*shard));
        }
        for (shard, axis, blob_id, sliver) in items {
            state
                .slivers_mut(*shard, *axis)?
                .insert(*blob_id, sliver.clone());
        }
        Ok(())
    }

    fn get_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
    ) -> Result<Option<SliverData>, StoreError> {
        Ok(self.state().slivers(shard, axis)?.get(blob_id).cloned())
    }

    fn has_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
    ) -> Result<bool, StoreError> {
        Ok(self.state().slivers(shard, axis)?.contains_key(blob_id))
    }

    fn delete_blob_data(&self, blob_id: &BlobId) -> Result<(), StoreError> {
        let mut state = self.state();
        state.metadata.remove(blob_id);
        for (primary, secondary) in state.shards.values_mut() {
            primary.remove(blob_id);
            secondary.remove(blob_id);
        }
        Ok(())
    }

    fn get_blob_info(&self, blob_id: &BlobId) -> Result<Option<BlobInfo>, StoreError> {
        Ok(self.state().blob_info.get(blob_id).cloned())
    }

    fn apply_events(&self, infos: &[(BlobId, BlobInfo)], cursor: u64) -> Result<(), StoreError> {
        let mut state = self.state();
        for (blob_id, info) in infos {
            state.blob_info.insert(*blob_id, info.clone());
        }
        state.cursor = cursor;
        Ok(())
    }

    fn event_cursor(&self) -> Result<u64, StoreError> {
        Ok(self.state().cursor)
    }

    fn migration_cursor(
        &self,
        shard: ShardIndex,
        axis: SliverType,
    ) -> Result<Option<MigrationCursor>, StoreError> {
        Ok(self.state().migration.get(&(shard, axis)).copied())
    }

    fn set_migration_cursor(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        cursor: &MigrationCursor,
    ) -> Result<(), StoreError> {
        self.state().migration.insert((shard, axis), *cursor);
        Ok(())
    }

    fn blob_infos(
        &self,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, BlobInfo)>, StoreError> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .state()
            .blob_info
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(id, info)| (*id, info.clone()))
            .collect())
    }

    fn sliver_ids(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        from: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<BlobId>, StoreError> {
        let lower = from.map_or(Bound::Unbounded, Bound::Included);
        Ok(self
            .state()
            .slivers(shard, axis)?
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(id, _)| *id)
            .collect())
    }

    fn persist(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
