//! `floe bench e2e`: the data plane as a new user meets it. A network of separate processes
//! started from the `floe` binary (one `floe ledger run`, N `floe node run`, one
//! `floe daemon`, on loopback ports, laid out by `Testbed::init`), driven only through the
//! daemon's HTTP API.
//!
//! In order:
//! 1. **Sizes.** For each size, `runs` PUTs of fresh seeded random data, each followed by a GET
//!    whose bytes must equal what was PUT: p50 / p99 latency and MiB/s (size / p50). For the
//!    largest size, the CPU time of every process from just before each PUT until 1 s after
//!    its answer (so the work it leaves behind counts), averaged per PUT. After the first and
//!    the last run of each size, the daemon's RSS once idle: whether requests give back what
//!    they took.
//! 2. **Readers.** `--readers` GETs of one stored 1 MiB blob at once, then `--small-readers`
//!    GETs of as many distinct 1 KiB blobs at once (stored beforehand, 8 PUTs at a time):
//!    successes, failures by HTTP status, latency, wall time.
//! 3. **Silent nodes** (unless `--no-faults`): see [`faults`].
//! 4. **Fill** (`--fill`): memory against data stored, see [`fill`].
//! 5. Peak (`VmHWM`) and current (`VmRSS`) memory of every process.
//!
//! Every HTTP request of the benchmark is bounded by `--timeout`, every wait by a deadline; the
//! processes are killed at the end, on errors and on panics ([`cluster::Cluster`] is a guard).

mod cluster;
mod faults;
mod fill;
mod http;
mod report;
mod sizes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use floe_core::EncodingConfig;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::units::parse_size;
use cluster::{Cluster, Layout};
use faults::{Baseline, LargeRead, Scenario, Stored};
use http::Daemon;
pub use report::Report;
use report::{DaemonMemoryRow, ProcRow, ms};
use sizes::{Sizes, cpu_row, idle_daemon_rss, sizes_phase};

/// Size of the blob the readers and the silent-node scenarios use.
const MIB_BLOB: usize = 1 << 20;
/// Size of each small reader's blob.
const SMALL_BLOB: usize = 1 << 10;
/// PUTs at once while the small readers' blobs are stored.
const SMALL_STORE_CONCURRENCY: usize = 8;
/// Sizes from here on get fewer runs by default.
const LARGE: u64 = 32 << 20;
/// After each PUT of the largest size, CPU keeps being counted this long.
const CPU_SETTLE: Duration = Duration::from_secs(1);
/// How long the run waits with no request before it samples the daemon's idle RSS: twice the
/// daemon's wait before it returns free memory (`floe_daemon::memory::IDLE_BEFORE_RELEASE`).
const DAEMON_IDLE_WAIT: Duration = Duration::from_secs(1);

