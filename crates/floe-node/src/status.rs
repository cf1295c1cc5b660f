//! `GET /v1/blobs/{id}/status` and `GET /v1/health` in Walrus's JSON shapes.

use std::sync::atomic::Ordering;

use floe_core::BlobId;
use floe_node_storage::BlobInfo;
use serde::Serialize;

use crate::node::{NodeError, StorageNode};

/// A ledger event as Walrus's `EventID`. Floe's ledger numbers its events; `eventSeq` is that
/// index and `txDigest` repeats it as `floe:<index>` to keep Walrus's shape.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventId {
    pub tx_digest: String,
    pub event_seq: String,
}

impl EventId {
    pub fn new(index: u64) -> Self {
        Self {
            tx_digest: format!("floe:{index}"),
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
            event: EventId::new(ev),
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
        status_event: EventId::new(best.certified_event.unwrap_or(best.registered_event)),
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardDetail {
    pub shard: u16,
    pub status: &'static str,
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
    pub shard_detail: Option<Vec<ShardDetail>>,
    /// Floe: ledger events not yet processed by this node.
    pub event_lag: Option<u64>,
}

impl StorageNode {
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
        let owned = view.my_shards.len();
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
            shard_summary: ShardSummary {
                owned,
                owned_shard_status: OwnedShardStatus {
                    unknown: 0,
                    ready: owned,
                    in_transfer: 0,
                    in_recovery: 0,
                },
                read_only: 0,
            },
            shard_detail: detailed.then(|| {
                view.my_shards
                    .iter()
                    .map(|&s| ShardDetail {
                        shard: s,
                        status: "ready",
                    })
                    .collect()
            }),
            event_lag: ledger_events.map(|total| total.saturating_sub(persisted)),
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
        }
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
                "statusEvent": {"txDigest": "floe:4", "eventSeq": "4"},
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
        let v = serde_json::to_value(blob_status(Some(&info), 2)).unwrap();
        assert_eq!(
            v,
            json!({"invalid": {"event": {"txDigest": "floe:7", "eventSeq": "7"}}})
        );
        // An invalid blob stays invalid past its end epoch; an expired or unknown one is
        // nonexistent.
        assert_eq!(
            serde_json::to_value(blob_status(Some(&info), 9)).unwrap(),
            json!({"invalid": {"event": {"txDigest": "floe:7", "eventSeq": "7"}}})
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
