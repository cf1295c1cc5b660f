use floe_core::audit::{AuditRequestV1, AuditSamples};
use floe_core::{BlobId, EncodingConfig, ShardIndex};

use super::*;
use crate::messages::ParsedMessage;
use crate::tests::keypair;

fn request() -> AuditRequestV1 {
    AuditRequestV1 {
        blob_id: BlobId([3; 32]),
        shard: ShardIndex(7),
        nonce: [9; 32],
        samples: 2,
    }
}

fn answer(
    node: &crate::ProtocolKeyPair,
    req: &AuditRequestV1,
    outcome: AuditOutcome,
) -> AuditAnswer {
    AuditAnswer::V1(AuditAnswerV1 {
        node: *node.public_key(),
        blob_id: req.blob_id,
        shard: req.shard,
        nonce: req.nonce,
        samples: req.samples,
        outcome,
    })
}

#[test]
fn signed_answer_round_trips_and_verifies() {
    let kp = keypair(1);
    let req = request();
    let signed = sign_audit_answer(
        &kp,
        5,
        answer(&kp, &req, AuditOutcome::Refused(AuditRefusal::Recovering)),
    );
    assert_eq!(&signed.serialized_message[..3], &[4, 0, 3]);
    assert!(matches!(
        ParsedMessage::from_bytes(&signed.serialized_message).unwrap(),
        ParsedMessage::AuditAnswer(_)
    ));
    let message = verify_audit_answer(&signed, kp.public_key(), &req, 5).unwrap();
    assert_eq!(message.epoch, 5);
    assert_eq!(
        message.body.v1().outcome,
        AuditOutcome::Refused(AuditRefusal::Recovering)
    );
    // Within one epoch either way, not more.
    assert!(verify_audit_answer(&signed, kp.public_key(), &req, 6).is_ok());
    assert!(matches!(
        verify_audit_answer(&signed, kp.public_key(), &req, 7),
        Err(AuditAnswerError::Epoch { .. })
    ));
}

#[test]
fn answers_to_another_request_or_by_another_key_fail() {
    let (kp, other) = (keypair(1), keypair(2));
    let req = request();
    let samples = AuditOutcome::Samples(AuditSamples {
        primary: vec![],
        secondary: vec![],
    });
    let signed = sign_audit_answer(&kp, 5, answer(&kp, &req, samples.clone()));
    for (what, changed) in [
        (
            "blob",
            AuditRequestV1 {
                blob_id: BlobId([4; 32]),
                ..req
            },
        ),
        (
            "shard",
            AuditRequestV1 {
                shard: ShardIndex(8),
                ..req
            },
        ),
        (
            "nonce",
            AuditRequestV1 {
                nonce: [1; 32],
                ..req
            },
        ),
        ("sample count", AuditRequestV1 { samples: 3, ..req }),
    ] {
        assert_eq!(
            verify_audit_answer(&signed, kp.public_key(), &changed, 5).unwrap_err(),
            AuditAnswerError::Mismatch(what)
        );
    }
    // Signed by another key.
    assert!(matches!(
        verify_audit_answer(&signed, other.public_key(), &req, 5),
        Err(AuditAnswerError::Signature(
            VerificationError::InvalidSignature
        ))
    ));
    // Signed by its own key but claiming to be another node.
    let claimed = sign_audit_answer(&other, 5, answer(&kp, &req, samples));
    assert_eq!(
        verify_audit_answer(&claimed, other.public_key(), &req, 5).unwrap_err(),
        AuditAnswerError::Mismatch("node")
    );
    // A flipped byte breaks the signature.
    let mut tampered = signed.clone();
    let last = tampered.serialized_message.len() - 1;
    tampered.serialized_message[last] ^= 1;
    assert!(verify_audit_answer(&tampered, kp.public_key(), &req, 5).is_err());
}

#[test]
fn answer_bound_covers_a_real_answer() {
    let config = EncodingConfig::new(10).unwrap();
    let data = vec![7u8; 3000];
    let blob = floe_core::encode(&config, &data).unwrap();
    let kp = keypair(1);
    let req = AuditRequestV1 {
        blob_id: blob.blob_id(),
        samples: 32,
        ..request()
    };
    let pair = req.shard.0 % 10;
    let req = AuditRequestV1 {
        shard: ShardIndex(pair),
        ..req
    };
    let p = blob.sliver_pair(req.shard.to_pair_index(10, &req.blob_id));
    let samples = AuditSamples::from_slivers(&config, &req, &p.primary, &p.secondary).unwrap();
    let signed = sign_audit_answer(&kp, 1, answer(&kp, &req, AuditOutcome::Samples(samples)));
    let size = bcs::to_bytes(&signed).unwrap().len();
    assert!(
        size <= max_answer_bytes(blob.symbol_size(), 32, 10),
        "{size}"
    );
}
