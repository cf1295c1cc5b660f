//! What the ledger's storage challenges say about one blob, for `floe blob-status` and the
//! dashboard's blob page.

use floe_core::BlobId;
use floe_ledger::api_types::SystemInfo;
use floe_ledger::challenge::{BlobOutcomes, blob_outcomes};

use crate::{Client, ClientError};

/// One blob's outcomes in the latest epoch with challenge reports.
#[derive(Clone, Debug)]
pub struct BlobChallenges {
    pub outcomes: BlobOutcomes,
    /// Names of the nodes in `outcomes.failing`, in the same order.
    pub failing_names: Vec<String>,
}

impl Client {
    /// The outcomes for `blob_id` in the latest epoch with reports (the newest kept, if none
    /// has any), mapped onto that epoch's committee, which `system` must show (as its current
    /// or previous one). `None` when no challenges are kept or the committee is not shown.
    pub async fn last_blob_challenges(
        &self,
        system: &SystemInfo,
        blob_id: &BlobId,
    ) -> Result<Option<BlobChallenges>, ClientError> {
        let summary = self.ledger.challenge_summary().await?;
        let Some(epoch) = summary.latest().map(|e| e.epoch) else {
            return Ok(None);
        };
        let Some(set) = self.ledger.challenges(epoch).await? else {
            return Ok(None);
        };
        let Some(committee) = std::iter::once(&system.committee)
            .chain(system.previous_committee.as_ref())
            .find(|c| c.epoch == epoch)
        else {
            return Ok(None);
        };
        let outcomes = blob_outcomes(&set, &committee.to_committee(), blob_id);
        let failing_names = outcomes
            .failing
            .iter()
            .map(|id| {
                committee
                    .members
                    .iter()
                    .find(|m| m.node_id == *id)
                    .map_or_else(|| id.to_string(), |m| m.name.clone())
            })
            .collect();
        Ok(Some(BlobChallenges {
            outcomes,
            failing_names,
        }))
    }
}
