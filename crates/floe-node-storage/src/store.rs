//! The [`NodeStore`] trait: everything a storage node keeps on disk.

use floe_core::{BlobId, BlobMetadata, ShardIndex, SliverData, SliverType};

use crate::blob_info::BlobInfo;
use crate::error::StoreError;

/// How far a node got pulling one (shard, axis) from the shard's previous owner in the epoch
/// change into `epoch`: the next blob ID to ask for, or `None` once the previous owner said
/// nothing follows. A cursor of another epoch is stale (a new change starts over).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrationCursor {
    pub epoch: u32,
    pub next: Option<BlobId>,
}

/// The persistent state of a storage node, behind a narrow synchronous interface.
///
/// Implementations are thread-safe; every method is one short blocking operation (callers on
/// an async runtime should use `spawn_blocking` for sliver I/O). Unless stated otherwise a
/// write is atomic, and durable on return when the store promises it (for
/// [`crate::FjallStore`]: [`crate::Durability::Sync`], the default).
///
/// The store does not verify what it is given (metadata against blob IDs, slivers against
/// metadata): that is the caller's job before writing.
pub trait NodeStore: Send + Sync + 'static {
    /// Stores (or replaces) the metadata of a blob.
    fn put_metadata(&self, blob_id: &BlobId, metadata: &BlobMetadata) -> Result<(), StoreError>;

    /// The stored metadata of a blob.
    fn get_metadata(&self, blob_id: &BlobId) -> Result<Option<BlobMetadata>, StoreError>;

    /// Whether metadata of the blob is stored (without decoding it).
    fn has_metadata(&self, blob_id: &BlobId) -> Result<bool, StoreError>;

    /// Starts holding `shard`. Idempotent: an existing shard is left as it is.
    ///
    /// Slivers live in one keyspace per (shard, axis), so a shard can be created, dropped or
    /// moved whole.
    fn create_shard(&self, shard: ShardIndex) -> Result<(), StoreError>;

    /// [`Self::create_shard`] for several shards; stores may commit them in one write.
    fn create_shards(&self, shards: &[ShardIndex]) -> Result<(), StoreError> {
        shards.iter().try_for_each(|&s| self.create_shard(s))
    }

    /// The shards held, in ascending order.
    fn shards(&self) -> Result<Vec<ShardIndex>, StoreError>;

    /// Deletes `shard` and all its slivers. Idempotent: dropping a shard not held is a no-op.
    fn drop_shard(&self, shard: ShardIndex) -> Result<(), StoreError>;

    /// Stores (or replaces) one sliver. [`StoreError::ShardNotFound`] if the shard is not held.
    fn put_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
        sliver: &SliverData,
    ) -> Result<(), StoreError>;

    /// Stores several slivers as one atomic write: all or none. Fails with
    /// [`StoreError::ShardNotFound`], writing nothing, if any shard is not held. If a
    /// (shard, axis, blob) appears more than once, the last one wins.
    fn put_slivers(
        &self,
        items: &[(ShardIndex, SliverType, BlobId, SliverData)],
    ) -> Result<(), StoreError>;

    /// One stored sliver. [`StoreError::ShardNotFound`] if the shard is not held.
    fn get_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
    ) -> Result<Option<SliverData>, StoreError>;

    /// Whether a sliver is stored (without reading it). [`StoreError::ShardNotFound`] if the
    /// shard is not held.
    fn has_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
    ) -> Result<bool, StoreError>;

    /// Deletes the metadata and the slivers of a blob in every shard held, atomically. The
    /// blob info is kept (it is ledger state). Deleting absent data is not an error.
    fn delete_blob_data(&self, blob_id: &BlobId) -> Result<(), StoreError>;

    /// What the node knows about a blob from ledger events.
    fn get_blob_info(&self, blob_id: &BlobId) -> Result<Option<BlobInfo>, StoreError>;

    /// Atomically stores updated blob infos (replacing the old ones) together with the new
    /// ledger event cursor: after a crash either all of them and the cursor are stored, or none.
    /// If a blob appears more than once, the last info wins.
    fn apply_events(&self, infos: &[(BlobId, BlobInfo)], cursor: u64) -> Result<(), StoreError>;

    /// The ledger event cursor last stored by [`NodeStore::apply_events`]; 0 if none.
    fn event_cursor(&self) -> Result<u64, StoreError>;

    /// Blob infos in blob-ID order, starting after `after` (exclusive), at most `limit` (for
    /// recovery scans and garbage collection). Page by passing the last ID returned.
    fn blob_infos(
        &self,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, BlobInfo)>, StoreError>;

    /// IDs of the blobs with a sliver in (shard, axis), in blob-ID order, starting at `from`
    /// (inclusive), at most `limit` (for shard sync and scans).
    fn sliver_ids(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        from: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<BlobId>, StoreError>;

    /// Where the migration of (`shard`, `axis`) into this node stopped, if one was recorded.
    fn migration_cursor(
        &self,
        shard: ShardIndex,
        axis: SliverType,
    ) -> Result<Option<MigrationCursor>, StoreError>;

    /// Records how far the migration of (`shard`, `axis`) got. Written after the slivers it
    /// covers are stored, so a crash in between only repeats a batch. [`Self::drop_shard`]
    /// removes the shard's cursors.
    fn set_migration_cursor(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        cursor: &MigrationCursor,
    ) -> Result<(), StoreError>;

    /// Makes everything written so far durable (fsync), whatever the durability setting.
    fn persist(&self) -> Result<(), StoreError>;
}
