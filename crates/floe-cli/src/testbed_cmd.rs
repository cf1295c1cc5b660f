//! `floe testbed`: a whole network on this machine, started (or resumed) by one command. While
//! it runs, `floe testbed add-node | remove-node | set-weight | nodes` change its membership
//! from other terminals (`testbed_remote`, through the control API in `floe_testbed::control`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use floe_testbed::{Testbed, TestbedOptions};

use crate::cli_config::ConfigFile;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TestbedArgs {
    /// Without a verb: start (or resume) the testbed and run it until Ctrl-C.
    #[command(subcommand)]
    pub verb: Option<crate::testbed_remote::TestbedVerb>,
    /// Where the network keeps its keys, logs and data; running again resumes it.
    #[arg(long, default_value = "floe-testbed")]
    pub data_dir: PathBuf,
    /// Storage nodes (new networks only).
    #[arg(long, default_value_t = 10)]
    pub nodes: usize,
    /// Shards (new networks only).
    #[arg(long, default_value_t = 1000)]
    pub n_shards: u16,
    /// Epoch length, e.g. `1h`, `10m`, `30s` (new networks only).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub epoch_duration: Duration,
    /// The ledger listens on this port, node i on port + 1 + i; 0 picks free ports.
    #[arg(long, default_value_t = 9100)]
    pub base_port: u16,
    /// Seed of the nodes' keys (new networks only).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the daemon (aggregator + publisher) listens; default 127.0.0.1:31415, or a free
    /// port with `--base-port 0`.
    #[arg(long)]
    pub daemon_address: Option<std::net::SocketAddr>,
    /// Do not start a daemon.
    #[arg(long)]
    pub no_daemon: bool,
    /// Nodes serve plain HTTP and register no network key (by default each serves HTTPS with
    /// a certificate from its network key; applies when the testbed is created).
    #[arg(long)]
    pub disable_tls: bool,
    /// Run the control plane replicated: 3 etcd members (the `etcd` binary from PATH) and
    /// this many `floe ledger run --etcd-endpoints …` replicas, each a separate process.
    /// 0: the testbed's own embedded ledger.
    #[arg(long, default_value_t = 0)]
    pub ledger_replicas: usize,
    #[command(flatten)]
    pub daemon_limits: DaemonLimits,
}

/// The testbed daemon's limits, with the daemon's own flag names.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Daemon limits")]
pub struct DaemonLimits {
    /// Largest `PUT /v1/blobs` body, in KiB (a stand-alone `floe daemon` defaults to 10240,
    /// as Walrus's does; the testbed accepts any blob the network takes).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_size: u64,
    /// Largest blob (or byte range) the aggregator returns, in bytes.
    #[arg(long)]
    pub max_blob_size: Option<u64>,
    /// Stores running at once.
    #[arg(long, default_value_t = 8)]
    pub publisher_max_concurrent_requests: usize,
    /// Stores waiting for a slot; beyond it, 429.
    #[arg(long, default_value_t = 8)]
    pub publisher_max_buffer_size: usize,
    /// Reads running at once.
    #[arg(long, default_value_t = 256)]
    pub aggregator_max_concurrent_requests: usize,
    /// Reads waiting for a slot; beyond it, 429.
    #[arg(long, default_value_t = 2048)]
    pub aggregator_max_buffer_size: usize,
}

