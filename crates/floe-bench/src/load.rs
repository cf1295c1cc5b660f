//! `floe load`: a bounded store/read load against a network, journaled one JSON line per
//! operation, and `floe load --verify JOURNAL…`: read back every blob a journal says was
//! certified and count what was lost or read back wrong.
//!
//! Blob contents are pseudo-random bytes derived from a per-blob seed that the journal
//! records, so a verifier regenerates the exact bytes instead of keeping copies. Every
//! operation is bounded by `--op-timeout`, new operations start only until `--duration` has
//! passed, `--stop-file` exists or SIGTERM / Ctrl-C arrives, so a run ends by itself within
//! `duration + op_timeout`.
//!
//! The journal's lines are typed in [`crate::journal`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use floe_client::{BlobStoreResult, Client, Lifetime, NoProgress, ReadOptions, StoreOptions};
use floe_core::BlobId;

use crate::journal::{JOURNAL_VERSION, Line, OpLine};

use crate::units::parse_size;

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Verify instead of loading: read back every blob these journals record as stored, and
    /// fail if one is lost or differs.
    #[arg(long, num_args = 1..)]
    pub verify: Vec<PathBuf>,
    /// Start new operations for this long (e.g. 90s, 5m).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Workers using the client library; each alternates a store and a read of a random blob
    /// stored earlier in this run. In verify mode: blobs verified at once.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Also run this many workers through the daemon at --daemon-url.
    #[arg(long, default_value_t = 1)]
    pub daemon_workers: usize,
    /// A daemon (publisher and aggregator) to store and read through as well.
    #[arg(long)]
    pub daemon_url: Option<String>,
    /// Smallest blob.
    #[arg(long, default_value = "1KiB", value_parser = parse_size)]
    pub min_size: u64,
    /// Largest blob.
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    pub max_size: u64,
    /// Lifetime of stored blobs, in epochs.
    #[arg(long, default_value_t = 5)]
    pub epochs: u32,
    /// Time allowed for one operation (in verify mode: for one attempt).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub op_timeout: Duration,
    /// Pause between two operations of a worker.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    pub pause: Duration,
    /// Append the JSON lines here instead of printing them.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Stop starting operations once this file exists.
    #[arg(long)]
    pub stop_file: Option<PathBuf>,
    /// Seed of the blob contents (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Verify mode: attempts per blob before it counts as lost.
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
    /// Verify mode: wait between attempts.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub retry_delay: Duration,
}

impl LoadArgs {
    /// Verify mode (`--verify JOURNAL…`): reads only, so the client needs no wallet.
    pub fn verifying(&self) -> bool {
        !self.verify.is_empty()
    }

    /// Refuse contradictory flags before anything is set up.
    pub fn check(&self) -> Result<()> {
        if self.min_size == 0 || self.min_size > self.max_size {
            bail!("need 0 < --min-size ≤ --max-size");
        }
        Ok(())
    }
}

