//! Reading a small blob from its data rows alone: the same bytes as a whole decode, and a
//! blob whose padding rows are not zero is caught by the consistency checks.

use floe_core::metadata::BlobMetadataWithId;
use floe_core::{
    ConsistencyCheck, DecodeError, EncodingConfig, SliverIndex, SliverType, data_rows,
    decode_from_data_rows, encode,
};

fn rows(e: &floe_core::EncodedBlob, k: usize) -> Vec<floe_core::SliverData> {
    (0..k as u16)
        .map(|i| e.sliver(SliverType::Primary, SliverIndex(i)))
        .collect()
}

#[test]
fn the_data_rows_of_small_blobs_decode_to_the_blob() {
    for n in [4u16, 10, 100] {
        let config = EncodingConfig::new(n).unwrap();
        for len in [0usize, 1, 13, 14, 15, 100, 1000, 5000] {
            let blob: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            let e = encode(&config, &blob).unwrap();
            let k = data_rows(&config, e.metadata()).unwrap();
            assert!(k <= usize::from(config.n_primary_source()));
            for check in [
                ConsistencyCheck::Skip,
                ConsistencyCheck::Default,
                ConsistencyCheck::Strict,
            ] {
                let d = decode_from_data_rows(&config, e.metadata(), rows(&e, k), check)
                    .unwrap_or_else(|err| panic!("n {n}, {len} bytes, {check:?}: {err}"));
                assert_eq!(d.blob, blob, "n {n}, {len} bytes, {check:?}");
            }
            // One row short is not enough.
            if k > 0 {
                assert!(
                    decode_from_data_rows(
                        &config,
                        e.metadata(),
                        rows(&e, k - 1),
                        ConsistencyCheck::Default
                    )
                    .is_err()
                );
            }
        }
    }
}

#[test]
fn nonzero_padding_is_inconsistent() {
    // n = 10: rows of 7 two-byte symbols. Encode 40 bytes (3 rows), then claim 10 (1 row):
    // the metadata is well formed, but rows 1 and 2 are not the zero padding it implies.
    let config = EncodingConfig::new(10).unwrap();
    let full: Vec<u8> = (1..=40).collect();
    let e = encode(&config, &full).unwrap();
    let forged = BlobMetadataWithId::new(10, e.metadata().metadata.hashes().to_vec());
    forged.verify(&config).unwrap();
    assert_eq!(data_rows(&config, &forged).unwrap(), 1);
    for check in [ConsistencyCheck::Default, ConsistencyCheck::Strict] {
        let err = decode_from_data_rows(&config, &forged, rows(&e, 1), check).unwrap_err();
        assert!(
            matches!(err, DecodeError::Inconsistent(_)),
            "{check:?}: {err}"
        );
    }
    // Skipping the check returns the claimed bytes, as a whole decode with Skip would.
    let d = decode_from_data_rows(&config, &forged, rows(&e, 1), ConsistencyCheck::Skip).unwrap();
    assert_eq!(d.blob, full[..10]);
}
