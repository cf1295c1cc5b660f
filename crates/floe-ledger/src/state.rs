//! The ledger state and its transition function.
//!
//! `apply` is deterministic and atomic: every check happens before the first mutation, so a
//! rejected entry leaves the state untouched. Applying the same entries in the same order
//! gives the same state, the same events and the same digest chain.

use std::collections::BTreeMap;
use std::sync::Arc;

use floe_core::merkle::blake2b256;
use floe_core::{BlobId, EncodingConfig, Epoch, ObjectId};
use floe_crypto::{Certificate, CommitteeWeights};
use serde::{Deserialize, Serialize};

mod attribute_rules;
mod cert_check;
pub use cert_check::{CertCheck, Threshold};
use cert_check::{MAX_VERIFIED_CACHE, VerifiedCache, cert_key};
mod blob_rules;
mod capacity_rules;
mod challenge_rules;
mod effects;
pub use effects::created_object_id;
mod invariants;
mod node_rules;
mod preverify;
mod rules_step;
mod shared_rules;
pub(crate) mod snapshot;
pub use snapshot::{MapIndex, StateIndex, StateLoadError};

use crate::committee::genesis_committee;
use crate::error::TxError;
use crate::event::{Event, EventKind};
use crate::lazy_map::LazyMap;
use crate::tx::{LogEntry, SignedTransaction, TxKind};
use crate::types::{
    Address, BlobObject, Committee, EpochState, GenesisConfig, NodeId, StorageNode,
    StorageResource, SystemParams,
};
use effects::Effects;

/// Per blob ID: its registrations and whether it was proven invalid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobIdRecord {
    pub objects: Vec<ObjectId>,
    pub invalid_event: Option<u64>,
}

/// Event indices that explain a blob object's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEvents {
    pub registered: u64,
    pub certified: Option<u64>,
    pub last: u64,
}

/// The whole replicated state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    pub(crate) params: SystemParams,
    pub(crate) epoch: Epoch,
    pub(crate) epoch_state: EpochState,
    pub(crate) committee: Committee,
    pub(crate) previous_committee: Option<Committee>,
    /// The next epoch's committee, once fixed (see [`EpochState::NextParamsSelected`]).
    #[serde(default)]
    pub(crate) selected_committee: Option<Committee>,
    #[serde(with = "snapshot::id_map")]
    pub(crate) nodes: BTreeMap<NodeId, StorageNode>,
    #[serde(with = "snapshot::id_map")]
    pub(crate) accounts: BTreeMap<Address, u64>,
    pub(crate) storage: LazyMap<ObjectId, StorageResource>,
    pub(crate) blobs: LazyMap<ObjectId, BlobObject>,
    pub(crate) object_events: LazyMap<ObjectId, ObjectEvents>,
    pub(crate) by_blob_id: LazyMap<BlobId, BlobIdRecord>,
    pub(crate) used_capacity: BTreeMap<Epoch, u64>,
    pub(crate) entry_count: u64,
    pub(crate) event_count: u64,
    pub(crate) digest: [u8; 32],
    /// Storage challenges of the last [`crate::challenge::EPOCHS_KEPT`] epochs.
    pub(crate) challenges: BTreeMap<Epoch, crate::challenge::EpochChallenges>,
    /// Shared blobs: shared object ID → the blob object it wraps.
    #[serde(with = "snapshot::id_map")]
    pub(crate) shared_blobs: BTreeMap<ObjectId, ObjectId>,
    /// The reverse: blob object ID → the shared blob wrapping it.
    #[serde(with = "snapshot::id_map")]
    pub(crate) shared_of: BTreeMap<ObjectId, ObjectId>,
    /// The version of the rules in force (see [`crate::rules`]).
    pub(crate) rules: u16,
    #[serde(skip)]
    weights: Option<Arc<CommitteeWeights>>,
    /// Certificates already verified (outside the sequencing lock) for the current epoch.
    #[serde(skip)]
    verified: VerifiedCache,
}

/// Errors in a genesis configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("unsupported genesis version {0} (this build reads version 1)")]
    Version(u32),
    #[error(
        "the genesis asks for ledger rules version {0}; this build applies versions 1 to {max}: upgrade this build",
        max = crate::rules::RULES_VERSION
    )]
    Rules(u16),
    #[error("{0}")]
    Params(String),
    #[error("node {name}: {reason}")]
    Node { name: String, reason: String },
}

