//! The read path: status from the ledger, metadata verified against the blob ID, primary
//! slivers verified against the metadata, decode, consistency check.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_core::{
    BlobId, BlobMetadataWithId, ConsistencyCheck, DecodeError, EncodingConfig, SliverData,
    SliverIndex, SliverType, VerifiedSliver, decode_from_verified_primary,
};
use floe_ledger::{BlobStatus, EpochState};
use rand::seq::SliceRandom;
use tokio::task::JoinSet;

use crate::committee::CommitteeView;
use crate::liveness::{Latencies, Liveness, TICK};
use crate::{Client, ClientError, NodeFailure, Progress};

/// How to read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    pub check: ConsistencyCheck,
}

/// The slivers a fetch wants: `need` of `axis`, tried in `order`.
pub(crate) struct Want {
    pub axis: SliverType,
    pub order: Vec<u16>,
    pub need: usize,
}

/// How long a sliver fetch waits on a request before asking elsewhere.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patience {
    /// The hedge delay until answers show what to expect.
    first_hedge: Duration,
    /// End the fetch when a request is hedged and no other candidate is left.
    give_up_when_stuck: bool,
}

impl Client {
    /// The patience of an ordinary read, or of one that has a cheaper fallback (`eager`): it
    /// hedges after a few `hedge_min_ms` and gives up when stuck.
    pub(crate) fn patience(&self, eager: bool) -> Patience {
        let comm = &self.config.communication;
        let first_hedge = if eager {
            (comm.hedge_min_ms * 5).min(comm.hedge_after_ms)
        } else {
            comm.hedge_after_ms
        };
        Patience {
            first_hedge: Duration::from_millis(first_hedge),
            give_up_when_stuck: eager,
        }
    }

    /// Fail with the right error unless the ledger says `blob_id` is certified and live.
    pub async fn ensure_certified(&self, blob_id: &BlobId) -> Result<(), ClientError> {
        self.certified_epoch(blob_id).await.map(|_| ())
    }

    /// The committee to read `blob_id` from: while an epoch change is in progress, a blob
    /// certified before it is read from the previous committee (which certified it and still
    /// holds every shard, read-only); otherwise the current one.
    pub async fn read_committee(&self, blob_id: &BlobId) -> Result<CommitteeView, ClientError> {
        let certified = self.certified_epoch(blob_id).await?;
        let mut system = self.system().await?;
        if matches!(system.epoch_state, EpochState::Syncing { .. })
            && certified < system.epoch
            && let Some(previous) = system.previous_committee.take()
        {
            system.committee = previous;
        }
        CommitteeView::from_system(
            &system,
            &self.http,
            self.config.communication.request_timeout(),
        )
    }

    /// The epoch `blob_id` was first certified in, or the error saying why it is not readable.
    async fn certified_epoch(&self, blob_id: &BlobId) -> Result<floe_core::Epoch, ClientError> {
        let status = self.ledger.blob_status(blob_id).await?;
        match status.status {
            BlobStatus::Certified {
                initial_certified_epoch,
                ..
            } => Ok(initial_certified_epoch),
            BlobStatus::Nonexistent => Err(ClientError::BlobNotFound(*blob_id)),
            BlobStatus::Registered { .. } => Err(ClientError::NotCertified(*blob_id)),
            BlobStatus::Invalid { .. } => Err(ClientError::Invalid(*blob_id)),
            BlobStatus::Deleted { .. } => Err(ClientError::Deleted(*blob_id)),
            BlobStatus::Expired { end_epoch, .. } => Err(ClientError::Expired {
                blob_id: *blob_id,
                end_epoch,
            }),
        }
    }

