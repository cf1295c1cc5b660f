//! The storage node's operations, independent of HTTP: every request handler is a thin wrapper
//! over one of these, and each failure is a typed [`NodeError`].

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use floe_core::recovery::{
    DecodingSymbol, EitherDecodingSymbol, GeneralRecoverySymbol, InconsistencyProof, SymbolSource,
};
use floe_core::{
    BlobId, BlobMetadata, BlobMetadataWithId, ObjectId, ShardIndex, SliverData, SliverIndex,
    SliverPairIndex, SliverType,
};
use floe_crypto::{
    BlobPersistenceType, Confirmation, InvalidBlobIdBody, ProtocolMessage, SignedMessage,
};
use floe_ledger_client::LedgerClient;
use floe_node_storage::{BlobInfo, NodeStore};
use serde::{Deserialize, Serialize};

use crate::config::{NodeConfig, NodeKeys};
pub use crate::error::NodeError;
use crate::pending::PendingBuffer;
use crate::view::CommitteeView;

/// What a PUT did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    Created,
    Buffered,
    AlreadyStored,
}

/// Whether something is stored on this node (`StoredOnNodeStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredStatus {
    Nonexistent,
    Buffered,
    Stored,
}

/// The batched upload body: every sliver pair of a blob that this node holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SliverBatch {
    /// Wire version (1).
    pub version: u8,
    pub slivers: Vec<(SliverPairIndex, floe_core::Sliver)>,
}

pub use crate::limits::MAX_DECODING_TARGETS;

/// Decoding symbols (no proofs) per target sliver index, as served by `decodingSymbols`.
pub type DecodingSymbols = BTreeMap<SliverIndex, Vec<EitherDecodingSymbol>>;

/// Counters exported as Prometheus metrics.
#[derive(Default)]
pub struct Counters {
    pub slivers_stored: std::sync::atomic::AtomicU64,
    pub sliver_bytes_stored: std::sync::atomic::AtomicU64,
    pub slivers_served: std::sync::atomic::AtomicU64,
    pub sliver_bytes_served: std::sync::atomic::AtomicU64,
    pub metadata_stored: std::sync::atomic::AtomicU64,
    pub confirmations_signed: std::sync::atomic::AtomicU64,
    pub rejected_requests: std::sync::atomic::AtomicU64,
}

/// A running storage node.
pub struct StorageNode {
    pub(crate) config: NodeConfig,
    pub(crate) keys: NodeKeys,
    pub(crate) store: Arc<dyn NodeStore>,
    pub(crate) ledger: LedgerClient,
    pub(crate) view: RwLock<CommitteeView>,
    pub(crate) pending: Mutex<PendingBuffer>,
    pub(crate) started: Instant,
    pub(crate) recovery_permits: tokio::sync::Semaphore,
    pub(crate) counters: Counters,
    /// Ledger events persisted so far (the cursor).
    pub(crate) events_persisted: std::sync::atomic::AtomicU64,
    /// Connection pools towards peers (pinned to their network keys).
    pub(crate) http: floe_node_client::NodeHttp,
    pub(crate) sync_state: crate::state::SyncState,
    pub(crate) sync_permits: tokio::sync::Semaphore,
    /// An epoch event was processed but reloading the committee failed: retry before the
    /// next page (the event itself will not be seen again).
    pub(crate) view_stale: std::sync::atomic::AtomicBool,
    /// Epoch-change bookkeeping (migration of gained shards).
    pub(crate) epoch_sync: crate::state::EpochSyncState,
    /// The follower's epoch-change plans, for the epoch-change worker.
    pub(crate) plans: Arc<crate::state::PlanBox>,
    /// The event cursor, published after each page of events is persisted (wakes the
    /// confirmation long polls).
    pub(crate) events_applied: tokio::sync::watch::Sender<u64>,
    /// Confirmation requests waiting for a registration.
    pub(crate) confirmation_waiters: tokio::sync::Semaphore,
    /// The blob-table digest of the last epoch change seen (the drift check).
    pub(crate) blob_table_digest: Mutex<Option<crate::drift::BlobTableDigest>>,
    /// The storage-challenge worker's counters and the ledger's latest tallies.
    pub(crate) challenges: crate::state::ChallengeState,
    /// The background workers (see the `workers` module).
    workers: crate::runner::Runner,
}

