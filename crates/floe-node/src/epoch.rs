//! The node's part in an epoch change.
//!
//! At `EpochChangeStart` the committee view is reloaded (by the follower) and
//! [`StorageNode::on_committee_change`] runs:
//!
//! * shards lost stay in the store, read-only: still served to readers (who use the committee
//!   that certified the blob until the change is done) and to the new owners' shard sync;
//! * shards gained are pulled from their previous owner with [`StorageNode::pull_shard`]; if
//!   that owner is down or serves bad data, the node falls back to RedStuff recovery, blob by
//!   blob ([`StorageNode::sync_blob`]);
//! * once every certified blob's slivers of its shards are stored, the node submits
//!   `EpochSyncDone`; the ledger ends the change when a quorum of shards has reported.
//!
//! Read-only shards are emptied when the next epoch starts: the quorum may end the change before
//! every new owner has pulled its shards, and the stragglers keep pulling after it.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use floe_core::{BlobId, Epoch, ShardIndex, SliverPairIndex, SliverType};
use floe_ledger::TxKind;
use floe_ledger::api_types::MemberInfo;
use floe_ledger_client::AccountSession;

use crate::node::{NodeError, StorageNode};
use crate::shard_sync::ShardSyncError;
use crate::view::CommitteeView;

/// Pause between rounds of a migration that has not finished.
const ROUND_PAUSE: Duration = Duration::from_secs(1);
/// Attempts of a blob's recovery per round.
const RECOVERY_ATTEMPTS: u32 = 3;

/// Epoch-change bookkeeping of one node.
#[derive(Default)]
pub struct EpochSyncState {
    /// Epochs whose migration task was started.
    started: Mutex<HashSet<Epoch>>,
    /// Slivers and bytes received by shard sync.
    pub slivers_migrated: AtomicU64,
    pub bytes_migrated: AtomicU64,
    /// Blob syncs that rebuilt at least one sliver by RedStuff recovery: the fallback of a
    /// migration or a background sync (at an epoch change the two race for the shards of a
    /// previous owner that is down, so a blob may count twice).
    pub blobs_recovered: AtomicU64,
    /// The last finished migration: (epoch, milliseconds until `EpochSyncDone` was accepted).
    pub last: Mutex<Option<(Epoch, u64)>>,
    /// Shards gained in the change into the epoch given whose pull from the previous owner
    /// has neither finished nor failed. Background blob syncs leave their slivers to shard
    /// sync instead of rebuilding them from n peers at the same time.
    awaiting: Mutex<(Epoch, HashSet<u16>)>,
}

/// Where a node's migration into an epoch stands (for the health report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPhase {
    NotStarted,
    /// Gained shards are being pulled or recovered.
    Running,
    /// Every gained shard was pulled or recovered and the sync was reported.
    Finished,
}

/// Figures of the node's migrations so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrationStats {
    pub slivers_migrated: u64,
    pub bytes_migrated: u64,
    pub blobs_recovered: u64,
    pub last_epoch: Option<Epoch>,
    pub last_duration_ms: Option<u64>,
}

impl StorageNode {
    /// Checks that `pair` is in range and its shard is served here (owned, or held read-only
    /// during an epoch change); returns the shard.
    pub(crate) fn served_shard_for(
        &self,
        view: &CommitteeView,
        blob_id: &BlobId,
        pair: u16,
    ) -> Result<ShardIndex, NodeError> {
        if pair >= view.n() {
            return Err(NodeError::IndexOutOfRange {
                index: pair,
                n: view.n(),
            });
        }
        let shard = view.shard_of(blob_id, SliverPairIndex(pair));
        if !view.serves(shard) {
            return Err(NodeError::ShardNotAssigned(shard));
        }
        Ok(shard)
    }

    /// Shards of `epoch` still awaiting their pull from the previous owner.
    pub(crate) fn awaiting_shard_sync(&self, epoch: Epoch) -> HashSet<u16> {
        let awaiting = self
            .epoch_sync
            .awaiting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if awaiting.0 == epoch {
            awaiting.1.clone()
        } else {
            HashSet::new()
        }
    }

