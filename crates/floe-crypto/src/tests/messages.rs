use floe_core::{BlobId, ObjectId, ShardIndex, SliverType};

use super::keypair;
use crate::messages::{
    BlobPersistenceType, Confirmation, ConfirmationBody, IntentType, InvalidBlobIdBody,
    MessageError, ParsedMessage, ProofOfPossessionBody, ProtocolMessage, SyncShardRequest,
    SyncShardRequestV1,
};
use crate::signed::{ProofOfPossession, SignedMessage, VerificationError};

const EPOCH: u32 = 0x0102_0304;
const BLOB: BlobId = BlobId([7; 32]);
const OBJECT: ObjectId = ObjectId([9; 32]);

fn deletable() -> BlobPersistenceType {
    BlobPersistenceType::Deletable { object_id: OBJECT }
}

fn sync_request() -> SyncShardRequest {
    SyncShardRequest::V1(SyncShardRequestV1 {
        shard_index: ShardIndex(0x0a0b),
        sliver_type: SliverType::Secondary,
        starting_blob_id: BLOB,
        sliver_count: 0x1122_3344_5566_7788,
        epoch: 5,
    })
}

#[test]
fn permanent_confirmation_layout() {
    let bytes = Confirmation::new(EPOCH, BLOB, BlobPersistenceType::Permanent).to_bytes();
    assert_eq!(bytes.len(), 40);
    assert_eq!(&bytes[..3], &[1, 0, 3]);
    assert_eq!(&bytes[3..7], &[4, 3, 2, 1]);
    assert_eq!(&bytes[7..39], &[7; 32]);
    assert_eq!(bytes[39], 0);
    let parsed = Confirmation::from_bytes(&bytes).unwrap();
    assert_eq!(parsed.epoch, EPOCH);
    assert_eq!(parsed.persistence, BlobPersistenceType::Permanent);
}

#[test]
fn deletable_confirmation_layout() {
    let bytes = Confirmation::new(EPOCH, BLOB, deletable()).to_bytes();
    assert_eq!(bytes.len(), 72);
    assert_eq!(&bytes[..7], &[1, 0, 3, 4, 3, 2, 1]);
    assert_eq!(&bytes[7..39], &[7; 32]);
    assert_eq!(bytes[39], 1);
    assert_eq!(&bytes[40..72], &[9; 32]);
    assert_eq!(
        Confirmation::from_bytes(&bytes).unwrap(),
        Confirmation::new(EPOCH, BLOB, deletable())
    );
}

#[test]
fn invalid_blob_id_layout() {
    let message = ProtocolMessage::new(EPOCH, InvalidBlobIdBody { blob_id: BLOB });
    let bytes = message.to_bytes();
    assert_eq!(bytes.len(), 39);
    assert_eq!(&bytes[..7], &[2, 0, 3, 4, 3, 2, 1]);
    assert_eq!(&bytes[7..], &[7; 32]);
    assert_eq!(ProtocolMessage::from_bytes(&bytes).unwrap(), message);
}

#[test]
fn proof_of_possession_layout() {
    let kp = keypair(11);
    let owner = [0x42; 32];
    let message = ProofOfPossession::message(kp.public_key(), EPOCH, &owner);
    let bytes = message.to_bytes();
    assert_eq!(bytes.len(), 87);
    assert_eq!(&bytes[..7], &[0, 0, 3, 4, 3, 2, 1]);
    assert_eq!(&bytes[7..39], &owner);
    assert_eq!(&bytes[39..87], kp.public_key().as_bytes());
    assert_eq!(
        ProtocolMessage::<ProofOfPossessionBody>::from_bytes(&bytes).unwrap(),
        message
    );
}

