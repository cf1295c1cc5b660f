//! `floe node register | deregister | set-weight | set-network-key`: a node's operator changes
//! its membership on the ledger.
//!
//! Changes take effect at an epoch change, so each verb reads the ledger back after submitting
//! and reports the epoch `floe_ledger::membership::Effect` computes; [`when`] puts it in words
//! (also for `floe testbed add-node | remove-node | set-weight`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use floe_crypto::{ProofOfPossession, ProtocolKeyPair, ProtocolPublicKey};
use floe_ledger::api_types::SystemInfo;
use floe_ledger::{AccountKey, Address, EventKind, StorageNode, TxKind};
use floe_ledger_client::{AccountSession, LedgerClient, LedgerClientError};
use floe_node::config::NodeKeysFile;
use serde::Serialize;

use crate::cli_config::{self, CommonArgs};

/// Where the node's keys are and which ledger to talk to.
#[derive(Args)]
pub struct OperatorArgs {
    /// The node's key file (written by `floe node keygen --out FILE`).
    #[arg(long)]
    pub keys: PathBuf,
    /// The ledger, e.g. `http://127.0.0.1:9100`. Default: the `ledger_url` of the client config.
    #[arg(long)]
    pub ledger_url: Option<String>,
    /// The client config file (YAML) to take the ledger from. Default: as for `floe info`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub op: OperatorArgs,
    /// Encoded bytes the node offers to store, e.g. `1TiB`, `500GiB`.
    #[arg(long, default_value = "1TiB", value_parser = parse_capacity)]
    pub capacity: u64,
    /// Relative weight: the committee's shards are apportioned by weight.
    #[arg(long, default_value_t = 1)]
    pub weight: u64,
}

#[derive(Args)]
pub struct DeregisterArgs {
    #[command(flatten)]
    pub op: OperatorArgs,
}

#[derive(Args)]
pub struct SetNetworkKeyArgs {
    #[command(flatten)]
    pub op: OperatorArgs,
}

#[derive(Args)]
pub struct SetWeightArgs {
    #[command(flatten)]
    pub op: OperatorArgs,
    /// The new weight (at least 1; to leave, use `floe node deregister`).
    #[arg(long)]
    pub weight: u64,
}

/// `1TiB`, `500GiB`, `1000000`: the sizes `floe bench` takes, plus TiB.
fn parse_capacity(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    for (suffix, mult) in [
        ("tib", 1u64 << 40),
        ("tb", 1_000_000_000_000),
        ("t", 1 << 40),
    ] {
        if let Some(num) = lower.strip_suffix(suffix)
            && !num.is_empty()
            && num.bytes().all(|b| b.is_ascii_digit())
        {
            return num
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(mult))
                .ok_or_else(|| format!("size {t:?} overflows"));
        }
    }
    floe_bench::units::parse_size(t).map_err(|e| e.replace("GiB, KB", "GiB, TiB, KB"))
}

use floe_ledger::membership::{Effect, member, next_shard_count};

/// `at the start of epoch 6 (in 40s)`; when the change waits an extra epoch, also which
/// committee is already fixed.
pub fn when(effect: &Effect) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let eta = match effect.effective_at_ms.checked_sub(now) {
        Some(ms) if ms >= 1000 => {
            format!(
                "in {}",
                humantime::format_duration(Duration::from_secs(ms / 1000))
            )
        }
        _ => "due now".to_string(),
    };
    if effect.waits_an_extra_epoch() {
        format!(
            "at the start of epoch {} ({eta}; the committee of epoch {} is already fixed)",
            effect.effective_epoch,
            effect.epoch + 1
        )
    } else {
        format!("at the start of epoch {} ({eta})", effect.effective_epoch)
    }
}

/// A node key file, loaded.
struct OperatorKeys {
    path: PathBuf,
    file: NodeKeysFile,
    protocol: ProtocolKeyPair,
    account: AccountKey,
    network_public_key: Option<floe_crypto::NetworkPublicKey>,
}

