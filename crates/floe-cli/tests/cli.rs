//! End-to-end tests of the real `floe` binary: every published blob-ID vector, the JSON output,
//! the error messages, the `encode` output layout, `convert-blob-id` and `bench encode`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use floe_core::merkle::Node;
use floe_core::metadata::derive_blob_id;
use floe_core::{
    BlobId, BlobMetadataWithId, EncodingConfig, EncodingType, Sliver, SliverData, SliverPairIndex,
    SliverPairMetadata, SliverType,
};
use serde_json::Value;

const VECTORS: &str = include_str!("../../floe-core/tests/data/walrus-blob-ids.json");

/// The first published vector: Walrus's own regression test.
const REGRESSION_INPUT: &[u8] = b"walrus blob id v1 regression test";
const REGRESSION_BLOB_ID: &str = "RcU82Mwf-CFkv1LaI_2qcpANwpGUuG3TMwnVzZxD2kY";
/// The blob ID of the empty blob at n = 1000.
const EMPTY_BLOB_ID_1000: &str = "3GPQL3HZNnFhN_F7l5Aa-X1VOtAKwIsg9zuWk8R81v4";

fn floe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floe"))
}

fn run(args: &[&str]) -> Output {
    floe().args(args).output().expect("the floe binary runs")
}

fn run_with_file(args: &[&str], file: &Path) -> Output {
    floe()
        .args(args)
        .arg(file)
        .output()
        .expect("the floe binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

#[track_caller]
fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "floe failed with {}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

#[track_caller]
fn assert_failure(out: &Output) {
    assert!(
        !out.status.success(),
        "floe unexpectedly succeeded\nstdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

/// Writes `bytes` to `name` in `dir` and returns the path.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("temp file is writable");
    path
}

/// Byte i is (i + seed) mod 256, as in the vectors' `pattern` form.
fn pattern(size: usize, seed: usize) -> Vec<u8> {
    (0..size).map(|i| ((i + seed) % 256) as u8).collect()
}

fn input_bytes(input: &Value) -> Vec<u8> {
    let (form, v) = input
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("an input has exactly one form");
    let num = |i: usize| v[i].as_u64().expect("numeric argument");
    match form.as_str() {
        "ascii" => v.as_str().expect("ascii string").as_bytes().to_vec(),
        "hex" => hex::decode(v.as_str().expect("hex string")).expect("valid hex"),
        "pattern" => pattern(num(0) as usize, num(1) as usize),
        "fill" => vec![num(1) as u8; num(0) as usize],
        other => panic!("unknown input form {other}"),
    }
}

/// Runs `floe blob-id --json` and returns the parsed object.
fn blob_id_json(file: &Path, n_shards: u16) -> Value {
    let out = run_with_file(
        &["blob-id", "--json", "--n-shards", &n_shards.to_string()],
        file,
    );
    assert_success(&out);
    serde_json::from_str(&stdout(&out)).expect("blob-id --json prints JSON")
}

#[test]
fn blob_id_reproduces_every_published_vector() {
    let vectors: Value = serde_json::from_str(VECTORS).expect("vector file is JSON");
    let cases = vectors["cases"].as_array().expect("cases array");
    assert!(
        cases.len() >= 19,
        "all vectors present, got {}",
        cases.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut forms = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().expect("case name");
        let n = case["n_shards"].as_u64().expect("n_shards");
        let expected = case["blob_id"].as_str().expect("blob_id");
        forms.extend(case["input"].as_object().unwrap().keys().cloned());
        let file = write_file(dir.path(), name, &input_bytes(&case["input"]));
        let out = run_with_file(&["blob-id", "--n-shards", &n.to_string()], &file);
        assert_success(&out);
        assert_eq!(stdout(&out), format!("{expected}\n"), "case {name}");
    }
    assert!(
        forms.contains("pattern") && forms.contains("ascii"),
        "forms seen: {forms:?}"
    );
}

#[test]
fn blob_id_defaults_to_1000_shards() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "empty", b"");
    let out = run_with_file(&["blob-id"], &file);
    assert_success(&out);
    assert_eq!(stdout(&out).trim(), EMPTY_BLOB_ID_1000);
}

#[test]
fn blob_id_json_has_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "seventeen", &pattern(17, 3));
    let json = blob_id_json(&file, 1000);

    let keys: Vec<&str> = json
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "blobId",
        "file",
        "unencodedLength",
        "nShards",
        "symbolSize",
        "encodedLength",
        "rootHash",
        "maxBlobSize",
    ] {
        assert!(keys.contains(&key), "missing {key} in {json}");
    }
    assert_eq!(json["file"], file.to_str().unwrap());
    assert_eq!(json["unencodedLength"], 17);
    assert_eq!(json["nShards"], 1000);
    assert_eq!(json["symbolSize"], 2);
    assert_eq!(json["encodedLength"], 66_034_000u64);
    assert_eq!(json["maxBlobSize"], 14_599_533_452u64);

    // The plain output is the same ID.
    let plain = run_with_file(&["blob-id", "--n-shards", "1000"], &file);
    assert_success(&plain);
    assert_eq!(json["blobId"], plain_id(&plain));

    // The root hash is 64 hex digits and, with the length, derives the blob ID.
    let root_hex = json["rootHash"].as_str().expect("rootHash is a string");
    assert_eq!(root_hex.len(), 64);
    assert!(
        root_hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let root: [u8; 32] = hex::decode(root_hex).unwrap().try_into().unwrap();
    let derived = derive_blob_id(EncodingType::RS2, 17, &root);
    assert_eq!(json["blobId"], derived.to_string());
}

