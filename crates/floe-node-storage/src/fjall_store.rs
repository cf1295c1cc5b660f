//! [`NodeStore`] on fjall 3, a Rust-native LSM-tree engine (see [`FjallStore`]).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use fjall::{
    AbstractTree, CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions,
    OwnedWriteBatch, PersistMode,
};
use floe_core::{BlobId, BlobMetadata, ShardIndex, SliverData, SliverType};

use crate::blob_info::BlobInfo;
use crate::codec::{self, BLOB_INFO, CURSOR_KEY, META, NODE_STATE};
use crate::error::StoreError;
use crate::format;
use crate::store::{MigrationCursor, NodeStore};

/// When a write is durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every write is fsynced before it returns.
    #[default]
    Sync,
    /// Writes reach the OS before they return (they survive a process crash) and are fsynced by
    /// [`NodeStore::persist`] (or when the engine rotates its journal, or on close).
    Buffered,
}

/// Options for [`FjallStore::open`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// When writes are durable. Default: [`Durability::Sync`].
    pub durability: Durability,
    /// Engine block and blob cache in bytes. Default: 64 MiB.
    pub cache_size: u64,
    /// Bytes the write buffers (memtables) of all keyspaces may hold together before the
    /// largest are flushed to disk. Default: 32 MiB. fjall bounds only each keyspace's
    /// memtable (64 MiB) and the journal (512 MiB), so a node with 200 shard keyspaces would
    /// otherwise keep up to the journal's size of recent slivers in memory.
    pub memtable_budget: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Sync,
            cache_size: 64 * 1024 * 1024,
            memtable_budget: 32 * 1024 * 1024,
        }
    }
}

/// The smallest memtable budget accepted (smaller values are raised to it).
pub const MIN_MEMTABLE_BUDGET: u64 = 1024 * 1024;
/// Journals kept on disk before the keyspaces holding the oldest are flushed (fjall's minimum).
const MAX_JOURNALING_BYTES: u64 = 64 * 1024 * 1024;

/// The two keyspaces of one shard.
#[derive(Clone)]
struct ShardSpaces {
    primary: Keyspace,
    secondary: Keyspace,
}

impl ShardSpaces {
    fn get(&self, axis: SliverType) -> &Keyspace {
        match axis {
            SliverType::Primary => &self.primary,
            SliverType::Secondary => &self.secondary,
        }
    }
}

/// The persistent node store on fjall 3, a Rust-native LSM-tree engine.
///
/// One fjall `Database` under `<dir>/db` with the keyspaces listed in the crate docs. The
/// sliver keyspaces and `meta` use key-value separation: values of 1 KiB and more go to blob
/// files and only a pointer stays in the tree, so compaction does not rewrite sliver bytes.
/// Neither blob files nor the journal are compressed.
///
/// # Durability
///
/// fjall writes every change to a journal before it is applied, and replays the journal on
/// open. Each write of this store is one fjall write batch (atomic across keyspaces) committed
/// with a persist mode:
/// * [`Durability::Sync`]: `PersistMode::SyncAll` (flush + fsync of the journal) inside the
///   commit, so a write that returned survives a process kill and a power loss.
/// * [`Durability::Buffered`]: `PersistMode::Buffer` (flush to the OS), so a write that returned
///   survives a process kill but not an OS crash or power loss until [`NodeStore::persist`].
///
/// # Shards
///
/// A shard is two keyspaces plus a record `shard/<index>` in `node-state`; the record, not the
/// keyspaces, says whether the shard is held. `create_shard` creates (or reuses) the keyspaces,
/// then writes the record; `drop_shard` deletes the record, then clears both keyspaces (an
/// O(1) operation in fjall that releases their files). Opening the store clears the keyspaces
/// of shards without a record, which finishes a `drop_shard` cut short by a crash.
///
/// Keyspaces are cleared, never deleted: in fjall 3.1.13 a keyspace created after two or
/// more keyspaces were deleted and the database was reopened vanishes at the next reopen
/// (apparently its reused keyspace ID is still covered by the old deletion markers). So a
/// store keeps an empty pair of keyspaces for every shard it ever held.
pub struct FjallStore {
    dir: PathBuf,
    db: Database,
    meta: Keyspace,
    blob_info: Keyspace,
    node_state: Keyspace,
    /// Held for reading by every sliver write, so a shard is not dropped under a writer.
    shards: RwLock<BTreeMap<ShardIndex, ShardSpaces>>,
    persist_mode: PersistMode,
    memtable_budget: u64,
    /// Held by the one writer that flushes memtables over the budget; others go on.
    flushing: Mutex<()>,
}

impl std::fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStore")
            .field("dir", &self.dir)
            .field("persist_mode", &self.persist_mode)
            .finish_non_exhaustive()
    }
}

