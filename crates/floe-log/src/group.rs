//! [`GroupCommitter`]: batches concurrent submissions into single write+fsync calls.
//!
//! A dedicated OS thread owns the [`DurableLog`]. Submissions are pushed onto a bounded queue
//! under a mutex, so the order records land in the log is exactly the order of the
//! [`enqueue`](GroupCommitter::enqueue) calls. While the thread is inside a write+fsync, new
//! submissions accumulate; when it comes back it takes *all* of them as the next batch. One
//! fsync therefore acknowledges as many records as arrived during the previous one.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::sync::{oneshot, watch};

use crate::DurableLog;
use crate::error::LogError;

/// Bounds for the [`GroupCommitter`] queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitterOptions {
    /// Most records pending at once (queued, or in the batch being written). Default 65,536.
    pub max_queued_records: usize,
    /// Most payload bytes pending at once. Default 256 MiB. A single payload larger than this
    /// is refused with [`LogError::PayloadTooLarge`].
    pub max_queued_bytes: usize,
}

impl Default for CommitterOptions {
    fn default() -> Self {
        CommitterOptions {
            max_queued_records: 65_536,
            max_queued_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Receives the outcome of one submission. Created by [`GroupCommitter::enqueue`].
///
/// Resolves to the record's index once it is durable, or to the error that prevented that.
/// Dropping a `Pending` does **not** withdraw the record: it is still written.
#[derive(Debug)]
#[must_use = "the record is written regardless; await this to learn when it is durable"]
pub struct Pending {
    index: u64,
    rx: oneshot::Receiver<Result<u64, LogError>>,
}

impl Pending {
    /// The index the record will have if it becomes durable (known at enqueue time, because
    /// the log order is the enqueue order).
    pub fn index(&self) -> u64 {
        self.index
    }
}

impl Future for Pending {
    type Output = Result<u64, LogError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(LogError::CommitterClosed)))
    }
}

struct Entry {
    payload: Vec<u8>,
    index: u64,
    tx: oneshot::Sender<Result<u64, LogError>>,
}

enum State {
    Open,
    /// Shut down: no new records; queued ones are still written.
    Closed,
    /// An append failed: no new records, nothing more is written.
    Failed(LogError),
}

