//! The published Walrus blob-ID vectors in `../shared/vectors/walrus-blob-ids.json` (a copy is
//! kept in `tests/data/` so the crate tests stand alone): every case must reproduce exactly.

use floe_core::{EncodingConfig, SliverIndex, SliverType, compute_metadata, encode};
use serde_json::Value;

const VECTORS: &str = include_str!("data/walrus-blob-ids.json");

fn input_bytes(input: &Value) -> Vec<u8> {
    let (form, v) = input.as_object().unwrap().iter().next().unwrap();
    match form.as_str() {
        "ascii" => v.as_str().unwrap().as_bytes().to_vec(),
        "hex" => hex::decode(v.as_str().unwrap()).unwrap(),
        "pattern" => {
            let size = v[0].as_u64().unwrap() as usize;
            let seed = v[1].as_u64().unwrap() as usize;
            (0..size).map(|i| ((i + seed) % 256) as u8).collect()
        }
        "fill" => vec![v[1].as_u64().unwrap() as u8; v[0].as_u64().unwrap() as usize],
        other => panic!("unknown input form {other}"),
    }
}

fn djb2(bytes: &[u8]) -> u32 {
    bytes.iter().fold(5381u32, |h, &b| {
        h.wrapping_mul(33).wrapping_add(u32::from(b))
    })
}

fn cases() -> Vec<(String, u16, Vec<u8>, String)> {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["n_shards"].as_u64().unwrap() as u16,
                input_bytes(&c["input"]),
                c["blob_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_published_blob_id_reproduces() {
    let cases = cases();
    assert!(cases.len() >= 19, "all vectors present");
    for (name, n, blob, expected) in cases {
        let config = EncodingConfig::new(n).unwrap();
        let meta = compute_metadata(&config, &blob).unwrap();
        assert_eq!(
            meta.blob_id.to_string(),
            expected,
            "metadata-only path, case {name}"
        );
        let encoded = encode(&config, &blob).unwrap();
        assert_eq!(
            encoded.blob_id().to_string(),
            expected,
            "full encoder, case {name}"
        );
        meta.verify(&config).unwrap();
    }
}

#[test]
fn extra_checks() {
    let config = EncodingConfig::new(1000).unwrap();
    let by_name = |wanted: &str| cases().into_iter().find(|c| c.0 == wanted).unwrap().2;
    let meta = compute_metadata(&config, &by_name("sdk_5000_77")).unwrap();
    assert_eq!(
        format!("{:08x}", djb2(&meta.metadata.root_hash())),
        "49c62b52"
    );
    let encoded = encode(&config, &by_name("sdk_500_55")).unwrap();
    let s0 = encoded.sliver_bytes(SliverType::Primary, SliverIndex(0));
    let s1 = encoded.sliver_bytes(SliverType::Primary, SliverIndex(1));
    assert_eq!(format!("{:08x}", djb2(s0)), "43a344bf");
    assert_eq!(format!("{:08x}", djb2(s1)), "f8bce2c5");
}

#[test]
fn the_vector_file_is_the_shared_one() {
    // When the shared folder sits beside the repository (as in CI), the copy must be identical.
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/walrus-blob-ids.json"
    );
    if let Ok(text) = std::fs::read_to_string(shared) {
        assert_eq!(
            text, VECTORS,
            "tests/data copy is stale; copy the shared vectors again"
        );
    }
}
