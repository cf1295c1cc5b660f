//! Throughput and latency of the fjall store (ignored; run by hand):
//! `cargo test -p floe-node-storage --test bench -- --ignored --nocapture`

mod common;

use std::time::{Duration, Instant};

use common::*;
use floe_core::{BlobId, ShardIndex, SliverData};
use floe_node_storage::{Durability, FjallStore, NodeStore, StoreOptions};

const VALUE: usize = 64 * 1024;
const MIB: f64 = 1024.0 * 1024.0;

fn mib_per_s(count: usize, elapsed: Duration) -> f64 {
    (count * VALUE) as f64 / MIB / elapsed.as_secs_f64()
}

fn open(dir: &std::path::Path, durability: Durability) -> FjallStore {
    let options = StoreOptions {
        durability,
        ..StoreOptions::default()
    };
    let store = FjallStore::open(dir, options).unwrap();
    for s in 0..4 {
        store.create_shard(ShardIndex(s)).unwrap();
    }
    store
}

fn key(i: u32) -> (ShardIndex, floe_core::SliverType, BlobId) {
    (ShardIndex((i % 4) as u16), P, blob(i))
}

fn item(i: u32) -> (ShardIndex, floe_core::SliverType, BlobId, SliverData) {
    let (s, a, id) = key(i);
    (s, a, id, sliver(u64::from(i), VALUE))
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn sliver_throughput_and_latency() {
    // 1. One fsync per put.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Sync);
    let n = 500;
    let items: Vec<_> = (0..n).map(item).collect();
    let start = Instant::now();
    for (s, a, id, sliver) in &items {
        store.put_sliver(*s, *a, id, sliver).unwrap();
    }
    let t = start.elapsed();
    println!(
        "put_sliver, Durability::Sync (fsync each): {n} x 64 KiB in {:.2} s = {:.0} MiB/s, {:.2} ms/put",
        t.as_secs_f64(),
        mib_per_s(n as usize, t),
        t.as_secs_f64() * 1e3 / f64::from(n)
    );
    drop(store);

    // 2. Batches of 64, one fsync per batch.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Sync);
    let n = 10_000u32;
    let items: Vec<_> = (0..n).map(item).collect();
    let start = Instant::now();
    for chunk in items.chunks(64) {
        store.put_slivers(chunk).unwrap();
    }
    let t = start.elapsed();
    println!(
        "put_slivers(64), Durability::Sync (fsync per batch): {n} x 64 KiB in {:.2} s = {:.0} MiB/s",
        t.as_secs_f64(),
        mib_per_s(n as usize, t)
    );
    drop(store);

    // 3. Bulk: batches of 64 buffered, one persist at the end.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), Durability::Buffered);
    let start = Instant::now();
    for chunk in items.chunks(64) {
        store.put_slivers(chunk).unwrap();
    }
    let written = start.elapsed();
    store.persist().unwrap();
    drop(items);
    let t = start.elapsed();
    println!(
        "put_slivers(64), Durability::Buffered + one persist: {n} x 64 KiB in {:.2} s \
         ({:.2} s writing, {:.2} s persist) = {:.0} MiB/s",
        t.as_secs_f64(),
        written.as_secs_f64(),
        (t - written).as_secs_f64(),
        mib_per_s(n as usize, t)
    );

    // 4. Random gets, warm (same process), then after reopening.
    for phase in ["warm", "after reopen"] {
        let mut lat = Vec::with_capacity(10_000);
        let mut x: u64 = 0x1234_5678;
        let start = Instant::now();
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % u64::from(n)) as u32;
            let (s, a, id) = key(i);
            let t0 = Instant::now();
            let got = store.get_sliver(s, a, &id).unwrap().unwrap();
            lat.push(t0.elapsed());
            assert_eq!(got.symbols.len(), VALUE);
        }
        let t = start.elapsed();
        lat.sort();
        let mean = lat.iter().sum::<Duration>() / lat.len() as u32;
        println!(
            "get_sliver, random, {phase}: 10000 x 64 KiB = {:.0} MiB/s, mean {:.0} µs, \
             p50 {:.0} µs, p99 {:.0} µs",
            mib_per_s(10_000, t),
            mean.as_secs_f64() * 1e6,
            lat[5_000].as_secs_f64() * 1e6,
            lat[9_900].as_secs_f64() * 1e6,
        );
        if phase == "warm" {
            drop(store);
            let t0 = Instant::now();
            store = open(dir.path(), Durability::Buffered);
            println!("reopen: {:.0} ms", t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    println!(
        "disk space after {n} x 64 KiB ({} MiB of values): {:.0} MiB",
        n as usize * VALUE / (1 << 20),
        store.disk_space().unwrap() as f64 / MIB
    );
}
