use floe_core::BlobId;
use rand::Rng;

use super::{keypair, rng};
use crate::certificate::{Certificate, CertificateError, CommitteeMember, CommitteeWeights};
use crate::keys::ProtocolKeyPair;
use crate::messages::{
    BlobPersistenceType, Confirmation, ConfirmationBody, InvalidBlobIdBody, ProtocolMessage,
};
use crate::signed::SignedMessage;

const MEMBERS: usize = 10;

struct Setup {
    keys: Vec<ProtocolKeyPair>,
    committee: CommitteeWeights,
    message: ProtocolMessage<ConfirmationBody>,
}

/// The seed comes from `FLOE_TEST_SEED` if set, otherwise from the clock; it is printed so a
/// failure can be replayed.
fn test_seed() -> u64 {
    let seed = std::env::var("FLOE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        });
    println!("certificate test seed: {seed} (set FLOE_TEST_SEED to replay)");
    seed
}

fn setup(seed: u64) -> Setup {
    let mut rng = rng(seed);
    let keys: Vec<_> = (0..MEMBERS)
        .map(|_| ProtocolKeyPair::generate(&mut rng))
        .collect();
    let weights: Vec<u16> = (0..MEMBERS).map(|_| rng.random_range(1..=12)).collect();
    let n_shards = weights.iter().sum();
    let members = keys
        .iter()
        .zip(&weights)
        .map(|(k, &weight)| CommitteeMember {
            public_key: *k.public_key(),
            weight,
        })
        .collect();
    let committee = CommitteeWeights::new(members, n_shards).unwrap();
    let mut blob = [0u8; 32];
    rng.fill(&mut blob);
    let message = Confirmation::new(3, BlobId(blob), BlobPersistenceType::Permanent).to_message();
    Setup {
        keys,
        committee,
        message,
    }
}

/// A subset (as a bit mask over members) with exactly `weight`, if one exists.
fn subset_with_weight(committee: &CommitteeWeights, weight: u64) -> Option<Vec<usize>> {
    (0u32..1 << MEMBERS).find_map(|mask| {
        let members: Vec<usize> = (0..MEMBERS).filter(|i| mask & (1 << i) != 0).collect();
        let total: u64 = members
            .iter()
            .map(|&i| u64::from(committee.members()[i].weight))
            .sum();
        (total == weight).then_some(members)
    })
}

fn partials(s: &Setup, signers: &[usize]) -> Vec<(usize, SignedMessage)> {
    signers
        .iter()
        .map(|&i| (i, SignedMessage::sign(&s.keys[i], &s.message)))
        .collect()
}

#[test]
fn quorum_boundaries_forgery_and_tampering() {
    let seed = test_seed();
    // Retry with derived seeds until both boundary subsets exist (almost always the first try).
    let (s, exact, below) = (0..100)
        .find_map(|attempt| {
            let s = setup(seed.wrapping_add(attempt));
            let q = s.committee.quorum_threshold();
            let exact = subset_with_weight(&s.committee, q)?;
            let below = subset_with_weight(&s.committee, q - 1)?;
            Some((s, exact, below))
        })
        .expect("a committee with exact-quorum subsets");
    let committee = &s.committee;
    let n = u64::from(committee.n_shards());
    assert_eq!(committee.quorum_threshold(), n - (n - 1) / 3);

    // Exactly the quorum weight verifies.
    let cert = Certificate::aggregate(committee, &partials(&s, &exact)).unwrap();
    assert_eq!(cert.signers_bitmap.len(), 2);
    assert_eq!(cert.signers(committee).unwrap(), exact);
    cert.verify_quorum(committee).unwrap();
    cert.verify_validity(committee).unwrap();
    let message = cert
        .verify_quorum_message::<ConfirmationBody>(committee)
        .unwrap();
    assert_eq!(message, s.message);
    assert!(
        cert.verify_quorum_message::<InvalidBlobIdBody>(committee)
            .is_err()
    );

    // One shard below the quorum fails on weight.
    let weak = Certificate::aggregate(committee, &partials(&s, &below)).unwrap();
    assert_eq!(
        weak.verify_quorum(committee).unwrap_err(),
        CertificateError::InsufficientWeight {
            weight: committee.quorum_threshold() - 1,
            required: committee.quorum_threshold()
        }
    );

    // Claiming a member who did not sign breaks the aggregate signature.
    let outsider = (0..MEMBERS).find(|i| !exact.contains(i)).unwrap();
    let mut forged = cert.clone();
    forged.signers_bitmap[outsider / 8] |= 1 << (outsider % 8);
    assert_eq!(
        forged.verify_quorum(committee).unwrap_err(),
        CertificateError::InvalidAggregateSignature
    );
    // ... and so does dropping a signer from the bitmap of a stronger certificate.
    let all: Vec<usize> = (0..MEMBERS).collect();
    let mut full = Certificate::aggregate(committee, &partials(&s, &all)).unwrap();
    full.verify_quorum(committee).unwrap();
    full.signers_bitmap[0] &= !1;
    assert!(full.verify_quorum(committee).is_err());

    // Bits beyond the member count and wrong bitmap lengths are rejected.
    let mut extra_bits = cert.clone();
    extra_bits.signers_bitmap[1] |= 1 << 5; // member 13 of 10
    assert_eq!(
        extra_bits.verify_quorum(committee).unwrap_err(),
        CertificateError::BitmapExtraBits { members: MEMBERS }
    );
    let mut longer = cert.clone();
    longer.signers_bitmap.push(0);
    assert_eq!(
        longer.verify_quorum(committee).unwrap_err(),
        CertificateError::BitmapLength {
            expected: 2,
            actual: 3
        }
    );
    let mut empty = cert.clone();
    empty.signers_bitmap = vec![0, 0];
    assert_eq!(
        empty.verify_validity(committee).unwrap_err(),
        CertificateError::NoSigners
    );

    // A tampered message fails.
    let mut tampered = cert.clone();
    tampered.serialized_message[10] ^= 0x80;
    assert_eq!(
        tampered.verify_quorum(committee).unwrap_err(),
        CertificateError::InvalidAggregateSignature
    );

    // BCS and JSON round trips.
    let bytes = bcs::to_bytes(&cert).unwrap();
    assert_eq!(bytes.len(), 1 + 2 + 1 + 40 + 96);
    assert_eq!(bcs::from_bytes::<Certificate>(&bytes).unwrap(), cert);
    let json = serde_json::to_string(&cert).unwrap();
    assert!(json.starts_with("{\"signersBitmap\":\""), "{json}");
    assert_eq!(serde_json::from_str::<Certificate>(&json).unwrap(), cert);
}

#[test]
fn validity_threshold_boundaries() {
    let seed = test_seed();
    let (s, exact, below) = (0..100)
        .find_map(|attempt| {
            let s = setup(seed.wrapping_add(attempt));
            let v = s.committee.validity_threshold();
            let exact = subset_with_weight(&s.committee, v)?;
            let below = subset_with_weight(&s.committee, v - 1)?;
            Some((s, exact, below))
        })
        .expect("a committee with exact-validity subsets");
    let committee = &s.committee;
    let f = u64::from(committee.max_faulty());
    assert_eq!(committee.validity_threshold(), f + 1);

    let cert = Certificate::aggregate(committee, &partials(&s, &exact)).unwrap();
    cert.verify_validity(committee).unwrap();
    let weak = Certificate::aggregate(committee, &partials(&s, &below)).unwrap();
    assert!(matches!(
        weak.verify_validity(committee).unwrap_err(),
        CertificateError::InsufficientWeight { .. }
    ));
}

#[test]
fn aggregate_rejects_bad_partials() {
    let s = setup(1);
    let committee = &s.committee;
    let good = partials(&s, &[0, 1, 2]);

    assert_eq!(
        Certificate::aggregate(committee, &[]).unwrap_err(),
        CertificateError::NoSigners
    );

    let mut duplicate = good.clone();
    duplicate.push(good[1].clone());
    assert_eq!(
        Certificate::aggregate(committee, &duplicate).unwrap_err(),
        CertificateError::DuplicateSigner(1)
    );

    let mut out_of_range = good.clone();
    out_of_range.push((MEMBERS, good[0].1.clone()));
    assert_eq!(
        Certificate::aggregate(committee, &out_of_range).unwrap_err(),
        CertificateError::SignerOutOfRange {
            index: MEMBERS,
            members: MEMBERS
        }
    );

    let mut wrong_signer = good.clone();
    wrong_signer.push((3, SignedMessage::sign(&s.keys[4], &s.message)));
    assert_eq!(
        Certificate::aggregate(committee, &wrong_signer).unwrap_err(),
        CertificateError::InvalidPartialSignature(3)
    );

    // Checked as one aggregate first; the member named is the bad one wherever it stands.
    let mut bad_first = good.clone();
    bad_first[0] = (0, SignedMessage::sign(&s.keys[4], &s.message));
    assert_eq!(
        Certificate::aggregate(committee, &bad_first).unwrap_err(),
        CertificateError::InvalidPartialSignature(0)
    );

    let other_message =
        Confirmation::new(4, BlobId([0; 32]), BlobPersistenceType::Permanent).to_message();
    let mut mismatch = good.clone();
    mismatch.push((3, SignedMessage::sign(&s.keys[3], &other_message)));
    assert_eq!(
        Certificate::aggregate(committee, &mismatch).unwrap_err(),
        CertificateError::MessageMismatch(3)
    );
}

#[test]
fn committee_construction() {
    let member = |seed, weight| CommitteeMember {
        public_key: *keypair(seed).public_key(),
        weight,
    };
    assert_eq!(
        CommitteeWeights::new(vec![], 0).unwrap_err(),
        CertificateError::EmptyCommittee
    );
    assert_eq!(
        CommitteeWeights::new(vec![member(1, 2), member(2, 2)], 5).unwrap_err(),
        CertificateError::WeightMismatch {
            sum: 4,
            n_shards: 5
        }
    );
    let committee = CommitteeWeights::new(vec![member(1, 3), member(2, 4)], 7).unwrap();
    assert_eq!(committee.max_faulty(), 2);
    assert_eq!(committee.quorum_threshold(), 5);
    assert_eq!(committee.validity_threshold(), 3);
    assert_eq!(committee.bitmap_len(), 1);
    assert_eq!(committee.len(), 2);
    assert!(!committee.is_empty());
}

#[test]
fn partials_split_into_those_that_verify_and_those_that_do_not() {
    let seed = test_seed();
    let s = setup(seed);
    let committee = &s.committee;
    let good: Vec<(usize, SignedMessage)> = (0..MEMBERS)
        .map(|i| (i, SignedMessage::sign(&s.keys[i], &s.message)))
        .collect();
    let message = good[0].1.serialized_message.clone();
    let (valid, invalid) = committee.split_valid(&message, good.clone());
    assert_eq!(
        valid.indices().collect::<Vec<_>>(),
        (0..MEMBERS).collect::<Vec<_>>()
    );
    assert!(invalid.is_empty());
    let (none, none_bad) = committee.split_valid(&message, Vec::new());
    assert!(none.is_empty() && none_bad.is_empty());

    // A signature by the wrong key, one out of range and one over another message: each is
    // put apart, wherever it stands, and the rest are kept in order.
    let other = Confirmation::new(4, BlobId([7; 32]), BlobPersistenceType::Permanent).to_message();
    let mut mixed = good.clone();
    mixed[0] = (0, SignedMessage::sign(&s.keys[1], &s.message));
    mixed[5] = (5, SignedMessage::sign(&s.keys[5], &other));
    mixed.push((MEMBERS, SignedMessage::sign(&s.keys[2], &s.message)));
    let (valid, invalid) = committee.split_valid(&message, mixed.clone());
    let indices = |v: &[(usize, SignedMessage)]| v.iter().map(|(i, _)| *i).collect::<Vec<_>>();
    assert_eq!(indices(&invalid), vec![0, 5, MEMBERS], "seed {seed}");
    assert_eq!(
        valid.indices().collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 6, 7, 8, 9],
        "seed {seed}"
    );
    assert_eq!(invalid[1], mixed[5]);
}

