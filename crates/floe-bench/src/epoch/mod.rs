//! `floe bench epoch`: shard migration throughput and the duration of an epoch change as a
//! function of the data stored.
//!
//! For each total size S, a fresh local network (ledger and nodes on loopback sockets, fjall
//! stores in a temp dir) stores S bytes as seeded pseudo-random blobs, waits until every node
//! holds every sliver of its shards, and then adds one node with the genesis nodes' weight, so
//! that it takes about 1/(nodes+1) of the shards. The change in which the new node first owns
//! shards is measured:
//!
//! * the *change*: from the moment the ledger's epoch passes the old one (`EpochChangeStart`)
//!   to its epoch state leaving `Syncing` (`EpochChangeDone`: a quorum of shards reported);
//! * the *full sync*: from the same start until every member of the new committee has finished
//!   its migration (the new node may finish after the quorum);
//! * the bytes and slivers received by shard sync, summed over the nodes, and the blobs rebuilt
//!   by recovery instead (0 when nothing is faulty);
//! * the throughput (bytes migrated / full sync) and the ratio of the bytes migrated to the
//!   ideal: the moved shards' share of the encoded sliver data.
//!
//! The ledger fixes the next committee at some point before the boundary (the boundary itself,
//! or the middle of the epoch), so the bench does not assume which change installs the new
//! node: it watches the ledger until the committee includes it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Args;
use floe_client::{Client, ClientConfig, Lifetime, NoProgress, StoreOptions};
use floe_core::{BlobId, EncodingConfig, Epoch};
use floe_ledger::AccountKey;
use floe_ledger::api_types::CommitteeInfo;
use floe_ledger_client::LedgerClient;
use floe_node::config::Limits;
use floe_testbed::{Testbed, TestbedOptions, node_protocol_key};
use serde::Serialize;
use tokio::task::JoinSet;

mod report;
use report::{opt_ms, print_table};

const MIB: f64 = (1u64 << 20) as f64;
const GIB: f64 = (1u64 << 30) as f64;
/// Ledger (and node statistics) polling period.
const POLL: Duration = Duration::from_millis(20);
/// Attempts per store (a store straddling an epoch boundary may fail).
const STORE_ATTEMPTS: u32 = 5;
/// How long to wait for every node to hold every sliver of its shards before the change.
const SETTLE_LIMIT: Duration = Duration::from_secs(90);
/// How long to wait for the change and the full sync once the new node is in the committee.
const CHANGE_LIMIT: Duration = Duration::from_secs(180);

#[derive(Args)]
pub struct EpochBench {
    /// Total data stored before the change, one fresh network per size (e.g. 8MiB,32MiB,128MiB).
    #[arg(long, value_delimiter = ',', default_value = "8MiB,32MiB,128MiB", value_parser = crate::units::parse_size)]
    sizes: Vec<u64>,
    /// Size of each stored blob (the last one of a size may be smaller).
    #[arg(long, default_value = "1MiB", value_parser = crate::units::parse_size)]
    blob_size: u64,
    /// Storage nodes at genesis (weight 1 each); one more joins with weight 1.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    #[arg(long, default_value_t = 100)]
    n_shards: u16,
    /// Epoch duration (e.g. 4s, 1500ms). Full syncs longer than an epoch are cut short.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    epoch_duration: Duration,
    /// Stores in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seed of the network's keys and of the data (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Stop genesis node 0 just before the new node registers and keep it down: the shards it
    /// would hand over are rebuilt by RedStuff recovery, blob by blob, instead of pulled (the
    /// fallback path when a previous owner is down).
    #[arg(long)]
    owner_down: bool,
    /// Print a JSON array of one object per size.
    #[arg(long)]
    json: bool,
}

