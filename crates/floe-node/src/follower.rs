//! Following the ledger: events from the persisted cursor update each blob's info; the new
//! infos and the cursor are stored in one atomic write, then the side effects run (flush
//! buffered uploads of newly registered blobs, delete data of invalid or fully deleted blobs,
//! refresh the committee at epoch events).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use floe_core::{BlobId, ObjectId};
use floe_ledger::api_types::EventsPage;
use floe_ledger::{Event, EventKind};
use floe_node_storage::{BlobInfo, ObjectInfo};

use crate::node::{NodeError, StorageNode};
use crate::view::CommitteeView;

/// Events fetched per page.
const PAGE: usize = 500;
/// Long-poll wait per request.
const WAIT: Duration = Duration::from_secs(5);

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

impl StorageNode {
    /// The drift check's digest at an epoch change (logged; a failure only costs the digest).
    async fn digest_blob_table(self: &Arc<Self>, epoch: floe_core::Epoch, position: u64) {
        let node = Arc::clone(self);
        match tokio::task::spawn_blocking(move || node.record_blob_table_digest(epoch, position))
            .await
        {
            Ok(Ok(d)) => tracing::info!(epoch, position, digest = %d.digest, "blob table digest"),
            Ok(Err(e)) => tracing::warn!(error = %e, "blob table digest failed"),
            Err(e) => tracing::warn!(error = %e, "blob table digest task panicked"),
        }
    }
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

impl StorageNode {
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

    /// Fetch and process one page of events; returns how many were processed.
    pub async fn follow_once(self: &Arc<Self>) -> Result<usize, NodeError> {
        let cursor = self.store.event_cursor()?;
        let page = self
            .ledger
            .events(cursor, PAGE, WAIT)
            .await
            .map_err(|e| NodeError::Internal(format!("ledger: {e}")))?;
        self.process_events(cursor, page).await
    }

