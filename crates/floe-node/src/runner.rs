//! The runner of the node's background workers.
//!
//! Every piece of background work is a [`Worker`]: a named struct that owns its state and
//! advances by [`Worker::step`]. The [`Runner`] spawns each on its own task, keeps the handle,
//! records what the worker did (for `/v1/health?detailed=true` and `/metrics`), and stops them
//! all within a deadline.
//!
//! Rules for workers:
//! * a step may be cancelled at any `.await` when the runner stops: state that must survive is
//!   written before the await, or rebuilt at the next start;
//! * store writes run on blocking threads (`spawn_blocking`), never on the async workers; a
//!   write in flight when the runner stops finishes on its thread;
//! * a worker holds the node weakly between steps, so dropping the node ends it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a worker wants after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Step again at once.
    Now,
    /// Wait this long (or less, if stopped), then step again.
    After(Duration),
    /// The work is over.
    Done,
}

/// A failed step: logged, counted, and retried after `retry_in`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepError {
    pub message: String,
    pub retry_in: Duration,
}

impl StepError {
    pub fn new(message: impl std::fmt::Display, retry_in: Duration) -> Self {
        Self {
            message: message.to_string(),
            retry_in,
        }
    }
}

/// A piece of the node's background work.
pub trait Worker: Send + 'static {
    /// The worker's name, as reported in health and metrics.
    fn name(&self) -> &'static str;
    /// One unit of work.
    fn step(&mut self) -> impl Future<Output = Result<Next, StepError>> + Send;
    /// What the worker is doing, in a few words (read between steps).
    fn progress(&self) -> Option<String> {
        None
    }
}

/// Where a worker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WorkerState {
    /// In a step.
    Busy,
    /// Between steps, waiting for time or for work.
    Idle,
    /// The last step failed; waiting to retry.
    Retrying,
    /// Finished its work.
    Done,
    /// Stopped by the runner.
    Stopped,
    /// Cut off at the stop deadline, or replaced by a newer worker of its name.
    Aborted,
    /// Its task panicked.
    Panicked,
}

impl WorkerState {
    /// The state's name in metrics labels.
    pub fn label(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::Idle => "idle",
            Self::Retrying => "retrying",
            Self::Done => "done",
            Self::Stopped => "stopped",
            Self::Aborted => "aborted",
            Self::Panicked => "panicked",
        }
    }

    fn is_final(self) -> bool {
        matches!(
            self,
            Self::Done | Self::Stopped | Self::Aborted | Self::Panicked
        )
    }
}

/// What the runner knows of one worker.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStatus {
    pub name: &'static str,
    pub state: WorkerState,
    /// Steps finished, failed ones included.
    pub steps: u64,
    /// Steps that failed.
    pub failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
}

/// How a stop went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Workers that ended by themselves or at the stop signal.
    pub stopped: Vec<&'static str>,
    /// Workers still running at the deadline, aborted.
    pub aborted: Vec<&'static str>,
}

struct Entry {
    record: Arc<Mutex<WorkerStatus>>,
    handle: JoinHandle<()>,
}

/// Spawns workers, keeps their handles and statuses, and stops them.
pub struct Runner {
    stop: watch::Sender<bool>,
    entries: Mutex<Vec<Entry>>,
}

impl Default for Runner {
    fn default() -> Self {
        Self {
            stop: watch::Sender::new(false),
            entries: Mutex::new(Vec::new()),
        }
    }
}

fn set(record: &Mutex<WorkerStatus>, f: impl FnOnce(&mut WorkerStatus)) {
    f(&mut record.lock().unwrap_or_else(|e| e.into_inner()));
}

impl Runner {
    /// Start `worker` on a task of its own (on the current tokio runtime). A worker of the
    /// same name that is still running is aborted: the newer one replaces it. After a stop,
    /// nothing is started.
    pub fn spawn<W: Worker>(&self, worker: W) {
        let name = worker.name();
        let record = Arc::new(Mutex::new(WorkerStatus {
            name,
            state: WorkerState::Idle,
            steps: 0,
            failures: 0,
            last_error: None,
            progress: worker.progress(),
        }));
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if *self.stop.borrow() {
            return;
        }
        if let Some(i) = entries.iter().position(|e| record_name(e) == name) {
            let old = entries.remove(i);
            if !old.handle.is_finished() {
                old.handle.abort();
                set(&old.record, |r| r.state = WorkerState::Aborted);
            }
        }
        let handle = tokio::spawn(run(worker, Arc::clone(&record), self.stop.subscribe()));
        entries.push(Entry { record, handle });
    }

