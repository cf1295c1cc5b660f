//! `floe blob-id`, `floe encode`, `floe convert-blob-id`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use floe_core::encode::{compute_metadata_from_source, encode_buffer};
use floe_core::{BlobId, EncodingConfig, SliverPairIndex, SliverType};
use serde::Serialize;

use floe_bench::file_source::{FileSource, read_with_capacity};

/// The shard count of Walrus Mainnet and Testnet, and Floe's default.
pub const DEFAULT_N_SHARDS: u64 = 1000;

#[derive(Args)]
pub struct BlobIdArgs {
    /// The file to identify.
    pub file: PathBuf,
    /// Number of shards of the target system (4 to 16384).
    #[arg(long, default_value_t = DEFAULT_N_SHARDS)]
    pub n_shards: u64,
    /// Print JSON instead of the bare blob ID.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct EncodeArgs {
    /// The file to encode.
    pub file: PathBuf,
    /// Directory to write the metadata and slivers into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of shards (4 to 16384).
    #[arg(long, default_value_t = DEFAULT_N_SHARDS)]
    pub n_shards: u64,
    /// Print JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ConvertArgs {
    /// The blob ID as a decimal u256 (little-endian interpretation of its bytes).
    pub decimal: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobIdOutput {
    pub blob_id: BlobId,
    pub file: PathBuf,
    pub unencoded_length: u64,
    pub n_shards: u16,
    pub symbol_size: u16,
    pub encoded_length: u64,
    pub root_hash: String,
    pub max_blob_size: u64,
}

fn config_for(n_shards: u64) -> Result<EncodingConfig> {
    EncodingConfig::from_u64(n_shards).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Fail early, with the maximum named, when the file is too large for `config`.
fn check_size(config: &EncodingConfig, path: &Path, len: u64) -> Result<()> {
    if len > config.max_blob_size() {
        anyhow::bail!(
            "{} is {len} bytes, larger than the maximum blob size of {} bytes for {} shards",
            path.display(),
            config.max_blob_size(),
            config.n_shards()
        );
    }
    Ok(())
}

pub fn blob_id(args: BlobIdArgs) -> Result<()> {
    let config = config_for(args.n_shards)?;
    let source = FileSource::open(&args.file)?;
    let len = floe_core::BlobSource::len(&source);
    check_size(&config, &args.file, len)?;
    let meta = compute_metadata_from_source(&config, &source)
        .with_context(|| format!("cannot compute the blob ID of {}", args.file.display()))?;
    let out = BlobIdOutput {
        blob_id: meta.blob_id,
        file: args.file,
        unencoded_length: len,
        n_shards: config.n_shards(),
        symbol_size: config.symbol_size(len)?,
        encoded_length: config.encoded_length(len)?,
        root_hash: hex::encode(meta.metadata.root_hash()),
        max_blob_size: config.max_blob_size(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", out.blob_id);
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EncodeManifest {
    format_version: u32,
    blob_id: BlobId,
    unencoded_length: u64,
    n_shards: u16,
    symbol_size: u16,
    primary_sliver_len: usize,
    secondary_sliver_len: usize,
    metadata_file: &'static str,
    sliver_file_pattern: &'static str,
}

/// Name of the file holding sliver `axis` of pair `pair`.
pub fn sliver_file_name(pair: u16, axis: SliverType) -> String {
    format!("pair-{pair:05}-{axis}.bin")
}

pub fn encode(args: EncodeArgs) -> Result<()> {
    let config = config_for(args.n_shards)?;
    let len = floe_core::BlobSource::len(&FileSource::open(&args.file)?);
    check_size(&config, &args.file, len)?;
    let sym = config.symbol_size(len)?;
    let capacity = config.n() * config.primary_sliver_len(sym);
    let buffer = read_with_capacity(&args.file, capacity)?;
    let encoded = encode_buffer(&config, buffer, len)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = args.out.join(name);
        let mut f = std::fs::File::create(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    };
    write("metadata.bcs", &encoded.metadata().to_bcs())?;
    for k in 0..config.n_shards() {
        let pair = SliverPairIndex(k);
        for axis in [SliverType::Primary, SliverType::Secondary] {
            let index = pair.to_sliver_index(axis, config.n_shards());
            write(
                &sliver_file_name(k, axis),
                encoded.sliver_bytes(axis, index),
            )?;
        }
    }
    let manifest = EncodeManifest {
        format_version: 1,
        blob_id: encoded.blob_id(),
        unencoded_length: len,
        n_shards: config.n_shards(),
        symbol_size: sym,
        primary_sliver_len: config.primary_sliver_len(sym),
        secondary_sliver_len: config.secondary_sliver_len(sym),
        metadata_file: "metadata.bcs",
        sliver_file_pattern: "pair-{pair:05}-{primary|secondary}.bin",
    };
    let manifest_json = serde_json::to_string_pretty(&manifest)?;
    write("manifest.json", manifest_json.as_bytes())?;
    if args.json {
        println!("{manifest_json}");
    } else {
        println!(
            "{}: {} sliver pairs ({} + {} bytes each) and metadata written to {}",
            encoded.blob_id(),
            config.n_shards(),
            manifest.primary_sliver_len,
            manifest.secondary_sliver_len,
            args.out.display()
        );
    }
    Ok(())
}

pub fn convert(args: ConvertArgs) -> Result<()> {
    let id = BlobId::from_decimal(args.decimal.trim())?;
    println!("{id}");
    Ok(())
}
