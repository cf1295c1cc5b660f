//! `floe daemon` / `aggregator` / `publisher`: Walrus's HTTP API for reading and storing blobs.

use anyhow::Result;
use floe_daemon::{DaemonOptions, Mode};

use crate::cli_config::{self, CommonArgs};

#[derive(clap::Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub daemon: DaemonOptions,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Serve in `mode` (overriding `--mode`) until Ctrl-C or SIGTERM.
pub fn run(mut a: DaemonArgs, mode: Option<Mode>) -> Result<()> {
    if let Some(m) = mode {
        a.daemon.mode = m;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let loaded = cli_config::load(&a.common)?;
    // Only a publisher signs ledger transactions.
    let wallet = if a.daemon.mode.writes() {
        Some(cli_config::load_or_create_wallet(
            &loaded.wallet_path,
            false,
        )?)
    } else {
        None
    };
    let client = floe_client::Client::new(loaded.client, wallet)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        eprintln!(
            "floe {} listening on http://{} (ledger {})",
            a.daemon.mode.name(),
            a.daemon.bind_address,
            client.config().ledger_urls().join(",")
        );
        floe_daemon::serve(client, a.daemon, crate::ledger_cmds::shutdown_signal()).await?;
        eprintln!("floe daemon stopped");
        Ok(())
    })
}