fn plain_id(out: &Output) -> String {
    stdout(out).trim_end().to_string()
}

#[test]
fn blob_id_json_of_the_regression_vector() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "regression", REGRESSION_INPUT);
    let json = blob_id_json(&file, 10);
    let config = EncodingConfig::new(10).unwrap();
    assert_eq!(json["blobId"], REGRESSION_BLOB_ID);
    assert_eq!(json["unencodedLength"], 33);
    assert_eq!(json["nShards"], 10);
    assert_eq!(json["symbolSize"], 2);
    assert_eq!(json["encodedLength"], config.encoded_length(33).unwrap());
    assert_eq!(json["maxBlobSize"], 1_834_952);
}

#[test]
fn blob_id_rejects_a_file_above_the_maximum() {
    let dir = tempfile::tempdir().unwrap();
    // n = 4: p = 2, s = 3, so the maximum is 6 · 65534 = 393204 bytes.
    let at_max = write_file(dir.path(), "at-max", &vec![7u8; 393_204]);
    let out = run_with_file(&["blob-id", "--n-shards", "4"], &at_max);
    assert_success(&out);
    assert_eq!(plain_id(&out).len(), 43);

    let too_large = write_file(dir.path(), "too-large", &vec![7u8; 393_205]);
    let out_dir = dir.path().join("out");
    let blob_id = run_with_file(&["blob-id", "--n-shards", "4"], &too_large);
    let encode = floe()
        .args(["encode", "--n-shards", "4", "--out"])
        .arg(&out_dir)
        .arg(&too_large)
        .output()
        .unwrap();
    for (cmd, out) in [("blob-id", blob_id), ("encode", encode)] {
        assert_failure(&out);
        let err = stderr(&out);
        assert!(
            err.contains("393204"),
            "{cmd}: stderr names the maximum: {err}"
        );
        assert!(
            err.contains("393205"),
            "{cmd}: stderr names the size: {err}"
        );
        assert!(stdout(&out).is_empty(), "{cmd}: nothing on stdout");
    }
    assert!(!out_dir.exists(), "no output directory for a rejected blob");
}

