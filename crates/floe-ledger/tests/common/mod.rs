//! A test network: genesis with BLS-keyed nodes, accounts, and helpers to build certificates.
#![allow(dead_code)]

use floe_core::{BlobId, EncodingConfig, ObjectId, compute_metadata};
use floe_crypto::{
    BlobPersistenceType, Certificate, Confirmation, InvalidBlobIdBody, ProtocolKeyPair,
    ProtocolMessage, SignedMessage,
};
use floe_ledger::{
    AccountKey, BlobStatus, Event, EventKind, GenesisConfig, GenesisNode, LedgerState, LogEntry,
    TxError, TxKind,
};

pub struct Net {
    pub state: LedgerState,
    pub node_keys: Vec<ProtocolKeyPair>,
    pub operators: Vec<AccountKey>,
    pub log: Vec<LogEntry>,
    pub events: Vec<Event>,
}

pub fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

pub fn genesis_config(
    n_nodes: usize,
    n_shards: u16,
    capacity: u64,
) -> (GenesisConfig, Vec<ProtocolKeyPair>, Vec<AccountKey>) {
    let keys: Vec<_> = (0..n_nodes)
        .map(|i| ProtocolKeyPair::from_seed(&seed("bls", i as u64)))
        .collect();
    let ops: Vec<_> = (0..n_nodes)
        .map(|i| AccountKey::from_seed(&seed("op", i as u64)))
        .collect();
    let nodes = keys
        .iter()
        .zip(&ops)
        .enumerate()
        .map(|(i, (k, op))| {
            GenesisNode::new(
                format!("node-{i}"),
                format!("127.0.0.1:{}", 20000 + i),
                k,
                op,
                capacity,
            )
        })
        .collect();
    let config = GenesisConfig::new(n_shards, 1000, 1_000_000, nodes);
    (config, keys, ops)
}

impl Net {
    pub fn new(n_nodes: usize, n_shards: u16) -> Self {
        Self::with_capacity(n_nodes, n_shards, 1 << 40)
    }

    pub fn with_capacity(n_nodes: usize, n_shards: u16, capacity: u64) -> Self {
        let (config, node_keys, operators) = genesis_config(n_nodes, n_shards, capacity);
        Self::from_genesis(&config, node_keys, operators)
    }

    /// A network from a genesis of the caller's (its nodes' keys and operators in order).
    pub fn from_genesis(
        config: &GenesisConfig,
        node_keys: Vec<ProtocolKeyPair>,
        operators: Vec<AccountKey>,
    ) -> Self {
        let state = LedgerState::genesis(config).unwrap();
        // Committee members are in node-ID order; reorder keys to match.
        let mut net = Self {
            state,
            node_keys,
            operators,
            log: Vec::new(),
            events: Vec::new(),
        };
        net.align_keys();
        net
    }

    fn align_keys(&mut self) {
        let order: Vec<usize> = self
            .state
            .committee()
            .members
            .iter()
            .map(|m| {
                let pk = self.state.nodes()[&m.node_id].protocol_key;
                self.node_keys
                    .iter()
                    .position(|k| *k.public_key() == pk)
                    .unwrap()
            })
            .collect();
        let keys = order.iter().map(|&i| self.node_keys[i].clone()).collect();
        let ops = order.iter().map(|&i| self.operators[i].clone()).collect();
        self.node_keys = keys;
        self.operators = ops;
    }

    pub fn apply(&mut self, entry: LogEntry) -> Result<Vec<Event>, TxError> {
        let events = self.state.apply(&entry)?;
        self.log.push(entry);
        self.events.extend(events.clone());
        Ok(events)
    }

    pub fn submit(&mut self, who: &AccountKey, kind: TxKind) -> Result<Vec<Event>, TxError> {
        let seq = self.state.next_sequence(&who.address());
        self.apply(LogEntry::Tx(who.sign(seq, kind)))
    }

    pub fn tick_to_epoch(&mut self, epoch: u32) {
        while self.state.epoch() < epoch {
            let now = self.state.epoch_start_ms(self.state.epoch() + 1);
            self.apply(LogEntry::Clock { now_ms: now }).unwrap();
        }
    }

    /// Register `data` for `[now, end)`; returns (blob ID, object ID).
    pub fn register(
        &mut self,
        who: &AccountKey,
        data: &[u8],
        end: u32,
        deletable: bool,
    ) -> Result<(BlobId, ObjectId), TxError> {
        let config = EncodingConfig::new(self.state.params().n_shards).unwrap();
        let meta = compute_metadata(&config, data).unwrap();
        let events = self.submit(
            who,
            TxKind::ReserveAndRegister {
                end_epoch: end,
                blob_id: meta.blob_id,
                root_hash: meta.metadata.root_hash(),
                size: data.len() as u64,
                encoding_type: floe_core::EncodingType::RS2,
                deletable,
            },
        )?;
        let object = events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::BlobRegistered { object_id, .. } => Some(*object_id),
                _ => None,
            })
            .unwrap();
        Ok((meta.blob_id, object))
    }

    /// A certificate for `object` signed by the committee members `signers`.
    pub fn certificate(
        &self,
        blob_id: BlobId,
        object: ObjectId,
        deletable: bool,
        epoch: u32,
        signers: &[usize],
    ) -> Certificate {
        let persistence = if deletable {
            BlobPersistenceType::Deletable { object_id: object }
        } else {
            BlobPersistenceType::Permanent
        };
        let msg = Confirmation::new(epoch, blob_id, persistence).to_message();
        let partials: Vec<_> = signers
            .iter()
            .map(|&i| (i, SignedMessage::sign(&self.node_keys[i], &msg)))
            .collect();
        Certificate::aggregate(self.state.committee_weights(), &partials).unwrap()
    }

    pub fn invalid_certificate(
        &self,
        blob_id: BlobId,
        epoch: u32,
        signers: &[usize],
    ) -> Certificate {
        let msg = ProtocolMessage::new(epoch, InvalidBlobIdBody { blob_id });
        let partials: Vec<_> = signers
            .iter()
            .map(|&i| (i, SignedMessage::sign(&self.node_keys[i], &msg)))
            .collect();
        Certificate::aggregate(self.state.committee_weights(), &partials).unwrap()
    }

    /// Members whose shards sum to at least `weight`, smallest prefix.
    pub fn signers_with_weight(&self, weight: u16) -> Vec<usize> {
        let mut acc = 0u16;
        let mut out = Vec::new();
        for (i, m) in self.state.committee().members.iter().enumerate() {
            if acc >= weight {
                break;
            }
            acc += m.shards.len() as u16;
            out.push(i);
        }
        out
    }

    pub fn quorum_signers(&self) -> Vec<usize> {
        self.signers_with_weight(self.state.encoding_config().quorum())
    }

    pub fn certify(
        &mut self,
        who: &AccountKey,
        blob_id: BlobId,
        object: ObjectId,
        deletable: bool,
    ) -> Result<Vec<Event>, TxError> {
        let cert = self.certificate(
            blob_id,
            object,
            deletable,
            self.state.epoch(),
            &self.quorum_signers(),
        );
        self.submit(
            who,
            TxKind::CertifyBlob {
                blob_object: object,
                certificate: cert,
            },
        )
    }

    pub fn status(&self, blob_id: &BlobId) -> BlobStatus {
        self.state.blob_status(blob_id)
    }
}
