//! Sync's proven path: recover one sliver from recovery symbols that each carry a Merkle proof
//! to the metadata. Every bad symbol is recognised and skipped on its own, and if the verified
//! symbols rebuild a sliver that contradicts the metadata, they prove the blob inconsistent.
//!
//! It costs far more bytes than the optimistic path (a proof is several times the size of a
//! symbol at large n), so sync uses it only for targets that path could not settle.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use floe_core::recovery::{GeneralRecoverySymbol, Recovered, recover_sliver};
use floe_core::{BlobId, BlobMetadata, SliverIndex, SliverType};
use rand::seq::SliceRandom;

use crate::node::{NodeError, StorageNode};
use crate::view::CommitteeView;

use crate::limits::MAX_SYMBOL_IDS as MAX_IDS_PER_REQUEST;

impl StorageNode {
    /// Recover sliver (`axis`, `target`) from proven recovery symbols: the verified sliver, or
    /// the proof that the blob is inconsistent. Peers in `distrusted` are asked last.
    pub(super) async fn recover_proven(
        &self,
        view: &CommitteeView,
        metadata: &Arc<BlobMetadata>,
        blob_id: &BlobId,
        axis: SliverType,
        target: SliverIndex,
        distrusted: &HashSet<usize>,
    ) -> Result<Recovered, NodeError> {
        let symbols = self
            .gather_symbols(view, metadata, blob_id, axis, target.0, distrusted)
            .await?;
        let config = view.config;
        let meta = Arc::clone(metadata);
        tokio::task::spawn_blocking(move || recover_sliver(&config, &meta, axis, target, symbols))
            .await
            .map_err(|e| NodeError::Internal(e.to_string()))?
            .map_err(|e| NodeError::Internal(e.to_string()))
    }

    /// Collect verified symbols for target (`axis`, `target`) from this node and its peers,
    /// asking each peer only for as many as are still missing.
    async fn gather_symbols(
        &self,
        view: &CommitteeView,
        metadata: &BlobMetadata,
        blob_id: &BlobId,
        axis: SliverType,
        target: u16,
        distrusted: &HashSet<usize>,
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
            // (accepted, invalid)
            let mut counts = (0, 0);
            for s in batch {
                let idx = s.symbol.symbol().index;
                if s.target_index.0 != target
                    || s.symbol.target_axis() != axis
                    || s.verify(&view.config, metadata).is_err()
                {
                    counts.1 += 1;
                } else if seen.insert(idx) {
                    symbols.push(s);
                    counts.0 += 1;
                }
            }
            counts
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
        // Stable: the shuffled order within each group is kept.
        peers.sort_by_key(|(member, _)| distrusted.contains(member));
        // Each peer's IDs not yet asked for, and whether it still answers.
        let mut queues: Vec<_> = peers
            .into_iter()
            .filter_map(|(member, peer)| {
                let ids = by_member.remove(&member)?;
                Some((peer, ids, 0usize, true))
            })
            .collect();
        // Pass after pass: a peer that served fewer valid symbols than asked is made up for by
        // the next ones, and the IDs not asked for yet are asked for in a later pass.
        loop {
            let mut asked = false;
            for (peer, ids, next, alive) in &mut queues {
                if symbols.len() >= need {
                    break;
                }
                if !*alive || *next == ids.len() {
                    continue;
                }
                let want = (need - symbols.len())
                    .min(ids.len() - *next)
                    .min(MAX_IDS_PER_REQUEST);
                let batch = &ids[*next..*next + want];
                *next += want;
                asked = true;
                match peer
                    .recovery_symbols_proven_on(blob_id, batch, source_axis)
                    .await
                {
                    Ok(answer) => {
                        let (_, invalid) = accept(answer, &mut symbols);
                        if invalid > 0 {
                            // An honest node's symbols always verify: ask it no more.
                            *alive = false;
                            tracing::warn!(peer = peer.base_url(), %blob_id, invalid, "peer served invalid recovery symbols");
                        }
                    }
                    Err(e) => {
                        *alive = false;
                        tracing::debug!(peer = peer.base_url(), error = %e, "recovery symbols request failed")
                    }
                }
            }
            if symbols.len() >= need || !asked {
                break;
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
}
