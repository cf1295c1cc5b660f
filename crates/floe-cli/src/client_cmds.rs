//! The user's commands: store, read, blob-status, info, list-blobs, delete, extend, health.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use floe_client::{BlobStoreResult, Client, ConsistencyCheck, ReadOptions};
use floe_core::{BlobId, ObjectId};
use floe_ledger::BlobStatus;

use crate::cli_config::{self, CommonArgs};
use crate::client_json::{
    BlobStatusJson, ClientPart, DeletedObject, DeletedObjects, Extended, InfoJson, ListedBlob,
    NodeRow, PlaneRow, ReadBlob, StoredFile,
};
use crate::output::{self, Bar};
pub use crate::store_how::StoreHowArgs;

#[derive(clap::Args)]
pub struct StoreArgs {
    /// The files to store.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub how: StoreHowArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct ReadArgs {
    /// The blob ID (base64url, hex or decimal); one that starts with '-' is taken as an ID
    /// unless it is one of this command's flags.
    #[arg(allow_hyphen_values = true)]
    pub blob_id: String,
    /// Write the blob to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Re-encode the whole blob and compare blob IDs.
    #[arg(long, conflicts_with = "skip_consistency_check")]
    pub strict_consistency_check: bool,
    /// Check only each sliver, not the decoded blob.
    #[arg(long)]
    pub skip_consistency_check: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The blob ID (a base64url one may start with `-`: it is taken as the value).
    #[arg(
        long,
        conflicts_with = "file",
        required_unless_present = "file",
        allow_hyphen_values = true
    )]
    pub blob_id: Option<String>,
    /// Compute the blob ID of this file and report its status.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Time allowed for each node's answer.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct InfoArgs {
    /// Also list the committee's members and their shards.
    #[arg(long)]
    pub committee: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Include expired and deleted blobs.
    #[arg(long)]
    pub include_expired: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    /// Delete your deletable objects of these blob IDs.
    #[arg(long, num_args = 1.., required_unless_present = "object_ids")]
    pub blob_ids: Vec<String>,
    /// Delete these blob objects.
    #[arg(long, num_args = 1..)]
    pub object_ids: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct ExtendArgs {
    /// The blob object to extend (with --shared, the shared blob).
    #[arg(long)]
    pub blob_obj_id: String,
    /// The object is a shared blob: extend the blob it wraps (any wallet may).
    #[arg(long)]
    pub shared: bool,
    /// Epochs to add to its lifetime.
    #[arg(long)]
    pub epochs_extended: u32,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct HealthArgs {
    /// Show the nodes' per-shard detail.
    #[arg(long)]
    pub detail: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A client with the configured wallet (created on first use when `wallet`).
pub(crate) fn client(common: &CommonArgs, wallet: bool) -> Result<Client> {
    let loaded = cli_config::load(common)?;
    let key = if wallet {
        Some(cli_config::load_or_create_wallet(
            &loaded.wallet_path,
            common.json,
        )?)
    } else if loaded.wallet_path.exists() {
        Some(cli_config::load_or_create_wallet(
            &loaded.wallet_path,
            true,
        )?)
    } else {
        None
    };
    Ok(Client::new(loaded.client, key)?)
}

pub(crate) fn parse_blob_id(s: &str) -> Result<BlobId> {
    s.parse().map_err(|e| {
        anyhow::anyhow!("{e} (a blob ID is 43 base64url characters, as `floe blob-id` prints)")
    })
}

pub(crate) fn parse_object_id(s: &str) -> Result<ObjectId> {
    s.parse()
        .map_err(|e| anyhow::anyhow!("{e:?}: an object ID is 0x followed by 64 hex digits"))
}

pub(crate) fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn store(a: StoreArgs) -> Result<()> {
    let options = a.how.options()?;
    let client = client(&a.common, true)?;
    runtime()?.block_on(async move {
        let system = client.system().await?;
        let mut results = Vec::new();
        let mut failed = 0;
        for path in &a.files {
            let data =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let size = data.len() as u64;
            let label = path.display().to_string();
            let progress = Bar::reporter(!a.common.json, &label);
            let stored = match client.store(data, &options, progress).await {
                Ok(mut outcome) if a.how.share => {
                    crate::shared_cmds::share_new(&client, &mut outcome)
                        .await
                        .map(|()| outcome)
                        .map_err(|e| anyhow::anyhow!("stored, but sharing failed: {e:#}"))
                }
                other => other.map_err(anyhow::Error::from),
            };
            let result = match stored {
                Ok(outcome) => {
                    if !a.common.json {
                        print_store(&system, &label, size, &outcome);
                    }
                    outcome.result
                }
                Err(e) => {
                    failed += 1;
                    if !a.common.json {
                        eprintln!("error: storing {label} failed: {e:#}");
                    }
                    BlobStoreResult::Error {
                        blob_id: None,
                        failure_phase: "store".into(),
                        error_msg: format!("{e:#}"),
                    }
                }
            };
            results.push(StoredFile {
                path,
                blob_store_result: result,
            });
        }
        if a.common.json {
            print_json(&results)?;
        }
        if failed > 0 {
            bail!("{failed} of {} files could not be stored", a.files.len());
        }
        Ok(())
    })
}

pub(crate) fn print_store(
    system: &floe_ledger::api_types::SystemInfo,
    label: &str,
    size: u64,
    outcome: &floe_client::StoreOutcome,
) {
    match &outcome.result {
        BlobStoreResult::NewlyCreated {
            blob_object,
            resource_operation,
            shared_blob_object,
            ..
        } => {
            let kind = if blob_object.deletable {
                "deletable"
            } else {
                "permanent"
            };
            println!(
                "Stored {label} ({}) as a new {kind} blob.",
                output::size(size)
            );
            println!("  Blob ID:      {}", blob_object.blob_id);
            println!("  Object ID:    {}", blob_object.id);
            if let Some(shared) = shared_blob_object {
                println!("  Shared blob:  {shared} (anyone may extend it; nobody may delete it)");
            }
            let how = match resource_operation {
                floe_client::ResourceOperation::RegisterFromScratch { .. } => "new registration",
                floe_client::ResourceOperation::ReuseRegistration { .. } => {
                    "reused your earlier registration"
                }
            };
            println!(
                "  Encoded size: {} ({how})",
                output::size(blob_object.storage.storage_size)
            );
            if let Some(e) = blob_object.certified_epoch {
                println!("  Certified in: {}", output::epoch_with_date(system, e));
            }
            println!(
                "  Available until {} (exclusive)",
                output::epoch_with_date(system, blob_object.storage.end_epoch)
            );
        }
        BlobStoreResult::AlreadyCertified {
            blob_id, end_epoch, ..
        } => {
            println!("{label} is already certified; nothing was uploaded.");
            println!("  Blob ID: {blob_id}");
            println!(
                "  Available until {} (exclusive). Use --force to store it anyway.",
                output::epoch_with_date(system, *end_epoch)
            );
        }
        BlobStoreResult::MarkedInvalid { blob_id, .. } => {
            println!("{label}: blob {blob_id} was marked invalid by the network; not stored.");
        }
        BlobStoreResult::Error { error_msg, .. } => println!("{label}: {error_msg}"),
    }
}

pub fn read(a: ReadArgs) -> Result<()> {
    let blob_id = parse_blob_id(&a.blob_id)?;
    let check = if a.strict_consistency_check {
        ConsistencyCheck::Strict
    } else if a.skip_consistency_check {
        ConsistencyCheck::Skip
    } else {
        ConsistencyCheck::Default
    };
    let client = client(&a.common, false)?;
    let progress = Bar::reporter(!a.common.json, &a.blob_id);
    let blob = runtime()?
        .block_on(client.read(&blob_id, ReadOptions { check }, progress))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match (&a.out, a.common.json) {
        (Some(out), json) => {
            std::fs::write(out, &blob)
                .with_context(|| format!("cannot write {}", out.display()))?;
            if json {
                print_json(&ReadBlob::ToFile {
                    blob_id,
                    out,
                    size: blob.len(),
                })?;
            } else {
                eprintln!(
                    "Read blob {blob_id} ({}) into {}",
                    output::size(blob.len() as u64),
                    out.display()
                );
            }
        }
        (None, true) => print_json(&ReadBlob::Inline {
            blob_id,
            blob: base64::engine::general_purpose::STANDARD.encode(&blob),
        })?,
        (None, false) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&blob)?;
            out.flush()?;
        }
    }
    Ok(())
}

