//! The ledger's certificate of a blob, checked against the committee that signed it.

use floe_core::BlobId;
use floe_crypto::{CommitteeMember, CommitteeWeights, ConfirmationBody};
use floe_ledger::api_types::{CertificateRecord, CommitteeInfo, MemberInfo};
use serde::{Deserialize, Serialize};

/// What checking the certificate showed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "result"
)]
pub enum CertificateCheck {
    /// The aggregate signature verifies, signers hold at least n − f shards of the committee of
    /// `epoch`, and it confirms this blob in that epoch.
    Verified { epoch: u32, signer_shards: u64 },
    /// The committee of the certificate's epoch was not at hand (older than the previous
    /// epoch), or the ledger kept no certificate: the ledger's word stands.
    NotChecked { reason: String },
    /// The certificate does not support the ledger's status.
    Invalid { reason: String },
}

/// Check `record` for `blob_id` against `committee` (which must be of the record's epoch).
pub fn check_certificate(
    record: Option<&CertificateRecord>,
    committee: Option<&CommitteeInfo>,
    blob_id: &BlobId,
) -> CertificateCheck {
    let Some(record) = record else {
        return CertificateCheck::NotChecked {
            reason: "the ledger serves no certificate for it".into(),
        };
    };
    let invalid = |reason: String| CertificateCheck::Invalid { reason };
    if record.blob_id != *blob_id {
        return invalid("it is another blob's".into());
    }
    let Some(committee) = committee.filter(|c| c.epoch == record.epoch) else {
        return CertificateCheck::NotChecked {
            reason: format!("the committee of epoch {} is not at hand", record.epoch),
        };
    };
    let weights = match weights(committee) {
        Ok(w) => w,
        Err(e) => return invalid(e),
    };
    match record
        .certificate
        .verify_quorum_message::<ConfirmationBody>(&weights)
    {
        Ok(m) if m.body.blob_id != *blob_id => invalid("it confirms another blob".into()),
        Ok(m) if m.epoch != record.epoch => invalid(format!("it is for epoch {}", m.epoch)),
        Ok(_) => CertificateCheck::Verified {
            epoch: record.epoch,
            signer_shards: signer_shards(record, committee),
        },
        Err(e) => invalid(e.to_string()),
    }
}

/// The committee's weights, members in signer-bitmap order.
fn weights(committee: &CommitteeInfo) -> Result<CommitteeWeights, String> {
    let members = committee
        .members
        .iter()
        .map(|m| CommitteeMember {
            public_key: m.protocol_key,
            weight: m.shards.len() as u16,
        })
        .collect();
    CommitteeWeights::new(members, committee.n_shards)
        .map_err(|e| format!("unusable committee: {e}"))
}

/// The members of `committee` (which must be of the record's epoch) that signed the
/// certificate, from its signer bitmap (shape checked).
pub fn signing_members<'a>(
    record: &CertificateRecord,
    committee: &'a CommitteeInfo,
) -> Result<Vec<&'a MemberInfo>, String> {
    let indices = record
        .certificate
        .signers(&weights(committee)?)
        .map_err(|e| e.to_string())?;
    Ok(indices.into_iter().map(|i| &committee.members[i]).collect())
}

/// Shards held by the certificate's signers.
fn signer_shards(record: &CertificateRecord, committee: &CommitteeInfo) -> u64 {
    signing_members(record, committee)
        .unwrap_or_default()
        .iter()
        .map(|m| m.shards.len() as u64)
        .sum()
}