fn load_keys(path: &Path) -> Result<OperatorKeys> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the key file {} (create one with `floe node keygen --out FILE`)",
            path.display()
        )
    })?;
    let file: NodeKeysFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a node key file", path.display()))?;
    let protocol = ProtocolKeyPair::from_tagged_base64(&file.protocol_key)
        .map_err(|e| anyhow!("{}: bad protocol key: {e}", path.display()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(file.account_seed.trim(), &mut seed)
        .map_err(|e| anyhow!("{}: bad account seed: {e}", path.display()))?;
    let network_public_key = file
        .network_key
        .as_deref()
        .map(floe_tls::NetworkKeyPair::from_pem)
        .transpose()
        .map_err(|e| anyhow!("{}: bad network key: {e}", path.display()))?
        .map(|k| k.public_key());
    Ok(OperatorKeys {
        path: path.to_path_buf(),
        file,
        protocol,
        account: AccountKey::from_seed(&seed),
        network_public_key,
    })
}

fn ledger_url(op: &OperatorArgs) -> Result<String> {
    if let Some(url) = &op.ledger_url {
        return Ok(url.clone());
    }
    let loaded = cli_config::load(&CommonArgs {
        config: op.config.clone(),
        ..CommonArgs::default()
    })?;
    Ok(loaded.client.ledger_urls().join(","))
}

/// A ledger refusal or failure, worded for the operator.
fn refused(url: &str, what: &str, e: LedgerClientError) -> anyhow::Error {
    match &e {
        LedgerClientError::Api {
            reason, message, ..
        } => anyhow!("the ledger at {url} refused the {what}: {message} ({reason})"),
        LedgerClientError::Unreachable { .. } => anyhow!(
            "{e}; the {what} may or may not have been recorded: run the command again (it checks)"
        ),
        LedgerClientError::Decode { .. } => anyhow!("{e}"),
    }
}

/// The node registered with this protocol key by `owner`, if any (deregistered ones too, with
/// weight 0). Only the owner's registrations count: a key's proof of possession binds it to its
/// owner, and the ledger lists every account's nodes.
async fn find_registered(
    ledger: &LedgerClient,
    key: &ProtocolPublicKey,
    owner: &Address,
) -> Result<Option<StorageNode>> {
    let account = ledger.account(owner).await?;
    Ok(account.nodes.into_iter().find(|n| &n.protocol_key == key))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The keys, the ledger, its state, and the node registered with the keys (if any).
struct Operator {
    keys: OperatorKeys,
    url: String,
    ledger: LedgerClient,
    system: SystemInfo,
    registered: Option<StorageNode>,
}

async fn context(op: &OperatorArgs) -> Result<Operator> {
    let keys = load_keys(&op.keys)?;
    let url = ledger_url(op)?;
    let ledger = LedgerClient::with_urls(floe_client::split_urls(&url));
    let system = ledger.system().await?;
    let registered =
        find_registered(&ledger, keys.protocol.public_key(), &keys.account.address()).await?;
    Ok(Operator {
        keys,
        url,
        ledger,
        system,
        registered,
    })
}

impl Operator {
    /// The registered, not deregistered node, or an error saying what to do.
    fn active_node(&self) -> Result<&StorageNode> {
        match &self.registered {
            None => bail!(
                "the key in {} is not registered on the ledger at {}; run `floe node register` first",
                self.keys.path.display(),
                self.url
            ),
            Some(n) if n.weight == 0 => bail!(
                "node {} ({}) is deregistered on the ledger at {}; a protocol key registers once: \
                 create new keys with `floe node keygen` to join again",
                n.name,
                n.id,
                self.url
            ),
            Some(n) => Ok(n),
        }
    }

    fn key(&self) -> &ProtocolPublicKey {
        self.keys.protocol.public_key()
    }

    async fn submit(
        &self,
        what: &str,
        kind: TxKind,
    ) -> Result<floe_ledger::api_types::SubmitResponse> {
        AccountSession::new(self.keys.account.clone(), self.ledger.clone())
            .submit(kind)
            .await
            .map_err(|e| refused(&self.url, what, e))
    }

    /// The next committee's shards of this node after the change (`None`: not shown).
    fn next_shards(&self, system: &SystemInfo) -> Option<usize> {
        next_shard_count(system, self.key())
    }
}

pub fn register(a: RegisterArgs) -> Result<()> {
    if a.weight == 0 {
        bail!("--weight must be at least 1");
    }
    runtime()?.block_on(async move {
        let mut cx = context(&a.op).await?;
        if let Some(n) = &cx.registered {
            if n.weight == 0 {
                bail!(
                    "this key was registered as node {} ({}) and has been deregistered; a protocol \
                     key registers once: create new keys with `floe node keygen`",
                    n.name,
                    n.id
                );
            }
            bail!(
                "this key is already registered on the ledger at {} as node {} ({}, weight {}); \
                 change its weight with `floe node set-weight` or leave with `floe node deregister`",
                cx.url,
                n.name,
                n.id,
                n.weight
            );
        }
        let owner = cx.keys.account.address();
        // The proof of possession names the current epoch: if the epoch moves between reading
        // it and the ledger applying the registration, sign again for the new epoch.
        let mut attempts = 0;
        let response = loop {
            let tx = TxKind::RegisterNode {
                name: cx.keys.file.name.clone(),
                network_address: cx.keys.file.network_address.clone(),
                protocol_key: *cx.key(),
                proof_of_possession: ProofOfPossession::create(
                    &cx.keys.protocol,
                    cx.system.epoch,
                    &owner.0,
                ),
                capacity: a.capacity,
                weight: a.weight,
                network_public_key: cx.keys.network_public_key,
            };
            let result = AccountSession::new(cx.keys.account.clone(), cx.ledger.clone())
                .submit(tx)
                .await;
            match result {
                Ok(r) => break r,
                Err(e) if e.reason() == Some("BAD_NODE") && attempts < 3 => {
                    let fresh = cx.ledger.system().await?;
                    if fresh.epoch == cx.system.epoch {
                        return Err(refused(&cx.url, "registration", e));
                    }
                    cx.system = fresh;
                    attempts += 1;
                }
                Err(e) => return Err(refused(&cx.url, "registration", e)),
            }
        };
        let node_id = response.events.iter().find_map(|e| match &e.kind {
            EventKind::NodeRegistered { node_id, .. } => Some(*node_id),
            _ => None,
        });
        let after = cx.ledger.system().await?;
        let next_shards = cx.next_shards(&after);
        let effect = Effect::after(&after, next_shards.map(|k| k > 0));
        if a.op.json {
            return print(&Change {
                action: "register",
                node_id,
                name: &cx.keys.file.name,
                details: Registered {
                    network_address: &cx.keys.file.network_address,
                    owner: owner.to_string(),
                    capacity: a.capacity,
                    weight: a.weight,
                    next_shards,
                },
                ledger_url: &cx.url,
                effect: Some(effect),
            });
        }
        println!(
            "Registered {} ({}) on the ledger at {}: node ID {}, weight {}, capacity {}.",
            cx.keys.file.name,
            cx.keys.file.network_address,
            cx.url,
            node_id.map_or("?".into(), |id| id.to_string()),
            a.weight,
            crate::output::size(a.capacity)
        );
        println!("It joins the committee {}.", when(&effect));
        println!(
            "Keep the node running (`floe node run --config NODE.toml`): it fetches its shards then."
        );
        Ok(())
    })
}

pub fn deregister(a: DeregisterArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let cx = context(&a.op).await?;
        let node = cx.active_node()?.clone();
        cx.submit(
            "deregistration",
            TxKind::DeregisterNode { node_id: node.id },
        )
        .await?;
        let after = cx.ledger.system().await?;
        let in_committee = member(&after.committee, cx.key()).is_some();
        let next_shards = cx.next_shards(&after);
        let effect = Effect::after(&after, next_shards.map(|k| k == 0));
        if a.op.json {
            return print(&Change {
                action: "deregister",
                node_id: Some(node.id),
                name: &node.name,
                details: Deregistered {
                    in_committee,
                    next_shards,
                },
                ledger_url: &cx.url,
                effect: Some(effect),
            });
        }
        println!(
            "Deregistered node {} ({}) on the ledger at {}.",
            node.name, node.id, cx.url
        );
        if !in_committee && next_shards == Some(0) {
            println!("It holds no shards and will not join the committee.");
        } else {
            println!("It leaves the committee {}.", when(&effect));
            println!(
                "Keep it running until that epoch change completes (see `floe info`): the new \
                 owners fetch its shards from it."
            );
        }
        Ok(())
    })
}

