//! The follower worker: follows the ledger from the persisted cursor. Each page of events
//! updates the blobs' infos, stored with the new cursor in one atomic write; then the side
//! effects run (flush buffered uploads of newly registered blobs, delete data of invalid or
//! fully deleted blobs, queue syncs of certified blobs incomplete here). At an epoch event the
//! committee is reloaded and the node's side of the change is planned ([`crate::plan`]) and
//! posted to the epoch-change worker.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use floe_core::BlobId;
use floe_ledger::api_types::EventsPage;
use floe_ledger::{Event, EventKind};
use floe_ledger_client::LedgerClient;
use floe_node_storage::{BlobInfo, ObjectInfo};

use super::blocking;
use crate::drift::{BlobTableDigest, TableHasher};
use crate::error::NodeError;
use crate::node::StorageNode;
use crate::runner::{Next, StepError, Worker};
use crate::view::CommitteeView;

use crate::limits::{EVENT_PAGE as PAGE, EVENT_WAIT as WAIT, FOLLOWER_BACKOFF as BACKOFF};

/// Follows the ledger until the node is dropped, with bounded backoff on errors. It holds the
/// node only while processing a page, never across a long poll, so dropping the node (and
/// closing its store) is not delayed by it.
pub struct Follower {
    node: Weak<StorageNode>,
    ledger: LedgerClient,
    backoff: Duration,
    /// Where the plan for the committee the node started with stands (a restarted node may
    /// be in the middle of an epoch change).
    start_plan: StartPlan,
    pages: u64,
    events: u64,
}

/// The plan for the committee a node starts with is posted once every event the ledger had
/// when the follower started is persisted here: a migration keeps only slivers of blobs this
/// node knows, so planning earlier would drop what it pulled of blobs the follower had not
/// reached yet, and leave them to recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StartPlan {
    /// The ledger's event count is not known yet.
    Ask,
    /// Post the plan once the event cursor reaches this count.
    At(u64),
    Posted,
}

impl Follower {
    pub fn new(node: &Arc<StorageNode>) -> Self {
        Self {
            node: Arc::downgrade(node),
            ledger: node.ledger.clone(),
            backoff: BACKOFF.0,
            start_plan: StartPlan::Ask,
            pages: 0,
            events: 0,
        }
    }

    fn failed(&mut self, e: impl std::fmt::Display) -> StepError {
        let error = StepError::new(e, self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF.1);
        error
    }
}

impl Worker for Follower {
    fn name(&self) -> &'static str {
        "follower"
    }

    async fn step(&mut self) -> Result<Next, StepError> {
        if self.start_plan == StartPlan::Ask {
            let head = match self.ledger.health().await {
                Ok(h) => h.events,
                Err(e) => return Err(self.failed(format!("ledger: {e}"))),
            };
            self.start_plan = StartPlan::At(head);
        }
        let cursor = match self.node.upgrade() {
            Some(node) => {
                let cursor = node.store.event_cursor().map_err(|e| self.failed(e))?;
                if let StartPlan::At(head) = self.start_plan
                    && cursor >= head
                {
                    super::epoch_change::post_plan(&node)
                        .await
                        .map_err(|e| self.failed(e))?;
                    self.start_plan = StartPlan::Posted;
                }
                cursor
            }
            None => return Ok(Next::Done),
        };
        let page = match self.ledger.events(cursor, PAGE, WAIT).await {
            Ok(page) => page,
            Err(e) => return Err(self.failed(format!("ledger: {e}"))),
        };
        let Some(node) = self.node.upgrade() else {
            return Ok(Next::Done);
        };
        let n = process_events(&node, cursor, page)
            .await
            .map_err(|e| self.failed(e))?;
        self.backoff = BACKOFF.0;
        self.pages += 1;
        self.events += n as u64;
        Ok(Next::Now)
    }

    fn progress(&self) -> Option<String> {
        Some(format!("{} events in {} pages", self.events, self.pages))
    }
}

/// Fold one event into `info`.
pub fn apply_event(info: &mut BlobInfo, event: &Event) {
    match &event.kind {
        EventKind::BlobRegistered {
            object_id,
            end_epoch,
            deletable,
            ..
        } => {
            info.objects.insert(
                *object_id,
                ObjectInfo {
                    end_epoch: *end_epoch,
                    deletable: *deletable,
                    certified_epoch: None,
                    deleted: false,
                    registered_event: event.index,
                    certified_event: None,
                    registered_tx: event.tx_digest,
                    certified_tx: None,
                },
            );
        }
        EventKind::BlobCertified {
            object_id,
            end_epoch,
            ..
        } => {
            if let Some(o) = info.objects.get_mut(object_id) {
                o.certified_epoch.get_or_insert(event.epoch);
                o.end_epoch = *end_epoch;
                o.certified_event = Some(event.index);
                o.certified_tx = Some(event.tx_digest);
            }
        }
        EventKind::BlobDeleted { object_id, .. } => {
            if let Some(o) = info.objects.get_mut(object_id) {
                o.deleted = true;
            }
        }
        EventKind::InvalidBlobId { .. } => {
            info.invalid_event = Some(event.index);
            info.invalid_tx = Some(event.tx_digest);
        }
        _ => {}
    }
}

