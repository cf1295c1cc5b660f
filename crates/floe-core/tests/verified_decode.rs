//! Decoding from slivers verified on arrival: the same blob as decoding from raw slivers,
//! without hashing them again; slivers verified for another blob or axis are refused.

use floe_core::{
    BlobMetadataWithId, ConsistencyCheck, DecodeError, EncodingConfig, SliverIndex, SliverType,
    VerifiedSliver, decode_from_primary, decode_from_verified_primary, encode,
    systematic_rows_from_verified_primary,
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

#[test]
fn systematic_rows_come_out_without_a_whole_blob_and_a_bad_decoding_is_caught() {
    let config = EncodingConfig::new(10).unwrap();
    let p = usize::from(config.n_primary_source());
    let n = config.n_shards();
    let data = blob(5_000, 9);
    let encoded = encode(&config, &data).unwrap();
    let metadata = encoded.metadata();
    let verified =
        |indices: &[usize], metadata: &BlobMetadataWithId, e: &floe_core::EncodedBlob| {
            indices
                .iter()
                .map(|&i| {
                    let s = e.sliver(SliverType::Primary, SliverIndex(i as u16));
                    VerifiedSliver::verify(s, SliverType::Primary, &config, metadata).unwrap()
                })
                .collect::<Vec<_>>()
        };
    // None missing, the first two, one in the middle and the last, given in any order.
    let middle = p / 2;
    let sets: Vec<Vec<usize>> = vec![
        (0..p).rev().collect(),
        (2..p + 2).collect(),
        (0..p + 1).filter(|&i| i != middle).collect(),
        (0..p - 1).chain([n as usize - 1]).collect(),
    ];
    for set in &sets {
        let rows = systematic_rows_from_verified_primary(
            &config,
            metadata,
            verified(set, metadata, &encoded),
        )
        .unwrap();
        assert_eq!(rows.len(), p, "{set:?}");
        for (r, row) in rows.iter().enumerate() {
            assert_eq!(row.index, SliverIndex(r as u16), "{set:?}");
            assert_eq!(
                row.symbols,
                encoded
                    .sliver(SliverType::Primary, SliverIndex(r as u16))
                    .symbols,
                "row {r} from {set:?}"
            );
        }
    }

    // A badly encoded blob: repair row p altered, and its hash in the metadata made to match,
    // so that it verifies on its own. Row 0 decoded with it is not the one the metadata names.
    let mut bad_row = encoded.sliver(SliverType::Primary, SliverIndex(p as u16));
    bad_row.symbols[0] ^= 0x5a;
    let root = floe_core::sliver::expanded_root(
        &config,
        SliverType::Primary,
        bad_row.symbol_size,
        &bad_row.symbols,
    )
    .unwrap();
    let mut hashes = metadata.metadata.hashes().to_vec();
    let pair = SliverIndex(p as u16).to_pair_index(SliverType::Primary, n);
    hashes[pair.0 as usize].primary_hash = floe_core::merkle::Node::Digest(root);
    let forged = BlobMetadataWithId::new(data.len() as u64, hashes);
    let mut slivers = verified(&(1..p).collect::<Vec<_>>(), &forged, &encoded);
    slivers.push(VerifiedSliver::verify(bad_row, SliverType::Primary, &config, &forged).unwrap());
    match systematic_rows_from_verified_primary(&config, &forged, slivers.clone()) {
        Err(DecodeError::Inconsistent(reason)) => assert!(reason.contains("sliver 0"), "{reason}"),
        other => panic!("expected Inconsistent, got {other:?}"),
    }
    // The whole-blob decoder agrees.
    assert!(matches!(
        decode_from_verified_primary(&config, &forged, slivers, ConsistencyCheck::Default),
        Err(DecodeError::Inconsistent(_))
    ));
}
