//! The read path: status from the ledger, metadata verified against the blob ID, primary
//! slivers verified against the metadata, decode, consistency check.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_core::{
    BlobId, BlobMetadataWithId, ConsistencyCheck, DecodeError, EncodingConfig, SliverData,
    SliverType, VerifiedSliver, decode_from_verified_primary,
    systematic_rows_from_verified_primary,
};
use floe_ledger::{BlobStatus, EpochState};
use rand::seq::SliceRandom;
use tokio::task::JoinSet;

use crate::committee::CommitteeView;
use crate::parts::BlobParts;
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
    pub(crate) first_hedge: Duration,
    /// End the fetch when a request is hedged and no other candidate is left.
    pub(crate) give_up_when_stuck: bool,
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

    /// After a read failed: the ledger's reason when the blob stopped being readable while it
    /// was read (it expired, was deleted or was found invalid, and the nodes dropped its
    /// slivers), which is the definite answer; otherwise `e` itself.
    async fn reason_since(&self, blob_id: &BlobId, e: ClientError) -> ClientError {
        match self.certified_epoch(blob_id).await {
            Err(
                now @ (ClientError::Expired { .. }
                | ClientError::Deleted(_)
                | ClientError::Invalid(_)),
            ) => now,
            _ => e,
        }
    }

    /// Read a whole certified blob.
    pub async fn read(
        &self,
        blob_id: &BlobId,
        options: ReadOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<Vec<u8>, ClientError> {
        self.read_parts(blob_id, options, progress)
            .await
            .map(BlobParts::into_vec)
    }

    /// Read a whole certified blob as the pieces it arrived in: when every systematic sliver
    /// came (the usual case), the slivers themselves, with no decoding and no copy; otherwise
    /// the decoded blob in one piece.
    pub async fn read_parts(
        &self,
        blob_id: &BlobId,
        options: ReadOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<BlobParts, ClientError> {
        let started = Instant::now();
        let committee = self.read_committee(blob_id).await?;
        let status_at = started.elapsed();
        let metadata = self.fetch_metadata(&committee, blob_id).await?;
        let metadata_at = started.elapsed();
        let config = committee.config;
        let p = usize::from(config.n_primary_source());
        let order = primary_order(&committee, blob_id);
        let size = metadata.metadata.unencoded_length();
        progress.phase("downloading", size);
        if let Some(blob) = self
            .read_data_rows(&committee, &metadata, options, &progress)
            .await
        {
            progress.finish();
            return Ok(blob.into());
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
            let e = ClientError::NotEnoughSlivers {
                blob_id: *blob_id,
                have: slivers.len(),
                need: p,
                failures,
            };
            return Err(self.reason_since(blob_id, e).await);
        }
        let slivers_at = started.elapsed();
        let repair_rows = slivers
            .iter()
            .filter(|v| v.sliver().index.0 >= p as u16)
            .count();
        progress.phase("decoding", 0);
        let blob = assemble(config, metadata, slivers, options.check, repair_rows).await;
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
        // Worth it while every row's holder answers: a holder found silent, or (when the
        // client has requests to spare) one merely suspect, and the ordinary read (any p rows)
        // goes ahead at once. A row unanswered for a few `hedge_min_ms` ends the shortcut too,
        // unless the client is saturated: then every read falling back to p requests would
        // multiply the load that made the row slow, so the read waits for the row until its
        // holder is found silent (see `fetch_slivers`).
        let placement = committee.placement(&metadata.blob_id, SliverType::Primary);
        let now = Instant::now();
        let spare = self.has_spare_requests();
        if rows.iter().any(|&r| {
            let address = &committee.members[placement.holder(r)].info.network_address;
            self.health.is_silent(address, now) || (spare && self.health.is_suspect(address, now))
        }) {
            return None;
        }
        let (slivers, _) = self
            .fetch_slivers(
                committee,
                metadata,
                Want {
                    axis: SliverType::Primary,
                    order: rows,
                    need: k,
                },
                self.patience(true),
                progress,
            )
            .await;
        if slivers.len() < k {
            return None;
        }
        let metadata = metadata.clone();
        let slivers = slivers
            .into_iter()
            .map(VerifiedSliver::into_inner)
            .collect();
        let decoded = crate::compute::compute(move || {
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
    /// against the blob ID. When none has it because the blob expired, was deleted or was found
    /// invalid since the caller checked the ledger, that is the error.
    pub async fn fetch_metadata(
        &self,
        committee: &CommitteeView,
        blob_id: &BlobId,
    ) -> Result<BlobMetadataWithId, ClientError> {
        let fetched = self.metadata_from_nodes(committee, blob_id).await;
        match fetched {
            Ok(m) => Ok(m),
            Err(e) => Err(self.reason_since(blob_id, e).await),
        }
    }

    async fn metadata_from_nodes(
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
}

/// The order to ask for a blob's primary slivers in: systematic ones first (no decoding
/// from them), each group spread over the holders: a node's shards are contiguous, so index
/// order would send the first requests all to one node, and a silent one would stall them all
/// for the first hedge delay (no answers, no latencies to adapt it to).
fn primary_order(committee: &CommitteeView, blob_id: &BlobId) -> Vec<u16> {
    let p = committee.config.n_primary_source();
    let placement = committee.placement(blob_id, SliverType::Primary);
    let holder = |i: u16| placement.holder(i);
    let mut order = interleave_by_holder(0..p, holder);
    order.extend(interleave_by_holder(p..committee.config.n_shards(), holder));
    order
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

/// The blob from `p` verified primary slivers. With every systematic row among them (no
/// `repair_rows`), the rows are the blob, and the default check has nothing left to
/// re-derive: they are returned as they are. With some repair rows, the default check decodes
/// only the missing systematic rows (each checked against its hash) and returns them with the
/// others, so no decoded copy of the whole blob is held next to the slivers. A strict check
/// (which re-encodes the blob from one buffer) or none decodes the whole blob.
async fn assemble(
    config: EncodingConfig,
    metadata: BlobMetadataWithId,
    slivers: Vec<VerifiedSliver>,
    check: ConsistencyCheck,
    repair_rows: usize,
) -> Result<BlobParts, ClientError> {
    let size = metadata.metadata.unencoded_length();
    let id = metadata.blob_id;
    let mut rows: Vec<SliverData> = match (repair_rows, check) {
        (_, ConsistencyCheck::Strict) | (1.., ConsistencyCheck::Skip) => {
            return decode(config, metadata, slivers, check)
                .await
                .map(BlobParts::from);
        }
        (1.., ConsistencyCheck::Default) => crate::compute::compute(move || {
            systematic_rows_from_verified_primary(&config, &metadata, slivers)
        })
        .await?
        .map_err(|e| decode_error(id, e))?,
        (0, _) => slivers
            .into_iter()
            .map(VerifiedSliver::into_inner)
            .collect(),
    };
    rows.sort_by_key(|r| r.index);
    let row_len = rows.first().map_or(0, |r| r.symbols.len());
    BlobParts::from_rows(rows, row_len, size).ok_or_else(|| {
        ClientError::Decode(format!(
            "the systematic slivers of {id} do not hold its {size} bytes"
        ))
    })
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
    let decoded = crate::compute::compute(move || {
        decode_from_verified_primary(&config, &metadata, slivers, check)
    })
    .await?;
    decoded.map(|d| d.blob).map_err(|e| decode_error(id, e))
}

fn decode_error(id: BlobId, e: DecodeError) -> ClientError {
    match e {
        DecodeError::Inconsistent(reason) => {
            tracing::warn!(blob_id = %id, %reason, "inconsistent blob");
            ClientError::Inconsistent(id)
        }
        e => ClientError::Decode(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::interleave_by_holder;

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