    /// Every worker's status, in the order they were started.
    pub fn statuses(&self) -> Vec<WorkerStatus> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|e| {
                let mut s = e.record.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if e.handle.is_finished() && !s.state.is_final() {
                    s.state = WorkerState::Panicked;
                }
                s
            })
            .collect()
    }

    /// Signal every worker to stop, wait until `deadline` for them to end, then abort those
    /// still running.
    pub async fn stop(&self, deadline: Duration) -> StopReport {
        self.stop.send_replace(true);
        let entries: Vec<Entry> =
            std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()));
        let until = tokio::time::Instant::now() + deadline;
        let mut report = StopReport::default();
        let mut kept = Vec::with_capacity(entries.len());
        for mut entry in entries {
            let name = record_name(&entry);
            match tokio::time::timeout_at(until, &mut entry.handle).await {
                Ok(_) => report.stopped.push(name),
                Err(_) => {
                    entry.handle.abort();
                    set(&entry.record, |r| r.state = WorkerState::Aborted);
                    report.aborted.push(name);
                }
            }
            kept.push(entry);
        }
        // Keep the final statuses readable.
        *self.entries.lock().unwrap_or_else(|e| e.into_inner()) = kept;
        report
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for e in self.entries.get_mut().unwrap_or_else(|p| p.into_inner()) {
            e.handle.abort();
        }
    }
}

/// `set` from the worker's own task: an abort already recorded stays (an abort takes effect
/// only at the task's next `.await`, after a blocking step has returned).
fn keep(record: &Mutex<WorkerStatus>, f: impl FnOnce(&mut WorkerStatus)) {
    set(record, |r| {
        if r.state != WorkerState::Aborted {
            f(r)
        }
    });
}

fn record_name(e: &Entry) -> &'static str {
    e.record.lock().unwrap_or_else(|p| p.into_inner()).name
}

