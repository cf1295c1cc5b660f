//! Load shedding: at most `running` requests of a kind run at once, at most `waiting` more wait
//! for a slot, and the rest are refused at once (429) instead of queueing without bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bounds on one kind of request (reads or writes).
#[derive(Debug)]
pub struct Limiter {
    running: usize,
    admitted: usize,
    /// Permits for requests running or waiting.
    admit: Arc<Semaphore>,
    /// Permits for running requests.
    run: Arc<Semaphore>,
}

/// The longest a read waits for a slot before it is answered 503.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Why a request got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The waiting room is full.
    Full,
    /// No slot came free within this time.
    Waited(Duration),
}

/// A running request's place; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    _admitted: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
}

impl Limiter {
    pub fn new(running: usize, waiting: usize) -> Self {
        let admitted = running.saturating_add(waiting);
        Self {
            running,
            admitted,
            admit: Arc::new(Semaphore::new(admitted)),
            run: Arc::new(Semaphore::new(running)),
        }
    }

    /// A slot, after waiting for one if all are taken; `None` when the waiting room is full.
    pub async fn enter(&self) -> Option<Slot> {
        self.enter_within(Duration::MAX).await.ok()
    }

    /// A slot, after waiting at most `wait` for one; refused at once when the waiting room is
    /// full, and after `wait` when no slot came free.
    pub async fn enter_within(&self, wait: Duration) -> Result<Slot, Refused> {
        let admitted = self
            .admit
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Full)?;
        let running = match tokio::time::timeout(wait, self.run.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(Refused::Full),
            Err(_) => return Err(Refused::Waited(wait)),
        };
        Ok(Slot {
            _admitted: admitted,
            _running: running,
        })
    }

    /// Requests running now.
    pub fn running(&self) -> usize {
        self.running - self.run.available_permits()
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        (self.admitted - self.admit.available_permits()).saturating_sub(self.running())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_beyond_the_running_and_waiting_bounds_are_refused() {
        let limiter = Arc::new(Limiter::new(1, 1));
        let first = limiter.enter().await.unwrap();
        assert_eq!((limiter.running(), limiter.waiting()), (1, 0));
        // The second waits for the first to finish …
        let l = limiter.clone();
        let second = tokio::spawn(async move { l.enter().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!((limiter.running(), limiter.waiting()), (1, 1));
        // … and the third finds the waiting room full.
        assert!(limiter.enter().await.is_none());
        drop(first);
        assert!(second.await.unwrap().is_some());
        assert_eq!((limiter.running(), limiter.waiting()), (0, 0));
        // With no waiting room, a busy limiter refuses at once.
        let strict = Limiter::new(1, 0);
        let _held = strict.enter().await.unwrap();
        assert!(strict.enter().await.is_none());
    }

    #[tokio::test]
    async fn a_request_waits_for_a_slot_at_most_its_bound() {
        let limiter = Limiter::new(1, 4);
        let _held = limiter.enter().await.unwrap();
        let started = std::time::Instant::now();
        let wait = Duration::from_millis(100);
        assert_eq!(
            limiter.enter_within(wait).await.err(),
            Some(Refused::Waited(wait))
        );
        assert!(started.elapsed() >= wait);
        // The refused request left the waiting room.
        assert_eq!(limiter.waiting(), 0);
    }
}
