//! [`NodeStore`] on fjall 3, a Rust-native LSM-tree engine (see [`FjallStore`]).

use std::collections::{BTreeSet, HashSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use fjall::{
    AbstractTree, CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions,
    OwnedWriteBatch, PersistMode,
};
use floe_core::{BlobId, BlobMetadata, ShardIndex, SliverData, SliverType};

use crate::blob_info::BlobInfo;
use crate::codec::{self, BLOB_INFO, CURSOR_KEY, META, NODE_STATE, SLIVERS};
use crate::error::StoreError;
use crate::format;
use crate::segments::Segments;
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
    /// A batch of slivers holding at least this many symbol bytes is written once, to a
    /// segment file of its own, and the engine keeps only where each sliver is; smaller
    /// writes go through the engine. Default: 256 KiB (a node's share of a blob of about
    /// 600 KiB and more at 1000 shards).
    pub segment_min_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Sync,
            cache_size: 64 * 1024 * 1024,
            memtable_budget: 32 * 1024 * 1024,
            segment_min_bytes: 256 * 1024,
        }
    }
}

/// The smallest memtable budget accepted (smaller values are raised to it).
pub const MIN_MEMTABLE_BUDGET: u64 = 1024 * 1024;
/// Journal files (fjall starts a new one every 64 MB) kept before every keyspace with unflushed
/// writes is flushed, so that the oldest journal can be deleted: about 128 MB of journal.
const MAX_JOURNALS: usize = 2;
/// Past this size an active memtable is flushed whatever the budget, far below the limit
/// (`MEMTABLE_LIMIT`) at which fjall would ask its worker to rotate it.
const MAX_MEMTABLE_BYTES: u64 = 32 * 1024 * 1024;
/// fjall's own triggers (a memtable over its limit, journals over their limit) are set out of
/// reach: this store flushes by itself, from its writers (see [`FjallStore::open`]).
const MEMTABLE_LIMIT: u64 = 1 << 40;
const JOURNALING_LIMIT: u64 = 1 << 50;
/// fjall background threads: one, which flushes and compacts (see [`FjallStore::open`]).
const WORKER_THREADS: usize = 1;

/// The persistent node store on fjall 3, a Rust-native LSM-tree engine.
///
/// One fjall `Database` under `<dir>/db` with the keyspaces listed in the crate docs. The
/// `slivers` keyspace and `meta` use key-value separation: values of 1 KiB and more go to blob
/// files and only a pointer stays in the tree, so compaction does not rewrite sliver bytes.
/// Neither blob files nor the journal are compressed.
///
/// All slivers share one keyspace, keyed by shard, axis and blob ID. Format 1 had a keyspace
/// per shard and axis: with 200 of them per node, a memtable budget spread over them flushed
/// about one small table and blob file per keyspace per 64 MiB PUT, and creating those files
/// (four per flush with the version files) was a large part of the nodes' CPU. A format-1
/// store is upgraded when opened (see `upgrade.rs`).
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
/// A batch of slivers of at least [`StoreOptions::segment_min_bytes`] is first written to a
/// new segment file (fsynced with its directory under `Sync`; by `persist` under `Buffered`),
/// and the batch commits only the slivers' locations: each byte is written once, and no
/// memtable holds it (see `segments.rs` and `located.rs`).
///
/// # Shards
///
/// A record `shard/<index>` in `node-state` says that a shard is held; its slivers are the keys
/// with its prefix in `slivers`. `drop_shard` replaces the record by a marker
/// `dropping/<index>` in one write, then deletes the shard's slivers and the marker. Opening
/// the store finishes the deletions of every marker, so a `drop_shard` cut short by a crash
/// completes. `create_shard` deletes whatever slivers the shard still has before it writes
/// the record, so a shard is always created empty.
pub struct FjallStore {
    dir: PathBuf,
    pub(crate) db: Database,
    meta: Keyspace,
    blob_info: Keyspace,
    pub(crate) node_state: Keyspace,
    pub(crate) slivers: Keyspace,
    /// The shards held. Held for reading by every sliver write, so a shard is not dropped
    /// under a writer.
    shards: RwLock<BTreeSet<ShardIndex>>,
    /// Held while the slivers of a dropped shard are deleted, and while a shard is created, so
    /// a deletion never runs once the shard is held again.
    purging: Mutex<()>,
    persist_mode: PersistMode,
    memtable_budget: u64,
    /// Held by the one writer that flushes memtables over the budget; others go on.
    flushing: Mutex<()>,
    /// The segment files holding the slivers of large batches.
    pub(crate) segments: Segments,
    /// Held by every change of the `slivers` keyspace from reading the values it replaces
    /// until its batch is committed, so segment records count exactly (see `located.rs`).
    pub(crate) reclaim: Mutex<()>,
    pub(crate) segment_min_bytes: u64,
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
pub(crate) fn blob_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default()
        .max_memtable_size(MEMTABLE_LIMIT)
        .with_kv_separation(Some(
            KvSeparationOptions::default().compression(CompressionType::None),
        ))
}