#[derive(Args, Clone, Debug)]
pub struct E2eBench {
    /// Storage node processes [default: 10; 4 with --quick].
    #[arg(long)]
    nodes: Option<usize>,
    /// Shards [default: 1000; 40 with --quick].
    #[arg(long)]
    n_shards: Option<u16>,
    /// Blob sizes to PUT and GET [default: 1KiB,1MiB,64MiB; 1KiB,1MiB with --quick].
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    sizes: Option<Vec<u64>>,
    /// PUT + GET runs per size [default: 5, and 3 for sizes of 32 MiB and more].
    #[arg(long)]
    repeat: Option<usize>,
    /// Concurrent GETs of one stored 1 MiB blob (0: skip) [default: 200; 50 with --quick].
    #[arg(long)]
    readers: Option<usize>,
    /// Concurrent GETs of distinct 1 KiB blobs stored beforehand (0: skip) [default: 1000; 100
    /// with --quick].
    #[arg(long)]
    small_readers: Option<usize>,
    /// Skip the silent-node scenarios (nodes paused with SIGSTOP).
    #[arg(long)]
    no_faults: bool,
    /// Time allowed for every HTTP request of the benchmark; in the silent-node scenarios, for a
    /// definite answer.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Seed of the blob contents and of the network's keys [default: random, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// The floe binary to run the processes from [default: this one].
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Lay the network out here (absent or empty) and keep it, with every process's log in
    /// logs/ [default: a temporary directory, removed at the end unless the run fails].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Small figures for CI (4 nodes, 40 shards, sizes 1KiB,1MiB, 50 readers, 100 small
    /// readers, faults included); explicit flags still win.
    #[arg(long)]
    quick: bool,
    /// Then store this much more (e.g. 2GiB), one blob of `--fill-blob` at a time, sampling
    /// every node's RSS after each PUT: memory against data stored [default: none; 384MiB with
    /// --quick].
    #[arg(long, value_parser = parse_size)]
    fill: Option<u64>,
    /// Blob size of the fill [default: 64MiB; 8MiB with --quick].
    #[arg(long, value_parser = parse_size)]
    fill_blob: Option<u64>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Nodes serve plain HTTP (by default HTTPS with their network keys, as a new network
    /// runs): to measure what TLS costs.
    #[arg(long)]
    disable_tls: bool,
}

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    #[error("invalid options: {0}")]
    Options(String),
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lay out the network")]
    Testbed(#[from] floe_testbed::TestbedError),
    #[error("cannot start {name} from {}", binary.display())]
    Spawn {
        name: String,
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("{name} exited ({status}) before it answered; the end of its log:\n{log}")]
    Exited {
        name: String,
        status: String,
        log: String,
    },
    #[error("{name} did not answer {url} within {secs} s; the end of its log:\n{log}")]
    NotReady {
        name: String,
        url: String,
        secs: u64,
        log: String,
    },
    #[error("cannot send {signal} to {name}")]
    Signal {
        signal: &'static str,
        name: String,
        source: std::io::Error,
    },
    #[error("the ledger's system info: {0}")]
    Ledger(String),
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("{what} failed: {detail}")]
    Request { what: String, detail: String },
    #[error("GET {blob_id} returned {got} bytes that differ from the {want} bytes PUT")]
    Mismatch {
        blob_id: String,
        got: usize,
        want: usize,
    },
    #[error("a benchmark task failed: {0}")]
    Task(String),
    /// A failure with what the network's processes showed at that moment.
    #[error("{failure}\n{processes}")]
    Explained {
        failure: Box<E2eError>,
        processes: String,
    },
}

/// The options with every default resolved.
#[derive(Clone, Debug)]
struct Plan {
    nodes: usize,
    n_shards: u16,
    sizes: Vec<u64>,
    repeat: Option<usize>,
    readers: usize,
    small_readers: usize,
    faults: bool,
    timeout: Duration,
    seed: u64,
    binary: PathBuf,
    quick: bool,
    json: bool,
    /// Bytes to fill and the blob size of the fill.
    fill: u64,
    fill_blob: u64,
    disable_tls: bool,
}

impl Plan {
    fn new(a: &E2eBench) -> Result<Plan, E2eError> {
        let q = a.quick;
        let plan = Plan {
            nodes: a.nodes.unwrap_or(if q { 4 } else { 10 }),
            n_shards: a.n_shards.unwrap_or(if q { 40 } else { 1000 }),
            sizes: a.sizes.clone().unwrap_or_else(|| {
                if q {
                    vec![1 << 10, 1 << 20]
                } else {
                    vec![1 << 10, 1 << 20, 64 << 20]
                }
            }),
            repeat: a.repeat,
            readers: a.readers.unwrap_or(if q { 50 } else { 200 }),
            small_readers: a.small_readers.unwrap_or(if q { 100 } else { 1000 }),
            faults: !a.no_faults,
            timeout: a.timeout,
            seed: a.seed.unwrap_or_else(rand::random),
            binary: match &a.binary {
                Some(b) => b.clone(),
                None => std::env::current_exe().map_err(|e| {
                    E2eError::Options(format!("cannot find this binary ({e}); pass --binary"))
                })?,
            },
            quick: q,
            json: a.json,
            fill: a.fill.unwrap_or(if q { 384 << 20 } else { 0 }),
            fill_blob: a.fill_blob.unwrap_or(if q { 8 << 20 } else { 64 << 20 }),
            disable_tls: a.disable_tls,
        };
        let config =
            EncodingConfig::new(plan.n_shards).map_err(|e| E2eError::Options(e.to_string()))?;
        if plan.nodes == 0 || usize::from(plan.n_shards) < plan.nodes {
            return Err(E2eError::Options(format!(
                "need at least 1 node and at least as many shards as nodes (got {} and {})",
                plan.nodes, plan.n_shards
            )));
        }
        if plan.sizes.is_empty() || plan.sizes.contains(&0) || plan.repeat == Some(0) {
            return Err(E2eError::Options(
                "--sizes and --repeat must be positive".into(),
            ));
        }
        if let Some(&big) = plan.sizes.iter().find(|&&s| s > config.max_blob_size()) {
            return Err(E2eError::Options(format!(
                "{big} bytes is above the maximum blob size {} for {} shards",
                config.max_blob_size(),
                plan.n_shards
            )));
        }
        if plan.fill > 0 && (plan.fill_blob == 0 || plan.fill_blob > config.max_blob_size()) {
            return Err(E2eError::Options(format!(
                "--fill-blob must be positive and at most the maximum blob size {}",
                config.max_blob_size()
            )));
        }
        if plan.timeout.is_zero() {
            return Err(E2eError::Options("--timeout must be positive".into()));
        }
        Ok(plan)
    }