/// The shard of `pair` of `blob_id`, if `pair` is in range and `held` says the shard is here.
fn shard_of_pair(
    view: &CommitteeView,
    blob_id: &BlobId,
    pair: u16,
    held: fn(&CommitteeView, ShardIndex) -> bool,
) -> Result<ShardIndex, NodeError> {
    if pair >= view.n() {
        return Err(NodeError::IndexOutOfRange {
            index: pair,
            n: view.n(),
        });
    }
    let shard = view.shard_of(blob_id, SliverPairIndex(pair));
    if !held(view, shard) {
        return Err(NodeError::ShardNotAssigned(shard));
    }
    Ok(shard)
}

fn bump(c: &std::sync::atomic::AtomicU64, by: u64) {
    c.fetch_add(by, std::sync::atomic::Ordering::Relaxed);
}

impl StorageNode {
    pub fn new(
        config: NodeConfig,
        keys: NodeKeys,
        store: Arc<dyn NodeStore>,
        view: CommitteeView,
    ) -> Arc<Self> {
        let limits = config.limits.clone();
        let cursor = store.event_cursor().unwrap_or(0);
        Arc::new(Self {
            ledger: LedgerClient::with_urls(config.ledger_urls()),
            pending: Mutex::new(PendingBuffer::new(
                limits.pending_max_entries,
                limits.pending_max_bytes,
                Duration::from_secs(limits.pending_ttl_secs),
            )),
            recovery_permits: tokio::sync::Semaphore::new(limits.max_recovery_requests),
            config,
            keys,
            store,
            view: RwLock::new(view),
            started: Instant::now(),
            counters: Counters::default(),
            events_persisted: std::sync::atomic::AtomicU64::new(cursor),
            http: floe_node_client::NodeHttp::with_defaults(),
            sync_state: crate::state::SyncState::default(),
            sync_permits: tokio::sync::Semaphore::new(limits.max_concurrent_syncs),
            view_stale: std::sync::atomic::AtomicBool::new(false),
            epoch_sync: Default::default(),
            plans: Default::default(),
            events_applied: tokio::sync::watch::Sender::new(cursor),
            confirmation_waiters: tokio::sync::Semaphore::new(limits.max_confirmation_waiters),
            blob_table_digest: Mutex::new(None),
            challenges: Default::default(),
            workers: Default::default(),
        })
    }

    /// The runner of this node's background workers.
    pub fn workers(&self) -> &crate::runner::Runner {
        &self.workers
    }

    pub fn migration_stats(&self) -> crate::state::MigrationStats {
        self.epoch_sync.stats()
    }

    /// Checks that `pair` is in range and its shard is served here (owned, or held read-only
    /// during an epoch change); returns the shard.
    pub(crate) fn served_shard_for(
        &self,
        view: &CommitteeView,
        blob_id: &BlobId,
        pair: u16,
    ) -> Result<ShardIndex, NodeError> {
        shard_of_pair(view, blob_id, pair, CommitteeView::serves)
    }

