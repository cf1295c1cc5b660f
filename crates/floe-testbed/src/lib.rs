//! A whole Floe network on one machine.
//!
//! [`Testbed::start`] creates (or, when the directory already holds one, resumes) a network:
//! deterministic keys from a seed, a genesis, the ledger and N storage nodes, each serving on its
//! own loopback port with its own data directory. Nodes can be stopped, wiped and restarted to
//! exercise failures. Every node also gets a `node.toml`, so the same network can be run as
//! separate `floe ledger run` / `floe node run` processes.
//!
//! Layout of the directory:
//! ```text
//! testbed.json        this network's parameters, addresses and removed nodes (format version 1)
//! genesis.json        the ledger's genesis
//! ledger/             the ledger's log
//! node-<i>/keys.json  node i's keys; node-<i>/node.toml its config; node-<i>/data/ its store
//! ```
#![forbid(unsafe_code)]

pub mod control;
mod membership;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use floe_crypto::ProtocolKeyPair;
use floe_ledger::api_types::SystemInfo;
use floe_ledger::{AccountKey, GenesisConfig, GenesisNode};
use floe_ledger_service::{Clock, Ledger, SystemClock};
use floe_node::config::{Limits, NodeConfig, NodeKeysFile};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The format version of `testbed.json`.
pub const FORMAT_VERSION: u32 = 1;

/// Why a testbed could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {address}: {source} (is another testbed running?)")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("{path} is not a usable testbed file: {reason}")]
    BadState { path: PathBuf, reason: String },
    #[error("the ledger failed to open: {0}")]
    Ledger(String),
    #[error("node {index} failed to start: {reason}")]
    Node { index: usize, reason: String },
    #[error("invalid testbed options: {0}")]
    Options(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TestbedError + '_ {
    move |source| TestbedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Options for a new testbed (ignored, except `node_limits`, when resuming one).
#[derive(Clone, Debug)]
pub struct TestbedOptions {
    pub nodes: usize,
    pub n_shards: u16,
    pub epoch_duration_ms: u64,
    pub max_epochs_ahead: u32,
    /// Ledger on `base_port`, node i on `base_port + 1 + i`; `None` picks free ports.
    pub base_port: Option<u16>,
    /// Keys derive from it; printed so failures can be reproduced.
    pub seed: u64,
    pub node_limits: Limits,
    /// Ledger replicas run elsewhere (e.g. `floe ledger run --etcd-endpoints …` processes):
    /// when given, the testbed runs no ledger of its own and its nodes use these URLs.
    pub external_ledger: Vec<String>,
    /// Nodes serve plain HTTP and register no network key (by default each node has a
    /// network key and serves HTTPS with a certificate from it).
    pub disable_tls: bool,
    /// Start every node with the testbed (the default). When false, each node's address is
    /// held but nothing serves it until [`Testbed::start_node`] or
    /// [`Testbed::start_node_behind`]: tests and benchmarks that put a proxy in front of some
    /// nodes, or change limits first, start them one by one.
    pub start_nodes: bool,
}

impl Default for TestbedOptions {
    fn default() -> Self {
        Self {
            nodes: 10,
            n_shards: 1000,
            epoch_duration_ms: 3_600_000,
            max_epochs_ahead: 53,
            base_port: None,
            seed: 0,
            node_limits: Limits::default(),
            external_ledger: Vec::new(),
            disable_tls: false,
            start_nodes: true,
        }
    }
}

/// What `testbed.json` records.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestbedState {
    pub version: u32,
    pub seed: u64,
    pub n_shards: u16,
    pub epoch_duration_ms: u64,
    pub ledger_address: String,
    pub node_addresses: Vec<String>,
    /// Nodes removed from the network (deregistered): on resume, started again only while they
    /// are still in a committee (handing their shards over).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<usize>,
    /// Nodes serve plain HTTP (no network keys).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_tls: bool,
}

fn seed32(tag: &str, seed: u64, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &seed.to_le_bytes(), &i.to_le_bytes()])
}

