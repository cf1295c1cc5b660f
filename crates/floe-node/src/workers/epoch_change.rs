//! The epoch-change worker: applies the plans the follower posts ([`post_plan`], after every
//! committee reload; see [`crate::plan`] for what a plan says).
//!
//! A migration runs in rounds, one per step, a second apart while unfinished: pull each
//! gained shard from its previous owner (resuming from the cursor persisted with each batch,
//! so a restarted node continues where it stopped); if that owner is down or serves bad data,
//! give up on it and leave the shard to RedStuff recovery; then recover every certified live
//! blob still missing data here. When nothing is missing, report `EpochSyncDone`. A
//! migration whose epoch is no longer current is abandoned.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Instant;

use floe_core::{BlobId, ShardIndex, SliverType};
use floe_ledger::TxKind;
use floe_ledger::api_types::MemberInfo;
use floe_ledger_client::AccountSession;

use super::blocking;
use crate::error::NodeError;
use crate::node::StorageNode;
use crate::plan::{EpochFacts, MigrationPlan, plan};
use crate::runner::{Next, StepError, Worker};
use crate::shard_sync::ShardSyncError;
use crate::state::PlanBox;
use crate::view::CommitteeView;

use crate::limits::{
    MIGRATION_RECOVERY_ATTEMPTS as RECOVERY_ATTEMPTS, MIGRATION_ROUND_PAUSE as ROUND_PAUSE,
};

/// Plan the node's side of the change its current view shows, mark a new migration started
/// (so that blob syncs leave the gained shards to shard sync at once), and post the plan.
pub(crate) async fn post_plan(node: &Arc<StorageNode>) -> Result<(), NodeError> {
    let view = node.view();
    let held: BTreeSet<u16> = blocking(node, |node| Ok(node.store.shards()?))
        .await?
        .into_iter()
        .map(|s| s.0)
        .collect();
    let started = node.epoch_sync.started(view.epoch);
    let plan = plan(&EpochFacts::of(&view, held, started));
    if let Some(m) = &plan.migration {
        node.epoch_sync
            .start(m.epoch, m.pulls.iter().map(|(s, _)| *s).collect());
        tracing::info!(
            epoch = m.epoch,
            gained = m.pulls.len(),
            report = m.report,
            "migration planned"
        );
    }
    node.plans.post(plan);
    Ok(())
}

/// A migration in progress.
struct Migration {
    plan: MigrationPlan<MemberInfo>,
    started: Instant,
    /// Where each (shard, axis) pull stands: the next blob ID, `None` when pulled whole.
    cursors: BTreeMap<(u16, SliverType), Option<BlobId>>,
    /// Previous owners given up on (down, or serving bad data).
    bad_peers: HashSet<String>,
    rounds: u32,
}

pub struct EpochChange {
    node: Weak<StorageNode>,
    plans: Arc<PlanBox>,
    migration: Option<Migration>,
    finished: Option<(floe_core::Epoch, u64)>,
}

impl EpochChange {
    pub fn new(node: &Arc<StorageNode>) -> Self {
        Self {
            node: Arc::downgrade(node),
            plans: Arc::clone(&node.plans),
            migration: None,
            finished: None,
        }
    }
}

impl Worker for EpochChange {
    fn name(&self) -> &'static str {
        "epoch_change"
    }

    async fn step(&mut self) -> Result<Next, StepError> {
        // Idle until a plan comes, unless a migration has a round due.
        let posted = match self.migration {
            None => Some(self.plans.next().await),
            Some(_) => self.plans.take(),
        };
        let Some(node) = self.node.upgrade() else {
            return Ok(Next::Done);
        };
        if let Some(plan) = posted {
            drop_lost_shards(&node, plan.drop)
                .await
                .map_err(|e| StepError::new(format!("dropping lost shards: {e}"), ROUND_PAUSE))?;
            if let Some(m) = plan.migration {
                self.migration = Some(Migration {
                    plan: m,
                    started: Instant::now(),
                    cursors: BTreeMap::new(),
                    bad_peers: HashSet::new(),
                    rounds: 0,
                });
            }
        }
        let Some(m) = &mut self.migration else {
            return Ok(Next::Now);
        };
        let view = node.view();
        if view.epoch != m.plan.epoch {
            tracing::info!(
                epoch = m.plan.epoch,
                now = view.epoch,
                "migration overtaken by a later epoch"
            );
            self.migration = None;
            return Ok(Next::Now);
        }
        m.rounds += 1;
        match migration_round(&node, &view, m).await {
            Ok(true) => {
                if m.plan.report {
                    report_synced(&node, &view, m.plan.me).await.map_err(|e| {
                        StepError::new(format!("reporting the sync: {e}"), ROUND_PAUSE)
                    })?;
                }
                let ms = m.started.elapsed().as_millis() as u64;
                node.epoch_sync.finish(m.plan.epoch, ms);
                tracing::info!(epoch = m.plan.epoch, ms, "reported shards synced");
                self.finished = Some((m.plan.epoch, ms));
                self.migration = None;
                Ok(Next::Now)
            }
            Ok(false) => Ok(Next::After(ROUND_PAUSE)),
            Err(e) => Err(StepError::new(format!("migration round: {e}"), ROUND_PAUSE)),
        }
    }

    fn progress(&self) -> Option<String> {
        match (&self.migration, self.finished) {
            (Some(m), _) => Some(format!(
                "migrating into epoch {}: round {}, {} shards to pull, {} peers given up on",
                m.plan.epoch,
                m.rounds,
                m.plan.pulls.len(),
                m.bad_peers.len()
            )),
            (None, Some((epoch, ms))) => Some(format!("migration into epoch {epoch} took {ms} ms")),
            (None, None) => None,
        }
    }
}