    /// The long poll of the confirmation routes: wait at most `wait` until `blob_id` is
    /// registered (and, for a deletable confirmation, `object` is a live registration of it).
    /// Returns when it is, or when the wait is over; the caller then answers as usual. At most
    /// `max_confirmation_waiters` requests wait at once; more get [`NodeError::Busy`].
    pub async fn wait_for_registration(
        &self,
        blob_id: &BlobId,
        object: Option<ObjectId>,
        wait: Duration,
    ) -> Result<(), NodeError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut applied = self.events_applied.subscribe();
        let _permit = self
            .confirmation_waiters
            .try_acquire()
            .map_err(|_| NodeError::Busy)?;
        loop {
            let epoch = self.view().epoch;
            if let Some(info) = self.registration(blob_id, epoch)?
                && object.is_none_or(|o| info.live_deletable(&o, epoch))
            {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, applied.changed()).await {
                Ok(Ok(())) => {}
                // Out of time, or the node is shutting down.
                Ok(Err(_)) | Err(_) => return Ok(()),
            }
        }
    }

    /// Call `f` on every blob info, in blob-ID order, a page of the store at a time.
    pub(crate) fn for_each_blob_info(
        &self,
        mut f: impl FnMut(&BlobId, &BlobInfo) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        let mut after: Option<BlobId> = None;
        loop {
            let page = self.store.blob_infos(after.as_ref(), 1000)?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = Some(*last);
            for (blob_id, info) in &page {
                f(blob_id, info)?;
            }
        }
    }

    pub fn view(&self) -> CommitteeView {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn public_key(&self) -> &floe_crypto::ProtocolPublicKey {
        self.keys.protocol.public_key()
    }

    pub fn name(&self) -> &str {
        &self.keys.name
    }

    fn blob_info(&self, blob_id: &BlobId) -> Result<Option<BlobInfo>, NodeError> {
        Ok(self.store.get_blob_info(blob_id)?)
    }

    /// Live registration known, not invalid.
    pub(crate) fn registration(
        &self,
        blob_id: &BlobId,
        epoch: u32,
    ) -> Result<Option<BlobInfo>, NodeError> {
        let info = self.blob_info(blob_id)?;
        if let Some(i) = &info {
            if i.invalid_event.is_some() {
                return Err(NodeError::InvalidBlob(*blob_id));
            }
            if i.is_registered_live(epoch) {
                return Ok(info);
            }
        }
        Ok(None)
    }

    /// The stored metadata, or the buffered one.
    fn metadata_for(&self, blob_id: &BlobId) -> Result<Option<BlobMetadata>, NodeError> {
        if let Some(m) = self.store.get_metadata(blob_id)? {
            return Ok(Some(m));
        }
        Ok(self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .metadata(blob_id)
            .cloned())
    }

    pub fn put_metadata(
        &self,
        blob_id: &BlobId,
        body: &[u8],
        pending: bool,
    ) -> Result<StoreOutcome, NodeError> {
        let view = self.view();
        let metadata: BlobMetadata = bcs::from_bytes(body)
            .map_err(|e| NodeError::BadBody(format!("not BCS blob metadata: {e}")))?;
        metadata
            .verify(&view.config, blob_id)
            .map_err(|e| NodeError::InvalidMetadata(e.to_string()))?;
        let registered = self.registration(blob_id, view.epoch)?.is_some();
        if self.store.has_metadata(blob_id)? {
            return Ok(StoreOutcome::AlreadyStored);
        }
        if registered {
            self.store.put_metadata(blob_id, &metadata)?;
            bump(&self.counters.metadata_stored, 1);
            return Ok(StoreOutcome::Created);
        }
        if !pending {
            return Err(NodeError::NotRegistered(*blob_id));
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put_metadata(blob_id, metadata)
            .map_err(|_| NodeError::CacheSaturated)?;
        Ok(StoreOutcome::Buffered)
    }

    pub fn get_metadata(&self, blob_id: &BlobId) -> Result<BlobMetadataWithId, NodeError> {
        if self
            .blob_info(blob_id)?
            .is_some_and(|i| i.invalid_event.is_some())
        {
            return Err(NodeError::InvalidBlob(*blob_id));
        }
        let metadata = self
            .store
            .get_metadata(blob_id)?
            .ok_or(NodeError::MetadataNotFound(*blob_id))?;
        Ok(BlobMetadataWithId {
            blob_id: *blob_id,
            metadata,
        })
    }

    pub fn metadata_status(&self, blob_id: &BlobId) -> Result<StoredStatus, NodeError> {
        if self.store.has_metadata(blob_id)? {
            return Ok(StoredStatus::Stored);
        }
        let buffered = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .metadata(blob_id)
            .is_some();
        Ok(if buffered {
            StoredStatus::Buffered
        } else {
            StoredStatus::Nonexistent
        })
    }

    /// Checks that `pair` is in range and its shard is ours; returns the shard.
    fn my_shard_for(
        &self,
        view: &CommitteeView,
        blob_id: &BlobId,
        pair: u16,
    ) -> Result<ShardIndex, NodeError> {
        shard_of_pair(view, blob_id, pair, CommitteeView::owns)
    }

    /// Verify and store (or buffer) one sliver.
    fn accept_sliver(
        &self,
        view: &CommitteeView,
        blob_id: &BlobId,
        pair: u16,
        axis: SliverType,
        sliver: SliverData,
        pending: bool,
    ) -> Result<StoreOutcome, NodeError> {
        let shard = self.my_shard_for(view, blob_id, pair)?;
        let expected = SliverPairIndex(pair).to_sliver_index(axis, view.n());
        if sliver.index != expected {
            return Err(NodeError::SliverIndexMismatch {
                index: sliver.index.0,
                pair,
                axis,
            });
        }
        let registered = self.registration(blob_id, view.epoch)?.is_some();
        if !registered && !pending {
            return Err(NodeError::NotRegistered(*blob_id));
        }
        if self.store.has_sliver(shard, axis, blob_id)? {
            return Ok(StoreOutcome::AlreadyStored);
        }
        let metadata = self
            .metadata_for(blob_id)?
            .ok_or(NodeError::MetadataNotFound(*blob_id))?;
        sliver
            .verify(axis, &view.config, &metadata)
            .map_err(|e| NodeError::InvalidSliver(e.to_string()))?;
        if registered {
            if !self.store.has_metadata(blob_id)? {
                self.store.put_metadata(blob_id, &metadata)?;
            }
            let bytes = sliver.symbols.len() as u64;
            self.store.put_sliver(shard, axis, blob_id, &sliver)?;
            bump(&self.counters.slivers_stored, 1);
            bump(&self.counters.sliver_bytes_stored, bytes);
            return Ok(StoreOutcome::Created);
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put_sliver(blob_id, shard, axis, sliver)
            .map_err(|_| NodeError::CacheSaturated)?;
        Ok(StoreOutcome::Buffered)
    }

    pub fn put_sliver(
        &self,
        blob_id: &BlobId,
        pair: u16,
        axis: SliverType,
        body: &[u8],
        pending: bool,
    ) -> Result<StoreOutcome, NodeError> {
        let sliver: SliverData = bcs::from_bytes(body)
            .map_err(|e| NodeError::BadBody(format!("not a BCS sliver: {e}")))?;
        self.accept_sliver(&self.view(), blob_id, pair, axis, sliver, pending)
    }

    /// The batched route: every pair this node holds, in one request and one durable write.
    pub fn put_sliver_batch(&self, blob_id: &BlobId, body: &[u8]) -> Result<usize, NodeError> {
        let started = Instant::now();
        let batch: SliverBatch = bcs::from_bytes(body)
            .map_err(|e| NodeError::BadBody(format!("not a BCS sliver batch: {e}")))?;
        if batch.version != 1 {
            return Err(NodeError::BadBody(format!(
                "unsupported sliver batch version {}",
                batch.version
            )));
        }
        let view = self.view();
        if self.registration(blob_id, view.epoch)?.is_none() {
            return Err(NodeError::NotRegistered(*blob_id));
        }
        let metadata = self
            .metadata_for(blob_id)?
            .ok_or(NodeError::MetadataNotFound(*blob_id))?;
        if !self.store.has_metadata(blob_id)? {
            self.store.put_metadata(blob_id, &metadata)?;
        }
        let mut items = Vec::with_capacity(batch.slivers.len());
        for (pair, sliver) in batch.slivers {
            let shard = self.my_shard_for(&view, blob_id, pair.0)?;
            let axis = sliver.axis();
            let data = sliver.into_data();
            if data.index != pair.to_sliver_index(axis, view.n()) {
                return Err(NodeError::SliverIndexMismatch {
                    index: data.index.0,
                    pair: pair.0,
                    axis,
                });
            }
            items.push((shard, axis, *blob_id, data));
        }
        // Verification (expansion and hashing) is the costly part: all cores take part.
        let decoded = started.elapsed();
        let slivers: Vec<_> = items
            .iter()
            .map(|(_, axis, _, data)| (*axis, data))
            .collect();
        floe_core::sliver::verify_slivers(&slivers, &view.config, &metadata)
            .map_err(|e| NodeError::InvalidSliver(e.to_string()))?;
        let verified = started.elapsed();
        let bytes: u64 = items.iter().map(|i| i.3.symbols.len() as u64).sum();
        self.store.put_slivers(&items)?;
        let (decode, verify) = (decoded.as_millis(), (verified - decoded).as_millis());
        let store_ms = (started.elapsed() - verified).as_millis();
        tracing::debug!(%blob_id, bytes, decode, verify, store_ms, "sliver batch stored (ms)");
        bump(&self.counters.slivers_stored, items.len() as u64);
        bump(&self.counters.sliver_bytes_stored, bytes);
        Ok(items.len())
    }

    pub fn get_sliver(
        &self,
        blob_id: &BlobId,
        pair: u16,
        axis: SliverType,
    ) -> Result<SliverData, NodeError> {
        let view = self.view();
        // Shards lost in an epoch change in progress are still served (read-only).
        let shard = self.served_shard_for(&view, blob_id, pair)?;
        if self
            .blob_info(blob_id)?
            .is_some_and(|i| i.invalid_event.is_some())
        {
            return Err(NodeError::InvalidBlob(*blob_id));
        }
        let sliver = self
            .store
            .get_sliver(shard, axis, blob_id)?
            .ok_or(NodeError::SliverNotFound)?;
        bump(&self.counters.slivers_served, 1);
        bump(
            &self.counters.sliver_bytes_served,
            sliver.symbols.len() as u64,
        );
        Ok(sliver)
    }

    pub fn sliver_status(
        &self,
        blob_id: &BlobId,
        pair: u16,
        axis: SliverType,
    ) -> Result<StoredStatus, NodeError> {
        let view = self.view();
        let shard = self.my_shard_for(&view, blob_id, pair)?;
        if self.store.has_sliver(shard, axis, blob_id)? {
            return Ok(StoredStatus::Stored);
        }
        let buffered = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .has_sliver(blob_id, shard, axis);
        Ok(if buffered {
            StoredStatus::Buffered
        } else {
            StoredStatus::Nonexistent
        })
    }

    /// Slivers of this node's shards still missing for `blob_id`.
    pub fn missing_slivers(
        &self,
        view: &CommitteeView,
        blob_id: &BlobId,
    ) -> Result<Vec<(ShardIndex, SliverType)>, NodeError> {
        let mut missing = Vec::new();
        for (shard, _) in view.my_pairs(blob_id) {
            for axis in [SliverType::Primary, SliverType::Secondary] {
                if !self.store.has_sliver(shard, axis, blob_id)? {
                    missing.push((shard, axis));
                }
            }
        }
        Ok(missing)
    }

    /// Whether a background sync of `blob_id` has work: slivers missing here other than those
    /// of shards still awaiting their pull from the previous owner (shard sync brings them and
    /// the metadata), or only the metadata.
    pub(crate) fn needs_sync(
        &self,
        view: &CommitteeView,
        blob_id: &BlobId,
    ) -> Result<bool, NodeError> {
        let missing = self.missing_slivers(view, blob_id)?;
        if missing.is_empty() {
            return Ok(!self.store.has_metadata(blob_id)?);
        }
        let awaiting = self.epoch_sync.awaiting(view.epoch);
        Ok(missing
            .iter()
            .any(|(shard, _)| !awaiting.contains(&shard.0)))
    }

    /// Sign a storage confirmation, only if both slivers of every shard this node owns are stored.
    pub fn confirmation(
        &self,
        blob_id: &BlobId,
        deletable: Option<ObjectId>,
    ) -> Result<SignedMessage, NodeError> {
        let view = self.view();
        let info = self
            .registration(blob_id, view.epoch)?
            .ok_or(NodeError::NotRegistered(*blob_id))?;
        let persistence = match deletable {
            Some(object_id) => {
                if !info.live_deletable(&object_id, view.epoch) {
                    return Err(NodeError::NotLiveDeletable(object_id));
                }
                BlobPersistenceType::Deletable { object_id }
            }
            None => BlobPersistenceType::Permanent,
        };
        let missing = self.missing_slivers(&view, blob_id)?;
        if !missing.is_empty() {
            return Err(NodeError::MissingSlivers {
                missing: missing.len(),
            });
        }
        let message = Confirmation::new(view.epoch, *blob_id, persistence).to_message();
        bump(&self.counters.confirmations_signed, 1);
        Ok(SignedMessage::sign(&self.keys.protocol, &message))
    }

    /// Recovery symbols for sliver (`target_axis`, `target`) from every orthogonal sliver this
    /// node holds, each with its Merkle proof.
    pub fn recovery_symbols_for_target(
        &self,
        blob_id: &BlobId,
        target_axis: SliverType,
        target: u16,
    ) -> Result<Vec<GeneralRecoverySymbol>, NodeError> {
        let view = self.view();
        if target >= view.n() {
            return Err(NodeError::IndexOutOfRange {
                index: target,
                n: view.n(),
            });
        }
        self.check_symbols_servable(blob_id, view.epoch)?;
        let source_axis = target_axis.orthogonal();
        let mut out = Vec::new();
        for (shard, _) in view.my_pairs(blob_id) {
            if let Some(sliver) = self.store.get_sliver(shard, source_axis, blob_id)? {
                let src = SymbolSource::new(&view.config, source_axis, &sliver)
                    .map_err(|e| NodeError::Internal(e.to_string()))?;
                out.extend(src.symbol_for(SliverIndex(target)));
            }
        }
        Ok(out)
    }

    /// Symbols are served for blobs the ledger told us about; never for invalid ones.
    fn check_symbols_servable(&self, blob_id: &BlobId, epoch: u32) -> Result<(), NodeError> {
        if self.registration(blob_id, epoch)?.is_none() && self.blob_info(blob_id)?.is_none() {
            return Err(NodeError::NotRegistered(*blob_id));
        }
        Ok(())
    }

    /// Decoding symbols (without proofs) for each target sliver of `target_axis`: from every
    /// orthogonal sliver this node stores, the symbol at the target's index. These are the
    /// symbols [`Self::recovery_symbols_for_target`] serves, minus the Merkle proofs; the
    /// caller checks what it rebuilds against the metadata.
    pub fn decoding_symbols(
        &self,
        blob_id: &BlobId,
        target_axis: SliverType,
        targets: &[u16],
    ) -> Result<DecodingSymbols, NodeError> {
        if targets.is_empty() {
            return Err(NodeError::NoTargetSlivers);
        }
        if targets.len() > MAX_DECODING_TARGETS {
            return Err(NodeError::TooManyTargets {
                got: targets.len(),
                max: MAX_DECODING_TARGETS,
            });
        }
        let view = self.view();
        let n = view.n();
        if let Some(&bad) = targets.iter().find(|&&t| t >= n) {
            return Err(NodeError::IndexOutOfRange { index: bad, n });
        }
        self.check_symbols_servable(blob_id, view.epoch)?;
        let mut out: DecodingSymbols = targets
            .iter()
            .map(|&t| (SliverIndex(t), Vec::new()))
            .collect();
        let highest = usize::from(*targets.iter().max().expect("not empty"));
        let source_axis = target_axis.orthogonal();
        for (shard, _) in view.my_pairs(blob_id) {
            let Some(sliver) = self.store.get_sliver(shard, source_axis, blob_id)? else {
                continue;
            };
            let sym = usize::from(sliver.symbol_size);
            if sym == 0 || sliver.symbols.len() % sym != 0 {
                return Err(NodeError::Internal(format!(
                    "stored {source_axis} sliver {} of {blob_id} is malformed",
                    sliver.index
                )));
            }
            // A sliver's own symbols are the first positions of its expansion: expand only if
            // a target lies beyond them.
            let expanded;
            let symbols = if highest < sliver.symbols.len() / sym {
                &sliver.symbols
            } else {
                expanded = floe_core::sliver::expand(
                    &view.config,
                    source_axis,
                    sliver.symbol_size,
                    &sliver.symbols,
                )
                .map_err(|e| NodeError::Internal(e.to_string()))?;
                &expanded
            };
            for (target, list) in out.iter_mut() {
                let symbol = DecodingSymbol {
                    index: sliver.index.0,
                    data: symbols[target.as_usize() * sym..][..sym].to_vec(),
                };
                list.push(match target_axis {
                    SliverType::Primary => EitherDecodingSymbol::Primary(symbol),
                    SliverType::Secondary => EitherDecodingSymbol::Secondary(symbol),
                });
            }
        }
        Ok(out)
    }

    /// Symbols by ID `(row, column)`: from secondary sliver `column` (target: primary `row`) or,
    /// failing that, from primary sliver `row` (target: secondary `column`). `proof_axis`, if
    /// given, allows only slivers of that axis as the source (the tree the proof is against).
    ///
    /// Each source sliver is read, expanded and hashed at most once per request, however many
    /// IDs it serves.
    pub fn recovery_symbols_by_id(
        &self,
        blob_id: &BlobId,
        ids: &[(u16, u16)],
        proof_axis: Option<SliverType>,
    ) -> Result<Vec<GeneralRecoverySymbol>, NodeError> {
        let view = self.view();
        let n = view.n();
        self.check_symbols_servable(blob_id, view.epoch)?;
        if let Some(&(row, col)) = ids.iter().find(|&&(r, c)| r >= n || c >= n) {
            return Err(NodeError::IndexOutOfRange {
                index: row.max(col),
                n,
            });
        }
        // Source slivers of this request, looked up once each: `None` if not held here.
        let mut sources: HashMap<(SliverType, SliverIndex), Option<SymbolSource>> = HashMap::new();
        let mut out = Vec::new();
        for &(row, col) in ids {
            let candidates = [
                (SliverType::Secondary, SliverIndex(col), SliverIndex(row)),
                (SliverType::Primary, SliverIndex(row), SliverIndex(col)),
            ];
            for (axis, index, target) in candidates {
                if proof_axis.is_some_and(|p| p != axis) {
                    continue;
                }
                let source = match sources.entry((axis, index)) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(self.symbol_source(&view, blob_id, axis, index)?),
                };
                if let Some(src) = source {
                    out.extend(src.symbol_for(target));
                    break;
                }
            }
        }
        if out.is_empty() {
            return Err(NodeError::SliverNotFound);
        }
        Ok(out)
    }

    /// The expanded and hashed sliver (`axis`, `index`) of `blob_id`, if one of our shards
    /// holds it.
    fn symbol_source(
        &self,
        view: &CommitteeView,
        blob_id: &BlobId,
        axis: SliverType,
        index: SliverIndex,
    ) -> Result<Option<SymbolSource>, NodeError> {
        let shard = view.shard_of(blob_id, index.to_pair_index(axis, view.n()));
        if !view.owns(shard) {
            return Ok(None);
        }
        let Some(sliver) = self.store.get_sliver(shard, axis, blob_id)? else {
            return Ok(None);
        };
        SymbolSource::new(&view.config, axis, &sliver)
            .map(Some)
            .map_err(|e| NodeError::Internal(e.to_string()))
    }

    /// Verify an inconsistency proof and attest that the blob is invalid.
    pub fn attest_inconsistency(
        &self,
        blob_id: &BlobId,
        axis: SliverType,
        body: &[u8],
    ) -> Result<SignedMessage, NodeError> {
        let view = self.view();
        let proof: InconsistencyProof = bcs::from_bytes(body)
            .map_err(|e| NodeError::BadBody(format!("not a BCS inconsistency proof: {e}")))?;
        let metadata = self
            .metadata_for(blob_id)?
            .ok_or(NodeError::MetadataNotFound(*blob_id))?;
        proof
            .verify(axis, &view.config, &metadata)
            .map_err(|e| NodeError::InvalidProof(e.to_string()))?;
        let message = ProtocolMessage::new(view.epoch, InvalidBlobIdBody { blob_id: *blob_id });
        Ok(SignedMessage::sign(&self.keys.protocol, &message))
    }
}
