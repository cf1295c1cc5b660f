//! Sync's optimistic path: rebuild missing slivers from decoding symbols, which carry no
//! proofs, and keep a sliver only if it matches its hash in the metadata. That hash
//! authenticates the result, so a lying peer can delay recovery but never corrupt it.
//!
//! It works on up to [`MAX_DECODING_TARGETS`] target slivers of one axis at a time:
//!
//! 1. The symbols this node supplies from its own slivers (verified when stored) come first.
//! 2. Each target is given peers, least loaded first, until their shard weight covers what it
//!    still needs plus a small margin. Each peer then gets one request per batch of its
//!    targets, all peers in parallel, with bounded concurrency and a timeout. A peer may only
//!    supply the positions of the slivers its shards hold.
//! 3. Each target with enough symbols is decoded and checked against the metadata. A verified
//!    sliver also exposes every wrong symbol received for that target: the peers that sent one
//!    are *blamed*. Their symbols are no longer used, and they are not asked again.
//! 4. A target that decodes to a mismatch is retried without the symbols of blamed peers if it
//!    used any. Otherwise the proven path settles one such target per round: it rebuilds the
//!    sliver, which reveals the liars, or it proves the blob inconsistent.
//! 5. Targets still open after a few rounds go through the proven path one by one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use floe_core::recovery::{
    DecodingSymbol, EitherDecodingSymbol, InconsistencyProof, Recovered, RecoveryError,
    decode_sliver_from_symbols,
};
use floe_core::{BlobId, BlobMetadata, EncodingConfig, ShardIndex, SliverData, SliverIndex};
use floe_core::{SliverType, sliver::expand};
use floe_node_client::{NodeClient, NodeClientError};
use rand::seq::SliceRandom;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::limits::MAX_DECODING_TARGETS;
use crate::node::{DecodingSymbols, NodeError, StorageNode};
use crate::view::CommitteeView;

use crate::limits::{
    OPTIMISTIC_ROUNDS as MAX_ROUNDS, SYMBOL_REQUESTS_IN_FLIGHT as MAX_IN_FLIGHT,
    SYMBOLS_RESPONSE_BUDGET as RESPONSE_BUDGET, SYMBOLS_TIMEOUT,
};

/// Who supplied a decoding symbol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Origin {
    /// This node, from a sliver it stores (verified when stored).
    Local,
    /// The committee member at this position.
    Peer(usize),
}

/// One sliver to rebuild and what has been gathered for it.
struct Target {
    shard: ShardIndex,
    index: SliverIndex,
    /// Symbols received, by position in the target's expansion.
    symbols: BTreeMap<u16, (Origin, DecodingSymbol)>,
    /// Members asked for this target already.
    asked: HashSet<usize>,
}

impl Target {
    fn trusted(origin: Origin, blamed: &HashSet<usize>) -> bool {
        match origin {
            Origin::Local => true,
            Origin::Peer(m) => !blamed.contains(&m),
        }
    }

    /// Symbols not from blamed peers.
    fn usable(&self, blamed: &HashSet<usize>) -> usize {
        self.symbols
            .values()
            .filter(|(o, _)| Self::trusted(*o, blamed))
            .count()
    }

    /// Whether some symbol came from a blamed peer.
    fn has_blamed(&self, blamed: &HashSet<usize>) -> bool {
        self.symbols
            .values()
            .any(|(o, _)| !Self::trusted(*o, blamed))
    }

    fn drop_blamed(&mut self, blamed: &HashSet<usize>) {
        self.symbols.retain(|_, (o, _)| Self::trusted(*o, blamed));
    }