struct Queue {
    entries: Vec<Entry>,
    /// Records queued or in the batch being written.
    pending_records: usize,
    /// Payload bytes queued or in the batch being written.
    pending_bytes: usize,
    /// Index the next enqueued record will get.
    next_index: u64,
    /// Records before this may be pruned ([`GroupCommitter::prune_before`]).
    prune_to: u64,
    state: State,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when `entries` goes from empty to non-empty, or the state changes.
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue is never left half-updated across a panic, so a poisoned lock is usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Group-commit front end to a [`DurableLog`]: one thread owns the log and turns everything
/// submitted during a write+fsync into the next single write+fsync, in enqueue order.
///
/// Dropping it without [`shutdown`](Self::shutdown) stops intake; records already queued are
/// still written and acknowledged, and the drop waits for the worker thread to finish, so the
/// log (and its file lock) is released when the drop returns.
pub struct GroupCommitter {
    shared: Arc<Shared>,
    watermark: watch::Receiver<u64>,
    log_back: Option<oneshot::Receiver<Box<dyn DurableLog>>>,
    max_payload_len: usize,
    options: CommitterOptions,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitter")
            .field("durable_len", &self.durable_len())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl GroupCommitter {
    /// Start the worker thread, which takes ownership of `log`.
    pub fn spawn(log: Box<dyn DurableLog>, options: CommitterOptions) -> Result<Self, LogError> {
        let len = log.len();
        let max_payload_len = log.max_payload_len().min(options.max_queued_bytes);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                entries: Vec::new(),
                pending_records: 0,
                pending_bytes: 0,
                next_index: len,
                prune_to: 0,
                state: State::Open,
            }),
            wake: Condvar::new(),
        });
        let (wm_tx, wm_rx) = watch::channel(len);
        let (log_tx, log_rx) = oneshot::channel();
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("floe-log-commit".into())
            .spawn(move || run_worker(log, worker_shared, wm_tx, log_tx))
            .map_err(|e| LogError::Spawn {
                source: Arc::new(e),
            })?;
        Ok(GroupCommitter {
            shared,
            watermark: wm_rx,
            log_back: Some(log_rx),
            max_payload_len,
            options,
            worker: Some(worker),
        })
    }

    /// Queue `payload` and return a [`Pending`] that resolves once it is durable.
    ///
    /// Synchronous: the record's place in the log is fixed when this returns, so records land
    /// in the order of `enqueue` calls. Fails immediately with [`LogError::Backpressure`] when
    /// the queue is full, [`LogError::PayloadTooLarge`] for an oversize payload,
    /// [`LogError::CommitterFailed`] after a failed append and [`LogError::CommitterClosed`]
    /// after shutdown.
    pub fn enqueue(&self, payload: Vec<u8>) -> Result<Pending, LogError> {
        let len = payload.len();
        if len > self.max_payload_len {
            return Err(LogError::PayloadTooLarge {
                len,
                max: self.max_payload_len,
            });
        }
        let (tx, rx) = oneshot::channel();
        let mut q = self.shared.lock();
        match &q.state {
            State::Open => {}
            State::Closed => return Err(LogError::CommitterClosed),
            State::Failed(cause) => {
                return Err(LogError::CommitterFailed {
                    cause: Box::new(cause.clone()),
                });
            }
        }
        if q.pending_records >= self.options.max_queued_records
            || q.pending_bytes + len > self.options.max_queued_bytes
        {
            return Err(LogError::Backpressure {
                queued_records: q.pending_records,
                queued_bytes: q.pending_bytes,
            });
        }
        let index = q.next_index;
        q.next_index += 1;
        q.pending_records += 1;
        q.pending_bytes += len;
        q.entries.push(Entry { payload, index, tx });
        let was_empty = q.entries.len() == 1;
        drop(q);
        if was_empty {
            self.shared.wake.notify_one();
        }
        Ok(Pending { index, rx })
    }

    /// [`enqueue`](Self::enqueue) now, and return a future of the durable index.
    ///
    /// Not an `async fn`: the record is queued when `submit` is *called*, not when the
    /// future is first polled, so submission order is call order.
    pub fn submit(
        &self,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<u64, LogError>> + Send + 'static {
        let queued = self.enqueue(payload);
        async move { queued?.await }
    }

    /// A receiver of the durable watermark: the number of records known durable. Record `i`
    /// is durable once the watermark exceeds `i`. It is updated before the records' own
    /// futures resolve, and stops changing (the sender is dropped) when the worker exits.
    pub fn watermark(&self) -> watch::Receiver<u64> {
        self.watermark.clone()
    }

    /// Current value of the durable watermark.
    pub fn durable_len(&self) -> u64 {
        *self.watermark.borrow()
    }

    /// Wait until at least `count` records are durable. Errors if the committer stops first.
    pub async fn wait_durable(&self, count: u64) -> Result<(), LogError> {
        let mut rx = self.watermark.clone();
        if rx.wait_for(|&n| n >= count).await.is_ok() {
            return Ok(());
        }
        Err(self.stopped_error())
    }

    /// Let the worker prune the records before `index` ([`DurableLog::prune_before`]) between
    /// two batches. Lower values than an earlier call's are ignored. A failure to
    /// prune is logged and retried at the next higher call; it does not stop the committer.
    pub fn prune_before(&self, index: u64) {
        self.pruner().prune_before(index);
    }

    /// A handle that asks for pruning ([`prune_before`](Self::prune_before)) from elsewhere,
    /// for example from a task that has just written a snapshot.
    pub fn pruner(&self) -> Pruner {
        Pruner(Arc::clone(&self.shared))
    }

    fn stopped_error(&self) -> LogError {
        match &self.shared.lock().state {
            State::Failed(cause) => LogError::CommitterFailed {
                cause: Box::new(cause.clone()),
            },
            _ => LogError::CommitterClosed,
        }
    }

    /// Stop intake, let the worker write whatever is queued, and get the log back.
    ///
    /// After a failed append the log is returned as it is (a [`FileLog`](crate::FileLog) is
    /// then poisoned). Errors only if the worker thread died (a panic in the log).
    pub fn shutdown(mut self) -> impl Future<Output = Result<Box<dyn DurableLog>, LogError>> {
        let log_back = self.log_back.take();
        // The log comes back through `log_back`; no need to wait for the thread here.
        drop(self.worker.take());
        self.close();
        async move {
            match log_back {
                Some(rx) => rx.await.map_err(|_| LogError::CommitterClosed),
                None => Err(LogError::CommitterClosed),
            }
        }
    }

    fn close(&self) {
        let mut q = self.shared.lock();
        if matches!(q.state, State::Open) {
            q.state = State::Closed;
        }
        drop(q);
        self.shared.wake.notify_one();
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        self.close();
        // The worker writes what is queued, then drops (or hands back) the log; wait for it so
        // the log's lock is free once this returns. A panicked worker has nothing to release.
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Asks a [`GroupCommitter`]'s worker to prune its log; see [`GroupCommitter::prune_before`].
/// Does nothing once the worker has stopped.
#[derive(Clone)]
pub struct Pruner(Arc<Shared>);

impl std::fmt::Debug for Pruner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pruner").finish_non_exhaustive()
    }
}