/// Options of the keyspaces with large values (slivers, metadata): key-value separation
/// without compression. Sliver bytes are erasure-coded user data, often already compressed or
/// encrypted, and metadata is hashes; LZ4 cost about 40% of bulk write throughput here.
fn blob_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default().with_kv_separation(Some(
        KvSeparationOptions::default().compression(CompressionType::None),
    ))
}

impl FjallStore {
    /// Opens the store in `dir`, creating it if the directory is empty or missing.
    ///
    /// Fails with [`StoreError::UnsupportedVersion`] if `dir` was written by a newer layout,
    /// and with [`StoreError::Locked`] if another open store holds it.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        format::check_or_init(dir)?;
        let db = Database::builder(dir.join(format::ENGINE_DIR))
            .cache_size(options.cache_size)
            // Journal entries are mostly slivers, as incompressible as above.
            .journal_compression(CompressionType::None)
            .max_journaling_size(MAX_JOURNALING_BYTES)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => StoreError::Locked { dir: dir.into() },
                other => other.into(),
            })?;
        let meta = db.keyspace(META, blob_options)?;
        let blob_info = db.keyspace(BLOB_INFO, KeyspaceCreateOptions::default)?;
        let node_state = db.keyspace(NODE_STATE, KeyspaceCreateOptions::default)?;
        let shards = Self::recover_shards(&db, &node_state)?;
        Ok(Self {
            dir: dir.into(),
            db,
            meta,
            blob_info,
            node_state,
            shards: RwLock::new(shards),
            persist_mode: match options.durability {
                Durability::Sync => PersistMode::SyncAll,
                Durability::Buffered => PersistMode::Buffer,
            },
            memtable_budget: options.memtable_budget.max(MIN_MEMTABLE_BUDGET),
            flushing: Mutex::new(()),
        })
    }

    /// Bytes held in write buffers (active and sealed memtables not yet flushed).
    pub fn write_buffer_bytes(&self) -> u64 {
        self.db.write_buffer_size()
    }

    /// Keeps the write buffers within the budget: once they hold more, the largest active
    /// memtables are sealed and handed to fjall's flush workers until those left hold at most
    /// a quarter of the budget. Flushing the largest first writes few, large files.
    fn enforce_memtable_budget(&self) -> Result<(), StoreError> {
        if self.db.write_buffer_size() <= self.memtable_budget {
            return Ok(());
        }
        let Ok(_guard) = self.flushing.try_lock() else {
            return Ok(());
        };
        let mut spaces: Vec<(u64, Keyspace)> = {
            let shards = self.shards_read();
            shards
                .values()
                .flat_map(|s| [&s.primary, &s.secondary])
                .chain([&self.meta, &self.blob_info, &self.node_state])
                .map(|k| (k.tree.active_memtable().size(), k.clone()))
                .filter(|(size, _)| *size > 0)
                .collect()
        };
        spaces.sort_unstable_by_key(|(size, _)| std::cmp::Reverse(*size));
        let mut active: u64 = spaces.iter().map(|(size, _)| size).sum();
        for (size, keyspace) in spaces {
            if active <= self.memtable_budget / 4 {
                break;
            }
            keyspace.rotate_memtable()?;
            active -= size;
        }
        Ok(())
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Total bytes on disk (journal, trees and blob files).
    pub fn disk_space(&self) -> Result<u64, StoreError> {
        Ok(self.db.disk_space()?)
    }

    /// Opens the shards that have a record, and empties the keyspaces of any other shard.
    fn recover_shards(
        db: &Database,
        node_state: &Keyspace,
    ) -> Result<BTreeMap<ShardIndex, ShardSpaces>, StoreError> {
        let mut shards = BTreeMap::new();
        for guard in node_state.prefix(codec::SHARD_RECORD_PREFIX) {
            let (key, value) = guard.into_inner()?;
            let shard = codec::parse_shard_record_key(&key)?;
            codec::decode_shard_record(shard, &value)?;
            shards.insert(shard, Self::open_shard(db, shard)?);
        }
        for name in db.list_keyspace_names() {
            if let Some((shard, _)) = codec::parse_shard_keyspace(&name)
                && !shards.contains_key(&shard)
            {
                let keyspace = db.keyspace(&name, blob_options)?;
                if !keyspace.is_empty()? {
                    keyspace.clear()?;
                }
            }
        }
        Ok(shards)
    }

    /// Opens (creating if needed) both keyspaces of a shard.
    fn open_shard(db: &Database, shard: ShardIndex) -> Result<ShardSpaces, StoreError> {
        let open = |axis| db.keyspace(&codec::shard_keyspace(shard, axis), blob_options);
        Ok(ShardSpaces {
            primary: open(SliverType::Primary)?,
            secondary: open(SliverType::Secondary)?,
        })
    }

    fn shards_read(&self) -> RwLockReadGuard<'_, BTreeMap<ShardIndex, ShardSpaces>> {
        self.shards.read().unwrap_or_else(|e| e.into_inner())
    }

    fn keyspace(&self, shard: ShardIndex, axis: SliverType) -> Result<Keyspace, StoreError> {
        self.shards_read()
            .get(&shard)
            .map(|s| s.get(axis).clone())
            .ok_or(StoreError::ShardNotFound(shard))
    }

    fn commit(&self, batch: OwnedWriteBatch) -> Result<(), StoreError> {
        batch.durability(Some(self.persist_mode)).commit()?;
        Ok(())
    }
}

