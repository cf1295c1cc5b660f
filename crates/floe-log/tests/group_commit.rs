//! GroupCommitter: ordering, batching, backpressure, watermark, failure handling.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use floe_log::{
    CommitterOptions, DurableLog, FileLog, GroupCommitter, LogError, LogOptions, MemoryLog,
};

/// Wraps a log; each append first waits for a permit on `gate` (when set), records its batch
/// size, and fails when `fail_on_call` says so.
struct TestLog {
    inner: MemoryLog,
    gate: Option<mpsc::Receiver<()>>,
    batch_sizes: Arc<Mutex<Vec<usize>>>,
    calls: Arc<AtomicUsize>,
    fail_on_call: Option<usize>,
}

impl TestLog {
    fn new() -> Self {
        TestLog {
            inner: MemoryLog::with_max_payload_len(1024),
            gate: None,
            batch_sizes: Arc::default(),
            calls: Arc::default(),
            fail_on_call: None,
        }
    }

    fn gated(mut self) -> (Self, mpsc::Sender<()>) {
        let (tx, rx) = mpsc::channel();
        self.gate = Some(rx);
        (self, tx)
    }
}

impl DurableLog for TestLog {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn max_payload_len(&self) -> usize {
        self.inner.max_payload_len()
    }
    fn append_durable(&mut self, payloads: &[&[u8]]) -> Result<u64, LogError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.recv().expect("gate sender dropped");
        }
        self.batch_sizes.lock().unwrap().push(payloads.len());
        if self.fail_on_call == Some(call) {
            return Err(LogError::Io {
                op: "fdatasync",
                path: "test.log".into(),
                source: Arc::new(std::io::Error::other("injected EIO")),
            });
        }
        self.inner.append_durable(payloads)
    }
    fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, LogError> {
        self.inner.read_range(from, to)
    }
}