/// The BLS key of node `i` of a testbed created with `seed`.
pub fn node_protocol_key(seed: u64, i: usize) -> ProtocolKeyPair {
    ProtocolKeyPair::from_seed(&seed32("floe-testbed-bls", seed, i as u64))
}

/// The operator account of node `i` of a testbed created with `seed`.
pub fn node_account(seed: u64, i: usize) -> AccountKey {
    AccountKey::from_seed(&seed32("floe-testbed-operator", seed, i as u64))
}

struct RunningNode {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
    node: Arc<floe_node::StorageNode>,
    /// The proxy serving the node's public address, if it runs behind one.
    front: Option<JoinHandle<()>>,
}

/// A proxy in front of a node (see [`Testbed::start_node_behind`]): given the listener of the
/// node's public address (the one in the genesis) and the base URL of the node itself, it
/// serves the one from the other until the testbed aborts the task it returns.
pub trait Front: FnOnce(TcpListener, String) -> JoinHandle<()> {}
impl<F: FnOnce(TcpListener, String) -> JoinHandle<()>> Front for F {}

/// A running network.
pub struct Testbed {
    dir: PathBuf,
    state: TestbedState,
    limits: Limits,
    ledger_shutdown: Option<oneshot::Sender<()>>,
    ledger_task: Option<JoinHandle<()>>,
    nodes: Vec<Option<RunningNode>>,
    /// Listeners of nodes not started yet ([`TestbedOptions::start_nodes`] false): the
    /// addresses stay held until the node starts.
    held: Vec<Option<TcpListener>>,
    /// Replicas run elsewhere (empty: the testbed's own ledger).
    external_ledger: Vec<String>,
}

async fn bind(address: &str) -> Result<TcpListener, TestbedError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| TestbedError::Bind {
            address: address.to_string(),
            source,
        })
}

