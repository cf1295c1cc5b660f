//! `floe bench encode`: encoding throughput and peak memory on this machine.
//!
//! Each mode runs in a fresh child process (this same binary) so that its peak RSS (`VmHWM`) is
//! its own; the parent prints a table. The input is a seeded pseudo-random file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use floe_core::EncodingConfig;
use floe_core::encode::{compute_metadata_from_source, encode_buffer};
use serde::{Deserialize, Serialize};

use crate::file_source::{FileSource, read_with_capacity};
use crate::units::parse_size;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Both modes, each in its own process.
    All,
    /// All sliver pairs and the metadata.
    Encode,
    /// Metadata and blob ID only, reading the file on demand.
    BlobId,
}

#[derive(Args)]
pub struct EncodeBench {
    /// Blob size, e.g. 64MiB, 256MiB, 1GiB, 1000000.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    size: u64,
    #[arg(long, default_value_t = 1000)]
    n_shards: u64,
    #[arg(long, value_enum, default_value_t = Mode::All)]
    mode: Mode,
    /// Timed repetitions per mode (the best is reported).
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Seed of the pseudo-random blob.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Use this file instead of generating one.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Print one JSON object per mode.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Measurement {
    mode: Mode,
    bytes: u64,
    n_shards: u16,
    best_seconds: f64,
    mean_seconds: f64,
    throughput_mib_s: f64,
    peak_rss_bytes: u64,
    blob_id: String,
}

fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Write `size` seeded pseudo-random bytes (xorshift64*) to `path`, in chunks.
fn write_random(path: &Path, size: u64, seed: u64) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            word.copy_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

pub fn run(args: EncodeBench) -> Result<()> {
    let config = EncodingConfig::from_u64(args.n_shards).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The blob's size: the given file's, or --size for a generated one.
    let size = match &args.input {
        Some(p) => std::fs::metadata(p)
            .with_context(|| format!("cannot read {}", p.display()))?
            .len(),
        None => args.size,
    };
    if size > config.max_blob_size() {
        bail!(
            "the blob is {size} bytes, above the maximum blob size {} for {} shards",
            config.max_blob_size(),
            config.n_shards()
        );
    }
    let (input, _guard) = match &args.input {
        Some(p) => (p.clone(), None),
        None => {
            let dir = std::env::temp_dir().join(format!("floe-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("blob.bin");
            write_random(&path, args.size, args.seed)?;
            (path, Some(TempDir(dir)))
        }
    };
    match args.mode {
        Mode::All => run_all(&args, &input),
        mode => {
            let m = measure(mode, &config, &input, args.repeat)?;
            if args.json {
                println!("{}", serde_json::to_string(&m)?);
            } else {
                print_table(&[m]);
            }
            Ok(())
        }
    }
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_all(args: &EncodeBench, input: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the floe binary to re-run")?;
    let mut results = Vec::new();
    for mode in ["encode", "blob-id"] {
        let out = Command::new(&exe)
            .args(["bench", "encode", "--json", "--mode", mode])
            .args(["--n-shards", &args.n_shards.to_string()])
            .args(["--repeat", &args.repeat.to_string()])
            .arg("--input")
            .arg(input)
            .output()
            .with_context(|| format!("cannot run {}", exe.display()))?;
        if !out.status.success() {
            bail!(
                "bench mode {mode} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        results.push(serde_json::from_slice::<Measurement>(&out.stdout)?);
    }
    if args.json {
        for r in &results {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print_table(&results);
    }
    Ok(())
}

fn measure(mode: Mode, config: &EncodingConfig, input: &Path, repeat: u32) -> Result<Measurement> {
    let mut times = Vec::new();
    let mut blob_id = String::new();
    let mut bytes = 0;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        match mode {
            Mode::Encode => {
                let len = floe_core::BlobSource::len(&FileSource::open(input)?);
                let sym = config.symbol_size(len)?;
                let buf = read_with_capacity(input, config.n() * config.primary_sliver_len(sym))?;
                let encoded = encode_buffer(config, buf, len)?;
                blob_id = encoded.blob_id().to_string();
                bytes = len;
            }
            Mode::BlobId => {
                let src = FileSource::open(input)?;
                bytes = floe_core::BlobSource::len(&src);
                blob_id = compute_metadata_from_source(config, &src)?
                    .blob_id
                    .to_string();
            }
            Mode::All => unreachable!("handled by run_all"),
        }
        times.push(start.elapsed().as_secs_f64());
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    Ok(Measurement {
        mode,
        bytes,
        n_shards: config.n_shards(),
        best_seconds: best,
        mean_seconds: mean,
        throughput_mib_s: bytes as f64 / (1 << 20) as f64 / best,
        peak_rss_bytes: peak_rss(),
        blob_id,
    })
}

fn print_table(results: &[Measurement]) {
    println!(
        "{:<8} {:>10} {:>6} {:>9} {:>9} {:>10} {:>11} {:>9}",
        "mode", "size MiB", "n", "best s", "mean s", "MiB/s", "peak RSS", "RSS/blob"
    );
    for m in results {
        let mib = m.bytes as f64 / (1 << 20) as f64;
        println!(
            "{:<8} {:>10.1} {:>6} {:>9.3} {:>9.3} {:>10.1} {:>7.0} MiB {:>8.2}x",
            match m.mode {
                Mode::Encode => "encode",
                Mode::BlobId => "blob-id",
                Mode::All => "all",
            },
            mib,
            m.n_shards,
            m.best_seconds,
            m.mean_seconds,
            m.throughput_mib_s,
            m.peak_rss_bytes as f64 / (1 << 20) as f64,
            m.peak_rss_bytes as f64 / m.bytes.max(1) as f64,
        );
    }
    if let Some(m) = results.first() {
        println!("blob id: {}", m.blob_id);
    }
}
