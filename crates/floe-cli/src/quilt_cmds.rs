//! Quilt commands: `store-quilt`, `read-quilt`, `list-patches-in-quilt`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use floe_client::QuiltPatchListItem;
use floe_core::BlobId;
use floe_core::quilt::{PatchContents, QuiltIndex, QuiltPatchId, QuiltPatchInput, Tags};
use serde::{Deserialize, Serialize};

use crate::cli_config::CommonArgs;
use crate::client_cmds::{StoreHowArgs, client, parse_blob_id, print_json, print_store, runtime};
use crate::output::{self, Bar};

/// At most this many files are read for one quilt (a QuiltV1 holds at most s − 1 < 16,384).
const MAX_FILES: usize = 16_384;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["paths", "blobs"])))]
pub struct StoreQuiltArgs {
    /// Files or directories (read recursively) to put in the quilt; each file's identifier is
    /// its file name.
    #[arg(long, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Files with explicit identifiers and tags, one JSON object each:
    /// '{"path":"a.txt","identifier":"a","tags":{"k":"v"}}' (identifier defaults to the file
    /// name; tag values that are not strings are kept as their JSON text).
    #[arg(long, num_args = 1..)]
    pub blobs: Vec<String>,
    /// Print the quilt ID and index without storing anything.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub how: StoreHowArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("select").required(true).args(["identifiers", "tag", "quilt_patch_ids"])))]
pub struct ReadQuiltArgs {
    /// The quilt to read from (with --identifiers or --tag).
    #[arg(long, required_unless_present = "quilt_patch_ids")]
    pub quilt_id: Option<String>,
    /// The patches with these identifiers.
    #[arg(long, num_args = 1.., requires = "quilt_id")]
    pub identifiers: Vec<String>,
    /// The patches with tag KEY equal to VALUE.
    #[arg(long, num_args = 2, value_names = ["KEY", "VALUE"], requires = "quilt_id")]
    pub tag: Vec<String>,
    /// The patches with these IDs (no index is read).
    #[arg(long, num_args = 1.., conflicts_with = "quilt_id")]
    pub quilt_patch_ids: Vec<String>,
    /// Write each patch to DIR/<identifier>. Without it, one patch goes to standard output
    /// (or, with --json, every patch as base64).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct ListPatchesArgs {
    /// The quilt ID.
    pub quilt_id: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// One `--blobs` argument.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlobArg {
    path: PathBuf,
    identifier: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, serde_json::Value>,
}

/// A tag value from JSON: strings as they are, anything else as its JSON text (as Walrus).
pub fn tag_value(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// `--dry-run --json`: `{"quiltBlobOutput": …, "quiltIndex": {"v1": {"quiltPatches": […]}}}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DryRunOutput {
    quilt_blob_output: QuiltBlobOutput,
    quilt_index: QuiltIndexJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuiltBlobOutput {
    blob_id: BlobId,
    encoding_type: floe_core::EncodingType,
    unencoded_size: u64,
    encoded_size: u64,
    /// Floe has no storage token; always 0.
    storage_cost: u64,
}

#[derive(Serialize)]
struct QuiltIndexJson {
    v1: QuiltIndexV1Json,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuiltIndexV1Json {
    quilt_patches: Vec<QuiltPatchJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuiltPatchJson {
    end_index: u16,
    identifier: String,
    tags: Tags,
}

impl QuiltIndexJson {
    fn new(index: &QuiltIndex) -> Self {
        Self {
            v1: QuiltIndexV1Json {
                quilt_patches: index
                    .patches
                    .iter()
                    .map(|p| QuiltPatchJson {
                        end_index: p.end,
                        identifier: p.identifier.clone(),
                        tags: p.tags.clone(),
                    })
                    .collect(),
            },
        }
    }
}

/// One patch read, for `read-quilt --json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadPatchJson {
    identifier: String,
    tags: Tags,
    size: usize,
    /// Where it was written, with --out.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    /// The bytes in base64, without --out.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
}

/// Every file under `path` (recursively for a directory), in a stable order.
fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        if out.len() >= MAX_FILES {
            bail!("more than {MAX_FILES} files: a quilt cannot hold them");
        }
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        collect_files(&entry, out)?;
    }
    Ok(())
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .with_context(|| {
            format!(
                "{} has no UTF-8 file name to use as identifier",
                path.display()
            )
        })
}

/// The quilt's files: (identifier, tags, bytes).
fn gather(a: &StoreQuiltArgs) -> Result<Vec<(String, Tags, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut paths = Vec::new();
    for p in &a.paths {
        collect_files(p, &mut paths)?;
    }
    for path in paths {
        let data =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        files.push((file_name(&path)?, Tags::new(), data));
    }
    for arg in &a.blobs {
        let blob: BlobArg = serde_json::from_str(arg).with_context(|| {
            format!("--blobs takes JSON like '{{\"path\":\"a.txt\",\"identifier\":\"a\",\"tags\":{{\"k\":\"v\"}}}}', not {arg}")
        })?;
        let data = std::fs::read(&blob.path)
            .with_context(|| format!("cannot read {}", blob.path.display()))?;
        let identifier = match blob.identifier {
            Some(id) => id,
            None => file_name(&blob.path)?,
        };
        let tags = blob
            .tags
            .into_iter()
            .map(|(k, v)| (k, tag_value(v)))
            .collect();
        files.push((identifier, tags, data));
        if files.len() > MAX_FILES {
            bail!("more than {MAX_FILES} files: a quilt cannot hold them");
        }
    }
    Ok(files)
}

pub fn store_quilt(a: StoreQuiltArgs) -> Result<()> {
    let files = gather(&a)?;
    let inputs: Vec<QuiltPatchInput<'_>> = files
        .iter()
        .map(|(identifier, tags, data)| QuiltPatchInput {
            identifier: identifier.clone(),
            tags: tags.clone(),
            data,
        })
        .collect();
    let client = client(&a.common, !a.dry_run)?;
    let rt = runtime()?;
    if a.dry_run {
        return rt.block_on(async {
            let built = client.build_quilt(&inputs).await?;
            let system = client.system().await?;
            let config = floe_core::EncodingConfig::new(system.n_shards)?;
            let metadata = floe_core::compute_metadata(&config, &built.bytes)?;
            let size = built.bytes.len() as u64;
            let output = DryRunOutput {
                quilt_blob_output: QuiltBlobOutput {
                    blob_id: metadata.blob_id,
                    encoding_type: config.encoding_type(),
                    unencoded_size: size,
                    encoded_size: config.encoded_length(size)?,
                    storage_cost: 0,
                },
                quilt_index: QuiltIndexJson::new(&built.index),
            };
            if a.common.json {
                return print_json(&output);
            }
            println!("Quilt ID: {} (dry run: nothing stored)", metadata.blob_id);
            println!(
                "  {} patches, {} unencoded, {} encoded",
                built.index.patches.len(),
                output::size(size),
                output::size(output.quilt_blob_output.encoded_size)
            );
            print_index(metadata.blob_id, &built.index);
            Ok(())
        });
    }
    let options = a.how.options()?;
    rt.block_on(async {
        let system = client.system().await?;
        let progress = Bar::reporter(!a.common.json, "quilt");
        let mut stored = client.store_quilt(&inputs, &options, progress).await?;
        if a.how.share {
            crate::shared_cmds::share_new(&client, &mut stored.outcome).await?;
        }
        if a.common.json {
            return print_json(&stored.result());
        }
        let size = stored.index.patches.len();
        print_store(
            &system,
            &format!("a quilt of {size} files"),
            files.iter().map(|f| f.2.len() as u64).sum(),
            &stored.outcome,
        );
        print_index(stored.quilt_id, &stored.index);
        Ok(())
    })
}

fn print_index(quilt_id: BlobId, index: &QuiltIndex) {
    println!("  Patches (identifier, patch ID, columns, tags):");
    for p in &index.patches {
        let tags: Vec<String> = p.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "    {}  {}  [{}, {})  {}",
            p.identifier,
            p.patch_id(quilt_id),
            p.start,
            p.end,
            tags.join(" ")
        );
    }
}