pub fn run(a: TestbedArgs) -> Result<()> {
    if let Some(verb) = a.verb {
        return crate::testbed_remote::run(verb);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let resuming = a.data_dir.join("testbed.json").exists();
        let mut options = TestbedOptions {
            nodes: a.nodes,
            n_shards: a.n_shards,
            epoch_duration_ms: a.epoch_duration.as_millis() as u64,
            base_port: (a.base_port != 0).then_some(a.base_port),
            seed: a.seed,
            disable_tls: a.disable_tls,
            ..TestbedOptions::default()
        };
        // The replicated control plane: its files first (the genesis), then its processes.
        let control_plane = if a.ledger_replicas > 0 {
            Testbed::init(&a.data_dir, &options)
                .await
                .with_context(|| format!("cannot create the testbed in {}", a.data_dir.display()))?;
            let plane =
                crate::testbed_replicas::ControlPlane::start(&a.data_dir, a.ledger_replicas)
                    .await?;
            options.external_ledger = plane.urls().to_vec();
            Some(plane)
        } else {
            None
        };
        let bed = Testbed::start(&a.data_dir, options)
            .await
            .with_context(|| format!("cannot start the testbed in {}", a.data_dir.display()))?;
        // The daemon, with its own wallet (so it never races the user's sequence numbers).
        let (daemon, daemon_url) = if a.no_daemon {
            (None, None)
        } else {
            let address = a.daemon_address.unwrap_or_else(|| {
                if a.base_port == 0 {
                    ([127, 0, 0, 1], 0).into()
                } else {
                    ([127, 0, 0, 1], 31415).into()
                }
            });
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} for the daemon (use --daemon-address or --no-daemon)"))?;
            let url = format!("http://{}", listener.local_addr()?);
            let wallet = crate::cli_config::load_or_create_wallet(
                &bed.dir().join("daemon-wallet.json"),
                true,
            )?;
            let client = floe_client::Client::new(
                floe_client::ClientConfig {
                    ledger_url: bed.ledger_url(),
                    ledger_urls: replicated_urls(&bed),
                    ..Default::default()
                },
                Some(wallet),
            )?;
            let limits = &a.daemon_limits;
            let options = floe_daemon::DaemonOptions {
                bind_address: listener.local_addr()?,
                enable_delete: true,
                max_body_size: limits.max_body_size,
                max_blob_size: limits.max_blob_size,
                publisher_max_concurrent_requests: limits.publisher_max_concurrent_requests,
                publisher_max_buffer_size: limits.publisher_max_buffer_size,
                aggregator_max_concurrent_requests: limits.aggregator_max_concurrent_requests,
                aggregator_max_buffer_size: limits.aggregator_max_buffer_size,
                ..Default::default()
            };
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.await;
                };
                if let Err(e) = floe_daemon::serve_on(listener, client, options, stop).await {
                    eprintln!("error: the testbed daemon failed: {e}");
                }
            });
            (Some((tx, task)), Some(url))
        };
        let config_path = bed.dir().join("floe.yaml");
        let config = match crate::cli_config::read_config_file(&config_path) {
            Ok(mut c) if config_path.exists() => {
                c.ledger_url = bed.ledger_url();
                c.ledger_urls = replicated_urls(&bed);
                c.daemon_url = daemon_url.clone();
                c
            }
            _ => ConfigFile {
                ledger_url: bed.ledger_url(),
                ledger_urls: replicated_urls(&bed),
                wallet: "wallet.json".into(),
                daemon_url: daemon_url.clone(),
                communication: Default::default(),
                quilt: Default::default(),
            },
        };
        std::fs::write(&config_path, serde_yaml_ng::to_string(&config)?)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        let state = bed.state();
        println!(
            "Floe testbed {}: {} storage nodes, {} shards, epochs of {}.",
            if resuming { "resumed" } else { "started" },
            bed.node_count() - state.removed.len(),
            state.n_shards,
            crate::output::duration(state.epoch_duration_ms)
        );
        if control_plane.is_some() {
            println!(
                "  ledger   {} replicas over 3 etcd members: {}",
                bed.ledger_urls().len(),
                bed.ledger_urls().join(" ")
            );
        } else {
            println!("  ledger   {}", bed.ledger_url());
        }
        println!(
            "  nodes    {} … {}",
            bed.node_address(0),
            bed.node_address(bed.node_count() - 1)
        );
        if let Some(url) = &daemon_url {
            println!("  daemon   {url}   (aggregator + publisher)");
            println!("  dashboard {url}/dashboard");
        }
        println!("  data     {}", bed.dir().display());
        println!("  config   {}", config_path.display());
        println!();
        println!(
            "From another terminal in this directory (or with --config {}):",
            config_path.display()
        );
        println!("  floe store FILE --epochs 2");
        println!("  floe read BLOB_ID --out FILE");
        println!("  floe blob-status --blob-id BLOB_ID");
        if let Some(url) = &daemon_url {
            println!("  curl -X PUT --data-binary @FILE '{url}/v1/blobs?epochs=2'");
            println!("  curl {url}/v1/blobs/BLOB_ID");
        }
        let data_flag = if a.data_dir == Path::new("floe-testbed") {
            String::new()
        } else {
            format!(" --data-dir {}", a.data_dir.display())
        };
        println!("  floe testbed nodes{data_flag}");
        if control_plane.is_some() {
            println!("  floe testbed ledger{data_flag}   (replicas and etcd members)");
        }
        println!("  floe testbed add-node{data_flag}   (also remove-node I, set-weight I W)");
        let dir = bed.dir().to_path_buf();
        let bed = Arc::new(tokio::sync::Mutex::new(Some(bed)));
        let report: floe_testbed::control::Report = Arc::new(|line: &str| println!("{line}"));
        let control = floe_testbed::control::serve(Arc::clone(&bed), &dir, report).await?;
        println!(
            "Membership control API: {} (token in {}).",
            control.url,
            floe_testbed::control::control_path(&dir).display()
        );
        println!("Press Ctrl-C to stop; run `floe testbed` again to resume this network.");
        println!("ready");
        crate::ledger_cmds::shutdown_signal().await;
        println!("stopping…");
        control.stop().await;
        if let Some((tx, task)) = daemon {
            let _ = tx.send(());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        }
        // Waits for a membership change in flight; removal watchers see `None` and end.
        let bed = bed.lock().await.take();
        if let Some(bed) = bed {
            bed.shutdown().await;
        }
        drop(control_plane);
        println!("stopped");
        Ok(())
    })
}

/// The replica URLs to put in configs (empty when the testbed runs its own ledger).
fn replicated_urls(bed: &Testbed) -> Vec<String> {
    let urls = bed.ledger_urls();
    if urls.len() > 1 || urls.first() != Some(&bed.ledger_url()) {
        urls
    } else {
        Vec::new()
    }
}
