//! QuiltV1: the reference's worked example, build/read round trips on random quilts (read from
//! the whole blob and from the encoder's secondary slivers), and corrupted or truncated quilts.
//! Random cases draw from a seeded ChaCha RNG whose seed is the proptest input (printed on
//! failure).

use floe_core::config::EncodingConfig;
use floe_core::quilt::{
    BuiltQuilt, QuiltError, QuiltPatchInput, QuiltReader, Tags, build_quilt, decode_index,
    decode_patch, index_columns_from_prefix,
};
use floe_core::{SliverIndex, SliverType, encode};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn input<'a>(identifier: &str, tags: &[(&str, &str)], data: &'a [u8]) -> QuiltPatchInput<'a> {
    QuiltPatchInput {
        identifier: identifier.to_string(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        data,
    }
}

/// Secondary slivers `[start, end)` of the encoded quilt, concatenated: what a patch read fetches.
fn sliver_stream(encoded: &floe_core::EncodedBlob, start: u16, end: u16) -> Vec<u8> {
    (start..end)
        .flat_map(|c| {
            encoded
                .sliver_bytes(SliverType::Secondary, SliverIndex(c))
                .to_vec()
        })
        .collect()
}

fn worked_example() -> (EncodingConfig, BuiltQuilt, Vec<u8>, Vec<u8>) {
    let config = EncodingConfig::new(10).unwrap();
    let a: Vec<u8> = (0..100u8).collect();
    let b: Vec<u8> = (0..50u8).map(|i| 200 - i).collect();
    // Given out of order: the builder sorts by identifier.
    let quilt = build_quilt(
        &config,
        &[input("b.txt", &[("k", "v")], &b), input("a.txt", &[], &a)],
    )
    .unwrap();
    (config, quilt, a, b)
}

/// The reference's worked example: n = 10 (p = 4, s = 7); L = 23, sizes [28, 114, 71], S = 10,
/// index in column 0, a.txt in [1,4), b.txt in [4,6), column 6 zero, 280 bytes.
#[test]
fn worked_example_layout() {
    let (config, quilt, a, b) = worked_example();
    assert_eq!(quilt.symbol_size, 10);
    assert_eq!(quilt.bytes.len(), 280);
    assert_eq!(quilt.index_columns, 1);
    let ranges: Vec<_> = quilt
        .index
        .patches
        .iter()
        .map(|p| (p.identifier.as_str(), p.start, p.end))
        .collect();
    assert_eq!(ranges, [("a.txt", 1, 4), ("b.txt", 4, 6)]);

    let reader = QuiltReader::new(&config, &quilt.bytes).unwrap();
    let column0 = reader.columns(0, 1);
    assert_eq!(&column0[..5], &[1, 23, 0, 0, 0]);
    assert_eq!(index_columns_from_prefix(&column0, 40).unwrap(), (1, 23));
    // Row-major placement: column 0's second symbol is row 1, at byte 1·7·10.
    assert_eq!(&quilt.bytes[..10], &column0[..10]);
    assert_eq!(&quilt.bytes[70..80], &column0[10..20]);
    assert!(reader.columns(6, 7).iter().all(|&x| x == 0));
    // a.txt's header: version, length 108 = 2 + 6 + 100, no tags, identifier size 6.
    let a_stream = reader.columns(1, 4);
    assert_eq!(
        &a_stream[..14],
        &[1, 108, 0, 0, 0, 0, 6, 0, 5, b'a', b'.', b't', b'x', b't']
    );
    assert_eq!(&a_stream[14..114], &a[..]);
    assert!(a_stream[114..].iter().all(|&x| x == 0));
    // b.txt's header: length 65 = 2 + 6 + 2 + 5 + 50, tags bit set, tags {k: v} = 01 01 6b 01 76.
    let b_stream = reader.columns(4, 6);
    assert_eq!(&b_stream[..6], &[1, 65, 0, 0, 0, 1]);
    assert_eq!(&b_stream[14..21], &[5, 0, 1, 1, b'k', 1, b'v']);
    assert_eq!(&b_stream[21..71], &b[..]);

    assert_eq!(reader.index().unwrap(), quilt.index);
    let read_b = reader.patch_by_identifier("b.txt").unwrap();
    assert_eq!(read_b.data, b);
    assert_eq!(read_b.tags, Tags::from([("k".into(), "v".into())]));
}

/// The quilt is an ordinary blob: the encoder derives the same symbol size, its systematic
/// secondary slivers are the columns, and the quilt ID is the blob ID of the 280 bytes.
#[test]
fn worked_example_through_the_encoder() {
    let (config, quilt, a, _) = worked_example();
    let encoded = encode(&config, &quilt.bytes).unwrap();
    assert_eq!(encoded.symbol_size(), quilt.symbol_size);
    let index = decode_index(&sliver_stream(&encoded, 0, 1), 40, 7).unwrap();
    assert_eq!(index, quilt.index);
    let patch = decode_patch(&sliver_stream(&encoded, 1, 4), Some("a.txt")).unwrap();
    assert_eq!(patch.data, a);
    // A Floe regression value (derived here, not a Walrus vector): it changes only if the
    // layout or the encoder changes.
    let id = encoded.blob_id();
    let patch_ids: Vec<String> = quilt
        .index
        .patches
        .iter()
        .map(|p| p.patch_id(id).to_string())
        .collect();
    println!("worked example quilt ID {id}, patch IDs {patch_ids:?}");
    assert_eq!(id.to_string(), WORKED_EXAMPLE_QUILT_ID);
    assert_eq!(patch_ids[0].len(), 50);
}