/// Options of the small keyspaces (blob infos, node state).
fn small_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_LIMIT)
}

impl FjallStore {
    /// Opens the store in `dir`, creating it if the directory is empty or missing.
    ///
    /// Fails with [`StoreError::UnsupportedVersion`] if `dir` was written by a newer layout,
    /// and with [`StoreError::Locked`] if another open store holds it.
    ///
    /// # One background worker
    ///
    /// fjall 3.1.13 with two or more workers lets its first worker hand every compaction request
    /// back to the queue and take it again at once: while another worker is busy (a flush, a
    /// compaction), that worker spins. Profiled over 64 MiB PUTs on ten nodes, the spin was
    /// about a third of the nodes' CPU. With one worker nothing spins, but that worker must
    /// never block on the queue it alone reads: it does so only when asked by fjall itself to
    /// rotate a memtable (a memtable or the journals over fjall's limits) while the queue is
    /// full. Those limits are set out of reach, and the store rotates memtables itself, from
    /// its writers ([`Self::enforce_memtable_budget`]), where waiting for the queue is
    /// ordinary back-pressure.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let version = format::check_or_init(dir)?;
        let db = Database::builder(dir.join(format::ENGINE_DIR))
            .cache_size(options.cache_size)
            // Journal entries are mostly slivers, as incompressible as above.
            .journal_compression(CompressionType::None)
            .worker_threads(WORKER_THREADS)
            .max_journaling_size(JOURNALING_LIMIT)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => StoreError::Locked { dir: dir.into() },
                other => other.into(),
            })?;
        let meta = db.keyspace(META, blob_options)?;
        let blob_info = db.keyspace(BLOB_INFO, small_options)?;
        let node_state = db.keyspace(NODE_STATE, small_options)?;
        let slivers = db.keyspace(SLIVERS, blob_options)?;
        let shards = Self::recorded_shards(&node_state)?;
        let segments = Segments::open(
            dir,
            &Self::recorded_segments(&node_state)?,
            options.durability == Durability::Sync,
        )?;
        let store = Self {
            dir: dir.into(),
            db,
            meta,
            blob_info,
            node_state,
            slivers,
            shards: RwLock::new(shards),
            purging: Mutex::new(()),
            persist_mode: match options.durability {
                Durability::Sync => PersistMode::SyncAll,
                Durability::Buffered => PersistMode::Buffer,
            },
            memtable_budget: options.memtable_budget.max(MIN_MEMTABLE_BUDGET),
            flushing: Mutex::new(()),
            segments,
            reclaim: Mutex::new(()),
            segment_min_bytes: options.segment_min_bytes,
        };
        if version < 2 {
            store.upgrade_from_v1()?;
        }
        if version < format::STORE_FORMAT_VERSION {
            // Format 3 only adds segments: a format-2 store is one without any.
            format::write_record(dir, format::STORE_FORMAT_VERSION)?;
        }
        store.finish_drops()?;
        Ok(store)
    }

    /// Bytes held in write buffers (active and sealed memtables not yet flushed).
    pub fn write_buffer_bytes(&self) -> u64 {
        self.db.write_buffer_size()
    }

    /// Keeps the write buffers and the journal bounded. The writer that finds them over seals
    /// memtables and hands them to fjall's worker (the largest first, which writes few, large
    /// files):
    /// * write buffers over the budget: until the active memtables left hold at most a
    ///   quarter of the budget;
    /// * an active memtable over `MAX_MEMTABLE_BYTES`: that one;
    /// * more than `MAX_JOURNALS` journals: every keyspace with writes and nothing sealed yet,
    ///   so that the oldest journal can be deleted once they are flushed.
    pub(crate) fn enforce_memtable_budget(&self) -> Result<(), StoreError> {
        let buffered = self.db.write_buffer_size();
        let too_many_journals = self.db.journal_count() > MAX_JOURNALS;
        if buffered <= self.memtable_budget.min(MAX_MEMTABLE_BYTES) && !too_many_journals {
            return Ok(());
        }
        let Ok(_guard) = self.flushing.try_lock() else {
            return Ok(());
        };
        let mut spaces: Vec<(u64, &Keyspace)> =
            [&self.slivers, &self.meta, &self.blob_info, &self.node_state]
                .into_iter()
                .map(|k| (k.tree.active_memtable().size(), k))
                .filter(|(size, _)| *size > 0)
                .collect();
        spaces.sort_unstable_by_key(|(size, _)| std::cmp::Reverse(*size));
        let over_budget = buffered > self.memtable_budget;
        let mut active: u64 = spaces.iter().map(|(size, _)| size).sum();
        for (size, keyspace) in spaces {
            let shrink = over_budget && active > self.memtable_budget / 4;
            let release_journal = too_many_journals && keyspace.tree.sealed_memtable_count() == 0;
            if shrink || release_journal || size > MAX_MEMTABLE_BYTES {
                keyspace.rotate_memtable()?;
                active -= size;
            } else if !too_many_journals {
                // Sorted by size: no later keyspace can qualify either.
                break;
            }
        }
        Ok(())
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Total bytes on disk (journal, trees, blob files and segments).
    pub fn disk_space(&self) -> Result<u64, StoreError> {
        Ok(self.db.disk_space()? + self.segments.disk_space()?)
    }

    /// The shards that have a record.
    fn recorded_shards(node_state: &Keyspace) -> Result<BTreeSet<ShardIndex>, StoreError> {
        let mut shards = BTreeSet::new();
        for guard in node_state.prefix(codec::SHARD_RECORD_PREFIX) {
            let (key, value) = guard.into_inner()?;
            let shard = codec::parse_shard_record_key(&key)?;
            codec::decode_shard_record(shard, &value)?;
            shards.insert(shard);
        }
        Ok(shards)
    }

    /// Completes every deletion a `drop_shard` began (one per `dropping/` marker).
    fn finish_drops(&self) -> Result<(), StoreError> {
        let markers = self
            .node_state
            .prefix(codec::DROPPING_PREFIX)
            .map(|guard| codec::parse_dropping_key(&guard.key()?))
            .collect::<Result<Vec<_>, _>>()?;
        let _purging = self.purging.lock().unwrap_or_else(|e| e.into_inner());
        for shard in markers {
            if !self.shards_read().contains(&shard) {
                self.purge(shard)?;
            }
        }
        Ok(())
    }

    /// Deletes every sliver of `shard`, then its `dropping/` marker if any. The caller holds
    /// `purging` and has made sure the shard is not held.
    fn purge(&self, shard: ShardIndex) -> Result<(), StoreError> {
        const KEYS_PER_BATCH: usize = 4096;
        loop {
            let keys = self
                .slivers
                .prefix(codec::shard_prefix(shard))
                .take(KEYS_PER_BATCH)
                .map(|guard| guard.key())
                .collect::<Result<Vec<_>, _>>()?;
            if keys.is_empty() {
                break;
            }
            self.remove_slivers(keys, |_| {})?;
        }
        if self.node_state.contains_key(codec::dropping_key(shard))? {
            let mut batch = self.db.batch();
            batch.remove(&self.node_state, codec::dropping_key(shard));
            self.commit(batch)?;
        }
        Ok(())
    }

    pub(crate) fn shards_read(&self) -> RwLockReadGuard<'_, BTreeSet<ShardIndex>> {
        self.shards.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails with [`StoreError::ShardNotFound`] unless `shard` is held.
    fn check_held(&self, shard: ShardIndex) -> Result<(), StoreError> {
        if self.shards_read().contains(&shard) {
            Ok(())
        } else {
            Err(StoreError::ShardNotFound(shard))
        }
    }

    pub(crate) fn commit(&self, batch: OwnedWriteBatch) -> Result<(), StoreError> {
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
        self.create_shards(&[shard])
    }

    fn create_shards(&self, new: &[ShardIndex]) -> Result<(), StoreError> {
        let _purging = self.purging.lock().unwrap_or_else(|e| e.into_inner());
        let new: BTreeSet<ShardIndex> = {
            let shards = self.shards_read();
            new.iter()
                .filter(|s| !shards.contains(s))
                .copied()
                .collect()
        };
        if new.is_empty() {
            return Ok(());
        }
        // A shard is created empty, whatever an earlier drop left.
        for &shard in &new {
            self.purge(shard)?;
        }
        let mut batch = self.db.batch();
        for &shard in &new {
            batch.insert(
                &self.node_state,
                codec::shard_record_key(shard),
                codec::encode_shard_record()?,
            );
        }
        // One durable write records every new shard.
        self.commit(batch)?;
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        shards.extend(new);
        Ok(())
    }

    fn shards(&self) -> Result<Vec<ShardIndex>, StoreError> {
        Ok(self.shards_read().iter().copied().collect())
    }

    fn drop_shard(&self, shard: ShardIndex) -> Result<(), StoreError> {
        {
            let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
            if !shards.contains(&shard) {
                return Ok(());
            }
            let mut batch = self.db.batch();
            batch.remove(&self.node_state, codec::shard_record_key(shard));
            for axis in [SliverType::Primary, SliverType::Secondary] {
                batch.remove(&self.node_state, codec::migration_key(shard, axis));
            }
            batch.insert(&self.node_state, codec::dropping_key(shard), []);
            self.commit(batch)?;
            shards.remove(&shard);
        }
        // If this fails (or the process dies first), the next open or create finishes it.
        let _purging = self.purging.lock().unwrap_or_else(|e| e.into_inner());
        if self.shards_read().contains(&shard) {
            return Ok(()); // created again meanwhile, and emptied by that
        }
        self.purge(shard)
    }

    fn put_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
        sliver: &SliverData,
    ) -> Result<(), StoreError> {
        // Hold the shard set while committing so the shard cannot be dropped meanwhile.
        let shards = self.shards_read();
        if !shards.contains(&shard) {
            return Err(StoreError::ShardNotFound(shard));
        }
        self.write_slivers(&[(shard, axis, *blob_id, sliver)])?;
        drop(shards);
        self.enforce_memtable_budget()
    }

    fn put_slivers(
        &self,
        items: &[(ShardIndex, SliverType, BlobId, SliverData)],
    ) -> Result<(), StoreError> {
        let shards = self.shards_read();
        if let Some((missing, ..)) = items.iter().find(|(s, ..)| !shards.contains(s)) {
            return Err(StoreError::ShardNotFound(*missing));
        }
        let items: Vec<_> = items
            .iter()
            .map(|(shard, axis, blob_id, sliver)| (*shard, *axis, *blob_id, sliver))
            .collect();
        self.write_slivers(&items)?;
        drop(shards);
        self.enforce_memtable_budget()
    }

    fn get_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
    ) -> Result<Option<SliverData>, StoreError> {
        self.check_held(shard)?;
        self.read_sliver(shard, axis, blob_id)
    }

    fn has_sliver(
        &self,
        shard: ShardIndex,
        axis: SliverType,
        blob_id: &BlobId,
    ) -> Result<bool, StoreError> {
        self.check_held(shard)?;
        Ok(self
            .slivers
            .contains_key(codec::sliver_key(shard, axis, blob_id))?)
    }

    fn delete_blob_data(&self, blob_id: &BlobId) -> Result<(), StoreError> {
        let shards = self.shards_read();
        let keys = shards.iter().flat_map(|&shard| {
            [SliverType::Primary, SliverType::Secondary]
                .map(|axis| codec::sliver_key(shard, axis, blob_id))
        });
        self.remove_slivers(keys, |batch| {
            batch.remove(&self.meta, codec::blob_key(blob_id))
        })
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
        self.check_held(shard)?;
        let (first, end) = codec::axis_range(shard, axis);
        let start = match from {
            Some(blob_id) => codec::sliver_key(shard, axis, blob_id).to_vec(),
            None => first.to_vec(),
        };
        self.slivers
            .range::<&[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
            .take(limit)
            .map(|guard| codec::parse_sliver_key(&guard.key()?))
            .collect()
    }

    fn persist(&self) -> Result<(), StoreError> {
        self.segments.persist()?;
        Ok(self.db.persist(PersistMode::SyncAll)?)
    }
}
