//! Blob sync: after a blob is certified, a node that lacks its metadata or some slivers of its
//! shards fetches the metadata from peers (checked against the blob ID) and rebuilds the
//! missing slivers, secondary ones first, in batches of up to 100 per axis:
//!
//! * [`optimistic`]: from decoding symbols without proofs, asked of many peers at once, each
//!   result checked against its hash in the metadata;
//! * [`proven`]: for what that cannot settle, from recovery symbols with Merkle proofs, which
//!   single out bad symbols and can prove the blob inconsistent;
//! * [`invalidate`]: with such a proof, f+1 shard weight of signed attestations and the
//!   invalidation submitted to the ledger.
//!
//! Also here: the periodic maintenance scan, which retries syncs and garbage-collects data of
//! expired, deleted and invalid blobs.

mod invalidate;
mod optimistic;
mod proven;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use floe_core::{BlobId, BlobMetadata, ShardIndex, SliverIndex, SliverType};
use floe_node_client::NodeClient;
use rand::seq::SliceRandom;

use crate::node::{MAX_DECODING_TARGETS, NodeError, StorageNode};
use crate::view::CommitteeView;
use optimistic::{BatchOutcome, Recovery};

/// Per-request timeout towards peers.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of one sync before leaving it to the next maintenance scan.
const MAX_ATTEMPTS: u32 = 6;

/// What a sync achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Everything this node should hold is stored.
    Complete { recovered: usize },
    /// The blob was proven inconsistent; the invalidation was submitted.
    Invalidated,
    /// The blob stopped needing data here (deleted, expired or invalidated) before the sync
    /// finished.
    Cancelled,
}

/// Sync bookkeeping shared by the node.
#[derive(Default)]
pub struct SyncState {
    in_progress: Mutex<HashSet<BlobId>>,
}

