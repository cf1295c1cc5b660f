//! The Floe storage node: Walrus's REST API over a durable sliver store, following the ledger.
//!
//! Modules, bottom to top (each uses only those above it; the tidy test checks it):
//! * leaves: [`error`], [`limits`] (fixed limits, their relations checked at compile time),
//!   [`config`], [`view`] (the committee as this node sees it),
//!   [`pending`] (the bounded pre-registration buffer), [`drift`] (the blob-table digest),
//!   [`plan`] (the node's side of an epoch change, pure), [`state`] (what workers share with
//!   request handling), [`runner`] (the worker runner);
//! * [`node`]: the node and its request-path operations (store and serve metadata and slivers,
//!   sign confirmations, serve recovery symbols), each with a typed error; [`tls`];
//! * operations on the node used by requests and workers alike: [`sync`] (blob recovery),
//!   [`shard_sync`] (serving and pulling shards), [`audit`], [`challenge`], [`status`];
//! * [`workers`]: the background work (follower, epoch change, blob sync, maintenance,
//!   challenger), started by [`workers::start`] and stopped by the runner;
//! * [`api`]: the HTTP routes.
#![forbid(unsafe_code)]

// Leaves.
pub mod config;
pub mod drift;
pub mod error;
pub mod limits;
pub mod pending;
pub mod plan;
pub mod runner;
pub mod state;
pub mod view;

// The node.
pub mod node;
pub mod tls;

// Operations on the node.
pub mod audit;
pub mod challenge;
pub mod shard_sync;
pub mod status;
pub mod sync;

// Background work, then the HTTP surface.
pub mod workers;

pub mod api;

use std::sync::Arc;

pub use config::{NodeConfig, NodeKeys};
pub use node::{NodeError, StorageNode};

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot open the node's storage: {0}")]
    Store(#[from] floe_node_storage::StoreError),
    #[error("cannot reach the ledger at {url}: {reason} (is `floe ledger run` up?)")]
    Ledger { url: String, reason: String },
    #[error("{0}")]
    Committee(String),
    #[error("{0}")]
    Tls(String),
}

/// Open storage, learn the committee from the ledger, and build the node.
pub async fn start(config: NodeConfig) -> Result<Arc<StorageNode>, StartError> {
    let keys = NodeKeys::load(&config.keys_path)?;
    let ledger = floe_ledger_client::LedgerClient::with_urls(config.ledger_urls());
    let system = ledger.system().await.map_err(|e| StartError::Ledger {
        url: config.ledger_url.clone(),
        reason: e.to_string(),
    })?;
    let view = view::CommitteeView::from_system(&system, keys.protocol.public_key())
        .map_err(StartError::Committee)?;
    tls::check_registered(&config, &keys, &view).map_err(StartError::Tls)?;
    let mine: Vec<_> = view
        .my_shards
        .iter()
        .map(|&s| floe_core::ShardIndex(s))
        .collect();
    // Opening the store and creating shard keyspaces is synchronous disk work (fsyncs): keep
    // it off the async workers, which may be serving other things (a ledger, other nodes).
    let path = config.storage_path.clone();
    let options = floe_node_storage::StoreOptions {
        cache_size: config.limits.store_cache_bytes,
        memtable_budget: config.limits.store_write_buffer_bytes,
        ..Default::default()
    };
    let store = tokio::task::spawn_blocking(move || {
        let store = floe_node_storage::FjallStore::open(&path, options)?;
        floe_node_storage::NodeStore::create_shards(&store, &mine)?;
        Ok::<_, floe_node_storage::StoreError>(store)
    })
    .await
    .map_err(|e| StartError::Committee(format!("store task failed: {e}")))??;
    Ok(StorageNode::new(config, keys, Arc::new(store), view))
}