/// The figures of one size.
#[derive(Serialize, Debug, Clone)]
struct Row {
    stored_bytes: u64,
    /// Genesis node 0 was down throughout the change (`--owner-down`).
    owner_down: bool,
    blobs: usize,
    /// Sliver data of all shards (metadata not included).
    encoded_bytes: u64,
    n_shards: u16,
    shards_moved: u64,
    /// The epoch the new node joined in.
    epoch: Epoch,
    store_seconds: f64,
    /// Until every node held every sliver of its shards (`None`: not within the limit).
    settle_seconds: Option<f64>,
    /// From the registration of the new node to the start of the change that installed it.
    join_wait_ms: f64,
    /// From `EpochChangeStart` to the epoch state leaving `Syncing`.
    change_ms: Option<f64>,
    /// From `EpochChangeStart` until every member that gained shards finished its migration.
    full_sync_ms: Option<f64>,
    /// When each member that gained shards finished, from `EpochChangeStart` (`None`: not
    /// before the next epoch or the time limit).
    gainers_done_ms: Vec<Option<f64>>,
    /// When the new node had loaded the new committee (its migration starts right after).
    new_node_view_ms: Option<f64>,
    /// The new node's own migration time (its task's start to `EpochSyncDone` accepted).
    new_node_sync_ms: Option<u64>,
    bytes_migrated: u64,
    slivers_migrated: u64,
    /// Slivers the moved shards hold: moved shards × blobs × 2.
    slivers_expected: u64,
    blobs_recovered: u64,
    /// The moved shards' share of the encoded sliver data.
    ideal_bytes: u64,
    /// bytes_migrated / ideal_bytes.
    migrated_to_ideal: f64,
    /// bytes_migrated / full sync, MiB/s.
    migration_mib_s: Option<f64>,
    /// bytes_migrated / the new node's own migration time, MiB/s.
    new_node_mib_s: Option<f64>,
    /// Slivers of its shards the new node still lacked at the end.
    new_node_missing_slivers: usize,
    /// Requests the nodes served from the start of the change to the end of the measurement,
    /// by route (all nodes, methods and statuses): shard sync, and blob recovery racing it.
    requests_during_change: BTreeMap<String, u64>,
}

/// The sizes of the blobs that make up `total` bytes: full blobs of `blob` bytes, the last one
/// smaller if `blob` does not divide `total`.
fn blob_sizes(total: u64, blob: u64) -> Vec<u64> {
    let blob = blob.max(1);
    let mut out = vec![blob; (total / blob) as usize];
    if !total.is_multiple_of(blob) {
        out.push(total % blob);
    }
    out
}

/// Sliver bytes (one primary and one secondary sliver) a single shard holds for blobs of
/// `sizes`. The encoded data is n times this, and an ideal migration moves `moved` times this.
fn pair_bytes_per_shard(config: &EncodingConfig, sizes: &[u64]) -> Result<u64> {
    let mut total = 0u64;
    for &size in sizes {
        let sym = config.symbol_size(size)?;
        total += (config.primary_sliver_len(sym) + config.secondary_sliver_len(sym)) as u64;
    }
    Ok(total)
}

/// Shards whose owner differs between two assignments (shard → owner).
fn moved_shards<K: PartialEq>(before: &BTreeMap<u16, K>, after: &BTreeMap<u16, K>) -> u64 {
    after
        .iter()
        .filter(|(shard, owner)| before.get(shard) != Some(owner))
        .count() as u64
}

fn owners(committee: &CommitteeInfo) -> BTreeMap<u16, floe_ledger::NodeId> {
    committee
        .members
        .iter()
        .flat_map(|m| m.shards.iter().map(move |s| (*s, m.node_id)))
        .collect()
}

