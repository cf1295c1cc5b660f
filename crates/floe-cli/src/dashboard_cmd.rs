//! `floe dashboard`: the web dashboard on its own, read-only, for the network of the client
//! config (the daemon serves the same pages at `/dashboard`, with uploads where it stores).

use std::net::SocketAddr;

use anyhow::{Context, Result};
use floe_dashboard::{DashboardOptions, MetricsSource};

use crate::cli_config::{self, CommonArgs};

#[derive(clap::Args)]
pub struct DashboardArgs {
    /// Address to serve the dashboard on.
    #[arg(long, default_value = "127.0.0.1:31416")]
    pub listen: SocketAddr,
    /// A daemon whose `/metrics` the load charts show (default: the config's `daemon_url`).
    #[arg(long)]
    pub daemon_url: Option<String>,
    /// Ledger servers to show (replicas); default: the config's ledger.
    #[arg(long = "ledger-server", num_args = 1..)]
    pub ledger_servers: Vec<String>,
    /// Seconds between samples while the page is open.
    #[arg(long, default_value_t = 2)]
    pub interval: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Serve until Ctrl-C or SIGTERM.
pub fn run(a: DashboardArgs) -> Result<()> {
    let loaded = cli_config::load(&a.common)?;
    let daemon = a.daemon_url.or(loaded.daemon_url);
    // Read-only: no wallet, no uploads.
    let client = floe_client::Client::new(loaded.client, None)?;
    let options = DashboardOptions {
        metrics: daemon.as_ref().map_or(MetricsSource::None, |d| {
            MetricsSource::Url(format!("{}/metrics", d.trim_end_matches('/')))
        }),
        ledger_urls: a.ledger_servers,
        sample_interval: std::time::Duration::from_secs(a.interval.max(1)),
        ..DashboardOptions::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = floe_dashboard::router(client, options).route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::temporary("/dashboard") }),
        );
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("cannot listen on {} (use --listen)", a.listen))?;
        eprintln!(
            "floe dashboard on http://{}/dashboard (read-only)",
            a.listen
        );
        floe_http::serve(
            listener,
            app,
            floe_http::ServeLimits::default(),
            crate::ledger_cmds::shutdown_signal(),
        )
        .await?;
        Ok(())
    })
}
