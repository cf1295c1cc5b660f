//! Objects held by the ledger: accounts, storage nodes, committees, storage resources, blobs.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use floe_core::{BlobId, EncodingType, Epoch, ObjectId};
use floe_crypto::{NetworkPublicKey, ProofOfPossession, ProtocolKeyPair, ProtocolPublicKey};
use serde::{Deserialize, Serialize};

use crate::tx::AccountKey;

/// Default bound on how far ahead storage may be bought (as on Walrus Mainnet).
pub const DEFAULT_MAX_EPOCHS_AHEAD: u32 = 53;

/// An account: Blake2b-256(0x00 ‖ Ed25519 public key). Shown as `0x` hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// The address of an Ed25519 public key.
    pub fn from_ed25519(public_key: &[u8; 32]) -> Self {
        Address(floe_core::merkle::blake2b256(&[&[0x00], public_key]))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let h = s.trim().strip_prefix("0x").unwrap_or(s.trim());
        let mut out = [0u8; 32];
        hex::decode_to_slice(h, &mut out)
            .map_err(|_| format!("not an address: expected 0x and 64 hex digits, got {s:?}"))?;
        Ok(Address(out))
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_string())
        } else {
            floe_core::bytes32::serialize(&self.0, s)
        }
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?
                .parse()
                .map_err(serde::de::Error::custom)
        } else {
            Ok(Address(floe_core::bytes32::deserialize(d)?))
        }
    }
}

/// A storage node's ID: the object ID created when it registered (or at genesis).
pub type NodeId = ObjectId;

/// Fixed system parameters, set at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemParams {
    pub n_shards: u16,
    /// Epoch length in milliseconds; epoch e starts at `genesis_time_ms + e · epoch_duration_ms`.
    pub epoch_duration_ms: u64,
    pub genesis_time_ms: u64,
    pub max_epochs_ahead: u32,
}

/// A storage node as registered on the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageNode {
    pub id: NodeId,
    pub name: String,
    /// `host:port` of its REST API.
    pub network_address: String,
    pub protocol_key: ProtocolPublicKey,
    /// The account that operates it (bound by the proof of possession).
    pub owner: Address,
    /// Bytes of encoded data it offers to store.
    pub capacity: u64,
    /// Relative weight used to apportion shards.
    pub weight: u64,
    /// The public key of its TLS certificate, pinned by clients; `None`: the node serves
    /// plain HTTP (or sits behind a proxy that terminates TLS).
    pub network_public_key: Option<NetworkPublicKey>,
    /// The key `network_public_key` replaced, still pinned by clients through its
    /// `until_epoch`: the node keeps serving with it until it restarts with the new one.
    #[serde(default)]
    pub previous_network_key: Option<PreviousNetworkKey>,
}

impl StorageNode {
    /// Every key a client accepts from this node's certificate: the registered one, then the
    /// one it replaced while that is still honoured.
    pub fn pinned_keys(&self) -> Vec<NetworkPublicKey> {
        self.network_public_key
            .into_iter()
            .chain(self.previous_network_key.map(|p| p.key))
            .collect()
    }
}

/// A replaced network key and the last epoch in which clients still accept it (the epoch after
/// the one in which it was replaced, so that the overlap is never shorter than one epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousNetworkKey {
    pub key: NetworkPublicKey,
    pub until_epoch: Epoch,
}

/// A committee member and the shards it holds in that epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitteeMember {
    pub node_id: NodeId,
    pub shards: Vec<u16>,
}

/// The committee of one epoch. Member order is the signer-bitmap order (ascending node ID).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Committee {
    pub epoch: Epoch,
    pub n_shards: u16,
    pub members: Vec<CommitteeMember>,
}

impl Committee {
    /// The member index holding `shard`, if any.
    pub fn owner_of(&self, shard: u16) -> Option<usize> {
        self.members.iter().position(|m| m.shards.contains(&shard))
    }
    pub fn weight_of(&self, index: usize) -> u16 {
        self.members.get(index).map_or(0, |m| m.shards.len() as u16)
    }
}

/// Genesis description of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisNode {
    pub name: String,
    pub network_address: String,
    pub protocol_key: ProtocolPublicKey,
    /// Proof of possession of `protocol_key` for `owner` in epoch 0.
    pub proof_of_possession: ProofOfPossession,
    /// The operator account's address.
    pub owner: Address,
    pub capacity: u64,
    pub weight: u64,
    /// The node's network (TLS) public key; absent: plain HTTP.
    #[serde(default)]
    pub network_public_key: Option<NetworkPublicKey>,
}

