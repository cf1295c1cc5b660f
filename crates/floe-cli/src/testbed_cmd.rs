//! `floe testbed`: a whole network on this machine, started (or resumed) by one command.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use floe_testbed::{Testbed, TestbedOptions};

use crate::cli_config::ConfigFile;

#[derive(clap::Args)]
pub struct TestbedArgs {
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
}

pub fn run(a: TestbedArgs) -> Result<()> {
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
        let options = TestbedOptions {
            nodes: a.nodes,
            n_shards: a.n_shards,
            epoch_duration_ms: a.epoch_duration.as_millis() as u64,
            base_port: (a.base_port != 0).then_some(a.base_port),
            seed: a.seed,
            ..TestbedOptions::default()
        };
        let bed = Testbed::start(&a.data_dir, options)
            .await
            .with_context(|| format!("cannot start the testbed in {}", a.data_dir.display()))?;
        let config_path = bed.dir().join("floe.yaml");
        if !config_path.exists() {
            let config = ConfigFile {
                ledger_url: bed.ledger_url(),
                wallet: "wallet.json".into(),
                daemon_url: None,
                communication: Default::default(),
            };
            std::fs::write(&config_path, serde_yaml_ng::to_string(&config)?)
                .with_context(|| format!("cannot write {}", config_path.display()))?;
        }
        let state = bed.state();
        println!(
            "Floe testbed {}: {} storage nodes, {} shards, epochs of {}.",
            if resuming { "resumed" } else { "started" },
            bed.node_count(),
            state.n_shards,
            crate::output::duration(state.epoch_duration_ms)
        );
        println!("  ledger   {}", bed.ledger_url());
        println!(
            "  nodes    {} … {}",
            bed.node_address(0),
            bed.node_address(bed.node_count() - 1)
        );
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
        println!("Press Ctrl-C to stop; run `floe testbed` again to resume this network.");
        println!("ready");
        crate::ledger_cmds::shutdown_signal().await;
        println!("stopping…");
        bed.shutdown().await;
        println!("stopped");
        Ok(())
    })
}