impl NodeStore for FjallStore {
    fn put_metadata(&self, blob_id: &BlobId, metadata: &BlobMetadata) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        batch.insert(
            &self.meta,
            codec::blob_key(blob_id),
            codec::encode_metadata(metadata)?,
        );
        self.commit(batch)?;
        self.enforce_memtable_budget()
    }

    fn get_metadata(&self, blob_id: &BlobId) -> Result<Option<BlobMetadata>, StoreError> {
        self.meta
            .get(codec::blob_key(blob_id))?
            .map(|v| codec::decode_metadata(blob_id, &v))
            .transpose()
    }

    fn has_metadata(&self, blob_id: &BlobId) -> Result<bool, StoreError> {
        Ok(self.meta.contains_key(codec::blob_key(blob_id))?)
    }

    fn create_shard(&self, shard: ShardIndex) -> Result<(), StoreError> {
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        if let Entry::Vacant(slot) = shards.entry(shard) {
            let spaces = Self::open_shard(&self.db, shard)?;
            // Keyspaces of a dropped shard were emptied, unless a crash interrupted that.
            for keyspace in [&spaces.primary, &spaces.secondary] {
                if !keyspace.is_empty()? {
                    keyspace.clear()?;
                }
            }
            let mut batch = self.db.batch();
            batch.insert(
                &self.node_state,
                codec::shard_record_key(shard),
                codec::encode_shard_record()?,
            );
            self.commit(batch)?;
            slot.insert(spaces);
        }
        Ok(())
    }

    fn create_shards(&self, new: &[ShardIndex]) -> Result<(), StoreError> {
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        let mut opened = Vec::new();
        let mut batch = self.db.batch();
        for &shard in new {
            if shards.contains_key(&shard) || opened.iter().any(|(s, _)| *s == shard) {
                continue;
            }
            let spaces = Self::open_shard(&self.db, shard)?;
            for keyspace in [&spaces.primary, &spaces.secondary] {
                if !keyspace.is_empty()? {
                    keyspace.clear()?;
                }
            }
            batch.insert(
                &self.node_state,
                codec::shard_record_key(shard),
                codec::encode_shard_record()?,
            );
            opened.push((shard, spaces));
        }
        if opened.is_empty() {
            return Ok(());
        }
        // One durable write records every new shard.
        self.commit(batch)?;
        shards.extend(opened);
        Ok(())
    }

    fn shards(&self) -> Result<Vec<ShardIndex>, StoreError> {
        Ok(self.shards_read().keys().copied().collect())
    }

    fn drop_shard(&self, shard: ShardIndex) -> Result<(), StoreError> {
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        if let Some(spaces) = shards.remove(&shard) {
            let mut batch = self.db.batch();
            batch.remove(&self.node_state, codec::shard_record_key(shard));
            for axis in [SliverType::Primary, SliverType::Secondary] {
                batch.remove(&self.node_state, codec::migration_key(shard, axis));
            }
            if let Err(e) = self.commit(batch) {
                shards.insert(shard, spaces);
                return Err(e);
            }
            // If this fails (or the process dies first), the next open clears them.
            spaces.primary.clear()?;
            spaces.secondary.clear()?;
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
        let value = codec::encode_sliver(sliver)?;
        // Hold the shard map while committing so the keyspace cannot be dropped meanwhile.
        let shards = self.shards_read();
        let keyspace = shards
            .get(&shard)
            .ok_or(StoreError::ShardNotFound(shard))?
            .get(axis);
        let mut batch = self.db.batch();
        batch.insert(keyspace, codec::blob_key(blob_id), value);
        self.commit(batch)?;
        drop(shards);
        self.enforce_memtable_budget()
    }

    fn put_slivers(
        &self,
        items: &[(ShardIndex, SliverType, BlobId, SliverData)],
    ) -> Result<(), StoreError> {
        let shards = self.shards_read();
        if let Some((missing, ..)) = items.iter().find(|(s, ..)| !shards.contains_key(s)) {
            return Err(StoreError::ShardNotFound(*missing));
        }
        // A key given twice keeps its last value; the batch holds each key once, so nothing
        // depends on how the engine orders equal keys within one batch.
        let mut seen = HashSet::new();
        let mut batch = OwnedWriteBatch::with_capacity(self.db.clone(), items.len());
        for (shard, axis, blob_id, sliver) in items.iter().rev() {
            if seen.insert((*shard, *axis, *blob_id)) {
                let keyspace = shards[shard].get(*axis);
                batch.insert(
                    keyspace,
                    codec::blob_key(blob_id),
                    codec::encode_sliver(sliver)?,
                );
            }
        }
        self.commit(batch)?;
        drop(shards);
        self.enforce_memtable_budget()
    }

    fn get_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
    ) -> Result<Option<SliverData>, StoreError> {
        self.keyspace(shard, axis)?
            .get(codec::blob_key(blob_id))?
            .map(|v| codec::decode_sliver(shard, axis, blob_id, &v))
            .transpose()
    }

    fn has_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
    ) -> Result<bool, StoreError> {
        Ok(self
            .keyspace(shard, axis)?
            .contains_key(codec::blob_key(blob_id))?)
    }

    fn delete_blob_data(&self, blob_id: &BlobId) -> Result<(), StoreError> {
        let key = codec::blob_key(blob_id);
        let shards = self.shards_read();
        let mut batch = self.db.batch();
        batch.remove(&self.meta, key);
        for spaces in shards.values() {
            batch.remove(&spaces.primary, key);
            batch.remove(&spaces.secondary, key);
        }
        self.commit(batch)
    }

    fn get_blob_info(&self, blob_id: &BlobId) -> Result<Option<BlobInfo>, StoreError> {
        self.blob_info
            .get(codec::blob_key(blob_id))?
            .map(|v| codec::decode_blob_info(blob_id, &v))
            .transpose()
    }

    fn apply_events(&self, infos: &[(BlobId, BlobInfo)], cursor: u64) -> Result<(), StoreError> {
        let mut batch = OwnedWriteBatch::with_capacity(self.db.clone(), infos.len() + 1);
        let mut seen = HashSet::new();
        // As in put_slivers: the last info given for a blob wins and is written once.
        for (blob_id, info) in infos.iter().rev().filter(|(id, _)| seen.insert(*id)) {
            batch.insert(
                &self.blob_info,
                codec::blob_key(blob_id),
                codec::encode_blob_info(info)?,
            );
        }
        batch.insert(&self.node_state, CURSOR_KEY, codec::encode_cursor(cursor)?);
        self.commit(batch)
    }

    fn migration_cursor(
        &self,
        shard: ShardIndex,
        axis: SliverType,
    ) -> Result<Option<MigrationCursor>, StoreError> {
        self.node_state
            .get(codec::migration_key(shard, axis))?
            .map(|v| codec::decode_migration(shard, axis, &v))
            .transpose()
    }

    fn set_migration_cursor(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        cursor: &MigrationCursor,
    ) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        batch.insert(
            &self.node_state,
            codec::migration_key(shard, axis),
            codec::encode_migration(cursor)?,
        );
        self.commit(batch)
    }

    fn event_cursor(&self) -> Result<u64, StoreError> {
        match self.node_state.get(CURSOR_KEY)? {
            Some(v) => codec::decode_cursor(&v),
            None => Ok(0),
        }
    }

    fn blob_infos(
        &self,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, BlobInfo)>, StoreError> {
        let start = after.map(codec::blob_key);
        let lower = match &start {
            Some(key) => Bound::Excluded(&key[..]),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for guard in self
            .blob_info
            .range::<&[u8], _>((lower, Bound::Unbounded))
            .take(limit)
        {
            let (key, value) = guard.into_inner()?;
            let blob_id = codec::parse_blob_key(BLOB_INFO, &key)?;
            out.push((blob_id, codec::decode_blob_info(&blob_id, &value)?));
        }
        Ok(out)
    }

    fn sliver_ids(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        from: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<BlobId>, StoreError> {
        let keyspace = self.keyspace(shard, axis)?;
        let start = from.map(codec::blob_key);
        let lower = match &start {
            Some(key) => Bound::Included(&key[..]),
            None => Bound::Unbounded,
        };
        let name = codec::shard_keyspace(shard, axis);
        keyspace
            .range::<&[u8], _>((lower, Bound::Unbounded))
            .take(limit)
            .map(|guard| codec::parse_blob_key(&name, &guard.key()?))
            .collect()
    }

    fn persist(&self) -> Result<(), StoreError> {
        Ok(self.db.persist(PersistMode::SyncAll)?)
    }
}