impl Pruner {
    /// See [`GroupCommitter::prune_before`].
    pub fn prune_before(&self, index: u64) {
        let mut q = self.0.lock();
        if index <= q.prune_to {
            return;
        }
        q.prune_to = index;
        drop(q);
        self.0.wake.notify_one();
    }
}

/// Marks the committer closed and fails anything still queued when the worker exits, even by
/// panicking, so that no enqueue can wait forever on a dead worker.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let mut q = self.0.lock();
        if matches!(q.state, State::Open) {
            q.state = State::Closed;
        }
        let stranded = std::mem::take(&mut q.entries);
        q.pending_records = 0;
        q.pending_bytes = 0;
        drop(q);
        for e in stranded {
            let _ = e.tx.send(Err(LogError::CommitterClosed));
        }
    }
}

/// Prune between batches; a failure is logged and retried at the next request.
fn prune_log(log: &mut dyn DurableLog, index: u64) {
    if let Err(e) = log.prune_before(index) {
        tracing::warn!(error = %e, index, "group commit: pruning the log failed");
    }
}

fn run_worker(
    mut log: Box<dyn DurableLog>,
    shared: Arc<Shared>,
    watermark: watch::Sender<u64>,
    log_back: oneshot::Sender<Box<dyn DurableLog>>,
) {
    let guard = ExitGuard(Arc::clone(&shared));
    let mut pruned_to = 0;
    loop {
        let (batch, prune) = {
            let mut q = shared.lock();
            loop {
                let prune = (q.prune_to > pruned_to).then_some(q.prune_to);
                if !q.entries.is_empty() || prune.is_some() {
                    break (std::mem::take(&mut q.entries), prune);
                }
                if !matches!(q.state, State::Open) {
                    break (Vec::new(), None);
                }
                q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        if let Some(index) = prune {
            pruned_to = index;
        }
        let Some(first_expected) = batch.first().map(|e| e.index) else {
            match prune {
                Some(index) => {
                    prune_log(&mut *log, index);
                    continue;
                }
                None => break,
            }
        };

        let bytes: usize = batch.iter().map(|e| e.payload.len()).sum();
        let payloads: Vec<&[u8]> = batch.iter().map(|e| e.payload.as_slice()).collect();
        let result = log.append_durable(&payloads).and_then(|first| {
            if first == first_expected {
                Ok(first)
            } else {
                Err(LogError::UnexpectedIndex {
                    expected: first_expected,
                    found: first,
                })
            }
        });
        drop(payloads);

        match result {
            Ok(_) => {
                watermark.send_replace(log.len());
                {
                    let mut q = shared.lock();
                    q.pending_records -= batch.len();
                    q.pending_bytes -= bytes;
                }
                for e in batch {
                    let _ = e.tx.send(Ok(e.index));
                }
                // After the batch is acknowledged, so that pruning never delays it.
                if let Some(index) = prune {
                    prune_log(&mut *log, index);
                }
            }
            Err(err) => {
                tracing::error!(
                    error = %err,
                    records = batch.len(),
                    "group commit: append failed; refusing all further submissions"
                );
                let queued = {
                    let mut q = shared.lock();
                    q.state = State::Failed(err.clone());
                    q.pending_records = 0;
                    q.pending_bytes = 0;
                    std::mem::take(&mut q.entries)
                };
                for e in batch {
                    let _ = e.tx.send(Err(err.clone()));
                }
                let never_tried = LogError::CommitterFailed {
                    cause: Box::new(err),
                };
                for e in queued {
                    let _ = e.tx.send(Err(never_tried.clone()));
                }
                break;
            }
        }
    }
    drop(guard);
    drop(watermark);
    let _ = log_back.send(log);
}
