//! Slivers in segment files: large batches are written once, outside the engine, and their
//! space comes back as slivers are deleted, replaced or dropped with their shard.

mod common;

use std::path::Path;

use common::*;
use floe_core::{ShardIndex, SliverData, SliverType};
use floe_node_storage::{FjallStore, NodeStore, StoreOptions};

/// Files and allocated bytes under `segments/`.
fn segment_files(dir: &Path) -> (usize, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let mut count = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir.join("segments")).unwrap() {
        count += 1;
        bytes += entry.unwrap().metadata().unwrap().blocks() * 512;
    }
    (count, bytes)
}

/// Two shards, both axes, `blobs` blobs of 256 KiB slivers: one segment per blob.
fn fill(
    store: &FjallStore,
    blobs: u32,
) -> Vec<(ShardIndex, SliverType, floe_core::BlobId, SliverData)> {
    let mut all = Vec::new();
    for b in 0..blobs {
        let items: Vec<_> = [ShardIndex(0), ShardIndex(1)]
            .into_iter()
            .flat_map(|s| [P, S].map(|axis| (s, axis)))
            .map(|(s, axis)| {
                (
                    s,
                    axis,
                    blob(b),
                    sliver(u64::from(b) * 10 + u64::from(s.0), 256 * 1024),
                )
            })
            .collect();
        store.put_slivers(&items).unwrap();
        all.extend(items);
    }
    all
}

#[test]
fn large_batches_go_to_segments_and_their_space_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = FjallStore::open(dir, StoreOptions::default()).unwrap();
    store
        .create_shards(&[ShardIndex(0), ShardIndex(1)])
        .unwrap();
    let all = fill(&store, 3);
    let (files, full) = segment_files(dir);
    assert_eq!(files, 3, "one segment per batch");
    assert!(
        full >= 3 * 4 * 256 * 1024,
        "{full} bytes for 3 MiB of slivers"
    );
    // The engine holds locations only: its write buffers stay small.
    assert!(
        store.write_buffer_bytes() < 64 * 1024,
        "{} bytes in memtables",
        store.write_buffer_bytes()
    );
    for (shard, axis, id, data) in &all {
        assert_eq!(
            store.get_sliver(*shard, *axis, id).unwrap().as_ref(),
            Some(data)
        );
    }

    // Replacing a located sliver with a small one releases its range (a punched hole).
    let small = sliver(99, 100);
    store
        .put_sliver(ShardIndex(0), P, &blob(0), &small)
        .unwrap();
    assert_eq!(
        store.get_sliver(ShardIndex(0), P, &blob(0)).unwrap(),
        Some(small)
    );
    let (_, after_replace) = segment_files(dir);
    assert!(
        after_replace < full,
        "{after_replace} >= {full}: no space released"
    );

    // Dropping a shard releases its slivers in every segment; deleting a blob's data
    // empties its segment, which is unlinked.
    store.drop_shard(ShardIndex(1)).unwrap();
    store.delete_blob_data(&blob(1)).unwrap();
    assert_eq!(segment_files(dir).0, 2);
    assert_eq!(store.get_sliver(ShardIndex(0), S, &blob(1)).unwrap(), None);
    assert_eq!(
        store
            .get_sliver(ShardIndex(0), S, &blob(2))
            .unwrap()
            .as_ref(),
        Some(
            &all.iter()
                .find(|i| i.0 == ShardIndex(0) && i.1 == S && i.2 == blob(2))
                .unwrap()
                .3
        )
    );
    drop(store);

    // What is left survives a reopen; a segment nothing points to is removed on open.
    std::fs::write(dir.join("segments").join("00000000000000ff.seg"), b"orphan").unwrap();
    let store = FjallStore::open(dir, StoreOptions::default()).unwrap();
    assert_eq!(segment_files(dir).0, 2);
    for b in 0..3 {
        store.delete_blob_data(&blob(b)).unwrap();
    }
    assert_eq!(segment_files(dir), (0, 0));
}

#[test]
fn a_format_2_store_opens_as_format_3_with_its_slivers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let store = FjallStore::open(dir, StoreOptions::default()).unwrap();
        store.create_shard(ShardIndex(4)).unwrap();
        store
            .put_sliver(ShardIndex(4), P, &blob(7), &sliver(7, 5000))
            .unwrap();
    }
    // A format-2 directory: the same engine layout, without segments.
    std::fs::remove_dir_all(dir.join("segments")).unwrap();
    std::fs::write(
        dir.join("store-format"),
        "floe-node-storage\nformat-version 2\n",
    )
    .unwrap();
    let store = FjallStore::open(dir, StoreOptions::default()).unwrap();
    assert_eq!(
        store.get_sliver(ShardIndex(4), P, &blob(7)).unwrap(),
        Some(sliver(7, 5000))
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("store-format")).unwrap(),
        "floe-node-storage\nformat-version 3\n"
    );
}