    /// Read a whole certified blob.
    pub async fn read(
        &self,
        blob_id: &BlobId,
        options: ReadOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<Vec<u8>, ClientError> {
        let started = Instant::now();
        let committee = self.read_committee(blob_id).await?;
        let status_at = started.elapsed();
        let metadata = self.fetch_metadata(&committee, blob_id).await?;
        let metadata_at = started.elapsed();
        let config = committee.config;
        let p = usize::from(config.n_primary_source());
        // Systematic slivers first (decoding is cheapest from them), each group spread over
        // the holders: a node's shards are contiguous, so index order would send the first
        // requests all to one node, and a silent one would stall them all for the first hedge
        // delay (no answers, no latencies to adapt it to).
        let holder = |i: u16| committee.holder_of(blob_id, SliverType::Primary, SliverIndex(i));
        let mut order = interleave_by_holder(0..p as u16, holder);
        order.extend(interleave_by_holder(p as u16..config.n_shards(), holder));
        let size = metadata.metadata.unencoded_length();
        progress.phase("downloading", size);
        if let Some(blob) = self
            .read_data_rows(&committee, &metadata, options, &progress)
            .await
        {
            progress.finish();
            return Ok(blob);
        }
        let patience = self.patience(false);
        let (slivers, failures) = self
            .fetch_slivers(
                &committee,
                &metadata,
                Want {
                    axis: SliverType::Primary,
                    order,
                    need: p,
                },
                patience,
                &progress,
            )
            .await;
        if slivers.len() < p {
            progress.finish();
            return Err(ClientError::NotEnoughSlivers {
                blob_id: *blob_id,
                have: slivers.len(),
                need: p,
                failures,
            });
        }
        let slivers_at = started.elapsed();
        let repair_rows = slivers
            .iter()
            .filter(|v| v.sliver().index.0 >= p as u16)
            .count();
        progress.phase("decoding", 0);
        let blob = decode(config, metadata, slivers, options.check).await;
        progress.finish();
        tracing::debug!(
            %blob_id,
            status_ms = status_at.as_millis() as u64,
            metadata_ms = (metadata_at - status_at).as_millis() as u64,
            slivers_ms = (slivers_at - metadata_at).as_millis() as u64,
            decode_ms = (started.elapsed() - slivers_at).as_millis() as u64,
            repair_rows,
            failures = failures.len(),
            first_failure = failures.first().map(|f| f.reason.as_str()),
            "read finished"
        );
        blob
    }

    /// A blob smaller than its matrix, read from the few systematic rows holding its bytes
    /// (one sliver for a small blob, instead of p). `None` when it is not smaller, a row could
    /// not be had, or the padding does not check out: the caller then reads the ordinary way.
    async fn read_data_rows(
        &self,
        committee: &CommitteeView,
        metadata: &BlobMetadataWithId,
        options: ReadOptions,
        progress: &Arc<dyn Progress>,
    ) -> Option<Vec<u8>> {
        let config = committee.config;
        let k = floe_core::data_rows(&config, metadata).ok()?;
        if k * 2 > usize::from(config.n_primary_source()) {
            return None;
        }
        let rows: Vec<u16> = (0..k as u16).collect();
        // Only worth it while every row's holder answers promptly: a suspect holder, a row
        // unanswered for a few `hedge_min_ms`, or no rows within the hedge delay, and the
        // ordinary read (any p rows) goes ahead.
        let blob_id = metadata.blob_id;
        let now = Instant::now();
        if rows.iter().any(|&r| {
            let m = committee.holder_of(&blob_id, SliverType::Primary, SliverIndex(r));
            self.health
                .is_suspect(&committee.members[m].info.network_address, now)
        }) {
            return None;
        }
        let hedge = Duration::from_millis(self.config.communication.hedge_after_ms);
        let (slivers, _) = tokio::time::timeout(
            hedge,
            self.fetch_slivers(
                committee,
                metadata,
                Want {
                    axis: SliverType::Primary,
                    order: rows,
                    need: k,
                },
                self.patience(true),
                progress,
            ),
        )
        .await
        .ok()?;
        if slivers.len() < k {
            return None;
        }
        let metadata = metadata.clone();
        let slivers = slivers
            .into_iter()
            .map(VerifiedSliver::into_inner)
            .collect();
        let decoded = tokio::task::spawn_blocking(move || {
            floe_core::decode_from_data_rows(&config, &metadata, slivers, options.check)
        })
        .await
        .ok()?;
        match decoded {
            Ok(d) => Some(d.blob),
            Err(e) => {
                tracing::info!(error = %e, "reading the data rows alone failed; reading the whole matrix");
                None
            }
        }
    }

    /// Read `length` bytes at `start` of a certified blob, fetching only the systematic
    /// primary slivers (rows) that hold them; falls back to a whole read if one is missing.
    pub async fn read_range(
        &self,
        blob_id: &BlobId,
        start: u64,
        length: u64,
    ) -> Result<Vec<u8>, ClientError> {
        let committee = self.read_committee(blob_id).await?;
        let metadata = self.fetch_metadata(&committee, blob_id).await?;
        let size = metadata.metadata.unencoded_length();
        let end = start
            .checked_add(length)
            .filter(|&e| e <= size && length > 0);
        let Some(end) = end else {
            return Err(ClientError::RangeNotSatisfiable {
                start,
                length,
                size,
            });
        };
        let config = committee.config;
        let sym = metadata
            .metadata
            .symbol_size(&config)
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let row_bytes = config.sliver_len(SliverType::Primary, sym) as u64;
        let (first, last) = (start / row_bytes, (end - 1) / row_bytes);
        let rows: Vec<u16> = (first as u16..=last as u16).collect();
        let want = rows.len();
        let (slivers, _) = self
            .fetch_slivers(
                &committee,
                &metadata,
                Want {
                    axis: SliverType::Primary,
                    order: rows,
                    need: want,
                },
                self.patience(false),
                &(Arc::new(crate::NoProgress) as Arc<dyn Progress>),
            )
            .await;
        if slivers.len() < want {
            tracing::info!(%blob_id, "a row of the range is unavailable; reading the whole blob");
            let all = self
                .read(blob_id, ReadOptions::default(), Arc::new(crate::NoProgress))
                .await?;
            return Ok(all[start as usize..end as usize].to_vec());
        }
        let mut slivers: Vec<SliverData> = slivers
            .into_iter()
            .map(VerifiedSliver::into_inner)
            .collect();
        slivers.sort_by_key(|s| s.index);
        let mut out = Vec::with_capacity(length as usize);
        for s in &slivers {
            let row_start = u64::from(s.index.0) * row_bytes;
            let from = start.max(row_start) - row_start;
            let to = end.min(row_start + row_bytes) - row_start;
            out.extend_from_slice(&s.symbols[from as usize..to as usize]);
        }
        Ok(out)
    }

    /// Metadata from the first member (in random order, a few at once) whose answer verifies
    /// against the blob ID.
    pub async fn fetch_metadata(
        &self,
        committee: &CommitteeView,
        blob_id: &BlobId,
    ) -> Result<BlobMetadataWithId, ClientError> {
        let mut order: Vec<usize> = (0..committee.members.len())
            .filter(|&i| committee.members[i].weight() > 0)
            .collect();
        order.shuffle(&mut rand::rng());
        // Nodes that failed recently go last.
        let now = Instant::now();
        order.sort_by_key(|&i| {
            self.health
                .is_suspect(&committee.members[i].info.network_address, now)
        });
        let mut pending = order.into_iter();
        let mut set = JoinSet::new();
        let mut failures = Vec::new();
        let config = committee.config;
        let spawn = |set: &mut JoinSet<_>, i: usize| {
            let client = committee.members[i].client.clone();
            let id = *blob_id;
            set.spawn(async move { (i, client.get_metadata(&id).await) });
        };
        for i in pending
            .by_ref()
            .take(self.config.communication.max_concurrent_metadata_reads)
        {
            spawn(&mut set, i);
        }
        let hedge = std::time::Duration::from_millis(self.config.communication.hedge_after_ms);
        loop {
            let joined = match tokio::time::timeout(hedge, set.join_next()).await {
                Ok(Some(j)) => j,
                Ok(None) => break,
                Err(_) => {
                    if let Some(next) = pending.next() {
                        spawn(&mut set, next);
                    }
                    continue;
                }
            };
            let (i, result) = joined.map_err(|e| ClientError::Internal(e.to_string()))?;
            let reason = match result {
                Ok(m) if m.blob_id != *blob_id => "metadata for another blob ID".to_string(),
                Ok(m) => match m.metadata.verify(&config, blob_id) {
                    Ok(()) => return Ok(m),
                    Err(e) => format!("metadata does not verify: {e}"),
                },
                Err(e) => e.to_string(),
            };
            let member = &committee.members[i];
            failures.push(NodeFailure {
                node: member.label(),
                shards: member.info.shards.len(),
                reason,
            });
            if let Some(next) = pending.next() {
                spawn(&mut set, next);
            }
        }
        Err(ClientError::NoMetadata {
            blob_id: *blob_id,
            failures,
        })
    }

    /// Fetch and verify slivers of `axis`, trying `order` front to back (slivers held by suspect
    /// nodes last), until `need` distinct valid ones are in hand or every candidate failed.
    ///
    /// At most `max_concurrent_sliver_reads` requests count as active. A request unanswered
    /// after the hedge delay stops counting (it may still complete and be used): a replacement
    /// goes to another candidate and its node becomes suspect for this read and, if it has not
    /// answered by the end, through [`NodeHealth`](crate::health::NodeHealth), for the
    /// client's next reads. So a node that
    /// vanished costs one hedge delay, not a request timeout, and only once. The hedge delay
    /// is `patience.first_hedge` until a few answers came, then follows their latencies (see
    /// [`Latencies`]). With `patience.give_up_when_stuck`, the fetch ends as soon as a hedged
    /// request has no replacement left to try.
    pub(crate) async fn fetch_slivers(
        &self,
        committee: &CommitteeView,
        metadata: &BlobMetadataWithId,
        want: Want,
        patience: Patience,
        progress: &Arc<dyn Progress>,
    ) -> (Vec<VerifiedSliver>, Vec<NodeFailure>) {
        let Want { axis, order, need } = want;
        let blob_id = metadata.blob_id;
        let config = committee.config;
        let metadata = Arc::new(metadata.clone());
        let limit = self.config.communication.max_concurrent_sliver_reads;
        let hedge_min = Duration::from_millis(self.config.communication.hedge_min_ms);
        let mut latencies = Latencies::default();
        // Each candidate's holder, worked out once (it takes a modular reduction of the blob
        // ID); every candidate is looked up on each request, and on each answer.
        let holders: HashMap<u16, usize> = order
            .iter()
            .map(|&i| (i, committee.holder_of(&blob_id, axis, SliverIndex(i))))
            .collect();
        let holder = |index: u16| holders[&index];
        // The first `need` candidates are the ones the caller prefers (a read's systematic
        // slivers: no decoding); the rest are taken only for those that cannot be had.
        let preferred: HashSet<u16> = order.iter().take(need).copied().collect();
        let address = |member: usize| committee.members[member].info.network_address.as_str();
        let mut suspects: HashSet<usize> = (0..committee.members.len())
            .filter(|&m| self.health.is_suspect(address(m), Instant::now()))
            .collect();
        let mut liveness = Liveness::new(&self.config.communication);
        // Until a node answered once in this read, it has at most an even share of the
        // requests in flight: a frozen node then holds a share, not most of them, until its
        // requests are hedged.
        let first: HashSet<usize> = order
            .iter()
            .take(limit.min(need))
            .map(|&i| holder(i))
            .collect();
        let share = limit.div_ceil(first.len().max(1));
        let mut answered: HashSet<usize> = HashSet::new();
        let mut hedged_requests = 0usize;
        let started_at = Instant::now();
        let mut pending: VecDeque<u16> = order.into();
        let mut set = JoinSet::new();
        // In flight: task → (started, holder, hedged, index).
        let mut in_flight: HashMap<tokio::task::Id, (Instant, usize, bool, u16)> = HashMap::new();
        let mut good = Vec::with_capacity(need);
        let mut failures = Vec::new();
        let spawn_next = |set: &mut JoinSet<_>,
                          in_flight: &mut HashMap<_, (Instant, usize, bool, u16)>,
                          pending: &mut VecDeque<u16>,
                          suspects: &HashSet<usize>,
                          answered: &HashSet<usize>,
                          latencies: &Latencies,
                          permit: tokio::sync::OwnedSemaphorePermit| {
            // Per holder: requests in flight, and since when the oldest has waited.
            let mut busy: HashMap<usize, (usize, Instant)> = HashMap::new();
            for f in in_flight.values() {
                let b = busy.entry(f.1).or_insert((0, f.0));
                b.0 += 1;
                b.1 = b.1.min(f.0);
            }
            // Waiting on a holder longer than twice the usual answer: its preferred
            // candidates no longer hold back the fallbacks.
            let usual = latencies.median().map(|m| m * 2);
            let now = Instant::now();
            let pick = next_candidate(
                pending,
                holder,
                |m| {
                    let (count, oldest) = busy.get(&m).copied().unwrap_or((0, now));
                    Holder {
                        suspect: suspects.contains(&m),
                        capped: !answered.contains(&m) && count >= share,
                        stalled: usual.is_some_and(|u| now.duration_since(oldest) > u),
                    }
                },
                |i| preferred.contains(&i),
            );
            let Some(index) = pick.and_then(|pos| pending.remove(pos)) else {
                return false;
            };
            let member = holder(index);
            let client = committee.members[member].client.clone();
            let metadata = metadata.clone();
            let task = set.spawn(async move {
                let pair = SliverIndex(index).to_pair_index(axis, config.n_shards());
                let answer = client.get_sliver(&blob_id, pair, axis).await;
                drop(permit);
                match answer {
                    Ok(s) => verify(config, metadata, axis, index, s).await,
                    Err(e) => Err(e.to_string()),
                }
            });
            in_flight.insert(task.id(), (Instant::now(), member, false, index));
            true
        };
        let active = |in_flight: &HashMap<_, (Instant, usize, bool, u16)>| {
            in_flight.values().filter(|f| !f.2).count()
        };
        loop {
            // Requests beyond the client-wide cap wait for a permit, but only while this read
            // has nothing in flight: otherwise it goes on collecting answers meanwhile.
            while active(&in_flight) < limit
                && good.len() + active(&in_flight) < need
                && !pending.is_empty()
            {
                let permit = match self.node_requests.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) if !in_flight.is_empty() => break,
                    Err(_) => match self.node_requests.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                if !spawn_next(
                    &mut set,
                    &mut in_flight,
                    &mut pending,
                    &suspects,
                    &answered,
                    &latencies,
                    permit,
                ) {
                    break;
                }
            }
            if in_flight.is_empty() && pending.is_empty() {
                break;
            }
            // Slivers still obtainable: those in hand, plus candidates whose holder is not silent.
            let obtainable = pending
                .iter()
                .copied()
                .chain(in_flight.values().map(|f| f.3))
                .filter(|&i| !liveness.is_silent(holder(i)))
                .count();
            if good.len() + obtainable < need {
                tracing::warn!(%blob_id, have = good.len(), obtainable, need, "too many nodes are silent");
                set.abort_all();
                break;
            }
            // Stuck: a request was hedged, and without it the rest cannot make `need` (for the
            // data-row shortcut, which needs every row, that is any hedged request).
            let live = active(&in_flight);
            if patience.give_up_when_stuck
                && in_flight.values().any(|f| f.2)
                && good.len() + live + pending.len() < need
            {
                set.abort_all();
                break;
            }
            let hedge = latencies.hedge(hedge_min, patience.first_hedge);
            let now = Instant::now();
            liveness.probe_stalled(committee, in_flight.values().map(|f| (f.1, f.0)), now);
            let wait = in_flight
                .values()
                .filter(|f| !f.2)
                .map(|f| (f.0 + hedge).saturating_duration_since(now))
                .min()
                .unwrap_or(hedge)
                .min(TICK);
            let joined = tokio::select! {
                j = set.join_next_with_id() => match j {
                    Some(j) => j,
                    None => continue,
                },
                verdict = liveness.next(), if liveness.probing() => {
                    if liveness.record(verdict, Instant::now()) {
                        suspects.insert(verdict.0);
                        self.health.silent(address(verdict.0), Instant::now());
                    }
                    continue;
                }
                _ = tokio::time::sleep(wait) => {
                    // Requests past the hedge delay stop counting; their nodes are suspect for
                    // this read (and for the client's next ones if still silent at its end).
                    // All of a node's requests go together: they wait on the same node.
                    let now = Instant::now();
                    let late: HashSet<usize> = in_flight
                        .values()
                        .filter(|f| !f.2 && now.duration_since(f.0) >= hedge)
                        .map(|f| f.1)
                        .collect();
                    for f in in_flight.values_mut() {
                        if !f.2 && late.contains(&f.1) {
                            f.2 = true;
                            hedged_requests += 1;
                        }
                    }
                    suspects.extend(late);
                    continue;
                }
            };
            let (id, result) = match joined {
                Ok((id, result)) => (id, result),
                Err(e) => {
                    in_flight.remove(&e.id());
                    continue;
                }
            };
            let Some((started, member, _, _)) = in_flight.remove(&id) else {
                continue;
            };
            answered.insert(member);
            match result {
                Ok(s) => {
                    latencies.add(started.elapsed());
                    self.health.clear(address(member));
                    progress.advance(s.sliver().symbols.len() as u64);
                    good.push(s);
                    if good.len() >= need {
                        set.abort_all();
                        break;
                    }
                }
                Err(reason) => {
                    suspects.insert(member);
                    self.health.suspect(address(member), Instant::now());
                    let m = &committee.members[member];
                    failures.push(NodeFailure {
                        node: m.label(),
                        shards: m.info.shards.len(),
                        reason,
                    });
                }
            }
        }
        let now = Instant::now();
        for f in in_flight.values().filter(|f| f.2) {
            self.health.suspect(address(f.1), now);
        }
        tracing::debug!(
            %blob_id,
            %axis,
            need,
            got = good.len(),
            hedged_requests,
            suspects = suspects.len(),
            ms = started_at.elapsed().as_millis() as u64,
            "sliver fetch finished"
        );
        failures.extend(liveness.failures(committee));
        (good, failures)
    }
}

