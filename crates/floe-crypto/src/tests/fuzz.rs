//! Decoding arbitrary bytes must return errors, never panic.

use proptest::prelude::*;

use crate::certificate::Certificate;
use crate::keys::{ProtocolKeyPair, ProtocolPublicKey, ProtocolSignature};
use crate::messages::{
    ConfirmationBody, InvalidBlobIdBody, ParsedMessage, ProofOfPossessionBody, ProtocolMessage,
    SyncShardRequest,
};
use crate::signed::SignedMessage;

fn parse_all(bytes: &[u8]) {
    let _ = ProtocolMessage::<ConfirmationBody>::from_bytes(bytes);
    let _ = ProtocolMessage::<InvalidBlobIdBody>::from_bytes(bytes);
    let _ = ProtocolMessage::<ProofOfPossessionBody>::from_bytes(bytes);
    let _ = ProtocolMessage::<SyncShardRequest>::from_bytes(bytes);
    let _ = ProtocolMessage::<crate::audit::AuditAnswer>::from_bytes(bytes);
    let _ = bcs::from_bytes::<floe_core::audit::AuditRequest>(bytes);
    if let Ok(parsed) = ParsedMessage::from_bytes(bytes) {
        // Whatever parses re-encodes to the same bytes.
        let encoded = match parsed {
            ParsedMessage::ProofOfPossession(m) => m.to_bytes(),
            ParsedMessage::StorageConfirmation(m) => m.to_bytes(),
            ParsedMessage::InvalidBlobId(m) => m.to_bytes(),
            ParsedMessage::SyncShard(m) => m.to_bytes(),
            ParsedMessage::AuditAnswer(m) => m.to_bytes(),
        };
        assert_eq!(encoded, bytes);
    }
}

proptest! {
    #[test]
    fn message_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        parse_all(&bytes);
    }

    #[test]
    fn message_parsing_with_valid_header_never_panics(
        intent in 0u8..5,
        epoch in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let mut bytes = vec![intent, 0, 3];
        bytes.extend_from_slice(&epoch.to_le_bytes());
        bytes.extend_from_slice(&body);
        parse_all(&bytes);
    }

    #[test]
    fn bcs_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = bcs::from_bytes::<SignedMessage>(&bytes);
        let _ = bcs::from_bytes::<Certificate>(&bytes);
        let _ = bcs::from_bytes::<ProtocolPublicKey>(&bytes);
        let _ = bcs::from_bytes::<ProtocolSignature>(&bytes);
        let _ = ProtocolPublicKey::from_bytes(&bytes);
        let _ = ProtocolSignature::from_bytes(&bytes);
        let _ = ProtocolKeyPair::from_secret_bytes(&bytes);
    }

    #[test]
    fn text_decoding_never_panics(text in ".{0,80}") {
        let _ = ProtocolKeyPair::from_tagged_base64(&text);
        let _ = text.parse::<ProtocolPublicKey>();
        let _ = text.parse::<ProtocolSignature>();
        let _ = serde_json::from_str::<SignedMessage>(&text);
        let _ = serde_json::from_str::<Certificate>(&text);
    }

    #[test]
    fn signed_message_decoding_with_plausible_prefix(
        len in 0u8..120,
        body in proptest::collection::vec(any::<u8>(), 0..250),
    ) {
        let mut bytes = vec![len];
        bytes.extend_from_slice(&body);
        let _ = bcs::from_bytes::<SignedMessage>(&bytes);
    }
}
