//! Certificate checks that run outside the state (on any thread), and the cache of those
//! known to pass.

use std::collections::HashSet;
use std::sync::Arc;

use floe_core::Epoch;
use floe_core::merkle::blake2b256;
use floe_crypto::{Certificate, CommitteeWeights};

/// Keys of certificates known to verify in the current epoch. Only an accelerator: a hit means
/// exactly what running the verification would return, so `apply` stays deterministic. It is
/// not part of the state (equal states may have different caches).
#[derive(Clone, Debug, Default)]
pub(super) struct VerifiedCache(pub(super) HashSet<[u8; 32]>);

impl PartialEq for VerifiedCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for VerifiedCache {}

/// Most cached verifications kept; the cache is cleared when it is full and at every epoch.
pub(super) const MAX_VERIFIED_CACHE: usize = 100_000;

/// Whether a certificate needs quorum (n − f) or validity (f + 1) weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    Quorum,
    Validity,
}

pub(super) fn cert_key(epoch: Epoch, threshold: Threshold, certificate: &Certificate) -> [u8; 32] {
    let t = [threshold as u8];
    blake2b256(&[
        b"floe-cert-check",
        &epoch.to_le_bytes(),
        &t,
        &bcs::to_bytes(certificate).expect("serialises"),
    ])
}

/// A certificate check that can run anywhere (no access to the state needed).
pub struct CertCheck {
    pub(super) key: [u8; 32],
    pub(super) certificate: Certificate,
    pub(super) threshold: Threshold,
    pub(super) weights: Arc<CommitteeWeights>,
}

impl CertCheck {
    /// Runs the BLS verification; returns the key to record if the certificate is valid.
    pub fn run(&self) -> Option<[u8; 32]> {
        let ok = match self.threshold {
            Threshold::Quorum => self.certificate.verify_quorum(&self.weights),
            Threshold::Validity => self.certificate.verify_validity(&self.weights),
        };
        ok.is_ok().then_some(self.key)
    }
}
