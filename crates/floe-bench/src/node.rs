//! `floe bench node`: storage-node PUT throughput, GET latency and the network cost of
//! recovery, measured end to end on loopback.
//!
//! A [`Testbed`] runs in this process: a real ledger and `--nodes` real storage nodes, each node
//! with its own fjall store under a temporary directory, with the default durability (an fsync
//! per write). Each node is started behind a counting reverse proxy, which serves the node's
//! address in the genesis. Peers find each other through the ledger, so all node-to-node traffic crosses a
//! proxy and is counted at the HTTP level. The benchmark client talks to the real listeners
//! directly, so the proxies do not slow the PUT and GET figures.
//!
//! 1. **Recovery.** A blob is stored and certified while one node is down. That node is then
//!    started and recovers its sliver pairs from its peers. The proxies count every byte it
//!    downloads. That count is divided by the number of recovered pairs and compared with
//!    the size of a sliver pair (target ≤ 3×). Plain Reed–Solomon repair downloads the whole
//!    blob for each repair.
//! 2. **PUT.** Fresh blobs are registered and their metadata stored. Then every sliver is
//!    uploaded, once through the batched route (one request per node and blob) and once through
//!    the single-sliver route, each route with its own blobs.
//! 3. **GET.** Random single slivers: one at a time for latency, then concurrently for
//!    throughput.
//!
//! All nodes, the ledger and the client share this machine's cores. The figures are for the
//! whole cluster, not for one node.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use floe_core::{
    BlobId, EncodedBlob, EncodingConfig, EncodingType, ObjectId, ShardIndex, Sliver,
    SliverPairIndex, SliverType,
};
use floe_crypto::{Certificate, CommitteeMember, CommitteeWeights};
use floe_ledger::api_types::SystemInfo;
use floe_ledger::{AccountKey, EventKind, TxKind};
use floe_ledger_client::{AccountSession, LedgerClient};
use floe_node::config::Limits;
use floe_node_client::{NodeClient, Stored};
use floe_testbed::{Testbed, TestbedOptions};

use proxy::{
    Counts, REQUEST_BYTES, REQUESTS, RESPONSE_BODY_BYTES, RESPONSE_HEADER_BYTES, SYMBOL_BODY_BYTES,
    SYMBOL_IDS, SYMBOL_REQUESTS, SYMBOLS_RECEIVED, Traffic,
};

mod proxy;
mod report;

use report::{NodeReport, Percentiles, RECOVERY_TARGET, RateRow, RecoveryReport};

const MIB: f64 = (1 << 20) as f64;
/// Timeout of one request of the benchmark client (a batch can be large).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Args)]
pub struct NodeBench {
    /// Shards, that is sliver pairs per blob.
    #[arg(long, default_value_t = 1000)]
    n_shards: u16,
    /// Storage nodes, of equal weight (each gets about n_shards / nodes shards).
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// Size of every blob, e.g. 16MiB, 1MiB, 100000.
    #[arg(long, default_value = "16MiB", value_parser = crate::units::parse_size)]
    size: u64,
    /// Blobs uploaded through each PUT route. Each route gets its own blobs.
    #[arg(long, default_value_t = 2)]
    blobs: usize,
    /// Requests in flight at once, for PUT and for the concurrent GET run.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Random single-sliver GETs, timed one at a time and then again concurrently.
    #[arg(long, default_value_t = 2000)]
    gets: usize,
    /// Skip the recovery measurement.
    #[arg(long)]
    no_recovery: bool,
    /// Seed of the pseudo-random blobs and of the GET choices.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Parent directory of the ledger's and nodes' stores (default: the system temp dir). The
    /// cost of fsync depends on the filesystem.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

pub fn run(args: NodeBench) -> Result<()> {
    let report = measure(&args)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        report::print_report(&report);
    }
    Ok(())
}

