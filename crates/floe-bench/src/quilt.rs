//! `floe bench quilt`: many small files as one quilt against the same files as single blobs,
//! on a local network (a ledger and storage nodes on loopback sockets, fjall stores with
//! synced writes, in this process).
//!
//! For each way it reports the wall time of storing every file, the encoded bytes charged on
//! the ledger (the storage resources' `storageSize`, which counts the metadata once per shard),
//! and the growth of the nodes' directories on disk. For the quilt it also reports the latency
//! and the bytes fetched of a patch read by patch ID (its columns only) against a whole-quilt
//! read.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use floe_client::{
    BlobStoreResult, Client, ClientConfig, Lifetime, NoProgress, ReadOptions, StoreOptions,
};
use floe_core::quilt::{QuiltPatchInput, Tags};
use floe_ledger::AccountKey;
use floe_testbed::{Testbed, TestbedOptions};
use rand::{RngCore, SeedableRng};
use serde::Serialize;

#[derive(Args)]
pub struct QuiltBench {
    /// Storage nodes.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    #[arg(long, default_value_t = 1000)]
    n_shards: u16,
    /// Files in the quilt.
    #[arg(long, default_value_t = 600)]
    files: usize,
    /// Size of each file (e.g. 10KiB).
    #[arg(long, default_value = "10KiB", value_parser = crate::units::parse_size)]
    file_size: u64,
    /// How many of the files to also store as single blobs (0 skips that part; fewer than
    /// --files measures a sample, and the report says so).
    #[arg(long)]
    singles: Option<usize>,
    /// Single blobs stored at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Patch reads to time.
    #[arg(long, default_value_t = 20)]
    reads: usize,
    /// Seed of the file contents.
    #[arg(long, default_value_t = 18)]
    seed: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The figures of one way of storing the files.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreFigures {
    pub files: usize,
    pub seconds: f64,
    pub encoded_bytes_charged: u64,
    pub disk_bytes: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadFigures {
    pub runs: usize,
    pub p50_ms: f64,
    pub max_ms: f64,
    /// Bytes fetched from nodes by one read: metadata plus slivers.
    pub bytes_fetched: u64,
    pub slivers_fetched: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub nodes: usize,
    pub n_shards: u16,
    pub file_size: u64,
    pub quilt_id: String,
    pub quilt_blob_bytes: u64,
    pub quilt_symbol_size: u16,
    pub quilt: StoreFigures,
    pub singles: Option<StoreFigures>,
    pub patch_read: ReadFigures,
    pub whole_quilt_read: ReadFigures,
}

/// Bytes allocated on disk to every file under `dir` (512-byte blocks, as `du`): a journal
/// preallocated or written sparsely counts what it holds, not its length.
fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

fn nodes_bytes(bed: &Testbed) -> u64 {
    (0..bed.node_count())
        .map(|i| dir_bytes(&bed.node_dir(i)))
        .sum()
}

fn charged(result: &BlobStoreResult) -> u64 {
    match result {
        BlobStoreResult::NewlyCreated { blob_object, .. } => blob_object.storage.storage_size,
        _ => 0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn read_figures(mut times: Vec<Duration>, bytes: u64, slivers: usize) -> ReadFigures {
    times.sort();
    ReadFigures {
        runs: times.len(),
        p50_ms: ms(times[times.len() / 2]),
        max_ms: ms(*times.last().unwrap_or(&Duration::ZERO)),
        bytes_fetched: bytes,
        slivers_fetched: slivers,
    }
}

pub fn run(args: QuiltBench) -> Result<()> {
    if args.files == 0 || args.reads == 0 || args.concurrency == 0 {
        bail!("--files, --reads and --concurrency must be positive");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(measure(&args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print(&report);
    Ok(())
}

async fn measure(args: &QuiltBench) -> Result<Report> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let bed = Testbed::start(
        dir.path(),
        TestbedOptions {
            nodes: args.nodes,
            n_shards: args.n_shards,
            ..TestbedOptions::default()
        },
    )
    .await?;
    let mut config = ClientConfig {
        ledger_url: bed.ledger_url(),
        ..ClientConfig::default()
    };
    // Every node shares this machine's cores with the client: a node busy for a few seconds
    // is slow, not gone, so it is not declared silent as quickly as over a network.
    config.communication.silent_after_ms = 15_000;
    config.communication.probe_timeout_ms = 15_000;
    let client = Client::new(config, Some(AccountKey::from_seed(&[18; 32])))?;
    let options = StoreOptions {
        lifetime: Lifetime::Epochs(1),
        deletable: true,
        force: true,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let files: Vec<(String, Vec<u8>)> = (0..args.files)
        .map(|i| {
            let mut data = vec![0u8; args.file_size as usize];
            rng.fill_bytes(&mut data);
            (format!("file-{i:04}.bin"), data)
        })
        .collect();
    let inputs: Vec<QuiltPatchInput<'_>> = files
        .iter()
        .map(|(id, data)| QuiltPatchInput {
            identifier: id.clone(),
            tags: Tags::new(),
            data,
        })
        .collect();

    // One quilt.
    let before = nodes_bytes(&bed);
    let started = Instant::now();
    let stored = client
        .store_quilt(&inputs, &options, Arc::new(NoProgress))
        .await?;
    let quilt = StoreFigures {
        files: args.files,
        seconds: started.elapsed().as_secs_f64(),
        encoded_bytes_charged: charged(&stored.outcome.result),
        disk_bytes: nodes_bytes(&bed).saturating_sub(before),
    };
    let quilt_id = stored.quilt_id;
    eprintln!(
        "quilt of {} files stored in {:.1} s ({} encoded bytes charged)",
        args.files, quilt.seconds, quilt.encoded_bytes_charged
    );
    let quilt_blob_bytes = match &stored.outcome.result {
        BlobStoreResult::NewlyCreated { blob_object, .. } => blob_object.size,
        _ => 0,
    };

    // One patch by patch ID (as the aggregator reads it): a fresh open each time, so every
    // run fetches the metadata and the patch's columns.
    let mut times = Vec::new();
    let mut last = None;
    for k in 0..args.reads {
        let patch = &stored.index.patches[(k * 7919) % stored.index.patches.len()];
        let t = Instant::now();
        let open = client.open_quilt(&quilt_id).await?;
        let read = open.patch_by_internal_id(patch.internal_id()).await?;
        times.push(t.elapsed());
        let want = &files
            .iter()
            .find(|f| f.0 == patch.identifier)
            .context("file")?
            .1;
        if &read.data != want {
            bail!("patch {} read back different bytes", patch.identifier);
        }
        last = Some(open.stats());
    }
    let stats = last.context("at least one read")?;
    let patch_read = read_figures(times, stats.total_bytes(), stats.slivers);
    let mut times = Vec::new();
    let reads = args.reads.min(3);
    for _ in 0..reads {
        let t = Instant::now();
        client
            .read(&quilt_id, ReadOptions::default(), Arc::new(NoProgress))
            .await?;
        times.push(t.elapsed());
    }
    // A whole read fetches the metadata and p primary slivers of s symbols: the quilt's bytes.
    let metadata = stats.metadata_bytes;
    let p = usize::from(floe_core::EncodingConfig::new(args.n_shards)?.n_primary_source());
    let whole_quilt_read = read_figures(times, metadata + quilt_blob_bytes, p);
    eprintln!(
        "patch read p50 {:.1} ms ({} bytes fetched); whole quilt read p50 {:.1} ms",
        patch_read.p50_ms, patch_read.bytes_fetched, whole_quilt_read.p50_ms
    );

    // The same files as single blobs.
    let singles = match args.singles.unwrap_or(args.files).min(args.files) {
        0 => None,
        count => {
            Some(store_singles(&client, &bed, &files[..count], &options, args.concurrency).await?)
        }
    };
    bed.shutdown().await;
    Ok(Report {
        nodes: args.nodes,
        n_shards: args.n_shards,
        file_size: args.file_size,
        quilt_id: quilt_id.to_string(),
        quilt_blob_bytes,
        quilt_symbol_size: floe_core::EncodingConfig::new(args.n_shards)?
            .symbol_size(quilt_blob_bytes)?,
        quilt,
        singles,
        patch_read,
        whole_quilt_read,
    })
}

async fn store_singles(
    client: &Client,
    bed: &Testbed,
    files: &[(String, Vec<u8>)],
    options: &StoreOptions,
    concurrency: usize,
) -> Result<StoreFigures> {
    let before = nodes_bytes(bed);
    let started = Instant::now();
    let mut charged_total = 0;
    for (k, chunk) in files.chunks(concurrency).enumerate() {
        if k % 10 == 0 {
            eprintln!(
                "single blobs: {} of {} stored",
                k * concurrency,
                files.len()
            );
        }
        let mut set = tokio::task::JoinSet::new();
        for (_, data) in chunk {
            let client = client.clone();
            let data = data.clone();
            let options = options.clone();
            set.spawn(async move { client.store(data, &options, Arc::new(NoProgress)).await });
        }
        while let Some(joined) = set.join_next().await {
            charged_total += charged(&joined??.result);
        }
    }
    Ok(StoreFigures {
        files: files.len(),
        seconds: started.elapsed().as_secs_f64(),
        encoded_bytes_charged: charged_total,
        disk_bytes: nodes_bytes(bed).saturating_sub(before),
    })
}

fn print(r: &Report) {
    use crate::units::format_size as size;
    println!(
        "network: {} nodes, n = {}; {} files of {}",
        r.nodes,
        r.n_shards,
        r.quilt.files,
        size(r.file_size)
    );
    println!(
        "quilt {}: {} blob, symbol size {} B",
        r.quilt_id,
        size(r.quilt_blob_bytes),
        r.quilt_symbol_size
    );
    println!(
        "{:<26} {:>7} {:>10} {:>16} {:>14}",
        "", "files", "time", "encoded charged", "disk growth"
    );
    let row = |name: &str, f: &StoreFigures| {
        println!(
            "{:<26} {:>7} {:>9.1}s {:>16} {:>14}",
            name,
            f.files,
            f.seconds,
            size(f.encoded_bytes_charged),
            size(f.disk_bytes)
        );
    };
    row("one quilt", &r.quilt);
    if let Some(s) = &r.singles {
        row("single blobs", s);
        let per_file = |f: &StoreFigures| f.encoded_bytes_charged as f64 / f.files as f64;
        println!(
            "encoded bytes charged per file: {:.0}x less in the quilt",
            per_file(s) / per_file(&r.quilt)
        );
    }
    for (name, f) in [
        ("patch read (by patch ID)", &r.patch_read),
        ("whole quilt read", &r.whole_quilt_read),
    ] {
        println!(
            "{:<26} p50 {:>7.1} ms, max {:>7.1} ms over {} runs; {} fetched ({} slivers + metadata)",
            name,
            f.p50_ms,
            f.max_ms,
            f.runs,
            size(f.bytes_fetched),
            f.slivers_fetched
        );
    }
}
