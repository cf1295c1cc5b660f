//! Rough throughput numbers for this machine's disk. Ignored by default; run with
//! `cargo test -p floe-log --test throughput -- --ignored --nocapture --test-threads=1`.
//! Set `FLOE_LOG_BENCH_DIR` to measure a particular filesystem (default: the temp dir).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use floe_log::{CommitterOptions, DurableLog, FileLog, GroupCommitter, LogError, LogOptions};

const PAYLOAD_LEN: usize = 128;
const RUN_FOR: Duration = Duration::from_secs(3);

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("FLOE_LOG_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

/// Counts append calls so the average batch size can be reported.
struct Counting {
    inner: FileLog,
    calls: Arc<AtomicU64>,
}

impl DurableLog for Counting {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn max_payload_len(&self) -> usize {
        self.inner.max_payload_len()
    }
    fn append_durable(&mut self, payloads: &[&[u8]]) -> Result<u64, LogError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.append_durable(payloads)
    }
    fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, LogError> {
        self.inner.read_range(from, to)
    }
}

#[test]
#[ignore = "measurement, not a check"]
fn single_record_append_durable_rate() {
    let dir = bench_dir();
    let (mut log, _) = FileLog::open(dir.path(), LogOptions::default()).unwrap();
    let payload = vec![0xabu8; PAYLOAD_LEN];
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < RUN_FOR {
        let t = Instant::now();
        log.append_durable(&[&payload]).unwrap();
        latencies.push(t.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "single-record append_durable ({PAYLOAD_LEN} B) in {}: {:.0} appends/s over {} appends; \
         latency p50 {:?}, p99 {:?}, max {:?}",
        dir.path().display(),
        latencies.len() as f64 / secs,
        latencies.len(),
        pct(0.5),
        pct(0.99),
        latencies.last().unwrap()
    );
}

async fn group_commit_rate(submitters: usize) {
    let dir = bench_dir();
    let (log, _) = FileLog::open(dir.path(), LogOptions::default()).unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let log = Counting {
        inner: log,
        calls: Arc::clone(&calls),
    };
    let committer =
        Arc::new(GroupCommitter::spawn(Box::new(log), CommitterOptions::default()).unwrap());
    let start = Instant::now();
    let deadline = start + RUN_FOR;
    let mut tasks = Vec::new();
    for _ in 0..submitters {
        let committer = Arc::clone(&committer);
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                committer.submit(vec![0xcd; PAYLOAD_LEN]).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut records = 0;
    for t in tasks {
        records += t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let batches = calls.load(Ordering::Relaxed);
    println!(
        "group commit, {submitters} submitters ({PAYLOAD_LEN} B): {:.0} records/s, \
         {:.0} write+fsync/s, {:.1} records per batch ({records} records)",
        records as f64 / secs,
        batches as f64 / secs,
        records as f64 / batches as f64,
    );
    let committer = Arc::into_inner(committer).unwrap();
    let log = committer.shutdown().await.unwrap();
    assert_eq!(log.len(), records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn group_commit_rate_1_submitter() {
    group_commit_rate(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn group_commit_rate_64_submitters() {
    group_commit_rate(64).await;
}
