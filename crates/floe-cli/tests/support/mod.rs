//! The machinery of the fault suite: a Floe network of real `floe` processes (one
//! `floe ledger run`, [`NODES`] `floe node run`) laid out by `Testbed::init` in a temporary
//! directory, the means to stop, SIGKILL, wipe and restart them, and the bookkeeping every
//! scenario reports. Every child process is SIGKILLed and reaped when its handle is dropped,
//! so a failing scenario leaves nothing running; the directory (with each process's logs) is
//! kept and its path printed when a scenario panics.

pub mod faults;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_client::{Client, ClientConfig, NoProgress, ReadOptions};
use floe_core::{BlobId, EncodingConfig, ShardIndex, SliverPairIndex, SliverType};
use floe_ledger::AccountKey;
use floe_ledger::api_types::SystemInfo;
use floe_ledger_client::LedgerClient;
use floe_node::config::Limits;
use floe_node_client::NodeClient;
pub use floe_test_support::{Proc, Stop, free_base_port, random_bytes, rng, test_seed};
use floe_testbed::{Testbed, TestbedOptions, TestbedState};
use rand::Rng;
use rand::seq::IndexedRandom;

/// Storage nodes of every network.
pub const NODES: usize = 7;
/// Shards: f = 3, quorum n − f = 7, p = n − 2f = 4 primary slivers decode a blob.
pub const N_SHARDS: u16 = 10;

/// Scenarios run one at a time: each drives eight processes on a small machine, and their
/// timing (kills during in-flight stores) should not depend on a neighbour's load.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A size mostly small (≤ 16 KiB), sometimes up to 256 KiB.
pub fn small_size(rng: &mut impl Rng) -> usize {
    if rng.random_ratio(1, 10) {
        rng.random_range(16 << 10..=256 << 10)
    } else {
        rng.random_range(1..=16 << 10)
    }
}

fn floe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floe"))
}

/// A running network of `floe` processes.
pub struct Net {
    pub scenario: String,
    pub state: TestbedState,
    pub http: reqwest::Client,
    /// Clients of the nodes (HTTPS pinned to each node's network key).
    pub node_http: floe_node_client::NodeHttp,
    pub ledger: LedgerClient,
    /// The system at start (epoch 0 committee; it does not change during a scenario).
    pub system: SystemInfo,
    pub config: EncodingConfig,
    ledger_proc: Option<Proc>,
    nodes: Vec<Option<Proc>>,
    /// Committee member index of node i.
    member_of: Vec<usize>,
    dir: Option<tempfile::TempDir>,
    logs: PathBuf,
}

impl Net {
    /// Lay out a network (`Testbed::init`: free ports, keys, genesis, node configs with
    /// `limits`) and start its ledger and nodes as processes; returns once all are healthy.
    pub async fn start(scenario: &str, seed: u64, limits: Limits) -> Net {
        Self::start_with_epochs(
            scenario,
            seed,
            limits,
            TestbedOptions::default().epoch_duration_ms,
        )
        .await
    }

