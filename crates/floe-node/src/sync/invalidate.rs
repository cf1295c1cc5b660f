//! The end of a sync that proved its blob inconsistent: gather f+1 shard weight of signed
//! attestations of the proof and submit the invalidation to the ledger.

use floe_core::recovery::InconsistencyProof;
use floe_core::{BlobId, SliverType};
use floe_crypto::{Certificate, InvalidBlobIdBody, ProtocolMessage, SignedMessage};
use floe_ledger::TxKind;
use floe_ledger_client::AccountSession;

use crate::node::{NodeError, StorageNode};
use crate::view::CommitteeView;

impl StorageNode {
    /// Gather f+1 shard weight of attestations for `proof` and submit the invalidation.
    pub(super) async fn invalidate(
        &self,
        view: &CommitteeView,
        blob_id: &BlobId,
        axis: SliverType,
        proof: InconsistencyProof,
    ) -> Result<(), NodeError> {
        tracing::warn!(%blob_id, %axis, "blob is inconsistently encoded; gathering attestations");
        let message = ProtocolMessage::new(view.epoch, InvalidBlobIdBody { blob_id: *blob_id });
        let mut partials: Vec<(usize, SignedMessage)> = Vec::new();
        let mut weight = 0u64;
        if let Some(me) = view.my_index {
            partials.push((me, SignedMessage::sign(&self.keys.protocol, &message)));
            weight += view.committee.members[me].shards.len() as u64;
        }
        let needed = u64::from(view.config.validity());
        for (member, peer) in self.peers(view) {
            if weight >= needed {
                break;
            }
            match peer.inconsistency_proof(blob_id, axis, &proof).await {
                Ok(signed)
                    if signed
                        .verify_invalid_blob_id(
                            &view.committee.members[member].protocol_key,
                            view.epoch,
                            blob_id,
                        )
                        .is_ok() =>
                {
                    partials.push((member, signed));
                    weight += view.committee.members[member].shards.len() as u64;
                }
                Ok(_) => tracing::warn!(
                    peer = peer.base_url(),
                    "peer returned an attestation that does not verify"
                ),
                Err(e) => {
                    tracing::debug!(peer = peer.base_url(), error = %e, "attestation request failed")
                }
            }
        }
        if weight < needed {
            return Err(NodeError::Internal(format!(
                "only {weight} of {needed} shard weight attested {blob_id} invalid"
            )));
        }
        let weights = floe_crypto::CommitteeWeights::new(
            view.committee
                .members
                .iter()
                .map(|m| floe_crypto::CommitteeMember {
                    public_key: m.protocol_key,
                    weight: m.shards.len() as u16,
                })
                .collect(),
            view.n(),
        )
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        let certificate = Certificate::aggregate(&weights, &partials)
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let session = AccountSession::new(self.keys.account.clone(), self.ledger.clone());
        match session.submit(TxKind::InvalidateBlob { certificate }).await {
            Ok(_) => Ok(()),
            // Another node got there first.
            Err(e) if e.reason() == Some("BLOB_INVALID") => Ok(()),
            Err(e) => Err(NodeError::Internal(format!(
                "submitting the invalidation failed: {e}"
            ))),
        }
    }
}
