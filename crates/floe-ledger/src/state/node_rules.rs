//! Storage-node rules: registration (with a proof of possession), deregistration, weight
//! changes, and the next committee they lead to.
//!
//! Changes to the node set take effect at the next epoch change: the next committee is a
//! pure function of the current committee and the registered weights, computed with the
//! minimal-move [`transition`], so anyone can preview it before the boundary.

use floe_core::merkle::blake2b256;
use floe_crypto::{ProofOfPossession, ProtocolPublicKey};

use super::{Effects, LedgerState};
use crate::committee::transition;
use crate::error::TxError;
use crate::event::EventKind;
use crate::types::{Address, Committee, NodeId, PreviousNetworkKey, StorageNode};

/// Longest node name accepted.
const MAX_NAME_LEN: usize = 128;
/// Longest network address accepted.
const MAX_ADDRESS_LEN: usize = 256;

/// The fields of a `RegisterNode` transaction.
pub(crate) struct NodeRegistration<'a> {
    pub name: &'a str,
    pub network_address: &'a str,
    pub protocol_key: &'a ProtocolPublicKey,
    pub proof_of_possession: &'a ProofOfPossession,
    pub capacity: u64,
    pub weight: u64,
    pub network_public_key: Option<floe_crypto::NetworkPublicKey>,
}

impl LedgerState {
    /// The committee the next epoch change installs: the one fixed for it if it is fixed
    /// already, else the one the nodes registered now would get.
    pub fn next_committee(&self) -> Committee {
        if let Some(c) = &self.selected_committee {
            return c.clone();
        }
        let weights: Vec<(NodeId, u64)> = self
            .nodes
            .values()
            .filter(|n| n.weight > 0)
            .map(|n| (n.id, n.weight))
            .collect();
        transition(&self.committee, self.epoch + 1, &weights)
    }

    pub(super) fn register_node(
        &mut self,
        owner: Address,
        r: NodeRegistration<'_>,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        let bad = |s: &str| Err(TxError::BadNode(s.into()));
        if r.name.is_empty() || r.name.len() > MAX_NAME_LEN {
            return bad("the name must have 1 to 128 bytes");
        }
        if r.network_address.is_empty() || r.network_address.len() > MAX_ADDRESS_LEN {
            return bad("the network address must have 1 to 256 bytes");
        }
        if r.weight == 0 {
            return bad("weight must be positive");
        }
        if r.capacity == 0 {
            return bad("capacity must be positive");
        }
        if self
            .nodes
            .values()
            .any(|n| &n.protocol_key == r.protocol_key)
        {
            return bad("protocol key already used by another node");
        }
        if self.nodes.values().any(|n| n.name == r.name) {
            return bad("name already used by another node");
        }
        if let Some(key) = r.network_public_key
            && self.rules >= crate::rules::UNIQUE_NETWORK_KEYS
            && self.nodes.values().any(|n| n.pinned_keys().contains(&key))
        {
            return bad("network key already used by another node");
        }
        r.proof_of_possession
            .verify(r.protocol_key, self.epoch, &owner.0)
            .map_err(|_| {
                TxError::BadNode(format!(
                    "proof of possession does not verify for this key, the sender and epoch {}",
                    self.epoch
                ))
            })?;
        let id = floe_core::ObjectId(blake2b256(&[
            b"floe-node",
            &out.entry_index.to_le_bytes(),
            r.protocol_key.as_bytes(),
        ]));
        out.emit(EventKind::NodeRegistered {
            node_id: id,
            owner,
            weight: r.weight,
        });
        self.nodes.insert(
            id,
            StorageNode {
                id,
                name: r.name.to_string(),
                network_address: r.network_address.to_string(),
                protocol_key: *r.protocol_key,
                owner,
                capacity: r.capacity,
                weight: r.weight,
                network_public_key: r.network_public_key,
                previous_network_key: None,
            },
        );
        Ok(())
    }

    /// Set a node's network (TLS) public key. Owner only; no two nodes share a key (current
    /// or still-honoured previous). The replaced key stays pinned through the next epoch, so
    /// that clients reach the node both before and after it restarts with the new key.
    pub(super) fn set_network_key(
        &mut self,
        sender: &Address,
        node_id: &NodeId,
        key: floe_crypto::NetworkPublicKey,
    ) -> Result<(), TxError> {
        if self
            .nodes
            .values()
            .any(|n| &n.id != node_id && n.pinned_keys().contains(&key))
        {
            return Err(TxError::BadNode(
                "network key already used by another node".into(),
            ));
        }
        let epoch = self.epoch;
        let node = self
            .nodes
            .get_mut(node_id)
            .ok_or(TxError::NoSuchObject(*node_id))?;
        if &node.owner != sender {
            return Err(TxError::NotOwner(*node_id));
        }
        if node.network_public_key != Some(key) {
            node.previous_network_key = node.network_public_key.map(|k| PreviousNetworkKey {
                key: k,
                until_epoch: epoch + 1,
            });
            node.network_public_key = Some(key);
        }
        Ok(())
    }

    /// Set a node's weight; 0 deregisters it. Owner only. The last node with positive weight
    /// cannot leave (a committee must cover every shard).
    pub(super) fn set_node_weight(
        &mut self,
        sender: &Address,
        node_id: &NodeId,
        weight: u64,
        out: &mut Effects,
    ) -> Result<(), TxError> {
        let node = self
            .nodes
            .get(node_id)
            .ok_or(TxError::NoSuchObject(*node_id))?;
        if &node.owner != sender {
            return Err(TxError::NotOwner(*node_id));
        }
        if node.weight == 0 {
            return Err(TxError::NodeDeregistered(*node_id));
        }
        if weight == 0
            && !self
                .nodes
                .values()
                .any(|n| n.id != *node_id && n.weight > 0)
        {
            return Err(TxError::LastNode);
        }
        out.emit(EventKind::NodeWeightChanged {
            node_id: *node_id,
            weight,
        });
        self.nodes.get_mut(node_id).expect("checked above").weight = weight;
        Ok(())
    }
}
