//! Blob sync: after a blob is certified, a node that lacks its metadata or some slivers of its
//! shards fetches the metadata from peers (checked against the blob ID) and recovers each
//! missing sliver from recovery symbols (each checked against a Merkle proof to the metadata).
//! If the recovered sliver contradicts the metadata, the blob is inconsistent: the node
//! gathers f+1 shard weight of signed attestations and submits the invalidation to the ledger.
//!
//! Also here: the periodic maintenance scan, which retries syncs and garbage-collects data of
//! expired, deleted and invalid blobs.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use floe_core::recovery::{GeneralRecoverySymbol, InconsistencyProof, Recovered, recover_sliver};
use floe_core::{BlobId, BlobMetadata, SliverIndex, SliverType};
use floe_crypto::{Certificate, InvalidBlobIdBody, ProtocolMessage, SignedMessage};
use floe_ledger::TxKind;
use floe_ledger_client::AccountSession;
use floe_node_client::NodeClient;
use rand::seq::SliceRandom;

use crate::node::{NodeError, StorageNode};
use crate::view::CommitteeView;

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
                    NodeClient::new(self.http.clone(), &m.network_address, PEER_TIMEOUT),
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

    /// Collect verified symbols for target (`axis`, `target`) from peers (and this node).
    async fn gather_symbols(
        &self,
        view: &CommitteeView,
        metadata: &BlobMetadata,
        blob_id: &BlobId,
        axis: SliverType,
        target: u16,
    ) -> Result<Vec<GeneralRecoverySymbol>, NodeError> {
        let n = view.n();
        let need = usize::from(view.config.n_symbols_for_recovery(axis));
        let source_axis = axis.orthogonal();
        // Symbol IDs (row, column) grouped by the member holding the source sliver.
        let mut by_member: BTreeMap<usize, Vec<(u16, u16)>> = BTreeMap::new();
        for i in 0..n {
            let pair = SliverIndex(i).to_pair_index(source_axis, n);
            let shard = view.shard_of(blob_id, pair);
            if let Some(member) = view.committee.owner_of(shard.0) {
                let id = match axis {
                    SliverType::Primary => (target, i),
                    SliverType::Secondary => (i, target),
                };
                by_member.entry(member).or_default().push(id);
            }
        }
        let mut symbols: Vec<GeneralRecoverySymbol> = Vec::new();
        let mut seen = HashSet::new();
        let mut accept = |batch: Vec<GeneralRecoverySymbol>,
                          symbols: &mut Vec<GeneralRecoverySymbol>| {
            for s in batch {
                let idx = s.symbol.symbol().index;
                if s.target_index.0 == target
                    && s.symbol.target_axis() == axis
                    && s.verify(&view.config, metadata).is_ok()
                    && seen.insert(idx)
                {
                    symbols.push(s);
                }
            }
        };
        // Our own slivers first: no network needed.
        if let Some(me) = view.my_index
            && let Some(ids) = by_member.remove(&me)
            && let Ok(local) = self.recovery_symbols_by_id(blob_id, &ids, Some(source_axis))
        {
            accept(local, &mut symbols);
        }
        let mut peers = self.peers(view);
        peers.shuffle(&mut rand::rng());
        for (member, peer) in peers {
            if symbols.len() >= need {
                break;
            }
            let Some(ids) = by_member.get(&member) else {
                continue;
            };
            match peer
                .recovery_symbols_proven_on(blob_id, ids, source_axis)
                .await
            {
                Ok(batch) => {
                    let before = symbols.len();
                    accept(batch, &mut symbols);
                    if symbols.len() - before < ids.len() {
                        tracing::warn!(peer = peer.base_url(), %blob_id, "peer served missing or invalid recovery symbols");
                    }
                }
                Err(e) => {
                    tracing::debug!(peer = peer.base_url(), error = %e, "recovery symbols request failed")
                }
            }
        }
        if symbols.len() < need {
            return Err(NodeError::Internal(format!(
                "only {} of {need} valid symbols for {axis} sliver {target} of {blob_id}",
                symbols.len()
            )));
        }
        Ok(symbols)
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
        let mut missing = self.missing_slivers(&view, &blob_id)?;
        // Secondary slivers first: they need only n − 2f symbols.
        missing.sort_by_key(|(_, axis)| *axis == SliverType::Primary);
        let mut recovered = 0;
        for (shard, axis) in missing {
            let pair = shard.to_pair_index(view.n(), &blob_id);
            let target = pair.to_sliver_index(axis, view.n());
            let symbols = self
                .gather_symbols(&view, &metadata, &blob_id, axis, target.0)
                .await?;
            let config = view.config;
            let meta = metadata.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                recover_sliver(&config, &meta, axis, target, symbols)
            })
            .await
            .map_err(|e| NodeError::Internal(e.to_string()))?
            .map_err(|e| NodeError::Internal(e.to_string()))?;
            match outcome {
                Recovered::Sliver(sliver) => {
                    if !self.still_wanted(&blob_id)? {
                        return Ok(SyncOutcome::Cancelled);
                    }
                    self.store.put_sliver(shard, axis, &blob_id, &sliver)?;
                    recovered += 1;
                }
                Recovered::Inconsistent(proof) => {
                    self.invalidate(&view, &blob_id, axis, proof).await?;
                    return Ok(SyncOutcome::Invalidated);
                }
            }
        }
        Ok(SyncOutcome::Complete { recovered })
    }

    /// Gather f+1 shard weight of attestations for `proof` and submit the invalidation.
    async fn invalidate(
        &self,
        view: &CommitteeView,
        blob_id: &BlobId,
        axis: SliverType,
        proof: InconsistencyProof,
    ) -> Result<(), NodeError> {
        tracing::warn!(%blob_id, %axis, "blob is inconsistently encoded; gathering attestations");
        let message = ProtocolMessage::new(view.epoch, InvalidBlobIdBody { blob_id: *blob_id });
        let mut partials: Vec<(usize, SignedMessage)> = Vec::new();
        let mut weight = 0u64;
        if let Some(me) = view.my_index {
            partials.push((me, SignedMessage::sign(&self.keys.protocol, &message)));
            weight += view.committee.members[me].shards.len() as u64;
        }
        let needed = u64::from(view.config.validity());
        for (member, peer) in self.peers(view) {
            if weight >= needed {
                break;
            }
            match peer.inconsistency_proof(blob_id, axis, &proof).await {
                Ok(signed)
                    if signed
                        .verify_invalid_blob_id(
                            &view.committee.members[member].protocol_key,
                            view.epoch,
                            blob_id,
                        )
                        .is_ok() =>
                {
                    partials.push((member, signed));
                    weight += view.committee.members[member].shards.len() as u64;
                }
                Ok(_) => tracing::warn!(
                    peer = peer.base_url(),
                    "peer returned an attestation that does not verify"
                ),
                Err(e) => {
                    tracing::debug!(peer = peer.base_url(), error = %e, "attestation request failed")
                }
            }
        }
        if weight < needed {
            return Err(NodeError::Internal(format!(
                "only {weight} of {needed} shard weight attested {blob_id} invalid"
            )));
        }
        let weights = floe_crypto::CommitteeWeights::new(
            view.committee
                .members
                .iter()
                .map(|m| floe_crypto::CommitteeMember {
                    public_key: m.protocol_key,
                    weight: m.shards.len() as u16,
                })
                .collect(),
            view.n(),
        )
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        let certificate = Certificate::aggregate(&weights, &partials)
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let session = AccountSession::new(self.keys.account.clone(), self.ledger.clone());
        match session.submit(TxKind::InvalidateBlob { certificate }).await {
            Ok(_) => Ok(()),
            // Another node got there first.
            Err(e) if e.reason() == Some("BLOB_INVALID") => Ok(()),
            Err(e) => Err(NodeError::Internal(format!(
                "submitting the invalidation failed: {e}"
            ))),
        }
    }

    /// Start syncing `blob_id` in the background (once at a time per blob), after `delay` so
    /// that a client's upload in flight can land first; retries with backoff.
    pub fn spawn_sync(self: &Arc<Self>, blob_id: BlobId, delay: Duration) {
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
                } else if info.is_certified_live(view.epoch)
                    && (!self.store.has_metadata(blob_id)?
                        || !self.missing_slivers(&view, blob_id)?.is_empty())
                {
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