    fn runs(&self, size: u64) -> usize {
        self.repeat.unwrap_or(if size >= LARGE { 3 } else { 5 })
    }

    fn largest(&self) -> u64 {
        self.sizes.iter().copied().max().unwrap_or(0)
    }

    /// The daemon's `--max-body-size` (KiB): the largest body sent, and at least the default.
    fn max_body_kib(&self) -> u64 {
        let fill = if self.fill > 0 { self.fill_blob } else { 0 };
        let largest = self.largest().max(MIB_BLOB as u64).max(fill);
        largest.div_ceil(1024).max(10 * 1024)
    }

    fn f(&self) -> u16 {
        EncodingConfig::new(self.n_shards).map_or(0, |c| c.max_faulty())
    }
}

/// The directory the network lives in: given (kept) or temporary (removed unless the run fails).
enum Workspace {
    Given(PathBuf),
    Temp(tempfile::TempDir),
}

impl Workspace {
    fn new(dir: Option<&PathBuf>) -> anyhow::Result<Workspace> {
        match dir {
            Some(d) => {
                let empty = match std::fs::read_dir(d) {
                    Ok(mut entries) => entries.next().is_none(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot read {}", d.display()));
                    }
                };
                anyhow::ensure!(empty, "--dir {} must be absent or empty", d.display());
                Ok(Workspace::Given(d.clone()))
            }
            None => Ok(Workspace::Temp(
                tempfile::Builder::new()
                    .prefix("floe-bench-e2e-")
                    .tempdir()
                    .context("cannot create a temporary directory")?,
            )),
        }
    }

    fn path(&self) -> PathBuf {
        match self {
            Workspace::Given(p) => p.clone(),
            Workspace::Temp(t) => t.path().to_path_buf(),
        }
    }

    /// Keep a temporary directory (after a failure, for its logs); returns where it is.
    fn keep(self) -> PathBuf {
        match self {
            Workspace::Given(p) => p,
            Workspace::Temp(t) => t.keep(),
        }
    }
}

pub fn run(args: E2eBench) -> anyhow::Result<()> {
    let plan = Plan::new(&args)?;
    let workspace = Workspace::new(args.dir.as_ref())?;
    eprintln!(
        "floe bench e2e: seed {} (rerun with --seed {}), network in {}",
        plan.seed,
        plan.seed,
        workspace.path().display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The children are spawned from the future `block_on` runs on this thread (see
    // `cluster::die_with_parent`).
    let result = rt.block_on(measure(&plan, &workspace.path()));
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let kept = workspace.keep();
            return Err(anyhow::Error::new(e).context(format!(
                "floe bench e2e failed (seed {}); the network's files and logs are in {}",
                plan.seed,
                kept.display()
            )));
        }
    };
    if plan.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report::print_table(&report);
    }
    Ok(())
}

