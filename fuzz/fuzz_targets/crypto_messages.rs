//! Decoding of Floe's protocol cryptography: BCS `SignedMessage` and `Certificate`, intent-prefixed
//! protocol messages (`ParsedMessage::from_bytes`), and compressed BLS public keys and signatures.
#![no_main]

use std::sync::OnceLock;

use floe_crypto::{
    Certificate, CommitteeMember, CommitteeWeights, ParsedMessage, ProtocolKeyPair,
    ProtocolPublicKey, ProtocolSignature, SignedMessage,
};
use floe_fuzz::bcs_round_trip;
use libfuzzer_sys::fuzz_target;

/// The exact bytes a parsed message stands for.
fn message_bytes(message: &ParsedMessage) -> Vec<u8> {
    match message {
        ParsedMessage::ProofOfPossession(m) => m.to_bytes(),
        ParsedMessage::StorageConfirmation(m) => m.to_bytes(),
        ParsedMessage::InvalidBlobId(m) => m.to_bytes(),
        ParsedMessage::SyncShard(m) => m.to_bytes(),
        ParsedMessage::AuditAnswer(m) => m.to_bytes(),
    }
}

/// Parses protocol-message bytes; whatever parses re-encodes to the same bytes and re-parses to
/// an equal message.
fn check_message(bytes: &[u8]) {
    if let Ok(message) = ParsedMessage::from_bytes(bytes) {
        let encoded = message_bytes(&message);
        assert_eq!(encoded, bytes, "message encoding is not canonical");
        let again = ParsedMessage::from_bytes(&encoded).expect("a re-encoding parses");
        assert_eq!(again, message);
        assert_eq!(again.intent_type(), message.intent_type());
        assert_eq!(again.epoch(), message.epoch());
    }
}

/// A committee of 10 members over 1000 shards, for the certificate bitmap checks.
fn committee() -> &'static CommitteeWeights {
    static COMMITTEE: OnceLock<CommitteeWeights> = OnceLock::new();
    COMMITTEE.get_or_init(|| {
        let members = (0u8..10)
            .map(|i| CommitteeMember {
                public_key: *ProtocolKeyPair::from_seed(&[i; 32]).public_key(),
                weight: 100,
            })
            .collect();
        CommitteeWeights::new(members, 1000).expect("weights sum to n")
    })
}

fuzz_target!(|data: &[u8]| {
    check_message(data);

    if let Some(signed) = bcs_round_trip::<SignedMessage>(data) {
        check_message(&signed.serialized_message);
    }

    if let Some(certificate) = bcs_round_trip::<Certificate>(data) {
        check_message(&certificate.serialized_message);
        // The bitmap checks (no pairing) return a verdict, never panic.
        if let Ok(signers) = certificate.signers(committee()) {
            assert!(signers.iter().all(|&i| i < committee().len()));
            let weight = certificate.signer_weight(committee()).expect("same bitmap");
            assert_eq!(weight, 100 * signers.len() as u64);
        }
    }

    if let Ok(key) = ProtocolPublicKey::from_bytes(data) {
        assert_eq!(
            &key.to_bytes()[..],
            data,
            "public key encoding is not canonical"
        );
        assert_eq!(
            ProtocolPublicKey::from_bytes(&key.to_bytes()).ok(),
            Some(key)
        );
        assert_eq!(key.to_base64().parse::<ProtocolPublicKey>().ok(), Some(key));
    }
    bcs_round_trip::<ProtocolPublicKey>(data);

    if let Ok(signature) = ProtocolSignature::from_bytes(data) {
        assert_eq!(
            &signature.to_bytes()[..],
            data,
            "signature encoding is not canonical"
        );
        assert_eq!(
            ProtocolSignature::from_bytes(&signature.to_bytes()).ok(),
            Some(signature)
        );
    }
    bcs_round_trip::<ProtocolSignature>(data);
});
