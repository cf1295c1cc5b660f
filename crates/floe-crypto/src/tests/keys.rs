use rand::RngCore;

use super::{keypair, rng};
use crate::keys::{
    BLS_SCHEME_FLAG, KeyError, PUBLIC_KEY_LENGTH, ProtocolKeyPair, ProtocolPublicKey,
    ProtocolSignature, SIGNATURE_LENGTH,
};
use crate::serde_util::encode_base64;

fn scalar_0x75() -> [u8; 32] {
    let mut secret = [0u8; 32];
    secret[31] = 0x75;
    secret
}

#[test]
fn secret_0x75_gives_known_public_key() {
    let kp = ProtocolKeyPair::from_secret_bytes(&scalar_0x75()).unwrap();
    let hex = hex::encode(kp.public_key().to_bytes());
    assert_eq!(hex.len(), 2 * PUBLIC_KEY_LENGTH);
    assert!(hex.starts_with("95eacc3a"), "{hex}");
    assert!(hex.ends_with("5cf0"), "{hex}");
    assert_eq!(kp.to_secret_bytes(), scalar_0x75());
}

#[test]
fn seeded_generation_is_deterministic_and_injectable() {
    let a = ProtocolKeyPair::generate(&mut rng(7));
    let b = ProtocolKeyPair::generate(&mut rng(7));
    let c = ProtocolKeyPair::generate(&mut rng(8));
    assert_eq!(a.public_key(), b.public_key());
    assert_ne!(a.public_key(), c.public_key());
    let mut seed = [0u8; 32];
    rng(7).fill_bytes(&mut seed);
    assert_eq!(
        ProtocolKeyPair::from_seed(&seed).public_key(),
        a.public_key()
    );
}

#[test]
fn secret_bytes_round_trip_and_invalid_scalars() {
    let kp = keypair(1);
    let back = ProtocolKeyPair::from_secret_bytes(&kp.to_secret_bytes()).unwrap();
    assert_eq!(back.public_key(), kp.public_key());
    assert_eq!(
        ProtocolKeyPair::from_secret_bytes(&[0u8; 32]).unwrap_err(),
        KeyError::InvalidSecretKey
    );
    assert_eq!(
        ProtocolKeyPair::from_secret_bytes(&[0xff; 32]).unwrap_err(),
        KeyError::InvalidSecretKey
    );
    assert_eq!(
        ProtocolKeyPair::from_secret_bytes(&[1u8; 31]).unwrap_err(),
        KeyError::WrongLength {
            expected: 32,
            actual: 31
        }
    );
}

#[test]
fn tagged_base64_round_trip_and_errors() {
    let kp = ProtocolKeyPair::from_secret_bytes(&scalar_0x75()).unwrap();
    let text = kp.to_tagged_base64();
    let mut expected = vec![BLS_SCHEME_FLAG];
    expected.extend_from_slice(&scalar_0x75());
    assert_eq!(text, encode_base64(&expected));
    assert_eq!(text, format!("{}AAB1", "A".repeat(40)));
    let back = ProtocolKeyPair::from_tagged_base64(&format!("{text}\n")).unwrap();
    assert_eq!(back.public_key(), kp.public_key());

    let mut wrong_flag = expected.clone();
    wrong_flag[0] = 4;
    assert_eq!(
        ProtocolKeyPair::from_tagged_base64(&encode_base64(&wrong_flag)).unwrap_err(),
        KeyError::UnknownSchemeFlag(4)
    );
    assert!(matches!(
        ProtocolKeyPair::from_tagged_base64(&encode_base64(&expected[..32])),
        Err(KeyError::WrongLength { .. })
    ));
    assert!(matches!(
        ProtocolKeyPair::from_tagged_base64(""),
        Err(KeyError::WrongLength { actual: 0, .. })
    ));
    assert!(matches!(
        ProtocolKeyPair::from_tagged_base64("not base64!"),
        Err(KeyError::Base64(_))
    ));
    assert!(!format!("{kp:?}").contains(&hex::encode(scalar_0x75())));
}

#[test]
fn sign_verify_round_trip_and_rejections() {
    let kp = keypair(2);
    let other = keypair(3);
    let sig = kp.sign(b"hello floe");
    kp.public_key().verify(b"hello floe", &sig).unwrap();
    assert!(other.public_key().verify(b"hello floe", &sig).is_err());
    assert!(kp.public_key().verify(b"hello flow", &sig).is_err());

    let sig_bytes = sig.to_bytes();
    for position in [0, 1, 47, 95] {
        let mut flipped = sig_bytes;
        flipped[position] ^= 0x01;
        match ProtocolSignature::from_bytes(&flipped) {
            Err(_) => {}
            Ok(bad) => assert!(kp.public_key().verify(b"hello floe", &bad).is_err()),
        }
    }
}