pub fn blob_status(a: StatusArgs) -> Result<()> {
    let client = client(&a.common, false)?;
    runtime()?.block_on(async move {
        let blob_id = match (&a.blob_id, &a.file) {
            (Some(id), _) => parse_blob_id(id)?,
            (None, Some(file)) => {
                let (_, committee) = client.committee().await?;
                let data = std::fs::read(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                floe_core::compute_metadata(&committee.config, &data)?.blob_id
            }
            (None, None) => bail!("give --blob-id ID or --file FILE"),
        };
        let status = client.verified_status(&blob_id, Some(a.timeout)).await?;
        let last_audit = crate::audit_cmd::last_audit(&a.common, &blob_id);
        let system = client.system().await?;
        let challenges = crate::challenge_cmd::blob_challenges(&client, &system, &blob_id).await;
        if a.common.json {
            return print_json(&BlobStatusJson {
                status: &status,
                last_audit: last_audit.as_ref(),
                last_challenges: challenges.as_ref(),
            });
        }
        let line = status_line(&system, &status.status);
        println!("Blob {blob_id} {line}.");
        if let Some(e) = &status.event {
            println!(
                "Made so by ledger event {} (entry {}, epoch {}, tx {}).",
                e.index, e.entry_index, e.epoch, e.tx_digest
            );
        }
        print_last_audit(last_audit.as_ref());
        crate::challenge_cmd::print_blob_challenges(challenges.as_ref());
        println!(
            "Nodes: {} of {} shards answered, {} agree with the ledger{}.",
            status.nodes.responded_shards,
            status.nodes.n_shards,
            status.nodes.agreeing_shards,
            if status.nodes.confirmed {
                ""
            } else {
                " (fewer than f+1: the nodes may still be catching up)"
            }
        );
        Ok(())
    })
}

/// The health of every ledger URL (bounded to 3 s each), for `floe info`.
async fn control_plane(urls: &[String]) -> Vec<PlaneRow> {
    let mut out = Vec::new();
    for url in urls {
        let client = floe_ledger_client::LedgerClient::new(url.clone());
        let row = match tokio::time::timeout(Duration::from_secs(3), client.health()).await {
            Ok(Ok(h)) => PlaneRow::answered(url.clone(), h),
            Ok(Err(e)) => PlaneRow::silent(url.clone(), e.to_string()),
            Err(_) => PlaneRow::silent(url.clone(), "no answer within 3 s".into()),
        };
        out.push(row);
    }
    out
}

/// What the ledger's status means, in words.
fn status_line(system: &floe_ledger::api_types::SystemInfo, status: &BlobStatus) -> String {
    match status {
        BlobStatus::Nonexistent => "does not exist (never registered)".to_string(),
        BlobStatus::Registered { end_epoch, .. } => format!(
            "is registered but NOT certified: it is not available yet (registration ends at {})",
            output::epoch_with_date(system, *end_epoch)
        ),
        BlobStatus::Certified {
            end_epoch,
            initial_certified_epoch,
            permanent,
            ..
        } => format!(
            "is certified and available until {} (exclusive); certified in epoch {}; {}",
            output::epoch_with_date(system, *end_epoch),
            initial_certified_epoch,
            if *permanent {
                "at least one registration is permanent"
            } else {
                "all registrations are deletable"
            }
        ),
        BlobStatus::Invalid { .. } => {
            "was proven inconsistently encoded and is INVALID: it has no data".into()
        }
        BlobStatus::Deleted { .. } => "was deleted by its owners: its data is gone".into(),
        BlobStatus::Expired { end_epoch, .. } => format!(
            "EXPIRED at the start of {}: its data is gone",
            output::epoch_with_date(system, *end_epoch)
        ),
    }
}

fn print_last_audit(last: Option<&crate::audit_cmd::LastAudit>) {
    let Some(l) = last else {
        println!("Last audit: none from this client (run `floe audit`).");
        return;
    };
    let ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_sub(l.at_unix_secs);
    println!(
        "Last audit ({ago} s ago): {:?}: {} of {} shards proved possession, {} failed, {} did not answer{}.",
        l.verdict,
        l.proved,
        l.n_shards,
        l.failed,
        l.no_answer,
        if l.failed_nodes.is_empty() {
            String::new()
        } else {
            format!(" (nodes: {})", l.failed_nodes.join(", "))
        }
    );
}

pub fn info(a: InfoArgs) -> Result<()> {
    let loaded = cli_config::load(&a.common)?;
    let client = client(&a.common, false)?;
    runtime()?.block_on(async move {
        let system = client.system().await?;
        let plane = control_plane(&client.config().ledger_urls()).await;
        let challenges = client.ledger().challenge_summary().await.ok();
        if a.common.json {
            let nodes = node_rows(&system);
            let client_part = ClientPart {
                control_plane: &plane,
                wallet_address: client.address().map(|a| a.to_string()),
                daemon_url: loaded.daemon_url.as_deref(),
                challenges: challenges.as_ref().and_then(|c| c.latest()),
                nodes: &nodes,
            };
            let info = InfoJson::new(&system, a.committee, client_part);
            return print_json(&info);
        }
        let config = floe_core::EncodingConfig::new(system.n_shards)?;
        println!("Floe network at {}", client.config().ledger_urls().join(", "));
        let up: Vec<(&str, u64)> = plane
            .iter()
            .filter(|p| p.up)
            .filter_map(PlaneRow::backend_and_entries)
            .collect();
        let backend = up.first().map_or("file", |(b, _)| b);
        let applied = up.iter().map(|(_, n)| *n).max();
        println!(
            "  Control plane:   {} of {} ledger {} up ({} log){}",
            up.len(),
            plane.len(),
            if plane.len() == 1 { "server" } else { "replicas" },
            backend,
            applied.map_or(String::new(), |n| format!(", {n} entries applied"))
        );
        println!(
            "  Epoch:           {} (started {}; next starts {}; epochs last {})",
            system.epoch,
            output::epoch_start(&system, system.epoch),
            output::epoch_start(&system, system.epoch + 1),
            output::duration(system.epoch_duration_ms)
        );
        println!(
            "  Shards:          {} (tolerates {} faulty; certificates need {})",
            system.n_shards,
            config.max_faulty(),
            config.quorum()
        );
        println!("  Storage nodes:   {}", system.committee.members.len());
        match &system.epoch_state {
            floe_ledger::EpochState::Done => println!("  Epoch change:    none in progress"),
            floe_ledger::EpochState::Syncing { reported, weight } => println!(
                "  Epoch change:    to epoch {} in progress: {} nodes reported, {weight} of {} shards needed",
                system.epoch,
                reported.len(),
                config.quorum()
            ),
            // `NextParamsSelected`: nothing in flight, and the next committee is fixed.
            _ => println!("  Epoch change:    none in progress"),
        }
        let next_fixed = floe_ledger::membership::next_committee_fixed(&system.epoch_state);
        println!(
            "  Next committee:  {}",
            if next_fixed {
                format!(
                    "fixed; membership changes made now take effect in epoch {}",
                    system.epoch + 2
                )
            } else {
                format!(
                    "not fixed yet; membership changes made now take effect in epoch {}",
                    system.epoch + 1
                )
            }
        );
        println!(
            "  Shards per node (epoch {} / epoch {}):",
            system.epoch,
            system.epoch + 1
        );
        for r in node_rows(&system) {
            println!(
                "    {:<16} {:>5} / {:<5} {}",
                r.name,
                r.shards,
                r.next_shards.map_or("?".to_string(), |k| k.to_string()),
                r.change.unwrap_or("")
            );
        }
        println!(
            "  Capacity:        {} used of {}",
            output::size(system.used_capacity),
            output::size(system.total_capacity)
        );
        println!("  Max blob size:   {}", output::size(system.max_blob_size));
        println!(
            "  Max lifetime:    {} epochs ahead",
            system.max_epochs_ahead
        );
        println!(
            "  Encoded size of a 1 MiB blob: {}",
            output::size(config.encoded_length(1 << 20)?)
        );
        match client.address() {
            Some(a) => println!("  Wallet:          {a} ({})", loaded.wallet_path.display()),
            None => println!(
                "  Wallet:          none yet (created at {} on first store)",
                loaded.wallet_path.display()
            ),
        }
        if let Some(d) = &loaded.daemon_url {
            println!("  Daemon:          {d}");
        }
        if let Some(p) = &loaded.path {
            println!("  Config:          {}", p.display());
        }
        if let Some(c) = &challenges {
            crate::challenge_cmd::print_summary(c);
        }
        if a.committee {
            println!("Committee of epoch {}:", system.committee.epoch);
            for m in &system.committee.members {
                println!(
                    "  {:<12} {:<22} {:>5} shards  {}",
                    m.name,
                    m.network_address,
                    m.shards.len(),
                    m.node_id
                );
            }
        }
        Ok(())
    })
}

/// The union of the current and the next committee, current members first.
fn node_rows(system: &floe_ledger::api_types::SystemInfo) -> Vec<NodeRow> {
    let next = system.next_committee.as_ref();
    let next_shards = |id: &floe_ledger::NodeId| {
        next.map(|c| {
            c.members
                .iter()
                .find(|m| &m.node_id == id)
                .map_or(0, |m| m.shards.len())
        })
    };
    let mut rows: Vec<NodeRow> = system
        .committee
        .members
        .iter()
        .map(|m| {
            NodeRow::new(
                m.node_id,
                m.name.clone(),
                m.network_address.clone(),
                m.shards.len(),
                next_shards(&m.node_id),
            )
        })
        .collect();
    for m in next.iter().flat_map(|c| c.members.iter()) {
        if !rows.iter().any(|r| r.node_id == m.node_id) {
            rows.push(NodeRow::new(
                m.node_id,
                m.name.clone(),
                m.network_address.clone(),
                0,
                Some(m.shards.len()),
            ));
        }
    }
    rows
}

pub fn list_blobs(a: ListArgs) -> Result<()> {
    let client = client(&a.common, true)?;
    runtime()?.block_on(async move {
        let system = client.system().await?;
        let blobs = client.list_blobs(a.include_expired).await?;
        if a.common.json {
            let v: Vec<_> = blobs
                .iter()
                .map(|b| ListedBlob {
                    object: floe_client::BlobObjectJson::from(b),
                    deleted: b.deleted,
                    expired: b.end_epoch() <= system.epoch,
                })
                .collect();
            return print_json(&v);
        }
        if blobs.is_empty() {
            println!("No blobs. Store one with `floe store FILE --epochs 1`.");
            return Ok(());
        }
        println!(
            "{:<44} {:>10} {:<10} {:<9} {:<30} OBJECT ID",
            "BLOB ID", "SIZE", "STATE", "KIND", "EXPIRES"
        );
        for b in &blobs {
            let state = if b.deleted {
                "deleted"
            } else if b.end_epoch() <= system.epoch {
                "expired"
            } else if b.certified_epoch.is_some() {
                "certified"
            } else {
                "registered"
            };
            println!(
                "{:<44} {:>10} {:<10} {:<9} {:<30} {}",
                b.blob_id.to_string(),
                output::size(b.size),
                state,
                if b.deletable {
                    "deletable"
                } else {
                    "permanent"
                },
                output::epoch_with_date(&system, b.end_epoch()),
                b.id
            );
        }
        Ok(())
    })
}

pub fn delete(a: DeleteArgs) -> Result<()> {
    let client = client(&a.common, true)?;
    runtime()?.block_on(async move {
        let mut objects = Vec::new();
        for o in &a.object_ids {
            objects.push(parse_object_id(o)?);
        }
        for b in &a.blob_ids {
            let id = parse_blob_id(b)?;
            let owned = client.owned_objects_of(&id).await?;
            let deletable: Vec<_> = owned.iter().filter(|o| o.deletable).collect();
            if deletable.is_empty() {
                bail!(
                    "you own no deletable blob object of {id}{}",
                    if owned.is_empty() {
                        ""
                    } else {
                        " (only permanent ones, which expire but cannot be deleted)"
                    }
                );
            }
            objects.extend(deletable.iter().map(|o| o.id));
        }
        let mut deleted = Vec::new();
        for o in &objects {
            let blob = client.delete(o).await?;
            if !a.common.json {
                println!("Deleted object {o} of blob {}.", blob.blob_id);
            }
            deleted.push(DeletedObject {
                object_id: *o,
                blob_id: blob.blob_id,
            });
        }
        if a.common.json {
            print_json(&DeletedObjects { deleted })?;
        }
        Ok(())
    })
}

pub fn extend(a: ExtendArgs) -> Result<()> {
    let client = client(&a.common, true)?;
    let object = parse_object_id(&a.blob_obj_id)?;
    runtime()?.block_on(async move {
        // --shared: the object is a shared blob, which any wallet may extend.
        let (end, answer, what) = if a.shared {
            let end = client.extend_shared(&object, a.epochs_extended).await?;
            let answer = Extended::Shared {
                shared_blob_object_id: object,
                end_epoch: end,
            };
            (end, answer, "shared blob ")
        } else {
            let end = client.extend(&object, a.epochs_extended).await?;
            let answer = Extended::Owned {
                object_id: object,
                end_epoch: end,
            };
            (end, answer, "")
        };
        if a.common.json {
            return print_json(&answer);
        }
        let system = client.system().await?;
        println!(
            "Extended {what}{object}: available until {} (exclusive).",
            output::epoch_with_date(&system, end)
        );
        Ok(())
    })
}