#[test]
fn sync_shard_layout() {
    let message = ProtocolMessage::new(EPOCH, sync_request());
    let bytes = message.to_bytes();
    assert_eq!(bytes.len(), 55);
    assert_eq!(&bytes[..7], &[3, 0, 3, 4, 3, 2, 1]);
    assert_eq!(bytes[7], 0, "V1 tag");
    assert_eq!(&bytes[8..10], &[0x0b, 0x0a], "shard index u16 LE");
    assert_eq!(bytes[10], 1, "secondary sliver");
    assert_eq!(&bytes[11..43], &[7; 32]);
    assert_eq!(&bytes[43..51], &0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(&bytes[51..55], &[5, 0, 0, 0]);
    assert_eq!(ProtocolMessage::from_bytes(&bytes).unwrap(), message);
}

#[test]
fn header_and_body_errors() {
    let good = Confirmation::new(EPOCH, BLOB, BlobPersistenceType::Permanent).to_bytes();
    type Conf = ProtocolMessage<ConfirmationBody>;

    assert_eq!(
        Conf::from_bytes(&good[..6]).unwrap_err(),
        MessageError::TooShort { len: 6 }
    );
    let mut wrong_intent = good.clone();
    wrong_intent[0] = 2;
    assert_eq!(
        Conf::from_bytes(&wrong_intent).unwrap_err(),
        MessageError::WrongIntent {
            expected: IntentType::StorageConfirmation,
            actual: IntentType::InvalidBlobId
        }
    );
    wrong_intent[0] = 99;
    assert_eq!(
        Conf::from_bytes(&wrong_intent).unwrap_err(),
        MessageError::UnknownIntent(99)
    );
    let mut wrong_version = good.clone();
    wrong_version[1] = 1;
    assert_eq!(
        Conf::from_bytes(&wrong_version).unwrap_err(),
        MessageError::UnsupportedVersion(1)
    );
    let mut wrong_app = good.clone();
    wrong_app[2] = 4;
    assert_eq!(
        Conf::from_bytes(&wrong_app).unwrap_err(),
        MessageError::WrongAppId(4)
    );
    assert_eq!(
        Conf::from_bytes(&good[..39]).unwrap_err(),
        MessageError::TruncatedBody
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        Conf::from_bytes(&trailing).unwrap_err(),
        MessageError::TrailingBytes
    );
    let mut bad_tag = good.clone();
    bad_tag[39] = 2;
    assert!(matches!(
        Conf::from_bytes(&bad_tag).unwrap_err(),
        MessageError::MalformedBody(_)
    ));
    // A deletable confirmation cut short inside the object ID.
    let long = Confirmation::new(EPOCH, BLOB, deletable()).to_bytes();
    assert_eq!(
        Conf::from_bytes(&long[..60]).unwrap_err(),
        MessageError::TruncatedBody
    );
    // A PoP message whose key bytes are not a valid point.
    let mut pop = ProofOfPossession::message(keypair(1).public_key(), 1, &[0; 32]).to_bytes();
    pop[40] ^= 0xff;
    assert!(ProtocolMessage::<ProofOfPossessionBody>::from_bytes(&pop).is_err());
}

#[test]
fn parsed_message_dispatches_on_intent() {
    let samples: Vec<(Vec<u8>, IntentType)> = vec![
        (
            ProofOfPossession::message(keypair(1).public_key(), EPOCH, &[1; 32]).to_bytes(),
            IntentType::ProofOfPossession,
        ),
        (
            Confirmation::new(EPOCH, BLOB, deletable()).to_bytes(),
            IntentType::StorageConfirmation,
        ),
        (
            ProtocolMessage::new(EPOCH, InvalidBlobIdBody { blob_id: BLOB }).to_bytes(),
            IntentType::InvalidBlobId,
        ),
        (
            ProtocolMessage::new(EPOCH, sync_request()).to_bytes(),
            IntentType::SyncShard,
        ),
    ];
    for (bytes, intent) in samples {
        let parsed = ParsedMessage::from_bytes(&bytes).unwrap();
        assert_eq!(parsed.intent_type(), intent);
        assert_eq!(parsed.epoch(), EPOCH);
    }
}

#[test]
fn signed_message_serde_formats() {
    let kp = keypair(12);
    let signed = SignedMessage::sign(
        &kp,
        &Confirmation::new(EPOCH, BLOB, BlobPersistenceType::Permanent).to_message(),
    );
    let json = serde_json::to_string(&signed).unwrap();
    let expected = format!(
        "{{\"serializedMessage\":\"{}\",\"signature\":\"{}\"}}",
        crate::serde_util::encode_base64(&signed.serialized_message),
        signed.signature.to_base64()
    );
    assert_eq!(json, expected);
    assert_eq!(
        serde_json::from_str::<SignedMessage>(&json).unwrap(),
        signed
    );

    let bcs_bytes = bcs::to_bytes(&signed).unwrap();
    assert_eq!(bcs_bytes.len(), 1 + 40 + 96);
    assert_eq!(bcs_bytes[0], 40);
    assert_eq!(&bcs_bytes[1..41], signed.serialized_message.as_slice());
    assert_eq!(&bcs_bytes[41..], signed.signature.as_bytes());
    assert_eq!(
        bcs::from_bytes::<SignedMessage>(&bcs_bytes).unwrap(),
        signed
    );
}

#[test]
fn verify_confirmation_checks_everything() {
    let kp = keypair(13);
    let other = keypair(14);
    let pk = kp.public_key();
    let permanent = BlobPersistenceType::Permanent;
    let message = Confirmation::new(EPOCH, BLOB, permanent).to_message();
    let signed = SignedMessage::sign(&kp, &message);

    let confirmation = signed
        .verify_confirmation(pk, EPOCH, &BLOB, &permanent)
        .unwrap();
    assert_eq!(confirmation, Confirmation::new(EPOCH, BLOB, permanent));
    assert_eq!(signed.verify::<ConfirmationBody>(pk).unwrap(), message);

    assert_eq!(
        signed
            .verify_confirmation(pk, EPOCH + 1, &BLOB, &permanent)
            .unwrap_err(),
        VerificationError::EpochMismatch {
            expected: EPOCH + 1,
            actual: EPOCH
        }
    );
    assert_eq!(
        signed
            .verify_confirmation(pk, EPOCH, &BlobId([8; 32]), &permanent)
            .unwrap_err(),
        VerificationError::ContentMismatch
    );
    assert_eq!(
        signed
            .verify_confirmation(pk, EPOCH, &BLOB, &deletable())
            .unwrap_err(),
        VerificationError::ContentMismatch
    );
    assert_eq!(
        signed
            .verify_confirmation(other.public_key(), EPOCH, &BLOB, &permanent)
            .unwrap_err(),
        VerificationError::InvalidSignature
    );
    assert!(matches!(
        signed.verify_invalid_blob_id(pk, EPOCH, &BLOB).unwrap_err(),
        VerificationError::Message(MessageError::WrongIntent { .. })
    ));

    let mut tampered = signed.clone();
    tampered.serialized_message[8] ^= 1;
    assert_eq!(
        tampered.verify::<ConfirmationBody>(pk).unwrap_err(),
        VerificationError::InvalidSignature
    );
    let mut wrong_sig = signed.clone();
    wrong_sig.signature = kp.sign(b"something else");
    assert_eq!(
        wrong_sig.verify_signature(pk).unwrap_err(),
        VerificationError::InvalidSignature
    );
}

#[test]
fn verify_invalid_blob_id_and_sync_shard() {
    let kp = keypair(15);
    let pk = kp.public_key();
    let signed = SignedMessage::sign(
        &kp,
        &ProtocolMessage::new(EPOCH, InvalidBlobIdBody { blob_id: BLOB }),
    );
    signed.verify_invalid_blob_id(pk, EPOCH, &BLOB).unwrap();
    assert_eq!(
        signed
            .verify_invalid_blob_id(pk, EPOCH, &BlobId([0; 32]))
            .unwrap_err(),
        VerificationError::ContentMismatch
    );

    let signed = SignedMessage::sign(&kp, &ProtocolMessage::new(EPOCH, sync_request()));
    assert_eq!(
        signed.verify_sync_shard_request(pk, EPOCH).unwrap(),
        sync_request()
    );
    assert!(matches!(
        signed.verify_sync_shard_request(pk, 1).unwrap_err(),
        VerificationError::EpochMismatch { .. }
    ));
    assert_eq!(
        signed
            .verify_sync_shard_request(keypair(16).public_key(), EPOCH)
            .unwrap_err(),
        VerificationError::InvalidSignature
    );
}

#[test]
fn proof_of_possession_create_and_verify() {
    let kp = keypair(17);
    let owner = [0x33; 32];
    let pop = ProofOfPossession::create(&kp, EPOCH, &owner);
    pop.verify(kp.public_key(), EPOCH, &owner).unwrap();
    // The signature is over the 87-byte intent-0 message.
    let message = ProofOfPossession::message(kp.public_key(), EPOCH, &owner).to_bytes();
    kp.public_key().verify(&message, &pop.signature).unwrap();

    let err = VerificationError::InvalidSignature;
    assert_eq!(
        pop.verify(kp.public_key(), EPOCH, &[0x34; 32]).unwrap_err(),
        err
    );
    assert_eq!(
        pop.verify(kp.public_key(), EPOCH + 1, &owner).unwrap_err(),
        err
    );
    assert_eq!(
        pop.verify(keypair(18).public_key(), EPOCH, &owner)
            .unwrap_err(),
        err
    );
    // A PoP made by another key for this public key's slot does not verify either.
    let forged = ProofOfPossession {
        signature: keypair(18).sign(&message),
    };
    assert_eq!(
        forged.verify(kp.public_key(), EPOCH, &owner).unwrap_err(),
        err
    );

    let bcs_bytes = bcs::to_bytes(&pop).unwrap();
    assert_eq!(bcs_bytes.len(), 96);
    assert_eq!(
        bcs::from_bytes::<ProofOfPossession>(&bcs_bytes).unwrap(),
        pop
    );
}