    /// Apply a page of events fetched from `cursor`.
    async fn process_events(
        self: &Arc<Self>,
        cursor: u64,
        page: EventsPage,
    ) -> Result<usize, NodeError> {
        if self.view_stale.load(Ordering::Acquire) {
            self.refresh_view().await?;
            self.view_stale.store(false, Ordering::Release);
            self.on_committee_change();
        }
        if page.events.is_empty() || self.store.event_cursor()? != cursor {
            return Ok(0);
        }
        let (page, epoch_started) = stop_after_epoch_start(page);
        let mut infos: BTreeMap<BlobId, BlobInfo> = BTreeMap::new();
        let mut epoch_changed = false;
        for event in &page.events {
            match event.kind.blob_id() {
                Some(blob_id) => {
                    let info = match infos.entry(blob_id) {
                        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::btree_map::Entry::Vacant(e) => {
                            e.insert(self.store.get_blob_info(&blob_id)?.unwrap_or_default())
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
        self.store.apply_events(&updates, page.next_cursor)?;
        self.events_persisted
            .store(page.next_cursor, Ordering::Relaxed);
        if let Some(epoch) = epoch_started {
            self.digest_blob_table(epoch, page.next_cursor).await;
        }
        // The events are persisted: from here on, a failure must not skip the side effects of
        // the rest of the page, which would never be replayed.
        if epoch_changed {
            self.view_stale.store(true, Ordering::Release);
            match self.refresh_view().await {
                Ok(()) => {
                    self.view_stale.store(false, Ordering::Release);
                    self.on_committee_change();
                }
                Err(e) => tracing::warn!(error = %e, "reloading the committee failed; retrying"),
            }
        }
        let view = self.view();
        let delay = Duration::from_millis(self.config.limits.sync_delay_ms);
        for (blob_id, info) in &updates {
            if let Err(e) = self.after_update(&view, blob_id, info, delay) {
                tracing::warn!(%blob_id, error = %e, "acting on a ledger event failed");
            }
        }
        // Buffered uploads of new registrations are flushed: wake the confirmation long polls.
        self.events_applied.send_replace(page.next_cursor);
        if epoch_changed {
            // Registrations expire at epoch boundaries: collect their data now rather than at
            // the next periodic scan (and start syncs for shards gained).
            let node = Arc::clone(self);
            match tokio::task::spawn_blocking(move || node.maintenance_pass()).await {
                Ok(Ok((synced, collected))) => {
                    tracing::info!(synced, collected, "maintenance at the epoch change")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "maintenance at the epoch change failed"),
                Err(e) => tracing::warn!(error = %e, "maintenance task panicked"),
            }
        }
        Ok(page.events.len())
    }

    /// The side effects of a blob's new info: delete the data of a dead blob; flush buffered
    /// uploads of a registered one; start the sync of a certified one that is incomplete here.
    fn after_update(
        self: &Arc<Self>,
        view: &CommitteeView,
        blob_id: &BlobId,
        info: &BlobInfo,
        delay: Duration,
    ) -> Result<(), NodeError> {
        if info.can_delete_data(view.epoch) {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(blob_id);
            self.store.delete_blob_data(blob_id)?;
        } else if info.is_registered_live(view.epoch) {
            self.flush_pending(blob_id)?;
            // Certified but incomplete here: recover what is missing from the peers.
            if info.is_certified_live(view.epoch) && self.needs_sync(view, blob_id)? {
                self.spawn_sync(*blob_id, delay);
            }
        }
        Ok(())
    }

    /// Move buffered uploads of a newly registered blob into the store.
    fn flush_pending(&self, blob_id: &BlobId) -> Result<(), NodeError> {
        let Some(buffered) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(blob_id)
        else {
            return Ok(());
        };
        if let Some(m) = &buffered.metadata
            && !self.store.has_metadata(blob_id)?
        {
            self.store.put_metadata(blob_id, m)?;
        }
        let items: Vec<_> = buffered
            .slivers
            .into_iter()
            .map(|(s, a, d)| (s, a, *blob_id, d))
            .collect();
        if !items.is_empty() {
            self.store.put_slivers(&items)?;
        }
        Ok(())
    }

    /// Reload the committee from the ledger and create keyspaces for newly owned shards.
    pub async fn refresh_view(&self) -> Result<(), NodeError> {
        let system = self
            .ledger
            .system()
            .await
            .map_err(|e| NodeError::Internal(format!("ledger: {e}")))?;
        let view =
            CommitteeView::from_system(&system, self.public_key()).map_err(NodeError::Internal)?;
        let existing = self.store.shards()?;
        for &s in &view.my_shards {
            if !existing.contains(&floe_core::ShardIndex(s)) {
                self.store.create_shard(floe_core::ShardIndex(s))?;
            }
        }
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = view;
        Ok(())
    }

    /// Follow the ledger until the node is dropped, with bounded backoff on errors. The task
    /// holds the node only while processing a page, never across a long poll, so dropping the
    /// node (and closing its store) is not delayed by the follower.
    pub fn spawn_follower(self: &Arc<Self>) {
        // A restarted node may be in the middle of an epoch change.
        self.on_committee_change();
        self.spawn_challenger();
        let weak = Arc::downgrade(self);
        let ledger = self.ledger.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let cursor = match weak.upgrade() {
                    Some(node) => node.store.event_cursor(),
                    None => return,
                };
                let result = match cursor {
                    Ok(cursor) => match ledger.events(cursor, PAGE, WAIT).await {
                        Ok(page) => match weak.upgrade() {
                            Some(node) => node.process_events(cursor, page).await,
                            None => return,
                        },
                        Err(e) => Err(NodeError::Internal(format!("ledger: {e}"))),
                    },
                    Err(e) => Err(e.into()),
                };
                match result {
                    Ok(_) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        tracing::warn!(error = %e, "following the ledger failed; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        });
    }
}
