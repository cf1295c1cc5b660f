//! `floe testbed add-node | remove-node | set-weight | nodes`: change the membership of a
//! running `floe testbed` through its control API (`floe_testbed::control`), found via
//! `<data-dir>/control.json`.

use std::path::PathBuf;

use anyhow::Result;
use floe_testbed::control::{ControlClient, NodeRow};

use crate::node_membership::when;

#[derive(clap::Subcommand)]
pub enum TestbedVerb {
    /// Add a storage node to the running testbed: it starts now and joins the committee at an
    /// epoch change.
    AddNode(AddNodeArgs),
    /// Remove node I: deregister it now; the testbed stops it once it has handed over its shards.
    RemoveNode(RemoveNodeArgs),
    /// Set node I's weight (its share of the shards), effective at an epoch change.
    SetWeight(SetWeightArgs),
    /// List the testbed's nodes with their shards now and in the next committee.
    Nodes(NodesArgs),
    /// List the replicated control plane: ledger replicas (address, pid, applied entries,
    /// state hash, snapshot) and etcd members (`floe testbed --ledger-replicas N`).
    Ledger(NodesArgs),
}

/// Which testbed, and the output form.
#[derive(clap::Args)]
pub struct Target {
    /// The running testbed's directory (as given to `floe testbed --data-dir`).
    #[arg(long, default_value = "floe-testbed")]
    pub data_dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct AddNodeArgs {
    /// The new node's weight.
    #[arg(long, default_value_t = 1)]
    pub weight: u64,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Args)]
pub struct RemoveNodeArgs {
    /// The node's index (as `floe testbed nodes` lists).
    pub index: usize,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Args)]
pub struct SetWeightArgs {
    /// The node's index (as `floe testbed nodes` lists).
    pub index: usize,
    /// The new weight (at least 1).
    pub weight: u64,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Args)]
pub struct NodesArgs {
    #[command(flatten)]
    pub target: Target,
}

pub fn run(verb: TestbedVerb) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match verb {
            TestbedVerb::AddNode(a) => {
                let added = ControlClient::open(&a.target.data_dir)?
                    .add_node(a.weight)
                    .await?;
                if a.target.json {
                    return print(&added);
                }
                println!(
                    "Added node {} at {} with weight {}; it is running.",
                    added.index, added.address, added.weight
                );
                println!("It joins the committee {}.", when(&added.effect));
            }
            TestbedVerb::RemoveNode(a) => {
                let removed = ControlClient::open(&a.target.data_dir)?
                    .remove_node(a.index)
                    .await?;
                if a.target.json {
                    return print(&removed);
                }
                println!("Deregistered node {}.", a.index);
                if removed.holds_shards() {
                    println!(
                        "It leaves the committee {}; the testbed stops it once the new owners \
                         have its shards.",
                        when(&removed.effect)
                    );
                } else {
                    println!("It holds no shards; the testbed stops it shortly.");
                }
            }
            TestbedVerb::SetWeight(a) => {
                let changed = ControlClient::open(&a.target.data_dir)?
                    .set_weight(a.index, a.weight)
                    .await?;
                if a.target.json {
                    return print(&changed);
                }
                println!(
                    "Set node {}'s weight to {}; it applies {}.",
                    a.index,
                    a.weight,
                    when(&changed.effect)
                );
            }
            TestbedVerb::Ledger(a) => {
                return crate::testbed_replicas::list(&a.target.data_dir, a.target.json).await;
            }
            TestbedVerb::Nodes(a) => {
                let nodes = ControlClient::open(&a.target.data_dir)?.nodes().await?;
                if a.target.json {
                    return print(&nodes);
                }
                print_nodes(&nodes);
            }
        }
        Ok(())
    })
}

fn print(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_nodes(nodes: &[NodeRow]) {
    println!(
        "{:<5} {:<22} {:<9} {:>6} {:>6} {:>5}  NODE ID",
        "NODE", "ADDRESS", "STATE", "WEIGHT", "SHARDS", "NEXT"
    );
    let num = |x: Option<u64>| x.map_or("-".to_string(), |k| k.to_string());
    for n in nodes {
        println!(
            "{:<5} {:<22} {:<9} {:>6} {:>6} {:>5}  {}",
            n.index,
            n.address,
            n.state(),
            num(n.weight),
            n.shards,
            num(n.next_shards.map(|s| s as u64)),
            n.node_id.map_or("-".to_string(), |id| id.to_string())
        );
    }
}