pub fn set_weight(a: SetWeightArgs) -> Result<()> {
    if a.weight == 0 {
        bail!("a weight of 0 would remove the node: use `floe node deregister`");
    }
    runtime()?.block_on(async move {
        let cx = context(&a.op).await?;
        let node = cx.active_node()?.clone();
        cx.submit(
            "weight change",
            TxKind::SetNodeWeight {
                node_id: node.id,
                weight: a.weight,
            },
        )
        .await?;
        let after = cx.ledger.system().await?;
        let next_shards = cx.next_shards(&after);
        let effect = Effect::after(&after, None);
        if a.op.json {
            return print(&Change {
                action: "setWeight",
                node_id: Some(node.id),
                name: &node.name,
                details: WeightSet {
                    previous_weight: node.weight,
                    weight: a.weight,
                    next_shards,
                },
                ledger_url: &cx.url,
                effect: Some(effect),
            });
        }
        println!(
            "Set the weight of node {} ({}) from {} to {} on the ledger at {}.",
            node.name, node.id, node.weight, a.weight, cx.url
        );
        println!("The new weight applies {}.", when(&effect));
        Ok(())
    })
}

pub fn set_network_key(a: SetNetworkKeyArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let cx = context(&a.op).await?;
        let Some(key) = cx.keys.network_public_key else {
            bail!(
                "{} has no network key: add one with `floe node keygen --network-key-only --out {}`",
                cx.keys.path.display(),
                cx.keys.path.display()
            );
        };
        let node = cx.active_node()?.clone();
        let action = "network key change";
        let tx = TxKind::SetNetworkKey {
            node_id: node.id,
            network_public_key: key,
        };
        cx.submit(action, tx).await?;
        // Read back: the replaced key and how long clients still accept it.
        let after = find_registered(&cx.ledger, cx.key(), &cx.keys.account.address())
            .await?
            .unwrap_or_else(|| node.clone());
        // The ledger honours a replaced key until its epoch, also when this run changed
        // nothing (the key was already set by an earlier run).
        let overlap = after.previous_network_key;
        let changed = node.network_public_key != Some(key);
        if a.op.json {
            return print(&Change {
                action: "setNetworkKey",
                node_id: Some(node.id),
                name: &node.name,
                details: NetworkKeySet {
                    changed,
                    previous_network_public_key: node.network_public_key,
                    network_public_key: key,
                    previous_key_accepted_until_epoch: overlap.as_ref().map(|p| p.until_epoch),
                },
                ledger_url: &cx.url,
                effect: None,
            });
        }
        let what = if changed {
            format!(
                "Set the network key of node {} ({}) to {key} on the ledger at {}.",
                node.name, node.id, cx.url
            )
        } else {
            format!(
                "Node {} ({}) already has the network key {key} on the ledger at {}; nothing \
                 changed.",
                node.name, node.id, cx.url
            )
        };
        match overlap {
            Some(p) => println!(
                "{what} Clients accept both it and the replaced key {} until the end of epoch \
                 {}: restart the node with {} before then.",
                p.key,
                p.until_epoch,
                cx.keys.path.display()
            ),
            None => println!(
                "{what} Clients pin it from now on: restart the node with {}.",
                cx.keys.path.display()
            ),
        }
        Ok(())
    })
}