impl Testbed {
    /// Start the network in `dir`: create it if `dir` holds no testbed, resume it otherwise.
    pub async fn start(dir: &Path, options: TestbedOptions) -> Result<Self, TestbedError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let state_path = dir.join("testbed.json");
        let (state, mut listeners, ledger_listener) = if state_path.exists() {
            let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
            let state: TestbedState =
                serde_json::from_str(&text).map_err(|e| TestbedError::BadState {
                    path: state_path.clone(),
                    reason: e.to_string(),
                })?;
            if state.version != FORMAT_VERSION {
                return Err(TestbedError::BadState {
                    path: state_path,
                    reason: format!("format version {} is not supported", state.version),
                });
            }
            let ledger = bind(&state.ledger_address).await?;
            let mut nodes = Vec::new();
            for (i, a) in state.node_addresses.iter().enumerate() {
                if state.removed.contains(&i) {
                    nodes.push(None);
                } else {
                    nodes.push(Some(bind(a).await?));
                }
            }
            (state, nodes, ledger)
        } else {
            Self::create(dir, &options).await?
        };
        let genesis_path = dir.join("genesis.json");
        let genesis: GenesisConfig = serde_json::from_str(
            &std::fs::read_to_string(&genesis_path).map_err(io(&genesis_path))?,
        )
        .map_err(|e| TestbedError::BadState {
            path: genesis_path.clone(),
            reason: e.to_string(),
        })?;
        let ledger = if options.external_ledger.is_empty() {
            Some(
                Ledger::open(&dir.join("ledger"), genesis, Arc::new(SystemClock))
                    .map_err(|e| TestbedError::Ledger(e.to_string()))?,
            )
        } else {
            None
        };
        // With external replicas the ledger's port is not used: release it.
        let ledger_listener = ledger.as_ref().map(|_| ledger_listener);
        // A removed node still in a committee was stopped with the testbed while leaving: start
        // it again, so that its shards are pulled from it rather than rebuilt by recovery.
        if !state.removed.is_empty() {
            let system = match &ledger {
                Some(ledger) => ledger
                    .read_state(SystemInfo::from_state)
                    .await
                    .map_err(|e| TestbedError::Ledger(e.to_string()))?,
                None => {
                    floe_ledger_client::LedgerClient::with_urls(options.external_ledger.clone())
                        .system()
                        .await
                        .map_err(|e| TestbedError::Ledger(e.to_string()))?
                }
            };
            for &i in &state.removed {
                let key = node_protocol_key(state.seed, i);
                if system.node_in_committees(key.public_key()).is_some() && listeners[i].is_none() {
                    listeners[i] = Some(bind(&state.node_addresses[i]).await?);
                }
            }
        }
        let (ledger_shutdown, ledger_task) = match ledger.zip(ledger_listener) {
            Some((ledger, ledger_listener)) => {
                ledger.spawn_epoch_clock(Duration::from_millis(100));
                let (tx, rx) = oneshot::channel::<()>();
                let task = tokio::spawn(async move {
                    let stop = async move {
                        let _ = rx.await;
                    };
                    if let Err(e) = floe_ledger_service::serve(ledger, ledger_listener, stop).await
                    {
                        tracing::error!(error = %e, "testbed ledger server failed");
                    }
                });
                (Some(tx), Some(task))
            }
            None => (None, None),
        };
        let n = state.node_addresses.len();
        let mut bed = Self {
            dir: dir.to_path_buf(),
            state,
            limits: options.node_limits,
            ledger_shutdown,
            ledger_task,
            nodes: (0..n).map(|_| None).collect(),
            held: (0..n).map(|_| None).collect(),
            external_ledger: options.external_ledger.clone(),
        };
        if !options.start_nodes {
            bed.held = listeners;
            return Ok(bed);
        }
        // Nodes open their stores (creating shard keyspaces, a synced write each) in parallel.
        let mut set = tokio::task::JoinSet::new();
        for (i, listener) in listeners.iter_mut().enumerate() {
            // Removed nodes have no listener: they stay stopped.
            let Some(listener) = listener.take() else {
                continue;
            };
            let config = bed.node_config(i);
            set.spawn(async move { (i, launch(i, config, listener).await) });
        }
        let mut first_error = None;
        while let Some(joined) = set.join_next().await {
            let (i, result) = joined.map_err(|e| TestbedError::Node {
                index: usize::MAX,
                reason: e.to_string(),
            })?;
            match result {
                Ok(node) => bed.nodes[i] = Some(node),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        if let Some(e) = first_error {
            bed.shutdown().await;
            return Err(e);
        }
        Ok(bed)
    }

    /// Create a testbed's files in `dir` (keys, node configs, genesis, `testbed.json`) without
    /// starting anything, so that its ledger and nodes can run as separate processes
    /// (`floe ledger run --genesis DIR/genesis.json --data-dir DIR/ledger --listen ADDR`,
    /// `floe node run --config DIR/node-<i>/node.toml`). Ports picked here are released again.
    /// Returns the existing state if `dir` already holds a testbed.
    pub async fn init(dir: &Path, options: &TestbedOptions) -> Result<TestbedState, TestbedError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let state_path = dir.join("testbed.json");
        if state_path.exists() {
            let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
            return serde_json::from_str(&text).map_err(|e| TestbedError::BadState {
                path: state_path,
                reason: e.to_string(),
            });
        }
        let (state, _, _) = Self::create(dir, options).await?;
        Ok(state)
    }