#[test]
fn verified_partials_aggregate_without_another_check_into_the_same_certificate() {
    let seed = test_seed();
    let s = setup(seed);
    let committee = &s.committee;
    let signed = |i: usize| (i, SignedMessage::sign(&s.keys[i], &s.message));
    let message = signed(0).1.serialized_message;
    let (first, _) = committee.split_valid(&message, (0..6).map(signed).collect());
    let (second, _) = committee.split_valid(&message, (6..MEMBERS).map(signed).collect());
    let all: Vec<_> = (0..MEMBERS).map(signed).collect();
    let checked = Certificate::aggregate(committee, &all).unwrap();
    let trusted = Certificate::from_verified(committee, &[first.clone(), second]).unwrap();
    assert_eq!(trusted, checked, "seed {seed}");
    trusted.verify_quorum(committee).unwrap();

    // The sets' shape is still checked: no signer, the same signer twice, other bytes.
    assert_eq!(
        Certificate::from_verified(committee, &[]).unwrap_err(),
        CertificateError::NoSigners
    );
    assert_eq!(
        Certificate::from_verified(committee, &[first.clone(), first.clone()]).unwrap_err(),
        CertificateError::DuplicateSigner(0)
    );
    let other = Confirmation::new(4, BlobId([7; 32]), BlobPersistenceType::Permanent).to_message();
    let signed_other = SignedMessage::sign(&s.keys[7], &other);
    let other_bytes = signed_other.serialized_message.clone();
    let (elsewhere, _) = committee.split_valid(&other_bytes, vec![(7, signed_other)]);
    assert_eq!(elsewhere.len(), 1);
    assert_eq!(
        Certificate::from_verified(committee, &[first, elsewhere]).unwrap_err(),
        CertificateError::MessageMismatch(7)
    );
}