#[test]
fn shard_counts_outside_the_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "blob", b"hello");
    for n in ["3", "0", "16385", "70000"] {
        let out = run_with_file(&["blob-id", "--n-shards", n], &file);
        assert_failure(&out);
        let err = stderr(&out);
        assert!(
            err.contains("16384") && err.split(|c: char| !c.is_ascii_digit()).any(|w| w == "4"),
            "n = {n}: stderr names the range 4..=16384: {err}"
        );
    }
    // The lower boundary is accepted (n = 16384 is accepted too, but hashing its 16384²
    // symbols takes a minute; the config unit tests cover it).
    let out = run_with_file(&["blob-id", "--n-shards", "4"], &file);
    assert_success(&out);
}

#[test]
fn a_missing_file_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file");
    let out_dir = dir.path().join("out");
    let out_dir = out_dir.to_str().unwrap();
    for args in [&["blob-id"][..], &["encode", "--out", out_dir][..]] {
        let out = run_with_file(args, &missing);
        assert_failure(&out);
        let err = stderr(&out);
        assert!(err.contains("cannot read"), "{args:?}: {err}");
        assert!(
            err.contains("no-such-file"),
            "{args:?}: stderr names the path: {err}"
        );
    }
    assert!(!Path::new(out_dir).exists());
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_file(&["blob-id"], dir.path());
    assert_failure(&out);
    let err = stderr(&out);
    assert!(err.contains("directory"), "{err}");
}

#[test]
fn an_empty_file_is_a_valid_blob() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "empty", b"");
    let json = blob_id_json(&file, 1000);
    assert_eq!(json["blobId"], EMPTY_BLOB_ID_1000);
    assert_eq!(json["unencodedLength"], 0);
    assert_eq!(json["symbolSize"], 2);
}

/// Parses metadata.bcs by hand (layout from the protocol reference), so that the test does not
/// rely on the serialiser it checks.
fn parse_metadata_bcs(bytes: &[u8], n: usize) -> (BlobId, u64, Vec<SliverPairMetadata>) {
    assert!(n < 128, "one-byte ULEB128 count");
    assert_eq!(
        bytes.len(),
        32 + 1 + 1 + 8 + 1 + n * 66,
        "metadata.bcs length"
    );
    let id = BlobId(bytes[..32].try_into().unwrap());
    assert_eq!(bytes[32], 0x00, "BlobMetadata::V1 tag");
    assert_eq!(bytes[33], 0x01, "RS2 encoding byte");
    let len = u64::from_le_bytes(bytes[34..42].try_into().unwrap());
    assert_eq!(usize::from(bytes[42]), n, "ULEB128 hash count");
    let node = |b: &[u8]| {
        assert_eq!(b[0], 1, "Node::Digest tag");
        Node::Digest(b[1..33].try_into().unwrap())
    };
    let hashes = bytes[43..]
        .chunks_exact(66)
        .map(|pair| SliverPairMetadata {
            primary_hash: node(&pair[..33]),
            secondary_hash: node(&pair[33..]),
        })
        .collect();
    (id, len, hashes)
}