/// Apply a page of events fetched from `cursor`.
async fn process_events(
    node: &Arc<StorageNode>,
    cursor: u64,
    page: EventsPage,
) -> Result<usize, NodeError> {
    if node.view_stale.load(Ordering::Acquire) {
        refresh_view(node).await?;
        node.view_stale.store(false, Ordering::Release);
        super::epoch_change::post_plan(node).await?;
    }
    if page.events.is_empty() {
        return Ok(0);
    }
    let (page, epoch_started) = stop_after_epoch_start(page);
    let next_cursor = page.next_cursor;
    let count = page.events.len();
    let delay = Duration::from_millis(node.config.limits.sync_delay_ms);
    let Some((updates, epoch_changed)) = blocking(node, move |node| {
        let persisted = persist_page(node, cursor, &page)?;
        // Without an epoch event, act on the page in the same call: a reader that sees a new
        // registration finds its buffered upload flushed (as near at once as the store allows).
        if let Some((updates, false)) = &persisted {
            act_on_updates(node, updates, delay);
        }
        Ok(persisted)
    })
    .await?
    else {
        return Ok(0);
    };
    node.events_persisted.store(next_cursor, Ordering::Relaxed);
    if let Some(epoch) = epoch_started {
        digest_blob_table(node, epoch, next_cursor).await;
    }
    // The events are persisted: from here on, a failure must not skip the side effects of
    // the rest of the page, which would never be replayed.
    if epoch_changed {
        reload_committee(node).await;
    }
    if epoch_changed {
        // After the committee reload: the side effects use the new epoch's view.
        blocking(node, move |node| {
            act_on_updates(node, &updates, delay);
            Ok(())
        })
        .await?;
    }
    // Buffered uploads of new registrations are flushed: wake the confirmation long polls.
    node.events_applied.send_replace(next_cursor);
    if epoch_changed {
        // Registrations expire at epoch boundaries: collect their data now rather than at
        // the next periodic scan (and start syncs for shards gained).
        match blocking(node, super::maintenance::pass).await {
            Ok((synced, collected)) => {
                tracing::info!(synced, collected, "maintenance at the epoch change")
            }
            Err(e) => tracing::warn!(error = %e, "maintenance at the epoch change failed"),
        }
    }
    Ok(count)
}

/// After an epoch event: reload the committee and plan the change. A failure leaves the view
/// marked stale, so the next page retries (the event itself is not seen again).
async fn reload_committee(node: &Arc<StorageNode>) {
    node.view_stale.store(true, Ordering::Release);
    match refresh_view(node).await {
        Ok(()) => {
            node.view_stale.store(false, Ordering::Release);
            if let Err(e) = super::epoch_change::post_plan(node).await {
                tracing::warn!(error = %e, "planning the epoch change failed; retrying");
                node.view_stale.store(true, Ordering::Release);
            }
        }
        Err(e) => tracing::warn!(error = %e, "reloading the committee failed; retrying"),
    }
}

/// The side effects of a persisted page's blob infos (each failure logged: the page is not
/// replayed).
fn act_on_updates(node: &Arc<StorageNode>, updates: &[(BlobId, BlobInfo)], delay: Duration) {
    let view = node.view();
    for (blob_id, info) in updates {
        if let Err(e) = after_update(node, &view, blob_id, info, delay) {
            tracing::warn!(%blob_id, error = %e, "acting on a ledger event failed");
        }
    }
}

/// Fold a page into the blob infos and store them with the new cursor (one atomic write).
/// `None` if the cursor moved meanwhile; else the updated infos, and whether an epoch event
/// was among the events.
#[allow(clippy::type_complexity)]
fn persist_page(
    node: &StorageNode,
    cursor: u64,
    page: &EventsPage,
) -> Result<Option<(Vec<(BlobId, BlobInfo)>, bool)>, NodeError> {
    if node.store.event_cursor()? != cursor {
        return Ok(None);
    }
    let mut infos: BTreeMap<BlobId, BlobInfo> = BTreeMap::new();
    let mut epoch_changed = false;
    for event in &page.events {
        match event.kind.blob_id() {
            Some(blob_id) => {
                let info = match infos.entry(blob_id) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(node.store.get_blob_info(&blob_id)?.unwrap_or_default())
                    }
                };
                apply_event(info, event);
            }
            None => {
                epoch_changed |= matches!(
                    event.kind,
                    EventKind::EpochChangeStart { .. } | EventKind::EpochChangeDone { .. }
                )
            }
        }
    }
    let updates: Vec<(BlobId, BlobInfo)> = infos.into_iter().collect();
    // Buffered uploads of new registrations go to the store before the registrations do, so
    // a reader that sees a registration finds its metadata and slivers stored. (A crash in
    // between replays the page: the data is stored already, the infos are written then.)
    let epoch = node.view().epoch;
    for (blob_id, info) in &updates {
        if info.is_registered_live(epoch) && !info.can_delete_data(epoch) {
            flush_pending(node, blob_id)?;
        }
    }
    node.store.apply_events(&updates, page.next_cursor)?;
    Ok(Some((updates, epoch_changed)))
}