/// Run the load (or, with `--verify`, the verification) with `client`, which the caller built
/// from the user's config: with a wallet for a load, without one for a verification.
pub fn run(args: LoadArgs, client: Client) -> Result<()> {
    args.check()?;
    if std::env::var_os("RUST_LOG").is_some() {
        // Client traces (node failures, retries) on stderr, for diagnosing a failed operation.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let verify = args.verifying();
    let journal = Journal::open(args.journal.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if verify {
        rt.block_on(verify_journals(client, &args, journal))
    } else {
        rt.block_on(load(client, &args, journal))
    }
}

/// Where JSON lines go: a file (appended, one write per line) or standard output.
#[derive(Clone)]
struct Journal(Arc<Mutex<Box<dyn Write + Send>>>);

impl Journal {
    fn open(path: Option<&Path>) -> Result<Self> {
        let sink: Box<dyn Write + Send> = match path {
            Some(p) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open the journal {}", p.display()))?,
            ),
            None => Box::new(std::io::stdout()),
        };
        Ok(Self(Arc::new(Mutex::new(sink))))
    }

    fn line(&self, line: &Line) {
        let mut text = serde_json::to_string(line).unwrap_or_default();
        text.push('\n');
        let mut sink = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // A journal that cannot be written is reported once per line on stderr; the load goes on.
        if let Err(e) = sink.write_all(text.as_bytes()).and_then(|_| sink.flush()) {
            eprintln!("warning: cannot write the journal: {e}");
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// SplitMix64: small, fast, and good enough for test contents and choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// The content of a blob: `size` bytes determined by `seed`.
pub fn blob_bytes(seed: u64, size: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(size as usize + 8);
    while (out.len() as u64) < size {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(size as usize);
    out
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        return now_ms() ^ u64::from(std::process::id()) << 32;
    }
    u64::from_le_bytes(b)
}

/// A blob this run stored and saw certified.
#[derive(Clone)]
struct Stored {
    blob_id: BlobId,
    seed: u64,
    size: u64,
}

#[derive(Default)]
struct Counters {
    stores: AtomicU64,
    stores_ok: AtomicU64,
    reads: AtomicU64,
    reads_ok: AtomicU64,
    wrong: AtomicU64,
}

struct Shared {
    client: Client,
    http: reqwest::Client,
    daemon_url: Option<String>,
    journal: Journal,
    stored: Mutex<Vec<Stored>>,
    counters: Counters,
    stop: AtomicBool,
    deadline: Instant,
    stop_file: Option<PathBuf>,
    op_timeout: Duration,
    pause: Duration,
    epochs: u32,
    min_size: u64,
    max_size: u64,
}

impl Shared {
    fn should_stop(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline {
            return true;
        }
        if self.stop_file.as_ref().is_some_and(|p| p.exists()) {
            self.stop.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// Pause of a worker after a failed operation.
const FAILURE_BACKOFF: Duration = Duration::from_millis(250);

/// An operation's outcome: Ok(blob ID, wrong bytes) or Err((kind, message)).
type OpResult = Result<(BlobId, bool), (String, String)>;

async fn load(client: Client, args: &LoadArgs, journal: Journal) -> Result<()> {
    let seed = args.seed.unwrap_or_else(random_seed);
    let http = floe_tls::http_client(
        reqwest::Client::builder()
            .timeout(args.op_timeout)
            .connect_timeout(Duration::from_secs(5)),
    )
    .context("HTTP client")?;
    let shared = Arc::new(Shared {
        client,
        http,
        daemon_url: args
            .daemon_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_string()),
        journal: journal.clone(),
        stored: Mutex::new(Vec::new()),
        counters: Counters::default(),
        stop: AtomicBool::new(false),
        deadline: Instant::now() + args.duration,
        stop_file: args.stop_file.clone(),
        op_timeout: args.op_timeout,
        pause: args.pause,
        epochs: args.epochs,
        min_size: args.min_size,
        max_size: args.max_size,
    });
    let daemon_workers = if shared.daemon_url.is_some() {
        args.daemon_workers
    } else {
        0
    };
    if args.workers + daemon_workers == 0 {
        bail!("no workers: give --workers N (or --daemon-url with --daemon-workers N)");
    }
    journal.line(&Line::Start {
        journal_version: JOURNAL_VERSION,
        ms: now_ms(),
        seed: format!("{seed:016x}"),
        workers: args.workers,
        daemon_workers,
        duration_ms: args.duration.as_millis() as u64,
        op_timeout_ms: args.op_timeout.as_millis() as u64,
    });
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            shared.stop.store(true, Ordering::Relaxed);
        });
    }
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..args.workers + daemon_workers {
        let via_daemon = w >= args.workers;
        let rng = Rng(seed ^ (w as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        tasks.spawn(worker(shared.clone(), w, via_daemon, rng));
    }
    while let Some(r) = tasks.join_next().await {
        r.context("a load worker panicked")?;
    }
    let c = &shared.counters;
    let wrong = c.wrong.load(Ordering::Relaxed);
    journal.line(&Line::Summary {
        ms: now_ms(),
        stores: c.stores.load(Ordering::Relaxed),
        stores_ok: c.stores_ok.load(Ordering::Relaxed),
        reads: c.reads.load(Ordering::Relaxed),
        reads_ok: c.reads_ok.load(Ordering::Relaxed),
        wrong,
    });
    if wrong > 0 {
        bail!("{wrong} reads returned bytes that differ from what was stored");
    }
    Ok(())
}

async fn worker(shared: Arc<Shared>, w: usize, via_daemon: bool, mut rng: Rng) {
    let via = if via_daemon { "daemon" } else { "client" };
    let mut store_next = true;
    let mut ok_last;
    while !shared.should_stop() {
        let pick = {
            let stored = shared.stored.lock().unwrap_or_else(|p| p.into_inner());
            if stored.is_empty() {
                None
            } else {
                Some(stored[rng.below(stored.len() as u64) as usize].clone())
            }
        };
        let start = now_ms();
        match (store_next, pick) {
            (false, Some(blob)) => {
                shared.counters.reads.fetch_add(1, Ordering::Relaxed);
                let r = bounded(shared.op_timeout, read_op(&shared, via_daemon, &blob)).await;
                let (ok, wrong) = match &r {
                    Ok((_, wrong)) => (!wrong, *wrong),
                    Err(_) => (false, false),
                };
                if ok {
                    shared.counters.reads_ok.fetch_add(1, Ordering::Relaxed);
                }
                if wrong {
                    shared.counters.wrong.fetch_add(1, Ordering::Relaxed);
                }
                ok_last = ok;
                shared.journal.line(&Line::Read(op_line(
                    w,
                    via,
                    start,
                    &blob,
                    Some(blob.blob_id),
                    ok,
                    wrong,
                    &r,
                )));
            }
            _ => {
                let size = shared.min_size + rng.below(shared.max_size - shared.min_size + 1);
                let blob_seed = rng.next();
                shared.counters.stores.fetch_add(1, Ordering::Relaxed);
                let r = bounded(
                    shared.op_timeout,
                    store_op(&shared, via_daemon, blob_seed, size),
                )
                .await;
                let blob = Stored {
                    blob_id: r.as_ref().map(|(id, _)| *id).unwrap_or(BlobId([0; 32])),
                    seed: blob_seed,
                    size,
                };
                let ok = r.is_ok();
                ok_last = ok;
                if ok {
                    shared.counters.stores_ok.fetch_add(1, Ordering::Relaxed);
                    shared
                        .stored
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(blob.clone());
                }
                let id = r.as_ref().ok().map(|(id, _)| *id);
                shared.journal.line(&Line::Store(op_line(
                    w, via, start, &blob, id, ok, false, &r,
                )));
            }
        }
        store_next = !store_next;
        if !shared.pause.is_zero() {
            tokio::time::sleep(shared.pause).await;
        }
        if !ok_last {
            // Failures (the ledger down, say) come fast: do not spin on them.
            tokio::time::sleep(FAILURE_BACKOFF).await;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn op_line(
    worker: usize,
    via: &str,
    start: u64,
    blob: &Stored,
    blob_id: Option<BlobId>,
    ok: bool,
    wrong: bool,
    r: &OpResult,
) -> OpLine {
    let (error_kind, error) = match r {
        Ok((_, true)) => (
            Some("WRONG_BYTES".to_string()),
            Some("the bytes read differ from the bytes stored".to_string()),
        ),
        Ok(_) => (None, None),
        Err((k, e)) => (Some(k.clone()), Some(e.clone())),
    };
    OpLine {
        worker,
        via: via.to_string(),
        start_ms: start,
        end_ms: now_ms(),
        ok,
        wrong,
        blob_id: blob_id.map(|b| b.to_string()),
        size: blob.size,
        data_seed: format!("{:016x}", blob.seed),
        error_kind,
        error,
    }
}

async fn bounded(limit: Duration, f: impl std::future::Future<Output = OpResult>) -> OpResult {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err((
            "TIMEOUT".into(),
            format!("no outcome within {} ms", limit.as_millis()),
        )),
    }
}

fn client_err(e: floe_client::ClientError) -> (String, String) {
    (e.kind().to_string(), e.to_string())
}

async fn store_op(shared: &Shared, via_daemon: bool, seed: u64, size: u64) -> OpResult {
    let data = blob_bytes(seed, size);
    if via_daemon {
        return daemon_store(shared, data).await;
    }
    let options = StoreOptions {
        lifetime: Lifetime::Epochs(shared.epochs),
        deletable: true,
        force: false,
    };
    let outcome = shared
        .client
        .store(data, &options, Arc::new(NoProgress))
        .await
        .map_err(client_err)?;
    certified_id(&outcome.result)
}

/// The blob ID of a store result that means "certified", else the failure.
fn certified_id(result: &BlobStoreResult) -> OpResult {
    match result {
        BlobStoreResult::NewlyCreated { .. } | BlobStoreResult::AlreadyCertified { .. } => {
            match result.blob_id() {
                Some(id) => Ok((id, false)),
                None => Err((
                    "NO_BLOB_ID".into(),
                    "the store result has no blob ID".into(),
                )),
            }
        }
        BlobStoreResult::MarkedInvalid { .. } => Err((
            "BLOB_INVALID".into(),
            "the network marked the blob invalid".into(),
        )),
        BlobStoreResult::Error { error_msg, .. } => Err(("STORE_ERROR".into(), error_msg.clone())),
    }
}

async fn read_op(shared: &Shared, via_daemon: bool, blob: &Stored) -> OpResult {
    let bytes = if via_daemon {
        daemon_read(shared, &blob.blob_id).await?
    } else {
        shared
            .client
            .read(&blob.blob_id, ReadOptions::default(), Arc::new(NoProgress))
            .await
            .map_err(client_err)?
    };
    Ok((blob.blob_id, bytes != blob_bytes(blob.seed, blob.size)))
}

fn http_err(e: reqwest::Error) -> (String, String) {
    let kind = if e.is_timeout() {
        "HTTP_TIMEOUT"
    } else if e.is_connect() {
        "HTTP_CONNECT"
    } else {
        "HTTP_ERROR"
    };
    (kind.into(), e.to_string())
}

async fn daemon_status_err(resp: reqwest::Response) -> (String, String) {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    (format!("HTTP_{}", status.as_u16()), body)
}

async fn daemon_store(shared: &Shared, data: Vec<u8>) -> OpResult {
    let base = shared.daemon_url.as_deref().unwrap_or_default();
    let resp = shared
        .http
        .put(format!("{base}/v1/blobs?epochs={}", shared.epochs))
        .body(data)
        .send()
        .await
        .map_err(http_err)?;
    if !resp.status().is_success() {
        return Err(daemon_status_err(resp).await);
    }
    let result: BlobStoreResult = resp
        .json()
        .await
        .map_err(|e| ("BAD_RESPONSE".to_string(), e.to_string()))?;
    certified_id(&result)
}

async fn daemon_read(shared: &Shared, blob_id: &BlobId) -> Result<Vec<u8>, (String, String)> {
    let base = shared.daemon_url.as_deref().unwrap_or_default();
    let resp = shared
        .http
        .get(format!("{base}/v1/blobs/{blob_id}"))
        .send()
        .await
        .map_err(http_err)?;
    if !resp.status().is_success() {
        return Err(daemon_status_err(resp).await);
    }
    Ok(resp.bytes().await.map_err(http_err)?.to_vec())
}

/// Every blob the journals record as stored (certified), once each.
fn certified_in(paths: &[PathBuf]) -> Result<BTreeMap<String, Stored>> {
    let mut out = BTreeMap::new();
    for path in paths {
        for (n, line) in crate::journal::read(path)? {
            let Line::Store(op) = line else {
                continue;
            };
            if !op.ok {
                continue;
            }
            let at = || format!("{}:{n}", path.display());
            let id = op
                .blob_id
                .with_context(|| format!("{}: a certified store without a blobId", at()))?;
            let blob_id: BlobId = id.parse().map_err(|e| anyhow::anyhow!("{}: {e:?}", at()))?;
            let seed = u64::from_str_radix(&op.data_seed, 16)
                .with_context(|| format!("{}: bad dataSeed", at()))?;
            out.insert(
                id,
                Stored {
                    blob_id,
                    seed,
                    size: op.size,
                },
            );
        }
    }
    Ok(out)
}

async fn verify_journals(client: Client, args: &LoadArgs, journal: Journal) -> Result<()> {
    let blobs = certified_in(&args.verify)?;
    let total = blobs.len();
    let (mut lost, mut wrong, mut back) = (0u64, 0u64, 0u64);
    // `--workers` blobs at once; each is retried `--attempts` times before it counts as lost.
    let limit = Arc::new(tokio::sync::Semaphore::new(args.workers.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for blob in blobs.into_values() {
        let permit = limit.clone().acquire_owned().await?;
        let (client, journal) = (client.clone(), journal.clone());
        let (attempts, op_timeout, retry_delay) =
            (args.attempts.max(1), args.op_timeout, args.retry_delay);
        tasks.spawn(async move {
            let _permit = permit;
            let verdict = verify_one(&client, &blob, attempts, op_timeout, retry_delay).await;
            journal.line(&verdict.line);
            (verdict.outcome, verdict.lost)
        });
    }
    while let Some(r) = tasks.join_next().await {
        let (outcome, is_lost) = r.context("a verify task panicked")?;
        lost += u64::from(is_lost);
        wrong += u64::from(outcome == Some(false));
        back += u64::from(outcome == Some(true));
    }
    journal.line(&Line::VerifySummary {
        ms: now_ms(),
        certified: total,
        read_back: back,
        lost,
        wrong,
    });
    if lost > 0 || wrong > 0 {
        bail!("{lost} of {total} certified blobs lost, {wrong} read back wrong");
    }
    Ok(())
}

struct Verdict {
    /// Some(true): read back identical; Some(false): read back different bytes; None: lost.
    outcome: Option<bool>,
    lost: bool,
    line: Line,
}

async fn verify_one(
    client: &Client,
    blob: &Stored,
    attempts_max: u32,
    op_timeout: Duration,
    retry_delay: Duration,
) -> Verdict {
    let mut last_err = None;
    let mut outcome = None;
    let mut attempts = 0;
    while attempts < attempts_max {
        attempts += 1;
        let r = tokio::time::timeout(
            op_timeout,
            client.read(&blob.blob_id, ReadOptions::default(), Arc::new(NoProgress)),
        )
        .await;
        match r {
            Ok(Ok(bytes)) => {
                outcome = Some(bytes == blob_bytes(blob.seed, blob.size));
                break;
            }
            Ok(Err(e)) => last_err = Some((e.kind().to_string(), e.to_string())),
            Err(_) => last_err = Some(("TIMEOUT".to_string(), "attempt timed out".into())),
        }
        if attempts < attempts_max {
            tokio::time::sleep(retry_delay).await;
        }
    }
    let lost = outcome.is_none();
    let (error_kind, error) = match (&last_err, lost) {
        (Some((k, e)), true) => (Some(k.clone()), Some(e.clone())),
        _ => (None, None),
    };
    let line = Line::Verify {
        ms: now_ms(),
        blob_id: blob.blob_id.to_string(),
        size: blob.size,
        attempts,
        ok: outcome == Some(true),
        lost,
        wrong: outcome == Some(false),
        error_kind,
        error,
    };
    Verdict {
        outcome,
        lost,
        line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_are_determined_by_seed_and_size() {
        assert_eq!(blob_bytes(7, 1000), blob_bytes(7, 1000));
        assert_ne!(blob_bytes(7, 1000), blob_bytes(8, 1000));
        assert_eq!(blob_bytes(7, 13).len(), 13);
        assert_eq!(&blob_bytes(7, 1000)[..13], &blob_bytes(7, 13)[..]);
    }

    #[test]
    fn certified_blobs_are_read_from_journals_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let id = BlobId([3; 32]);
        let store = |ok: bool, seed: u64| {
            let r: OpResult = if ok {
                Ok((id, false))
            } else {
                Err(("TIMEOUT".into(), "slow".into()))
            };
            let blob = Stored {
                blob_id: id,
                seed,
                size: 5,
            };
            Line::Store(op_line(
                0,
                "client",
                0,
                &blob,
                ok.then_some(id),
                ok,
                false,
                &r,
            ))
        };
        let lines = [store(true, 255), store(false, 1), store(true, 255)];
        let text: String = lines
            .iter()
            .map(|l| format!("{}\n", serde_json::to_string(l).unwrap()))
            .collect();
        std::fs::write(&path, text).unwrap();
        let blobs = certified_in(&[path]).unwrap();
        assert_eq!(blobs.len(), 1);
        let b = &blobs[&id.to_string()];
        assert_eq!((b.seed, b.size), (255, 5));
    }
}