#[test]
fn encode_writes_metadata_manifest_and_every_sliver() {
    let n: u16 = 10;
    let config = EncodingConfig::new(n).unwrap();
    let (p, s) = (
        usize::from(config.n_primary_source()),
        usize::from(config.n_secondary_source()),
    );
    assert_eq!((p, s), (4, 7));
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(1000, 11);
    let file = write_file(dir.path(), "blob.bin", &data);
    let out_dir = dir.path().join("nested").join("out");

    let out = floe()
        .arg("encode")
        .arg(&file)
        .arg("--out")
        .arg(&out_dir)
        .args(["--n-shards", "10"])
        .output()
        .unwrap();
    assert_success(&out);

    let id_out = run_with_file(&["blob-id", "--n-shards", "10"], &file);
    assert_success(&id_out);
    let blob_id = plain_id(&id_out);
    assert!(stdout(&out).contains(&blob_id), "summary names the blob ID");

    // Exactly the metadata, the manifest and 2n slivers.
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected_names = vec!["manifest.json".to_string(), "metadata.bcs".to_string()];
    for pair in 0..n {
        expected_names.push(format!("pair-{pair:05}-primary.bin"));
        expected_names.push(format!("pair-{pair:05}-secondary.bin"));
    }
    expected_names.sort();
    assert_eq!(names, expected_names);

    // The manifest.
    let sym = usize::from(config.symbol_size(1000).unwrap());
    assert_eq!(sym, 36, "⌈1000 / 28⌉ rounded up to even");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["blobId"], blob_id);
    assert_eq!(manifest["unencodedLength"], 1000);
    assert_eq!(manifest["nShards"], 10);
    assert_eq!(manifest["symbolSize"], sym);
    assert_eq!(manifest["primarySliverLen"], s * sym);
    assert_eq!(manifest["secondarySliverLen"], p * sym);
    assert_eq!(manifest["metadataFile"], "metadata.bcs");
    assert_eq!(manifest["formatVersion"], 1);

    // metadata.bcs: the ID bytes, V1, RS2, the length and one hash pair per shard; the hashes
    // derive the same ID, and the file is exactly the canonical BCS of that metadata.
    let meta_bytes = std::fs::read(out_dir.join("metadata.bcs")).unwrap();
    let (id, len, hashes) = parse_metadata_bcs(&meta_bytes, config.n());
    assert_eq!(id.to_string(), blob_id);
    assert_eq!(len, 1000);
    let rebuilt = BlobMetadataWithId::new(len, hashes);
    assert_eq!(rebuilt.blob_id, id, "the hashes derive the claimed ID");
    assert_eq!(rebuilt.to_bcs(), meta_bytes);
    rebuilt.verify(&config).unwrap();

    // Every sliver has the right size and matches its hash in the metadata.
    let read_sliver = |pair: u16, axis: SliverType| {
        let name = format!("pair-{pair:05}-{}.bin", axis.as_str());
        std::fs::read(out_dir.join(name)).unwrap()
    };
    for pair in 0..n {
        for axis in [SliverType::Primary, SliverType::Secondary] {
            let symbols = read_sliver(pair, axis);
            let expected_len = match axis {
                SliverType::Primary => s * sym,
                SliverType::Secondary => p * sym,
            };
            assert_eq!(symbols.len(), expected_len, "pair {pair} {axis}");
            let index = SliverPairIndex(pair).to_sliver_index(axis, n);
            let sliver = Sliver::new(
                axis,
                SliverData {
                    symbols,
                    symbol_size: sym as u16,
                    index,
                },
            );
            sliver
                .verify(&config, &rebuilt.metadata)
                .unwrap_or_else(|e| panic!("pair {pair} {axis}: {e}"));
        }
    }

    // Systematic: primary slivers 0..p are the rows of the blob.
    let mut rows = Vec::new();
    for pair in 0..config.n_primary_source() {
        rows.extend(read_sliver(pair, SliverType::Primary));
    }
    assert_eq!(rows.len(), p * s * sym);
    assert!(rows[data.len()..].iter().all(|&b| b == 0), "zero padding");
    rows.truncate(data.len());
    assert_eq!(rows, data);

    // The secondary file of pair k holds column n−1−k; columns below s are raw blob symbols.
    let mut padded = data.clone();
    padded.resize(p * s * sym, 0);
    for pair in 0..n {
        let column = usize::from(n - 1 - pair);
        if column >= s {
            continue;
        }
        let expected: Vec<u8> = (0..p)
            .flat_map(|row| {
                let at = (row * s + column) * sym;
                padded[at..at + sym].to_vec()
            })
            .collect();
        assert_eq!(
            read_sliver(pair, SliverType::Secondary),
            expected,
            "pair {pair}"
        );
    }
}

