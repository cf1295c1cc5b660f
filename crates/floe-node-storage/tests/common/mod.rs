//! Shared test data and the store conformance checks run against every implementation.
#![allow(dead_code)]

use std::collections::BTreeMap;

use floe_core::merkle::Node;
use floe_core::{
    BlobId, BlobMetadata, BlobMetadataWithId, Epoch, ObjectId, ShardIndex, SliverData, SliverIndex,
    SliverPairMetadata, SliverType,
};
use floe_node_storage::{BlobInfo, NodeStore, ObjectInfo, StoreError};

pub const P: SliverType = SliverType::Primary;
pub const S: SliverType = SliverType::Secondary;

/// A blob ID that spreads over the key space (first byte varies fastest with `i`).
pub fn blob(i: u32) -> BlobId {
    let mut b = [0u8; 32];
    let mut x = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555;
    for chunk in b.chunks_mut(8) {
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    BlobId(b)
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A sliver whose content is determined by `seed`.
pub fn sliver(seed: u64, len: usize) -> SliverData {
    SliverData {
        symbols: bytes(seed, len),
        symbol_size: 2,
        index: SliverIndex((seed % 1000) as u16),
    }
}

/// Metadata with `n` pairs of hashes derived from `seed`.
pub fn metadata(seed: u8, n: usize) -> BlobMetadata {
    let hashes = (0..n)
        .map(|i| SliverPairMetadata {
            primary_hash: Node::Digest([seed.wrapping_add(i as u8); 32]),
            secondary_hash: Node::Digest([seed ^ (i as u8); 32]),
        })
        .collect();
    BlobMetadataWithId::new(u64::from(seed) * 1000 + 1, hashes).metadata
}

pub fn object(b: u8) -> ObjectId {
    ObjectId([b; 32])
}

/// A blob info with one registration per entry of `ends`.
pub fn info(ends: &[Epoch], invalid: Option<u64>) -> BlobInfo {
    let objects: BTreeMap<ObjectId, ObjectInfo> = ends
        .iter()
        .enumerate()
        .map(|(i, &end)| {
            (
                object(i as u8),
                ObjectInfo {
                    end_epoch: end,
                    deletable: i % 2 == 1,
                    certified_epoch: (i % 3 != 2).then_some(i as Epoch),
                    deleted: i == 4,
                    registered_event: 10 * i as u64,
                    certified_event: (i % 3 != 2).then_some(10 * i as u64 + 1),
                    registered_tx: floe_core::TxDigest([i as u8; 32]),
                    certified_tx: (i % 3 != 2).then_some(floe_core::TxDigest([i as u8 + 1; 32])),
                },
            )
        })
        .collect();
    BlobInfo {
        objects,
        invalid_event: invalid,
        invalid_tx: invalid.map(|i| floe_core::TxDigest([i as u8; 32])),
    }
}

fn sorted(mut ids: Vec<BlobId>) -> Vec<BlobId> {
    ids.sort();
    ids
}

/// Writes one of every kind of value; [`check_sample`] checks it (also after a reopen).
pub fn write_sample(store: &dyn NodeStore) {
    for s in [3u16, 7] {
        store.create_shard(ShardIndex(s)).unwrap();
    }
    for i in 0..5u32 {
        store
            .put_metadata(&blob(i), &metadata(i as u8, 1 + i as usize))
            .unwrap();
        store
            .put_sliver(
                ShardIndex(3),
                P,
                &blob(i),
                &sliver(u64::from(i), 100 + 5000 * i as usize),
            )
            .unwrap();
        store
            .put_sliver(ShardIndex(7), S, &blob(i), &sliver(u64::from(i) + 50, 2000))
            .unwrap();
    }
    store
        .put_slivers(&[
            (ShardIndex(3), S, blob(0), sliver(90, 70_000)),
            (ShardIndex(7), P, blob(1), sliver(91, 3)),
        ])
        .unwrap();
    store
        .apply_events(
            &[
                (blob(0), info(&[5, 9], None)),
                (blob(1), info(&[3], Some(77))),
            ],
            12,
        )
        .unwrap();
}

pub fn check_sample(store: &dyn NodeStore) {
    assert_eq!(store.shards().unwrap(), vec![ShardIndex(3), ShardIndex(7)]);
    for i in 0..5u32 {
        assert_eq!(
            store.get_metadata(&blob(i)).unwrap(),
            Some(metadata(i as u8, 1 + i as usize))
        );
        assert!(store.has_metadata(&blob(i)).unwrap());
        assert_eq!(
            store.get_sliver(ShardIndex(3), P, &blob(i)).unwrap(),
            Some(sliver(u64::from(i), 100 + 5000 * i as usize))
        );
        assert_eq!(
            store.get_sliver(ShardIndex(7), S, &blob(i)).unwrap(),
            Some(sliver(u64::from(i) + 50, 2000))
        );
    }
    assert_eq!(
        store.get_sliver(ShardIndex(3), S, &blob(0)).unwrap(),
        Some(sliver(90, 70_000))
    );
    assert_eq!(
        store.get_sliver(ShardIndex(7), P, &blob(1)).unwrap(),
        Some(sliver(91, 3))
    );
    assert_eq!(store.get_sliver(ShardIndex(7), P, &blob(2)).unwrap(), None);
    assert!(!store.has_metadata(&blob(99)).unwrap());
    assert_eq!(
        store.get_blob_info(&blob(0)).unwrap(),
        Some(info(&[5, 9], None))
    );
    assert_eq!(
        store.get_blob_info(&blob(1)).unwrap(),
        Some(info(&[3], Some(77)))
    );
    assert_eq!(store.get_blob_info(&blob(2)).unwrap(), None);
    assert_eq!(store.event_cursor().unwrap(), 12);
}

/// Shards are independent; missing shards are typed errors.
pub fn check_shard_isolation(store: &dyn NodeStore) {
    let (a, b, missing) = (ShardIndex(1), ShardIndex(2), ShardIndex(9));
    store.create_shard(a).unwrap();
    store.create_shard(b).unwrap();
    store.create_shard(a).unwrap(); // idempotent
    let x = blob(1);
    store.put_sliver(a, P, &x, &sliver(1, 10)).unwrap();
    store.put_sliver(b, P, &x, &sliver(2, 10)).unwrap();
    assert_eq!(store.get_sliver(a, P, &x).unwrap(), Some(sliver(1, 10)));
    assert_eq!(
        store.get_sliver(a, S, &x).unwrap(),
        None,
        "axes are separate"
    );

    for result in [
        store.put_sliver(missing, P, &x, &sliver(3, 10)),
        store.get_sliver(missing, P, &x).map(|_| ()),
        store.has_sliver(missing, S, &x).map(|_| ()),
        store.sliver_ids(missing, P, None, 10).map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(StoreError::ShardNotFound(s)) if s == missing),
            "{result:?}"
        );
    }
    // A batch touching a missing shard writes nothing.
    let err = store
        .put_slivers(&[(a, S, x, sliver(4, 10)), (missing, P, x, sliver(5, 10))])
        .unwrap_err();
    assert!(matches!(err, StoreError::ShardNotFound(s) if s == missing));
    assert!(!store.has_sliver(a, S, &x).unwrap());

    store.drop_shard(a).unwrap();
    store.drop_shard(a).unwrap(); // idempotent
    assert_eq!(store.shards().unwrap(), vec![b]);
    assert!(matches!(
        store.get_sliver(a, P, &x),
        Err(StoreError::ShardNotFound(_))
    ));
    assert_eq!(store.get_sliver(b, P, &x).unwrap(), Some(sliver(2, 10)));
    // Re-creating a dropped shard gives an empty one.
    store.create_shard(a).unwrap();
    assert_eq!(store.get_sliver(a, P, &x).unwrap(), None);
    assert!(store.sliver_ids(a, P, None, 10).unwrap().is_empty());
}

