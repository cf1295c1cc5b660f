//! The JSON shapes of the ledger's HTTP API, shared by the server and its clients.

use std::collections::BTreeMap;

use floe_core::{BlobId, Epoch, ObjectId};
use floe_crypto::ProtocolPublicKey;
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::state::LedgerState;
use crate::status::BlobStatus;
use crate::types::{
    Address, BlobObject, Committee, EpochState, NodeId, StorageNode, StorageResource,
};

/// `{"success":{"code":200,"data":…}}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub success: Success<T>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Success<T> {
    pub code: u16,
    pub data: T,
}

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Self {
            success: Success { code: 200, data },
        }
    }
}

/// `{"error":{"status","code","message","details":[…]}}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorStatus,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorStatus {
    pub status: String,
    pub code: u16,
    pub message: String,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(rename = "@type")]
    pub kind: String,
    pub reason: String,
    pub domain: String,
}

impl ErrorBody {
    /// The machine-readable reason (e.g. `BAD_SEQUENCE`), if present.
    pub fn reason(&self) -> Option<&str> {
        self.error.details.first().map(|d| d.reason.as_str())
    }
}

/// An accepted transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitResponse {
    pub entry_index: u64,
    /// Hex of the running digest after this entry.
    pub digest: String,
    pub events: Vec<Event>,
}

/// A committee member with its node's registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberInfo {
    pub node_id: NodeId,
    pub name: String,
    pub network_address: String,
    pub protocol_key: ProtocolPublicKey,
    pub owner: Address,
    pub capacity: u64,
    pub shards: Vec<u16>,
    /// The node's network (TLS) public key, base64 of the compressed P-256 point; absent when
    /// the node serves plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_public_key: Option<floe_crypto::NetworkPublicKey>,
    /// The key that `network_public_key` replaced, still accepted from the node's certificate
    /// until the epoch after the change ends (the node may not have restarted with the new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_network_public_key: Option<floe_crypto::NetworkPublicKey>,
}

impl MemberInfo {
    /// Every key a client accepts from this member's certificate (none: plain HTTP).
    pub fn pinned_keys(&self) -> Vec<floe_crypto::NetworkPublicKey> {
        self.network_public_key
            .into_iter()
            .chain(self.previous_network_public_key)
            .collect()
    }
}

/// A committee, members in signer-bitmap order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitteeInfo {
    pub epoch: Epoch,
    pub n_shards: u16,
    pub members: Vec<MemberInfo>,
}

impl CommitteeInfo {
    /// The committee's node IDs and shards, as the state machine holds them.
    pub fn to_committee(&self) -> Committee {
        Committee {
            epoch: self.epoch,
            n_shards: self.n_shards,
            members: self
                .members
                .iter()
                .map(|m| crate::types::CommitteeMember {
                    node_id: m.node_id,
                    shards: m.shards.clone(),
                })
                .collect(),
        }
    }

    pub fn new(c: &Committee, nodes: &BTreeMap<ObjectId, StorageNode>) -> Self {
        Self {
            epoch: c.epoch,
            n_shards: c.n_shards,
            members: c
                .members
                .iter()
                .filter_map(|m| {
                    let n = nodes.get(&m.node_id)?;
                    Some(MemberInfo {
                        node_id: m.node_id,
                        name: n.name.clone(),
                        network_address: n.network_address.clone(),
                        protocol_key: n.protocol_key,
                        owner: n.owner,
                        capacity: n.capacity,
                        shards: m.shards.clone(),
                        network_public_key: n.network_public_key,
                        previous_network_public_key: n.previous_network_key.map(|p| p.key),
                    })
                })
                .collect(),
        }
    }

    /// The member index holding `shard`.
    pub fn owner_of(&self, shard: u16) -> Option<usize> {
        self.members.iter().position(|m| m.shards.contains(&shard))
    }
}

/// `GET /v1/system`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemInfo {
    pub epoch: Epoch,
    pub epoch_state: EpochState,
    pub n_shards: u16,
    pub epoch_duration_ms: u64,
    pub genesis_time_ms: u64,
    pub current_epoch_start_ms: u64,
    pub next_epoch_start_ms: u64,
    pub max_epochs_ahead: u32,
    pub total_capacity: u64,
    pub used_capacity: u64,
    pub max_blob_size: u64,
    pub committee: CommitteeInfo,
    pub previous_committee: Option<CommitteeInfo>,
    /// The committee the next epoch change would install with the nodes registered now
    /// (fixed at the boundary; `null` from servers that do not compute it).
    #[serde(default)]
    pub next_committee: Option<CommitteeInfo>,
}

