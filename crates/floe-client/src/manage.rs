//! Blob status checked against the nodes, and the owner's operations: list, delete, extend.

use std::time::Duration;

use floe_core::Epoch;
use floe_core::{BlobId, ObjectId};
use floe_ledger::api_types::{BlobStatusResponse, ObjectResponse};
use floe_ledger::{Address, BlobObject, BlobStatus, TxKind};
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::{Client, ClientError};

/// How much of the committee agrees with the ledger about a blob.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAgreement {
    /// Shards whose nodes answered.
    pub responded_shards: u64,
    /// Shards whose nodes report the same state as the ledger.
    pub agreeing_shards: u64,
    pub n_shards: u64,
    /// Whether the agreeing shards reach the validity threshold f + 1 (at least one honest
    /// node agrees).
    pub confirmed: bool,
}

/// A blob's status from the ledger, with the nodes' agreement.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedStatus {
    pub blob_id: BlobId,
    /// The ledger's current epoch.
    pub epoch: Epoch,
    pub status: BlobStatus,
    /// The ledger event that made the status so (absent for `nonexistent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<floe_ledger::Event>,
    pub nodes: NodeAgreement,
}

/// The coarse state a node's Walrus-style status JSON shows.
fn node_state(v: &Value) -> &'static str {
    if v.as_str() == Some("nonexistent") {
        return "nonexistent";
    }
    if v.get("invalid").is_some() {
        return "invalid";
    }
    if let Some(p) = v.get("permanent") {
        return if p["isCertified"].as_bool() == Some(true) {
            "certified"
        } else {
            "registered"
        };
    }
    if let Some(d) = v.get("deletable") {
        return if d["initialCertifiedEpoch"].is_number() {
            "certified"
        } else {
            "registered"
        };
    }
    "unknown"
}

fn ledger_state(s: &BlobStatus) -> &'static str {
    match s {
        BlobStatus::Nonexistent | BlobStatus::Deleted { .. } | BlobStatus::Expired { .. } => {
            "nonexistent"
        }
        BlobStatus::Registered { .. } => "registered",
        BlobStatus::Certified { .. } => "certified",
        BlobStatus::Invalid { .. } => "invalid",
    }
}

impl Client {
    /// The ledger's status of `blob_id` and how many shards' nodes agree with it. The ledger
    /// is authoritative; node agreement shows whether the nodes have caught up.
    pub async fn verified_status(
        &self,
        blob_id: &BlobId,
        timeout: Option<Duration>,
    ) -> Result<VerifiedStatus, ClientError> {
        let BlobStatusResponse {
            epoch,
            status,
            event,
            ..
        } = self.ledger.blob_status(blob_id).await?;
        let (_, committee) = self.committee().await?;
        let timeout = timeout.unwrap_or(Duration::from_millis(
            self.config.communication.status_timeout_ms,
        ));
        let mut set = JoinSet::new();
        for (i, m) in committee.members.iter().enumerate() {
            let client = m.client.clone();
            let id = *blob_id;
            set.spawn(async move {
                let r = tokio::time::timeout(timeout, client.blob_status(&id)).await;
                (i, r.ok().and_then(Result::ok))
            });
        }
        let want = ledger_state(&status);
        let (mut responded, mut agreeing) = (0, 0);
        while let Some(joined) = set.join_next().await {
            let Ok((i, Some(v))) = joined else { continue };
            let w = committee.members[i].weight();
            responded += w;
            if node_state(&v) == want {
                agreeing += w;
            }
        }
        Ok(VerifiedStatus {
            blob_id: *blob_id,
            epoch,
            status,
            event,
            nodes: NodeAgreement {
                responded_shards: responded,
                agreeing_shards: agreeing,
                n_shards: u64::from(committee.n_shards()),
                confirmed: agreeing >= committee.validity(),
            },
        })
    }

    /// The wallet's blob objects; expired and deleted ones only with `include_expired`.
    pub async fn list_blobs(&self, include_expired: bool) -> Result<Vec<BlobObject>, ClientError> {
        let address = self.wallet()?.address();
        let epoch = self.system().await?.epoch;
        let account = self.ledger.account(&address).await?;
        Ok(account
            .blobs
            .into_iter()
            .filter(|b| include_expired || b.is_live(epoch))
            .collect())
    }

    /// A blob object the wallet owns.
    pub async fn owned_blob(&self, object_id: &ObjectId) -> Result<BlobObject, ClientError> {
        let address = self.wallet()?.address();
        match self.ledger.object(object_id).await? {
            Some(ObjectResponse::Blob(b)) if b.owner == address => Ok(b),
            _ => Err(ClientError::NotOwned(object_id.to_string())),
        }
    }

    /// The wallet's live blob objects registering `blob_id`.
    pub async fn owned_objects_of(&self, blob_id: &BlobId) -> Result<Vec<BlobObject>, ClientError> {
        Ok(self
            .list_blobs(false)
            .await?
            .into_iter()
            .filter(|b| b.blob_id == *blob_id)
            .collect())
    }

    /// A blob object's attributes (any owner's).
    pub async fn blob_attributes(
        &self,
        object_id: &ObjectId,
    ) -> Result<std::collections::BTreeMap<String, String>, ClientError> {
        match self.ledger.object(object_id).await? {
            Some(ObjectResponse::Blob(b)) => Ok(b.attributes),
            _ => Err(ClientError::NotOwned(object_id.to_string())),
        }
    }

