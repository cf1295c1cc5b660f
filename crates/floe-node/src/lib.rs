//! The Floe storage node: Walrus's REST API over a durable sliver store, following the ledger.
//!
//! * [`node`]: the operations (store/serve metadata and slivers, sign confirmations, serve
//!   recovery symbols, attest inconsistency), each with a typed error;
//! * [`audit`]: signed answers to possession audits (sampled symbols with proofs);
//! * [`challenge`]: the storage-challenge worker (challenges the ledger's samples each epoch,
//!   reports the signed outcomes);
//! * [`drift`]: the blob-table digest taken at each epoch change, served with health;
//! * [`follower`]: ledger events → blob info, flush of buffered uploads, data deletion;
//! * [`epoch`], [`shard_sync`]: the node's part in epoch changes (read-only lost shards,
//!   migration of gained shards from their previous owner, fallback recovery, sync report);
//! * [`api`]: the HTTP routes;
//! * [`config`], [`view`], [`pending`], [`status`]: configuration, committee view, the bounded
//!   pre-registration buffer, status and health shapes.
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod challenge;
pub mod config;
pub mod drift;
pub mod epoch;
pub mod follower;
pub mod node;
pub mod pending;
pub mod shard_sync;
pub mod status;
pub mod sync;
pub mod view;

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
    check_registered_tls(&config, &keys, &view)?;
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

/// Refuse a TLS set-up that clients could not talk to: a network key other than the
/// registered one, or TLS on a node registered without a key (clients speak plain HTTP to it).
fn check_registered_tls(
    config: &NodeConfig,
    keys: &NodeKeys,
    view: &view::CommitteeView,
) -> Result<(), StartError> {
    let Some(me) = view.my_index.map(|i| &view.committee.members[i]) else {
        return Ok(());
    };
    let own = keys.network.as_ref().map(|k| k.public_key());
    let registered = me.pinned_keys();
    if let (Some(own), Some(current)) = (own, me.network_public_key)
        && own != current
        && registered.contains(&own)
    {
        tracing::warn!(
            %own,
            %current,
            "this node's network key was replaced on the ledger; clients accept the old one \
             only until the epoch after the change: restart with the key file of {current}"
        );
    }
    match tls_registration_problem(
        &me.network_address,
        &registered,
        own,
        config.tls.disable_tls,
    ) {
        Some(problem) => Err(StartError::Tls(problem)),
        None => Ok(()),
    }
}

/// Why clients could not talk to a node registered at `address` with `registered` (its current
/// key, then a replaced one still honoured), whose key file holds `own`, serving TLS unless
/// `disable_tls`; `None` when they can.
fn tls_registration_problem(
    address: &str,
    registered: &[floe_crypto::NetworkPublicKey],
    own: Option<floe_crypto::NetworkPublicKey>,
    disable_tls: bool,
) -> Option<String> {
    match (registered.first(), own) {
        (Some(current), Some(own)) if !registered.contains(&own) => Some(format!(
            "the ledger registers network key {current} for this node, but its key file holds \
             {own}: clients would refuse its certificate (use the registered key file)"
        )),
        (None, _) if !disable_tls && !address.starts_with("https://") => Some(format!(
            "the ledger registers no network key for this node, so clients speak plain HTTP \
             to {address}: set `disable_tls = true` under [tls] in the config"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::tls_registration_problem as problem;
    use floe_crypto::NetworkPublicKey;

    #[test]
    fn a_node_refuses_a_tls_set_up_its_clients_could_not_use() {
        let a = NetworkPublicKey::from_bytes(&[2; 33]).unwrap();
        let b = NetworkPublicKey::from_bytes(&[3; 33]).unwrap();
        let addr = "127.0.0.1:9185";
        // The registered key, with or without TLS (a terminating proxy holds it then).
        assert_eq!(problem(addr, &[a], Some(a), false), None);
        assert_eq!(problem(addr, &[a], Some(a), true), None);
        // Another key than the registered one.
        let other = problem(addr, &[a], Some(b), false).unwrap();
        assert!(other.contains("use the registered key file"), "{other}");
        // The key just replaced by `a` is still honoured (the node has not restarted yet).
        assert_eq!(problem(addr, &[a, b], Some(b), false), None);
        // No key registered: clients speak plain HTTP, so TLS must be off.
        let plain = problem(addr, &[], Some(a), false).unwrap();
        assert!(plain.contains("disable_tls = true"), "{plain}");
        assert_eq!(problem(addr, &[], None, true), None);
        // An explicit https:// address is checked against CAs, not a pinned key.
        assert_eq!(problem("https://n.example:443", &[], None, false), None);
    }
}
