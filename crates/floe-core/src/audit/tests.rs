use super::*;
use crate::encode::encode;
use crate::ids::SliverPairIndex;

fn setup() -> (EncodingConfig, crate::EncodedBlob) {
    let config = EncodingConfig::new(10).unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 3) as u8).collect();
    let blob = encode(&config, &data).unwrap();
    (config, blob)
}

fn request(blob: &crate::EncodedBlob, shard: u16, nonce: u8) -> AuditRequestV1 {
    AuditRequestV1 {
        blob_id: blob.blob_id(),
        shard: ShardIndex(shard),
        nonce: [nonce; 32],
        samples: 6,
    }
}

fn answer(
    config: &EncodingConfig,
    blob: &crate::EncodedBlob,
    req: &AuditRequestV1,
) -> AuditSamples {
    let pair = req.shard.to_pair_index(config.n_shards(), &req.blob_id);
    let p = blob.sliver_pair(pair);
    AuditSamples::from_slivers(config, req, &p.primary, &p.secondary).unwrap()
}

#[test]
fn honest_answer_verifies_for_every_shard() {
    let (config, blob) = setup();
    let metadata = &blob.metadata().metadata;
    for shard in 0..10 {
        let req = request(&blob, shard, shard as u8);
        answer(&config, &blob, &req)
            .verify(&config, metadata, &req)
            .unwrap();
    }
}

#[test]
fn positions_depend_on_the_nonce_and_stay_in_range() {
    let id = BlobId([5; 32]);
    let a = sample_positions(&[1; 32], &id, ShardIndex(3), SliverType::Primary, 32, 10);
    let b = sample_positions(&[2; 32], &id, ShardIndex(3), SliverType::Primary, 32, 10);
    assert_ne!(a, b);
    assert!(a.iter().all(|p| p.0 < 10));
    assert_eq!(a.len(), 32);
}

#[test]
fn answers_for_another_nonce_shard_or_sliver_fail() {
    let (config, blob) = setup();
    let metadata = &blob.metadata().metadata;
    let req = request(&blob, 4, 9);
    // Answered with a stale nonce.
    let stale = answer(&config, &blob, &request(&blob, 4, 8));
    assert!(stale.verify(&config, metadata, &req).is_err());
    // The slivers of another shard.
    let other = answer(
        &config,
        &blob,
        &AuditRequestV1 {
            shard: ShardIndex(5),
            ..req
        },
    );
    assert!(matches!(
        other.verify(&config, metadata, &req),
        Err(AuditError::WrongSymbol { .. })
    ));
    // Another pair's slivers passed off as this shard's.
    let pair = SliverPairIndex((req.shard.to_pair_index(10, &req.blob_id).0 + 1) % 10);
    let p = blob.sliver_pair(pair);
    let forged = AuditSamples::from_slivers(&config, &req, &p.primary, &p.secondary).unwrap();
    assert!(forged.verify(&config, metadata, &req).is_err());
}

#[test]
fn corrupted_symbol_or_short_answer_fails() {
    let (config, blob) = setup();
    let metadata = &blob.metadata().metadata;
    let req = request(&blob, 2, 1);
    let mut bad = answer(&config, &blob, &req);
    let (crate::EitherDecodingSymbol::Primary(s) | crate::EitherDecodingSymbol::Secondary(s)) =
        &mut bad.secondary[3].symbol;
    s.data[0] ^= 1;
    assert!(matches!(
        bad.verify(&config, metadata, &req),
        Err(AuditError::BadProof {
            axis: SliverType::Secondary,
            sample: 3,
            ..
        })
    ));
    let mut short = answer(&config, &blob, &req);
    short.primary.pop();
    assert!(matches!(
        short.verify(&config, metadata, &req),
        Err(AuditError::WrongCount { .. })
    ));
}

#[test]
fn sample_counts_are_bounded() {
    let (config, blob) = setup();
    let metadata = &blob.metadata().metadata;
    for samples in [0, MAX_AUDIT_SAMPLES + 1] {
        let req = AuditRequestV1 {
            samples,
            ..request(&blob, 0, 0)
        };
        let p = blob.sliver_pair(SliverPairIndex(0));
        assert!(AuditSamples::from_slivers(&config, &req, &p.primary, &p.secondary).is_err());
        let empty = AuditSamples {
            primary: vec![],
            secondary: vec![],
        };
        assert_eq!(
            empty.verify(&config, metadata, &req),
            Err(AuditError::BadSampleCount(samples))
        );
    }
}

#[test]
fn request_bcs_is_versioned() {
    let req = AuditRequest::V1(AuditRequestV1 {
        blob_id: BlobId([1; 32]),
        shard: ShardIndex(258),
        nonce: [2; 32],
        samples: 4,
    });
    let bytes = bcs::to_bytes(&req).unwrap();
    assert_eq!(bytes.len(), 1 + 32 + 2 + 32 + 2);
    assert_eq!(bytes[0], 0);
    assert_eq!(&bytes[33..35], &[2, 1]);
    assert_eq!(bcs::from_bytes::<AuditRequest>(&bytes).unwrap(), req);
    assert!(bcs::from_bytes::<AuditRequest>(&[1]).is_err());
}