/// `DIR/identifier`, refusing identifiers that would escape DIR.
fn out_path(dir: &Path, identifier: &str) -> Result<PathBuf> {
    let rel = Path::new(identifier);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!(
            "patch identifier {identifier:?} is not a plain relative path; not writing it under {}",
            dir.display()
        );
    }
    Ok(dir.join(rel))
}

pub fn read_quilt(a: ReadQuiltArgs) -> Result<()> {
    let client = client(&a.common, false)?;
    let patches: Vec<PatchContents> = runtime()?.block_on(async {
        if !a.quilt_patch_ids.is_empty() {
            let mut out = Vec::new();
            for text in &a.quilt_patch_ids {
                let id: QuiltPatchId = text.parse()?;
                let internal = id.internal_id()?;
                let quilt = client.open_quilt(&id.quilt_id).await?;
                out.push(quilt.patch_by_internal_id(internal).await?);
            }
            return Ok::<_, anyhow::Error>(out);
        }
        let quilt_id = parse_blob_id(a.quilt_id.as_deref().context("--quilt-id is needed")?)?;
        let quilt = client.open_quilt(&quilt_id).await?;
        let index = quilt.index().await?;
        let selected: Vec<_> = if !a.identifiers.is_empty() {
            a.identifiers
                .iter()
                .map(|id| {
                    index.get(id).with_context(|| {
                        format!("quilt {quilt_id} has no patch {id:?} (see `floe list-patches-in-quilt {quilt_id}`)")
                    })
                })
                .collect::<Result<_>>()?
        } else {
            let (key, value) = (&a.tag[0], &a.tag[1]);
            let found: Vec<_> = index.with_tag(key, value).collect();
            if found.is_empty() {
                bail!("quilt {quilt_id} has no patch tagged {key}={value}");
            }
            found
        };
        let mut out = Vec::new();
        for patch in selected {
            out.push(quilt.patch(patch).await?);
        }
        Ok(out)
    })?;
    write_patches(&a, patches)
}

