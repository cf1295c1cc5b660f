//! Each blob's first certificate, kept beside the state (not in it, so the state hash is
//! unchanged) for audits, and carried by snapshots.
//!
//! The aggregate signature is kept as its 96 compressed bytes and decompressed (and
//! subgroup-checked) only when a certificate is served: decompressing every signature when a
//! snapshot is loaded cost about 70 µs each, 1.5 s of a restart at 20,000 blobs.

use std::sync::Arc;

use floe_core::{BlobId, Epoch};
use floe_crypto::{Certificate, ProtocolSignature};
use floe_ledger::api_types::CertificateRecord;
use floe_ledger::lazy_map::{EncodedMapError, Layout, LazyMap};
use floe_ledger::{Event, EventKind, LogEntry, TxKind};
use serde::{Deserialize, Serialize};

/// A certificate record with its signature undecoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCertificate {
    pub blob_id: BlobId,
    pub epoch: Epoch,
    pub event_index: u64,
    // Byte strings for serde: the same BCS bytes as sequences of u8, read in one call each.
    #[serde(with = "serde_bytes")]
    pub signers_bitmap: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub serialized_message: Vec<u8>,
    /// The compressed aggregate signature (96 bytes).
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl StoredCertificate {
    fn new(blob_id: BlobId, epoch: Epoch, event_index: u64, c: &Certificate) -> Self {
        Self {
            blob_id,
            epoch,
            event_index,
            signers_bitmap: c.signers_bitmap.clone(),
            serialized_message: c.serialized_message.clone(),
            signature: c.signature.to_bytes().to_vec(),
        }
    }

    /// The record as served, or `None` if the stored signature does not decode (never for
    /// records taken from applied entries, whose certificates were verified).
    pub fn decode(&self) -> Option<CertificateRecord> {
        let signature = ProtocolSignature::from_bytes(&self.signature).ok()?;
        Some(CertificateRecord {
            blob_id: self.blob_id,
            epoch: self.epoch,
            event_index: self.event_index,
            certificate: Certificate {
                signers_bitmap: self.signers_bitmap.clone(),
                serialized_message: self.serialized_message.clone(),
                signature,
            },
        })
    }
}

/// Blob ID → its first certificate, in blob ID order (the order a snapshot writes them). Loaded
/// from a snapshot, each is decoded when first served ([`LazyMap`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Certificates(LazyMap<BlobId, StoredCertificate>);

impl Default for Certificates {
    fn default() -> Self {
        Certificates(LazyMap::with_layout(Layout::Records))
    }
}

impl Certificates {
    /// The BCS `Vec<StoredCertificate>` in `bytes[section]`, where certificate `i` ends at
    /// byte `ends[i]` of the section. Each is decoded when first used.
    pub fn from_encoded(
        bytes: Arc<Vec<u8>>,
        section: std::ops::Range<usize>,
        ends: Vec<u64>,
    ) -> Result<Self, EncodedMapError> {
        let len = section.len();
        let (map, end) = LazyMap::from_encoded(bytes, section.start, 0, ends, Layout::Records)?;
        if end != len {
            return Err(EncodedMapError::Trailing { end, len });
        }
        Ok(Certificates(map))
    }

    /// These records, by blob ID.
    pub fn from_records(records: impl IntoIterator<Item = StoredCertificate>) -> Self {
        Certificates(LazyMap::from_entries(
            records.into_iter().map(|c| (c.blob_id, c)),
            Layout::Records,
        ))
    }

    pub fn get(&self, blob_id: &BlobId) -> Option<&StoredCertificate> {
        self.0.get(blob_id)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Add `later`'s certificates, noted after these: a blob certified in both keeps this
    /// map's certificate, its first.
    pub fn absorb(&mut self, later: Certificates) {
        for (blob_id, certificate) in later.0.iter() {
            self.0.get_or_insert_with(*blob_id, || certificate.clone());
        }
    }

    /// The BCS `Vec<StoredCertificate>` (by blob ID) and where each certificate ends in it.
    pub fn encode(&self) -> (Vec<u8>, Vec<u64>) {
        let (mut bytes, mut ends) = (Vec::new(), Vec::new());
        self.0.encode_into(&mut bytes, &mut ends);
        (bytes, ends)
    }
}

/// Keep the certificate of a `certifyBlob` entry whose events certify a blob for the first time.
pub(crate) fn note_certificate(
    certificates: &mut Certificates,
    entry: &LogEntry,
    events: &[Event],
) {
    let LogEntry::Tx(tx) = entry else { return };
    let TxKind::CertifyBlob { certificate, .. } = &tx.tx.kind else {
        return;
    };
    for e in events {
        if let EventKind::BlobCertified {
            blob_id,
            is_extension: false,
            ..
        } = &e.kind
        {
            certificates.0.get_or_insert_with(*blob_id, || {
                StoredCertificate::new(*blob_id, e.epoch, e.index, certificate)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What snapshots held before the byte-string attributes: plain sequences of u8.
    #[derive(Serialize)]
    struct Plain {
        blob_id: BlobId,
        epoch: Epoch,
        event_index: u64,
        signers_bitmap: Vec<u8>,
        serialized_message: Vec<u8>,
        signature: Vec<u8>,
    }

    #[test]
    fn stored_certificates_keep_their_bcs_bytes() {
        let stored = StoredCertificate {
            blob_id: BlobId([3; 32]),
            epoch: 7,
            event_index: 300,
            signers_bitmap: vec![0b1011, 1],
            serialized_message: (0..70).collect(),
            signature: vec![0xAB; 96],
        };
        let plain = Plain {
            blob_id: stored.blob_id,
            epoch: stored.epoch,
            event_index: stored.event_index,
            signers_bitmap: stored.signers_bitmap.clone(),
            serialized_message: stored.serialized_message.clone(),
            signature: stored.signature.clone(),
        };
        let bytes = bcs::to_bytes(&stored).unwrap();
        assert_eq!(bytes, bcs::to_bytes(&plain).unwrap());
        assert_eq!(
            bcs::from_bytes::<StoredCertificate>(&bytes).unwrap(),
            stored
        );
    }
}