    /// Usable symbols, this node's first.
    fn ordered<'a>(&'a self, blamed: &HashSet<usize>) -> Vec<&'a DecodingSymbol> {
        let local = self.symbols.values().filter(|(o, _)| *o == Origin::Local);
        let peers = self
            .symbols
            .values()
            .filter(|(o, _)| matches!(o, Origin::Peer(_)) && Self::trusted(*o, blamed));
        local.chain(peers).map(|(_, s)| s).collect()
    }

    /// The members whose symbols for this target differ from `sliver`'s verified expansion.
    fn liars(&self, config: &EncodingConfig, axis: SliverType, sliver: &SliverData) -> Vec<usize> {
        let sym = usize::from(sliver.symbol_size);
        let Ok(expanded) = expand(config, axis, sliver.symbol_size, &sliver.symbols) else {
            return Vec::new();
        };
        let mut liars = Vec::new();
        for (&pos, (origin, s)) in &self.symbols {
            let right = expanded
                .get(usize::from(pos) * sym..)
                .and_then(|r| r.get(..sym));
            if right == Some(&s.data[..]) {
                continue;
            }
            match origin {
                Origin::Peer(m) if !liars.contains(m) => liars.push(*m),
                Origin::Peer(_) => {}
                Origin::Local => tracing::warn!(
                    target = self.index.0,
                    %axis,
                    "a stored sliver disagrees with a verified one: the blob is inconsistent"
                ),
            }
        }
        liars
    }
}

/// What recovering one batch of targets came to.
pub(super) enum BatchOutcome {
    /// Every target is stored; this many were rebuilt.
    Recovered(usize),
    /// The blob is inconsistent on this axis; here is the proof.
    Inconsistent(InconsistencyProof),
    /// The blob stopped needing its data here.
    Cancelled,
}

/// One sync attempt's recovery of missing slivers, batch by batch.
pub(super) struct Recovery<'a> {
    node: Arc<StorageNode>,
    view: &'a CommitteeView,
    blob_id: BlobId,
    metadata: Arc<BlobMetadata>,
    symbol_size: usize,
    /// Clients of the other committee members, by position.
    peers: HashMap<usize, NodeClient>,
    /// Members caught serving decoding symbols that contradict a verified sliver.
    blamed: HashSet<usize>,
    /// Whether to use decoding symbols at all (else every target takes the proven path).
    optimistic: bool,
    /// Members that could not be reached: not asked again in this attempt (the proven path
    /// still tries them).
    unreachable: HashSet<usize>,
}