    /// Write keys, configs, genesis and `testbed.json`; return the bound listeners.
    async fn create(
        dir: &Path,
        o: &TestbedOptions,
    ) -> Result<(TestbedState, Vec<Option<TcpListener>>, TcpListener), TestbedError> {
        if o.nodes == 0 || usize::from(o.n_shards) < o.nodes {
            return Err(TestbedError::Options(format!(
                "need at least 1 node and at least as many shards as nodes (got {} nodes, {} shards)",
                o.nodes, o.n_shards
            )));
        }
        floe_core::EncodingConfig::new(o.n_shards)
            .map_err(|e| TestbedError::Options(e.to_string()))?;
        let address = |k: u16| match o.base_port {
            Some(p) => format!("127.0.0.1:{}", p + k),
            None => "127.0.0.1:0".to_string(),
        };
        let ledger = bind(&address(0)).await?;
        let ledger_address = ledger.local_addr().map_err(io(dir))?.to_string();
        let mut listeners = Vec::new();
        let mut addresses = Vec::new();
        for i in 0..o.nodes {
            let l = bind(&address(1 + i as u16)).await?;
            addresses.push(l.local_addr().map_err(io(dir))?.to_string());
            listeners.push(Some(l));
        }
        let mut nodes = Vec::new();
        for (i, address) in addresses.iter().enumerate() {
            let key = node_protocol_key(o.seed, i);
            let account = node_account(o.seed, i);
            let files = NodeFiles {
                dir: dir.join(format!("node-{i}")),
                name: format!("node-{i}"),
                address: address.clone(),
                ledger_urls: vec![format!("http://{ledger_address}")],
                limits: o.node_limits.clone(),
                disable_tls: o.disable_tls,
            };
            let network_public_key = files.write(o.seed, i)?;
            nodes.push(
                GenesisNode::new(
                    format!("node-{i}"),
                    address.clone(),
                    &key,
                    &account,
                    1 << 40,
                )
                .with_network_key(network_public_key),
            );
        }
        let genesis = GenesisConfig {
            max_epochs_ahead: o.max_epochs_ahead,
            ..GenesisConfig::new(o.n_shards, o.epoch_duration_ms, SystemClock.now_ms(), nodes)
        };
        write(
            &dir.join("genesis.json"),
            &serde_json::to_string_pretty(&genesis).expect("serialises"),
        )?;
        let state = TestbedState {
            version: FORMAT_VERSION,
            seed: o.seed,
            n_shards: o.n_shards,
            epoch_duration_ms: o.epoch_duration_ms,
            ledger_address,
            node_addresses: addresses,
            removed: Vec::new(),
            disable_tls: o.disable_tls,
        };
        // Written last: its presence means the directory holds a complete testbed.
        write(
            &dir.join("testbed.json"),
            &serde_json::to_string_pretty(&state).expect("serialises"),
        )?;
        Ok((state, listeners, ledger))
    }