/// `len` seeded pseudo-random bytes (xorshift64*), different for every `index`.
fn blob_data(seed: u64, index: u64, len: u64) -> Vec<u8> {
    let mut x =
        (seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len as usize + 8);
    while (out.len() as u64) < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len as usize);
    out
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn run(args: EpochBench) -> Result<()> {
    if args.sizes.is_empty() || args.sizes.contains(&0) {
        bail!("--sizes must list sizes above zero");
    }
    if args.nodes == 0 || args.concurrency == 0 || args.blob_size == 0 {
        bail!("--nodes, --concurrency and --blob-size must be above zero");
    }
    if args.owner_down && args.nodes < 4 {
        bail!(
            "--owner-down needs --nodes 4 or more: node 0 must hold at most f shards for the \
             others to rebuild its slivers"
        );
    }
    let config = EncodingConfig::new(args.n_shards).map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.blob_size > config.max_blob_size() {
        bail!(
            "--blob-size {} is above the maximum blob size {} for {} shards",
            args.blob_size,
            config.max_blob_size(),
            args.n_shards
        );
    }
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(42, |d| d.as_nanos() as u64 % 1_000_000)
    });
    if !args.json {
        println!(
            "network: {} nodes + 1 joining (weight 1 each), n = {} shards, epochs of {}, blobs of {}, {} stores in flight, seed {seed}",
            args.nodes,
            args.n_shards,
            humantime::format_duration(args.epoch_duration),
            crate::units::format_size(args.blob_size),
            args.concurrency,
        );
        if args.owner_down {
            println!(
                "node 0 is stopped before the new node registers: its shards reach the new node by recovery"
            );
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,lsm_tree=error".into()),
        )
        .try_init();
    let mut rows = Vec::new();
    for &size in &args.sizes {
        // A runtime per network: tasks its nodes leave behind (syncs retrying against peers
        // that are gone) end with it instead of running into the next measurement.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let dir = tempfile::tempdir().context("temp dir")?;
        let row = rt.block_on(run_size(&args, &config, dir.path(), size, seed));
        rt.shutdown_timeout(Duration::from_secs(2));
        drop(dir);
        rows.push(row?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows);
    }
    Ok(())
}

/// One fresh network: store `size` bytes, add a node, measure the change that installs it.
async fn run_size(
    args: &EpochBench,
    config: &EncodingConfig,
    dir: &std::path::Path,
    size: u64,
    seed: u64,
) -> Result<Row> {
    let label = crate::units::format_size(size);
    let mut bed = Testbed::start(
        dir,
        TestbedOptions {
            nodes: args.nodes,
            n_shards: args.n_shards,
            epoch_duration_ms: args.epoch_duration.as_millis() as u64,
            seed,
            node_limits: Limits::default(),
            ..TestbedOptions::default()
        },
    )
    .await?;
    let result = measure(&mut bed, args, config, size, seed, &label).await;
    bed.shutdown().await;
    result
}

