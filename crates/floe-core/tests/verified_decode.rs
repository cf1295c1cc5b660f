//! Decoding from slivers verified on arrival: the same blob as decoding from raw slivers,
//! without hashing them again; slivers verified for another blob or axis are refused.

use floe_core::{
    ConsistencyCheck, DecodeError, EncodingConfig, SliverIndex, SliverType, VerifiedSliver,
    decode_from_primary, decode_from_verified_primary, encode,
};

fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[test]
fn verified_slivers_decode_like_raw_ones_and_foreign_ones_are_refused() {
    let config = EncodingConfig::new(10).unwrap();
    let p = usize::from(config.n_primary_source());
    let data = blob(5_000, 7);
    let encoded = encode(&config, &data).unwrap();
    let metadata = encoded.metadata();
    // Some systematic rows missing, so columns are Reed–Solomon decoded too.
    let raw: Vec<_> = (2..p + 2)
        .map(|i| encoded.sliver(SliverType::Primary, SliverIndex(i as u16)))
        .collect();
    let verified: Vec<VerifiedSliver> = raw
        .iter()
        .cloned()
        .map(|s| VerifiedSliver::verify(s, SliverType::Primary, &config, metadata).unwrap())
        .collect();
    for check in [
        ConsistencyCheck::Skip,
        ConsistencyCheck::Default,
        ConsistencyCheck::Strict,
    ] {
        let a = decode_from_primary(&config, metadata, raw.clone(), check).unwrap();
        let b = decode_from_verified_primary(&config, metadata, verified.clone(), check).unwrap();
        assert_eq!(a.blob, data);
        assert_eq!(b.blob, data, "{check:?}");
    }

    // A wrong sliver never becomes a verified one.
    let mut bad = raw[0].clone();
    bad.symbols[0] ^= 1;
    assert!(VerifiedSliver::verify(bad, SliverType::Primary, &config, metadata).is_err());

    // Too few distinct slivers (a duplicate does not count twice).
    let mut short = verified[..p - 1].to_vec();
    short.push(verified[0].clone());
    match decode_from_verified_primary(&config, metadata, short, ConsistencyCheck::Default) {
        Err(DecodeError::NotEnoughSlivers { have, need, .. }) => {
            assert_eq!((have, need), (p - 1, p))
        }
        other => panic!("expected NotEnoughSlivers, got {other:?}"),
    }

    // Slivers verified for another blob are refused, not decoded into this one.
    let other = encode(&config, &blob(5_000, 8)).unwrap();
    let foreign: Vec<VerifiedSliver> = (0..p)
        .map(|i| {
            let s = other.sliver(SliverType::Primary, SliverIndex(i as u16));
            VerifiedSliver::verify(s, SliverType::Primary, &config, other.metadata()).unwrap()
        })
        .collect();
    assert!(matches!(
        decode_from_verified_primary(&config, metadata, foreign, ConsistencyCheck::Skip),
        Err(DecodeError::BadMetadata(_))
    ));
}
