//! The cost of the state's snapshot encoding, which a restart pays to decode and a snapshot or
//! a `/v1/health` pays to encode: `cargo bench -p floe-ledger --bench snapshot`.
//!
//! The state holds `n` registered blobs (10 nodes, 1000 shards), as the ledger's restart bench
//! does at 2,000 and 20,000 certified blobs.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use floe_core::EncodingType;
use floe_core::metadata::derive_blob_id;
use floe_crypto::ProtocolKeyPair;
use floe_ledger::{AccountKey, GenesisConfig, GenesisNode, LedgerState, LogEntry, TxKind};

fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

fn state_with_blobs(n: u64) -> LedgerState {
    let nodes = (0..10)
        .map(|i| {
            let key = ProtocolKeyPair::from_seed(&seed("bls", i));
            let op = AccountKey::from_seed(&seed("op", i));
            GenesisNode::new(
                format!("n{i}"),
                format!("127.0.0.1:{}", 1000 + i),
                &key,
                &op,
                1 << 50,
            )
        })
        .collect();
    let genesis = GenesisConfig::new(1000, 3_600_000, 0, nodes);
    let mut state = LedgerState::genesis(&genesis).expect("genesis");
    let account = AccountKey::from_seed(&seed("user", 0));
    for i in 0..n {
        let root = seed("root", i);
        let kind = TxKind::ReserveAndRegister {
            end_epoch: 3,
            blob_id: derive_blob_id(EncodingType::RS2, 1 << 20, &root),
            root_hash: root,
            size: 1 << 20,
            encoding_type: EncodingType::RS2,
            deletable: false,
        };
        state
            .apply(&LogEntry::Tx(account.sign(i, kind)))
            .expect("registration applies");
    }
    state
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(20);
    for n in [2_000u64, 20_000] {
        let state = state_with_blobs(n);
        let bytes = state.to_snapshot_bytes();
        eprintln!("{n} blobs: state encoding {} bytes", bytes.len());
        group.bench_with_input(BenchmarkId::new("decode", n), &bytes, |b, bytes| {
            b.iter(|| LedgerState::from_snapshot_bytes(bytes).expect("decodes"))
        });
        group.bench_with_input(BenchmarkId::new("encode", n), &state, |b, state| {
            b.iter(|| state.to_snapshot_bytes())
        });
        group.bench_with_input(BenchmarkId::new("state_hash", n), &state, |b, state| {
            b.iter(|| state.state_hash())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