#[test]
fn encode_json_prints_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "regression", REGRESSION_INPUT);
    let out_dir = dir.path().join("out");
    let out = floe()
        .arg("encode")
        .arg(&file)
        .arg("--out")
        .arg(&out_dir)
        .args(["--n-shards", "10", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let printed: Value = serde_json::from_str(&stdout(&out)).expect("encode --json prints JSON");
    let written: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(printed, written);
    assert_eq!(printed["blobId"], REGRESSION_BLOB_ID);
    assert_eq!(printed["unencodedLength"], 33);
}

#[test]
fn encode_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "empty", b"");
    let out_dir = dir.path().join("out");
    let out = floe()
        .arg("encode")
        .arg(&file)
        .arg("--out")
        .arg(&out_dir)
        .args(["--n-shards", "4"])
        .output()
        .unwrap();
    assert_success(&out);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    let id_out = run_with_file(&["blob-id", "--n-shards", "4"], &file);
    assert_success(&id_out);
    assert_eq!(manifest["blobId"], plain_id(&id_out));
    // p = 2, s = 3, symbol size 2: all-zero systematic rows.
    let primary = std::fs::read(out_dir.join("pair-00000-primary.bin")).unwrap();
    assert_eq!(primary, vec![0u8; 6]);
    let secondary = std::fs::read(out_dir.join("pair-00003-secondary.bin")).unwrap();
    assert_eq!(secondary, vec![0u8; 4]);
}

#[test]
fn convert_blob_id_round_trips() {
    let id: BlobId = REGRESSION_BLOB_ID.parse().unwrap();
    let decimal = id.to_decimal();
    assert!(decimal.bytes().all(|b| b.is_ascii_digit()) && decimal.len() > 40);
    let out = run(&["convert-blob-id", &decimal]);
    assert_success(&out);
    assert_eq!(stdout(&out), format!("{REGRESSION_BLOB_ID}\n"));

    // Small values: the decimal is the little-endian integer of the 32 bytes.
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut top = [0u8; 32];
    top[31] = 1; // 2^248
    for (decimal, bytes) in [
        ("0", [0u8; 32]),
        ("1", one),
        (
            "452312848583266388373324160190187140051835877600158453279131187530910662656",
            top,
        ),
        (
            "115792089237316195423570985008687907853269984665640564039457584007913129639935",
            [0xff; 32],
        ),
    ] {
        let out = run(&["convert-blob-id", decimal]);
        assert_success(&out);
        assert_eq!(
            plain_id(&out),
            BlobId(bytes).to_string(),
            "decimal {decimal}"
        );
        assert_eq!(BlobId(bytes).to_decimal(), decimal);
    }
}

#[test]
fn convert_blob_id_rejects_bad_input() {
    for bad in [
        "",
        "12a",
        "-1",
        // 2^256
        "115792089237316195423570985008687907853269984665640564039457584007913129639936",
    ] {
        let out = run(&["convert-blob-id", bad]);
        assert_failure(&out);
        assert!(!stderr(&out).is_empty(), "{bad:?}: an error message");
    }
}

/// Runs `floe bench encode --size 1MiB --repeat 1 --json` with `extra` arguments and checks
/// every printed line; returns the modes seen.
fn bench_json(extra: &[&str], n_shards: u16) -> Vec<String> {
    let n = n_shards.to_string();
    let mut args = vec!["bench", "encode", "--size", "1MiB", "--n-shards", &n];
    args.extend_from_slice(&["--repeat", "1", "--json"]);
    args.extend_from_slice(extra);
    let out = run(&args);
    assert_success(&out);
    let text = stdout(&out);
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "at least one JSON line: {text}");
    let mut modes = Vec::new();
    for m in &lines {
        modes.push(m["mode"].as_str().expect("mode").to_string());
        assert_eq!(m["bytes"], 1u64 << 20);
        assert_eq!(m["nShards"], n_shards);
        let throughput = m["throughputMibS"].as_f64().expect("throughput");
        assert!(throughput.is_finite() && throughput > 0.0, "{m}");
        assert!(m["bestSeconds"].as_f64().unwrap() > 0.0);
        assert!(m["peakRssBytes"].as_u64().is_some());
        assert_eq!(
            m["blobId"], lines[0]["blobId"],
            "every mode agrees on the ID"
        );
        assert_eq!(m["blobId"].as_str().unwrap().len(), 43);
    }
    modes.sort();
    modes
}

