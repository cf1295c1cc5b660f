//! Decoding a blob from p primary slivers at Mainnet's shard count (n = 1000), as a read does:
//! with every systematic sliver present (a copy), and with some of them missing, when the
//! received slivers include repair rows and every column must be Reed–Solomon decoded. Missing
//! 111 of the 334 systematic rows is what f silent shards cost on average; missing 333 is the
//! worst case. `Skip` isolates the decoding, `Default` adds the consistency check a read runs
//! (re-deriving the hashes of the rows that were not received).
//!
//! Run with `cargo bench -p floe-core --bench decode`; one case with e.g.
//! `cargo bench -p floe-core --bench decode -- 'decode_primary/64MiB/missing111'`. The
//! 64 MiB cases run only with `FLOE_BENCH_LARGE=1`.
//!
//! `verify_node_batch` is a storage node's side of a store: the 100 sliver pairs of one of 10
//! nodes, verified one sliver at a time (`apart`) or together (`together`, as the node does:
//! small symbols share coder calls), for a 1 KiB and a 1 MiB blob.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use floe_core::{
    ConsistencyCheck, EncodingConfig, SliverData, SliverIndex, SliverType, VerifiedSliver,
    decode_from_primary, decode_from_verified_primary, encode,
};

const N_SHARDS: u16 = 1000;

/// Deterministic pseudo-random bytes (xorshift64*), so every run decodes the same blob.
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

fn bench_decode_primary(c: &mut Criterion) {
    let config = EncodingConfig::new(N_SHARDS).expect("1000 shards is a valid configuration");
    let p = usize::from(config.n_primary_source());
    let mut sizes = vec![("8MiB", 8usize << 20)];
    if std::env::var_os("FLOE_BENCH_LARGE").is_some() {
        sizes.push(("64MiB", 64 << 20));
    }
    let mut group = c.benchmark_group("decode_primary");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (label, size) in sizes {
        let encoded = encode(&config, &blob(size)).expect("blob fits n = 1000");
        let metadata = encoded.metadata();
        group.throughput(Throughput::Bytes(size as u64));
        for missing in [0usize, 111, 333] {
            // Systematic rows missing..p, then the first `missing` repair rows.
            let rows: Vec<SliverData> = (missing..p + missing)
                .map(|i| encoded.sliver(SliverType::Primary, SliverIndex(i as u16)))
                .collect();
            // As a client decodes: slivers verified on arrival, not hashed again.
            let verified: Vec<VerifiedSliver> = rows
                .iter()
                .cloned()
                .map(|s| VerifiedSliver::verify(s, SliverType::Primary, &config, metadata))
                .collect::<Result<_, _>>()
                .expect("honest slivers verify");
            let id = BenchmarkId::new(label, format!("missing{missing}/verified-Default"));
            group.bench_with_input(id, &verified, |b, verified| {
                b.iter_batched(
                    || verified.clone(),
                    |v| {
                        decode_from_verified_primary(
                            &config,
                            black_box(metadata),
                            v,
                            ConsistencyCheck::Default,
                        )
                        .expect("honest slivers decode")
                    },
                    BatchSize::LargeInput,
                );
            });
            for check in [ConsistencyCheck::Skip, ConsistencyCheck::Default] {
                let id = BenchmarkId::new(label, format!("missing{missing}/{check:?}"));
                group.bench_with_input(id, &rows, |b, rows| {
                    b.iter_batched(
                        || rows.clone(),
                        |rows| {
                            decode_from_primary(&config, black_box(metadata), rows, check)
                                .expect("honest slivers decode")
                        },
                        BatchSize::LargeInput,
                    );
                });
            }
        }
    }
    group.finish();
}

/// Verifying p primary slivers against the metadata (re-deriving each one's Merkle root from
/// its expansion), in parallel as `decode_from_primary` does: the part of a decode a client that
/// verified every sliver on arrival repeats.
fn bench_verify_primary(c: &mut Criterion) {
    use rayon::prelude::*;
    let config = EncodingConfig::new(N_SHARDS).expect("1000 shards is a valid configuration");
    let p = usize::from(config.n_primary_source());
    let mut group = c.benchmark_group("verify_primary");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let size = 8usize << 20;
    let encoded = encode(&config, &blob(size)).expect("blob fits n = 1000");
    let metadata = encoded.metadata();
    let rows: Vec<SliverData> = (0..p)
        .map(|i| encoded.sliver(SliverType::Primary, SliverIndex(i as u16)))
        .collect();
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("8MiB", |b| {
        b.iter(|| {
            rows.par_iter()
                .map(|s| {
                    s.verify(SliverType::Primary, &config, &metadata.metadata)
                        .is_ok()
                })
                .filter(|ok| *ok)
                .count()
        })
    });
    group.finish();
}

/// A node's share of a store at n = 1000 on 10 nodes: 100 sliver pairs, verified apart (one
/// `verify` per sliver, in parallel) or together (`verify_slivers`).
fn bench_verify_node_batch(c: &mut Criterion) {
    use rayon::prelude::*;
    let config = EncodingConfig::new(N_SHARDS).expect("1000 shards is a valid configuration");
    let mut group = c.benchmark_group("verify_node_batch");
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (label, size) in [("1KiB", 1usize << 10), ("1MiB", 1 << 20)] {
        let encoded = encode(&config, &blob(size)).expect("blob fits n = 1000");
        let metadata = &encoded.metadata().metadata;
        let slivers: Vec<(SliverType, SliverData)> = (0..N_SHARDS)
            .step_by(10)
            .flat_map(|i| {
                [SliverType::Primary, SliverType::Secondary]
                    .map(|axis| (axis, encoded.sliver(axis, SliverIndex(i))))
            })
            .collect();
        let refs: Vec<(SliverType, &SliverData)> = slivers.iter().map(|(a, d)| (*a, d)).collect();
        group.bench_function(BenchmarkId::new("apart", label), |b| {
            b.iter(|| {
                refs.par_iter()
                    .try_for_each(|(axis, d)| d.verify(*axis, &config, metadata))
                    .expect("an honest blob verifies")
            })
        });
        group.bench_function(BenchmarkId::new("together", label), |b| {
            b.iter(|| {
                floe_core::sliver::verify_slivers(black_box(&refs), &config, metadata)
                    .expect("an honest blob verifies")
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_decode_primary,
    bench_verify_primary,
    bench_verify_node_batch
);
criterion_main!(benches);
