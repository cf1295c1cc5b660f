//! Model test: random operation sequences give the same results on the fjall store (reopened
//! now and then) as on the in-memory store.

mod common;

use common::*;
use floe_core::{BlobId, ShardIndex, SliverType};
use floe_node_storage::{Durability, FjallStore, MemoryStore, NodeStore, StoreError, StoreOptions};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    CreateShard(u16),
    DropShard(u16),
    PutSliver(u16, bool, u32, u64, usize),
    PutSlivers(Vec<(u16, bool, u32, u64, usize)>),
    PutMetadata(u32, u8),
    DeleteBlobData(u32),
    ApplyEvents(Vec<(u32, u32, bool)>, u64),
    Reopen,
}

/// Shard 3 is never created, so writes to it must fail.
fn op() -> impl Strategy<Value = Op> {
    let sliver = (0u16..4, any::<bool>(), 0u32..6, any::<u64>(), 0usize..3000);
    prop_oneof![
        (0u16..3).prop_map(Op::CreateShard),
        (0u16..4).prop_map(Op::DropShard),
        sliver
            .clone()
            .prop_map(|(s, a, b, seed, len)| Op::PutSliver(s, a, b, seed, len)),
        proptest::collection::vec(sliver, 0..4).prop_map(Op::PutSlivers),
        (0u32..6, any::<u8>()).prop_map(|(b, seed)| Op::PutMetadata(b, seed)),
        (0u32..6).prop_map(Op::DeleteBlobData),
        (
            proptest::collection::vec((0u32..6, 0u32..20, any::<bool>()), 0..4),
            any::<u64>()
        )
            .prop_map(|(infos, cursor)| Op::ApplyEvents(infos, cursor)),
        Just(Op::Reopen),
    ]
}

fn axis(primary: bool) -> SliverType {
    if primary { P } else { S }
}

/// The outcome of an operation, comparable across stores.
fn outcome(r: Result<(), StoreError>) -> Result<(), String> {
    r.map_err(|e| match e {
        StoreError::ShardNotFound(s) => format!("shard {s} not found"),
        other => panic!("unexpected error {other}"),
    })
}

fn apply(store: &dyn NodeStore, op: &Op) -> Result<(), String> {
    let item = |&(s, a, b, seed, len): &(u16, bool, u32, u64, usize)| {
        (ShardIndex(s), axis(a), blob(b), sliver(seed, len))
    };
    outcome(match op {
        Op::CreateShard(s) => store.create_shard(ShardIndex(*s)),
        Op::DropShard(s) => store.drop_shard(ShardIndex(*s)),
        Op::PutSliver(s, a, b, seed, len) => {
            store.put_sliver(ShardIndex(*s), axis(*a), &blob(*b), &sliver(*seed, *len))
        }
        Op::PutSlivers(items) => store.put_slivers(&items.iter().map(item).collect::<Vec<_>>()),
        Op::PutMetadata(b, seed) => store.put_metadata(&blob(*b), &metadata(*seed, 3)),
        Op::DeleteBlobData(b) => store.delete_blob_data(&blob(*b)),
        Op::ApplyEvents(infos, cursor) => {
            let infos: Vec<(BlobId, _)> = infos
                .iter()
                .map(|&(b, end, invalid)| (blob(b), info(&[end], invalid.then_some(1))))
                .collect();
            store.apply_events(&infos, *cursor)
        }
        Op::Reopen => Ok(()),
    })
}

fn assert_same(model: &dyn NodeStore, real: &dyn NodeStore) {
    let shards = model.shards().unwrap();
    assert_eq!(real.shards().unwrap(), shards);
    for &shard in &shards {
        for axis in [P, S] {
            let ids = model.sliver_ids(shard, axis, None, usize::MAX).unwrap();
            assert_eq!(real.sliver_ids(shard, axis, None, usize::MAX).unwrap(), ids);
            for id in &ids {
                assert_eq!(
                    real.get_sliver(shard, axis, id).unwrap(),
                    model.get_sliver(shard, axis, id).unwrap()
                );
            }
        }
    }
    for b in 0..6 {
        assert_eq!(
            real.get_metadata(&blob(b)).unwrap(),
            model.get_metadata(&blob(b)).unwrap()
        );
    }
    assert_eq!(
        real.blob_infos(None, usize::MAX).unwrap(),
        model.blob_infos(None, usize::MAX).unwrap()
    );
    assert_eq!(real.event_cursor().unwrap(), model.event_cursor().unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// `segment_min_bytes` 0 puts every write in a segment, `u64::MAX` none, 3000 some.
    #[test]
    fn fjall_store_matches_memory_store(
        ops in proptest::collection::vec(op(), 1..40),
        segment_min_bytes in prop_oneof![Just(0u64), Just(3000), Just(u64::MAX)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            durability: Durability::Buffered,
            segment_min_bytes,
            ..StoreOptions::default()
        };
        let model = MemoryStore::new();
        let mut real = Some(FjallStore::open(dir.path(), options.clone()).unwrap());
        for op in &ops {
            if let Op::Reopen = op {
                drop(real.take());
                real = Some(FjallStore::open(dir.path(), options.clone()).unwrap());
            }
            let store = real.as_ref().unwrap();
            prop_assert_eq!(apply(store, op), apply(&model, op), "{:?}", op);
        }
        assert_same(&model, real.as_ref().unwrap());
        drop(real.take());
        let real = FjallStore::open(dir.path(), options).unwrap();
        assert_same(&model, &real);
        // Every segment counted its slivers exactly: once none is referenced, none is left.
        for b in 0..6 {
            real.delete_blob_data(&blob(b)).unwrap();
        }
        let left: Vec<_> = std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        prop_assert!(left.is_empty(), "segments left after deleting every blob: {:?}", left);
    }
}
