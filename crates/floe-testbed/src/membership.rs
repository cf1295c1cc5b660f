//! Changing the committee of a running testbed: nodes join (keys, config, registration on the
//! ledger, start), leave (deregistration) and change weight. Each change takes effect at the
//! next epoch boundary.

use std::sync::Arc;
use std::time::Duration;

use floe_crypto::ProofOfPossession;
use floe_ledger::api_types::SystemInfo;
use floe_ledger::{NodeId, TxKind};
use floe_ledger_client::{AccountSession, LedgerClient};

use super::{Testbed, TestbedError, bind, io, launch, node_account, node_protocol_key, write};

/// Capacity every testbed node offers.
const CAPACITY: u64 = 1 << 40;

impl Testbed {
    fn ledger(&self) -> LedgerClient {
        LedgerClient::with_urls(self.ledger_urls())
    }

    fn ledger_error(e: impl std::fmt::Display) -> TestbedError {
        TestbedError::Ledger(e.to_string())
    }

    /// The running node `i` (its operations, migration figures), if it runs.
    pub fn node(&self, i: usize) -> Option<Arc<floe_node::StorageNode>> {
        self.nodes[i].as_ref().map(|n| Arc::clone(&n.node))
    }

    /// The ledger's node ID of node `i` (looked up by its protocol key among the current, the
    /// previous and the next committee).
    pub async fn node_id(&self, i: usize) -> Result<Option<NodeId>, TestbedError> {
        let system = self.ledger().system().await.map_err(Self::ledger_error)?;
        Ok(find_node(&system, i, self.state.seed))
    }

    /// Create node `n` (the next index): keys, config, a port; register it on the ledger with
    /// `weight` (signed by its operator account, with a proof of possession for the current
    /// epoch); start it. It joins the committee at the next epoch change. Returns its index.
    pub async fn add_node(&mut self, weight: u64) -> Result<usize, TestbedError> {
        let i = self.state.node_addresses.len();
        let key = node_protocol_key(self.state.seed, i);
        let account = node_account(self.state.seed, i);
        let listener = bind("127.0.0.1:0").await?;
        let address = listener.local_addr().map_err(io(&self.dir))?.to_string();
        let network_public_key = crate::NodeFiles {
            dir: self.node_dir(i),
            name: format!("node-{i}"),
            address: address.clone(),
            ledger_urls: self.ledger_urls(),
            limits: self.limits.clone(),
            disable_tls: self.state.disable_tls,
        }
        .write(self.state.seed, i)?;
        // The proof of possession names the epoch: retry if the epoch moved meanwhile.
        let session = AccountSession::new(account.clone(), self.ledger());
        let mut attempt = 0;
        loop {
            let epoch = self
                .ledger()
                .system()
                .await
                .map_err(Self::ledger_error)?
                .epoch;
            let tx = TxKind::RegisterNode {
                name: format!("node-{i}"),
                network_address: address.clone(),
                protocol_key: *key.public_key(),
                proof_of_possession: ProofOfPossession::create(&key, epoch, &account.address().0),
                capacity: CAPACITY,
                weight,
                network_public_key,
            };
            match session.submit(tx).await {
                Ok(_) => break,
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(error = %e, "registering node {i} failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(Self::ledger_error(e)),
            }
        }
        self.state.node_addresses.push(address);
        self.nodes.push(None);
        self.held.push(None);
        write(
            &self.dir.join("testbed.json"),
            &serde_json::to_string_pretty(&self.state).expect("serialises"),
        )?;
        let node = launch(i, self.node_config(i), listener).await?;
        self.nodes[i] = Some(node);
        Ok(i)
    }

    /// Deregister node `i` (its operator signs): it leaves the committee at the next epoch
    /// change. The node keeps running (it serves its old shards until the change is done);
    /// stop it afterwards with [`Testbed::stop_node`]. It is recorded as removed in
    /// `testbed.json`, so a resumed testbed starts it again only while it is in a committee.
    pub async fn remove_node(&mut self, i: usize) -> Result<(), TestbedError> {
        self.submit_for(i, |node_id| TxKind::DeregisterNode { node_id })
            .await?;
        if !self.state.removed.contains(&i) {
            self.state.removed.push(i);
            write(
                &self.dir.join("testbed.json"),
                &serde_json::to_string_pretty(&self.state).expect("serialises"),
            )?;
        }
        Ok(())
    }

    /// Set node `i`'s weight, effective at the next epoch change.
    pub async fn set_node_weight(&mut self, i: usize, weight: u64) -> Result<(), TestbedError> {
        self.submit_for(i, |node_id| TxKind::SetNodeWeight { node_id, weight })
            .await
    }

    async fn submit_for(
        &self,
        i: usize,
        kind: impl FnOnce(NodeId) -> TxKind,
    ) -> Result<(), TestbedError> {
        if i >= self.node_count() {
            return Err(TestbedError::Options(format!("no node {i}")));
        }
        let node_id = self.node_id(i).await?.ok_or_else(|| {
            TestbedError::Options(format!("node {i} is not registered on the ledger"))
        })?;
        let session = AccountSession::new(node_account(self.state.seed, i), self.ledger());
        session
            .submit(kind(node_id))
            .await
            .map_err(Self::ledger_error)?;
        Ok(())
    }
}

fn find_node(system: &SystemInfo, i: usize, seed: u64) -> Option<NodeId> {
    let key = *node_protocol_key(seed, i).public_key();
    [
        Some(&system.committee),
        system.next_committee.as_ref(),
        system.previous_committee.as_ref(),
    ]
    .into_iter()
    .flatten()
    .flat_map(|c| c.members.iter())
    .find(|m| m.protocol_key == key)
    .map(|m| m.node_id)
}