/// What the choice of the next request knows of a candidate's holder.
#[derive(Clone, Copy, Debug, Default)]
struct Holder {
    /// Failed or did not answer in time, in this read or recently.
    suspect: bool,
    /// Has not answered yet in this read and already has its share of requests in flight.
    capped: bool,
    /// Its oldest request has waited well past the usual answer time.
    stalled: bool,
}

/// The position in `pending` to request next: the first candidate whose holder is neither
/// suspect nor capped, unless it is not `preferred` while a capped holder (one still to answer,
/// neither suspect nor stalled) has preferred candidates waiting: then `None`, the read waits for answers
/// rather than trade a slow start for a decode. When only suspect holders are left, the first
/// of their candidates that is not capped. `None` also when nothing is pending or every
/// holder is capped.
fn next_candidate(
    pending: &VecDeque<u16>,
    holder: impl Fn(u16) -> usize,
    state: impl Fn(usize) -> Holder,
    preferred: impl Fn(u16) -> bool,
) -> Option<usize> {
    let mut fallback = None;
    let mut waiting_for_capped = false;
    for (pos, &i) in pending.iter().enumerate() {
        let h = state(holder(i));
        if h.capped {
            waiting_for_capped |= !h.suspect && !h.stalled && preferred(i);
            continue;
        }
        if !h.suspect {
            return (!waiting_for_capped || preferred(i)).then_some(pos);
        }
        fallback = fallback.or(Some(pos));
    }
    if waiting_for_capped { None } else { fallback }
}

