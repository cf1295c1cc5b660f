//! Crash test of the real `floe ledger run` process: concurrent clients submit registrations and
//! certifications, the process is SIGKILLed mid-stream, restarted on the same data directory,
//! and everything it acknowledged must still be there. Each cycle then stops the server with
//! SIGTERM and checks that `floe ledger replay` reproduces the digest and state hash it served.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use floe_core::metadata::derive_blob_id;
use floe_core::{BlobId, EncodingType, ObjectId};
use floe_crypto::{BlobPersistenceType, Certificate, Confirmation, ProtocolKeyPair, SignedMessage};
use floe_ledger::{AccountKey, GenesisConfig, LedgerState, SignedTransaction, TxKind};
use serde_json::Value;

/// Kill/restart cycles.
const CYCLES: usize = 3;
/// Concurrent clients per cycle, each with its own account.
const CLIENTS: u64 = 6;
/// Load before the SIGKILL.
const LOAD: Duration = Duration::from_millis(1500);
/// Upper bound on blobs per client per cycle (the kill normally ends the stream first).
const MAX_BLOBS_PER_CLIENT: u64 = 5_000;

fn floe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floe"))
}

fn seed(run: u64, tag: &str, a: u64, b: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[
        b"floe-crash-test",
        &run.to_le_bytes(),
        tag.as_bytes(),
        &a.to_le_bytes(),
        &b.to_le_bytes(),
    ])
}

/// The committee's keys in signer-bitmap order, and the genesis state for certificate weights.
struct Committee {
    state: LedgerState,
    keys: Vec<ProtocolKeyPair>,
}

