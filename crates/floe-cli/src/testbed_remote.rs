//! `floe testbed add-node | remove-node | set-weight | nodes`: change the membership of a
//! running `floe testbed` through its control API (`testbed_control`), found via
//! `<data-dir>/control.json`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::node_membership::Effect;
use crate::testbed_control::{CONTROL_VERSION, ControlFile, control_path};

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
                let v = call(
                    &a.target.data_dir,
                    Method::POST,
                    "/v1/nodes",
                    Some(json!({ "weight": a.weight })),
                )
                .await?;
                if a.target.json {
                    return print(&v);
                }
                println!(
                    "Added node {} at {} with weight {}; it is running.",
                    v["index"],
                    str(&v["address"]),
                    v["weight"]
                );
                println!("It joins the committee {}.", when(&v));
            }
            TestbedVerb::RemoveNode(a) => {
                let v = call(
                    &a.target.data_dir,
                    Method::DELETE,
                    &format!("/v1/nodes/{}", a.index),
                    None,
                )
                .await?;
                if a.target.json {
                    return print(&v);
                }
                println!("Deregistered node {}.", a.index);
                if v["inCommittee"] == true || v["nextShards"].as_u64() != Some(0) {
                    println!(
                        "It leaves the committee {}; the testbed stops it once the new owners \
                         have its shards.",
                        when(&v)
                    );
                } else {
                    println!("It holds no shards; the testbed stops it shortly.");
                }
            }
            TestbedVerb::SetWeight(a) => {
                let v = call(
                    &a.target.data_dir,
                    Method::POST,
                    &format!("/v1/nodes/{}/weight", a.index),
                    Some(json!({ "weight": a.weight })),
                )
                .await?;
                if a.target.json {
                    return print(&v);
                }
                println!(
                    "Set node {}'s weight to {}; it applies {}.",
                    a.index,
                    a.weight,
                    when(&v)
                );
            }
            TestbedVerb::Ledger(a) => {
                return crate::testbed_replicas::list(&a.target.data_dir, a.target.json).await;
            }
            TestbedVerb::Nodes(a) => {
                let v = call(&a.target.data_dir, Method::GET, "/v1/nodes", None).await?;
                if a.target.json {
                    return print(&v);
                }
                print_nodes(&v);
            }
        }
        Ok(())
    })
}

fn str(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn when(v: &Value) -> String {
    serde_json::from_value::<Effect>(v.clone())
        .map_or_else(|_| "at an epoch change".to_string(), |e| e.when())
}

fn print(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_nodes(v: &Value) {
    println!(
        "{:<5} {:<22} {:<9} {:>6} {:>6} {:>5}  NODE ID",
        "NODE", "ADDRESS", "STATE", "WEIGHT", "SHARDS", "NEXT"
    );
    for n in v.as_array().into_iter().flatten() {
        let state = match (n["running"] == true, n["removed"] == true) {
            (true, false) => "running",
            (true, true) => "leaving",
            (false, true) => "removed",
            (false, false) => "stopped",
        };
        let num = |x: &Value| x.as_u64().map_or("-".to_string(), |k| k.to_string());
        println!(
            "{:<5} {:<22} {:<9} {:>6} {:>6} {:>5}  {}",
            num(&n["index"]),
            str(&n["address"]),
            state,
            num(&n["weight"]),
            num(&n["shards"]),
            num(&n["nextShards"]),
            n["nodeId"].as_str().unwrap_or("-")
        );
    }
}

fn no_testbed(dir: &Path) -> String {
    format!(
        "no testbed is running in {} (start one with `floe testbed --data-dir {}`)",
        dir.display(),
        dir.display()
    )
}

/// One request to the control API of the testbed in `dir`; the answer's JSON.
async fn call(dir: &Path, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
    let file = control_path(dir);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{}", no_testbed(dir)),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let control: ControlFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a testbed control file", file.display()))?;
    if control.version != CONTROL_VERSION {
        bail!(
            "{} has format version {}; this floe reads version {CONTROL_VERSION}",
            file.display(),
            control.version
        );
    }
    // Adding a node registers it and opens its store: allow time for that.
    let http = floe_tls::http_client(
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(120)),
    )?;
    let mut request = http
        .request(method, format!("{}{path}", control.url))
        .bearer_auth(&control.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => bail!(
            "{} ({} is left over: {} does not answer)",
            no_testbed(dir),
            file.display(),
            control.url
        ),
        Err(e) => bail!("the testbed in {} did not answer: {e}", dir.display()),
    };
    let status = response.status();
    let bytes = response.bytes().await?;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        json!({ "error": String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>() })
    });
    if status.is_success() {
        return Ok(v);
    }
    let reason = v["error"].as_str().unwrap_or("no reason given");
    if status == StatusCode::UNAUTHORIZED {
        bail!(
            "the testbed in {} refused the token of {}: {reason}",
            dir.display(),
            file.display()
        );
    }
    bail!("{reason}")
}