fn progress(plan: &Plan, msg: &str) {
    if !plan.json {
        eprintln!("  {msg}");
    }
}

async fn measure(plan: &Plan, dir: &std::path::Path) -> Result<Report, E2eError> {
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let mut random = |len: usize| {
        let mut v = vec![0u8; len];
        rng.fill_bytes(&mut v);
        v
    };
    let layout = Layout {
        binary: plan.binary.clone(),
        dir: dir.to_path_buf(),
        nodes: plan.nodes,
        n_shards: plan.n_shards,
        seed: plan.seed,
        max_body_kib: plan.max_body_kib(),
        disable_tls: plan.disable_tls,
    };
    let mut cluster = Cluster::start(&layout).await?;
    let setup_ms = ms(started.elapsed());
    progress(plan, &format!("network up in {:.1} s", setup_ms / 1000.0));
    let result = phases(plan, dir, &mut cluster, &mut random, started, setup_ms).await;
    // A failed request is explained by the processes behind it: one that exited, and the end
    // of the daemon's log (a panic, an error it logged).
    let result = result.map_err(|e| cluster.explain(e));
    cluster.shutdown();
    result
}

/// Everything measured on the running network, in order.
async fn phases(
    plan: &Plan,
    dir: &std::path::Path,
    cluster: &mut Cluster,
    random: &mut impl FnMut(usize) -> Vec<u8>,
    started: Instant,
    setup_ms: f64,
) -> Result<Report, E2eError> {
    let daemon_start_rss = fill::rss(cluster).1;
    let daemon = Daemon::new(&cluster.daemon_url, plan.timeout)?;

    // 1. Sizes, with the CPU of the largest size's PUTs.
    let largest = plan.largest();
    let Sizes { sizes, cpu, large } = sizes_phase(plan, cluster, &daemon, random).await?;
    let baseline = sizes
        .iter()
        .find(|s| s.size == MIB_BLOB as u64)
        .map(|s| Baseline {
            put_ms: s.put_p50_ms,
            get_ms: s.get_p50_ms,
        });

    // 2. Readers: one 1 MiB blob (also read in the silent-node scenarios), then small blobs.
    let reference = random(MIB_BLOB);
    let (_, reference_id) = daemon.put(&reference).await?;
    let reference = Arc::new(vec![reference]);
    let readers = if plan.readers > 0 {
        let row = daemon
            .readers(vec![reference_id; plan.readers], reference.clone(), false)
            .await?;
        progress(plan, &format!("{} readers done", plan.readers));
        Some(row)
    } else {
        None
    };
    let small_readers = if plan.small_readers > 0 {
        let blobs: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..plan.small_readers)
                .map(|_| random(SMALL_BLOB))
                .collect(),
        );
        let (ids, stored_in) = daemon
            .put_many(blobs.clone(), SMALL_STORE_CONCURRENCY)
            .await?;
        let mut row = daemon.readers(ids, blobs, true).await?;
        row.store_ms = Some(ms(stored_in));
        progress(plan, &format!("{} small readers done", plan.small_readers));
        Some(row)
    } else {
        None
    };

    // 3. Silent nodes.
    let (mut silent_f, mut silent_more) = (None, None);
    let large = large.as_ref().map(|(id, data)| LargeRead {
        blob: Stored { id: *id, data },
        normal_ms: sizes
            .iter()
            .find(|s| s.size == data.len() as u64)
            .map_or(0.0, |s| s.get_p50_ms),
    });
    if plan.faults {
        let weights: Vec<u64> = (0..cluster.node_count())
            .map(|i| cluster.weight(i))
            .collect();
        let f = u64::from(plan.f());
        let read = Stored {
            id: reference_id,
            data: &reference[0],
        };
        let few = faults::at_most_f(&weights, f);
        if !few.is_empty() {
            let scenario = Scenario {
                nodes: few,
                read: &read,
                new_blob: random(MIB_BLOB),
                concurrent: false,
                baseline,
                large: large.as_ref(),
            };
            let row = faults::silent(cluster, &daemon, scenario).await?;
            progress(plan, "≤ f silent done");
            silent_f = Some(row);
        }
        let many = faults::more_than_f(&weights, f);
        let scenario = Scenario {
            nodes: many,
            read: &read,
            new_blob: random(MIB_BLOB),
            concurrent: true,
            baseline,
            large: None,
        };
        let row = faults::silent(cluster, &daemon, scenario).await?;
        progress(plan, "> f silent done");
        silent_more = Some(row);
    }

    // 4. Memory against data stored.
    let fill = if plan.fill > 0 {
        Some(
            fill::fill(
                cluster,
                &daemon,
                plan.fill,
                plan.fill_blob,
                &mut *random,
                |m| progress(plan, m),
            )
            .await?,
        )
    } else {
        None
    };

    // 5. Every process at the end.
    let processes = cluster
        .stats()
        .into_iter()
        .map(|(name, s)| ProcRow {
            name,
            cpu_s: s.cpu_seconds,
            peak_rss_bytes: s.peak_rss_bytes,
            rss_bytes: s.rss_bytes,
        })
        .collect();
    // The daemon gives free memory back once idle for a while: its RSS then.
    let daemon_memory = DaemonMemoryRow {
        start_rss_bytes: daemon_start_rss,
        idle_rss_bytes: idle_daemon_rss(cluster).await,
        idle_wait_ms: ms(DAEMON_IDLE_WAIT),
    };
    Ok(Report {
        seed: plan.seed,
        quick: plan.quick,
        binary: plan.binary.display().to_string(),
        dir: dir.display().to_string(),
        nodes: plan.nodes,
        n_shards: plan.n_shards,
        tls: !plan.disable_tls,
        f: plan.f(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        max_body_size_kib: plan.max_body_kib(),
        timeout_s: plan.timeout.as_secs_f64(),
        setup_ms,
        sizes,
        cpu: cpu.map(|(puts, total)| cpu_row(largest, puts, &total)),
        readers,
        small_readers,
        silent_f,
        silent_more,
        fill,
        processes,
        daemon_memory,
        total_ms: ms(started.elapsed()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: E2eBench,
    }

    fn plan(args: &[&str]) -> Plan {
        let mut argv = vec!["e2e", "--binary", "/bin/true", "--seed", "1"];
        argv.extend_from_slice(args);
        Plan::new(&Cli::parse_from(argv).bench).unwrap()
    }

    #[test]
    fn defaults_and_quick() {
        let p = plan(&[]);
        assert_eq!(
            (p.nodes, p.n_shards, p.readers, p.small_readers),
            (10, 1000, 200, 1000)
        );
        assert_eq!(p.sizes, vec![1 << 10, 1 << 20, 64 << 20]);
        assert_eq!((p.runs(1 << 10), p.runs(64 << 20)), (5, 3));
        assert_eq!(p.f(), 333);
        assert_eq!(p.max_body_kib(), 64 * 1024);
        let q = plan(&["--quick"]);
        assert_eq!(
            (q.nodes, q.n_shards, q.readers, q.small_readers),
            (4, 40, 50, 100)
        );
        assert_eq!(q.sizes, vec![1 << 10, 1 << 20]);
        assert_eq!(q.max_body_kib(), 10 * 1024);
        assert_eq!((q.fill, q.fill_blob, p.fill), (384 << 20, 8 << 20, 0));
        assert!(q.faults);
        let q = plan(&["--quick", "--nodes", "7", "--repeat", "2", "--no-faults"]);
        assert_eq!((q.nodes, q.runs(64 << 20), q.faults), (7, 2, false));
    }

    #[test]
    fn bad_options_are_refused() {
        let bad = |args: &[&str]| {
            let mut argv = vec!["e2e", "--binary", "/bin/true"];
            argv.extend_from_slice(args);
            Plan::new(&Cli::parse_from(argv).bench).is_err()
        };
        assert!(bad(&["--nodes", "0"]));
        assert!(bad(&["--nodes", "20", "--n-shards", "10"]));
        assert!(bad(&["--sizes", "0"]));
        assert!(bad(&["--repeat", "0"]));
        assert!(bad(&["--n-shards", "4", "--nodes", "4", "--sizes", "1GiB"]));
    }
}