/// Poll until the worker has entered `append_durable` `n` times.
async fn wait_calls(calls: &AtomicUsize, n: usize) {
    for _ in 0..2000 {
        if calls.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("worker never reached append call {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_get_consecutive_indices_in_enqueue_order() {
    const TASKS: usize = 8;
    const PER_TASK: usize = 250;
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = FileLog::open(dir.path(), LogOptions::default()).unwrap();
    let committer =
        Arc::new(GroupCommitter::spawn(Box::new(log), CommitterOptions::default()).unwrap());
    // Like the ledger: sequence under a lock, await durability outside it.
    let order: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let committer = Arc::clone(&committer);
        let order = Arc::clone(&order);
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..PER_TASK {
                let payload = format!("task {t} record {i}").into_bytes();
                let pending = {
                    let mut order = order.lock().unwrap();
                    let pending = committer.enqueue(payload.clone()).unwrap();
                    assert_eq!(pending.index(), order.len() as u64);
                    order.push(payload.clone());
                    pending
                };
                let predicted = pending.index();
                let index = pending.await.unwrap();
                assert_eq!(index, predicted);
                assert!(committer.durable_len() > index, "watermark lags an ack");
                results.push((index, payload));
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            results
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let order = order.lock().unwrap().clone();
    assert_eq!(all.len(), TASKS * PER_TASK);
    for (i, (index, payload)) in all.iter().enumerate() {
        assert_eq!(*index, i as u64, "indices are distinct and consecutive");
        assert_eq!(payload, &order[i], "index order is enqueue order");
    }
    assert_eq!(committer.durable_len(), (TASKS * PER_TASK) as u64);

    let committer = Arc::into_inner(committer).unwrap();
    let log = committer.shutdown().await.unwrap();
    assert_eq!(log.read_range(0, log.len()).unwrap(), order);
    drop(log);
    let (_, replay) = FileLog::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(replay, order);
}

#[tokio::test]
async fn submissions_during_a_write_are_batched_together() {
    let (log, gate) = TestLog::new().gated();
    let sizes = Arc::clone(&log.batch_sizes);
    let calls = Arc::clone(&log.calls);
    let committer = GroupCommitter::spawn(Box::new(log), CommitterOptions::default()).unwrap();
    let first = committer.enqueue(b"first".to_vec()).unwrap();
    wait_calls(&calls, 1).await; // the worker is now stuck writing "first"
    let rest: Vec<_> = (0..10)
        .map(|i| committer.enqueue(vec![i]).unwrap())
        .collect();
    gate.send(()).unwrap();
    gate.send(()).unwrap();
    assert_eq!(first.await.unwrap(), 0);
    for (i, p) in rest.into_iter().enumerate() {
        assert_eq!(p.await.unwrap(), i as u64 + 1);
    }
    assert_eq!(*sizes.lock().unwrap(), vec![1, 10]);
}

#[tokio::test]
async fn backpressure_when_record_bound_is_hit() {
    let (log, gate) = TestLog::new().gated();
    let calls = Arc::clone(&log.calls);
    let opts = CommitterOptions {
        max_queued_records: 4,
        ..CommitterOptions::default()
    };
    let committer = GroupCommitter::spawn(Box::new(log), opts).unwrap();
    let mut pending = vec![committer.enqueue(vec![0]).unwrap()];
    wait_calls(&calls, 1).await; // in flight records count against the bound too
    for i in 1..4 {
        pending.push(committer.enqueue(vec![i]).unwrap());
    }
    let err = committer.enqueue(vec![9]).unwrap_err();
    assert!(err.is_backpressure(), "{err}");
    assert!(matches!(
        err,
        LogError::Backpressure {
            queued_records: 4,
            queued_bytes: 4
        }
    ));
    // Let both batches through; space frees up and intake resumes.
    gate.send(()).unwrap();
    gate.send(()).unwrap();
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(p.await.unwrap(), i as u64);
    }
    gate.send(()).unwrap();
    assert_eq!(committer.submit(vec![5]).await.unwrap(), 4);
}

#[tokio::test]
async fn backpressure_when_byte_bound_is_hit() {
    let (log, gate) = TestLog::new().gated();
    let opts = CommitterOptions {
        max_queued_bytes: 100,
        ..CommitterOptions::default()
    };
    let committer = GroupCommitter::spawn(Box::new(log), opts).unwrap();
    let a = committer.enqueue(vec![0; 60]).unwrap();
    let b = committer.enqueue(vec![0; 40]).unwrap();
    assert!(committer.enqueue(vec![0; 1]).unwrap_err().is_backpressure());
    // Larger than the whole byte budget: can never fit, so it is "too large", not "later".
    assert!(matches!(
        committer.enqueue(vec![0; 101]).unwrap_err(),
        LogError::PayloadTooLarge { len: 101, max: 100 }
    ));
    gate.send(()).unwrap();
    gate.send(()).unwrap();
    assert_eq!((a.await.unwrap(), b.await.unwrap()), (0, 1));
    gate.send(()).unwrap();
    assert_eq!(committer.submit(vec![0; 100]).await.unwrap(), 2);
}

#[tokio::test]
async fn oversize_payload_refused_at_enqueue_without_stopping_the_committer() {
    let committer =
        GroupCommitter::spawn(Box::new(TestLog::new()), CommitterOptions::default()).unwrap();
    assert!(matches!(
        committer.enqueue(vec![0; 1025]).unwrap_err(),
        LogError::PayloadTooLarge {
            len: 1025,
            max: 1024
        }
    ));
    assert_eq!(committer.submit(vec![0; 1024]).await.unwrap(), 0);
}

#[tokio::test]
async fn watermark_reaches_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = FileLog::open(dir.path(), LogOptions::default()).unwrap();
    log.append_durable(&[b"pre-existing"]).unwrap();
    let committer = GroupCommitter::spawn(Box::new(log), CommitterOptions::default()).unwrap();
    let mut wm = committer.watermark();
    assert_eq!(*wm.borrow(), 1, "starts at the log's length");
    let pending: Vec<_> = (0..100u8)
        .map(|i| committer.enqueue(vec![i]).unwrap())
        .collect();
    let waiter = {
        let mut wm = committer.watermark();
        tokio::spawn(async move { *wm.wait_for(|&n| n >= 101).await.unwrap() })
    };
    assert!(waiter.await.unwrap() >= 101);
    committer.wait_durable(101).await.unwrap();
    assert_eq!(*wm.borrow_and_update(), 101);
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(p.await.unwrap(), i as u64 + 1);
    }
    assert_eq!(committer.durable_len(), 101);
}