impl StorageNode {
    fn peers(&self, view: &CommitteeView) -> Vec<(usize, NodeClient)> {
        view.committee
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != view.my_index)
            .map(|(i, m)| {
                (
                    i,
                    NodeClient::for_node(
                        &self.http,
                        &m.network_address,
                        &m.pinned_keys(),
                        PEER_TIMEOUT,
                    ),
                )
            })
            .collect()
    }

    /// Metadata from the first peer whose answer verifies against the blob ID.
    async fn fetch_metadata(
        &self,
        view: &CommitteeView,
        blob_id: &BlobId,
    ) -> Result<BlobMetadata, NodeError> {
        let mut peers = self.peers(view);
        peers.shuffle(&mut rand::rng());
        for (_, peer) in peers {
            match peer.get_metadata(blob_id).await {
                Ok(m) if m.blob_id == *blob_id && m.verify(&view.config).is_ok() => {
                    return Ok(m.metadata);
                }
                Ok(_) => {
                    tracing::warn!(peer = peer.base_url(), %blob_id, "peer served metadata that does not match the blob ID")
                }
                Err(e) => {
                    tracing::debug!(peer = peer.base_url(), error = %e, "metadata fetch failed")
                }
            }
        }
        Err(NodeError::Internal(format!(
            "no peer served valid metadata for {blob_id}"
        )))
    }

    /// Whether `blob_id` still needs its data here: certified, live and valid. A sync stops as
    /// soon as this turns false (the blob was deleted, expired or invalidated meanwhile), so
    /// that it never writes data the follower has just deleted.
    fn still_wanted(&self, blob_id: &BlobId) -> Result<bool, NodeError> {
        let epoch = self.view().epoch;
        Ok(self
            .store
            .get_blob_info(blob_id)?
            .is_some_and(|i| i.is_certified_live(epoch)))
    }

    /// One sync attempt of `blob_id`.
    pub async fn sync_blob(self: &Arc<Self>, blob_id: BlobId) -> Result<SyncOutcome, NodeError> {
        let view = self.view();
        if !self.still_wanted(&blob_id)? {
            return Ok(SyncOutcome::Cancelled);
        }
        let metadata = match self.store.get_metadata(&blob_id)? {
            Some(m) => m,
            None => {
                let m = self.fetch_metadata(&view, &blob_id).await?;
                if !self.still_wanted(&blob_id)? {
                    return Ok(SyncOutcome::Cancelled);
                }
                self.store.put_metadata(&blob_id, &m)?;
                m
            }
        };
        // Slivers of shards still being pulled from their previous owner are left to shard sync.
        let awaiting = self.awaiting_shard_sync(view.epoch);
        let mut missing = self.missing_slivers(&view, &blob_id)?;
        missing.retain(|(shard, _)| !awaiting.contains(&shard.0));
        let n = view.n();
        let optimistic = self.config.limits.sync_decoding_symbols;
        let mut recovery = Recovery::new(
            Arc::clone(self),
            &view,
            blob_id,
            Arc::new(metadata),
            optimistic,
        )?;
        let mut recovered = 0;
        // Secondary slivers first: they need only n − 2f symbols, and once stored they supply
        // symbols for the primary ones.
        for axis in [SliverType::Secondary, SliverType::Primary] {
            let targets: Vec<(ShardIndex, SliverIndex)> = missing
                .iter()
                .filter(|(_, a)| *a == axis)
                .map(|&(shard, _)| {
                    let pair = shard.to_pair_index(n, &blob_id);
                    (shard, pair.to_sliver_index(axis, n))
                })
                .collect();
            for batch in targets.chunks(MAX_DECODING_TARGETS) {
                match recovery.recover(axis, batch).await? {
                    BatchOutcome::Recovered(k) => recovered += k,
                    BatchOutcome::Cancelled => return Ok(SyncOutcome::Cancelled),
                    BatchOutcome::Inconsistent(proof) => {
                        self.invalidate(&view, &blob_id, axis, proof).await?;
                        return Ok(SyncOutcome::Invalidated);
                    }
                }
            }
        }
        if recovered > 0 {
            self.epoch_sync
                .blobs_recovered
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(SyncOutcome::Complete { recovered })
    }

    /// Whether a background sync of `blob_id` is running or scheduled.
    pub fn is_syncing(&self, blob_id: &BlobId) -> bool {
        self.sync_state
            .in_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(blob_id)
    }

    /// Start syncing `blob_id` in the background (once at a time per blob), after `delay` so
    /// that a client's upload in flight can land first; retries with backoff.
    pub fn spawn_sync(self: &Arc<Self>, blob_id: BlobId, delay: Duration) {
        if self.config.limits.recovery_paused {
            tracing::debug!(%blob_id, "recovery paused by configuration: not syncing");
            return;
        }
        if !self
            .sync_state
            .in_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(blob_id)
        {
            return;
        }
        let node = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _permit = node.sync_permits.acquire().await;
            let mut backoff = Duration::from_millis(500);
            for attempt in 1..=MAX_ATTEMPTS {
                match node.sync_blob(blob_id).await {
                    Ok(outcome) => {
                        tracing::info!(%blob_id, ?outcome, "blob sync finished");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(%blob_id, attempt, error = %e, "blob sync failed; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
            node.sync_state
                .in_progress
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&blob_id);
        });
    }

    /// One pass over every blob: sync certified blobs with missing data; delete the data of
    /// blobs that are expired, deleted or invalid. Returns (syncs started, blobs collected).
    pub fn maintenance_pass(self: &Arc<Self>) -> Result<(usize, usize), NodeError> {
        let view = self.view();
        let dropped = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .expire(std::time::Instant::now());
        if dropped > 0 {
            tracing::info!(
                blobs = dropped,
                "dropped buffered uploads whose registration never came"
            );
        }
        let (mut synced, mut collected) = (0, 0);
        let mut after: Option<BlobId> = None;
        loop {
            let page = self.store.blob_infos(after.as_ref(), 1000)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            for (blob_id, info) in &page {
                if info.can_delete_data(view.epoch) {
                    let held = 2 * view.my_shards.len();
                    if self.store.has_metadata(blob_id)?
                        || self.missing_slivers(&view, blob_id)?.len() < held
                    {
                        self.store.delete_blob_data(blob_id)?;
                        collected += 1;
                    }
                } else if info.is_certified_live(view.epoch) && self.needs_sync(&view, blob_id)? {
                    self.spawn_sync(*blob_id, Duration::ZERO);
                    synced += 1;
                }
            }
        }
        Ok((synced, collected))
    }

    /// Run [`Self::maintenance_pass`] every `every` until the node is dropped.
    pub fn spawn_maintenance(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(node) = weak.upgrade() else { return };
                let result = tokio::task::spawn_blocking({
                    let node = Arc::clone(&node);
                    move || node.maintenance_pass()
                })
                .await;
                match result {
                    Ok(Ok((s, c))) if s + c > 0 => {
                        tracing::info!(syncs = s, collected = c, "maintenance pass")
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "maintenance pass failed"),
                    _ => {}
                }
            }
        });
    }
}