    /// The configuration node `i` starts with (for harnesses that start a node their own way).
    pub fn node_config(&self, i: usize) -> NodeConfig {
        let node_dir = self.node_dir(i);
        NodeConfig {
            storage_path: node_dir.join("data"),
            keys_path: node_dir.join("keys.json"),
            listen_address: self.state.node_addresses[i].clone(),
            ledger_url: self.ledger_url(),
            ledger_urls: self.external_ledger.clone(),
            limits: self.limits.clone(),
            tls: floe_node::config::TlsConfig {
                disable_tls: self.state.disable_tls,
                certificate_path: None,
            },
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn state(&self) -> &TestbedState {
        &self.state
    }

    /// The ledger's URL: the testbed's own ledger, or the first external replica.
    pub fn ledger_url(&self) -> String {
        match self.external_ledger.first() {
            Some(url) => url.clone(),
            None => format!("http://{}", self.state.ledger_address),
        }
    }

    /// Every ledger URL (the external replicas, or the testbed's own ledger).
    pub fn ledger_urls(&self) -> Vec<String> {
        if self.external_ledger.is_empty() {
            vec![self.ledger_url()]
        } else {
            self.external_ledger.clone()
        }
    }

    pub fn node_count(&self) -> usize {
        self.state.node_addresses.len()
    }

    /// Node `i`'s address (`host:port`), as in the genesis.
    pub fn node_address(&self, i: usize) -> &str {
        &self.state.node_addresses[i]
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node-{i}"))
    }

    /// Node `i`'s base URL and a client for it (HTTPS pinned to its network key unless the
    /// testbed runs without TLS).
    pub fn node_endpoint(
        &self,
        i: usize,
        pools: &floe_node_client::NodeHttp,
    ) -> Result<(String, reqwest::Client), TestbedError> {
        node_endpoint(&self.dir, &self.state, i, pools)
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    /// Whether node `i` was removed ([`Testbed::remove_node`]); on resume it is started only
    /// while it is still in a committee.
    pub fn is_removed(&self, i: usize) -> bool {
        self.state.removed.contains(&i)
    }

    /// Removed nodes that run: deregistered, still handing their shards over. The caller stops
    /// each once it is in no committee (see [`Testbed::stop_node`]).
    pub fn leaving(&self) -> Vec<usize> {
        (0..self.node_count())
            .filter(|&i| self.is_removed(i) && self.is_running(i))
            .collect()
    }

    /// Stop node `i`: stop accepting, finish in-flight requests, close its store.
    pub async fn stop_node(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            let _ = n.shutdown.send(());
            if let Some(front) = n.front {
                // Aborted and awaited: the public port is free again once this returns.
                front.abort();
                let _ = front.await;
            }
            let mut task = n.task;
            if tokio::time::timeout(Duration::from_secs(10), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
            // The node's background tasks hold it weakly; give them a moment to notice.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Start node `i` (again) on its address (no-op if it runs).
    pub async fn start_node(&mut self, i: usize) -> Result<(), TestbedError> {
        if self.nodes[i].is_some() {
            return Ok(());
        }
        let (config, address) = (self.node_config(i), self.state.node_addresses[i].clone());
        let held = &mut self.held[i];
        let node = retrying(|| {
            let (held, config, address) = (held.take(), config.clone(), address.clone());
            async move { launch(i, config, take_or_bind(held, &address).await?).await }
        })
        .await?;
        self.nodes[i] = Some(node);
        Ok(())
    }

    /// Start node `i` on a private loopback port with a proxy in front of it: `front` gets the
    /// listener of the node's public address and the node's own base URL, and its task is
    /// aborted when the node stops. Returns the node's private address (`host:port`), which
    /// reaches it without the proxy. No-op (returning `None`) if the node runs.
    pub async fn start_node_behind(
        &mut self,
        i: usize,
        front: impl Front,
    ) -> Result<Option<String>, TestbedError> {
        if self.nodes[i].is_some() {
            return Ok(None);
        }
        let (config, address) = (self.node_config(i), self.state.node_addresses[i].clone());
        let held = &mut self.held[i];
        let public = retrying(|| {
            let (held, address) = (held.take(), address.clone());
            async move { take_or_bind(held, &address).await }
        })
        .await?;
        let dir = self.dir.clone();
        let (mut node, private) = retrying(|| {
            let (config, dir) = (config.clone(), dir.clone());
            async move {
                let listener = bind("127.0.0.1:0").await?;
                let private = listener.local_addr().map_err(io(&dir))?.to_string();
                Ok((launch(i, config, listener).await?, private))
            }
        })
        .await?;
        let scheme = if self.state.disable_tls {
            "http"
        } else {
            "https"
        };
        node.front = Some(front(public, format!("{scheme}://{private}")));
        self.nodes[i] = Some(node);
        Ok(Some(private))
    }

    /// Limits of the nodes started from now on (those running keep theirs).
    pub fn set_node_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Stop node `i` and delete its stored data (keys and config stay).
    pub async fn wipe_node(&mut self, i: usize) -> Result<(), TestbedError> {
        self.stop_node(i).await;
        let data = self.node_dir(i).join("data");
        if data.exists() {
            std::fs::remove_dir_all(&data).map_err(io(&data))?;
        }
        Ok(())
    }

    /// Stop every node, then the ledger.
    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i).await;
        }
        if let Some(tx) = self.ledger_shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.ledger_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// Open node `i`'s store, start its follower and maintenance, and serve it on `listener`.
async fn launch(
    i: usize,
    config: NodeConfig,
    listener: TcpListener,
) -> Result<RunningNode, TestbedError> {
    let node = floe_node::start(config)
        .await
        .map_err(|e| TestbedError::Node {
            index: i,
            reason: e.to_string(),
        })?;
    floe_node::workers::start(&node, floe_node::workers::WorkerOptions::from_config(&node));
    let handle = Arc::clone(&node);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.await;
        };
        if let Err(e) = floe_node::api::serve(node, listener, stop).await {
            tracing::error!(node = i, error = %e, "testbed node server failed");
        }
    });
    Ok(RunningNode {
        shutdown: tx,
        task,
        node: handle,
        front: None,
    })
}

/// The held listener of a node's address, or a new bind of it.
async fn take_or_bind(
    held: Option<TcpListener>,
    address: &str,
) -> Result<TcpListener, TestbedError> {
    match held {
        Some(listener) => Ok(listener),
        None => bind(address).await,
    }
}

/// Retry `attempt` for a few seconds: after a stop, a node's port and store may still be
/// closing.
async fn retrying<T, F>(mut attempt: impl FnMut() -> F) -> Result<T, TestbedError>
where
    F: std::future::Future<Output = Result<T, TestbedError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(e) if tokio::time::Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), TestbedError> {
    std::fs::write(path, text).map_err(io(path))
}

