//! The blob-sync worker: runs the syncs queued by the follower and the maintenance scan
//! (`StorageNode::request_sync`), each after its delay, at most `max_concurrent_syncs` at a
//! time, each retried with backoff up to `MAX_ATTEMPTS` times before it is left to the next
//! maintenance scan. It holds at most `SYNC_TASKS_PER_PERMIT` tasks per permit; further
//! requests wait in the bounded queue. The sync tasks are the worker's: stopping it aborts
//! them.

use std::sync::{Arc, Weak};

use floe_core::BlobId;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::node::StorageNode;
use crate::runner::{Next, StepError, Worker};
use crate::state::SyncRequest;

use crate::limits::{
    SYNC_ATTEMPTS as MAX_ATTEMPTS, SYNC_BACKOFF as BACKOFF, SYNC_TASKS_PER_PERMIT,
};

pub struct BlobSync {
    node: Weak<StorageNode>,
    requests: Option<mpsc::Receiver<SyncRequest>>,
    tasks: JoinSet<()>,
    /// The most tasks held at once; requests beyond wait in the queue.
    max_tasks: usize,
    finished: u64,
}

impl BlobSync {
    pub fn new(node: &Arc<StorageNode>) -> Self {
        Self {
            node: Arc::downgrade(node),
            requests: node.sync_state.take_receiver(),
            tasks: JoinSet::new(),
            max_tasks: node.config.limits.max_concurrent_syncs.max(1) * SYNC_TASKS_PER_PERMIT,
            finished: 0,
        }
    }
}

impl Worker for BlobSync {
    fn name(&self) -> &'static str {
        "blob_sync"
    }

    async fn step(&mut self) -> Result<Next, StepError> {
        let Some(requests) = &mut self.requests else {
            return Ok(Next::Done);
        };
        tokio::select! {
            request = requests.recv(), if self.tasks.len() < self.max_tasks => {
                let (Some(request), Some(node)) = (request, self.node.upgrade()) else {
                    return Ok(Next::Done);
                };
                self.tasks.spawn(sync(node, request));
            }
            Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                self.finished += 1;
                if let Err(e) = joined {
                    tracing::error!(error = %e, "a blob sync task failed");
                }
            }
        }
        Ok(Next::Now)
    }

    fn progress(&self) -> Option<String> {
        let queued = self.requests.as_ref().map_or(0, mpsc::Receiver::len);
        Some(format!(
            "{} syncs running or waiting out their delay, {queued} queued, {} finished",
            self.tasks.len(),
            self.finished
        ))
    }
}

/// Clears the blob's in-progress mark however its sync task ends (finished, aborted or
/// panicked), so a later request can start it again.
struct InProgress(Arc<StorageNode>, BlobId);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.sync_state.finished(&self.1);
    }
}

async fn sync(node: Arc<StorageNode>, request: SyncRequest) {
    let blob_id = request.blob_id;
    let guard = InProgress(node, blob_id);
    let node = &guard.0;
    tokio::time::sleep(request.delay).await;
    let _permit = node.sync_permits.acquire().await;
    let mut backoff = BACKOFF.0;
    for attempt in 1..=MAX_ATTEMPTS {
        match node.sync_blob(blob_id).await {
            Ok(outcome) => {
                tracing::info!(%blob_id, ?outcome, "blob sync finished");
                return;
            }
            Err(e) => {
                tracing::warn!(%blob_id, attempt, error = %e, "blob sync failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        }
    }
}
