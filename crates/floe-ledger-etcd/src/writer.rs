//! [`Writer`]: idempotent appends with a position hint, for any number of concurrent writers.

use crate::log::{Appended, EtcdLog, EtcdLogError, MAX_BATCH};
use crate::record::Chain;

/// Most sequence numbers a writer steps over (records other writers took) in one call before
/// it gives up; the caller then moves its hint to its follower's position and retries.
pub const MAX_STEPS: usize = 256;

/// Appends records, guessing the next free sequence number from its own last write or from a
/// follower's position, and stepping past records other writers took.
///
/// Idempotent: when a write's outcome is unknown (a timeout, a lost answer) the caller retries
/// the same payloads; the retry finds its own records taken and reports where they landed
/// instead of writing them twice.
#[derive(Debug)]
pub struct Writer {
    log: EtcdLog,
    hint: Chain,
}

/// Why a writer call failed; payloads listed in `done` did land.
#[derive(Debug, thiserror::Error)]
#[error("{error} (after {} of the batch landed)", done.len())]
pub struct WriteError {
    pub done: Vec<u64>,
    #[source]
    pub error: EtcdLogError,
}

impl Writer {
    /// A writer whose first attempt goes to `hint`.
    pub fn new(log: EtcdLog, hint: Chain) -> Self {
        Writer { log, hint }
    }

    /// Move the hint forward to `chain` if that is further (never backwards).
    pub fn advance_to(&mut self, chain: Chain) {
        if chain.next_seq > self.hint.next_seq {
            self.hint = chain;
        }
    }

    /// The current hint.
    pub fn hint(&self) -> Chain {
        self.hint
    }

    /// Append `payloads` (at most [`MAX_BATCH`]) as consecutive-or-not records; returns the
    /// sequence number each landed at, in order.
    pub async fn append(&mut self, payloads: &[Vec<u8>]) -> Result<Vec<u64>, WriteError> {
        assert!(payloads.len() <= MAX_BATCH);
        let mut done = Vec::with_capacity(payloads.len());
        let mut steps = 0;
        while done.len() < payloads.len() {
            let rest = &payloads[done.len()..];
            let outcome = self
                .log
                .append(self.hint.next_seq, self.hint.head, rest)
                .await;
            match outcome {
                Ok(Appended::Written { first, head }) => {
                    done.extend(first..first + rest.len() as u64);
                    self.hint = Chain::new(first + rest.len() as u64, head);
                }
                Ok(Appended::Taken { existing }) => {
                    if existing.payload == rest[0] {
                        // Ours, from an attempt whose answer was lost.
                        done.push(existing.seq);
                    }
                    self.hint = Chain::new(existing.seq + 1, existing.hash());
                }
                Err(EtcdLogError::Pruned { .. } | EtcdLogError::Raced) => {
                    // The hint fell into a pruned prefix (this writer's replica is behind a
                    // compaction): go to the log's end. Where a record lands does not depend
                    // on the writer's own state; its replica answers once it has applied it.
                    self.hint = self.end().await.map_err(|error| WriteError {
                        done: done.clone(),
                        error,
                    })?;
                }
                Err(error) => return Err(WriteError { done, error }),
            }
            steps += 1;
            if steps > MAX_STEPS {
                return Err(WriteError {
                    done,
                    error: EtcdLogError::Contended(MAX_STEPS),
                });
            }
        }
        Ok(done)
    }

    /// The position after the log's last record (the writer's hint when the log is empty).
    async fn end(&self) -> Result<Chain, EtcdLogError> {
        let Some((_, end)) = self.log.bounds().await? else {
            return Ok(self.hint);
        };
        match self.log.get(end - 1).await? {
            Some(last) => Ok(Chain::new(end, last.hash())),
            None => Ok(self.hint), // pruned or extended meanwhile: the next attempt sees
        }
    }
}
