//! The node's background work, one [`Worker`](crate::runner::Worker) each, run by the node's
//! [`Runner`](crate::runner::Runner):
//!
//! | worker | what it does | state it owns |
//! |---|---|---|
//! | `follower` | follows the ledger's events from the persisted cursor; reloads the committee and plans the node's side of an epoch change | backoff |
//! | `epoch_change` | applies each [`EpochPlan`](crate::plan::EpochPlan): drops lost shards, pulls gained ones, recovers, reports the sync | the running migration (cursors, peers given up on) |
//! | `blob_sync` | runs the blob syncs queued by the follower and the maintenance scan | the sync tasks |
//! | `maintenance` | periodically retries incomplete syncs and collects dead data | the period |
//! | `challenger` | runs the storage challenges this node owes each epoch | backoff |
//!
//! Request handling never waits for a worker; workers talk to each other only through the
//! node's shared state ([`crate::state`]): the sync queue and the plan mailbox.

pub mod blob_sync;
pub mod challenger;
pub mod epoch_change;
pub mod follower;
pub mod maintenance;

use std::sync::Arc;
use std::time::Duration;

use crate::error::NodeError;
use crate::node::StorageNode;

/// Which workers to start.
#[derive(Clone, Copy, Debug)]
pub struct WorkerOptions {
    /// The maintenance scan's period; `None` runs none (syncs then start only from events).
    pub maintenance_every: Option<Duration>,
}

impl WorkerOptions {
    /// Every worker, maintenance at the node's configured interval.
    pub fn from_config(node: &StorageNode) -> Self {
        Self {
            maintenance_every: Some(Duration::from_secs(
                node.config.limits.maintenance_interval_secs.max(1),
            )),
        }
    }
}

/// Start the node's workers. Call once, on a tokio runtime; stop them with
/// `node.workers().stop(deadline)` (the API server does when it shuts down).
pub fn start(node: &Arc<StorageNode>, options: WorkerOptions) {
    let runner = node.workers();
    runner.spawn(follower::Follower::new(node));
    runner.spawn(epoch_change::EpochChange::new(node));
    runner.spawn(blob_sync::BlobSync::new(node));
    runner.spawn(challenger::Challenger::new(node));
    if let Some(every) = options.maintenance_every {
        runner.spawn(maintenance::Maintenance::new(node, every));
    }
}

/// Run `f` on a blocking thread: store writes (and long store scans) stay off the async
/// workers.
pub(crate) async fn blocking<T: Send + 'static>(
    node: &Arc<StorageNode>,
    f: impl FnOnce(&Arc<StorageNode>) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    let node = Arc::clone(node);
    tokio::task::spawn_blocking(move || f(&node))
        .await
        .map_err(|e| NodeError::Internal(format!("blocking task failed: {e}")))?
}