/// Empty the shards of `drop` that the current view neither owns nor keeps read-only (checked
/// again here: the committee may have changed since the plan).
async fn drop_lost_shards(node: &Arc<StorageNode>, drop: Vec<u16>) -> Result<(), NodeError> {
    if drop.is_empty() {
        return Ok(());
    }
    blocking(node, move |node| {
        let view = node.view();
        let held = node.store.shards()?;
        for shard in drop.into_iter().map(ShardIndex) {
            if !held.contains(&shard) || view.serves(shard) {
                continue;
            }
            node.store.drop_shard(shard)?;
            tracing::info!(%shard, "removed a shard lost in an epoch change");
        }
        Ok(())
    })
    .await
}

/// One round: pull gained shards from their previous owners, then recover whatever is still
/// missing. True when every certified blob is complete here.
async fn migration_round(
    node: &Arc<StorageNode>,
    view: &CommitteeView,
    m: &mut Migration,
) -> Result<bool, NodeError> {
    for (shard, peer) in &m.plan.pulls {
        let shard = *shard;
        if m.bad_peers.contains(&peer.name) {
            node.epoch_sync.settle(shard);
            continue;
        }
        for axis in [SliverType::Primary, SliverType::Secondary] {
            // Resume where an earlier run of this change stopped (the node may have been
            // restarted); a cursor of another epoch is stale.
            let cursor = match m.cursors.entry((shard, axis)) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let stored = node
                        .store
                        .migration_cursor(ShardIndex(shard), axis)?
                        .filter(|c| c.epoch == view.epoch);
                    e.insert(stored.map_or(Some(BlobId([0; 32])), |c| c.next))
                }
            };
            if cursor.is_none() {
                continue;
            }
            match node
                .pull_shard(view, peer, ShardIndex(shard), axis, cursor)
                .await
            {
                Ok((n, bytes)) => {
                    let s = &node.epoch_sync;
                    s.slivers_migrated.fetch_add(n, Ordering::Relaxed);
                    s.bytes_migrated.fetch_add(bytes, Ordering::Relaxed);
                }
                Err(e @ ShardSyncError::Storage(_)) => {
                    return Err(NodeError::Internal(e.to_string()));
                }
                Err(e) => {
                    if matches!(e, ShardSyncError::PeerLied { .. }) {
                        tracing::warn!(error = %e, "previous owner lies; recovering instead");
                    } else {
                        tracing::warn!(error = %e, "shard sync failed; recovering instead");
                    }
                    m.bad_peers.insert(peer.name.clone());
                    break;
                }
            }
        }
        // Pulled whole, or its previous owner was given up on: recovery may take over.
        node.epoch_sync.settle(shard);
    }
    recover_missing(node, view).await
}

/// RedStuff recovery of every certified live blob missing data here. True if none is left
/// missing.
async fn recover_missing(node: &Arc<StorageNode>, view: &CommitteeView) -> Result<bool, NodeError> {
    let mut complete = true;
    let mut after: Option<BlobId> = None;
    loop {
        let page = node.store.blob_infos(after.as_ref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        for (blob_id, info) in page {
            if !info.is_certified_live(view.epoch) {
                continue;
            }
            if node.store.has_metadata(&blob_id)?
                && node.missing_slivers(view, &blob_id)?.is_empty()
            {
                continue;
            }
            let mut done = false;
            for _ in 0..RECOVERY_ATTEMPTS {
                match node.sync_blob(blob_id).await {
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

/// Submit `EpochSyncDone`; a report the ledger already has (or a change already over) counts
/// as done.
async fn report_synced(
    node: &StorageNode,
    view: &CommitteeView,
    node_id: floe_ledger::NodeId,
) -> Result<(), NodeError> {
    if !view.syncing() {
        return Ok(());
    }
    let session = AccountSession::new(node.keys.account.clone(), node.ledger.clone());
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
