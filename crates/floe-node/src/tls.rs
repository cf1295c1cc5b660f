//! The node's TLS: the server configuration it serves, and the start-up check that clients
//! pinning its registered network key could talk to it.

use std::sync::Arc;

use crate::config::{NodeConfig, NodeKeys};
use crate::error::NodeError;
use crate::node::StorageNode;
use crate::view::CommitteeView;

impl StorageNode {
    /// The TLS server configuration: `None` with `tls.disable_tls`; else the network key with
    /// the configured certificate chain, or a self-signed certificate for the listen address
    /// and the registered address's host.
    pub fn tls_config(
        &self,
        listening: &std::net::SocketAddr,
    ) -> Result<Option<Arc<rustls::ServerConfig>>, NodeError> {
        if self.config.tls.disable_tls {
            return Ok(None);
        }
        let key = self.keys.network.as_ref().ok_or_else(|| {
            NodeError::Internal(
                "the key file has no network key, so the node cannot serve TLS: run `floe node \
                 keygen --network-key-only --out KEYS` to add one (and register it), or set \
                 tls.disable_tls = true"
                    .into(),
            )
        })?;
        let chain = match &self.config.tls.certificate_path {
            Some(path) => {
                let pem = std::fs::read_to_string(path).map_err(|e| {
                    NodeError::Internal(format!("cannot read {}: {e}", path.display()))
                })?;
                Some(
                    floe_tls::certificate_chain_from_pem(&pem)
                        .map_err(|e| NodeError::Internal(format!("{}: {e}", path.display())))?,
                )
            }
            None => None,
        };
        let mut hosts = vec![listening.ip().to_string()];
        let view = self.view();
        if let Some(me) = view.my_index.map(|i| &view.committee.members[i]) {
            let address = me.network_address.rsplit_once(':').map_or("", |(h, _)| h);
            let host = address.rsplit("//").next().unwrap_or(address);
            if !host.is_empty() && !hosts.iter().any(|h| h == host) {
                hosts.push(host.to_string());
            }
        }
        floe_tls::server_config(key, chain, &hosts)
            .map(Some)
            .map_err(|e| NodeError::Internal(e.to_string()))
    }
}

/// Refuse a TLS set-up that clients could not talk to: a network key other than the
/// registered one, or TLS on a node registered without a key (clients speak plain HTTP to it).
pub(crate) fn check_registered(
    config: &NodeConfig,
    keys: &NodeKeys,
    view: &CommitteeView,
) -> Result<(), String> {
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
        Some(problem) => Err(problem),
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