/// Set up the cluster in a temporary directory, run every measurement, and tear it down.
fn measure(args: &NodeBench) -> Result<NodeReport> {
    if args.nodes < 2 || args.blobs == 0 || args.concurrency == 0 || args.gets == 0 {
        bail!("--nodes must be at least 2; --blobs, --concurrency and --gets must be positive");
    }
    let config = EncodingConfig::new(args.n_shards).map_err(|e| anyhow!("{e}"))?;
    if args.size == 0 || args.size > config.max_blob_size() {
        bail!(
            "--size must be between 1 and {} bytes for {} shards",
            config.max_blob_size(),
            args.n_shards
        );
    }
    if args.nodes > usize::from(args.n_shards) {
        bail!("--nodes must not exceed --n-shards");
    }
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let root = parent.join(format!("floe-bench-node-{}", std::process::id()));
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let _cleanup = Cleanup(root.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(drive(args, config, root));
    rt.shutdown_timeout(Duration::from_secs(5));
    report
}

struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// xorshift64*: seeded pseudo-random numbers for the blobs and the GET choices.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len.next_multiple_of(8)];
        for w in v.chunks_exact_mut(8) {
            w.copy_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

fn key_seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

// ---------------------------------------------------------------------------------------------
// The cluster.

struct Cluster {
    /// The ledger and the nodes, each node behind a counting proxy on its genesis address.
    bed: Testbed,
    n: u16,
    config: EncodingConfig,
    /// Address of node i's real listener, once it runs.
    inner: Vec<Option<String>>,
    traffic: Vec<Arc<Traffic>>,
    system: SystemInfo,
    http: reqwest::Client,
    user: AccountSession,
}

/// A registered blob.
struct Blob {
    encoded: EncodedBlob,
    object: ObjectId,
}

impl Blob {
    fn id(&self) -> BlobId {
        self.encoded.blob_id()
    }
}

impl Cluster {
    /// A testbed in `root` (plain HTTP, no node started yet) and a proxy's counters per node.
    async fn prepare(
        nodes: usize,
        config: EncodingConfig,
        seed: u64,
        root: PathBuf,
    ) -> Result<Self> {
        let http = floe_tls::http_client(reqwest::Client::builder().pool_max_idle_per_host(256))?;
        let bed = Testbed::start(
            &root,
            TestbedOptions {
                nodes,
                n_shards: config.n_shards(),
                epoch_duration_ms: 24 * 3_600_000,
                seed,
                node_limits: Limits {
                    sync_delay_ms: 0,
                    // No periodic maintenance during the measurements.
                    maintenance_interval_secs: 24 * 3_600,
                    ..Limits::default()
                },
                // Plain HTTP: a counting proxy sits in front of each node.
                disable_tls: true,
                start_nodes: false,
                ..TestbedOptions::default()
            },
        )
        .await?;
        let client = LedgerClient::new(bed.ledger_url());
        let system = client.system().await?;
        let user = AccountSession::new(
            AccountKey::from_seed(&key_seed("bench-node-user", 0)),
            client,
        );
        Ok(Self {
            bed,
            n: config.n_shards(),
            config,
            inner: vec![None; nodes],
            traffic: (0..nodes).map(|_| Arc::default()).collect(),
            system,
            http,
            user,
        })
    }

    fn nodes(&self) -> usize {
        self.inner.len()
    }

    fn member_of(&self, i: usize) -> usize {
        self.system
            .committee
            .members
            .iter()
            .position(|m| m.network_address == self.bed.node_address(i))
            .expect("every node is a member")
    }

    /// A client of node i's real listener (not its proxy).
    fn client(&self, i: usize) -> NodeClient {
        let address = self.inner[i].as_deref().unwrap_or(self.bed.node_address(i));
        NodeClient::new(self.http.clone(), address, REQUEST_TIMEOUT)
    }

    fn shards_of(&self, i: usize) -> &[u16] {
        &self.system.committee.members[self.member_of(i)].shards
    }

    fn pairs_of(&self, i: usize, blob_id: &BlobId) -> Vec<SliverPairIndex> {
        self.shards_of(i)
            .iter()
            .map(|&s| ShardIndex(s).to_pair_index(self.n, blob_id))
            .collect()
    }

    /// Every sliver of `blobs`, with the node that holds it.
    fn slivers<'a>(
        &self,
        blobs: &'a [Blob],
    ) -> Vec<(usize, &'a Blob, SliverPairIndex, SliverType)> {
        let mut out = Vec::new();
        for blob in blobs {
            for i in 0..self.nodes() {
                for pair in self.pairs_of(i, &blob.id()) {
                    out.push((i, blob, pair, SliverType::Primary));
                    out.push((i, blob, pair, SliverType::Secondary));
                }
            }
        }
        out
    }

    /// Start node i (store in its directory) behind its counting proxy.
    async fn start_node(&mut self, i: usize) -> Result<()> {
        let (http, traffic) = (self.http.clone(), Arc::clone(&self.traffic[i]));
        self.inner[i] = self
            .bed
            .start_node_behind(i, move |public, upstream| {
                proxy::spawn(public, upstream, http, traffic)
            })
            .await?;
        Ok(())
    }

    /// Traffic through every proxy but `except`'s, summed.
    fn traffic(&self, except: Option<usize>) -> Counts {
        let mut sum = Counts::default();
        for (_, t) in self
            .traffic
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != except)
        {
            for (s, c) in sum.iter_mut().zip(t.iter()) {
                *s += c.load(Relaxed);
            }
        }
        sum
    }

    /// Encode `size` pseudo-random bytes and register the blob.
    async fn register(&self, size: u64, seed: u64) -> Result<Blob> {
        let config = self.config;
        let encoded = tokio::task::spawn_blocking(move || {
            floe_core::encode(&config, &Rng::new(seed).bytes(size as usize))
        })
        .await??;
        let reg = self
            .user
            .submit(TxKind::ReserveAndRegister {
                end_epoch: 5,
                blob_id: encoded.blob_id(),
                root_hash: encoded.metadata().metadata.root_hash(),
                size,
                encoding_type: EncodingType::RS2,
                deletable: false,
            })
            .await?;
        let object = reg
            .events
            .iter()
            .find_map(|ev| match ev.kind {
                EventKind::BlobRegistered { object_id, .. } => Some(object_id),
                _ => None,
            })
            .context("no BlobRegistered event")?;
        Ok(Blob { encoded, object })
    }

    /// Store the blob's metadata on every node in `nodes`, once each has seen the registration.
    async fn put_metadata(&self, blob: &Blob, nodes: &[usize]) -> Result<()> {
        for &i in nodes {
            let client = self.client(i);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let r = client
                    .put_metadata(&blob.id(), &blob.encoded.metadata().metadata)
                    .await;
                match r {
                    Ok(Stored::Created | Stored::AlreadyStored) => break,
                    _ if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Ok(Stored::Buffered) => bail!("node {i} never saw the registration"),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Node i's sliver pairs of `blob`, as one batch.
    fn batch(&self, blob: &Blob, i: usize) -> Vec<(SliverPairIndex, Sliver)> {
        self.pairs_of(i, &blob.id())
            .into_iter()
            .flat_map(|pair| {
                let p = blob.encoded.sliver_pair(pair);
                [
                    (pair, Sliver::Primary(p.primary)),
                    (pair, Sliver::Secondary(p.secondary)),
                ]
            })
            .collect()
    }

    /// Confirmations from every node in `nodes`, aggregated and submitted to the ledger.
    async fn certify(&self, blob: &Blob, nodes: &[usize]) -> Result<()> {
        let mut partials = Vec::new();
        for &i in nodes {
            let signed = self.client(i).confirmation(&blob.id(), None).await?;
            partials.push((self.member_of(i), signed));
        }
        partials.sort_by_key(|(m, _)| *m);
        let members = &self.system.committee.members;
        let weights = CommitteeWeights::new(
            members
                .iter()
                .map(|m| CommitteeMember {
                    public_key: m.protocol_key,
                    weight: m.shards.len() as u16,
                })
                .collect(),
            self.n,
        )?;
        let certificate = Certificate::aggregate(&weights, &partials)?;
        self.user
            .submit(TxKind::CertifyBlob {
                blob_object: blob.object,
                certificate,
            })
            .await?;
        Ok(())
    }
}

/// Run one future per job, at most `limit` at once. Returns each job's latency in µs (sorted)
/// and the wall time in seconds.
async fn run_bounded<J, F, Fut>(jobs: Vec<J>, limit: usize, f: F) -> Result<(Vec<f64>, f64)>
where
    J: Send + 'static,
    F: Fn(J) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(limit));
    let f = Arc::new(f);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for job in jobs {
        let permit = permits.clone().acquire_owned().await?;
        let f = f.clone();
        set.spawn(async move {
            let t = Instant::now();
            let r = f(job).await;
            drop(permit);
            r.map(|()| t.elapsed().as_secs_f64() * 1e6)
        });
    }
    let mut latencies = Vec::new();
    while let Some(r) = set.join_next().await {
        latencies.push(r??);
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, secs))
}

