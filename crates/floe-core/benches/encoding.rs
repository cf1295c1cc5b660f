//! Encoding throughput at Mainnet's shard count (n = 1000): the full encoder (every sliver pair
//! plus metadata) and the metadata-only path behind `floe blob-id`, for small, medium and large
//! blobs; and what a storage node pays to verify the slivers of a small blob.
//!
//! Run with `cargo bench -p floe-core`; one group or size with e.g.
//! `cargo bench -p floe-core -- 'encode/1MiB'`. Samples are few and flat so that the 16 MiB
//! cases stay within seconds on a two-core machine. The 64 MiB encode (large blobs must not
//! get slower) runs only with `FLOE_BENCH_LARGE=1`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use floe_core::{EncodingConfig, SliverIndex, SliverType, compute_metadata, encode};

const N_SHARDS: u16 = 1000;

/// Blob sizes benchmarked, with their labels.
const SIZES: [(&str, usize); 4] = [
    ("1KiB", 1 << 10),
    ("64KiB", 64 << 10),
    ("1MiB", 1 << 20),
    ("16MiB", 16 << 20),
];

/// Deterministic pseudo-random bytes (xorshift64*), so every run encodes the same blob.
fn blob(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(size);
    out
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

fn bench_encode(c: &mut Criterion) {
    let config = EncodingConfig::new(N_SHARDS).expect("1000 shards is a valid configuration");
    let mut group = c.benchmark_group("encode");
    configure(&mut group);
    for (label, size) in SIZES {
        let data = blob(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(label), &data, |b, data| {
            b.iter(|| encode(&config, black_box(data)).expect("blob fits n = 1000"));
        });
    }
    group.finish();
}

fn bench_compute_metadata(c: &mut Criterion) {
    let config = EncodingConfig::new(N_SHARDS).expect("1000 shards is a valid configuration");
    let mut group = c.benchmark_group("compute_metadata");
    configure(&mut group);
    for (label, size) in SIZES {
        let data = blob(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(label), &data, |b, data| {
            b.iter(|| compute_metadata(&config, black_box(data)).expect("blob fits n = 1000"));
        });
    }
    group.finish();
}

/// Verifying every sliver of one axis of a 1 KiB blob, one after the other on one thread (as a
/// node checks one upload): the time per sliver is the reported time divided by n.
fn bench_verify(c: &mut Criterion) {
    let config = EncodingConfig::new(N_SHARDS).expect("1000 shards is a valid configuration");
    let encoded = encode(&config, &blob(1 << 10)).expect("blob fits n = 1000");
    let metadata = &encoded.metadata().metadata;
    let mut group = c.benchmark_group("verify_all_slivers");
    configure(&mut group);
    group.throughput(Throughput::Elements(u64::from(N_SHARDS)));
    for (label, axis) in [
        ("primary/1KiB", SliverType::Primary),
        ("secondary/1KiB", SliverType::Secondary),
    ] {
        let slivers: Vec<_> = (0..N_SHARDS)
            .map(|i| encoded.sliver(axis, SliverIndex(i)))
            .collect();
        group.bench_function(label, |b| {
            b.iter(|| {
                for sliver in &slivers {
                    sliver
                        .verify(axis, &config, black_box(metadata))
                        .expect("an honest sliver verifies");
                }
            });
        });
    }
    group.finish();
}

/// The 64 MiB encode, only with `FLOE_BENCH_LARGE=1` (about a second per iteration).
fn bench_encode_large(c: &mut Criterion) {
    if std::env::var_os("FLOE_BENCH_LARGE").is_none() {
        return;
    }
    let config = EncodingConfig::new(N_SHARDS).expect("1000 shards is a valid configuration");
    let mut group = c.benchmark_group("encode");
    configure(&mut group);
    let size = 64 << 20;
    let data = blob(size);
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_with_input(BenchmarkId::from_parameter("64MiB"), &data, |b, data| {
        b.iter(|| encode(&config, black_box(data)).expect("blob fits n = 1000"));
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_encode,
    bench_compute_metadata,
    bench_verify,
    bench_encode_large
);
criterion_main!(benches);