impl Committee {
    fn load(genesis: &GenesisConfig, keys_dir: &Path) -> Self {
        let state = LedgerState::genesis(genesis).expect("the generated genesis is valid");
        let mut files = Vec::new();
        for i in 0..genesis.nodes.len() {
            let path = keys_dir.join(format!("node-{i}.json"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let v: Value = serde_json::from_str(&text).unwrap();
            let bls = ProtocolKeyPair::from_tagged_base64(v["protocolKey"].as_str().unwrap())
                .expect("protocolKey is tagged base64");
            let mut account_seed = [0u8; 32];
            hex::decode_to_slice(v["accountSeed"].as_str().unwrap(), &mut account_seed).unwrap();
            let account = AccountKey::from_seed(&account_seed);
            // The key files match the genesis they were generated with.
            let node = genesis
                .nodes
                .iter()
                .find(|n| n.name == v["name"].as_str().unwrap())
                .expect("a genesis node for every key file");
            assert_eq!(node.protocol_key, *bls.public_key(), "{}", path.display());
            assert_eq!(node.owner, account.address(), "{}", path.display());
            files.push(bls);
        }
        let keys = state
            .committee()
            .members
            .iter()
            .map(|m| {
                let pk = state.nodes()[&m.node_id].protocol_key;
                files
                    .iter()
                    .find(|k| *k.public_key() == pk)
                    .expect("a key for every member")
                    .clone()
            })
            .collect();
        Self { state, keys }
    }

    fn quorum_certificate(
        &self,
        blob_id: BlobId,
        object: ObjectId,
        deletable: bool,
    ) -> Certificate {
        let quorum = self.state.encoding_config().quorum();
        let mut weight = 0u16;
        let mut partials = Vec::new();
        let persistence = if deletable {
            BlobPersistenceType::Deletable { object_id: object }
        } else {
            BlobPersistenceType::Permanent
        };
        let msg = Confirmation::new(0, blob_id, persistence).to_message();
        for (i, m) in self.state.committee().members.iter().enumerate() {
            if weight >= quorum {
                break;
            }
            weight += m.shards.len() as u16;
            partials.push((i, SignedMessage::sign(&self.keys[i], &msg)));
        }
        Certificate::aggregate(self.state.committee_weights(), &partials).unwrap()
    }
}

/// A running `floe ledger run`; killed (SIGKILL) and reaped when dropped, so a failing test
/// leaves no process behind.
struct Server {
    child: Option<Child>,
    base: String,
    stderr_path: PathBuf,
}

impl Server {
    async fn start(genesis: &Path, data_dir: &Path, logs: &Path, n: usize) -> Server {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let stdout_path = logs.join(format!("run-{n}.out"));
        let stderr_path = logs.join(format!("run-{n}.err"));
        let child = floe()
            .args(["ledger", "run", "--genesis"])
            .arg(genesis)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            // Small log segments and frequent snapshots, so that the load rolls the log over
            // and prunes it many times between the kills.
            .args(["--snapshot-every", "50", "--log-segment-bytes", "16384"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).unwrap())
            .stderr(File::create(&stderr_path).unwrap())
            .spawn()
            .expect("floe ledger run starts");
        let mut server = Server {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            stderr_path,
        };
        let client = client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "floe ledger run exited with {status} before serving:\n{}",
                    server.stderr()
                );
            }
            if let Ok(r) = client.get(server.url("/v1/health")).send().await
                && r.status().is_success()
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "floe ledger run did not answer /v1/health within 30 s:\n{}",
                server.stderr()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL and reap.
    fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    async fn terminate(mut self) {
        let pid = self.pid().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(15);
        let child = self.child.as_mut().unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "floe ledger run did not exit within 15 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.child = None;
        assert!(
            status.success(),
            "floe ledger run exited with {status} after SIGTERM:\n{}",
            self.stderr()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let resp = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Everything the server acknowledged, across all cycles.
#[derive(Default)]
struct Acked {
    /// (entry index, hex digest after it).
    entries: Vec<(u64, String)>,
    /// (blob object, blob ID) of acknowledged registrations.
    registered: Vec<(ObjectId, BlobId)>,
    /// (blob object, blob ID) of acknowledged certifications.
    certified: Vec<(ObjectId, BlobId)>,
}

#[derive(Default)]
struct Counters {
    acked: AtomicU64,
    /// Submissions that ended in a transport error (expected around the kill).
    unacked: AtomicU64,
    /// Submissions answered with an error status (not expected).
    rejected: AtomicU64,
}

enum Outcome {
    Accepted(Value),
    ConnectionLost,
    Rejected,
}

async fn submit(
    client: &reqwest::Client,
    url: &str,
    tx: &SignedTransaction,
    acked: &Mutex<Acked>,
    counters: &Counters,
    rejections: &Mutex<Vec<String>>,
) -> Outcome {
    let result = client.post(url).json(tx).send().await;
    let resp = match result {
        Ok(r) => r,
        Err(_) => {
            counters.unacked.fetch_add(1, Ordering::Relaxed);
            return Outcome::ConnectionLost;
        }
    };
    let status = resp.status();
    let body: Value = match resp.json().await {
        Ok(b) => b,
        // The connection dropped while the answer was being read: not acknowledged.
        Err(_) => {
            counters.unacked.fetch_add(1, Ordering::Relaxed);
            return Outcome::ConnectionLost;
        }
    };
    if !status.is_success() {
        counters.rejected.fetch_add(1, Ordering::Relaxed);
        rejections.lock().unwrap().push(format!("{status}: {body}"));
        return Outcome::Rejected;
    }
    let data = body["success"]["data"].clone();
    let index = data["entryIndex"].as_u64().expect("entryIndex");
    let digest = data["digest"].as_str().expect("digest").to_string();
    acked.lock().unwrap().entries.push((index, digest));
    counters.acked.fetch_add(1, Ordering::Relaxed);
    Outcome::Accepted(data)
}

/// One client: register then certify, over and over, until the connection is lost.
#[allow(clippy::too_many_arguments)]
async fn client_loop(
    run: u64,
    cycle: u64,
    k: u64,
    base: String,
    committee: Arc<Committee>,
    acked: Arc<Mutex<Acked>>,
    counters: Arc<Counters>,
    rejections: Arc<Mutex<Vec<String>>>,
) {
    let client = client();
    let url = format!("{base}/v1/transactions");
    let account = AccountKey::from_seed(&seed(run, "account", cycle, k));
    for i in 0..MAX_BLOBS_PER_CLIENT {
        let root = seed(run, "root", cycle * 1_000 + k, i);
        let size = 1 + (i % 4096);
        let blob_id = derive_blob_id(EncodingType::RS2, size, &root);
        let deletable = i % 2 == 0;
        let register = account.sign(
            2 * i,
            TxKind::ReserveAndRegister {
                end_epoch: 10,
                blob_id,
                root_hash: root,
                size,
                encoding_type: EncodingType::RS2,
                deletable,
            },
        );
        let data = match submit(&client, &url, &register, &acked, &counters, &rejections).await {
            Outcome::Accepted(d) => d,
            _ => return,
        };
        let object: ObjectId = data["events"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|e| e["kind"]["blobRegistered"]["objectId"].as_str())
            .expect("a blobRegistered event")
            .parse()
            .unwrap();
        acked.lock().unwrap().registered.push((object, blob_id));
        let certificate = committee.quorum_certificate(blob_id, object, deletable);
        let certify = account.sign(
            2 * i + 1,
            TxKind::CertifyBlob {
                blob_object: object,
                certificate,
            },
        );
        match submit(&client, &url, &certify, &acked, &counters, &rejections).await {
            Outcome::Accepted(_) => acked.lock().unwrap().certified.push((object, blob_id)),
            _ => return,
        }
    }
}

/// Checks everything acknowledged so far against a (restarted) server.
async fn verify(server: &Server, acked: &Acked) -> usize {
    let client = client();
    let mut failures = Vec::new();
    let mut checked = 0;
    // Split the checks over a few concurrent tasks.
    let mut set = tokio::task::JoinSet::new();
    let lanes = 4;
    for lane in 0..lanes {
        let client = client.clone();
        let base = server.base.clone();
        let entries: Vec<_> = acked
            .entries
            .iter()
            .skip(lane)
            .step_by(lanes)
            .cloned()
            .collect();
        let registered: Vec<_> = acked
            .registered
            .iter()
            .skip(lane)
            .step_by(lanes)
            .cloned()
            .collect();
        let certified: Vec<_> = acked
            .certified
            .iter()
            .skip(lane)
            .step_by(lanes)
            .cloned()
            .collect();
        set.spawn(async move {
            let mut failures = Vec::new();
            let mut checked = 0;
            for (i, digest) in entries {
                let (status, body) = get_json(&client, &format!("{base}/v1/entries/{i}")).await;
                let got = body["success"]["data"]["digest"].as_str().unwrap_or("");
                if status != 200 || got != digest {
                    failures.push(format!(
                        "entry {i}: acked digest {digest}, now {status} {body}"
                    ));
                }
                checked += 1;
            }
            for (object, blob_id) in registered {
                let (status, body) =
                    get_json(&client, &format!("{base}/v1/objects/{object}")).await;
                let got = body["success"]["data"]["blob"]["blobId"]
                    .as_str()
                    .unwrap_or("");
                if status != 200 || got != blob_id.to_string() {
                    failures.push(format!(
                        "registered {object} ({blob_id}): now {status} {body}"
                    ));
                }
                checked += 1;
            }
            for (object, blob_id) in certified {
                let (status, body) = get_json(&client, &format!("{base}/v1/blobs/{blob_id}")).await;
                let st = &body["success"]["data"]["status"];
                if status != 200 || st["status"] != "certified" {
                    failures.push(format!("certified {blob_id}: now {status} {body}"));
                }
                let (_, body) = get_json(&client, &format!("{base}/v1/objects/{object}")).await;
                if body["success"]["data"]["blob"]["certifiedEpoch"].is_null() {
                    failures.push(format!("certified object {object} is not: {body}"));
                }
                checked += 1;
            }
            (checked, failures)
        });
    }
    while let Some(r) = set.join_next().await {
        let (c, f) = r.unwrap();
        checked += c;
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{} acknowledged writes lost or changed after the restart, e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    checked
}

/// The files of the crash test's ledger.
struct Dirs {
    genesis: PathBuf,
    keys: PathBuf,
    data: PathBuf,
    logs: PathBuf,
}

/// One ledger process per cycle under load, SIGKILLed with submissions in flight, restarted,
/// checked, stopped cleanly and replayed offline: as named steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let started = Instant::now();
    let run: u64 = std::env::var("FLOE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash test seed {run} (set FLOE_CRASH_SEED to repeat the accounts and blobs)");

    let tmp = tempfile::tempdir().unwrap();
    let dirs = Dirs {
        genesis: tmp.path().join("genesis.json"),
        keys: tmp.path().join("keys"),
        data: tmp.path().join("data"),
        logs: tmp.path().join("logs"),
    };
    std::fs::create_dir_all(&dirs.logs).unwrap();
    let committee = Arc::new(ledger_init_writes_the_genesis_and_keys(&dirs));

    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut starts = 0;
    // Every submission ever sent (acknowledged or not): a bound on the log's length.
    let mut submitted = 0u64;
    let mut last_replay_from = None;
    for cycle in 0..CYCLES as u64 {
        let cycle_start = Instant::now();
        let server = Server::start(&dirs.genesis, &dirs.data, &dirs.logs, starts).await;
        starts += 1;
        let counters = load_then_sigkill(run, cycle, server, &committee, &acked).await;
        submitted += counters.acked.load(Ordering::Relaxed)
            + counters.unacked.load(Ordering::Relaxed)
            + counters.rejected.load(Ordering::Relaxed);

        // Restart on the same directory: every acknowledged write is there.
        let server = Server::start(&dirs.genesis, &dirs.data, &dirs.logs, starts).await;
        starts += 1;
        let (checked, snapshot, entries) =
            the_restarted_ledger_has_every_acknowledged_write(&server, &acked, submitted).await;
        println!(
            "cycle {cycle}: acked {}, unacked {}, rejected {}; \
             after restart {entries} entries; {} cumulative acked writes checked ({} entries, \
             {} registrations, {} certifications); {:?}",
            counters.acked.load(Ordering::Relaxed),
            counters.unacked.load(Ordering::Relaxed),
            counters.rejected.load(Ordering::Relaxed),
            checked,
            snapshot.entries.len(),
            snapshot.registered.len(),
            snapshot.certified.len(),
            cycle_start.elapsed(),
        );
        assert!(
            counters.acked.load(Ordering::Relaxed) > 0,
            "no submission was acknowledged in cycle {cycle}"
        );
        last_replay_from = a_clean_stop_snapshots_and_an_offline_replay_agrees(server, &dirs).await;
    }
    // The load rolled the log over (16 KiB files) and pruned it behind its snapshots, between
    // kills: what the checks above held across.
    assert!(
        last_replay_from.is_some(),
        "the log was never pruned: the replay started from the genesis"
    );
    let total = acked.lock().unwrap().entries.len();
    println!(
        "crash test seed {run}: {CYCLES} cycles, {total} acknowledged entries, {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

/// `floe ledger init --generate 4` writes a genesis with the asked parameters and the keys.
fn ledger_init_writes_the_genesis_and_keys(dirs: &Dirs) -> Committee {
    let out = floe()
        .args(["ledger", "init", "--generate", "4", "--n-shards", "100"])
        .args(["--epoch-duration", "1h", "--keys-dir"])
        .arg(&dirs.keys)
        .arg("--out")
        .arg(&dirs.genesis)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "floe ledger init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: GenesisConfig =
        serde_json::from_str(&std::fs::read_to_string(&dirs.genesis).unwrap()).unwrap();
    assert_eq!(config.nodes.len(), 4);
    assert_eq!(config.n_shards, 100);
    assert_eq!(config.epoch_duration_ms, 3_600_000);
    Committee::load(&config, &dirs.keys)
}

/// Load from `CLIENTS` clients, then SIGKILL with submissions in flight: the clients stop,
/// and none of their submissions was refused. Returns what they counted.
async fn load_then_sigkill(
    run: u64,
    cycle: u64,
    server: Server,
    committee: &Arc<Committee>,
    acked: &Arc<Mutex<Acked>>,
) -> Arc<Counters> {
    let counters = Arc::new(Counters::default());
    let rejections = Arc::new(Mutex::new(Vec::new()));
    let mut clients = tokio::task::JoinSet::new();
    for k in 0..CLIENTS {
        clients.spawn(client_loop(
            run,
            cycle,
            k,
            server.base.clone(),
            Arc::clone(committee),
            Arc::clone(acked),
            Arc::clone(&counters),
            Arc::clone(&rejections),
        ));
    }
    tokio::time::sleep(LOAD).await;
    let acked_at_kill = counters.acked.load(Ordering::Relaxed);
    server.kill();
    println!("cycle {cycle}: {acked_at_kill} acknowledged when the ledger was killed");
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(r) = clients.join_next().await {
            r.unwrap();
        }
    })
    .await;
    assert!(drained.is_ok(), "clients did not stop after the kill");
    let rejections = rejections.lock().unwrap().clone();
    assert!(
        rejections.is_empty(),
        "submissions refused during the load (each client has its own account, so none \
         should be):\n{}",
        rejections.join("\n")
    );
    counters
}

/// The restarted ledger holds every acknowledged entry and no more entries than were ever
/// submitted, and every acknowledged write reads back. Returns (writes checked, what was
/// acknowledged, entries).
async fn the_restarted_ledger_has_every_acknowledged_write(
    server: &Server,
    acked: &Mutex<Acked>,
    submitted: u64,
) -> (usize, Acked, u64) {
    let http = client();
    let (_, health) = get_json(&http, &server.url("/v1/health")).await;
    let health = health["success"]["data"].clone();
    let entries = health["entries"].as_u64().unwrap();
    let snapshot = {
        let a = acked.lock().unwrap();
        Acked {
            entries: a.entries.clone(),
            registered: a.registered.clone(),
            certified: a.certified.clone(),
        }
    };
    let max_acked = snapshot.entries.iter().map(|e| e.0).max();
    assert!(
        max_acked.is_none_or(|m| m < entries),
        "entry {max_acked:?} was acknowledged but the restarted ledger has {entries} entries"
    );
    assert!(
        entries <= submitted,
        "the restarted ledger has {entries} entries but only {submitted} were ever submitted"
    );
    let checked = verify(server, &snapshot).await;
    (checked, snapshot, entries)
}

/// Stopped cleanly, the ledger leaves a snapshot at its last entry (so the next start replays
/// nothing), and an offline replay reproduces what the server reported.
async fn a_clean_stop_snapshots_and_an_offline_replay_agrees(
    server: Server,
    dirs: &Dirs,
) -> Option<u64> {
    let http = client();
    let (_, health) = get_json(&http, &server.url("/v1/health")).await;
    let health = health["success"]["data"].clone();
    assert_eq!(health["status"], "ok", "{health}");
    server.terminate().await;
    let entries = health["entries"].as_u64().unwrap();
    let last = dirs
        .data
        .join(format!("snapshots/snapshot-{entries:020}.bin"));
    assert!(
        last.is_file(),
        "no snapshot at entry {entries} after SIGTERM: {:?}",
        std::fs::read_dir(dirs.data.join("snapshots"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    let out = floe()
        .args(["ledger", "replay", "--genesis"])
        .arg(&dirs.genesis)
        .arg("--data-dir")
        .arg(&dirs.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "floe ledger replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replay: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "replay output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(
        replay["digest"], health["digest"],
        "replay {replay} vs health {health}"
    );
    assert_eq!(
        replay["stateHash"], health["stateHash"],
        "replay {replay} vs health {health}"
    );
    assert_eq!(replay["entries"], health["entries"]);
    assert_eq!(replay["events"], health["events"]);
    assert_eq!(replay["epoch"], health["epoch"]);
    // A pruned log is replayed from the oldest snapshot that covers its first entry.
    let pruned = !dirs.data.join("ledger-00000000000000000000.log").exists()
        && std::fs::read(dirs.data.join("ledger.log")).unwrap()[8] == 2;
    let from_snapshot = replay["fromSnapshot"].as_u64();
    assert_eq!(pruned, from_snapshot.is_some(), "{replay}");
    from_snapshot
}