impl LedgerState {
    /// The state at genesis. Every node's proof of possession is checked.
    pub fn genesis(config: &GenesisConfig) -> Result<Self, GenesisError> {
        if config.version != 1 {
            return Err(GenesisError::Version(config.version));
        }
        if !(crate::rules::FIRST_RULES..=crate::rules::RULES_VERSION).contains(&config.rules) {
            return Err(GenesisError::Rules(config.rules));
        }
        EncodingConfig::new(config.n_shards).map_err(|e| GenesisError::Params(e.to_string()))?;
        if config.epoch_duration_ms == 0 {
            return Err(GenesisError::Params(
                "epoch duration must be positive".into(),
            ));
        }
        if config.max_epochs_ahead == 0 {
            return Err(GenesisError::Params(
                "max_epochs_ahead must be positive".into(),
            ));
        }
        if config.nodes.is_empty() {
            return Err(GenesisError::Params(
                "a genesis needs at least one storage node".into(),
            ));
        }
        let mut nodes = BTreeMap::new();
        for (i, n) in config.nodes.iter().enumerate() {
            let bad = |reason: &str| GenesisError::Node {
                name: n.name.clone(),
                reason: reason.into(),
            };
            n.proof_of_possession
                .verify(&n.protocol_key, 0, &n.owner.0)
                .map_err(|_| bad("proof of possession does not verify for its key and owner"))?;
            if n.weight == 0 {
                return Err(bad("weight must be positive"));
            }
            if nodes
                .values()
                .any(|x: &StorageNode| x.protocol_key == n.protocol_key)
            {
                return Err(bad("protocol key already used by another node"));
            }
            if config.rules >= crate::rules::UNIQUE_NETWORK_KEYS
                && n.network_public_key.is_some()
                && nodes
                    .values()
                    .any(|x: &StorageNode| x.network_public_key == n.network_public_key)
            {
                return Err(bad("network key already used by another node"));
            }
            let id = ObjectId(blake2b256(&[
                b"floe-genesis-node",
                &(i as u64).to_le_bytes(),
            ]));
            nodes.insert(
                id,
                StorageNode {
                    id,
                    name: n.name.clone(),
                    network_address: n.network_address.clone(),
                    protocol_key: n.protocol_key,
                    owner: n.owner,
                    capacity: n.capacity,
                    weight: n.weight,
                    network_public_key: n.network_public_key,
                    previous_network_key: None,
                },
            );
        }
        let weights: Vec<(NodeId, u64)> = nodes.values().map(|n| (n.id, n.weight)).collect();
        let committee = genesis_committee(config.n_shards, &weights);
        let params = SystemParams {
            n_shards: config.n_shards,
            epoch_duration_ms: config.epoch_duration_ms,
            genesis_time_ms: config.genesis_time_ms,
            max_epochs_ahead: config.max_epochs_ahead,
        };
        let digest = blake2b256(&[
            b"floe-ledger-genesis-v1",
            &bcs::to_bytes(config).expect("serialises"),
        ]);
        let mut state = Self {
            params,
            epoch: 0,
            epoch_state: EpochState::Done,
            committee,
            previous_committee: None,
            selected_committee: None,
            nodes,
            accounts: BTreeMap::new(),
            storage: LazyMap::default(),
            blobs: LazyMap::default(),
            object_events: LazyMap::default(),
            by_blob_id: LazyMap::default(),
            used_capacity: BTreeMap::new(),
            entry_count: 0,
            event_count: 0,
            digest,
            challenges: BTreeMap::new(),
            shared_blobs: BTreeMap::new(),
            shared_of: BTreeMap::new(),
            rules: config.rules,
            weights: None,
            verified: VerifiedCache::default(),
        };
        state.refresh_weights();
        Ok(state)
    }

    fn refresh_weights(&mut self) {
        let members = self
            .committee
            .members
            .iter()
            .map(|m| floe_crypto::CommitteeMember {
                public_key: self.nodes[&m.node_id].protocol_key,
                weight: m.shards.len() as u16,
            })
            .collect();
        self.weights = CommitteeWeights::new(members, self.params.n_shards)
            .ok()
            .map(Arc::new);
        self.verified.0.clear();
    }

