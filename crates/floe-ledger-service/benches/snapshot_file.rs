//! A whole ledger snapshot (state, events, digests, certificates, recent transactions) as a restart reads it and as
//! the ledger writes it every `--snapshot-every` entries (`encode_sections` under its state
//! lock, then the file joined outside it; `encode` is both):
//! `cargo bench -p floe-ledger-service --bench snapshot_file`.
//!
//! `n` blobs registered and certified (10 nodes, 1000 shards): two events and one certificate
//! per blob, as after `floe bench ledger --blobs n`. The certificates are stand-ins of the real
//! size (their bytes are not checked by an encode or a decode).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use floe_core::EncodingType;
use floe_core::metadata::derive_blob_id;
use floe_crypto::ProtocolKeyPair;
use floe_ledger::{AccountKey, GenesisConfig, GenesisNode, LedgerState, LogEntry, TxKind};
use floe_ledger_service::certificates::{Certificates, StoredCertificate};
use floe_ledger_service::event_log::EventLog;
use floe_ledger_service::recent_txs::RecentTxs;
use floe_ledger_service::snapshot;

fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

struct History {
    state: LedgerState,
    events: EventLog,
    digests: Vec<[u8; 32]>,
    certificates: Certificates,
    recent: RecentTxs,
}

fn history(n: u64) -> History {
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
    let (mut events, mut digests, mut certificates) = (EventLog::new(), Vec::new(), Vec::new());
    let mut recent = RecentTxs::default();
    for i in 0..n {
        let root = seed("root", i);
        let blob_id = derive_blob_id(EncodingType::RS2, 1 << 20, &root);
        let kind = TxKind::ReserveAndRegister {
            end_epoch: 3,
            blob_id,
            root_hash: root,
            size: 1 << 20,
            encoding_type: EncodingType::RS2,
            deletable: false,
        };
        let tx = account.sign(i, kind);
        let evs = state
            .apply(&LogEntry::Tx(tx.clone()))
            .expect("registration applies");
        // Each registration and its certification are two entries; the second stands in.
        recent.note(tx.digest(), 2 * i);
        recent.note(seed("certification", i), 2 * i + 1);
        recent.prune(2 * i + 2);
        // A certification's event has the same shape; a copy stands in for it.
        events.extend(&evs);
        events.extend(&evs);
        digests.push(state.digest());
        digests.push(state.digest());
        let stand_in = StoredCertificate {
            blob_id,
            epoch: 0,
            event_index: 2 * i + 1,
            signers_bitmap: vec![0xFF, 0x03],
            serialized_message: vec![1; 70],
            signature: vec![2; 96],
        };
        certificates.push(stand_in);
    }
    History {
        state,
        events,
        digests,
        certificates: Certificates::from_records(certificates),
        recent,
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_file");
    group.sample_size(20);
    for n in [2_000u64, 20_000] {
        let h = history(n);
        let seq = h.digests.len() as u64;
        // What the embedded ledger does under its state lock: the sections, not yet joined.
        let sections = || {
            snapshot::encode_sections(
                seq,
                [0; 32],
                &h.state,
                (&h.events, &h.digests, &h.certificates),
                &h.recent,
            )
        };
        // `snapshot::encode`: the sections joined into the file.
        let encode = || sections().to_bytes();
        let bytes = encode();
        eprintln!("{n} blobs: snapshot of {} bytes", bytes.len());
        group.bench_function(BenchmarkId::new("encode", n), |b| b.iter(encode));
        group.bench_function(BenchmarkId::new("encode_sections", n), |b| b.iter(sections));
        // A replica's whole work per snapshot: the file and its root (committed in a
        // checkpoint). Only the sections are encoded under its state lock.
        group.bench_function(BenchmarkId::new("encode_and_root", n), |b| {
            b.iter(|| snapshot::root_of(&encode()))
        });
        group.bench_with_input(BenchmarkId::new("decode", n), &bytes, |b, bytes| {
            b.iter(|| snapshot::decode(bytes).expect("decodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
