//! `floe ledger init | run | replay`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use floe_crypto::ProtocolKeyPair;
use floe_ledger::{AccountKey, GenesisConfig, GenesisNode, LedgerState, LogEntry};
use floe_ledger_etcd::EtcdLogConfig;
use floe_ledger_service::{Ledger, ReplicaOptions, SystemClock};
use floe_node::config::NodeKeysFile;

use floe_bench::units::parse_size;

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Write a genesis file from a committee description (or generate a local dev committee).
    Init(InitArgs),
    /// Run the ledger server.
    Run(RunArgs),
    /// Replay a ledger's log offline and print its digest and state hash.
    Replay(ReplayArgs),
}

#[derive(Args)]
pub struct InitArgs {
    /// JSON file with the committee: a list of nodes (name, networkAddress, protocolKey,
    /// proofOfPossession, owner, capacity, weight).
    #[arg(long, conflicts_with = "generate")]
    committee: Option<PathBuf>,
    /// Instead of --committee, generate this many nodes with fresh keys (for local networks).
    #[arg(long)]
    generate: Option<usize>,
    /// Where generated node keys go (one JSON file per node); with --generate.
    #[arg(long, default_value = "keys")]
    keys_dir: PathBuf,
    /// First port of generated nodes (node i listens on base + i).
    #[arg(long, default_value_t = 9185)]
    base_port: u16,
    /// Capacity of each generated node, e.g. 1TiB.
    #[arg(long, default_value = "1024GiB", value_parser = parse_size)]
    capacity: u64,
    #[arg(long, default_value_t = 1000)]
    n_shards: u16,
    /// Epoch length, e.g. 10s, 5m, 1h, 14d.
    #[arg(long, default_value = "1h", value_parser = parse_duration_ms)]
    epoch_duration: u64,
    /// Genesis time in ms since the Unix epoch (default: now).
    #[arg(long)]
    genesis_time_ms: Option<u64>,
    #[arg(long, default_value_t = floe_ledger::types::DEFAULT_MAX_EPOCHS_AHEAD)]
    max_epochs_ahead: u32,
    /// Output genesis file.
    #[arg(long, default_value = "genesis.json")]
    out: PathBuf,
}

#[derive(Args)]
pub struct RunArgs {
    #[arg(long)]
    genesis: PathBuf,
    /// Where the log lives (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: String,
    /// Run as a replica of a replicated log on this etcd cluster (client URLs, comma-separated)
    /// instead of the embedded file log. The data directory then holds snapshots only.
    #[arg(long, value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// Key prefix of this network's log in etcd (default: `/floe/<16 hex digits of the
    /// genesis>/`, so networks never share a log).
    #[arg(long)]
    etcd_prefix: Option<String>,
    /// Snapshot the state every this many log entries (and at each epoch change), so that a
    /// restart applies only the entries after the newest snapshot. 0: never.
    #[arg(long, default_value_t = 1000)]
    snapshot_every: u64,
    /// Keep every log record. By default the embedded log deletes its sealed segments (8 MiB
    /// each) below the older of the two snapshots kept, and a replica deletes etcd records
    /// below the previous checkpoint and compacts etcd's history.
    #[arg(long)]
    no_prune: bool,
    /// Embedded log: seal the file being appended to once it holds this many bytes, so that
    /// pruning can delete whole files.
    #[arg(long, default_value_t = floe_log::format::DEFAULT_SEGMENT_BYTES)]
    log_segment_bytes: u64,
    /// Replicas: URLs of other replicas, asked for a snapshot when this one must bootstrap.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
}

#[derive(Args)]
pub struct ReplayArgs {
    #[arg(long)]
    genesis: PathBuf,
    #[arg(long)]
    data_dir: PathBuf,
}

/// Parse `500ms`, `10s`, `5m`, `1h`, `14d` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?}: expected e.g. 10s, 5m, 1h"))?;
    let mult = match unit {
        "ms" => 1,
        "s" | "" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown duration unit {other:?}: use ms, s, m, h or d"
            ));
        }
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("duration {s:?} must be positive and fit in 64 bits"))
}

fn now_ms() -> u64 {
    floe_ledger_service::Clock::now_ms(&SystemClock)
}

pub fn run(cmd: LedgerCommand) -> Result<()> {
    match cmd {
        LedgerCommand::Init(a) => init(a),
        LedgerCommand::Run(a) => run_server(a),
        LedgerCommand::Replay(a) => replay(a),
    }
}

fn init(args: InitArgs) -> Result<()> {
    let nodes: Vec<GenesisNode> = match (&args.committee, args.generate) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a committee description (a JSON list of nodes)",
                    path.display()
                )
            })?
        }
        (None, Some(n)) if n > 0 => generate_nodes(&args, n)?,
        _ => bail!("give either --committee FILE or --generate N (N > 0)"),
    };
    let config = GenesisConfig {
        max_epochs_ahead: args.max_epochs_ahead,
        ..GenesisConfig::new(
            args.n_shards,
            args.epoch_duration,
            args.genesis_time_ms.unwrap_or_else(now_ms),
            nodes,
        )
    };
    // Check it the way the ledger will.
    let state =
        LedgerState::genesis(&config).map_err(|e| anyhow::anyhow!("invalid genesis: {e}"))?;
    std::fs::write(&args.out, serde_json::to_string_pretty(&config)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "genesis written to {}: {} nodes, {} shards, epochs of {} ms",
        args.out.display(),
        state.committee().members.len(),
        config.n_shards,
        config.epoch_duration_ms
    );
    Ok(())
}

