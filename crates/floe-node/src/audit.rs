//! Possession audits: a few sampled symbols of both slivers of one shard, with their Merkle
//! proofs, signed with the node's protocol key (see `floe_core::audit` and
//! `floe_crypto::audit`). Bounded: one shard per request, at most
//! [`floe_core::audit::MAX_AUDIT_SAMPLES`] symbols per axis, and the node's recovery permits.

use floe_core::audit::{AuditRequest, AuditRequestV1, AuditSamples, check_sample_count};
use floe_core::{SliverType, audit::AuditError};
use floe_crypto::SignedMessage;
use floe_crypto::audit::{
    AuditAnswer, AuditAnswerV1, AuditOutcome, AuditRefusal, sign_audit_answer,
};

use crate::node::{NodeError, StorageNode};
use crate::view::CommitteeView;

impl StorageNode {
    /// Answer the BCS [`AuditRequest`] in `body` with a signed [`AuditAnswer`]: the samples, or
    /// a signed refusal naming why there are none. Malformed or out-of-range requests get an
    /// error (nothing is signed for them).
    pub fn audit(&self, body: &[u8]) -> Result<SignedMessage, NodeError> {
        let request: AuditRequest = bcs::from_bytes(body)
            .map_err(|e| NodeError::BadBody(format!("not a BCS audit request: {e}")))?;
        let request = *request.v1();
        check_sample_count(request.samples).map_err(|e| NodeError::BadQuery(e.to_string()))?;
        let view = self.view();
        if request.shard.0 >= view.n() {
            return Err(NodeError::IndexOutOfRange {
                index: request.shard.0,
                n: view.n(),
            });
        }
        let outcome = self.audit_outcome(&view, &request)?;
        let answer = AuditAnswer::V1(AuditAnswerV1 {
            node: *self.public_key(),
            blob_id: request.blob_id,
            shard: request.shard,
            nonce: request.nonce,
            samples: request.samples,
            outcome,
        });
        Ok(sign_audit_answer(&self.keys.protocol, view.epoch, answer))
    }

    fn audit_outcome(
        &self,
        view: &CommitteeView,
        request: &AuditRequestV1,
    ) -> Result<AuditOutcome, NodeError> {
        let refused = |r| Ok(AuditOutcome::Refused(r));
        let blob_id = &request.blob_id;
        match self.store.get_blob_info(blob_id)? {
            Some(info) if info.invalid_event.is_some() => return refused(AuditRefusal::Invalid),
            Some(info) if info.is_registered_live(view.epoch) => {}
            _ => return refused(AuditRefusal::NotRegistered),
        }
        let shard = request.shard;
        if !view.serves(shard) {
            return refused(AuditRefusal::ShardNotHeld);
        }
        let primary = self.store.get_sliver(shard, SliverType::Primary, blob_id)?;
        let secondary = self
            .store
            .get_sliver(shard, SliverType::Secondary, blob_id)?;
        let (Some(primary), Some(secondary)) = (&primary, &secondary) else {
            let recovering =
                self.is_syncing(blob_id) || self.epoch_sync.awaiting(view.epoch).contains(&shard.0);
            return refused(if recovering {
                AuditRefusal::Recovering
            } else {
                AuditRefusal::Missing {
                    primary: primary.is_none(),
                    secondary: secondary.is_none(),
                }
            });
        };
        match AuditSamples::from_slivers(&view.config, request, primary, secondary) {
            Ok(samples) => Ok(AuditOutcome::Samples(samples)),
            Err(e @ AuditError::BadSampleCount(_)) => Err(NodeError::BadQuery(e.to_string())),
            Err(e) => Err(NodeError::Internal(format!(
                "stored slivers of {blob_id} on shard {shard} are unusable: {e}"
            ))),
        }
    }
}