#[test]
fn public_key_serde_binary_is_raw_48_bytes() {
    let pk = *keypair(4).public_key();
    let bcs_bytes = bcs::to_bytes(&pk).unwrap();
    assert_eq!(bcs_bytes, pk.to_bytes());
    assert_eq!(
        bcs::from_bytes::<ProtocolPublicKey>(&bcs_bytes).unwrap(),
        pk
    );
    assert!(bcs::from_bytes::<ProtocolPublicKey>(&bcs_bytes[..47]).is_err());
    let mut longer = bcs_bytes.clone();
    longer.push(0);
    assert!(bcs::from_bytes::<ProtocolPublicKey>(&longer).is_err());
    let mut bad = bcs_bytes;
    bad[0] &= 0x7f; // clear the compression flag
    assert!(bcs::from_bytes::<ProtocolPublicKey>(&bad).is_err());
}

#[test]
fn signature_serde_binary_is_raw_96_bytes() {
    let sig = keypair(4).sign(b"m");
    let bcs_bytes = bcs::to_bytes(&sig).unwrap();
    assert_eq!(bcs_bytes.len(), SIGNATURE_LENGTH);
    assert_eq!(bcs_bytes, sig.to_bytes());
    assert_eq!(
        bcs::from_bytes::<ProtocolSignature>(&bcs_bytes).unwrap(),
        sig
    );
    assert!(bcs::from_bytes::<ProtocolSignature>(&bcs_bytes[..95]).is_err());
    assert!(bcs::from_bytes::<ProtocolSignature>(&[0xaa; 96]).is_err());
}

#[test]
fn json_is_standard_base64() {
    let kp = keypair(5);
    let pk = *kp.public_key();
    let json = serde_json::to_string(&pk).unwrap();
    assert_eq!(json, format!("\"{}\"", encode_base64(&pk.to_bytes())));
    assert_eq!(json.len(), 2 + 64);
    assert_eq!(
        serde_json::from_str::<ProtocolPublicKey>(&json).unwrap(),
        pk
    );
    assert_eq!(pk.to_string().parse::<ProtocolPublicKey>().unwrap(), pk);

    let sig = kp.sign(b"x");
    let json = serde_json::to_string(&sig).unwrap();
    assert_eq!(json, format!("\"{}\"", sig.to_base64()));
    assert_eq!(
        serde_json::from_str::<ProtocolSignature>(&json).unwrap(),
        sig
    );
    assert_eq!(sig.to_string().parse::<ProtocolSignature>().unwrap(), sig);

    let short = format!("\"{}\"", encode_base64(&pk.to_bytes()[..40]));
    assert!(serde_json::from_str::<ProtocolPublicKey>(&short).is_err());
    assert!(serde_json::from_str::<ProtocolPublicKey>("\"@@@\"").is_err());
}

#[test]
fn public_key_validation_rejects_bad_points() {
    // Wrong lengths.
    assert_eq!(
        ProtocolPublicKey::from_bytes(&[0u8; 47]).unwrap_err(),
        KeyError::WrongLength {
            expected: 48,
            actual: 47
        }
    );
    // Uncompressed (96-byte) encodings are not accepted.
    assert!(ProtocolPublicKey::from_bytes(&[0u8; 96]).is_err());
    // The identity: compressed infinity encoding.
    let mut infinity = [0u8; 48];
    infinity[0] = 0xc0;
    assert!(matches!(
        ProtocolPublicKey::from_bytes(&infinity),
        Err(KeyError::InvalidPublicKey(_))
    ));

    // Search for x-coordinates (below p, since the first byte's low bits stay under 0x1a) that are
    // respectively off the curve and on the curve but outside the prime-order subgroup.
    let mut rng = rng(99);
    let (mut off_curve, mut off_subgroup) = (false, false);
    for _ in 0..200 {
        let mut candidate = [0u8; 48];
        rng.fill_bytes(&mut candidate);
        candidate[0] = 0x80 | (candidate[0] & 0x0f);
        let raw = blst::min_pk::PublicKey::uncompress(&candidate);
        let ours = ProtocolPublicKey::from_bytes(&candidate);
        match raw {
            Err(blst::BLST_ERROR::BLST_POINT_NOT_ON_CURVE) => {
                off_curve = true;
                assert_eq!(
                    ours.unwrap_err(),
                    KeyError::InvalidPublicKey("point is not on the curve")
                );
            }
            Ok(point) if point.validate().is_err() => {
                off_subgroup = true;
                assert_eq!(
                    ours.unwrap_err(),
                    KeyError::InvalidPublicKey("point is not in the prime-order subgroup")
                );
            }
            _ => {}
        }
        if off_curve && off_subgroup {
            return;
        }
    }
    panic!("no off-curve / off-subgroup candidates found");
}

#[test]
fn signature_rejects_points_outside_subgroup() {
    let mut rng = rng(100);
    for _ in 0..200 {
        let mut candidate = [0u8; 96];
        rng.fill_bytes(&mut candidate);
        candidate[0] = 0x80 | (candidate[0] & 0x0f);
        candidate[48] &= 0x0f;
        if let Ok(point) = blst::min_pk::Signature::uncompress(&candidate)
            && !point.subgroup_check()
        {
            assert_eq!(
                ProtocolSignature::from_bytes(&candidate).unwrap_err(),
                KeyError::InvalidSignature("point is not in the prime-order subgroup")
            );
            return;
        }
    }
    panic!("no off-subgroup G2 candidate found");
}
