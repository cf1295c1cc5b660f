//! `floe bench ledger`: register + certify throughput of a real ledger server over HTTP, and
//! event-stream delivery latency.
//!
//! The server runs in this process on a loopback socket with its log in a temp directory (so
//! every acknowledgement includes a real fdatasync). Certificates are signed before the clock
//! starts: signing is the storage nodes' work, not the ledger's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use floe_core::metadata::derive_blob_id;
use floe_core::{BlobId, EncodingConfig, EncodingType, ObjectId};
use floe_crypto::{
    BlobPersistenceType, Certificate, CommitteeMember, CommitteeWeights, Confirmation,
    ProtocolKeyPair, SignedMessage,
};
use floe_ledger::{AccountKey, EventKind, GenesisConfig, GenesisNode, LedgerState, TxKind};
use floe_ledger_service::{Ledger, OpenError, ReplicaOptions, SystemClock};
use floe_log::LogError;
use rayon::prelude::*;
use serde_json::Value;

#[derive(Args)]
pub struct LedgerBench {
    /// Blobs to register and certify.
    #[arg(long, default_value_t = 2000)]
    blobs: usize,
    /// Concurrent HTTP clients (each its own account).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Storage nodes in the committee.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    #[arg(long, default_value_t = 1000)]
    n_shards: u16,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Run the ledger as a replica over a local 3-member etcd cluster (the `etcd` binary from
    /// PATH) instead of the embedded file log.
    #[arg(long)]
    etcd: bool,
    /// Snapshot every this many log entries (0: never; the restart then replays everything).
    #[arg(long, default_value_t = 1000)]
    snapshot_every: u64,
    /// Restarts to time after the load (the report gives the median one and every sample: a
    /// single restart of a few tens of milliseconds varies by as much on a busy machine).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    restarts: u32,
}

struct Prepared {
    blob_id: BlobId,
    root: [u8; 32],
    certificate: Certificate,
}

fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

pub fn run(args: LedgerBench) -> Result<()> {
    if args.blobs == 0 || args.clients == 0 || args.nodes == 0 {
        bail!("--blobs, --clients and --nodes must be positive");
    }
    EncodingConfig::new(args.n_shards).map_err(|e| anyhow::anyhow!("{e}"))?;
    let keys: Vec<ProtocolKeyPair> = (0..args.nodes)
        .map(|i| ProtocolKeyPair::from_seed(&seed("bench-bls", i as u64)))
        .collect();
    let ops: Vec<AccountKey> = (0..args.nodes)
        .map(|i| AccountKey::from_seed(&seed("bench-op", i as u64)))
        .collect();
    let genesis = GenesisConfig::new(
        args.n_shards,
        24 * 3600 * 1000,
        floe_ledger_service::Clock::now_ms(&SystemClock),
        keys.iter()
            .zip(&ops)
            .enumerate()
            .map(|(i, (k, op))| {
                GenesisNode::new(
                    format!("bench-{i}"),
                    format!("127.0.0.1:{}", 30000 + i),
                    k,
                    op,
                    u64::MAX / (args.nodes as u64 * 2),
                )
            })
            .collect(),
    );
    let state = LedgerState::genesis(&genesis).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Committee order → key, and the smallest quorum prefix.
    let committee: Vec<(usize, u16)> = state
        .committee()
        .members
        .iter()
        .map(|m| {
            let pk = state.nodes()[&m.node_id].protocol_key;
            (
                keys.iter()
                    .position(|k| *k.public_key() == pk)
                    .expect("member key"),
                m.shards.len() as u16,
            )
        })
        .collect();
    let weights = CommitteeWeights::new(
        committee
            .iter()
            .map(|(k, w)| CommitteeMember {
                public_key: *keys[*k].public_key(),
                weight: *w,
            })
            .collect(),
        args.n_shards,
    )?;
    let quorum = state.encoding_config().quorum();
    let mut signers = Vec::new();
    let mut acc = 0;
    for (i, (_, w)) in committee.iter().enumerate() {
        if acc >= quorum {
            break;
        }
        acc += w;
        signers.push(i);
    }
    eprintln!(
        "signing {} certificates ({} signers each)…",
        args.blobs,
        signers.len()
    );
    let prepared: Vec<Prepared> = (0..args.blobs)
        .into_par_iter()
        .map(|i| {
            let root = seed("bench-root", i as u64);
            let blob_id = derive_blob_id(EncodingType::RS2, 1000 + i as u64, &root);
            let msg = Confirmation::new(0, blob_id, BlobPersistenceType::Permanent).to_message();
            let partials: Vec<_> = signers
                .iter()
                .map(|&m| (m, SignedMessage::sign(&keys[committee[m].0], &msg)))
                .collect();
            let certificate = Certificate::aggregate(&weights, &partials).expect("valid partials");
            Prepared {
                blob_id,
                root,
                certificate,
            }
        })
        .collect();

    let dir = std::env::temp_dir().join(format!("floe-bench-ledger-{}", std::process::id()));
    let _cleanup = Cleanup(dir.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(drive(args, genesis, dir, prepared))?;
    println!("{report}");
    Ok(())
}

struct Cleanup(std::path::PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `floe bench ledger --json`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LedgerReport {
    blobs: usize,
    clients: usize,
    nodes: usize,
    n_shards: u16,
    seconds: f64,
    certified_blobs_per_second: f64,
    transactions_per_second: f64,
    register_plus_certify_ms: Latency,
    event_delivery_ms: Latency,
    restart: Restart,
    /// `file` or `etcd`.
    backend: &'static str,
    /// Log entries at the restart (also in `restart`; kept at the top for older scripts).
    entries: u64,
    /// The restart's time (also `restart.replayMs`; the name older scripts read).
    #[serde(rename = "restart_ms")]
    restart_ms: f64,
}

#[derive(Debug, serde::Serialize)]
struct Latency {
    #[serde(skip_serializing_if = "Option::is_none")]
    samples: Option<usize>,
    p50: f64,
    p99: f64,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Restart {
    entries: u64,
    replay_ms: f64,
    phases: floe_ledger_service::OpenStats,
    /// From the restart's start until the snapshot's history (events, digests, certificates)
    /// had been read on its own thread; the ledger serves from `replay_ms` on, and a request
    /// for history before this waits for it. `None` when there was none to read (a full
    /// replay, or a snapshot older than format 11).
    #[serde(skip_serializing_if = "Option::is_none")]
    history_ms: Option<f64>,
    /// Every restart's time, in the order they ran (`replay_ms` and the phases are the
    /// median one's).
    samples_ms: Vec<f64>,
}

/// One timed restart.
struct RestartSample {
    ms: f64,
    replayed: u64,
    stats: floe_ledger_service::OpenStats,
    history_ms: Option<f64>,
}

/// Open the ledger in `dir` again (its snapshots and log), timed until it serves, then wait
/// for its snapshot's history and close it.
async fn restart_once(
    dir: &std::path::Path,
    genesis: &GenesisConfig,
    replica_options: &Option<ReplicaOptions>,
    args: &LedgerBench,
) -> Result<RestartSample> {
    let mut t = Instant::now();
    let mut attempt = 0;
    let reopened = loop {
        if let Some(o) = replica_options {
            break Ledger::open_replicated(
                &dir.join("replica"),
                genesis.clone(),
                Arc::new(SystemClock),
                o.clone(),
            )
            .await
            .context("reopen ledger replica")?;
        }
        match Ledger::open_with_snapshots(
            dir,
            genesis.clone(),
            Arc::new(SystemClock),
            args.snapshot_every,
        ) {
            Ok(l) => break l,
            // The log's lock is released once the last handle (a connection task of the
            // stopped server, or the previous restart's committer thread) is gone.
            Err(OpenError::Log(LogError::Locked { .. })) if attempt < 250 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                // Waiting for the lock is not part of the restart.
                t = Instant::now();
            }
            Err(e) => return Err(e).context("reopen ledger"),
        }
    };
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let history_ms = reopened
        .wait_history()
        .map_err(|reason| anyhow::anyhow!("the snapshot's history: {reason}"))?
        .map(|ended| ended.saturating_duration_since(t).as_secs_f64() * 1e3);
    // A clean stop, as `floe ledger run` stops: the next restart finds no work of this one
    // still running.
    reopened
        .close()
        .await
        .context("close the reopened ledger")?;
    Ok(RestartSample {
        ms,
        replayed: reopened.progress().0,
        stats: reopened.open_stats(),
        history_ms,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &floe_ledger::SignedTransaction,
) -> Result<Value> {
    let resp = client.post(url).json(body).send().await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    if !status.is_success() {
        bail!("{status}: {v}");
    }
    Ok(v)
}

async fn drive(
    args: LedgerBench,
    genesis: GenesisConfig,
    dir: std::path::PathBuf,
    prepared: Vec<Prepared>,
) -> Result<String> {
    let members = if args.etcd {
        Some(
            floe_ledger_etcd::EtcdMembers::start(&dir.join("etcd"), 3)
                .await
                .context("cannot run the etcd cluster for --etcd")?,
        )
    } else {
        None
    };
    let replica_options = members.as_ref().map(|m| ReplicaOptions {
        etcd: floe_ledger_etcd::EtcdLogConfig::new(m.endpoints(), "/bench/"),
        snapshot_every: args.snapshot_every,
        prune: true,
        peers: Vec::new(),
    });
    let ledger = match &replica_options {
        Some(o) => Ledger::open_replicated(
            &dir.join("replica"),
            genesis.clone(),
            Arc::new(SystemClock),
            o.clone(),
        )
        .await
        .context("open ledger replica")?,
        None => Ledger::open_with_snapshots(
            &dir,
            genesis.clone(),
            Arc::new(SystemClock),
            args.snapshot_every,
        )
        .context("open ledger")?,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(floe_ledger_service::serve(
        ledger.clone(),
        listener,
        async {
            let _ = stop_rx.await;
        },
    ));
    let client =
        floe_tls::http_client(reqwest::Client::builder().pool_max_idle_per_host(args.clients))?;
    let prepared = Arc::new(prepared);
    let next = Arc::new(AtomicUsize::new(0));
    // When each certify request was sent, to time event delivery.
    let sent_at: Arc<Mutex<HashMap<BlobId, Instant>>> = Arc::default();
    let event_latency: Arc<Mutex<Vec<f64>>> = Arc::default();

    // Event follower.
    let follower = {
        let (client, base, sent_at, lat) = (
            client.clone(),
            base.clone(),
            sent_at.clone(),
            event_latency.clone(),
        );
        let total = prepared.len();
        tokio::spawn(async move {
            let mut cursor = 0u64;
            let mut seen = 0usize;
            while seen < total {
                let url = format!("{base}/v1/events?cursor={cursor}&waitMs=2000");
                let Ok(resp) = client.get(&url).send().await else {
                    continue;
                };
                let Ok(v) = resp.json::<Value>().await else {
                    continue;
                };
                let data = &v["success"]["data"];
                let now = Instant::now();
                for e in data["events"].as_array().into_iter().flatten() {
                    let kind: Option<EventKind> = serde_json::from_value(e["kind"].clone()).ok();
                    if let Some(EventKind::BlobCertified { blob_id, .. }) = kind {
                        if let Some(t) = sent_at.lock().expect("lock").get(&blob_id) {
                            lat.lock()
                                .expect("lock")
                                .push(now.duration_since(*t).as_secs_f64() * 1e3);
                        }
                        seen += 1;
                    }
                }
                cursor = data["nextCursor"].as_u64().unwrap_or(cursor);
            }
        })
    };

    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (client, base, prepared, next, sent_at) = (
            client.clone(),
            base.clone(),
            prepared.clone(),
            next.clone(),
            sent_at.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let account = AccountKey::from_seed(&seed("bench-client", c as u64));
            let mut seq = 0u64;
            let mut latencies = Vec::new();
            let url = format!("{base}/v1/transactions");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = prepared.get(i) else { break };
                let t0 = Instant::now();
                let reg = account.sign(
                    seq,
                    TxKind::ReserveAndRegister {
                        end_epoch: 5,
                        blob_id: p.blob_id,
                        root_hash: p.root,
                        size: 1000 + i as u64,
                        encoding_type: EncodingType::RS2,
                        deletable: false,
                    },
                );
                let v = post(&client, &url, &reg).await?;
                seq += 1;
                let object: ObjectId = v["success"]["data"]["events"]
                    .as_array()
                    .and_then(|evs| {
                        evs.iter()
                            .find_map(|e| e["kind"]["blobRegistered"]["objectId"].as_str())
                    })
                    .context("no BlobRegistered event")?
                    .parse()?;
                let cert = account.sign(
                    seq,
                    TxKind::CertifyBlob {
                        blob_object: object,
                        certificate: p.certificate.clone(),
                    },
                );
                sent_at
                    .lock()
                    .expect("lock")
                    .insert(p.blob_id, Instant::now());
                post(&client, &url, &cert).await?;
                seq += 1;
                latencies.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let follower_abort = follower.abort_handle();
    if tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .is_err()
    {
        follower_abort.abort();
    }
    // Close the client's pooled keep-alive connections first: the server's task for each holds
    // the ledger (and so its log's lock) until the connection ends, and the restart below
    // opens the same log.
    drop(client);
    let _ = stop_tx.send(());
    let _ = server.await;
    let entries = ledger.progress().0;
    drop(ledger);
    // Restarts: each opens the same log (its snapshots and tail) again.
    let mut samples = Vec::with_capacity(args.restarts as usize);
    for _ in 0..args.restarts {
        let sample = restart_once(&dir, &genesis, &replica_options, &args).await?;
        // Every restart must come back whole. A replica may also see checkpoint entries
        // appended after the load stopped.
        let replayed = sample.replayed;
        if replayed < entries || (!args.etcd && replayed != entries) {
            bail!("the reopened ledger replayed {replayed} entries, not {entries}");
        }
        samples.push(sample);
    }
    let all_ms: Vec<f64> = samples.iter().map(|s| s.ms).collect();
    samples.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    let median = samples.swap_remove(samples.len() / 2);
    let (replay_ms, stats, history_ms) = (median.ms, median.stats, median.history_ms);
    latencies.sort_by(f64::total_cmp);
    let mut ev = event_latency.lock().expect("lock").clone();
    ev.sort_by(f64::total_cmp);
    let n = latencies.len();
    let report = LedgerReport {
        blobs: n,
        clients: args.clients,
        nodes: args.nodes,
        n_shards: args.n_shards,
        seconds: elapsed,
        certified_blobs_per_second: n as f64 / elapsed,
        transactions_per_second: 2.0 * n as f64 / elapsed,
        register_plus_certify_ms: Latency {
            samples: None,
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
        },
        event_delivery_ms: Latency {
            samples: Some(ev.len()),
            p50: percentile(&ev, 0.5),
            p99: percentile(&ev, 0.99),
        },
        restart: Restart {
            entries,
            replay_ms,
            phases: stats,
            history_ms,
            samples_ms: all_ms,
        },
        backend: if args.etcd { "etcd" } else { "file" },
        entries,
        restart_ms: replay_ms,
    };
    Ok(if args.json {
        serde_json::to_string(&report)?
    } else {
        format!(
            "ledger: {n} blobs registered+certified by {} clients in {elapsed:.2} s = {:.0} certified blobs/s ({:.0} tx/s)\n\
             register+certify latency p50 {:.1} ms, p99 {:.1} ms; BlobCertified event delivered p50 {:.1} ms, p99 {:.1} ms after the certify request ({} samples)\n\
             restart ({} log): {entries} log entries, back in {replay_ms:.0} ms ({:.0} entries/s; \
             log read {:.0} ms, snapshot {:.0} ms, {} entries applied in {:.0} ms{})",
            args.clients,
            n as f64 / elapsed,
            2.0 * n as f64 / elapsed,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&ev, 0.5),
            percentile(&ev, 0.99),
            ev.len(),
            match (args.etcd, args.snapshot_every) {
                (true, _) => "etcd, from a snapshot + the tail",
                (false, 0) => "file, full replay",
                (false, _) => "file, from a snapshot + the tail",
            },
            entries as f64 / (replay_ms / 1e3).max(1e-9),
            stats.log_ms,
            stats.snapshot_ms,
            stats.replayed,
            stats.replay_ms,
            history_ms
                .map(|h| format!("; the snapshot's history read by {h:.0} ms"))
                .unwrap_or_default(),
        )
    })
}
