//! State the workers share with request handling: what the epoch-change worker reports, the
//! blob-sync queue, and the challenger's counters. Plain data behind locks and atomics; the
//! workers that write it live in the `workers` module.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use floe_core::{BlobId, Epoch};
use floe_ledger::api_types::MemberInfo;
use floe_ledger::challenge::ChallengeSummary;
use tokio::sync::{Notify, mpsc};

use crate::plan::EpochPlan;

pub use crate::limits::SYNC_QUEUE;

/// Where a node's migration into an epoch stands (for the health report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPhase {
    NotStarted,
    /// Gained shards are being pulled or recovered.
    Running,
    /// Every gained shard was pulled or recovered and the sync was reported.
    Finished,
}

/// Figures of the node's migrations so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrationStats {
    pub slivers_migrated: u64,
    pub bytes_migrated: u64,
    pub blobs_recovered: u64,
    pub last_epoch: Option<Epoch>,
    pub last_duration_ms: Option<u64>,
}

/// What the epoch-change worker publishes.
#[derive(Default)]
pub struct EpochSyncState {
    /// Epochs whose migration was started.
    started: Mutex<HashSet<Epoch>>,
    /// Slivers and bytes received by shard sync.
    pub slivers_migrated: AtomicU64,
    pub bytes_migrated: AtomicU64,
    /// Blob syncs that rebuilt at least one sliver by RedStuff recovery: the fallback of a
    /// migration or a background sync (at an epoch change the two race for the shards of a
    /// previous owner that is down, so a blob may count twice).
    pub blobs_recovered: AtomicU64,
    /// The last finished migration: (epoch, milliseconds until `EpochSyncDone` was accepted).
    last: Mutex<Option<(Epoch, u64)>>,
    /// Shards gained in the change into the epoch given whose pull from the previous owner
    /// has neither finished nor failed. Background blob syncs leave their slivers to shard
    /// sync instead of rebuilding them from n peers at the same time.
    awaiting: Mutex<(Epoch, HashSet<u16>)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EpochSyncState {
    /// Whether the migration into `epoch` was started.
    pub fn started(&self, epoch: Epoch) -> bool {
        lock(&self.started).contains(&epoch)
    }

    /// Mark the migration into `epoch` started, awaiting the pulls of `gained`.
    pub fn start(&self, epoch: Epoch, gained: HashSet<u16>) {
        lock(&self.started).insert(epoch);
        *lock(&self.awaiting) = (epoch, gained);
    }

    /// Shards of `epoch` still awaiting their pull from the previous owner.
    pub fn awaiting(&self, epoch: Epoch) -> HashSet<u16> {
        let awaiting = lock(&self.awaiting);
        if awaiting.0 == epoch {
            awaiting.1.clone()
        } else {
            HashSet::new()
        }
    }

    /// A gained shard was pulled whole, or its previous owner was given up on.
    pub fn settle(&self, shard: u16) {
        lock(&self.awaiting).1.remove(&shard);
    }

    /// The migration into `epoch` ended: its sync was reported after `ms` milliseconds.
    pub fn finish(&self, epoch: Epoch, ms: u64) {
        *lock(&self.last) = Some((epoch, ms));
    }

    /// Where the migration into `epoch` stands.
    pub fn phase(&self, epoch: Epoch) -> MigrationPhase {
        let finished = lock(&self.last).is_some_and(|(e, _)| e == epoch);
        match (self.started(epoch), finished) {
            (_, true) => MigrationPhase::Finished,
            (true, false) => MigrationPhase::Running,
            (false, false) => MigrationPhase::NotStarted,
        }
    }

    pub fn stats(&self) -> MigrationStats {
        let last = *lock(&self.last);
        MigrationStats {
            slivers_migrated: self.slivers_migrated.load(Ordering::Relaxed),
            bytes_migrated: self.bytes_migrated.load(Ordering::Relaxed),
            blobs_recovered: self.blobs_recovered.load(Ordering::Relaxed),
            last_epoch: last.map(|l| l.0),
            last_duration_ms: last.map(|l| l.1),
        }
    }
}

/// A blob sync asked for: start it after `delay` (so that a client's upload in flight can
/// land first).
#[derive(Clone, Copy, Debug)]
pub struct SyncRequest {
    pub blob_id: BlobId,
    pub delay: Duration,
}

/// The blob-sync queue and the set of blobs queued or syncing (one sync per blob at a time).
pub struct SyncState {
    in_progress: Mutex<HashSet<BlobId>>,
    queue: mpsc::Sender<SyncRequest>,
    /// The receiving end, until the blob-sync worker takes it.
    receiver: Mutex<Option<mpsc::Receiver<SyncRequest>>>,
}

impl Default for SyncState {
    fn default() -> Self {
        let (queue, receiver) = mpsc::channel(SYNC_QUEUE);
        Self {
            in_progress: Mutex::new(HashSet::new()),
            queue,
            receiver: Mutex::new(Some(receiver)),
        }
    }
}

impl SyncState {
    /// Queue a sync of `blob_id` unless one is queued or running. False if it was not queued.
    pub fn request(&self, blob_id: BlobId, delay: Duration) -> bool {
        if !lock(&self.in_progress).insert(blob_id) {
            return false;
        }
        match self.queue.try_send(SyncRequest { blob_id, delay }) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(%blob_id, error = %e, "sync queue full; the maintenance scan retries");
                lock(&self.in_progress).remove(&blob_id);
                false
            }
        }
    }

    /// The sync of `blob_id` ended (done, given up, or cancelled).
    pub fn finished(&self, blob_id: &BlobId) {
        lock(&self.in_progress).remove(blob_id);
    }

    /// Whether a sync of `blob_id` is queued or running.
    pub fn contains(&self, blob_id: &BlobId) -> bool {
        lock(&self.in_progress).contains(blob_id)
    }

    /// Syncs queued or running.
    pub fn len(&self) -> usize {
        lock(&self.in_progress).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The queue's receiving end, once: for the blob-sync worker.
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<SyncRequest>> {
        lock(&self.receiver).take()
    }
}