const WORKED_EXAMPLE_QUILT_ID: &str = "ZNYkBF44vURFQoUCOvU8gws07PZD0sywHrvm6382zFE";

#[test]
fn build_errors() {
    let config = EncodingConfig::new(10).unwrap();
    assert_eq!(build_quilt(&config, &[]).unwrap_err(), QuiltError::Empty);
    let err = build_quilt(&config, &[input("x", &[], b"1"), input("x", &[], b"2")]).unwrap_err();
    assert_eq!(err, QuiltError::DuplicateIdentifier("x".into()));
    let err = build_quilt(&config, &[input("x ", &[], b"1")]).unwrap_err();
    assert!(matches!(err, QuiltError::InvalidIdentifier { .. }), "{err}");
    // n = 10 has s = 7 columns: the index and at most 6 patches.
    let data = [0u8; 1];
    let six: Vec<_> = (0..6)
        .map(|i| input(&format!("f{i}"), &[], &data))
        .collect();
    assert!(build_quilt(&config, &six).is_ok());
    let seven: Vec<_> = (0..7)
        .map(|i| input(&format!("f{i}"), &[], &data))
        .collect();
    assert!(matches!(
        build_quilt(&config, &seven).unwrap_err(),
        QuiltError::TooManyPatches { .. }
    ));
    let big = "v".repeat(70_000);
    let err = build_quilt(&config, &[input("x", &[("k", &big)], b"")]).unwrap_err();
    assert!(matches!(err, QuiltError::TagsTooLarge { .. }), "{err}");
    // 2 MiB does not fit a 10-shard quilt (the largest blob is 1.75 MiB).
    let huge = vec![1u8; 2 << 20];
    let err = build_quilt(&config, &[input("x", &[], &huge)]).unwrap_err();
    assert!(matches!(err, QuiltError::QuiltTooLarge { .. }), "{err}");
}

#[test]
fn corrupted_quilts_are_rejected_precisely() {
    let (config, quilt, _, _) = worked_example();
    let read = |bytes: &[u8]| QuiltReader::new(&config, bytes).and_then(|r| r.index());
    assert!(matches!(
        read(&quilt.bytes[..279]),
        Err(QuiltError::BadBlobLength { len: 279, .. })
    ));
    assert!(matches!(
        read(&[]),
        Err(QuiltError::BadBlobLength { len: 0, .. })
    ));
    let mut bad = quilt.bytes.clone();
    bad[0] = 2;
    assert_eq!(read(&bad), Err(QuiltError::UnsupportedQuiltVersion(2)));
    // An index length beyond 10 columns, then one beyond the index's columns.
    let mut bad = quilt.bytes.clone();
    bad[1..5].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(
        read(&bad),
        Err(QuiltError::IndexTooLarge {
            len: 1000,
            max: 395
        })
    ));
    let mut bad = quilt.bytes.clone();
    bad[1] = 24;
    assert!(matches!(read(&bad), Err(QuiltError::IndexDecode(_))));
    // The first end index (byte 6 of the stream) moved before the start.
    let mut bad = quilt.bytes.clone();
    bad[6] = 1;
    assert!(matches!(
        read(&bad),
        Err(QuiltError::BadIndexRange {
            patch: 0,
            end: 1,
            ..
        })
    ));

    let reader = QuiltReader::new(&config, &quilt.bytes).unwrap();
    let stream = reader.columns(1, 4);
    let mut bad = stream.clone();
    bad[0] = 9;
    assert_eq!(
        decode_patch(&bad, None),
        Err(QuiltError::UnsupportedPatchVersion(9))
    );
    assert!(matches!(
        decode_patch(&stream[..100], None),
        Err(QuiltError::Truncated {
            what: "patch",
            needed: 108,
            ..
        })
    ));
    assert!(matches!(
        decode_patch(&stream[..3], None),
        Err(QuiltError::Truncated {
            what: "patch header",
            ..
        })
    ));
    let mut bad = stream.clone();
    bad[6] = 200; // identifier size beyond the patch's length
    assert!(matches!(
        decode_patch(&bad, None),
        Err(QuiltError::Truncated {
            what: "identifier",
            ..
        })
    ));
    let mut bad = stream.clone();
    bad[8] = 4; // the BCS string's length no longer matches its section
    assert!(matches!(
        decode_patch(&bad, None),
        Err(QuiltError::PatchHeaderDecode(_))
    ));
    assert!(matches!(
        decode_patch(&stream, Some("b.txt")),
        Err(QuiltError::IdentifierMismatch { .. })
    ));
}