impl SystemInfo {
    pub fn from_state(s: &LedgerState) -> Self {
        Self {
            epoch: s.epoch(),
            epoch_state: s.epoch_state().clone(),
            n_shards: s.params().n_shards,
            epoch_duration_ms: s.params().epoch_duration_ms,
            genesis_time_ms: s.params().genesis_time_ms,
            current_epoch_start_ms: s.epoch_start_ms(s.epoch()),
            next_epoch_start_ms: s.epoch_start_ms(s.epoch() + 1),
            max_epochs_ahead: s.params().max_epochs_ahead,
            total_capacity: s.total_capacity(),
            used_capacity: s.used_capacity(s.epoch()),
            max_blob_size: s.encoding_config().max_blob_size(),
            committee: CommitteeInfo::new(s.committee(), s.nodes()),
            previous_committee: s
                .previous_committee()
                .map(|c| CommitteeInfo::new(c, s.nodes())),
            next_committee: Some(CommitteeInfo::new(&s.next_committee(), s.nodes())),
        }
    }

    /// The node ID of the member with this protocol key in the current, next or previous
    /// committee: a node that holds shards, will, or may still be handing them over.
    pub fn node_in_committees(&self, key: &ProtocolPublicKey) -> Option<NodeId> {
        [
            Some(&self.committee),
            self.next_committee.as_ref(),
            self.previous_committee.as_ref(),
        ]
        .into_iter()
        .flatten()
        .find_map(|c| c.members.iter().find(|m| &m.protocol_key == key))
        .map(|m| m.node_id)
    }
}

/// `GET /v1/blobs/{blob_id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobStatusResponse {
    pub blob_id: BlobId,
    pub epoch: Epoch,
    pub status: BlobStatus,
    /// The event that made the status so (absent for `nonexistent`).
    pub event: Option<Event>,
}

/// `GET /v1/blobs/{blob_id}/certificate`: the certificate of the blob's first certification,
/// as the ledger verified it (Floe only; kept in memory, rebuilt from the log on start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRecord {
    pub blob_id: BlobId,
    /// The ledger epoch the certificate was applied in (its committee signed it).
    pub epoch: Epoch,
    /// The `BlobCertified` event it produced.
    pub event_index: u64,
    pub certificate: floe_crypto::Certificate,
}

/// `GET /v1/objects/{object_id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectResponse {
    Blob(BlobObject),
    Storage(StorageResource),
    Node(StorageNode),
    SharedBlob(crate::types::SharedBlob),
}

impl ObjectResponse {
    /// The blob object to read for this object: a blob object itself, or the one a shared
    /// blob wraps; `None` for other objects.
    pub fn into_blob(self) -> Option<BlobObject> {
        match self {
            ObjectResponse::Blob(b) => Some(b),
            ObjectResponse::SharedBlob(shared) => Some(shared.blob),
            ObjectResponse::Storage(_) | ObjectResponse::Node(_) => None,
        }
    }
}

/// `GET /v1/accounts/{address}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountResponse {
    pub address: Address,
    pub next_sequence: u64,
    pub blobs: Vec<BlobObject>,
    pub storage: Vec<StorageResource>,
    /// Storage nodes this account operates, deregistered ones included (weight 0). Absent from
    /// ledgers older than this field, hence the default.
    #[serde(default)]
    pub nodes: Vec<StorageNode>,
}

/// `GET /v1/events`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsPage {
    pub events: Vec<Event>,
    pub next_cursor: u64,
}

/// `GET /v1/entries/{index}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryDigest {
    pub index: u64,
    pub digest: String,
}

/// `GET /v1/health`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthInfo {
    /// `ok`, or `failed` when the log failed and the process must be restarted.
    pub status: String,
    pub epoch: Epoch,
    pub entries: u64,
    pub durable_entries: u64,
    pub events: u64,
    pub digest: String,
    pub state_hash: String,
    pub failure: Option<String>,
    /// `file` (the embedded log) or `etcd` (a replica of the replicated log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Replicas: the hash of the last applied log record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_head: Option<String>,
    /// Replicas: the newest local snapshot's position and root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_root: Option<String>,
    /// Replicas: the last error talking to etcd, cleared by the next applied batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}