async fn measure(
    bed: &mut Testbed,
    args: &EpochBench,
    config: &EncodingConfig,
    size: u64,
    seed: u64,
    label: &str,
) -> Result<Row> {
    let ledger = LedgerClient::new(bed.ledger_url());
    let client = Client::new(
        ClientConfig {
            ledger_url: bed.ledger_url(),
            ..ClientConfig::default()
        },
        Some(AccountKey::from_seed(&floe_core::merkle::blake2b256(&[
            b"floe-bench-epoch",
            &seed.to_le_bytes(),
        ]))),
    )?;

    // Store the data, `concurrency` blobs at a time.
    let sizes = blob_sizes(size, args.blob_size);
    let t = Instant::now();
    let blobs = store_all(&client, &sizes, seed, args.concurrency).await?;
    let store_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "{label}: stored {} blobs in {store_seconds:.1} s ({:.1} MiB/s)",
        blobs.len(),
        size as f64 / MIB / store_seconds
    );

    // Let every node receive (or recover) every sliver of its shards, so that the migration
    // has complete previous owners.
    let t = Instant::now();
    let settle_seconds = loop {
        if missing_total(bed, &blobs, 0..args.nodes)? == 0 {
            break Some(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > SETTLE_LIMIT {
            eprintln!("{label}: nodes still miss slivers; migrating anyway");
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Register the new node shortly before the middle of an epoch with no change in progress:
    // it joins at the next boundary whether the ledger fixes the next committee at the middle
    // of the epoch or at the boundary, after about half an epoch.
    let epoch_ms = args.epoch_duration.as_millis() as u64;
    let margin = (epoch_ms / 5).clamp(300, 1000);
    let align_deadline = Instant::now() + args.epoch_duration * 3;
    loop {
        let s = ledger.system().await?;
        let target = (s.current_epoch_start_ms + epoch_ms / 2).saturating_sub(margin);
        let now = now_ms();
        if Instant::now() > align_deadline {
            break;
        }
        if s.epoch_state.is_syncing() || now > target {
            // Too late in this epoch (or a change in progress): try the next one.
            let wait = s.next_epoch_start_ms.saturating_sub(now).clamp(20, 500);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        } else if now + 50 < target {
            tokio::time::sleep(Duration::from_millis((target - now - 50).min(500))).await;
        } else {
            break;
        }
    }

    if args.owner_down {
        bed.stop_node(0).await;
    }
    let before = totals(bed);
    let base_epoch = ledger.system().await?.epoch;
    let added_at = Instant::now();
    let new = bed.add_node(1).await?;
    let new_key = *node_protocol_key(seed, new).public_key();

    // Wait for the change whose committee first gives the new node shards.
    let join_deadline = added_at + args.epoch_duration * 4 + Duration::from_secs(10);
    let mut seen = base_epoch;
    // Times are taken when a request is sent: its answer reflects the ledger at some moment
    // after that, so the start and the end of the change are biased alike.
    let (epoch, start, system) = loop {
        let sent = Instant::now();
        let s = match ledger.system().await {
            Ok(s) => s,
            Err(_) if Instant::now() < join_deadline => {
                tokio::time::sleep(POLL).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if s.epoch > seen {
            seen = s.epoch;
            let joined = s
                .committee
                .members
                .iter()
                .any(|m| m.protocol_key == new_key && !m.shards.is_empty());
            if joined {
                break (s.epoch, sent, s);
            }
        }
        if Instant::now() > join_deadline {
            bail!(
                "{label}: the new node is not in the committee {} epochs after its registration",
                seen - base_epoch
            );
        }
        tokio::time::sleep(POLL).await;
    };
    let join_wait_ms = ms(start - added_at);
    tracing::debug!(epoch, "the change that installs the new node started");
    let previous = system
        .previous_committee
        .as_ref()
        .context("a change without a previous committee")?;
    let (before_owners, after_owners) = (owners(previous), owners(&system.committee));
    let shards_moved = moved_shards(&before_owners, &after_owners);
    // The members that gained shards: they have to migrate (the others report at once, or not
    // at all when the quorum ended the change before they looked).
    let gainers: Vec<usize> = (0..bed.node_count())
        .filter(|&i| {
            let key = *node_protocol_key(seed, i).public_key();
            system.committee.members.iter().any(|m| {
                m.protocol_key == key
                    && m.shards
                        .iter()
                        .any(|s| before_owners.get(s) != Some(&m.node_id))
            })
        })
        .collect();
    let mut gainer_done: Vec<Option<Duration>> = vec![None; gainers.len()];
    let mut new_view = None;
    let requests_before = requests_by_route(bed).await;

    // Poll the ledger for the end of the change and the nodes for the end of their migration.
    let mut change = (!system.epoch_state.is_syncing()).then_some(Duration::ZERO);
    let mut full_sync = None;
    let deadline = start + CHANGE_LIMIT;
    loop {
        for (k, &i) in gainers.iter().enumerate() {
            let finished = bed
                .node(i)
                .is_some_and(|n| n.migration_stats().last_epoch.is_some_and(|e| e >= epoch));
            if finished && gainer_done[k].is_none() {
                gainer_done[k] = Some(start.elapsed());
            }
        }
        if new_view.is_none() && bed.node(new).is_some_and(|n| n.view().epoch >= epoch) {
            new_view = Some(start.elapsed());
        }
        if full_sync.is_none() && gainer_done.iter().all(Option::is_some) {
            full_sync = Some(start.elapsed());
        }
        let sent = start.elapsed();
        let s = ledger.system().await.ok();
        if change.is_none()
            && s.as_ref()
                .is_some_and(|s| !s.epoch_state.is_syncing() || s.epoch > epoch)
        {
            change = Some(sent);
        }
        if change.is_some() && full_sync.is_some() {
            break;
        }
        if let Some(s) = s.filter(|s| s.epoch > epoch) {
            eprintln!(
                "{label}: epoch {} started before every node finished its migration \
                 (try a longer --epoch-duration)",
                s.epoch
            );
            break;
        }
        if Instant::now() > deadline {
            eprintln!("{label}: gave up waiting for the change after {CHANGE_LIMIT:?}");
            break;
        }
        tokio::time::sleep(POLL).await;
    }

    let after = totals(bed);
    let mut requests_during_change = requests_by_route(bed).await;
    for (route, n) in requests_during_change.iter_mut() {
        *n -= requests_before.get(route).copied().unwrap_or(0).min(*n);
    }
    requests_during_change.retain(|route, n| *n > 0 && route != "/metrics");
    let new_stats = bed.node(new).map(|n| n.migration_stats());
    let new_node_sync_ms = new_stats
        .filter(|m| m.last_epoch == Some(epoch))
        .and_then(|m| m.last_duration_ms);
    let new_node_missing_slivers = missing_total(bed, &blobs, new..new + 1)?;
    eprintln!(
        "{label}: the new node joined in epoch {epoch}, {:.1} s after its registration; \
         change {}, full sync {}",
        join_wait_ms / 1000.0,
        opt_ms(change.map(ms)),
        opt_ms(full_sync.map(ms)),
    );

    let per_shard = pair_bytes_per_shard(config, &sizes)?;
    let ideal_bytes = per_shard * shards_moved;
    let bytes_migrated = after.0 - before.0;
    let mib_per = |d: f64| (d > 0.0).then(|| bytes_migrated as f64 / MIB / d);
    Ok(Row {
        stored_bytes: size,
        owner_down: args.owner_down,
        blobs: blobs.len(),
        encoded_bytes: per_shard * u64::from(config.n_shards()),
        n_shards: config.n_shards(),
        shards_moved,
        epoch,
        store_seconds,
        settle_seconds,
        join_wait_ms,
        change_ms: change.map(ms),
        full_sync_ms: full_sync.map(ms),
        gainers_done_ms: gainer_done.into_iter().map(|d| d.map(ms)).collect(),
        new_node_view_ms: new_view.map(ms),
        new_node_sync_ms,
        bytes_migrated,
        slivers_migrated: after.1 - before.1,
        slivers_expected: shards_moved * 2 * blobs.len() as u64,
        blobs_recovered: after.2 - before.2,
        ideal_bytes,
        migrated_to_ideal: if ideal_bytes == 0 {
            0.0
        } else {
            bytes_migrated as f64 / ideal_bytes as f64
        },
        migration_mib_s: full_sync.and_then(|d| mib_per(d.as_secs_f64())),
        new_node_mib_s: new_node_sync_ms.and_then(|d| mib_per(d as f64 / 1000.0)),
        new_node_missing_slivers,
        requests_during_change,
    })
}

/// Store blobs of `sizes` (pseudo-random data), `concurrency` at a time, each retried a few
/// times; returns their IDs.
async fn store_all(
    client: &Client,
    sizes: &[u64],
    seed: u64,
    concurrency: usize,
) -> Result<Vec<BlobId>> {
    let mut set: JoinSet<Result<BlobId>> = JoinSet::new();
    let mut ids = Vec::with_capacity(sizes.len());
    let mut next = 0;
    while next < sizes.len() || !set.is_empty() {
        while set.len() < concurrency && next < sizes.len() {
            let (client, len, index) = (client.clone(), sizes[next], next as u64);
            set.spawn(async move {
                let data = blob_data(seed, index, len);
                let options = StoreOptions {
                    lifetime: Lifetime::Max,
                    ..StoreOptions::default()
                };
                let mut attempt = 1;
                loop {
                    match client
                        .store(data.clone(), &options, Arc::new(NoProgress))
                        .await
                    {
                        Ok(out) => return out.result.blob_id().context("stored blob has an ID"),
                        Err(e) if attempt < STORE_ATTEMPTS => {
                            tracing::info!(error = %e, attempt, "store failed; retrying");
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => return Err(e).context(format!("storing blob {index}")),
                    }
                }
            });
            next += 1;
        }
        if let Some(joined) = set.join_next().await {
            ids.push(joined.context("store task")??);
        }
    }
    Ok(ids)
}

/// Slivers of their shards that the running nodes in `range` lack for `blobs`.
fn missing_total(bed: &Testbed, blobs: &[BlobId], range: std::ops::Range<usize>) -> Result<usize> {
    let mut missing = 0;
    for i in range {
        let Some(node) = bed.node(i) else { continue };
        let view = node.view();
        for id in blobs {
            missing += node
                .missing_slivers(&view, id)
                .map_err(|e| anyhow::anyhow!("node {i}: {e}"))?
                .len();
        }
    }
    Ok(missing)
}

/// Requests served so far by route, summed over the running nodes (from `/metrics`).
async fn requests_by_route(bed: &Testbed) -> BTreeMap<String, u64> {
    let pools = floe_node_client::NodeHttp::with_defaults();
    let mut total = BTreeMap::new();
    for i in (0..bed.node_count()).filter(|&i| bed.is_running(i)) {
        let Ok((base, http)) = bed.node_endpoint(i, &pools) else {
            continue;
        };
        let url = format!("{base}/metrics");
        let Ok(resp) = http.get(&url).send().await else {
            continue;
        };
        let Ok(text) = resp.text().await else {
            continue;
        };
        for (route, n) in parse_requests(&text) {
            *total.entry(route).or_default() += n;
        }
    }
    total
}

/// `floe_node_requests_total{method="…",route="…",status="…"} N` lines → (route, N).
fn parse_requests(metrics: &str) -> Vec<(String, u64)> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("floe_node_requests_total{")?;
            let route = rest.split("route=\"").nth(1)?.split('"').next()?;
            let n = rest.rsplit(' ').next()?.trim().parse().ok()?;
            Some((route.to_string(), n))
        })
        .collect()
}

/// (bytes, slivers migrated, blobs recovered), summed over the running nodes.
fn totals(bed: &Testbed) -> (u64, u64, u64) {
    (0..bed.node_count())
        .filter_map(|i| bed.node(i))
        .map(|n| n.migration_stats())
        .fold((0, 0, 0), |acc, m| {
            (
                acc.0 + m.bytes_migrated,
                acc.1 + m.slivers_migrated,
                acc.2 + m.blobs_recovered,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_split_the_total() {
        assert_eq!(blob_sizes(3 << 20, 1 << 20), vec![1 << 20; 3]);
        assert_eq!(blob_sizes(2500, 1000), vec![1000, 1000, 500]);
        assert_eq!(blob_sizes(500, 1000), vec![500]);
    }

    #[test]
    fn ideal_bytes_are_the_moved_shards_share() {
        // n = 100: p = 34, s = 67; a 1 MiB blob has 462-byte symbols (⌈2^20 / 2278⌉, even).
        let config = EncodingConfig::new(100).unwrap();
        let per = pair_bytes_per_shard(&config, &[1 << 20, 1 << 20]).unwrap();
        assert_eq!(per, 2 * (34 + 67) * 462);
        // Every shard's pair summed is the whole encoded sliver data: n × per shard.
        let sym = u64::from(config.symbol_size(1 << 20).unwrap());
        assert_eq!(100 * per, 2 * 100 * (34 + 67) * sym);
    }

    #[test]
    fn moved_shards_count_owner_changes() {
        let before: BTreeMap<u16, u8> = [(0, 1), (1, 1), (2, 2), (3, 2)].into();
        let after: BTreeMap<u16, u8> = [(0, 1), (1, 3), (2, 2), (3, 3)].into();
        assert_eq!(moved_shards(&before, &after), 2);
        assert_eq!(moved_shards(&before, &before), 0);
    }

    #[test]
    fn request_counts_are_parsed() {
        let text = "# TYPE floe_node_requests_total counter\n\
            floe_node_requests_total{method=\"POST\",route=\"/v1/migrate/sync_shard\",status=\"200\"} 7\n\
            floe_node_request_bytes_total{method=\"POST\",route=\"/v1/migrate/sync_shard\",status=\"200\"} 900\n\
            floe_node_requests_total{method=\"GET\",route=\"/v1/blobs/{blob_id}/decodingSymbols\",status=\"200\"} 3\n";
        assert_eq!(
            parse_requests(text),
            vec![
                ("/v1/migrate/sync_shard".to_string(), 7),
                ("/v1/blobs/{blob_id}/decodingSymbols".to_string(), 3)
            ]
        );
    }

    #[test]
    fn blob_data_is_seeded_and_distinct() {
        assert_eq!(blob_data(1, 0, 100), blob_data(1, 0, 100));
        assert_ne!(blob_data(1, 0, 100), blob_data(1, 1, 100));
        assert_ne!(blob_data(1, 0, 100), blob_data(2, 0, 100));
        assert_eq!(blob_data(1, 0, 13).len(), 13);
    }
}