/// A node's files in the testbed: `keys.json` (with a fresh network key unless TLS is off) and
/// `node.toml`.
pub(crate) struct NodeFiles {
    pub dir: PathBuf,
    pub name: String,
    pub address: String,
    pub ledger_urls: Vec<String>,
    pub limits: Limits,
    pub disable_tls: bool,
}

impl NodeFiles {
    /// Write both files for node `i` of a testbed with `seed`; returns the network public key
    /// to register.
    pub fn write(
        &self,
        seed: u64,
        i: usize,
    ) -> Result<Option<floe_crypto::NetworkPublicKey>, TestbedError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let network = if self.disable_tls {
            None
        } else {
            Some(
                floe_tls::NetworkKeyPair::generate()
                    .map_err(|e| TestbedError::Options(e.to_string()))?,
            )
        };
        let keys = NodeKeysFile {
            name: self.name.clone(),
            network_address: self.address.clone(),
            protocol_key: node_protocol_key(seed, i).to_tagged_base64(),
            account_seed: hex::encode(node_account(seed, i).seed()),
            network_key: network.as_ref().map(|k| k.to_pem()),
        };
        write(
            &self.dir.join("keys.json"),
            &serde_json::to_string_pretty(&keys).expect("serialises"),
        )?;
        let (ledger_url, ledger_urls) = match self.ledger_urls.as_slice() {
            [one] => (one.clone(), Vec::new()),
            many => (many.first().cloned().unwrap_or_default(), many.to_vec()),
        };
        let config = NodeConfig {
            storage_path: "data".into(),
            keys_path: "keys.json".into(),
            listen_address: self.address.clone(),
            ledger_url,
            ledger_urls,
            limits: self.limits.clone(),
            tls: floe_node::config::TlsConfig {
                disable_tls: self.disable_tls,
                certificate_path: None,
            },
        };
        write(
            &self.dir.join("node.toml"),
            &toml::to_string(&config).map_err(|e| TestbedError::Options(e.to_string()))?,
        )?;
        Ok(network.map(|k| k.public_key()))
    }
}

/// Node `i`'s base URL and client in the testbed at `dir` (see [`Testbed::node_endpoint`]);
/// for harnesses that run the testbed's nodes as processes.
pub fn node_endpoint(
    dir: &Path,
    state: &TestbedState,
    i: usize,
    pools: &floe_node_client::NodeHttp,
) -> Result<(String, reqwest::Client), TestbedError> {
    let path = dir.join(format!("node-{i}")).join("keys.json");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let keys: NodeKeysFile = serde_json::from_str(&text).map_err(|e| TestbedError::BadState {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let key = match (&keys.network_key, state.disable_tls) {
        (Some(pem), false) => Some(
            floe_tls::NetworkKeyPair::from_pem(pem)
                .map_err(|e| TestbedError::BadState {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
                .public_key(),
        ),
        _ => None,
    };
    pools
        .route(&state.node_addresses[i], key.as_slice())
        .map_err(|e| TestbedError::Options(e.to_string()))
}