    /// Set attributes of a blob object the wallet owns (existing keys are overwritten).
    pub async fn set_blob_attributes(
        &self,
        object_id: &ObjectId,
        attributes: Vec<(String, String)>,
    ) -> Result<(), ClientError> {
        self.owned_blob(object_id).await?;
        self.wallet()?
            .submit(TxKind::SetBlobAttributes {
                blob_object: *object_id,
                attributes,
            })
            .await?;
        Ok(())
    }

    /// Remove `keys` (or, with `None`, every attribute) of a blob object the wallet owns.
    pub async fn remove_blob_attributes(
        &self,
        object_id: &ObjectId,
        keys: Option<Vec<String>>,
    ) -> Result<(), ClientError> {
        self.owned_blob(object_id).await?;
        self.wallet()?
            .submit(TxKind::RemoveBlobAttributes {
                blob_object: *object_id,
                keys,
            })
            .await?;
        Ok(())
    }

    /// Delete a deletable blob object the wallet owns; its storage returns to the wallet.
    pub async fn delete(&self, object_id: &ObjectId) -> Result<BlobObject, ClientError> {
        let blob = self.owned_blob(object_id).await?;
        if !blob.deletable {
            return Err(ClientError::BadLifetime(format!(
                "blob object {object_id} is permanent and cannot be deleted before it expires \
                 at epoch {}",
                blob.end_epoch()
            )));
        }
        self.wallet()?
            .submit(TxKind::DeleteBlob {
                blob_object: *object_id,
            })
            .await?;
        Ok(blob)
    }

    /// Extend a certified blob object by `epochs`; returns its new end epoch.
    pub async fn extend(&self, object_id: &ObjectId, epochs: u32) -> Result<Epoch, ClientError> {
        let blob = self.owned_blob(object_id).await?;
        let new_end = extended_end(&blob, epochs)?;
        self.wallet()?
            .submit(TxKind::ExtendBlob {
                blob_object: *object_id,
                new_end_epoch: new_end,
            })
            .await?;
        Ok(new_end)
    }

    /// Wrap a certified blob object the wallet owns into a shared blob: anyone may then extend
    /// it (see [`Client::extend_shared`]), and nobody, the wallet included, may delete,
    /// transfer or change it. Returns the shared blob's object ID.
    pub async fn share_blob(&self, object_id: &ObjectId) -> Result<ObjectId, ClientError> {
        self.owned_blob(object_id).await?;
        let answer = self
            .wallet()?
            .submit(TxKind::ShareBlob {
                blob_object: *object_id,
            })
            .await?;
        // The shared blob is the first object its entry created.
        let shared = floe_ledger::created_object_id(answer.entry_index, 0);
        match self.ledger.object(&shared).await? {
            Some(ObjectResponse::SharedBlob(s)) if s.blob.id == *object_id => Ok(shared),
            other => Err(ClientError::Internal(format!(
                "the ledger accepted sharing {object_id} but shows {other:?} at {shared}"
            ))),
        }
    }

    /// Extend the blob wrapped in shared blob `shared` by `epochs` (anyone with a wallet may).
    /// Returns the new end epoch.
    pub async fn extend_shared(
        &self,
        shared: &ObjectId,
        epochs: u32,
    ) -> Result<Epoch, ClientError> {
        let blob = match self.ledger.object(shared).await? {
            Some(ObjectResponse::SharedBlob(s)) => s.blob,
            _ => return Err(ClientError::NotSharedBlob(*shared)),
        };
        let new_end = extended_end(&blob, epochs)?;
        self.wallet()?
            .submit(TxKind::ExtendSharedBlob {
                shared_blob: *shared,
                new_end_epoch: new_end,
            })
            .await?;
        Ok(new_end)
    }

    /// Give a blob object the wallet owns to `recipient` (not once deleted). The object keeps
    /// its ID, lifetime and certification; the recipient may then delete or extend it, and it
    /// appears in the recipient's account, no longer in the wallet's. Returns the object as it
    /// was before the transfer.
    pub async fn transfer_blob(
        &self,
        object_id: &ObjectId,
        recipient: Address,
    ) -> Result<BlobObject, ClientError> {
        // The ledger refuses a deleted object (`DELETED`) with a precise message.
        let blob = self.owned_blob(object_id).await?;
        self.wallet()?
            .submit(TxKind::TransferBlob {
                blob_object: *object_id,
                recipient,
            })
            .await?;
        Ok(blob)
    }
}

/// The end epoch of `blob` extended by `epochs` (at least one).
fn extended_end(blob: &BlobObject, epochs: u32) -> Result<Epoch, ClientError> {
    if epochs == 0 {
        return Err(ClientError::BadLifetime(
            "extend by at least 1 epoch".into(),
        ));
    }
    Ok(blob.end_epoch() + epochs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_status_json_maps_to_coarse_states() {
        assert_eq!(node_state(&json!("nonexistent")), "nonexistent");
        assert_eq!(node_state(&json!({"invalid":{"event":{}}})), "invalid");
        assert_eq!(
            node_state(&json!({"permanent":{"isCertified":true,"endEpoch":3}})),
            "certified"
        );
        assert_eq!(
            node_state(&json!({"permanent":{"isCertified":false,"endEpoch":3}})),
            "registered"
        );
        assert_eq!(
            node_state(&json!({"deletable":{"initialCertifiedEpoch":1}})),
            "certified"
        );
        assert_eq!(
            node_state(&json!({"deletable":{"initialCertifiedEpoch":null}})),
            "registered"
        );
        assert_eq!(node_state(&json!(42)), "unknown");
    }
}
