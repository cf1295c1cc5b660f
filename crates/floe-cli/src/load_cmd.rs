//! `floe load`: the flags of the load generator (in `floe-bench`) plus the client config, and
//! the client they make.

use anyhow::Result;
use floe_bench::load::LoadArgs;

use crate::cli_config::{self, CommonArgs};

#[derive(clap::Args)]
pub struct LoadCmd {
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(a: LoadCmd) -> Result<()> {
    a.load.check()?;
    let loaded = cli_config::load(&a.common)?;
    // A verification only reads, so it needs (and creates) no wallet.
    let key = if a.load.verifying() {
        None
    } else {
        Some(cli_config::load_or_create_wallet(
            &loaded.wallet_path,
            true,
        )?)
    };
    let client = floe_client::Client::new(loaded.client, key)?;
    floe_bench::load::run(a.load, client)
}