fn generate_nodes(args: &InitArgs, n: usize) -> Result<Vec<GenesisNode>> {
    std::fs::create_dir_all(&args.keys_dir)
        .with_context(|| format!("cannot create {}", args.keys_dir.display()))?;
    let mut seed_source = std::fs::File::open("/dev/urandom")
        .context("cannot open /dev/urandom for key generation")?;
    let mut fresh = || -> Result<[u8; 32]> {
        let mut s = [0u8; 32];
        std::io::Read::read_exact(&mut seed_source, &mut s)?;
        Ok(s)
    };
    let mut nodes = Vec::new();
    for i in 0..n {
        let bls = ProtocolKeyPair::from_seed(&fresh()?);
        let account = AccountKey::from_seed(&fresh()?);
        let name = format!("node-{i}");
        let network_address = format!("127.0.0.1:{}", u32::from(args.base_port) + i as u32);
        let network = floe_tls::NetworkKeyPair::generate()?;
        let keys = NodeKeysFile {
            name: name.clone(),
            network_address: network_address.clone(),
            protocol_key: bls.to_tagged_base64(),
            account_seed: hex::encode(account.seed()),
            network_key: Some(network.to_pem()),
        };
        let path = args.keys_dir.join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&keys)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        nodes.push(
            GenesisNode::new(name, network_address, &bls, &account, args.capacity)
                .with_network_key(Some(network.public_key())),
        );
    }
    Ok(nodes)
}

fn read_genesis(path: &PathBuf) -> Result<GenesisConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read genesis {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a genesis file (make one with `floe ledger init`)",
            path.display()
        )
    })
}

fn run_server(args: RunArgs) -> Result<()> {
    let genesis = read_genesis(&args.genesis)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
        let ledger = if args.etcd_endpoints.is_empty() {
            let options = floe_ledger_service::LocalOptions {
                snapshot_every: args.snapshot_every,
                prune: !args.no_prune,
                log: floe_log::LogOptions {
                    segment_bytes: args.log_segment_bytes,
                    ..Default::default()
                },
            };
            Ledger::open_local(&args.data_dir, genesis, Arc::new(SystemClock), options)
                .context("cannot open the ledger")?
        } else {
            let options = replica_options(&args, &genesis)?;
            println!(
                "floe ledger replica: etcd {} (prefix {})",
                args.etcd_endpoints.join(","),
                options.etcd.prefix
            );
            Ledger::open_replicated(&args.data_dir, genesis, Arc::new(SystemClock), options)
                .await
                .context("cannot open the ledger replica")?
        };
        ledger.spawn_epoch_clock(std::time::Duration::from_millis(100));
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!(
            "floe ledger listening on http://{addr} (data in {})",
            args.data_dir.display()
        );
        floe_ledger_service::serve(ledger, listener, shutdown_signal()).await?;
        println!("floe ledger stopped");
        Ok(())
    })
}

fn replica_options(args: &RunArgs, genesis: &GenesisConfig) -> Result<ReplicaOptions> {
    let prefix = match &args.etcd_prefix {
        Some(p) => p.clone(),
        None => {
            let state = LedgerState::genesis(genesis)
                .map_err(|e| anyhow::anyhow!("invalid genesis: {e}"))?;
            let seed = floe_ledger_service::replica::chain_seed(&state);
            format!("/floe/{}/", &hex::encode(seed)[..16])
        }
    };
    Ok(ReplicaOptions {
        etcd: EtcdLogConfig::new(args.etcd_endpoints.clone(), prefix),
        snapshot_every: args.snapshot_every,
        prune: !args.no_prune,
        peers: args.peers.clone(),
    })
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

fn replay(args: ReplayArgs) -> Result<()> {
    let genesis = read_genesis(&args.genesis)?;
    let (log, replay) =
        floe_log::FileLog::open_from(&args.data_dir, floe_log::LogOptions::default(), 0)
            .context("cannot open the log")?;
    drop(log);
    // A pruned log starts at a snapshot: the oldest one it continues, to replay the most.
    let (mut state, from_snapshot) = if replay.first == 0 {
        let state =
            LedgerState::genesis(&genesis).map_err(|e| anyhow::anyhow!("invalid genesis: {e}"))?;
        (state, None)
    } else {
        let snap = floe_ledger_service::snapshot::load_oldest_from(&args.data_dir, replay.first)?
            .with_context(|| {
            format!(
                "the log before entry {} was pruned and no snapshot covers it (run the \
                     ledger with --no-prune to keep every entry)",
                replay.first
            )
        })?;
        anyhow::ensure!(
            snap.seq <= replay.records,
            "the oldest snapshot ({}) is past the log's end ({})",
            snap.seq,
            replay.records
        );
        (snap.state, Some(snap.seq))
    };
    let start = from_snapshot.unwrap_or(0);
    let entries = &replay.payloads[(start - replay.first) as usize..];
    for (j, bytes) in entries.iter().enumerate() {
        let i = start + j as u64;
        let entry = LogEntry::from_bytes(bytes).with_context(|| format!("entry {i} is corrupt"))?;
        state
            .apply(&entry)
            .map_err(|e| anyhow::anyhow!("entry {i} does not apply: {e}"))?;
    }
    let replayed = Replayed {
        entries: replay.records,
        from_snapshot,
        epoch: state.epoch(),
        events: state.event_count(),
        digest: hex::encode(state.digest()),
        state_hash: hex::encode(state.state_hash()),
    };
    println!("{}", serde_json::to_string(&replayed)?);
    Ok(())
}

/// What `floe ledger replay` prints (one line of JSON): where the replay ended, to compare with
/// a running ledger's `/v1/health`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Replayed {
    entries: u64,
    /// Where the replay started when the log before it was pruned: a snapshot's position.
    #[serde(skip_serializing_if = "Option::is_none")]
    from_snapshot: Option<u64>,
    epoch: u32,
    events: u64,
    digest: String,
    state_hash: String,
}