/// delete_blob_data removes metadata and every shard's slivers of one blob only.
pub fn check_delete_blob_data(store: &dyn NodeStore) {
    let shards: Vec<ShardIndex> = (0..4).map(ShardIndex).collect();
    for &s in &shards {
        store.create_shard(s).unwrap();
    }
    for i in [1u32, 2] {
        store.put_metadata(&blob(i), &metadata(i as u8, 4)).unwrap();
        for &s in &shards {
            for axis in [P, S] {
                store
                    .put_sliver(s, axis, &blob(i), &sliver(u64::from(i), 64))
                    .unwrap();
            }
        }
    }
    store
        .apply_events(&[(blob(1), info(&[1], None))], 3)
        .unwrap();
    store.delete_blob_data(&blob(1)).unwrap();
    store.delete_blob_data(&blob(42)).unwrap(); // absent: fine
    assert!(!store.has_metadata(&blob(1)).unwrap());
    assert!(store.has_metadata(&blob(2)).unwrap());
    for &s in &shards {
        for axis in [P, S] {
            assert!(!store.has_sliver(s, axis, &blob(1)).unwrap());
            assert!(store.has_sliver(s, axis, &blob(2)).unwrap());
            assert_eq!(store.sliver_ids(s, axis, None, 10).unwrap(), vec![blob(2)]);
        }
    }
    assert!(
        store.get_blob_info(&blob(1)).unwrap().is_some(),
        "ledger state stays"
    );
}