/// The follower's plans for the epoch-change worker. Holds one plan: a newer one replaces the
/// older one's drops (each plan's drops are computed from the whole current state) and keeps
/// its migration unless it brings one of its own.
#[derive(Default)]
pub struct PlanBox {
    plan: Mutex<Option<EpochPlan<MemberInfo>>>,
    posted: Notify,
}

impl PlanBox {
    pub fn post(&self, plan: EpochPlan<MemberInfo>) {
        let mut slot = lock(&self.plan);
        let migration = match slot.take() {
            Some(old) => plan.migration.or(old.migration),
            None => plan.migration,
        };
        *slot = Some(EpochPlan {
            drop: plan.drop,
            migration,
        });
        drop(slot);
        self.posted.notify_one();
    }

    /// The plan posted, if any.
    pub fn take(&self) -> Option<EpochPlan<MemberInfo>> {
        lock(&self.plan).take()
    }

    /// Wait until a plan is posted, and take it.
    pub async fn next(&self) -> EpochPlan<MemberInfo> {
        loop {
            if let Some(plan) = self.take() {
                return plan;
            }
            self.posted.notified().await;
        }
    }
}

/// What the challenger did and what the ledger last said.
#[derive(Default)]
pub struct ChallengeState {
    /// The ledger's tallies, as of the last poll.
    pub summary: Mutex<Option<ChallengeSummary>>,
    /// Challenges this node issued, and what they showed.
    pub issued: AtomicU64,
    pub passed: AtomicU64,
    pub failed: AtomicU64,
    pub no_answer: AtomicU64,
    /// Reports the ledger accepted.
    pub reports: AtomicU64,
}

impl ChallengeState {
    pub fn summary(&self) -> Option<ChallengeSummary> {
        lock(&self.summary).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_queued_once_until_its_sync_ends() {
        let s = SyncState::default();
        let id = BlobId([7; 32]);
        assert!(s.request(id, Duration::ZERO));
        assert!(!s.request(id, Duration::ZERO), "already queued");
        assert!(s.contains(&id));
        let mut rx = s.take_receiver().expect("first take");
        assert!(s.take_receiver().is_none(), "taken once");
        assert_eq!(rx.try_recv().map(|r| r.blob_id).ok(), Some(id));
        s.finished(&id);
        assert!(!s.contains(&id));
        assert!(s.request(id, Duration::ZERO));
    }

    #[test]
    fn a_full_queue_drops_the_request_and_forgets_the_blob() {
        let s = SyncState::default();
        for i in 0..SYNC_QUEUE {
            let mut id = [0; 32];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            assert!(s.request(BlobId(id), Duration::ZERO));
        }
        let extra = BlobId([0xff; 32]);
        assert!(!s.request(extra, Duration::ZERO));
        assert!(
            !s.contains(&extra),
            "a dropped request is not counted as in progress"
        );
        assert_eq!(s.len(), SYNC_QUEUE);
    }

    #[test]
    fn the_migration_phase_follows_start_and_finish() {
        let s = EpochSyncState::default();
        assert_eq!(s.phase(3), MigrationPhase::NotStarted);
        s.start(3, HashSet::from([1, 2]));
        assert_eq!(s.phase(3), MigrationPhase::Running);
        s.settle(1);
        assert_eq!(s.awaiting(3), HashSet::from([2]));
        assert!(s.awaiting(4).is_empty());
        s.finish(3, 120);
        assert_eq!(s.phase(3), MigrationPhase::Finished);
        assert_eq!(s.stats().last_duration_ms, Some(120));
    }
}