/// What `floe node register|deregister|set-weight|set-network-key --json` prints: the fields
/// every change has, the change's own (`details`), and when it takes effect.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Change<'a, D: Serialize> {
    action: &'static str,
    /// `null` when a registration could not be read back.
    node_id: Option<floe_ledger::NodeId>,
    name: &'a str,
    #[serde(flatten)]
    details: D,
    ledger_url: &'a str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    effect: Option<Effect>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Registered<'a> {
    network_address: &'a str,
    owner: String,
    capacity: u64,
    weight: u64,
    next_shards: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Deregistered {
    in_committee: bool,
    next_shards: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WeightSet {
    previous_weight: u64,
    weight: u64,
    next_shards: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NetworkKeySet {
    changed: bool,
    previous_network_public_key: Option<floe_crypto::NetworkPublicKey>,
    network_public_key: floe_crypto::NetworkPublicKey,
    previous_key_accepted_until_epoch: Option<u32>,
}

fn print(v: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effect_says_the_epoch_and_whether_the_next_committee_was_fixed() {
        let effect = |effective_epoch| Effect {
            epoch: 5,
            effective_epoch,
            effective_at_ms: 0,
            next_committee_fixed: effective_epoch == 7,
        };
        assert_eq!(when(&effect(6)), "at the start of epoch 6 (due now)");
        assert_eq!(
            when(&effect(7)),
            "at the start of epoch 7 (due now; the committee of epoch 6 is already fixed)"
        );
    }

    /// The JSON keys scripts read: the common ones, the change's own, and the effect's, all at
    /// the top level.
    #[test]
    fn a_change_prints_flat_camel_case_json() {
        let keys = |v: serde_json::Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let change = Change {
            action: "setWeight",
            node_id: Some(floe_core::ObjectId([1; 32])),
            name: "node-1",
            details: WeightSet {
                previous_weight: 1,
                weight: 2,
                next_shards: Some(3),
            },
            ledger_url: "http://127.0.0.1:9",
            effect: Some(Effect {
                epoch: 4,
                effective_epoch: 5,
                effective_at_ms: 6,
                next_committee_fixed: false,
            }),
        };
        let v = serde_json::to_value(&change).unwrap();
        assert_eq!(
            keys(v.clone()),
            [
                "action",
                "effectiveAtMs",
                "effectiveEpoch",
                "epoch",
                "ledgerUrl",
                "name",
                "nextCommitteeFixed",
                "nextShards",
                "nodeId",
                "previousWeight",
                "weight"
            ]
        );
        assert_eq!(v["weight"], 2);
        let no_effect = Change {
            effect: None,
            ..change
        };
        assert!(
            serde_json::to_value(&no_effect)
                .unwrap()
                .get("epoch")
                .is_none()
        );
    }

    #[test]
    fn capacities_take_tebibytes() {
        assert_eq!(parse_capacity("1TiB"), Ok(1 << 40));
        assert_eq!(parse_capacity("2t"), Ok(2 << 40));
        assert_eq!(parse_capacity("500GiB"), Ok(500 << 30));
        assert!(parse_capacity("1XiB").unwrap_err().contains("TiB"));
    }
}