#[test]
fn bench_encode_prints_json_lines() {
    assert_eq!(bench_json(&[], 1000), ["blob-id", "encode"]);
}

#[test]
fn bench_encode_single_modes() {
    assert_eq!(bench_json(&["--mode", "encode"], 10), ["encode"]);
    assert_eq!(bench_json(&["--mode", "blob-id"], 10), ["blob-id"]);
}

#[test]
fn bench_encode_all_modes_with_few_shards() {
    assert_eq!(bench_json(&[], 10), ["blob-id", "encode"]);
}

#[test]
fn bench_rejects_a_size_above_the_maximum() {
    let out = run(&["bench", "encode", "--size", "1MiB", "--n-shards", "4"]);
    assert_failure(&out);
    assert!(stderr(&out).contains("393204"), "{}", stderr(&out));
}

#[test]
fn help_lists_every_command() {
    let out = run(&["--help"]);
    assert_success(&out);
    let help = stdout(&out);
    for cmd in ["blob-id", "encode", "convert-blob-id", "bench"] {
        assert!(help.contains(cmd), "--help mentions {cmd}: {help}");
    }
    let version = run(&["--version"]);
    assert_success(&version);
    assert!(stdout(&version).starts_with("floe "));
}

/// A base64url blob ID may start with `-`: `blob-status --blob-id` takes it as the value (it
/// then fails only for want of a ledger, not on parsing).
#[test]
fn blob_status_takes_a_blob_id_that_starts_with_a_hyphen() {
    let id = "-J4sgVbsr4SK6hcFqcscUpOjYokTQnT-i21f0j8cArY";
    let out = run(&[
        "blob-status",
        "--blob-id",
        id,
        "--ledger-url",
        "http://127.0.0.1:9",
    ]);
    assert_failure(&out);
    let err = stderr(&out);
    assert!(!err.contains("unexpected argument"), "{err}");
}

/// `floe read` takes such an ID as its positional argument, before or after its flags, and
/// still knows its own flags.
#[test]
fn read_takes_a_blob_id_that_starts_with_a_hyphen() {
    let id = "-J4sgVbsr4SK6hcFqcscUpOjYokTQnT-i21f0j8cArY";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.bin");
    let file = file.to_str().unwrap();
    for args in [
        vec![
            "read",
            id,
            "--out",
            file,
            "--ledger-url",
            "http://127.0.0.1:9",
        ],
        vec![
            "read",
            "--out",
            file,
            id,
            "--ledger-url",
            "http://127.0.0.1:9",
        ],
    ] {
        let out = run(&args);
        assert_failure(&out);
        let err = stderr(&out);
        // It got as far as the (absent) ledger: the ID and every flag parsed.
        assert!(
            !err.contains("unexpected argument") && !err.contains("not a blob ID"),
            "{args:?}: {err}"
        );
    }
    let out = run(&["read", "--help"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// One blob ID in 64 starts with '-': after a list option it is that option's value, and as
/// a positional the parser's error says how to pass it.
#[test]
fn blob_ids_that_start_with_a_hyphen_are_values_not_flags() {
    let hyphen = "-a1B2X99gOfj_tGQ_Yf1vYVFsSuxKVOM1IXMsaHJqQQ";
    let out = run(&[
        "delete",
        "--blob-ids",
        REGRESSION_BLOB_ID,
        hyphen,
        "--ledger-url",
        "http://127.0.0.1:9",
    ]);
    assert_failure(&out);
    let err = stderr(&out);
    assert!(!err.contains("unexpected argument"), "{err}");

    let out = run(&["audit", hyphen]);
    assert_failure(&out);
    let err = stderr(&out);
    assert!(
        err.contains("unexpected argument") && err.contains(&format!("floe audit -- {hyphen}")),
        "{err}"
    );
}