    /// [`Self::start`] with epochs of `epoch_duration_ms`.
    pub async fn start_with_epochs(
        scenario: &str,
        seed: u64,
        limits: Limits,
        epoch_duration_ms: u64,
    ) -> Net {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix(&format!("floe-fault-{scenario}-"))
            .tempdir()
            .unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let state = Testbed::init(
            dir.path(),
            &TestbedOptions {
                nodes: NODES,
                n_shards: N_SHARDS,
                seed,
                node_limits: limits,
                epoch_duration_ms,
                base_port: Some(free_base_port(1 + NODES as u16)),
                ..TestbedOptions::default()
            },
        )
        .await
        .unwrap();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let ledger = LedgerClient::new(format!("http://{}", state.ledger_address));
        let mut ledger_proc = spawn_ledger(dir.path(), &state, &logs);
        ledger_proc
            .wait_healthy(&http, &format!("http://{}/v1/health", state.ledger_address))
            .await;
        let system = ledger.system().await.unwrap();
        let member_of = state
            .node_addresses
            .iter()
            .map(|a| {
                system
                    .committee
                    .members
                    .iter()
                    .position(|m| &m.network_address == a)
                    .expect("every node is a committee member")
            })
            .collect();
        let mut net = Net {
            scenario: scenario.into(),
            state,
            http,
            node_http: floe_node_client::NodeHttp::new(|b| {
                b.no_proxy().timeout(Duration::from_secs(10))
            })
            .unwrap(),
            ledger,
            system,
            config: EncodingConfig::new(N_SHARDS).unwrap(),
            ledger_proc: Some(ledger_proc),
            nodes: (0..NODES).map(|_| None).collect(),
            member_of,
            dir: Some(dir),
            logs,
        };
        for i in 0..NODES {
            net.spawn_node(i);
        }
        for i in 0..NODES {
            net.wait_node(i).await;
        }
        println!(
            "[{scenario}] ledger and {NODES} nodes ({N_SHARDS} shards, weights {:?}) up in {:.1?} at {}",
            (0..NODES).map(|i| net.weight(i)).collect::<Vec<_>>(),
            started.elapsed(),
            net.dir().display()
        );
        net
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    pub fn ledger_url(&self) -> String {
        format!("http://{}", self.state.ledger_address)
    }

    pub fn f(&self) -> u64 {
        u64::from(self.config.max_faulty())
    }

    /// A client library instance with its own wallet, tuned for a local network with faults:
    /// short timeouts and few attempts, so a dead node costs little.
    pub fn client(&self, wallet: u64) -> Client {
        let mut config = ClientConfig {
            ledger_url: self.ledger_url(),
            ..ClientConfig::default()
        };
        let c = &mut config.communication;
        c.request_timeout_ms = 10_000;
        c.connect_timeout_ms = 1_000;
        c.max_attempts = 3;
        c.backoff_max_ms = 1_000;
        c.registration_wait_ms = 15_000;
        let key = AccountKey::from_seed(&floe_core::merkle::blake2b256(&[
            b"floe-fault-suite-wallet",
            self.scenario.as_bytes(),
            &wallet.to_le_bytes(),
        ]));
        Client::new(config, Some(key)).unwrap()
    }

    // ---- the ledger process ----

    pub async fn start_ledger(&mut self) {
        assert!(self.ledger_proc.is_none(), "the ledger already runs");
        let mut proc = spawn_ledger(self.dir(), &self.state, &self.logs);
        let url = format!("{}/v1/health", self.ledger_url());
        proc.wait_healthy(&self.http, &url).await;
        self.ledger_proc = Some(proc);
    }

    pub async fn stop_ledger(&mut self, how: Stop) {
        let proc = self.ledger_proc.take().expect("the ledger runs");
        proc.stop(how).await;
    }

    /// Stop the ledger with SIGTERM and check that `floe ledger replay` of its log reproduces
    /// the digest, state hash and counts it served just before; returns the replay's summary.
    pub async fn stop_ledger_and_replay(&mut self) -> Result<String, String> {
        let url = format!("{}/v1/health", self.ledger_url());
        let health: serde_json::Value = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let health = health["success"]["data"].clone();
        self.stop_ledger(Stop::Term).await;
        let out = floe()
            .args(["ledger", "replay", "--genesis"])
            .arg(self.dir().join("genesis.json"))
            .arg("--data-dir")
            .arg(self.dir().join("ledger"))
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "floe ledger replay failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let replay: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("replay output is not JSON: {e}"))?;
        for field in ["digest", "stateHash", "entries", "events", "epoch"] {
            if replay[field].is_null() || replay[field] != health[field] {
                return Err(format!("{field}: replay {replay} vs served {health}"));
            }
        }
        Ok(format!(
            "entries={} events={}",
            replay["entries"], replay["events"]
        ))
    }

    /// Start `floe daemon` (aggregator and publisher, with its dashboard) for this network, with
    /// its own wallet, on a free port; returns it and its base URL once `/status` answers.
    /// (Used by the dashboard's browser test, not by every scenario file.)
    #[allow(dead_code)]
    pub async fn start_daemon(&self) -> (Proc, String) {
        let port = free_base_port(1);
        let config = self.dir().join("daemon.yaml");
        std::fs::write(
            &config,
            format!(
                "ledger_url: {}\nwallet: daemon-wallet.json\n",
                self.ledger_url()
            ),
        )
        .unwrap();
        let mut cmd = floe();
        cmd.args(["daemon", "--config"])
            .arg(&config)
            .args(["--bind-address", &format!("127.0.0.1:{port}")]);
        let mut proc = Proc::spawn(cmd, "daemon", &self.logs);
        let url = format!("http://127.0.0.1:{port}");
        proc.wait_healthy(&self.http, &format!("{url}/status"))
            .await;
        (proc, url)
    }

    // ---- node processes ----

    fn spawn_node(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} already runs");
        let mut cmd = floe();
        cmd.args(["node", "run", "--config"])
            .arg(self.node_dir(i).join("node.toml"));
        self.nodes[i] = Some(Proc::spawn(cmd, &format!("node-{i}"), &self.logs));
    }

    /// Start node `i` without waiting for it on its registered address (for a node moved
    /// behind a proxy).
    #[allow(dead_code)]
    pub fn spawn_node_unchecked(&mut self, i: usize) {
        self.spawn_node(i);
    }