#[test]
fn verified_partials_aggregate_only_under_the_committee_that_verified_them() {
    let seed = test_seed();
    let s = setup(seed);
    let signed = |i: usize| (i, SignedMessage::sign(&s.keys[i], &s.message));
    let message = signed(0).1.serialized_message;
    let (verified, _) = s
        .committee
        .split_valid(&message, (0..MEMBERS).map(signed).collect());
    // The same keys with one member's shard moved to another: another committee.
    let mut members = s.committee.members().to_vec();
    let from = members
        .iter()
        .position(|m| m.weight > 1)
        .expect("a member with 2+ shards");
    members[from].weight -= 1;
    members[(from + 1) % MEMBERS].weight += 1;
    let moved = CommitteeWeights::new(members, s.committee.n_shards()).unwrap();
    assert_eq!(
        Certificate::from_verified(&moved, std::slice::from_ref(&verified)).unwrap_err(),
        CertificateError::OtherCommittee,
        "seed {seed}"
    );
    // Another member's key in one seat: another committee too.
    let mut members = s.committee.members().to_vec();
    members[3].public_key = *ProtocolKeyPair::generate(&mut rng(seed ^ 1)).public_key();
    let rekeyed = CommitteeWeights::new(members, s.committee.n_shards()).unwrap();
    assert_eq!(
        Certificate::from_verified(&rekeyed, std::slice::from_ref(&verified)).unwrap_err(),
        CertificateError::OtherCommittee,
        "seed {seed}"
    );
    // An equal committee built again is the same one.
    let again =
        CommitteeWeights::new(s.committee.members().to_vec(), s.committee.n_shards()).unwrap();
    Certificate::from_verified(&again, &[verified])
        .unwrap()
        .verify_quorum(&again)
        .unwrap();
}