    /// The certificate check `entry` will need, so a caller can run it before sequencing.
    pub fn certificate_check(&self, entry: &LogEntry) -> Option<CertCheck> {
        let LogEntry::Tx(tx) = entry else { return None };
        let (certificate, threshold) = match &tx.tx.kind {
            TxKind::CertifyBlob { certificate, .. } => (certificate, Threshold::Quorum),
            TxKind::InvalidateBlob { certificate } => (certificate, Threshold::Validity),
            _ => return None,
        };
        Some(CertCheck {
            key: cert_key(self.epoch, threshold, certificate),
            certificate: certificate.clone(),
            threshold,
            weights: Arc::clone(self.weights.as_ref()?),
        })
    }

    /// Record a successful [`CertCheck`] (ignored if the epoch changed since: the key differs).
    pub fn record_verified(&mut self, key: [u8; 32]) {
        if self.verified.0.len() >= MAX_VERIFIED_CACHE {
            self.verified.0.clear();
        }
        self.verified.0.insert(key);
    }

    /// Verify `certificate` for the current committee, using the cache.
    fn check_certificate(
        &mut self,
        certificate: &Certificate,
        threshold: Threshold,
    ) -> Result<(), TxError> {
        if self
            .verified
            .0
            .remove(&cert_key(self.epoch, threshold, certificate))
        {
            return Ok(());
        }
        let weights = self.committee_weights();
        match threshold {
            Threshold::Quorum => certificate.verify_quorum(weights),
            Threshold::Validity => certificate.verify_validity(weights),
        }
        .map_err(|e| TxError::BadCertificate(e.to_string()))
    }

    /// The certificate view of the current committee.
    pub fn committee_weights(&self) -> &CommitteeWeights {
        self.weights
            .as_ref()
            .expect("a committee always covers every shard")
    }