/// Everything needed to start a ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisConfig {
    /// Format version of this file (1).
    pub version: u32,
    pub n_shards: u16,
    pub epoch_duration_ms: u64,
    pub genesis_time_ms: u64,
    #[serde(default = "default_max_epochs_ahead")]
    pub max_epochs_ahead: u32,
    pub nodes: Vec<GenesisNode>,
    /// The version of the ledger's rules at genesis (see [`crate::rules`]). Absent in files
    /// written before rules were versioned, which start at version 1; left out when 1, so that
    /// such a genesis keeps its bytes and digest.
    #[serde(default = "first_rules", skip_serializing_if = "is_first_rules")]
    pub rules: u16,
}

fn default_max_epochs_ahead() -> u32 {
    DEFAULT_MAX_EPOCHS_AHEAD
}

fn first_rules() -> u16 {
    crate::rules::FIRST_RULES
}

fn is_first_rules(rules: &u16) -> bool {
    *rules == crate::rules::FIRST_RULES
}

/// The format version of the genesis file this build writes.
pub const GENESIS_VERSION: u32 = 1;

impl GenesisNode {
    /// A node of weight 1 serving plain HTTP, whose operator `owner` proves possession of
    /// `key` for epoch 0.
    pub fn new(
        name: impl Into<String>,
        network_address: impl Into<String>,
        key: &ProtocolKeyPair,
        owner: &AccountKey,
        capacity: u64,
    ) -> Self {
        let address = owner.address();
        Self {
            name: name.into(),
            network_address: network_address.into(),
            protocol_key: *key.public_key(),
            proof_of_possession: ProofOfPossession::create(key, 0, &address.0),
            owner: address,
            capacity,
            weight: 1,
            network_public_key: None,
        }
    }

    /// With this network (TLS) key; `None` keeps plain HTTP.
    pub fn with_network_key(mut self, key: Option<NetworkPublicKey>) -> Self {
        self.network_public_key = key;
        self
    }
}

impl GenesisConfig {
    /// A genesis of the current version with the default storage horizon, under this build's
    /// newest rules.
    pub fn new(
        n_shards: u16,
        epoch_duration_ms: u64,
        genesis_time_ms: u64,
        nodes: Vec<GenesisNode>,
    ) -> Self {
        Self {
            version: GENESIS_VERSION,
            n_shards,
            epoch_duration_ms,
            genesis_time_ms,
            max_epochs_ahead: DEFAULT_MAX_EPOCHS_AHEAD,
            nodes,
            rules: crate::rules::RULES_VERSION,
        }
    }
}

/// Bought storage: `size` encoded bytes for epochs `[start_epoch, end_epoch)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageResource {
    pub id: ObjectId,
    pub owner: Address,
    pub start_epoch: Epoch,
    pub end_epoch: Epoch,
    pub storage_size: u64,
}

/// A registered blob (one registration of a blob ID; several may exist).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobObject {
    pub id: ObjectId,
    pub owner: Address,
    pub blob_id: BlobId,
    pub size: u64,
    pub encoding_type: EncodingType,
    pub registered_epoch: Epoch,
    pub certified_epoch: Option<Epoch>,
    pub storage: StorageResource,
    pub deletable: bool,
    /// Set when the owner deleted it; the object is kept so its status stays explainable.
    pub deleted: bool,
    /// Key–value attributes its owner set (Walrus's `metadata` field on a `Blob`), such as
    /// `content-type` or `_walrusBlobType = quilt`. Always encoded (an empty map is one byte in
    /// BCS): BCS is not self-describing, so a field left out while empty could not be decoded
    /// from a snapshot.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl BlobObject {
    pub fn end_epoch(&self) -> Epoch {
        self.storage.end_epoch
    }
    /// Live: not deleted and not expired at `epoch` (expiry is exclusive of `end_epoch`).
    pub fn is_live(&self, epoch: Epoch) -> bool {
        !self.deleted && epoch < self.end_epoch()
    }
}

/// Epoch-change progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EpochState {
    /// The current committee has taken over; nothing in flight.
    Done,
    /// Waiting for nodes to report their new shards synced; `reported` lists node IDs.
    Syncing { reported: Vec<NodeId>, weight: u32 },
    /// The next committee and its shard assignment are fixed (half an epoch after the epoch
    /// started, or as soon as the change into it completed if that was later); membership
    /// changes from now on take effect one epoch later. Nothing in flight.
    NextParamsSelected,
}

impl EpochState {
    /// Whether an epoch change is in progress (nodes are still syncing their new shards).
    pub fn is_syncing(&self) -> bool {
        matches!(self, EpochState::Syncing { .. })
    }
}

/// A blob object wrapped so that anyone may extend it (Walrus's `SharedBlob`, without its
/// funds: Floe charges nothing for storage).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedBlob {
    pub id: ObjectId,
    /// The wrapped blob object; its `owner` is who shared it.
    pub blob: BlobObject,
}
