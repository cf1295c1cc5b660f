//! Upgrade of a format-1 store, where every (shard, axis) had a keyspace of its own, to
//! format 2, where all slivers share the `slivers` keyspace.
//!
//! Run by [`FjallStore::open`] before anything else uses the store, and before the
//! `store-format` record is rewritten: the slivers of each held shard are copied (durably) into
//! `slivers`, then the old keyspace is emptied; keyspaces of shards without a record are
//! emptied as format 1 did on open. A crash part-way leaves the record at 1 and the next open
//! repeats the copy of whatever is still in old keyspaces (the copy is idempotent). The old
//! keyspaces stay, empty: deleting keyspaces is what fjall 3.1.13 mishandles (see
//! `FjallStore`'s docs).

use fjall::PersistMode;

use crate::codec;
use crate::error::StoreError;
use crate::fjall_store::{FjallStore, blob_options};

/// Bytes of slivers copied per durable write.
const BATCH_BYTES: usize = 8 << 20;

impl FjallStore {
    pub(crate) fn upgrade_from_v1(&self) -> Result<(), StoreError> {
        let held = self.shards_read().clone();
        for name in self.db.list_keyspace_names() {
            let Some((shard, axis)) = codec::parse_shard_keyspace(&name) else {
                continue;
            };
            let old = self.db.keyspace(&name, blob_options)?;
            if held.contains(&shard) {
                let mut batch = self.db.batch();
                let mut bytes = 0;
                for guard in old.iter() {
                    let (key, value) = guard.into_inner()?;
                    let blob_id = codec::parse_blob_key(&name, &key)?;
                    bytes += value.len();
                    batch.insert(
                        &self.slivers,
                        codec::sliver_key(shard, axis, &blob_id),
                        value,
                    );
                    if bytes >= BATCH_BYTES {
                        let full = std::mem::replace(&mut batch, self.db.batch());
                        full.durability(Some(PersistMode::SyncAll)).commit()?;
                        self.enforce_memtable_budget()?;
                        bytes = 0;
                    }
                }
                batch.durability(Some(PersistMode::SyncAll)).commit()?;
                self.enforce_memtable_budget()?;
            }
            if !old.is_empty()? {
                old.clear()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use fjall::{Database, KeyspaceCreateOptions};
    use floe_core::{BlobId, ShardIndex, SliverData, SliverIndex, SliverType};

    use crate::fjall_store::blob_options;
    use crate::store::NodeStore;
    use crate::{FjallStore, StoreOptions, codec, format};

    fn sliver(seed: u8, len: usize) -> SliverData {
        SliverData {
            symbols: (0..len).map(|i| seed.wrapping_add(i as u8)).collect(),
            symbol_size: 2,
            index: SliverIndex(u16::from(seed)),
        }
    }

    /// Lays out a format-1 store: shards 1 and 3 held, shard 2 left over without a record.
    fn write_v1(dir: &Path, slivers: &[(u16, SliverType, BlobId, SliverData)]) {
        std::fs::create_dir_all(dir).unwrap();
        format::write_record(dir, 1).unwrap();
        let db = Database::builder(dir.join(format::ENGINE_DIR))
            .open()
            .unwrap();
        let state = db
            .keyspace(codec::NODE_STATE, KeyspaceCreateOptions::default)
            .unwrap();
        for shard in [1, 3] {
            state
                .insert(
                    codec::shard_record_key(ShardIndex(shard)),
                    codec::encode_shard_record().unwrap(),
                )
                .unwrap();
        }
        for (shard, axis, blob_id, data) in slivers {
            db.keyspace(
                &codec::shard_keyspace(ShardIndex(*shard), *axis),
                blob_options,
            )
            .unwrap()
            .insert(
                codec::blob_key(blob_id),
                codec::encode_sliver(data).unwrap(),
            )
            .unwrap();
        }
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }

    #[test]
    fn a_format_1_store_is_upgraded_on_open_and_keeps_every_held_sliver() {
        let (p, s) = (SliverType::Primary, SliverType::Secondary);
        let id = |n: u8| BlobId([n; 32]);
        let planted = vec![
            (1, p, id(3), sliver(1, 3000)),
            (1, p, id(1), sliver(2, 10)),
            (1, s, id(1), sliver(3, 2000)),
            (2, p, id(1), sliver(4, 100)),
            (3, s, id(9), sliver(5, 5000)),
        ];
        let tmp = tempfile::tempdir().unwrap();
        write_v1(tmp.path(), &planted);

        let store = FjallStore::open(tmp.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.shards().unwrap(), vec![ShardIndex(1), ShardIndex(3)]);
        for (shard, axis, blob_id, data) in &planted {
            let found = store.get_sliver(ShardIndex(*shard), *axis, blob_id);
            if *shard == 2 {
                assert!(found.is_err(), "shard 2 has no record");
            } else {
                assert_eq!(found.unwrap().as_ref(), Some(data), "{shard} {axis:?}");
            }
        }
        assert_eq!(
            store.sliver_ids(ShardIndex(1), p, None, 10).unwrap(),
            vec![id(1), id(3)]
        );
        drop(store);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(format::FORMAT_FILE)).unwrap(),
            "floe-node-storage\nformat-version 3\n"
        );
        // The old keyspaces are empty, and a reopen (no upgrade now) sees the same slivers.
        let store = FjallStore::open(tmp.path(), StoreOptions::default()).unwrap();
        for name in store.db.list_keyspace_names() {
            if codec::parse_shard_keyspace(&name).is_some() {
                let old = store
                    .db
                    .keyspace(&name, KeyspaceCreateOptions::default)
                    .unwrap();
                assert!(old.is_empty().unwrap(), "{name}");
            }
        }
        assert_eq!(
            store.get_sliver(ShardIndex(3), s, &id(9)).unwrap(),
            Some(sliver(5, 5000))
        );
        store.create_shard(ShardIndex(2)).unwrap();
        assert!(
            store
                .sliver_ids(ShardIndex(2), p, None, 10)
                .unwrap()
                .is_empty()
        );
    }
}