/// Identifiers: unique, valid, some with multi-byte characters and shared prefixes (so the
/// byte-wise order matters).
fn random_identifier(rng: &mut ChaCha8Rng) -> String {
    const PARTS: [&str; 8] = ["a", "B", "é", "_x", "-", "10", "ü.txt", "dir/"];
    let n = rng.random_range(1..5);
    let mut s: String = (0..n)
        .map(|_| PARTS[rng.random_range(0..PARTS.len())])
        .collect();
    s.push_str(&rng.random_range(0..1000u32).to_string());
    s
}

fn random_tags(rng: &mut ChaCha8Rng) -> Tags {
    let n = rng.random_range(0..4);
    (0..n)
        .map(|_| {
            let k = "k".repeat(rng.random_range(1..4)) + &rng.random_range(0..50u8).to_string();
            (k, rng.random_range(0..1_000_000u32).to_string())
        })
        .collect()
}

fn random_quilt(seed: u64) -> (EncodingConfig, Vec<(String, Tags, Vec<u8>)>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = [4u16, 7, 10, 13, 31, 100][rng.random_range(0..6)];
    let config = EncodingConfig::new(n).unwrap();
    let max = usize::from(config.n_secondary_source()) - 1;
    let count = rng.random_range(1..=max.min(24));
    let mut files: Vec<(String, Tags, Vec<u8>)> = Vec::new();
    while files.len() < count {
        let id = random_identifier(&mut rng);
        if files.iter().any(|f| f.0 == id) {
            continue;
        }
        let len = if rng.random_bool(0.2) {
            0
        } else {
            rng.random_range(0..3000)
        };
        let mut data = vec![0u8; len];
        rng.fill(&mut data[..]);
        files.push((id, random_tags(&mut rng), data));
    }
    (config, files)
}

fn inputs(files: &[(String, Tags, Vec<u8>)]) -> Vec<QuiltPatchInput<'_>> {
    files
        .iter()
        .map(|(id, tags, data)| QuiltPatchInput {
            identifier: id.clone(),
            tags: tags.clone(),
            data,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Build, then read every patch back by identifier, by patch ID and from the encoder's
    /// secondary slivers: byte-exact, with its tags.
    #[test]
    fn build_then_read_returns_every_patch(seed in any::<u64>()) {
        let (config, files) = random_quilt(seed);
        let quilt = build_quilt(&config, &inputs(&files)).unwrap();
        prop_assert_eq!(quilt.bytes.len() as u64, config.n_source_symbols() * u64::from(quilt.symbol_size));
        let reader = QuiltReader::new(&config, &quilt.bytes).unwrap();
        let index = reader.index().unwrap();
        prop_assert_eq!(&index, &quilt.index);
        let mut sorted: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        sorted.sort();
        let listed: Vec<&str> = index.patches.iter().map(|p| p.identifier.as_str()).collect();
        prop_assert_eq!(listed, sorted);
        let encoded = encode(&config, &quilt.bytes).unwrap();
        prop_assert_eq!(encoded.symbol_size(), quilt.symbol_size);
        for (id, tags, data) in &files {
            let by_id = reader.patch_by_identifier(id).unwrap();
            prop_assert_eq!(&by_id.data, data);
            prop_assert_eq!(&by_id.tags, tags);
            let patch = index.get(id).unwrap();
            let by_range = reader.patch_by_internal_id(patch.internal_id()).unwrap();
            prop_assert_eq!(&by_range, &by_id);
            let from_slivers = decode_patch(&sliver_stream(&encoded, patch.start, patch.end), Some(id)).unwrap();
            prop_assert_eq!(&from_slivers, &by_id);
        }
    }

    /// Any truncation or byte flip gives a value or an error, never a panic; a truncated blob
    /// is refused unless it happens to be a whole smaller matrix, a flipped version byte always.
    #[test]
    fn corruption_never_panics(seed in any::<u64>()) {
        let (config, files) = random_quilt(seed);
        let quilt = build_quilt(&config, &inputs(&files)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xbad);
        let cut = rng.random_range(0..quilt.bytes.len());
        let truncated = QuiltReader::new(&config, &quilt.bytes[..cut]).and_then(|r| r.index());
        // A cut at a multiple of p·s is a smaller matrix, read as whatever it holds.
        if !(cut as u64).is_multiple_of(config.n_source_symbols()) {
            let refused = matches!(truncated, Err(QuiltError::BadBlobLength { .. }));
            prop_assert!(refused, "cut at {}: {:?}", cut, truncated);
        }
        let mut bad = quilt.bytes.clone();
        bad[0] ^= 1 << rng.random_range(0..8);
        prop_assert!(QuiltReader::new(&config, &bad).unwrap().index().is_err());
        for _ in 0..16 {
            let mut bad = quilt.bytes.clone();
            let at = rng.random_range(0..bad.len());
            bad[at] = rng.random();
            let reader = QuiltReader::new(&config, &bad).unwrap();
            if let Ok(index) = reader.index() {
                for patch in &index.patches {
                    let _ = reader.patch(patch);
                }
            }
            let column_len = reader.column_len();
            let _ = decode_patch(&reader.columns(1, 3)[..column_len.min(40)], None);
        }
    }
}