    /// Node `i`'s base URL and a client for it (pinned to its network key).
    pub fn node_endpoint(&self, i: usize) -> (String, reqwest::Client) {
        let dir = self.dir.as_ref().expect("the network's directory").path();
        floe_testbed::node_endpoint(dir, &self.state, i, &self.node_http).unwrap()
    }

    /// Node `i`'s network key pair, from its key file.
    #[allow(dead_code)]
    pub fn node_network_key(&self, i: usize) -> floe_tls::NetworkKeyPair {
        let text = std::fs::read_to_string(self.node_dir(i).join("keys.json")).unwrap();
        let keys: floe_node::config::NodeKeysFile = serde_json::from_str(&text).unwrap();
        floe_tls::NetworkKeyPair::from_pem(&keys.network_key.expect("a network key")).unwrap()
    }

    async fn wait_node(&mut self, i: usize) {
        let (base, http) = self.node_endpoint(i);
        let url = format!("{base}/v1/health");
        self.nodes[i]
            .as_mut()
            .expect("node runs")
            .wait_healthy(&http, &url)
            .await;
    }

    /// Start node `i` again (same config, same data directory); returns once it is healthy.
    pub async fn start_node(&mut self, i: usize) {
        self.spawn_node(i);
        self.wait_node(i).await;
    }

    /// Stop node `i`; afterwards its address refuses connections.
    pub async fn stop_node(&mut self, i: usize, how: Stop) {
        let proc = self.nodes[i]
            .take()
            .unwrap_or_else(|| panic!("node {i} is not running"));
        proc.stop(how).await;
        let (base, http) = self.node_endpoint(i);
        assert!(
            http.get(format!("{base}/v1/health")).send().await.is_err(),
            "node {i} still answers after being stopped"
        );
    }

    /// SIGKILL node `i` and delete its data directory (keys and config stay).
    pub async fn wipe_node(&mut self, i: usize) {
        if self.nodes[i].is_some() {
            self.stop_node(i, Stop::Kill).await;
        }
        let data = self.node_dir(i).join("data");
        assert!(data.exists(), "node {i} has no data directory to wipe");
        std::fs::remove_dir_all(&data).unwrap();
    }

    /// Freeze (SIGSTOP) or thaw (SIGCONT) node `i`: it keeps its sockets but answers nothing.
    /// (Used by the dashboard's browser test, not by every scenario file.)
    #[allow(dead_code)]
    pub fn signal_node(&self, i: usize, signal: &str) {
        let node = self.nodes[i]
            .as_ref()
            .unwrap_or_else(|| panic!("node {i} is not running"));
        node.signal(signal.trim_start_matches('-'));
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir().join(format!("node-{i}"))
    }

    pub fn node_client(&self, i: usize) -> NodeClient {
        let member = &self.system.committee.members[self.member_of[i]];
        NodeClient::for_node(
            &self.node_http,
            &self.state.node_addresses[i],
            &member.pinned_keys(),
            Duration::from_secs(10),
        )
    }

    /// The committee member index of node `i`.
    pub fn member(&self, i: usize) -> usize {
        self.member_of[i]
    }

    /// Shards of node `i`.
    pub fn shards(&self, i: usize) -> &[u16] {
        &self.system.committee.members[self.member_of[i]].shards
    }

    pub fn weight(&self, i: usize) -> u64 {
        self.shards(i).len() as u64
    }

    /// The node holding `shard`.
    pub fn node_of_shard(&self, shard: u16) -> usize {
        (0..NODES)
            .find(|&i| self.shards(i).contains(&shard))
            .expect("every shard has an owner")
    }

    /// A random set of nodes, none in `exclude`, holding exactly f shards together (`None`
    /// if there is none).
    pub fn pick_f_set(&self, rng: &mut impl Rng, exclude: &[usize]) -> Option<Vec<usize>> {
        let f = self.f();
        let candidates: Vec<usize> = (0..NODES).filter(|i| !exclude.contains(i)).collect();
        let mut sets: Vec<Vec<usize>> = Vec::new();
        for mask in 1u32..(1 << candidates.len()) {
            let set: Vec<usize> = (0..candidates.len())
                .filter(|b| mask & (1 << b) != 0)
                .map(|b| candidates[b])
                .collect();
            if set.iter().map(|&i| self.weight(i)).sum::<u64>() == f {
                sets.push(set);
            }
        }
        sets.choose(rng).cloned()
    }

    /// The pairs node `i` holds of `blob_id` (one per shard).
    pub fn pairs_of(&self, i: usize, blob_id: &BlobId) -> Vec<SliverPairIndex> {
        self.shards(i)
            .iter()
            .map(|&s| ShardIndex(s).to_pair_index(N_SHARDS, blob_id))
            .collect()
    }