impl<'a> Recovery<'a> {
    pub(super) fn new(
        node: Arc<StorageNode>,
        view: &'a CommitteeView,
        blob_id: BlobId,
        metadata: Arc<BlobMetadata>,
        optimistic: bool,
    ) -> Result<Self, NodeError> {
        let symbol_size = usize::from(
            metadata
                .symbol_size(&view.config)
                .map_err(|e| NodeError::Internal(format!("unusable metadata: {e}")))?,
        );
        let peers = view
            .committee
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != view.my_index)
            .map(|(i, m)| {
                let client = NodeClient::for_node(
                    &node.http,
                    &m.network_address,
                    &m.pinned_keys(),
                    SYMBOLS_TIMEOUT,
                );
                (i, client)
            })
            .collect();
        Ok(Self {
            node,
            view,
            blob_id,
            metadata,
            symbol_size,
            peers,
            blamed: HashSet::new(),
            optimistic,
            unreachable: HashSet::new(),
        })
    }

    /// Rebuild and store the slivers `batch` (at most [`MAX_DECODING_TARGETS`]) of `axis`.
    pub(super) async fn recover(
        &mut self,
        axis: SliverType,
        batch: &[(ShardIndex, SliverIndex)],
    ) -> Result<BatchOutcome, NodeError> {
        let need = usize::from(self.view.config.n_symbols_for_recovery(axis));
        let margin = need / 50 + 2;
        let owners = self.source_owners(axis);
        let mut pending: Vec<Target> = batch
            .iter()
            .map(|&(shard, index)| Target {
                shard,
                index,
                symbols: BTreeMap::new(),
                asked: HashSet::new(),
            })
            .collect();
        let rounds = if self.optimistic { MAX_ROUNDS } else { 0 };
        if self.optimistic {
            self.local_symbols(axis, &mut pending).await?;
        }
        // Targets that decoded to a mismatch with no blamed peer's symbol among their own.
        let mut suspects: Vec<Target> = Vec::new();
        let mut recovered = 0;
        for round in 0..rounds {
            if pending.is_empty() && suspects.is_empty() {
                break;
            }
            let goal = if round == 0 { need + margin } else { need };
            let requests = self.plan(&mut pending, goal, &owners);
            let asked = !requests.is_empty();
            if asked {
                self.fetch(axis, requests, &owners, &mut pending).await;
            }
            let (ready, mut waiting): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|t| t.usable(&self.blamed) >= need);
            let decoded = !ready.is_empty();
            let mut done = Vec::new();
            for (t, result, liars) in self.decode(axis, ready).await? {
                self.blame(&liars, axis);
                match result {
                    Ok(sliver) => done.push((t.shard, sliver)),
                    Err(RecoveryError::DecodedSliverMismatch { .. }) => suspects.push(t),
                    Err(RecoveryError::NotEnoughSymbols { .. }) => waiting.push(t),
                    Err(e) => return Err(NodeError::Internal(e.to_string())),
                }
            }
            self.requeue_explained(&mut suspects, &mut waiting);
            let probed = match suspects.pop() {
                Some(t) => {
                    match self.prove(axis, &t).await? {
                        Recovered::Sliver(sliver) => done.push((t.shard, sliver)),
                        Recovered::Inconsistent(p) => return Ok(BatchOutcome::Inconsistent(p)),
                    }
                    self.requeue_explained(&mut suspects, &mut waiting);
                    true
                }
                None => false,
            };
            recovered += done.len();
            if !self.store(axis, done).await? {
                return Ok(BatchOutcome::Cancelled);
            }
            pending = waiting;
            if !asked && !decoded && !probed {
                break;
            }
        }
        for t in pending.into_iter().chain(suspects) {
            let sliver = match self.prove(axis, &t).await? {
                Recovered::Sliver(sliver) => sliver,
                Recovered::Inconsistent(p) => return Ok(BatchOutcome::Inconsistent(p)),
            };
            if !self.store(axis, vec![(t.shard, sliver)]).await? {
                return Ok(BatchOutcome::Cancelled);
            }
            recovered += 1;
        }
        Ok(BatchOutcome::Recovered(recovered))
    }

    /// For each position of the orthogonal axis, the member whose shard holds that sliver.
    fn source_owners(&self, axis: SliverType) -> Vec<Option<usize>> {
        let n = self.view.n();
        let source_axis = axis.orthogonal();
        let mut shard_owner = vec![None; usize::from(n)];
        for (member, m) in self.view.committee.members.iter().enumerate() {
            for &shard in &m.shards {
                if let Some(slot) = shard_owner.get_mut(usize::from(shard)) {
                    *slot = Some(member);
                }
            }
        }
        (0..n)
            .map(|i| {
                let pair = SliverIndex(i).to_pair_index(source_axis, n);
                let shard = self.view.shard_of(&self.blob_id, pair);
                shard_owner[usize::from(shard.0)]
            })
            .collect()
    }

    fn blame(&mut self, liars: &[usize], axis: SliverType) {
        for &m in liars {
            if self.blamed.insert(m) {
                let peer = self.peers.get(&m).map_or("?", |p| p.base_url());
                tracing::warn!(
                    peer,
                    blob_id = %self.blob_id,
                    %axis,
                    "peer served wrong decoding symbols; no longer using it for this blob"
                );
            }
        }
    }

    /// Suspects whose symbols include a blamed peer's go back to the queue without them.
    fn requeue_explained(&self, suspects: &mut Vec<Target>, waiting: &mut Vec<Target>) {
        let (explained, rest): (Vec<_>, Vec<_>) = std::mem::take(suspects)
            .into_iter()
            .partition(|t| t.has_blamed(&self.blamed));
        *suspects = rest;
        for mut t in explained {
            t.drop_blamed(&self.blamed);
            waiting.push(t);
        }
    }

    /// The symbols this node supplies from its own slivers.
    async fn local_symbols(
        &self,
        axis: SliverType,
        targets: &mut [Target],
    ) -> Result<(), NodeError> {
        if self.view.my_index.is_none() || self.view.my_shards.is_empty() {
            return Ok(());
        }
        let indices: Vec<u16> = targets.iter().map(|t| t.index.0).collect();
        let (node, blob_id) = (Arc::clone(&self.node), self.blob_id);
        let local =
            tokio::task::spawn_blocking(move || node.decoding_symbols(&blob_id, axis, &indices))
                .await
                .map_err(|e| NodeError::Internal(e.to_string()))?;
        // Without them, peers are asked for more.
        let local = match local {
            Ok(local) => local,
            Err(e) => {
                tracing::warn!(blob_id = %self.blob_id, error = %e, "reading local decoding symbols failed");
                return Ok(());
            }
        };
        for t in targets {
            for s in local.get(&t.index).into_iter().flatten() {
                let d = s.symbol();
                if d.data.len() == self.symbol_size {
                    t.symbols.insert(d.index, (Origin::Local, d.clone()));
                }
            }
        }
        Ok(())
    }

    /// Which targets to ask each peer for, so that every target short of `goal` usable
    /// symbols is covered, spreading the requests over the peers.
    fn plan(
        &self,
        targets: &mut [Target],
        goal: usize,
        owners: &[Option<usize>],
    ) -> BTreeMap<usize, Vec<SliverIndex>> {
        let mut weight: BTreeMap<usize, usize> = BTreeMap::new();
        for m in owners.iter().flatten() {
            *weight.entry(*m).or_default() += 1;
        }
        let mut order: Vec<(usize, usize)> = weight
            .into_iter()
            .filter(|(m, _)| {
                self.peers.contains_key(m)
                    && !self.blamed.contains(m)
                    && !self.unreachable.contains(m)
            })
            .collect();
        order.shuffle(&mut rand::rng());
        let mut assigned: HashMap<usize, usize> = HashMap::new();
        let mut requests: BTreeMap<usize, Vec<SliverIndex>> = BTreeMap::new();
        for t in targets.iter_mut() {
            let have = t.usable(&self.blamed);
            if have >= goal {
                continue;
            }
            let deficit = goal - have;
            let mut candidates: Vec<(usize, usize)> = order
                .iter()
                .filter(|(m, _)| !t.asked.contains(m))
                .copied()
                .collect();
            // Least loaded first; the shuffle breaks ties (the sort is stable).
            candidates.sort_by_key(|(m, _)| assigned.get(m).copied().unwrap_or(0));
            let mut chosen = Vec::new();
            let mut cover = 0;
            for (m, w) in candidates {
                if cover >= deficit {
                    break;
                }
                chosen.push((m, w));
                cover += w;
            }
            // Drop the lightest peers the cover does not need.
            chosen.sort_by_key(|&(_, w)| w);
            let mut i = 0;
            while i < chosen.len() {
                if cover - chosen[i].1 >= deficit {
                    cover -= chosen[i].1;
                    chosen.remove(i);
                } else {
                    i += 1;
                }
            }
            for (m, _) in chosen {
                t.asked.insert(m);
                *assigned.entry(m).or_default() += 1;
                requests.entry(m).or_default().push(t.index);
            }
        }
        requests
    }

    /// Send the planned requests, in parallel, and keep what checks out.
    async fn fetch(
        &mut self,
        axis: SliverType,
        requests: BTreeMap<usize, Vec<SliverIndex>>,
        owners: &[Option<usize>],
        targets: &mut [Target],
    ) {
        let position: HashMap<SliverIndex, usize> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.index, i))
            .collect();
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut tasks = JoinSet::new();
        for (member, indices) in requests {
            let Some(client) = self.peers.get(&member) else {
                continue;
            };
            let held = owners.iter().filter(|o| **o == Some(member)).count();
            let per_request = (RESPONSE_BUDGET / (held.max(1) * (self.symbol_size + 8)))
                .clamp(1, MAX_DECODING_TARGETS);
            for chunk in indices.chunks(per_request) {
                let (client, chunk, permits) =
                    (client.clone(), chunk.to_vec(), Arc::clone(&permits));
                let blob_id = self.blob_id;
                tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    let answer = client.decoding_symbols(&blob_id, axis, &chunk).await;
                    (member, chunk, answer)
                });
            }
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((member, chunk, answer)) = joined else {
                continue;
            };
            match answer {
                Ok(answer) => {
                    let rejected =
                        self.accept(axis, member, &chunk, answer, owners, &position, targets);
                    if rejected > 0 {
                        let peer = self.peers.get(&member).map_or("?", |p| p.base_url());
                        tracing::warn!(peer, blob_id = %self.blob_id, rejected, "peer served decoding symbols it cannot hold");
                    }
                }
                Err(e) => {
                    let peer = self.peers.get(&member).map_or("?", |p| p.base_url());
                    tracing::debug!(peer, error = %e, "decoding symbols request failed");
                    if matches!(e, NodeClientError::Unreachable { .. }) {
                        self.unreachable.insert(member);
                    }
                }
            }
        }
    }

    /// Keep the symbols of `answer` that `member` may supply; returns how many were rejected.
    #[allow(clippy::too_many_arguments)]
    fn accept(
        &self,
        axis: SliverType,
        member: usize,
        asked: &[SliverIndex],
        answer: DecodingSymbols,
        owners: &[Option<usize>],
        position: &HashMap<SliverIndex, usize>,
        targets: &mut [Target],
    ) -> usize {
        let mut rejected = 0;
        for (target, list) in answer {
            let Some(&i) = position.get(&target).filter(|_| asked.contains(&target)) else {
                rejected += list.len();
                continue;
            };
            for s in list {
                let right_axis = s.target_axis() == axis;
                let (EitherDecodingSymbol::Primary(d) | EitherDecodingSymbol::Secondary(d)) = s;
                let holder = owners.get(usize::from(d.index)).copied().flatten();
                if !right_axis || holder != Some(member) || d.data.len() != self.symbol_size {
                    rejected += 1;
                    continue;
                }
                targets[i]
                    .symbols
                    .entry(d.index)
                    .or_insert((Origin::Peer(member), d));
            }
        }
        rejected
    }

    /// Decode and verify `ready` on blocking threads, in parallel. For each target: the
    /// result and the peers it exposes as liars.
    async fn decode(
        &self,
        axis: SliverType,
        ready: Vec<Target>,
    ) -> Result<Vec<DecodeResult>, NodeError> {
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
        let per_task = ready.len().div_ceil(threads);
        let mut tasks = JoinSet::new();
        let mut ready = ready.into_iter();
        loop {
            let part: Vec<Target> = ready.by_ref().take(per_task).collect();
            if part.is_empty() {
                break;
            }
            let config = self.view.config;
            let metadata = Arc::clone(&self.metadata);
            let blamed = self.blamed.clone();
            tasks.spawn_blocking(move || {
                part.into_iter()
                    .map(|t| {
                        let result = decode_sliver_from_symbols(
                            &config,
                            &metadata,
                            axis,
                            t.index,
                            t.ordered(&blamed),
                        );
                        let liars = match &result {
                            Ok(sliver) => t.liars(&config, axis, sliver),
                            Err(_) => Vec::new(),
                        };
                        (t, result, liars)
                    })
                    .collect::<Vec<_>>()
            });
        }
        let mut out = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            out.extend(joined.map_err(|e| NodeError::Internal(e.to_string()))?);
        }
        Ok(out)
    }

    /// Settle `t` with proven recovery symbols; a rebuilt sliver also exposes liars.
    async fn prove(&mut self, axis: SliverType, t: &Target) -> Result<Recovered, NodeError> {
        let outcome = self
            .node
            .recover_proven(
                self.view,
                &self.metadata,
                &self.blob_id,
                axis,
                t.index,
                &self.blamed,
            )
            .await?;
        if let Recovered::Sliver(sliver) = &outcome {
            let liars = t.liars(&self.view.config, axis, sliver);
            self.blame(&liars, axis);
        }
        Ok(outcome)
    }

    /// Store rebuilt slivers in one durable write; `false` if the blob is no longer wanted.
    async fn store(
        &self,
        axis: SliverType,
        done: Vec<(ShardIndex, SliverData)>,
    ) -> Result<bool, NodeError> {
        if done.is_empty() {
            return Ok(true);
        }
        if !self.node.still_wanted(&self.blob_id)? {
            return Ok(false);
        }
        let items: Vec<_> = done
            .into_iter()
            .map(|(shard, sliver)| (shard, axis, self.blob_id, sliver))
            .collect();
        let store = Arc::clone(&self.node.store);
        tokio::task::spawn_blocking(move || store.put_slivers(&items))
            .await
            .map_err(|e| NodeError::Internal(e.to_string()))??;
        Ok(true)
    }
}

/// A decoded target: the verified sliver (or why not), and the peers it exposes as liars.
type DecodeResult = (Target, Result<SliverData, RecoveryError>, Vec<usize>);