#[tokio::test]
async fn failed_append_stops_the_committer() {
    let (mut log, gate) = TestLog::new().gated();
    log.fail_on_call = Some(1);
    let calls = Arc::clone(&log.calls);
    let committer = GroupCommitter::spawn(Box::new(log), CommitterOptions::default()).unwrap();
    gate.send(()).unwrap();
    assert_eq!(committer.submit(b"ok".to_vec()).await.unwrap(), 0);

    let doomed = committer.enqueue(b"doomed".to_vec()).unwrap();
    wait_calls(&calls, 2).await; // worker holds "doomed" in the failing call
    let queued = committer.enqueue(b"queued behind".to_vec()).unwrap();
    gate.send(()).unwrap();

    let err = doomed.await.unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Io {
                op: "fdatasync",
                ..
            }
        ),
        "{err}"
    );
    let err = queued.await.unwrap_err();
    assert!(matches!(err, LogError::CommitterFailed { .. }), "{err}");
    for _ in 0..3 {
        let err = committer.enqueue(b"later".to_vec()).unwrap_err();
        assert!(matches!(err, LogError::CommitterFailed { .. }), "{err}");
        assert!(err.to_string().contains("injected EIO"), "{err}");
    }
    assert_eq!(
        committer.durable_len(),
        1,
        "nothing after the failure is durable"
    );
    assert!(matches!(
        committer.wait_durable(2).await.unwrap_err(),
        LogError::CommitterFailed { .. }
    ));
    let log = committer.shutdown().await.unwrap();
    assert_eq!(log.len(), 1);
}

#[tokio::test]
async fn shutdown_writes_queued_records_then_returns_the_log() {
    let (log, gate) = TestLog::new().gated();
    let calls = Arc::clone(&log.calls);
    let committer = GroupCommitter::spawn(Box::new(log), CommitterOptions::default()).unwrap();
    let a = committer.enqueue(b"a".to_vec()).unwrap();
    wait_calls(&calls, 1).await;
    let b = committer.enqueue(b"b".to_vec()).unwrap();
    let shutdown = committer.shutdown();
    gate.send(()).unwrap();
    gate.send(()).unwrap();
    let log = shutdown.await.unwrap();
    assert_eq!(
        log.read_range(0, 2).unwrap(),
        vec![b"a".to_vec(), b"b".to_vec()]
    );
    assert_eq!((a.await.unwrap(), b.await.unwrap()), (0, 1));
}

#[tokio::test]
async fn dropping_the_committer_still_completes_queued_records() {
    let (log, gate) = TestLog::new().gated();
    let calls = Arc::clone(&log.calls);
    let committer = GroupCommitter::spawn(Box::new(log), CommitterOptions::default()).unwrap();
    let a = committer.enqueue(b"a".to_vec()).unwrap();
    wait_calls(&calls, 1).await;
    let b = committer.enqueue(b"b".to_vec()).unwrap();
    // Dropping waits for the queue to be written (so the log's lock is free afterwards); the
    // gated log is released from another thread while the drop waits.
    let opener = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        gate.send(()).unwrap();
        gate.send(()).unwrap();
    });
    drop(committer);
    opener.join().unwrap();
    assert_eq!((a.await.unwrap(), b.await.unwrap()), (0, 1));
}

#[tokio::test]
async fn submit_before_shutdown_is_written() {
    let committer =
        GroupCommitter::spawn(Box::new(MemoryLog::new()), CommitterOptions::default()).unwrap();
    // `submit` queues at call time, so this lands even though it is awaited after shutdown.
    let submitted = committer.submit(b"x".to_vec());
    let log = committer.shutdown().await.unwrap();
    assert_eq!(submitted.await.unwrap(), 0);
    assert_eq!(log.len(), 1);
}

#[tokio::test]
async fn panicking_log_closes_the_committer() {
    let (log, gate) = TestLog::new().gated();
    let calls = Arc::clone(&log.calls);
    let committer = GroupCommitter::spawn(Box::new(log), CommitterOptions::default()).unwrap();
    let a = committer.enqueue(b"a".to_vec()).unwrap();
    wait_calls(&calls, 1).await;
    let b = committer.enqueue(b"b".to_vec()).unwrap();
    drop(gate); // the gated log panics when its gate is gone
    assert!(matches!(a.await.unwrap_err(), LogError::CommitterClosed));
    assert!(matches!(b.await.unwrap_err(), LogError::CommitterClosed));
    assert!(matches!(
        committer.enqueue(b"c".to_vec()).unwrap_err(),
        LogError::CommitterClosed
    ));
    assert!(matches!(
        committer.wait_durable(1).await.unwrap_err(),
        LogError::CommitterClosed
    ));
    assert!(committer.shutdown().await.is_err());
}
