//! The challenger worker: polls the ledger every `challenge_poll_ms` and runs the storage
//! challenges this node owes ([`StorageNode::challenge_round`]); after a failed round (a ledger
//! without challenges, or unreachable) it backs off, doubling up to a minute.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::node::StorageNode;
use crate::runner::{Next, StepError, Worker};

use crate::limits::CHALLENGER_MAX_BACKOFF as MAX_BACKOFF;

pub struct Challenger {
    node: Weak<StorageNode>,
    poll: Duration,
    wait: Duration,
    /// The first round waits one poll period.
    waited: bool,
}

impl Challenger {
    pub fn new(node: &Arc<StorageNode>) -> Self {
        let poll = Duration::from_millis(node.config.limits.challenge_poll_ms.max(100));
        Self {
            node: Arc::downgrade(node),
            poll,
            wait: poll,
            waited: false,
        }
    }
}

impl Worker for Challenger {
    fn name(&self) -> &'static str {
        "challenger"
    }

    async fn step(&mut self) -> Result<Next, StepError> {
        if !std::mem::replace(&mut self.waited, true) {
            return Ok(Next::After(self.poll));
        }
        let Some(node) = self.node.upgrade() else {
            return Ok(Next::Done);
        };
        match node.challenge_round().await {
            Ok(()) => {
                self.wait = self.poll;
                Ok(Next::After(self.poll))
            }
            Err(e) => {
                self.wait = (self.wait * 2).min(MAX_BACKOFF.max(self.poll));
                Err(StepError::new(
                    format!("storage challenge round: {e}"),
                    self.wait,
                ))
            }
        }
    }
}