/// `indices` reordered round-robin over their holders (each holder's own indices keep their
/// order; holders in order of first appearance), so consecutive requests go to different
/// nodes.
fn interleave_by_holder(
    indices: impl Iterator<Item = u16>,
    holder: impl Fn(u16) -> usize,
) -> Vec<u16> {
    let mut queues: Vec<(usize, VecDeque<u16>)> = Vec::new();
    let mut total = 0;
    for i in indices {
        let h = holder(i);
        match queues.iter_mut().find(|(q, _)| *q == h) {
            Some((_, q)) => q.push_back(i),
            None => queues.push((h, VecDeque::from([i]))),
        }
        total += 1;
    }
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        for (_, q) in queues.iter_mut() {
            if let Some(i) = q.pop_front() {
                out.push(i);
            }
        }
    }
    out
}

/// Decode a blob from `p` verified primary slivers (off the async threads), checking its
/// consistency as asked.
async fn decode(
    config: EncodingConfig,
    metadata: BlobMetadataWithId,
    slivers: Vec<VerifiedSliver>,
    check: ConsistencyCheck,
) -> Result<Vec<u8>, ClientError> {
    let id = metadata.blob_id;
    // Each sliver was verified on arrival: the decoder does not hash them again.
    let decoded = tokio::task::spawn_blocking(move || {
        decode_from_verified_primary(&config, &metadata, slivers, check)
    })
    .await
    .map_err(|e| ClientError::Internal(e.to_string()))?;
    match decoded {
        Ok(d) => Ok(d.blob),
        Err(DecodeError::Inconsistent(reason)) => {
            tracing::warn!(blob_id = %id, %reason, "inconsistent blob");
            Err(ClientError::Inconsistent(id))
        }
        Err(e) => Err(ClientError::Decode(e.to_string())),
    }
}

