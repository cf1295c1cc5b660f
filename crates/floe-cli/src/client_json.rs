//! What `floe store | read | blob-status | info | list-blobs | delete | extend --json` print:
//! one type per answer, so the keys scripts read are written down in one place and kept by the
//! compiler. Keys are camelCase, as in Walrus's JSON.

use std::path::Path;

use floe_client::{BlobObjectJson, BlobStoreResult, VerifiedStatus};
use floe_core::{BlobId, Epoch, ObjectId};
use floe_ledger::EpochState;
use floe_ledger::api_types::{CommitteeInfo, HealthInfo, SystemInfo};
use floe_ledger::challenge::EpochSummary;
use serde::Serialize;

use crate::audit_cmd::LastAudit;
use crate::challenge_cmd::BlobChallenges;

/// `floe store --json`: one per file.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredFile<'a> {
    pub path: &'a Path,
    pub blob_store_result: BlobStoreResult,
}

/// `floe read --json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum ReadBlob<'a> {
    /// With `--out FILE`: where the blob went.
    #[serde(rename_all = "camelCase")]
    ToFile {
        blob_id: BlobId,
        out: &'a Path,
        size: usize,
    },
    /// Without: the blob itself, base64.
    #[serde(rename_all = "camelCase")]
    Inline { blob_id: BlobId, blob: String },
}

/// `floe blob-status --json`: the status the nodes confirmed, and what this client last saw
/// of audits and challenges.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobStatusJson<'a> {
    #[serde(flatten)]
    pub status: &'a VerifiedStatus,
    pub last_audit: Option<&'a LastAudit>,
    pub last_challenges: Option<&'a BlobChallenges>,
}

/// One ledger server or replica, as `floe info` saw it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaneRow {
    pub url: String,
    pub up: bool,
    #[serde(flatten)]
    pub answer: PlaneAnswer,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum PlaneAnswer {
    #[serde(rename_all = "camelCase")]
    Health {
        status: String,
        backend: String,
        entries: u64,
        state_hash: String,
        snapshot_seq: Option<u64>,
        last_error: Option<String>,
    },
    Silent {
        error: String,
    },
}

impl PlaneRow {
    pub fn answered(url: String, h: HealthInfo) -> Self {
        Self {
            url,
            up: h.status == "ok",
            answer: PlaneAnswer::Health {
                status: h.status,
                backend: h.backend.unwrap_or_else(|| "file".into()),
                entries: h.entries,
                state_hash: h.state_hash,
                snapshot_seq: h.snapshot_seq,
                last_error: h.last_error,
            },
        }
    }

    pub fn silent(url: String, error: String) -> Self {
        Self {
            url,
            up: false,
            answer: PlaneAnswer::Silent { error },
        }
    }

    /// The log backend and applied entries of an answering row.
    pub fn backend_and_entries(&self) -> Option<(&str, u64)> {
        match &self.answer {
            PlaneAnswer::Health {
                backend, entries, ..
            } => Some((backend, *entries)),
            PlaneAnswer::Silent { .. } => None,
        }
    }
}

/// A storage node of the current or next committee, for `floe info`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRow {
    pub node_id: floe_ledger::NodeId,
    pub name: String,
    pub network_address: String,
    pub shards: usize,
    /// `None` when the ledger does not show the next committee.
    pub next_shards: Option<usize>,
    /// `joining` or `leaving` when the node's shards change at the next epoch.
    pub change: Option<&'static str>,
}

impl NodeRow {
    pub fn new(
        node_id: floe_ledger::NodeId,
        name: String,
        network_address: String,
        shards: usize,
        next_shards: Option<usize>,
    ) -> Self {
        let change = match (shards, next_shards) {
            (0, Some(k)) if k > 0 => Some("joining"),
            (k, Some(0)) if k > 0 => Some("leaving"),
            _ => None,
        };
        Self {
            node_id,
            name,
            network_address,
            shards,
            next_shards,
            change,
        }
    }
}

/// The committee in `floe info --json`: whole with `--committee`, else its member count.
#[derive(Serialize)]
#[serde(untagged)]
pub enum CommitteeJson<'a> {
    Whole(&'a CommitteeInfo),
    #[serde(rename_all = "camelCase")]
    Counted {
        epoch: Epoch,
        n_shards: u16,
        members: usize,
    },
}

/// `floe info --json`: the ledger's system object (as `GET /v1/system` has it, the committee
/// counted unless `--committee`), and what this client knows around it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoJson<'a> {
    pub epoch: Epoch,
    pub epoch_state: &'a EpochState,
    pub n_shards: u16,
    pub epoch_duration_ms: u64,
    pub genesis_time_ms: u64,
    pub current_epoch_start_ms: u64,
    pub next_epoch_start_ms: u64,
    pub max_epochs_ahead: u32,
    pub total_capacity: u64,
    pub used_capacity: u64,
    pub max_blob_size: u64,
    pub committee: CommitteeJson<'a>,
    pub previous_committee: Option<&'a CommitteeInfo>,
    pub next_committee: Option<&'a CommitteeInfo>,
    pub control_plane: &'a [PlaneRow],
    pub wallet_address: Option<String>,
    pub daemon_url: Option<&'a str>,
    pub challenges: Option<&'a EpochSummary>,
    pub next_committee_fixed: bool,
    pub nodes: &'a [NodeRow],
}

