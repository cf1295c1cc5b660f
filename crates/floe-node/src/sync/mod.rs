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
//! The blob-sync worker (`workers::blob_sync`) runs the syncs queued with
//! [`StorageNode::request_sync`]; the epoch-change worker calls [`StorageNode::sync_blob`] as
//! the fallback of a shard pull.

mod invalidate;
mod optimistic;
mod proven;

use std::sync::Arc;
use std::time::Duration;

use floe_core::{BlobId, BlobMetadata, ShardIndex, SliverIndex, SliverType};
use floe_node_client::NodeClient;
use rand::seq::SliceRandom;

use crate::limits::MAX_DECODING_TARGETS;
use crate::node::{NodeError, StorageNode};
use crate::view::CommitteeView;
use optimistic::{BatchOutcome, Recovery};

use crate::limits::PEER_TIMEOUT;

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
                // Store writes stay off the async workers.
                let store = Arc::clone(&self.store);
                let stored = m.clone();
                tokio::task::spawn_blocking(move || store.put_metadata(&blob_id, &stored))
                    .await
                    .map_err(|e| NodeError::Internal(format!("storing metadata: {e}")))??;
                m
            }
        };
        // Slivers of shards still being pulled from their previous owner are left to shard sync.
        let awaiting = self.epoch_sync.awaiting(view.epoch);
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
        self.sync_state.contains(blob_id)
    }

    /// Queue a background sync of `blob_id` (once at a time per blob), to start after `delay`
    /// so that a client's upload in flight can land first. The blob-sync worker runs it.
    pub fn request_sync(&self, blob_id: BlobId, delay: Duration) {
        if self.config.limits.recovery_paused {
            tracing::debug!(%blob_id, "recovery paused by configuration: not syncing");
            return;
        }
        self.sync_state.request(blob_id, delay);
    }
}