/// Verify a downloaded sliver (off the async threads): right index, right shape, right hash.
async fn verify(
    config: EncodingConfig,
    metadata: Arc<BlobMetadataWithId>,
    axis: SliverType,
    index: u16,
    sliver: SliverData,
) -> Result<VerifiedSliver, String> {
    if sliver.index.0 != index {
        return Err(format!(
            "asked for {axis} sliver {index}, got sliver {}",
            sliver.index.0
        ));
    }
    tokio::task::spawn_blocking(move || {
        VerifiedSliver::verify(sliver, axis, &config, &metadata)
            .map_err(|e| format!("sliver {index} failed verification: {e}"))
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::{Holder, interleave_by_holder, next_candidate};

    #[test]
    fn the_next_request_skips_capped_holders_and_prefers_ones_not_suspect() {
        // Indices 0..6 held by node index / 2: 0, 0, 1, 1, 2, 2.
        let holder = |i: u16| usize::from(i / 2);
        let pending: VecDeque<u16> = (0..6).collect();
        let of = |suspect: &'static [usize], capped: &'static [usize]| {
            move |m: usize| Holder {
                suspect: suspect.contains(&m),
                capped: capped.contains(&m),
                stalled: false,
            }
        };
        let all = |_: u16| true;
        assert_eq!(next_candidate(&pending, holder, of(&[], &[]), all), Some(0));
        // Node 0 has its share in flight and has not answered (maybe frozen): node 1 next.
        assert_eq!(
            next_candidate(&pending, holder, of(&[], &[0]), all),
            Some(2)
        );
        // A suspect node is skipped while another is left.
        assert_eq!(
            next_candidate(&pending, holder, of(&[0, 1], &[]), all),
            Some(4)
        );
        // Only suspect ones left: the first of them that is not capped.
        assert_eq!(
            next_candidate(&pending, holder, of(&[0, 1, 2], &[0]), all),
            Some(2)
        );
        // Every holder capped: wait for answers.
        assert_eq!(
            next_candidate(&pending, holder, of(&[], &[0, 1, 2]), all),
            None
        );
        // Indices 0..4 preferred (systematic), 4 and 5 a fallback (repair rows): while node 1
        // may still answer for its preferred ones, nothing goes to node 2's fallbacks...
        let systematic = |i: u16| i < 4;
        assert_eq!(
            next_candidate(&pending, holder, of(&[], &[0, 1]), systematic),
            None
        );
        // ...nor while one of them may...
        assert_eq!(
            next_candidate(&pending, holder, of(&[1], &[0, 1]), systematic),
            None
        );
        // ...unless it has kept them waiting well past the usual answer...
        let stalled_1 = |m: usize| Holder {
            suspect: false,
            capped: m < 2,
            stalled: m == 1,
        };
        assert_eq!(
            next_candidate(&pending, holder, stalled_1, systematic),
            None,
            "node 0 still counts"
        );
        let both_stalled = |m: usize| Holder {
            suspect: false,
            capped: m < 2,
            stalled: m < 2,
        };
        assert_eq!(
            next_candidate(&pending, holder, both_stalled, systematic),
            Some(4)
        );
        // ...and once both are suspect (hedged), the fallbacks replace their slivers.
        assert_eq!(
            next_candidate(&pending, holder, of(&[0, 1], &[0, 1]), systematic),
            Some(4)
        );
        assert_eq!(
            next_candidate(&pending, holder, of(&[0, 1], &[]), systematic),
            Some(4)
        );
        assert_eq!(
            next_candidate(&VecDeque::new(), holder, of(&[], &[]), all),
            None
        );
    }

    #[test]
    fn interleaving_spreads_contiguous_holders_and_keeps_every_index_once() {
        // Holders own contiguous runs (0–3: node 0, 4–7: node 1, 8–9: node 2).
        let order = interleave_by_holder(0..10, |i| usize::from(i / 4));
        assert_eq!(order, vec![0, 4, 8, 1, 5, 9, 2, 6, 3, 7]);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert!(interleave_by_holder(0..0, |_| 0).is_empty());
    }
}