    /// Slivers node `i` should hold of `blobs` but does not report `stored` (status route).
    pub async fn missing_slivers(&self, i: usize, blobs: &[BlobId]) -> Vec<String> {
        let client = self.node_client(i);
        let mut set = tokio::task::JoinSet::new();
        let sem = Arc::new(tokio::sync::Semaphore::new(16));
        for id in blobs {
            for pair in self.pairs_of(i, id) {
                for axis in [SliverType::Primary, SliverType::Secondary] {
                    let (client, id, sem) = (client.clone(), *id, sem.clone());
                    set.spawn(async move {
                        let _permit = sem.acquire_owned().await;
                        match client.sliver_status(&id, pair, axis).await {
                            Ok(s) if s == "stored" => None,
                            Ok(s) => Some(format!("{id} pair {pair} {axis}: {s}")),
                            Err(e) => Some(format!("{id} pair {pair} {axis}: {e}")),
                        }
                    });
                }
            }
        }
        let mut missing = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Some(m) = r.unwrap() {
                missing.push(m);
            }
        }
        missing.sort();
        missing
    }

    /// Wait until every running node stores every sliver it should of `blobs`; returns how
    /// long that took, or the first missing slivers after `timeout`.
    pub async fn wait_replicated(
        &self,
        blobs: &[BlobId],
        timeout: Duration,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            let mut missing = Vec::new();
            for i in (0..NODES).filter(|&i| self.is_running(i)) {
                for m in self.missing_slivers(i, blobs).await {
                    missing.push(format!("node {i}: {m}"));
                }
            }
            if missing.is_empty() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                let n = missing.len();
                missing.truncate(10);
                return Err(format!(
                    "{n} slivers still missing after {timeout:?}, e.g.:\n{}",
                    missing.join("\n")
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The set of running nodes.
    pub fn running(&self) -> BTreeSet<usize> {
        (0..NODES).filter(|&i| self.is_running(i)).collect()
    }
}

fn spawn_ledger(dir: &Path, state: &TestbedState, logs: &Path) -> Proc {
    let mut cmd = floe();
    cmd.args(["ledger", "run", "--genesis"])
        .arg(dir.join("genesis.json"))
        .arg("--data-dir")
        .arg(dir.join("ledger"))
        .args(["--listen", &state.ledger_address]);
    Proc::spawn(cmd, "ledger", logs)
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            drop(n.take());
        }
        drop(self.ledger_proc.take());
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let path = dir.keep();
            eprintln!(
                "[{}] scenario failed; processes killed; directory and logs kept at {}",
                self.scenario,
                path.display()
            );
        }
    }
}

/// What a scenario did, printed as one line at its end.
#[derive(Default, Debug)]
pub struct Tally {
    pub operations: u64,
    pub successes: u64,
    pub expected_failures: u64,
    /// Certified (acknowledged) blobs or slivers that could not be read back.
    pub lost: u64,
    /// Reads or slivers that came back with different bytes.
    pub wrong: u64,
}

impl Tally {
    pub fn print(&self, scenario: &str, seed: u64, started: Instant, extra: &str) {
        println!(
            "SUMMARY scenario={scenario} operations={} successes={} expected_failures={} \
             certified_lost={} wrong_reads={} seed={seed} time={:.1}s{}{extra}",
            self.operations,
            self.successes,
            self.expected_failures,
            self.lost,
            self.wrong,
            started.elapsed().as_secs_f64(),
            if extra.is_empty() { "" } else { " " },
        );
    }
}

/// Read every blob (a few at once) and compare with what was stored; counts into `tally`
/// and returns descriptions of the losses and mismatches.
pub async fn read_all(
    client: &Client,
    blobs: &[(BlobId, Arc<Vec<u8>>)],
    tally: &mut Tally,
) -> Vec<String> {
    let mut set = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(4));
    for (id, data) in blobs {
        let (client, id, data, sem) = (client.clone(), *id, data.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let got = client
                .read(&id, ReadOptions::default(), Arc::new(NoProgress))
                .await;
            (id, data, got)
        });
    }
    let mut problems = Vec::new();
    while let Some(r) = set.join_next().await {
        let (id, data, got) = r.unwrap();
        tally.operations += 1;
        match got {
            Ok(bytes) if bytes == *data => tally.successes += 1,
            Ok(bytes) => {
                tally.wrong += 1;
                problems.push(format!(
                    "{id}: read {} bytes that differ from the {} stored",
                    bytes.len(),
                    data.len()
                ));
            }
            Err(e) => {
                tally.lost += 1;
                problems.push(format!("{id} ({} bytes): {} {e}", data.len(), e.kind()));
            }
        }
    }
    problems
}