/// The side effects of a blob's new info: delete the data of a dead blob; flush buffered
/// uploads of a registered one; start the sync of a certified one that is incomplete here.
fn after_update(
    node: &Arc<StorageNode>,
    view: &CommitteeView,
    blob_id: &BlobId,
    info: &BlobInfo,
    delay: Duration,
) -> Result<(), NodeError> {
    if info.can_delete_data(view.epoch) {
        node.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(blob_id);
        node.store.delete_blob_data(blob_id)?;
    } else if info.is_registered_live(view.epoch) {
        flush_pending(node, blob_id)?;
        // Certified but incomplete here: recover what is missing from the peers.
        if info.is_certified_live(view.epoch) && node.needs_sync(view, blob_id)? {
            node.request_sync(*blob_id, delay);
        }
    }
    Ok(())
}

/// Move buffered uploads of a newly registered blob into the store.
fn flush_pending(node: &StorageNode, blob_id: &BlobId) -> Result<(), NodeError> {
    let Some(buffered) = node
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take(blob_id)
    else {
        return Ok(());
    };
    if let Some(m) = &buffered.metadata
        && !node.store.has_metadata(blob_id)?
    {
        node.store.put_metadata(blob_id, m)?;
    }
    let items: Vec<_> = buffered
        .slivers
        .into_iter()
        .map(|(s, a, d)| (s, a, *blob_id, d))
        .collect();
    if !items.is_empty() {
        node.store.put_slivers(&items)?;
    }
    Ok(())
}

/// Reload the committee from the ledger and create keyspaces for newly owned shards.
pub async fn refresh_view(node: &Arc<StorageNode>) -> Result<(), NodeError> {
    let system = node
        .ledger
        .system()
        .await
        .map_err(|e| NodeError::Internal(format!("ledger: {e}")))?;
    let view =
        CommitteeView::from_system(&system, node.public_key()).map_err(NodeError::Internal)?;
    let view = blocking(node, move |node| {
        let existing = node.store.shards()?;
        for &s in &view.my_shards {
            if !existing.contains(&floe_core::ShardIndex(s)) {
                node.store.create_shard(floe_core::ShardIndex(s))?;
            }
        }
        Ok(view)
    })
    .await?;
    *node.view.write().unwrap_or_else(|e| e.into_inner()) = view;
    Ok(())
}

/// The drift check's digest at an epoch change (logged; a failure only costs the digest).
async fn digest_blob_table(node: &Arc<StorageNode>, epoch: floe_core::Epoch, position: u64) {
    match blocking(node, move |node| {
        record_blob_table_digest(node, epoch, position)
    })
    .await
    {
        Ok(d) => tracing::info!(epoch, position, digest = %d.digest, "blob table digest"),
        Err(e) => tracing::warn!(error = %e, "blob table digest failed"),
    }
}

/// Digest the blob table for `epoch` as it stands after `event_position` events, and keep
/// it for the health route.
fn record_blob_table_digest(
    node: &StorageNode,
    epoch: floe_core::Epoch,
    event_position: u64,
) -> Result<BlobTableDigest, NodeError> {
    let mut hasher = TableHasher::new(epoch);
    node.for_each_blob_info(|blob_id, info| {
        hasher.add(blob_id, info);
        Ok(())
    })?;
    let digest = hasher.finish(event_position);
    *node
        .blob_table_digest
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(digest.clone());
    Ok(digest)
}

/// A page cut right after its first `EpochChangeStart` event (the drift check digests the blob
/// table at exactly that position on every node), with the epoch that event starts.
fn stop_after_epoch_start(mut page: EventsPage) -> (EventsPage, Option<floe_core::Epoch>) {
    let start = page
        .events
        .iter()
        .position(|e| matches!(e.kind, EventKind::EpochChangeStart { .. }));
    let Some(k) = start else {
        return (page, None);
    };
    let EventKind::EpochChangeStart { epoch } = page.events[k].kind else {
        return (page, None);
    };
    page.events.truncate(k + 1);
    page.next_cursor = page.events[k].index + 1;
    (page, Some(epoch))
}
