//! `GET /v1/blobs/{id}/status` and `GET /v1/health` in Walrus's JSON shapes.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;

use floe_core::{BlobId, TxDigest};
use floe_node_storage::BlobInfo;
use serde::Serialize;

use crate::drift::BlobTableDigest;
use crate::node::{NodeError, StorageNode};
use crate::plan::{EpochFacts, gained};
use crate::state::MigrationPhase;

/// A ledger event as Walrus's `EventID`: `txDigest` is the base58 digest of the ledger entry
/// that emitted it, `eventSeq` the event's index in the ledger's event stream.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventId {
    pub tx_digest: TxDigest,
    pub event_seq: String,
}

impl EventId {
    pub fn new(index: u64, tx_digest: TxDigest) -> Self {
        Self {
            tx_digest,
            event_seq: index.to_string(),
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DeletableCounts {
    pub count_deletable_total: u32,
    pub count_deletable_certified: u32,
}

/// The node's view of a blob's status, in Walrus's JSON: variants and their fields are
/// camelCase (`{"permanent":{"endEpoch":…,"isCertified":…,"deletableCounts":{…}}}`), while the
/// deletable counts keep their snake_case names.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum BlobStatus {
    Nonexistent,
    Invalid {
        event: EventId,
    },
    Permanent {
        end_epoch: u32,
        is_certified: bool,
        status_event: EventId,
        deletable_counts: DeletableCounts,
        initial_certified_epoch: Option<u32>,
    },
    Deletable {
        initial_certified_epoch: Option<u32>,
        deletable_counts: DeletableCounts,
    },
}

/// Aggregate a blob's registrations at `epoch`.
pub fn blob_status(info: Option<&BlobInfo>, epoch: u32) -> BlobStatus {
    let Some(info) = info else {
        return BlobStatus::Nonexistent;
    };
    if let Some(ev) = info.invalid_event {
        return BlobStatus::Invalid {
            event: EventId::new(ev, info.invalid_tx.unwrap_or_default()),
        };
    }
    let live: Vec<_> = info
        .objects
        .values()
        .filter(|o| !o.deleted && epoch < o.end_epoch)
        .collect();
    if live.is_empty() {
        return BlobStatus::Nonexistent;
    }
    let counts = DeletableCounts {
        count_deletable_total: live.iter().filter(|o| o.deletable).count() as u32,
        count_deletable_certified: live
            .iter()
            .filter(|o| o.deletable && o.certified_epoch.is_some())
            .count() as u32,
    };
    let initial_certified_epoch = live.iter().filter_map(|o| o.certified_epoch).min();
    let permanent: Vec<_> = live.iter().filter(|o| !o.deletable).collect();
    if permanent.is_empty() {
        return BlobStatus::Deletable {
            initial_certified_epoch,
            deletable_counts: counts,
        };
    }
    let certified = permanent
        .iter()
        .filter(|o| o.certified_epoch.is_some())
        .max_by_key(|o| o.end_epoch);
    let (best, is_certified) = match certified {
        Some(o) => (o, true),
        None => (
            permanent
                .iter()
                .max_by_key(|o| o.end_epoch)
                .expect("non-empty"),
            false,
        ),
    };
    BlobStatus::Permanent {
        end_epoch: best.end_epoch,
        is_certified,
        status_event: match (best.certified_event, best.certified_tx) {
            (Some(index), tx) => EventId::new(index, tx.unwrap_or_default()),
            (None, _) => EventId::new(best.registered_event, best.registered_tx),
        },
        deletable_counts: counts,
        initial_certified_epoch,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventProgress {
    pub persisted: u64,
    pub pending: u64,
    pub highest_finished_event_index: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedShardStatus {
    pub unknown: usize,
    pub ready: usize,
    pub in_transfer: usize,
    pub in_recovery: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardSummary {
    pub owned: usize,
    pub owned_shard_status: OwnedShardStatus,
    pub read_only: usize,
}

/// A shard's state on this node (Walrus's `ShardStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ShardStatus {
    Unknown,
    Ready,
    /// Gained in the epoch change in progress and being pulled from its previous owner.
    InTransfer,
    /// Gained, its pull over (or given up on), and missing data being rebuilt by recovery.
    InRecovery,
    /// Lost in the epoch change: still served for reads and shard sync until the next epoch.
    ReadOnly,
}

/// A shard with its status (`ShardHealthInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardHealthInfo {
    pub shard: u16,
    pub status: ShardStatus,
}

/// `shardDetail`: the owned shards, and the others held (read-only ones).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardStatusDetail {
    pub owned: Vec<ShardHealthInfo>,
    pub other: Vec<ShardHealthInfo>,
}

/// What the health report needs to know about the shards.
pub struct ShardFacts<'a> {
    pub owned: &'a BTreeSet<u16>,
    pub read_only: &'a BTreeSet<u16>,
    /// Owned shards gained in the current epoch's change.
    pub gained: &'a HashSet<u16>,
    /// Gained shards whose pull from the previous owner has not finished.
    pub awaiting_pull: &'a HashSet<u16>,
    pub phase: MigrationPhase,
    /// An epoch change is in progress.
    pub changing: bool,
}

/// Each shard's status, then the summary and the detail.
pub fn shard_health(f: &ShardFacts<'_>) -> (ShardSummary, ShardStatusDetail) {
    let owned: Vec<ShardHealthInfo> = f
        .owned
        .iter()
        .map(|&shard| {
            let status = if !f.gained.contains(&shard) {
                ShardStatus::Ready
            } else {
                match f.phase {
                    MigrationPhase::Finished => ShardStatus::Ready,
                    MigrationPhase::Running if f.awaiting_pull.contains(&shard) => {
                        ShardStatus::InTransfer
                    }
                    MigrationPhase::Running => ShardStatus::InRecovery,
                    MigrationPhase::NotStarted if f.changing => ShardStatus::Unknown,
                    MigrationPhase::NotStarted => ShardStatus::Ready,
                }
            };
            ShardHealthInfo { shard, status }
        })
        .collect();
    let count = |s: ShardStatus| owned.iter().filter(|i| i.status == s).count();
    let summary = ShardSummary {
        owned: owned.len(),
        owned_shard_status: OwnedShardStatus {
            unknown: count(ShardStatus::Unknown),
            ready: count(ShardStatus::Ready),
            in_transfer: count(ShardStatus::InTransfer),
            in_recovery: count(ShardStatus::InRecovery),
        },
        read_only: f.read_only.len(),
    };
    let other = f
        .read_only
        .iter()
        .map(|&shard| ShardHealthInfo {
            shard,
            status: ShardStatus::ReadOnly,
        })
        .collect();
    (summary, ShardStatusDetail { owned, other })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Uptime {
    pub secs: u64,
    pub nanos: u32,
}

/// `ServiceHealthInfo`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthInfo {
    pub uptime: Uptime,
    pub epoch: u32,
    pub public_key: String,
    pub node_status: &'static str,
    pub event_progress: EventProgress,
    pub shard_summary: ShardSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_detail: Option<ShardStatusDetail>,
    /// Floe: ledger events not yet processed by this node.
    pub event_lag: Option<u64>,
    /// Floe: the blob-table digest taken at the last epoch change this process saw (the drift
    /// check; see `drift`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob_table_digest: Option<BlobTableDigest>,
    /// Floe, with `?detailed=true`: each background worker's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<Vec<crate::runner::WorkerStatus>>,
}

impl StorageNode {
    /// The last blob-table digest taken (none before this process saw an epoch change).
    pub fn blob_table_digest(&self) -> Option<BlobTableDigest> {
        self.blob_table_digest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn blob_status(&self, blob_id: &BlobId) -> Result<BlobStatus, NodeError> {
        let epoch = self.view().epoch;
        Ok(blob_status(
            self.store.get_blob_info(blob_id)?.as_ref(),
            epoch,
        ))
    }

    pub fn health(&self, detailed: bool, ledger_events: Option<u64>) -> HealthInfo {
        let view = self.view();
        let up = self.started.elapsed();
        let persisted = self.events_persisted.load(Ordering::Relaxed);
        let facts = EpochFacts::of(&view, Default::default(), false);
        let gained: HashSet<u16> = gained(&facts).into_iter().map(|(s, _)| s).collect();
        let (summary, detail) = shard_health(&ShardFacts {
            owned: &view.my_shards,
            read_only: &view.read_only,
            gained: &gained,
            awaiting_pull: &self.epoch_sync.awaiting(view.epoch),
            phase: self.epoch_sync.phase(view.epoch),
            changing: view.syncing(),
        });
        HealthInfo {
            uptime: Uptime {
                secs: up.as_secs(),
                nanos: up.subsec_nanos(),
            },
            epoch: view.epoch,
            public_key: self.public_key().to_base64(),
            node_status: if view.my_index.is_some() {
                "Active"
            } else {
                "Standby"
            },
            event_progress: EventProgress {
                persisted,
                pending: 0,
                highest_finished_event_index: persisted.checked_sub(1),
            },
            shard_summary: summary,
            shard_detail: detailed.then_some(detail),
            event_lag: ledger_events.map(|total| total.saturating_sub(persisted)),
            blob_table_digest: self.blob_table_digest(),
            workers: detailed.then(|| self.workers().statuses()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_core::ObjectId;
    use floe_node_storage::ObjectInfo;
    use serde_json::json;

    fn object(deletable: bool, certified: bool) -> ObjectInfo {
        ObjectInfo {
            end_epoch: 9,
            deletable,
            certified_epoch: certified.then_some(1),
            deleted: false,
            registered_event: 3,
            certified_event: certified.then_some(4),
            registered_tx: TxDigest([3; 32]),
            certified_tx: certified.then_some(TxDigest([4; 32])),
        }
    }

    #[test]
    fn shard_health_tells_transfer_recovery_and_read_only_apart() {
        let owned: BTreeSet<u16> = [1, 2, 3, 4].into();
        let read_only: BTreeSet<u16> = [7, 8].into();
        let gained: HashSet<u16> = [3, 4].into();
        let awaiting: HashSet<u16> = [3].into();
        let facts = |phase, changing| ShardFacts {
            owned: &owned,
            read_only: &read_only,
            gained: &gained,
            awaiting_pull: &awaiting,
            phase,
            changing,
        };
        let (summary, detail) = shard_health(&facts(MigrationPhase::Running, true));
        assert_eq!(
            serde_json::to_value(&summary).unwrap(),
            json!({"owned": 4, "ownedShardStatus":
                {"unknown": 0, "ready": 2, "inTransfer": 1, "inRecovery": 1}, "readOnly": 2})
        );
        assert_eq!(
            serde_json::to_value(&detail).unwrap(),
            json!({
                "owned": [
                    {"shard": 1, "status": "ready"}, {"shard": 2, "status": "ready"},
                    {"shard": 3, "status": "inTransfer"}, {"shard": 4, "status": "inRecovery"}
                ],
                "other": [{"shard": 7, "status": "readOnly"}, {"shard": 8, "status": "readOnly"}]
            })
        );
        let (summary, _) = shard_health(&facts(MigrationPhase::NotStarted, true));
        assert_eq!(summary.owned_shard_status.unknown, 2);
        let (summary, _) = shard_health(&facts(MigrationPhase::Finished, true));
        assert_eq!(summary.owned_shard_status.ready, 4);
    }

    #[test]
    fn status_json_has_walrus_field_names() {
        let mut info = BlobInfo::default();
        info.objects.insert(ObjectId([1; 32]), object(false, true));
        info.objects.insert(ObjectId([2; 32]), object(true, false));
        let v = serde_json::to_value(blob_status(Some(&info), 2)).unwrap();
        assert_eq!(
            v,
            json!({"permanent": {
                "endEpoch": 9,
                "isCertified": true,
                "statusEvent": {"txDigest": TxDigest([4; 32]).to_string(), "eventSeq": "4"},
                "deletableCounts": {"count_deletable_total": 1, "count_deletable_certified": 0},
                "initialCertifiedEpoch": 1
            }})
        );
        info.objects.remove(&ObjectId([1; 32]));
        let v = serde_json::to_value(blob_status(Some(&info), 2)).unwrap();
        assert_eq!(
            v,
            json!({"deletable": {
                "initialCertifiedEpoch": null,
                "deletableCounts": {"count_deletable_total": 1, "count_deletable_certified": 0}
            }})
        );
        info.invalid_event = Some(7);
        info.invalid_tx = Some(TxDigest([7; 32]));
        let v = serde_json::to_value(blob_status(Some(&info), 2)).unwrap();
        assert_eq!(
            v,
            json!({"invalid": {"event": {"txDigest": TxDigest([7; 32]).to_string(), "eventSeq": "7"}}})
        );
        // An invalid blob stays invalid past its end epoch; an expired or unknown one is
        // nonexistent.
        assert_eq!(
            serde_json::to_value(blob_status(Some(&info), 9)).unwrap(),
            json!({"invalid": {"event": {"txDigest": TxDigest([7; 32]).to_string(), "eventSeq": "7"}}})
        );
        info.invalid_event = None;
        assert_eq!(
            serde_json::to_value(blob_status(Some(&info), 9)).unwrap(),
            json!("nonexistent")
        );
        assert_eq!(
            serde_json::to_value(blob_status(None, 0)).unwrap(),
            json!("nonexistent")
        );
    }
}