/// A worker's task: step until done or stopped, recording each step.
async fn run<W: Worker>(
    mut worker: W,
    record: Arc<Mutex<WorkerStatus>>,
    mut stop: watch::Receiver<bool>,
) {
    let name = worker.name();
    let mut failing = false;
    loop {
        keep(&record, |r| r.state = WorkerState::Busy);
        let result = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            result = worker.step() => result,
        };
        let progress = worker.progress();
        if failing && result.is_ok() {
            tracing::info!(worker = name, "worker recovered");
            failing = false;
        }
        let pause = match result {
            Ok(Next::Now) => None,
            Ok(Next::After(d)) => Some((d, WorkerState::Idle)),
            Ok(Next::Done) => {
                keep(&record, |r| {
                    r.steps += 1;
                    r.progress = progress;
                    r.state = WorkerState::Done;
                });
                return;
            }
            Err(e) => {
                // Warn when failures start; while they go on, only at debug level.
                if failing {
                    tracing::debug!(worker = name, error = %e.message, retry_in = ?e.retry_in, "worker step failed again");
                } else {
                    tracing::warn!(worker = name, error = %e.message, retry_in = ?e.retry_in, "worker step failed");
                }
                failing = true;
                keep(&record, |r| {
                    r.failures += 1;
                    r.last_error = Some(e.message);
                });
                Some((e.retry_in, WorkerState::Retrying))
            }
        };
        keep(&record, |r| {
            r.steps += 1;
            r.progress = progress;
            r.state = pause.map_or(WorkerState::Busy, |p| p.1);
        });
        match pause {
            Some((d, _)) => tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                () = tokio::time::sleep(d) => {}
            },
            None => tokio::task::yield_now().await,
        }
    }
    keep(&record, |r| r.state = WorkerState::Stopped);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts steps; fails every third; finishes after `limit` steps; hangs forever in the
    /// step after `hang_at` (a worker that ignores stop signals inside its own awaits would
    /// still be cancelled there).
    struct Counter {
        name: &'static str,
        steps: u32,
        limit: u32,
        hang_at: Option<u32>,
    }

    impl Worker for Counter {
        fn name(&self) -> &'static str {
            self.name
        }
        async fn step(&mut self) -> Result<Next, StepError> {
            self.steps += 1;
            if Some(self.steps) == self.hang_at {
                std::future::pending::<()>().await;
            }
            if self.steps.is_multiple_of(3) {
                return Err(StepError::new("third time", Duration::from_millis(10)));
            }
            if self.steps >= self.limit {
                return Ok(Next::Done);
            }
            Ok(Next::After(Duration::from_millis(10)))
        }
        fn progress(&self) -> Option<String> {
            Some(format!("{} steps", self.steps))
        }
    }

    fn counter(name: &'static str, limit: u32, hang_at: Option<u32>) -> Counter {
        Counter {
            name,
            steps: 0,
            limit,
            hang_at,
        }
    }

    async fn settle(runner: &Runner, name: &str, state: WorkerState) -> WorkerStatus {
        for _ in 0..1000 {
            let s = runner.statuses().into_iter().find(|s| s.name == name);
            if let Some(s) = s.filter(|s| s.state == state) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{name} never reached {state:?}: {:?}", runner.statuses());
    }

    #[tokio::test(start_paused = true)]
    async fn steps_failures_and_the_end_are_recorded() {
        let runner = Runner::default();
        runner.spawn(counter("count", 5, None));
        let s = settle(&runner, "count", WorkerState::Done).await;
        assert_eq!((s.steps, s.failures), (5, 1), "{s:?}");
        assert_eq!(s.last_error.as_deref(), Some("third time"));
        assert_eq!(s.progress.as_deref(), Some("5 steps"));
        let report = runner.stop(Duration::from_secs(1)).await;
        assert_eq!(report.stopped, vec!["count"]);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_ends_idle_and_busy_workers_within_the_deadline() {
        let runner = Runner::default();
        runner.spawn(counter("idle", u32::MAX, None));
        runner.spawn(counter("hung", u32::MAX, Some(2)));
        settle(&runner, "hung", WorkerState::Busy).await;
        let started = tokio::time::Instant::now();
        let report = runner.stop(Duration::from_secs(2)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(report.stopped, vec!["idle", "hung"]);
        assert!(report.aborted.is_empty());
        let states: Vec<_> = runner.statuses().iter().map(|s| s.state).collect();
        assert_eq!(states, vec![WorkerState::Stopped, WorkerState::Stopped]);
        // Nothing starts after a stop.
        runner.spawn(counter("late", 1, None));
        assert_eq!(runner.statuses().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_of_the_same_name_replaces_the_running_one() {
        let runner = Runner::default();
        runner.spawn(counter("migration", u32::MAX, Some(1)));
        settle(&runner, "migration", WorkerState::Busy).await;
        runner.spawn(counter("migration", 1, None));
        let s = settle(&runner, "migration", WorkerState::Done).await;
        assert_eq!(s.steps, 1);
        assert_eq!(runner.statuses().len(), 1);
    }

    /// A step that blocks its thread (never reaching an `.await`): the stop signal cannot
    /// cancel it, so the deadline must.
    struct Blocks;
    impl Worker for Blocks {
        fn name(&self) -> &'static str {
            "blocks"
        }
        async fn step(&mut self) -> Result<Next, StepError> {
            std::thread::sleep(Duration::from_millis(800));
            Ok(Next::Now)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_still_busy_at_the_deadline_is_aborted() {
        let runner = Runner::default();
        runner.spawn(Blocks);
        settle(&runner, "blocks", WorkerState::Busy).await;
        let started = std::time::Instant::now();
        let report = runner.stop(Duration::from_millis(100)).await;
        assert!(
            started.elapsed() < Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(report.aborted, vec!["blocks"]);
        assert!(report.stopped.is_empty());
        assert_eq!(runner.statuses()[0].state, WorkerState::Aborted);
        // Once the blocking step returns, the task ends at its next await; it stays aborted.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(runner.statuses()[0].state, WorkerState::Aborted);
    }

    struct Panics;
    impl Worker for Panics {
        fn name(&self) -> &'static str {
            "panics"
        }
        #[allow(clippy::panic)]
        async fn step(&mut self) -> Result<Next, StepError> {
            panic!("a bug in a worker")
        }
    }

    #[tokio::test]
    async fn a_panicked_worker_is_reported_as_such() {
        let runner = Runner::default();
        runner.spawn(Panics);
        settle(&runner, "panics", WorkerState::Panicked).await;
    }
}