    pub fn params(&self) -> &SystemParams {
        &self.params
    }
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }
    pub fn epoch_state(&self) -> &EpochState {
        &self.epoch_state
    }
    pub fn committee(&self) -> &Committee {
        &self.committee
    }
    /// The next committee, if already fixed for this epoch.
    pub fn selected_committee(&self) -> Option<&Committee> {
        self.selected_committee.as_ref()
    }
    pub fn previous_committee(&self) -> Option<&Committee> {
        self.previous_committee.as_ref()
    }
    pub fn nodes(&self) -> &BTreeMap<NodeId, StorageNode> {
        &self.nodes
    }
    pub fn blob_object(&self, id: &ObjectId) -> Option<&BlobObject> {
        self.blobs.get(id)
    }
    pub fn storage_resource(&self, id: &ObjectId) -> Option<&StorageResource> {
        self.storage.get(id)
    }
    pub fn blob_record(&self, blob_id: &BlobId) -> Option<&BlobIdRecord> {
        self.by_blob_id.get(blob_id)
    }
    pub fn object_events(&self, id: &ObjectId) -> Option<&ObjectEvents> {
        self.object_events.get(id)
    }
    /// The next sequence number the account must use.
    pub fn next_sequence(&self, account: &Address) -> u64 {
        self.accounts.get(account).copied().unwrap_or(0)
    }
    /// Blob objects owned by `owner`.
    pub fn blobs_of(&self, owner: &Address) -> impl Iterator<Item = &BlobObject> {
        self.blobs.values().filter(move |b| &b.owner == owner)
    }
    /// Unused storage resources owned by `owner`.
    pub fn storage_of(&self, owner: &Address) -> impl Iterator<Item = &StorageResource> {
        self.storage.values().filter(move |s| &s.owner == owner)
    }
    /// Storage nodes operated by `owner`, deregistered ones included.
    pub fn nodes_of(&self, owner: &Address) -> impl Iterator<Item = &StorageNode> {
        self.nodes.values().filter(move |n| &n.owner == owner)
    }
    /// Entries applied so far (the index the next entry gets).
    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }
    pub fn event_count(&self) -> u64 {
        self.event_count
    }
    /// The running digest: chained over every applied entry and its events.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
    /// A hash of the complete state (independent of the digest chain).
    pub fn state_hash(&self) -> [u8; 32] {
        blake2b256(&[
            b"floe-ledger-state-v1",
            // The BCS encoding of the state, without decoding entries loaded lazily.
            &self.to_snapshot_bytes(),
        ])
    }
    /// Total capacity of the committee in bytes.
    pub fn total_capacity(&self) -> u64 {
        self.committee
            .members
            .iter()
            .map(|m| self.nodes[&m.node_id].capacity)
            .sum()
    }
    pub fn used_capacity(&self, epoch: Epoch) -> u64 {
        self.used_capacity.get(&epoch).copied().unwrap_or(0)
    }
    pub fn encoding_config(&self) -> EncodingConfig {
        EncodingConfig::new(self.params.n_shards).expect("checked at genesis")
    }
    /// The epoch in force at wall-clock time `now_ms`.
    pub fn epoch_at(&self, now_ms: u64) -> Epoch {
        let elapsed = now_ms.saturating_sub(self.params.genesis_time_ms);
        u32::try_from(elapsed / self.params.epoch_duration_ms).unwrap_or(u32::MAX)
    }
    /// When epoch `epoch` starts, in milliseconds since the Unix epoch.
    pub fn epoch_start_ms(&self, epoch: Epoch) -> u64 {
        self.params
            .genesis_time_ms
            .saturating_add(u64::from(epoch) * self.params.epoch_duration_ms)
    }

    /// Apply one log entry. On success returns its events; on error nothing changed.
    /// A [`LogEntry::Checkpoint`] is a commitment about the log, not a transition: it
    /// changes nothing (not even the entry count or the digest) and has no events.
    pub fn apply(&mut self, entry: &LogEntry) -> Result<Vec<Event>, TxError> {
        if matches!(entry, LogEntry::Checkpoint { .. }) {
            return Ok(Vec::new());
        }
        let before = self.before_entry();
        let mut out = Effects::new(
            self.entry_count,
            entry.digest(),
            self.event_count,
            self.epoch,
        );
        match entry {
            LogEntry::Clock { now_ms } => self.apply_clock(*now_ms, &mut out)?,
            LogEntry::Tx(tx) => self.apply_tx(tx, &mut out)?,
            LogEntry::Rules { version } => self.step_rules(*version)?,
            LogEntry::Checkpoint { .. } => unreachable!("returned above"),
        }
        let events = out.events;
        self.entry_count += 1;
        self.event_count += events.len() as u64;
        self.assert_after_entry(&before, &events);
        self.digest = blake2b256(&[
            b"floe-ledger-entry-v1",
            &self.digest,
            &entry.to_bytes(),
            &bcs::to_bytes(&events).expect("events serialise"),
        ]);
        Ok(events)
    }

    /// When the next committee of `epoch` is fixed: half an epoch after it starts.
    pub fn selection_time_ms(&self, epoch: Epoch) -> u64 {
        self.epoch_start_ms(epoch)
            .saturating_add(self.params.epoch_duration_ms / 2)
    }

    /// Whether a clock entry at `now_ms` would change anything: fix the next committee, or
    /// start the next epoch.
    pub fn clock_due(&self, now_ms: u64) -> bool {
        match self.epoch_state {
            EpochState::Syncing { .. } => false,
            EpochState::NextParamsSelected => self.epoch_at(now_ms) > self.epoch,
            EpochState::Done => now_ms >= self.selection_time_ms(self.epoch),
        }
    }

    /// Fix the next committee (once per epoch, never during a change).
    fn select_next_committee(&mut self, out: &mut Effects) {
        debug_assert!(matches!(self.epoch_state, EpochState::Done));
        self.selected_committee = Some(self.next_committee());
        self.epoch_state = EpochState::NextParamsSelected;
        out.emit(EventKind::EpochParametersSelected {
            next_epoch: self.epoch + 1,
        });
    }

    /// Clock entries drive the epoch state machine: `Done` → (half an epoch in)
    /// `NextParamsSelected` → (the boundary) `Syncing` → (a quorum of shards reported) `Done`.
    /// One step per entry, except that a boundary reached before the committee was fixed fixes
    /// it and starts the change in the same entry.
    fn apply_clock(&mut self, now_ms: u64, out: &mut Effects) -> Result<(), TxError> {
        let target = self.epoch_at(now_ms);
        if matches!(self.epoch_state, EpochState::Syncing { .. }) {
            if target <= self.epoch {
                return Err(TxError::StaleClock {
                    epoch: self.epoch,
                    target,
                });
            }
            return Err(TxError::EpochChangeInProgress(self.epoch));
        }
        let selecting = matches!(self.epoch_state, EpochState::Done)
            && now_ms >= self.selection_time_ms(self.epoch);
        if target <= self.epoch {
            if !selecting {
                return Err(TxError::StaleClock {
                    epoch: self.epoch,
                    target,
                });
            }
            self.select_next_committee(out);
            return Ok(());
        }
        if matches!(self.epoch_state, EpochState::Done) {
            self.select_next_committee(out);
        }
        // One epoch per clock entry: each change must complete before the next starts.
        let next = self.epoch + 1;
        let new_committee = self
            .selected_committee
            .take()
            .expect("selected above or earlier");
        let moved = new_committee.members.iter().any(|m| {
            self.committee
                .members
                .iter()
                .find(|c| c.node_id == m.node_id)
                .map(|c| &c.shards)
                != Some(&m.shards)
        }) || new_committee.members.len() != self.committee.members.len();
        self.close_challenges();
        out.epoch = next;
        let mut prev = new_committee;
        std::mem::swap(&mut self.committee, &mut prev);
        self.previous_committee = Some(prev);
        self.epoch = next;
        // Replaced network keys are honoured through their last epoch, then dropped.
        for node in self.nodes.values_mut() {
            if node
                .previous_network_key
                .is_some_and(|p| p.until_epoch < next)
            {
                node.previous_network_key = None;
            }
        }
        self.used_capacity = self.used_capacity.split_off(&next);
        self.refresh_weights();
        out.emit(EventKind::EpochChangeStart { epoch: next });
        if moved {
            self.epoch_state = EpochState::Syncing {
                reported: Vec::new(),
                weight: 0,
            };
        } else {
            self.epoch_state = EpochState::Done;
            out.emit(EventKind::EpochChangeDone { epoch: next });
            self.start_challenges(out);
        }
        Ok(())
    }

    fn apply_tx(&mut self, tx: &SignedTransaction, out: &mut Effects) -> Result<(), TxError> {
        if !tx.verify_signature() {
            return Err(TxError::BadSignature);
        }
        let sender = tx.sender_address();
        let expected = self.next_sequence(&sender);
        if tx.tx.sequence != expected {
            return Err(TxError::BadSequence {
                expected,
                got: tx.tx.sequence,
            });
        }
        match &tx.tx.kind {
            TxKind::ReserveSpace {
                encoded_size,
                end_epoch,
            } => {
                let res = self.check_reservation(*encoded_size, self.epoch, *end_epoch)?;
                let id = out.new_object_id();
                self.reserve(&res, *encoded_size);
                let resource = StorageResource {
                    id,
                    owner: sender,
                    start_epoch: self.epoch,
                    end_epoch: *end_epoch,
                    storage_size: *encoded_size,
                };
                out.emit(EventKind::StorageReserved {
                    object_id: id,
                    owner: sender,
                    start_epoch: self.epoch,
                    end_epoch: *end_epoch,
                    storage_size: *encoded_size,
                });
                self.storage.insert(id, resource);
            }
            TxKind::RegisterBlob {
                storage,
                blob_id,
                root_hash,
                size,
                encoding_type,
                deletable,
            } => {
                let resource = self
                    .storage
                    .get(storage)
                    .ok_or(TxError::NoSuchObject(*storage))?;
                if resource.owner != sender {
                    return Err(TxError::NotOwner(*storage));
                }
                if !(resource.start_epoch <= self.epoch && self.epoch < resource.end_epoch) {
                    return Err(TxError::StorageNotCurrent {
                        start: resource.start_epoch,
                        end: resource.end_epoch,
                        epoch: self.epoch,
                    });
                }
                self.check_blob(
                    *blob_id,
                    root_hash,
                    *size,
                    *encoding_type,
                    resource.storage_size,
                )?;
                let resource = self.storage.remove(storage).expect("checked above");
                self.register(
                    sender,
                    *blob_id,
                    *size,
                    *encoding_type,
                    *deletable,
                    resource,
                    out,
                );
            }
            TxKind::ReserveAndRegister {
                end_epoch,
                blob_id,
                root_hash,
                size,
                encoding_type,
                deletable,
            } => {
                let encoded = self
                    .encoding_config()
                    .encoded_length(*size)
                    .map_err(|e| TxError::BlobTooLarge(e.to_string()))?;
                self.check_blob(*blob_id, root_hash, *size, *encoding_type, encoded)?;
                let res = self.check_reservation(encoded, self.epoch, *end_epoch)?;
                self.reserve(&res, encoded);
                let id = out.new_object_id();
                let resource = StorageResource {
                    id,
                    owner: sender,
                    start_epoch: self.epoch,
                    end_epoch: *end_epoch,
                    storage_size: encoded,
                };
                self.register(
                    sender,
                    *blob_id,
                    *size,
                    *encoding_type,
                    *deletable,
                    resource,
                    out,
                );
            }
            TxKind::CertifyBlob {
                blob_object,
                certificate,
            } => {
                self.certify(blob_object, certificate, out)?;
            }
            TxKind::InvalidateBlob { certificate } => self.invalidate(certificate, out)?,
            TxKind::DeleteBlob { blob_object } => self.delete_blob(&sender, blob_object, out)?,
            TxKind::ExtendBlob {
                blob_object,
                new_end_epoch,
            } => self.extend_blob(&sender, blob_object, *new_end_epoch, out)?,
            TxKind::TransferBlob {
                blob_object,
                recipient,
            } => self.transfer_blob(&sender, blob_object, *recipient, out)?,
            TxKind::EpochSyncDone { node_id, epoch } => {
                self.sync_done(&sender, node_id, *epoch, out)?
            }
            TxKind::RegisterNode {
                name,
                network_address,
                protocol_key,
                proof_of_possession,
                capacity,
                weight,
                network_public_key,
            } => self.register_node(
                sender,
                node_rules::NodeRegistration {
                    name,
                    network_address,
                    protocol_key,
                    proof_of_possession,
                    capacity: *capacity,
                    weight: *weight,
                    network_public_key: *network_public_key,
                },
                out,
            )?,
            TxKind::DeregisterNode { node_id } => self.set_node_weight(&sender, node_id, 0, out)?,
            TxKind::SetNodeWeight { node_id, weight } => {
                if *weight == 0 {
                    return Err(TxError::BadNode(
                        "weight must be positive (use deregisterNode to leave)".into(),
                    ));
                }
                self.set_node_weight(&sender, node_id, *weight, out)?
            }
            TxKind::SetBlobAttributes {
                blob_object,
                attributes,
            } => self.set_attributes(&sender, blob_object, attributes)?,
            TxKind::RemoveBlobAttributes { blob_object, keys } => {
                self.remove_attributes(&sender, blob_object, keys.as_deref())?
            }
            TxKind::SubmitChallengeReport { report, signature } => {
                self.submit_challenge_report(&sender, report, signature, out)?
            }
            TxKind::SetNetworkKey {
                node_id,
                network_public_key,
            } => self.set_network_key(&sender, node_id, *network_public_key)?,
            TxKind::ShareBlob { blob_object } => self.share_blob(&sender, blob_object, out)?,
            TxKind::ExtendSharedBlob {
                shared_blob,
                new_end_epoch,
            } => self.extend_shared_blob(shared_blob, *new_end_epoch, out)?,
        }
        self.accounts.insert(sender, expected + 1);
        Ok(())
    }

    fn sync_done(
        &mut self,
        sender: &Address,
        node_id: &NodeId,
        epoch: Epoch,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        let node = self
            .nodes
            .get(node_id)
            .ok_or(TxError::NoSuchObject(*node_id))?;
        if &node.owner != sender {
            return Err(TxError::NotOwner(*node_id));
        }
        if epoch != self.epoch {
            return Err(TxError::WrongEpoch {
                message: epoch,
                current: self.epoch,
            });
        }
        let EpochState::Syncing { reported, weight } = &self.epoch_state else {
            return Err(TxError::NoEpochChange(self.epoch));
        };
        let member = self
            .committee
            .members
            .iter()
            .find(|m| &m.node_id == node_id)
            .ok_or(TxError::NotInCommittee(*node_id))?;
        if reported.contains(node_id) {
            return Err(TxError::AlreadyReported(*node_id));
        }
        let shards = member.shards.clone();
        let new_weight = *weight + shards.len() as u32;
        let mut reported = reported.clone();
        reported.push(*node_id);
        out.emit(EventKind::ShardsReceived {
            epoch,
            node_id: *node_id,
            shards,
        });
        if new_weight >= u32::from(self.encoding_config().quorum()) {
            self.epoch_state = EpochState::Done;
            out.emit(EventKind::EpochChangeDone { epoch });
            self.start_challenges(out);
        } else {
            self.epoch_state = EpochState::Syncing {
                reported,
                weight: new_weight,
            };
        }
        Ok(())
    }
}