fn rate_json(route: &'static str, blobs: usize, bytes: u64, lat: &[f64], secs: f64) -> RateRow {
    RateRow {
        route,
        blobs,
        requests: lat.len(),
        sliver_bytes: bytes,
        seconds: secs,
        mib_per_second: bytes as f64 / MIB / secs,
        requests_per_second: lat.len() as f64 / secs,
        latency_us: Percentiles {
            p50: percentile(lat, 0.5),
            p99: percentile(lat, 0.99),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The measurements.

async fn drive(args: &NodeBench, config: EncodingConfig, root: PathBuf) -> Result<NodeReport> {
    let t0 = Instant::now();
    let mut cluster = Cluster::prepare(args.nodes, config, args.seed, root).await?;
    // The node that starts late and recovers: the last one holding at most f shards, so that
    // the others alone reach a quorum.
    let victim = (0..args.nodes)
        .rev()
        .find(|&i| cluster.shards_of(i).len() <= usize::from(config.max_faulty()))
        .filter(|_| !args.no_recovery);
    if victim.is_none() && !args.no_recovery {
        bail!("every node holds more than f shards; use more nodes or --no-recovery");
    }
    for i in (0..args.nodes).filter(|&i| Some(i) != victim) {
        cluster.start_node(i).await?;
    }
    let setup_seconds = t0.elapsed().as_secs_f64();
    let sym = config.symbol_size(args.size)?;
    let pair_bytes = (config.primary_sliver_len(sym) + config.secondary_sliver_len(sym)) as u64;

    let recovery = match victim {
        Some(v) => Some(recovery(&mut cluster, args, v).await?),
        None => None,
    };
    let all: Vec<usize> = (0..args.nodes).collect();

    // PUT: register and store the metadata of every blob first, untimed.
    let mut blobs = Vec::new();
    for b in 0..2 * args.blobs {
        let blob = cluster
            .register(args.size, args.seed + 1 + b as u64)
            .await?;
        cluster.put_metadata(&blob, &all).await?;
        blobs.push(blob);
    }
    let (batched_blobs, single_blobs) = blobs.split_at(args.blobs);

    let mut jobs = Vec::new();
    let mut batched_bytes = 0u64;
    for blob in batched_blobs {
        for i in 0..args.nodes {
            let batch = cluster.batch(blob, i);
            batched_bytes += batch
                .iter()
                .map(|(_, s)| s.data().symbols.len() as u64)
                .sum::<u64>();
            jobs.push((cluster.client(i), blob.id(), batch));
        }
    }
    let (lat, secs) = run_bounded(jobs, args.concurrency, |(c, id, batch)| async move {
        let expected = batch.len() as u64;
        let stored = c.put_sliver_batch(&id, batch).await?;
        if stored != expected {
            bail!("{} stored {stored} of {expected} slivers", c.base_url());
        }
        Ok(())
    })
    .await?;
    let put_batched = rate_json("batched", args.blobs, batched_bytes, &lat, secs);

    let mut jobs = Vec::new();
    let mut single_bytes = 0u64;
    for (i, blob, pair, axis) in cluster.slivers(single_blobs) {
        let data = blob
            .encoded
            .sliver(axis, pair.to_sliver_index(axis, cluster.n));
        single_bytes += data.symbols.len() as u64;
        jobs.push((cluster.client(i), blob.id(), pair, axis, data));
    }
    let (lat, secs) = run_bounded(
        jobs,
        args.concurrency,
        |(c, id, pair, axis, data)| async move {
            match c.put_sliver(&id, pair, axis, &data).await? {
                Stored::Created => Ok(()),
                other => bail!("{} answered {other:?} to a new sliver", c.base_url()),
            }
        },
    )
    .await?;
    let put_single = rate_json("single", args.blobs, single_bytes, &lat, secs);
    // Every node must now hold everything: it signs confirmations.
    for blob in &blobs {
        for &i in &all {
            cluster
                .client(i)
                .confirmation(&blob.id(), None)
                .await
                .with_context(|| format!("node {i} did not confirm after the uploads"))?;
        }
    }

    // GET: random (blob, pair, axis) from the node that holds it; one at a time, then
    // concurrently.
    let targets = cluster.slivers(&blobs);
    let mut rng = Rng::new(args.seed ^ 0x6e7);
    let mut get = Vec::new();
    for (route, limit) in [("sequential", 1), ("concurrent", args.concurrency)] {
        let jobs: Vec<_> = (0..args.gets)
            .map(|_| {
                let (i, blob, pair, axis) = targets[rng.below(targets.len())];
                (cluster.client(i), blob.id(), pair, axis)
            })
            .collect();
        let got = Arc::new(AtomicU64::new(0));
        let counter = got.clone();
        let (lat, secs) = run_bounded(jobs, limit, move |(c, id, pair, axis)| {
            let counter = counter.clone();
            async move {
                let s = c.get_sliver(&id, pair, axis).await?;
                counter.fetch_add(s.symbols.len() as u64, Relaxed);
                Ok(())
            }
        })
        .await?;
        get.push(rate_json(route, blobs.len(), got.load(Relaxed), &lat, secs));
    }

    Ok(NodeReport {
        nodes: args.nodes,
        n_shards: args.n_shards,
        blob_size: args.size,
        symbol_size: sym,
        sliver_pair_bytes: pair_bytes,
        concurrency: args.concurrency,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        setup_seconds,
        put: vec![put_batched, put_single],
        get,
        recovery,
    })
}

/// Store and certify a blob without node `v`, start `v`, wait until it confirms (it holds both
/// slivers of every shard it owns), check what it recovered, and report the traffic.
async fn recovery(c: &mut Cluster, args: &NodeBench, v: usize) -> Result<RecoveryReport> {
    let others: Vec<usize> = (0..args.nodes).filter(|&i| i != v).collect();
    let blob = c.register(args.size, args.seed).await?;
    let id = blob.id();
    c.put_metadata(&blob, &others).await?;
    for &i in &others {
        c.client(i).put_sliver_batch(&id, c.batch(&blob, i)).await?;
    }
    c.certify(&blob, &others).await?;

    let before = c.traffic(Some(v));
    let t0 = Instant::now();
    c.start_node(v).await?;
    // Recovery is timed from here: the node's store is open and its follower running.
    let start = Instant::now();
    let start_seconds = start.duration_since(t0).as_secs_f64();
    let client = c.client(v);
    while client.confirmation(&id, None).await.is_err() {
        if start.elapsed() > Duration::from_secs(3600) {
            bail!("node {v} did not recover within an hour");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut t = c.traffic(Some(v));
    for (a, b) in t.iter_mut().zip(before) {
        *a -= b;
    }
    let downloaded = t[RESPONSE_HEADER_BYTES] + t[RESPONSE_BODY_BYTES];
    // Requests that reached the recovering node through its proxy (expected: none).
    let inbound = c.traffic[v][REQUESTS].load(Relaxed);

    let pairs = c.pairs_of(v, &id);
    for &pair in &pairs {
        let expected = blob.encoded.sliver_pair(pair);
        let primary = client.get_sliver(&id, pair, SliverType::Primary).await?;
        let secondary = client.get_sliver(&id, pair, SliverType::Secondary).await?;
        if primary != expected.primary || secondary != expected.secondary {
            bail!("node {v} recovered sliver pair {pair} wrongly");
        }
    }
    let config = c.config;
    let sym = blob.encoded.symbol_size();
    let pair_bytes = (config.primary_sliver_len(sym) + config.secondary_sliver_len(sym)) as f64;
    let n_pairs = pairs.len() as f64;
    let per_pair = downloaded as f64 / n_pairs;
    let min_symbols = f64::from(config.n_primary_source()) + f64::from(config.n_secondary_source());
    Ok(RecoveryReport {
        node: v,
        recovered_pairs: pairs.len(),
        node_start_seconds: start_seconds,
        seconds,
        recovered_mib_per_second: n_pairs * pair_bytes / MIB / seconds,
        requests: t[REQUESTS],
        symbol_requests: t[SYMBOL_REQUESTS],
        symbols_requested: t[SYMBOL_IDS],
        symbols_requested_per_pair: t[SYMBOL_IDS] as f64 / n_pairs,
        symbols_received: t[SYMBOLS_RECEIVED],
        symbols_received_per_pair: t[SYMBOLS_RECEIVED] as f64 / n_pairs,
        minimum_symbols_per_pair: min_symbols,
        uploaded_bytes: t[REQUEST_BYTES],
        downloaded_bytes: downloaded,
        downloaded_body_bytes: t[RESPONSE_BODY_BYTES],
        downloaded_symbol_body_bytes: t[SYMBOL_BODY_BYTES],
        downloaded_bytes_per_pair: per_pair,
        per_pair_over_sliver_pair: per_pair / pair_bytes,
        per_pair_over_blob: per_pair / args.size as f64,
        plain_rs_per_pair_over_sliver_pair: args.size as f64 / pair_bytes,
        target_over_sliver_pair: RECOVERY_TARGET,
        target_met: per_pair / pair_bytes <= RECOVERY_TARGET,
        requests_to_recovering_node: inbound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole benchmark on a tiny cluster: it runs, the late node recovers exactly its
    /// slivers (checked inside), and the counts add up.
    #[test]
    fn tiny_cluster_end_to_end() {
        let args = NodeBench {
            n_shards: 10,
            nodes: 4,
            size: 20_000,
            blobs: 1,
            concurrency: 4,
            gets: 20,
            no_recovery: false,
            seed: 7,
            dir: None,
            json: true,
        };
        let r = measure(&args).unwrap();
        let rec = r.recovery.as_ref().expect("a node recovered");
        assert!(rec.recovered_pairs > 0);
        assert!(rec.symbol_requests > 0);
        assert!(rec.downloaded_symbol_body_bytes > 0);
        assert!(rec.downloaded_bytes > 0);
        assert_eq!(rec.requests_to_recovering_node, 0);
        let all_slivers = r.sliver_pair_bytes * 10;
        for row in &r.put {
            assert_eq!(row.sliver_bytes, all_slivers);
        }
        for row in &r.get {
            assert_eq!(row.requests, 20);
        }
        // The JSON keys the notes and scripts read.
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["put"][0]["route"], "batched");
        assert!(v["recovery"]["perPairOverSliverPair"].is_number());
        assert!(v["get"][0]["latencyUs"]["p99"].is_number());
    }
}