    /// Where this node's migration into `epoch` stands.
    pub(crate) fn migration_phase(&self, epoch: Epoch) -> MigrationPhase {
        let started = self
            .epoch_sync
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&epoch);
        let finished = self
            .epoch_sync
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|(e, _)| e == epoch);
        match (started, finished) {
            (_, true) => MigrationPhase::Finished,
            (true, false) => MigrationPhase::Running,
            (false, false) => MigrationPhase::NotStarted,
        }
    }

    fn settle_shard(&self, shard: u16) {
        self.epoch_sync
            .awaiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .remove(&shard);
    }

    pub fn migration_stats(&self) -> MigrationStats {
        let s = &self.epoch_sync;
        let last = *s.last.lock().unwrap_or_else(|e| e.into_inner());
        MigrationStats {
            slivers_migrated: s.slivers_migrated.load(Ordering::Relaxed),
            bytes_migrated: s.bytes_migrated.load(Ordering::Relaxed),
            blobs_recovered: s.blobs_recovered.load(Ordering::Relaxed),
            last_epoch: last.map(|l| l.0),
            last_duration_ms: last.map(|l| l.1),
        }
    }

    /// React to a (re)loaded committee view: start the migration of a change in progress, or
    /// empty the shards no longer held once no change is in progress.
    pub fn on_committee_change(self: &Arc<Self>) {
        let view = self.view();
        self.drop_lost_shards(&view);
        let Some(index) = view.my_index else { return };
        let me = view.committee.members[index].node_id;
        let reported = view.reported.as_ref().is_some_and(|r| r.contains(&me));
        // Nothing to do unless a change is in progress that we have not reported, or shards
        // were gained (they may still be missing after the quorum ended the change).
        if reported || (!view.syncing() && gained_shards(&view).is_empty()) {
            return;
        }
        if !self
            .epoch_sync
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(view.epoch)
        {
            return;
        }
        *self
            .epoch_sync
            .awaiting
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = (
            view.epoch,
            gained_shards(&view).into_iter().map(|(s, _)| s).collect(),
        );
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let started = Instant::now();
            let mut cursors: BTreeMap<(u16, SliverType), Option<BlobId>> = BTreeMap::new();
            let mut bad_peers: HashSet<String> = HashSet::new();
            loop {
                let Some(node) = weak.upgrade() else { return };
                let current = node.view();
                if current.epoch != view.epoch {
                    return;
                }
                match node
                    .migration_round(&current, &mut cursors, &mut bad_peers)
                    .await
                {
                    Ok(true) => match node.report_synced(&current, me).await {
                        Ok(()) => {
                            let ms = started.elapsed().as_millis() as u64;
                            *node
                                .epoch_sync
                                .last
                                .lock()
                                .unwrap_or_else(|e| e.into_inner()) = Some((view.epoch, ms));
                            tracing::info!(epoch = view.epoch, ms, "reported shards synced");
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "reporting the sync failed"),
                    },
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "migration round failed"),
                }
                drop(node);
                tokio::time::sleep(ROUND_PAUSE).await;
            }
        });
    }

    /// Empty the shards held that are neither owned nor read-only (lost in an earlier change).
    fn drop_lost_shards(self: &Arc<Self>, view: &CommitteeView) {
        let node = Arc::clone(self);
        let keep: HashSet<u16> = view.my_shards.union(&view.read_only).copied().collect();
        tokio::task::spawn_blocking(move || {
            let held = match node.store.shards() {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "listing shards failed");
                    return;
                }
            };
            for shard in held.into_iter().filter(|s| !keep.contains(&s.0)) {
                match node.store.drop_shard(shard) {
                    Ok(()) => tracing::info!(%shard, "removed a shard lost in an epoch change"),
                    Err(e) => tracing::warn!(%shard, error = %e, "removing a lost shard failed"),
                }
            }
        });
    }

    /// One round: pull gained shards from their previous owners, then recover whatever is
    /// still missing. True when every certified blob is complete here.
    async fn migration_round(
        self: &Arc<Self>,
        view: &CommitteeView,
        cursors: &mut BTreeMap<(u16, SliverType), Option<BlobId>>,
        bad_peers: &mut HashSet<String>,
    ) -> Result<bool, NodeError> {
        for (shard, peer) in gained_shards(view) {
            if bad_peers.contains(&peer.name) {
                self.settle_shard(shard);
                continue;
            }
            for axis in [SliverType::Primary, SliverType::Secondary] {
                // Resume where an earlier run of this change stopped (the node may have been
                // restarted); a cursor of another epoch is stale.
                let cursor = match cursors.entry((shard, axis)) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        let stored = self
                            .store
                            .migration_cursor(ShardIndex(shard), axis)?
                            .filter(|c| c.epoch == view.epoch);
                        e.insert(stored.map_or(Some(BlobId([0; 32])), |c| c.next))
                    }
                };
                if cursor.is_none() {
                    continue;
                }
                match self
                    .pull_shard(view, &peer, ShardIndex(shard), axis, cursor)
                    .await
                {
                    Ok((n, bytes)) => {
                        let s = &self.epoch_sync;
                        s.slivers_migrated.fetch_add(n, Ordering::Relaxed);
                        s.bytes_migrated.fetch_add(bytes, Ordering::Relaxed);
                    }
                    Err(e @ ShardSyncError::PeerLied { .. }) => {
                        tracing::warn!(error = %e, "previous owner lies; recovering instead");
                        bad_peers.insert(peer.name.clone());
                        break;
                    }
                    Err(e @ ShardSyncError::Storage(_)) => {
                        return Err(NodeError::Internal(e.to_string()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "shard sync failed; recovering instead");
                        bad_peers.insert(peer.name.clone());
                        break;
                    }
                }
            }
            // Pulled whole, or its previous owner was given up on: recovery may take over.
            self.settle_shard(shard);
        }
        self.recover_missing(view).await
    }

    /// RedStuff recovery of every certified live blob missing data here. True if none is left
    /// missing.
    async fn recover_missing(self: &Arc<Self>, view: &CommitteeView) -> Result<bool, NodeError> {
        let mut complete = true;
        let mut after: Option<BlobId> = None;
        loop {
            let page = self.store.blob_infos(after.as_ref(), 1000)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            for (blob_id, info) in page {
                if !info.is_certified_live(view.epoch) {
                    continue;
                }
                if self.store.has_metadata(&blob_id)?
                    && self.missing_slivers(view, &blob_id)?.is_empty()
                {
                    continue;
                }
                let mut done = false;
                for _ in 0..RECOVERY_ATTEMPTS {
                    match self.sync_blob(blob_id).await {
                        Ok(_) => {
                            done = true;
                            break;
                        }
                        Err(e) => tracing::debug!(%blob_id, error = %e, "recovery attempt failed"),
                    }
                }
                complete &= done;
            }
        }
        Ok(complete)
    }

    /// Submit `EpochSyncDone`; a report the ledger already has (or a change already over)
    /// counts as done.
    async fn report_synced(
        &self,
        view: &CommitteeView,
        node_id: floe_ledger::NodeId,
    ) -> Result<(), NodeError> {
        if !view.syncing() {
            return Ok(());
        }
        let session = AccountSession::new(self.keys.account.clone(), self.ledger.clone());
        match session
            .submit(TxKind::EpochSyncDone {
                node_id,
                epoch: view.epoch,
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(floe_ledger_client::LedgerClientError::Api { reason, .. })
                if matches!(
                    reason.as_str(),
                    "ALREADY_REPORTED" | "NO_EPOCH_CHANGE" | "WRONG_EPOCH"
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(NodeError::Internal(format!("ledger: {e}"))),
        }
    }
}

/// Shards this node gained in the change in progress, with their previous owner.
pub(crate) fn gained_shards(view: &CommitteeView) -> Vec<(u16, MemberInfo)> {
    let Some(previous) = &view.previous else {
        return Vec::new();
    };
    let me = view.my_index.map(|i| view.committee.members[i].node_id);
    view.my_shards
        .iter()
        .filter_map(|&s| {
            let owner = &previous.members[previous.owner_of(s)?];
            (Some(owner.node_id) != me).then(|| (s, owner.clone()))
        })
        .collect()
}