impl<'a> InfoJson<'a> {
    /// The system's fields (the committee whole or counted), then the client's.
    pub fn new(s: &'a SystemInfo, whole_committee: bool, c: ClientPart<'a>) -> Self {
        let committee = if whole_committee {
            CommitteeJson::Whole(&s.committee)
        } else {
            CommitteeJson::Counted {
                epoch: s.committee.epoch,
                n_shards: s.committee.n_shards,
                members: s.committee.members.len(),
            }
        };
        InfoJson {
            epoch: s.epoch,
            epoch_state: &s.epoch_state,
            n_shards: s.n_shards,
            epoch_duration_ms: s.epoch_duration_ms,
            genesis_time_ms: s.genesis_time_ms,
            current_epoch_start_ms: s.current_epoch_start_ms,
            next_epoch_start_ms: s.next_epoch_start_ms,
            max_epochs_ahead: s.max_epochs_ahead,
            total_capacity: s.total_capacity,
            used_capacity: s.used_capacity,
            max_blob_size: s.max_blob_size,
            committee,
            previous_committee: s.previous_committee.as_ref(),
            next_committee: s.next_committee.as_ref(),
            control_plane: c.control_plane,
            wallet_address: c.wallet_address,
            daemon_url: c.daemon_url,
            challenges: c.challenges,
            next_committee_fixed: floe_ledger::membership::next_committee_fixed(&s.epoch_state),
            nodes: c.nodes,
        }
    }
}

/// What the client adds to the system object in `floe info --json`.
pub struct ClientPart<'a> {
    pub control_plane: &'a [PlaneRow],
    pub wallet_address: Option<String>,
    pub daemon_url: Option<&'a str>,
    pub challenges: Option<&'a EpochSummary>,
    pub nodes: &'a [NodeRow],
}

/// `floe list-blobs --json`: one per blob object.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedBlob {
    #[serde(flatten)]
    pub object: BlobObjectJson,
    pub deleted: bool,
    pub expired: bool,
}

/// `floe delete --json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedObjects {
    pub deleted: Vec<DeletedObject>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedObject {
    pub object_id: ObjectId,
    pub blob_id: BlobId,
}

/// `floe extend --json`: the object's new end epoch, keyed by the object's kind.
#[derive(Serialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum Extended {
    #[serde(rename_all = "camelCase")]
    Owned {
        object_id: ObjectId,
        end_epoch: Epoch,
    },
    #[serde(rename_all = "camelCase")]
    Shared {
        shared_blob_object_id: ObjectId,
        end_epoch: Epoch,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system() -> SystemInfo {
        let committee = CommitteeInfo {
            epoch: 5,
            n_shards: 10,
            members: Vec::new(),
        };
        SystemInfo {
            epoch: 5,
            epoch_state: EpochState::Done,
            n_shards: 10,
            epoch_duration_ms: 60_000,
            genesis_time_ms: 0,
            current_epoch_start_ms: 300_000,
            next_epoch_start_ms: 360_000,
            max_epochs_ahead: 53,
            total_capacity: 1,
            used_capacity: 0,
            max_blob_size: 1,
            committee: committee.clone(),
            previous_committee: None,
            next_committee: Some(committee),
        }
    }

    /// `floe info --json` is the ledger's system object with the client's fields added: every
    /// key of `GET /v1/system` is there with its value, the committee counted unless asked for.
    #[test]
    fn info_keeps_every_key_of_the_system_object() {
        let s = system();
        let plane = [PlaneRow::silent("http://l".into(), "down".into())];
        let info = |whole| {
            serde_json::to_value(InfoJson::new(
                &s,
                whole,
                ClientPart {
                    control_plane: &plane,
                    wallet_address: None,
                    daemon_url: None,
                    challenges: None,
                    nodes: &[],
                },
            ))
            .unwrap()
        };
        let sys = serde_json::to_value(&s).unwrap();
        let whole = info(true);
        for (k, v) in sys.as_object().unwrap() {
            assert_eq!(&whole[k], v, "key {k}");
        }
        let counted = info(false);
        assert_eq!(counted["committee"]["members"], 0);
        assert_eq!(counted["committee"]["nShards"], 10);
        assert_eq!(counted["nextCommitteeFixed"], false);
        assert_eq!(
            counted["controlPlane"][0],
            serde_json::json!({"url": "http://l", "up": false, "error": "down"})
        );
    }

    #[test]
    fn extend_names_the_object_by_its_kind() {
        let id = ObjectId([1; 32]);
        let v = serde_json::to_value(Extended::Shared {
            shared_blob_object_id: id,
            end_epoch: 9,
        })
        .unwrap();
        assert_eq!(v["sharedBlobObjectId"], id.to_string());
        assert_eq!(v["endEpoch"], 9);
        assert!(v.get("objectId").is_none());
    }
}