/// blob_infos and sliver_ids iterate in blob-ID order and paginate.
pub fn check_iteration(store: &dyn NodeStore) {
    let shard = ShardIndex(5);
    store.create_shard(shard).unwrap();
    let ids: Vec<BlobId> = (0..57).map(blob).collect();
    let infos: Vec<(BlobId, BlobInfo)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, info(&[i as Epoch + 1], None)))
        .collect();
    store.apply_events(&infos, 57).unwrap();
    for id in &ids {
        store.put_sliver(shard, S, id, &sliver(7, 16)).unwrap();
    }
    let expected = sorted(ids.clone());

    // blob_infos: pages of 10 following the last ID.
    let mut seen = Vec::new();
    let mut after: Option<BlobId> = None;
    loop {
        let page = store.blob_infos(after.as_ref(), 10).unwrap();
        assert!(page.len() <= 10);
        if page.is_empty() {
            break;
        }
        for (id, got) in &page {
            let want = &infos.iter().find(|(i, _)| i == id).unwrap().1;
            assert_eq!(got, want);
        }
        after = Some(page.last().unwrap().0);
        seen.extend(page.into_iter().map(|(id, _)| id));
    }
    assert_eq!(seen, expected);
    assert!(store.blob_infos(None, 0).unwrap().is_empty());
    assert_eq!(store.blob_infos(None, 1000).unwrap().len(), 57);

    // sliver_ids: `from` is inclusive, so each next page starts with the last ID seen.
    let mut seen = store.sliver_ids(shard, S, None, 8).unwrap();
    assert_eq!(seen.len(), 8);
    loop {
        let last = *seen.last().unwrap();
        let page = store.sliver_ids(shard, S, Some(&last), 8).unwrap();
        assert_eq!(page[0], last, "from is inclusive");
        if page.len() == 1 {
            break;
        }
        seen.extend(&page[1..]);
    }
    assert_eq!(seen, expected);
    assert_eq!(
        store.sliver_ids(shard, S, Some(&expected[20]), 3).unwrap(),
        expected[20..23].to_vec()
    );
    // A `from` that is not stored starts at the next ID.
    let mut between = expected[20];
    between.0[31] = between.0[31].wrapping_add(1);
    assert_eq!(
        store.sliver_ids(shard, S, Some(&between), 1).unwrap(),
        vec![expected[21]]
    );
    assert!(store.sliver_ids(shard, P, None, 10).unwrap().is_empty());
}

/// apply_events replaces infos and moves the cursor.
pub fn check_events(store: &dyn NodeStore) {
    assert_eq!(store.event_cursor().unwrap(), 0);
    store.apply_events(&[], 5).unwrap();
    assert_eq!(store.event_cursor().unwrap(), 5);
    store
        .apply_events(&[(blob(1), info(&[4], None))], 6)
        .unwrap();
    store
        .apply_events(&[(blob(1), info(&[4, 8], Some(7)))], 7)
        .unwrap();
    assert_eq!(
        store.get_blob_info(&blob(1)).unwrap(),
        Some(info(&[4, 8], Some(7)))
    );
    assert_eq!(store.event_cursor().unwrap(), 7);
}

/// Every conformance check, each on a fresh store from `fresh`.
pub fn conformance(fresh: &mut dyn FnMut() -> Box<dyn NodeStore>) {
    let s = fresh();
    write_sample(&*s);
    check_sample(&*s);
    check_shard_isolation(&*fresh());
    check_delete_blob_data(&*fresh());
    check_iteration(&*fresh());
    check_events(&*fresh());
    check_migration_cursors(&*fresh());
}

/// Migration cursors are per (shard, axis), replaced on write, and dropped with the shard.
pub fn check_migration_cursors(store: &dyn NodeStore) {
    use floe_core::SliverType::{Primary, Secondary};
    use floe_node_storage::MigrationCursor;
    let (a, b) = (ShardIndex(3), ShardIndex(4));
    store.create_shards(&[a, b]).unwrap();
    assert_eq!(store.migration_cursor(a, Primary).unwrap(), None);
    let mid = MigrationCursor {
        epoch: 7,
        next: Some(blob(5)),
    };
    let done = MigrationCursor {
        epoch: 7,
        next: None,
    };
    store.set_migration_cursor(a, Primary, &mid).unwrap();
    store.set_migration_cursor(b, Secondary, &mid).unwrap();
    assert_eq!(store.migration_cursor(a, Primary).unwrap(), Some(mid));
    assert_eq!(store.migration_cursor(a, Secondary).unwrap(), None);
    store.set_migration_cursor(a, Primary, &done).unwrap();
    assert_eq!(store.migration_cursor(a, Primary).unwrap(), Some(done));
    store.drop_shard(a).unwrap();
    assert_eq!(store.migration_cursor(a, Primary).unwrap(), None);
    assert_eq!(store.migration_cursor(b, Secondary).unwrap(), Some(mid));
}
