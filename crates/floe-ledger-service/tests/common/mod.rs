//! What the ledger service's integration tests share: seeds, a one-node genesis and a
//! register transaction for a synthetic blob.

#![allow(dead_code)] // each test binary uses its own subset

pub mod replicas;

use floe_core::EncodingType;
use floe_core::metadata::derive_blob_id;
use floe_crypto::ProtocolKeyPair;
use floe_ledger::{AccountKey, GenesisConfig, GenesisNode, TxKind};
use floe_ledger_service::SystemClock;

/// A deterministic 32-byte seed from a tag and an index.
pub fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

/// One storage node holding all 10 shards, epochs of an hour starting now.
pub fn genesis() -> GenesisConfig {
    let key = ProtocolKeyPair::from_seed(&seed("bls", 0));
    let op = AccountKey::from_seed(&seed("op", 0));
    GenesisConfig::new(
        10,
        3_600_000,
        floe_ledger_service::Clock::now_ms(&SystemClock),
        vec![GenesisNode::new("n", "127.0.0.1:1", &key, &op, 1 << 50)],
    )
}

/// Reserve and register a 10-byte deletable blob until epoch 3, whose root is
/// `seed("root", root_index)`; returns the transaction and the blob ID.
pub fn register(root_index: u64) -> (TxKind, floe_core::BlobId) {
    let root = seed("root", root_index);
    let blob_id = derive_blob_id(EncodingType::RS2, 10, &root);
    (
        TxKind::ReserveAndRegister {
            end_epoch: 3,
            blob_id,
            root_hash: root,
            size: 10,
            encoding_type: EncodingType::RS2,
            deletable: true,
        },
        blob_id,
    )
}

/// Certify the deletable blob `blob_id` registered as `object` in epoch 0, signed by the one
/// genesis node (which holds every shard).
pub fn certify(blob_id: floe_core::BlobId, object: floe_core::ObjectId) -> TxKind {
    use floe_crypto::{BlobPersistenceType, Certificate, CommitteeMember, CommitteeWeights};
    let key = ProtocolKeyPair::from_seed(&seed("bls", 0));
    let message = floe_crypto::Confirmation::new(
        0,
        blob_id,
        BlobPersistenceType::Deletable { object_id: object },
    )
    .to_message();
    let weights = CommitteeWeights::new(
        vec![CommitteeMember {
            public_key: *key.public_key(),
            weight: 10,
        }],
        10,
    )
    .unwrap();
    let signed = floe_crypto::SignedMessage::sign(&key, &message);
    TxKind::CertifyBlob {
        blob_object: object,
        certificate: Certificate::aggregate(&weights, &[(0, signed)]).unwrap(),
    }
}

/// The object ID a registration's events name.
pub fn registered_object(events: &[floe_ledger::Event]) -> floe_core::ObjectId {
    events
        .iter()
        .find_map(|e| match &e.kind {
            floe_ledger::EventKind::BlobRegistered { object_id, .. } => Some(*object_id),
            _ => None,
        })
        .expect("a registration emits BlobRegistered")
}

/// The file of the snapshot at `seq` in the ledger directory `dir`.
pub fn snapshot_file(dir: &std::path::Path, seq: u64) -> std::path::PathBuf {
    dir.join(format!("snapshots/snapshot-{seq:020}.bin"))
}

/// Snapshots are written in the background once durable: wait for the one at `seq`.
pub async fn wait_for_snapshot(dir: &std::path::Path, seq: u64) {
    let file = snapshot_file(dir, seq);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !file.exists() {
        assert!(std::time::Instant::now() < deadline, "no snapshot at {seq}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
