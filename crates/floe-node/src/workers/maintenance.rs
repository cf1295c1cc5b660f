//! The maintenance worker: every period, one pass over every blob that queues syncs of
//! certified blobs missing data here and deletes the data of blobs expired, deleted or
//! invalid; it also drops buffered uploads whose registration never came. The follower runs a
//! pass at each epoch change too.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::blocking;
use crate::error::NodeError;
use crate::node::StorageNode;
use crate::runner::{Next, StepError, Worker};

pub struct Maintenance {
    node: Weak<StorageNode>,
    every: Duration,
    /// The first pass waits one period (the follower's first pages come first).
    waited: bool,
    passes: u64,
    synced: u64,
    collected: u64,
}

impl Maintenance {
    pub fn new(node: &Arc<StorageNode>, every: Duration) -> Self {
        Self {
            node: Arc::downgrade(node),
            every,
            waited: false,
            passes: 0,
            synced: 0,
            collected: 0,
        }
    }
}

impl Worker for Maintenance {
    fn name(&self) -> &'static str {
        "maintenance"
    }

    async fn step(&mut self) -> Result<Next, StepError> {
        if !std::mem::replace(&mut self.waited, true) {
            return Ok(Next::After(self.every));
        }
        let Some(node) = self.node.upgrade() else {
            return Ok(Next::Done);
        };
        let (s, c) = blocking(&node, pass)
            .await
            .map_err(|e| StepError::new(format!("maintenance pass: {e}"), self.every))?;
        if s + c > 0 {
            tracing::info!(syncs = s, collected = c, "maintenance pass");
        }
        self.passes += 1;
        self.synced += s as u64;
        self.collected += c as u64;
        Ok(Next::After(self.every))
    }

    fn progress(&self) -> Option<String> {
        Some(format!(
            "{} passes: {} syncs queued, {} blobs collected",
            self.passes, self.synced, self.collected
        ))
    }
}

/// One pass over every blob: sync certified blobs with missing data; delete the data of
/// blobs that are expired, deleted or invalid. Returns (syncs started, blobs collected).
pub fn pass(node: &Arc<StorageNode>) -> Result<(usize, usize), NodeError> {
    let view = node.view();
    let dropped = node
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .expire(std::time::Instant::now());
    if dropped > 0 {
        tracing::info!(
            blobs = dropped,
            "dropped buffered uploads whose registration never came"
        );
    }
    let (mut synced, mut collected) = (0, 0);
    node.for_each_blob_info(|blob_id, info| {
        if info.can_delete_data(view.epoch) {
            let held = 2 * view.my_shards.len();
            if node.store.has_metadata(blob_id)?
                || node.missing_slivers(&view, blob_id)?.len() < held
            {
                node.store.delete_blob_data(blob_id)?;
                collected += 1;
            }
        } else if info.is_certified_live(view.epoch) && node.needs_sync(&view, blob_id)? {
            node.request_sync(*blob_id, Duration::ZERO);
            synced += 1;
        }
        Ok(())
    })?;
    Ok((synced, collected))
}
