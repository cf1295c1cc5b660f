//! `floe node keygen | run | register | deregister | set-weight` (membership in
//! `node_membership`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use floe_crypto::ProtocolKeyPair;
use floe_ledger::AccountKey;

use floe_node::config::NodeKeysFile;

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Create a node key file (BLS protocol key + Ed25519 operator account). Prints the public
    /// key, the owner and a proof of possession for epoch 0, for a genesis `--committee` file;
    /// `floe node register` signs a fresh proof for the ledger's current epoch itself.
    Keygen(KeygenArgs),
    /// Run a storage node.
    Run(RunArgs),
    /// Register the node of a key file on the ledger; it joins the committee at an epoch change.
    Register(crate::node_membership::RegisterArgs),
    /// Deregister the node: it leaves the committee at an epoch change.
    Deregister(crate::node_membership::DeregisterArgs),
    /// Change the node's weight (its share of the shards), effective at an epoch change.
    SetWeight(crate::node_membership::SetWeightArgs),
    /// Register the network (TLS) key of the key file for the node, effective at once (restart
    /// the node with that key file right after).
    SetNetworkKey(crate::node_membership::SetNetworkKeyArgs),
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Output key file.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "node")]
    name: String,
    /// The node's public `host:port`.
    #[arg(long, default_value = "127.0.0.1:9185")]
    address: String,
    /// Add a network (TLS) key to the existing key file `--out` instead of writing a new one
    /// (for key files made before nodes had network keys).
    #[arg(long)]
    network_key_only: bool,
}

#[derive(Args)]
pub struct RunArgs {
    /// The node's TOML configuration (see crates/floe-node/node.example.toml).
    #[arg(long)]
    config: PathBuf,
}

fn random_seed() -> Result<[u8; 32]> {
    let mut s = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    std::io::Read::read_exact(&mut f, &mut s)?;
    Ok(s)
}

pub fn run(cmd: NodeCommand) -> Result<()> {
    match cmd {
        NodeCommand::Register(a) => crate::node_membership::register(a),
        NodeCommand::Deregister(a) => crate::node_membership::deregister(a),
        NodeCommand::SetWeight(a) => crate::node_membership::set_weight(a),
        NodeCommand::SetNetworkKey(a) => crate::node_membership::set_network_key(a),
        NodeCommand::Keygen(a) if a.network_key_only => add_network_key(&a.out),
        NodeCommand::Keygen(a) => keygen(a),
        NodeCommand::Run(a) => {
            let config = floe_node::NodeConfig::load(&a.config)?;
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listen = config.listen_address.clone();
                let node = floe_node::start(config).await?;
                floe_node::workers::start(
                    &node,
                    floe_node::workers::WorkerOptions::from_config(&node),
                );
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                println!(
                    "floe node {} listening on http://{}",
                    node.name(),
                    listener.local_addr()?
                );
                floe_node::api::serve(node, listener, crate::ledger_cmds::shutdown_signal())
                    .await?;
                println!("floe node stopped");
                Ok(())
            })
        }
    }
}

/// What `floe node keygen` prints (one line of JSON): the public halves of the keys it made,
/// to put in a genesis committee file. With `--network-key-only`, only the network key.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct KeysMade<'a> {
    key_file: &'a std::path::Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol_public_key: Option<String>,
    network_public_key: floe_crypto::NetworkPublicKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proof_of_possession: Option<floe_crypto::ProofOfPossession>,
}

/// `floe node keygen --network-key-only --out FILE`: give an older key file a network key.
fn add_network_key(path: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    let mut file: NodeKeysFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a node key file", path.display()))?;
    if file.network_key.is_some() {
        anyhow::bail!(
            "{} already has a network key; refusing to replace it (clients pin the registered one)",
            path.display()
        );
    }
    let network = floe_tls::NetworkKeyPair::generate()?;
    file.network_key = Some(network.to_pem());
    std::fs::write(path, serde_json::to_string_pretty(&file)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let made = KeysMade {
        key_file: path,
        protocol_public_key: None,
        network_public_key: network.public_key(),
        owner: None,
        proof_of_possession: None,
    };
    println!("{}", serde_json::to_string(&made)?);
    Ok(())
}

/// `floe node keygen`: a new key file (protocol, network and account keys).
fn keygen(a: KeygenArgs) -> Result<()> {
    if a.out.exists() {
        anyhow::bail!(
            "{} exists; refusing to overwrite a key file",
            a.out.display()
        );
    }
    let bls = ProtocolKeyPair::from_seed(&random_seed()?);
    let account = AccountKey::from_seed(&random_seed()?);
    let network = floe_tls::NetworkKeyPair::generate()?;
    let keys = NodeKeysFile {
        name: a.name,
        network_address: a.address,
        protocol_key: bls.to_tagged_base64(),
        account_seed: hex::encode(account.seed()),
        network_key: Some(network.to_pem()),
    };
    std::fs::write(&a.out, serde_json::to_string_pretty(&keys)?)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    let made = KeysMade {
        key_file: &a.out,
        protocol_public_key: Some(bls.public_key().to_base64()),
        network_public_key: network.public_key(),
        owner: Some(account.address().to_string()),
        // For a genesis committee file: epoch 0. Registration re-signs.
        proof_of_possession: Some(floe_crypto::ProofOfPossession::create(
            &bls,
            0,
            &account.address().0,
        )),
    };
    println!("{}", serde_json::to_string(&made)?);
    Ok(())
}
