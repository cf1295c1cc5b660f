//! `floe bench client`: store and read throughput of the client library against a local
//! network (a ledger and storage nodes on loopback sockets, fjall stores with synced writes),
//! and the latency of a small store split into encoding and the rest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use floe_client::{Client, ClientConfig, Lifetime, NoProgress, ReadOptions, StoreOptions};
use floe_ledger::AccountKey;
use floe_testbed::{Testbed, TestbedOptions};
use serde::Serialize;

#[derive(Args)]
pub struct ClientBench {
    /// Storage nodes.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    #[arg(long, default_value_t = 1000)]
    n_shards: u16,
    /// Blob sizes to measure (e.g. 1KiB,1MiB,64MiB).
    #[arg(long, value_delimiter = ',', default_value = "1KiB,1MiB,64MiB", value_parser = crate::units::parse_size)]
    sizes: Vec<u64>,
    /// Stores (and reads) per size; the largest sizes use fewer (at least 2).
    #[arg(long, default_value_t = 10)]
    repeat: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// One blob size's figures (`floe bench client --json` prints a list; keys in snake_case, as
/// since the first version of this bench).
#[derive(Debug, Serialize)]
struct ClientRow {
    size: u64,
    runs: usize,
    store_p50_ms: f64,
    store_p99_ms: f64,
    encode_p50_ms: f64,
    /// Registration + distribution + confirmations + certification.
    rest_p50_ms: f64,
    register_p50_ms: f64,
    upload_p50_ms: f64,
    certify_p50_ms: f64,
    store_mib_s: f64,
    read_p50_ms: f64,
    read_mib_s: f64,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn run(args: ClientBench) -> Result<()> {
    if args.sizes.is_empty() || args.repeat == 0 {
        bail!("--sizes and --repeat must not be empty or zero");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let dir = tempfile::tempdir().context("temp dir")?;
        let setup = Instant::now();
        let bed = Testbed::start(
            dir.path(),
            TestbedOptions {
                nodes: args.nodes,
                n_shards: args.n_shards,
                ..TestbedOptions::default()
            },
        )
        .await?;
        if !args.json {
            println!(
                "network: {} nodes, n = {} shards, started in {:.1} s (data in {})",
                args.nodes,
                args.n_shards,
                setup.elapsed().as_secs_f64(),
                dir.path().display()
            );
        }
        let client = Client::new(
            ClientConfig {
                ledger_url: bed.ledger_url(),
                ..ClientConfig::default()
            },
            Some(AccountKey::from_seed(&[42; 32])),
        )?;
        let options = StoreOptions {
            lifetime: Lifetime::Epochs(1),
            deletable: false,
            force: true,
        };
        let mut rows = Vec::new();
        for &size in &args.sizes {
            let repeat = if size >= 32 << 20 {
                args.repeat.clamp(2, 3)
            } else {
                args.repeat
            };
            let (mut total, mut encode, mut rest, mut reads) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut register, mut upload, mut certify) = (Vec::new(), Vec::new(), Vec::new());
            for k in 0..repeat {
                let data: Vec<u8> = (0..size)
                    .map(|i| (i as u8) ^ (k as u8).wrapping_mul(31) ^ ((i >> 9) as u8))
                    .collect();
                let t = Instant::now();
                let outcome = client
                    .store(data.clone(), &options, Arc::new(NoProgress))
                    .await?;
                total.push(t.elapsed());
                encode.push(outcome.timings.encode);
                register.push(outcome.timings.register);
                upload.push(outcome.timings.upload);
                certify.push(outcome.timings.certify);
                rest.push(t.elapsed().saturating_sub(outcome.timings.encode));
                let id = outcome.result.blob_id().context("stored blob has an ID")?;
                let t = Instant::now();
                let back = client
                    .read(&id, ReadOptions::default(), Arc::new(NoProgress))
                    .await?;
                reads.push(t.elapsed());
                if back != data {
                    bail!("read back different bytes for a {size}-byte blob");
                }
            }
            for v in [
                &mut total,
                &mut encode,
                &mut rest,
                &mut reads,
                &mut register,
                &mut upload,
                &mut certify,
            ] {
                v.sort();
            }
            let mib = size as f64 / (1024.0 * 1024.0);
            let store_p50 = pct(&total, 0.5);
            let read_p50 = pct(&reads, 0.5);
            rows.push(ClientRow {
                size,
                runs: repeat,
                store_p50_ms: ms(store_p50),
                store_p99_ms: ms(pct(&total, 0.99)),
                encode_p50_ms: ms(pct(&encode, 0.5)),
                rest_p50_ms: ms(pct(&rest, 0.5)),
                register_p50_ms: ms(pct(&register, 0.5)),
                upload_p50_ms: ms(pct(&upload, 0.5)),
                certify_p50_ms: ms(pct(&certify, 0.5)),
                store_mib_s: mib / store_p50.as_secs_f64(),
                read_p50_ms: ms(read_p50),
                read_mib_s: mib / read_p50.as_secs_f64(),
            });
        }
        bed.shutdown().await;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(());
        }
        println!(
            "{:>10} {:>5} {:>11} {:>11} {:>11} {:>11} {:>10} {:>11} {:>10}",
            "size", "runs", "store p50", "encode p50", "rest p50", "store p99", "store MiB/s",
            "read p50", "read MiB/s"
        );
        for r in &rows {
            println!(
                "{:>10} {:>5} {:>9.1}ms {:>9.1}ms {:>9.1}ms {:>9.1}ms {:>10.2} {:>9.1}ms {:>10.2}",
                crate::units::format_size(r.size),
                r.runs,
                r.store_p50_ms,
                r.encode_p50_ms,
                r.rest_p50_ms,
                r.store_p99_ms,
                r.store_mib_s,
                r.read_p50_ms,
                r.read_mib_s,
            );
        }
        println!(
            "rest = registration + distribution + confirmations + certification (target ≤ 100 ms for 1 KiB)"
        );
        for r in &rows {
            println!(
                "{:>10}: rest p50 split: register {:.1} ms, upload until quorum + tail {:.1} ms, certify {:.1} ms",
                crate::units::format_size(r.size),
                r.register_p50_ms,
                r.upload_p50_ms,
                r.certify_p50_ms,
            );
        }
        Ok(())
    })
}