fn write_patches(a: &ReadQuiltArgs, patches: Vec<PatchContents>) -> Result<()> {
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut report = Vec::new();
        for p in patches {
            let path = out_path(dir, &p.identifier)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, &p.data)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if !a.common.json {
                eprintln!(
                    "Read {} ({}) into {}",
                    p.identifier,
                    output::size(p.data.len() as u64),
                    path.display()
                );
            }
            report.push(ReadPatchJson {
                identifier: p.identifier,
                tags: p.tags,
                size: p.data.len(),
                path: Some(path),
                data: None,
            });
        }
        if a.common.json {
            print_json(&report)?;
        }
        return Ok(());
    }
    if a.common.json {
        let report: Vec<ReadPatchJson> = patches
            .into_iter()
            .map(|p| ReadPatchJson {
                identifier: p.identifier,
                tags: p.tags,
                size: p.data.len(),
                path: None,
                data: Some(base64::engine::general_purpose::STANDARD.encode(&p.data)),
            })
            .collect();
        return print_json(&report);
    }
    match patches.as_slice() {
        [one] => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&one.data)?;
            out.flush()?;
            Ok(())
        }
        _ => bail!(
            "{} patches selected: give --out DIR to write them as files, or --json",
            patches.len()
        ),
    }
}

pub fn list_patches(a: ListPatchesArgs) -> Result<()> {
    let quilt_id = parse_blob_id(&a.quilt_id)?;
    let client = client(&a.common, false)?;
    let index = runtime()?.block_on(async {
        let quilt = client.open_quilt(&quilt_id).await?;
        quilt.index().await
    })?;
    let items = QuiltPatchListItem::list(quilt_id, &index);
    if a.common.json {
        return print_json(&items);
    }
    println!("Quilt {quilt_id}: {} patches", items.len());
    print_index(quilt_id, &index);
    Ok(())
}
