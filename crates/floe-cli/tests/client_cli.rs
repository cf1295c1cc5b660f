//! The user's path through real processes: `floe testbed` as a child process, then `floe store`,
//! `read`, `blob-status`, `list-blobs`, `extend`, `delete`, `info` and `health` against it, and a
//! Ctrl-C followed by a resume that still serves the stored blob.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use floe_test_support::{Bed, Floe};
use serde_json::Value;

fn cli(dir: &Path) -> Floe {
    Floe::new(env!("CARGO_BIN_EXE_floe"), dir)
}

fn floe(dir: &Path) -> Command {
    cli(dir).command()
}

fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    cli(dir).run(args)
}

fn json(dir: &Path, args: &[&str]) -> Value {
    cli(dir).json(args)
}

/// `floe testbed` with four nodes and ten shards in `dir`, on free ports.
fn start_bed(dir: &Path) -> Bed {
    let args = ["--base-port", "0", "--nodes", "4", "--n-shards", "10"];
    Bed::start(&cli(dir), &args, false)
}

/// How long a testbed may take to stop on Ctrl-C.
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// What storing leaves for the steps after it.
struct Stored {
    payload: Vec<u8>,
    blob_id: String,
    object_id: String,
    /// The empty blob's object (shared by [`shared_blobs`]).
    empty_object: String,
}

/// The user's whole path through the CLI, as named steps on one testbed.
#[test]
fn store_read_status_manage_and_resume_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Before any network exists, commands say what to do.
    let (ok, _, err) = run(d, &["read", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]);
    assert!(!ok);
    assert!(err.contains("floe testbed"), "{err}");

    let bed = start_bed(d);
    let s = store_and_read(d);
    lifetimes_are_checked(d);
    status_list_and_extend(d, &s);
    shared_blobs(d, &s);
    the_daemon_serves_the_same_network(d, &s);

    // Ctrl-C, resume: the blob is still there.
    bed.interrupt(STOP_WITHIN);
    let bed = start_bed(d);
    let out = floe(d).args(["read", &s.blob_id]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, s.payload);

    delete_and_bad_ids(d, &s);
    bed.interrupt(STOP_WITHIN);
}

/// Store two files (one empty), check the ID against the offline computation, read to
/// stdout and to a file, and store again (a no-op that says so).
fn store_and_read(d: &Path) -> Stored {
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 3) as u8).collect();
    std::fs::write(d.join("a.bin"), &payload).unwrap();
    std::fs::write(d.join("empty.bin"), b"").unwrap();

    // Without a lifetime, store explains the choices.
    let (ok, _, err) = run(d, &["store", "a.bin"]);
    assert!(!ok && err.contains("--epochs"), "{err}");

    let stored = json(
        d,
        &["store", "a.bin", "empty.bin", "--epochs", "2", "--json"],
    );
    assert!(
        d.join("floe-testbed/wallet.json").exists(),
        "wallet created"
    );
    let created = &stored[0]["blobStoreResult"]["newlyCreated"]["blobObject"];
    let blob_id = created["blobId"].as_str().unwrap().to_string();
    let object_id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["size"], 100_000);
    assert_eq!(created["deletable"], true);
    assert!(created["certifiedEpoch"].is_number());
    assert_eq!(
        stored[1]["blobStoreResult"]["newlyCreated"]["blobObject"]["size"],
        0
    );
    // The ID matches the offline computation.
    let offline = json(d, &["blob-id", "a.bin", "--n-shards", "10", "--json"]);
    assert_eq!(offline["blobId"], blob_id.as_str());

    // Read to stdout (raw bytes) and to a file.
    let out = floe(d).args(["read", &blob_id]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, payload);
    let (ok, _, err) = run(d, &["read", &blob_id, "--out", "copy.bin"]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(d.join("copy.bin")).unwrap(), payload);

    // Storing again is a no-op that says so.
    let again = json(d, &["store", "a.bin", "--epochs", "1", "--json"]);
    assert!(
        again[0]["blobStoreResult"]["alreadyCertified"].is_object(),
        "{again}"
    );

    let empty_object = stored[1]["blobStoreResult"]["newlyCreated"]["blobObject"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    Stored {
        payload,
        blob_id,
        object_id,
        empty_object,
    }
}

/// `--earliest-expiry-time`: 1 h epochs, so 150 min from now ends 3 epochs after this one
/// (the testbed's first epoch began seconds ago); the past, beyond the network's 53 epochs,
/// and together with `--epochs` are refused with what to do.
fn lifetimes_are_checked(d: &Path) {
    std::fs::write(d.join("c.bin"), b"expires no earlier than asked").unwrap();
    let at = |secs: u64| {
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(secs))
            .to_string()
    };
    let until = json(
        d,
        &[
            "store",
            "c.bin",
            "--earliest-expiry-time",
            &at(150 * 60),
            "--json",
        ],
    );
    let object = &until[0]["blobStoreResult"]["newlyCreated"]["blobObject"];
    assert_eq!(
        object["storage"]["endEpoch"].as_u64().unwrap(),
        object["certifiedEpoch"].as_u64().unwrap() + 3,
        "{until}"
    );
    let (ok, _, err) = run(
        d,
        &[
            "store",
            "c.bin",
            "--earliest-expiry-time",
            "2001-01-01T00:00:00Z",
        ],
    );
    assert!(!ok && err.contains("in the past"), "{err}");
    let (ok, _, err) = run(
        d,
        &[
            "store",
            "c.bin",
            "--earliest-expiry-time",
            &at(100 * 24 * 3600),
        ],
    );
    assert!(!ok && err.contains("at most 53 epochs ahead"), "{err}");
    let (ok, _, err) = run(d, &["store", "c.bin", "--earliest-expiry-time", "tomorrow"]);
    assert!(!ok && err.contains("2027-03-20T15:00:00Z"), "{err}");
    let (ok, _, err) = run(
        d,
        &[
            "store",
            "c.bin",
            "--epochs",
            "2",
            "--earliest-expiry-time",
            &at(3600),
        ],
    );
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}

/// The stored blob's status (by ID and by file), listing, and extending the owned object.
fn status_list_and_extend(d: &Path, s: &Stored) {
    let (blob_id, object_id) = (s.blob_id.clone(), s.object_id.clone());
    let status = json(d, &["blob-status", "--blob-id", &blob_id, "--json"]);
    assert_eq!(status["status"]["status"], "certified", "{status}");
    assert_eq!(status["nodes"]["confirmed"], true, "{status}");
    let (ok, text, _) = run(d, &["blob-status", "--file", "a.bin"]);
    assert!(
        ok && text.contains("certified and available until epoch 2"),
        "{text}"
    );

    let listed = json(d, &["list-blobs", "--json"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"] == object_id.as_str())
    );
    let extended = json(
        d,
        &[
            "extend",
            "--blob-obj-id",
            &object_id,
            "--epochs-extended",
            "3",
            "--json",
        ],
    );
    assert_eq!(extended["endEpoch"], 5);
}

/// `share` (the empty blob's object): it becomes a shared blob that `extend --shared`
/// extends and that can no longer be extended (or deleted) as an owned object; `store
/// --share` shares the new object at once and names it in the answer.
fn shared_blobs(d: &Path, s: &Stored) {
    let empty_object = s.empty_object.clone();
    let (ok, _, err) = run(
        d,
        &["share", "--blob-obj-id", &empty_object, "--amount", "5"],
    );
    assert!(!ok && err.contains("no funds"), "{err}");
    let shared = json(d, &["share", "--blob-obj-id", &empty_object, "--json"]);
    let shared_id = shared["sharedBlobObjectId"].as_str().unwrap().to_string();
    assert_eq!(shared["blobObjectId"], empty_object.as_str(), "{shared}");
    let extended = json(
        d,
        &[
            "extend",
            "--shared",
            "--blob-obj-id",
            &shared_id,
            "--epochs-extended",
            "1",
            "--json",
        ],
    );
    assert_eq!(extended["endEpoch"], 3);
    let (ok, _, err) = run(
        d,
        &[
            "extend",
            "--blob-obj-id",
            &empty_object,
            "--epochs-extended",
            "1",
        ],
    );
    assert!(!ok && err.contains("SHARED_BLOB"), "{err}");
    let (ok, _, err) = run(
        d,
        &[
            "fund-shared-blob",
            "--shared-blob-obj-id",
            &shared_id,
            "--amount",
            "1",
        ],
    );
    assert!(!ok && err.contains("charges nothing"), "{err}");
    // store --share: the new object is shared at once and named in the answer.
    std::fs::write(d.join("s.bin"), b"shared from the start").unwrap();
    let stored_shared = json(d, &["store", "s.bin", "--epochs", "1", "--share", "--json"]);
    let created = &stored_shared[0]["blobStoreResult"]["newlyCreated"];
    let shared_at_once = created["sharedBlobObject"]
        .as_str()
        .expect("sharedBlobObject");
    assert_ne!(
        shared_at_once,
        created["blobObject"]["id"].as_str().unwrap()
    );
    let extended = json(
        d,
        &[
            "extend",
            "--shared",
            "--blob-obj-id",
            shared_at_once,
            "--epochs-extended",
            "1",
            "--json",
        ],
    );
    assert!(extended["endEpoch"].is_number(), "{extended}");
}

/// `info`, and the testbed's daemon serving the same network over Walrus's HTTP API (a GET
/// of the stored blob, a PUT the CLI reads back); `health` lists every node.
fn the_daemon_serves_the_same_network(d: &Path, s: &Stored) {
    let (blob_id, payload) = (&s.blob_id, &s.payload);
    let info = json(d, &["info", "--json"]);
    assert_eq!(info["nShards"], 10);
    // The testbed's daemon serves the same network over Walrus's HTTP API.
    let daemon = info["daemonUrl"]
        .as_str()
        .expect("the testbed runs a daemon")
        .to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let (got, put) = rt.block_on(async {
        let got = http
            .get(format!("{daemon}/v1/blobs/{blob_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        let got = got.bytes().await.unwrap().to_vec();
        let put: Value = http
            .put(format!("{daemon}/v1/blobs?epochs=1"))
            .body(b"stored over HTTP".to_vec())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (got, put)
    });
    assert_eq!(&got, payload);
    let http_id = put["newlyCreated"]["blobObject"]["blobId"]
        .as_str()
        .unwrap_or_else(|| panic!("{put}"))
        .to_string();
    let out = floe(d).args(["read", &http_id]).output().unwrap();
    assert_eq!(out.stdout, b"stored over HTTP");
    let health = json(d, &["health", "--json"]);
    assert_eq!(health.as_array().unwrap().len(), 4);
    assert!(health[0]["health"]["nodeStatus"].is_string(), "{health}");
}

/// Delete, then reads say it is gone; a malformed ID is explained.
fn delete_and_bad_ids(d: &Path, s: &Stored) {
    let (blob_id, object_id) = (s.blob_id.clone(), s.object_id.clone());
    let deleted = json(d, &["delete", "--blob-ids", &blob_id, "--json"]);
    assert_eq!(deleted["deleted"][0]["objectId"], object_id.as_str());
    let (ok, _, err) = run(d, &["read", &blob_id]);
    assert!(!ok && err.contains("deleted"), "{err}");
    // A malformed ID is explained.
    let (ok, _, err) = run(d, &["read", "not-a-blob-id"]);
    assert!(!ok && err.contains("43 base64url"), "{err}");
}

/// The files a quilt is made of.
struct Site {
    html: Vec<u8>,
    css: Vec<u8>,
    bin: Vec<u8>,
}

/// A stored quilt of the site's two files.
struct StoredQuilt {
    quilt_id: String,
    object: String,
    css_patch_id: String,
}

/// `store-quilt` (paths and blobs, dry run), `list-patches-in-quilt` and `read-quilt` (by
/// identifiers, by tag, by patch ID) through real processes, and the refusals a user can meet,
/// as named steps on one testbed.
#[test]
fn quilts_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _bed = start_bed(d);
    let site = write_site(d);
    let predicted = a_dry_run_predicts_the_quilt(d);
    let q = store_a_quilt_of_paths(d, &predicted);
    owners_manage_the_quilts_attributes(d, &q.object);
    patches_are_listed_and_read(d, &q, &site);
    tagged_blobs_are_read_by_tag(d, &site);
    refusals_say_what_is_wrong(d, &q);
    read_quilt_out_never_writes_outside_its_directory(d);
}

/// `site/index.html`, `site/css/a.css` and `b.bin`.
fn write_site(d: &Path) -> Site {
    std::fs::create_dir_all(d.join("site/css")).unwrap();
    let html: Vec<u8> = (0..5_000u32).map(|i| (i % 251) as u8).collect();
    let css = b"body { color: teal }".to_vec();
    let bin: Vec<u8> = (0..30_000u32).map(|i| (i * 13 + 5) as u8).collect();
    std::fs::write(d.join("site/index.html"), &html).unwrap();
    std::fs::write(d.join("site/css/a.css"), &css).unwrap();
    std::fs::write(d.join("b.bin"), &bin).unwrap();
    Site { html, css, bin }
}

/// A dry run predicts the quilt ID and the index without a wallet or a store.
fn a_dry_run_predicts_the_quilt(d: &Path) -> String {
    let dry = json(
        d,
        &["store-quilt", "--paths", "site", "--dry-run", "--json"],
    );
    let predicted = dry["quiltBlobOutput"]["blobId"]
        .as_str()
        .unwrap()
        .to_string();
    let patches = dry["quiltIndex"]["v1"]["quiltPatches"].as_array().unwrap();
    let names: Vec<&str> = patches
        .iter()
        .map(|p| p["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.css", "index.html"], "file names, sorted");
    assert!(patches[0]["endIndex"].as_u64().unwrap() >= 2);
    predicted
}

/// Storing the site's files gives the predicted ID and a patch ID per file.
fn store_a_quilt_of_paths(d: &Path, predicted: &str) -> StoredQuilt {
    let stored = json(
        d,
        &["store-quilt", "--paths", "site", "--epochs", "2", "--json"],
    );
    let quilt_id = stored["blobStoreResult"]["newlyCreated"]["blobObject"]["blobId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(quilt_id, predicted);
    let stored_patches = stored["storedQuiltBlobs"].as_array().unwrap();
    assert_eq!(stored_patches.len(), 2);
    let css_patch_id = stored_patches[0]["quiltPatchId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(css_patch_id.len(), 50);
    assert_eq!(stored_patches[0]["identifier"], "a.css");
    assert!(stored_patches[0]["range"].is_array());
    let object = stored["blobStoreResult"]["newlyCreated"]["blobObject"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    StoredQuilt {
        quilt_id,
        object,
        css_patch_id,
    }
}

/// The quilt's object is marked as a quilt; its owner sets and removes attributes.
fn owners_manage_the_quilts_attributes(d: &Path, object: &str) {
    let attributes = json(d, &["get-blob-attribute", object, "--json"]);
    assert_eq!(attributes["_walrusBlobType"], "quilt");
    let (ok, _, err) = run(
        d,
        &[
            "set-blob-attribute",
            object,
            "--attr",
            "content-type",
            "text/css",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        d,
        &[
            "remove-blob-attribute-fields",
            object,
            "--keys",
            "_walrusBlobType",
        ],
    );
    assert!(ok, "{err}");
    let attributes = json(d, &["get-blob-attribute", object, "--json"]);
    assert_eq!(attributes, serde_json::json!({"content-type": "text/css"}));
    let (ok, _, err) = run(d, &["remove-blob-attribute", object]);
    assert!(ok, "{err}");
    assert_eq!(
        json(d, &["get-blob-attribute", object, "--json"]),
        serde_json::json!({})
    );
}

/// `list-patches-in-quilt`, `resolve-quilt`, and `read-quilt` by identifiers and by patch ID.
fn patches_are_listed_and_read(d: &Path, q: &StoredQuilt, site: &Site) {
    let listed = json(d, &["list-patches-in-quilt", &q.quilt_id, "--json"]);
    assert_eq!(listed[0]["patch_id"], q.css_patch_id.as_str());
    assert_eq!(listed[1]["identifier"], "index.html");
    let (ok, human, _) = run(d, &["resolve-quilt", &q.quilt_id]);
    assert!(ok && human.contains("index.html"), "{human}");

    let (ok, _, err) = run(
        d,
        &[
            "read-quilt",
            "--quilt-id",
            &q.quilt_id,
            "--identifiers",
            "index.html",
            "a.css",
            "--out",
            "out",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(d.join("out/index.html")).unwrap(), site.html);
    assert_eq!(std::fs::read(d.join("out/a.css")).unwrap(), site.css);
    // By patch ID, to standard output: no index needed.
    let out = floe(d)
        .args(["read-quilt", "--quilt-patch-ids", &q.css_patch_id])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, site.css);
}

/// --blobs: explicit identifiers and tags (a number tag is kept as its JSON text).
fn tagged_blobs_are_read_by_tag(d: &Path, site: &Site) {
    let stored = json(
        d,
        &[
            "store-quilt",
            "--blobs",
            r#"{"path":"b.bin","identifier":"bee","tags":{"type":"bin","n":3}}"#,
            r#"{"path":"site/index.html","tags":{"type":"html"}}"#,
            "--epochs",
            "1",
            "--json",
        ],
    );
    let tagged_id = stored["blobStoreResult"]["newlyCreated"]["blobObject"]["blobId"]
        .as_str()
        .unwrap()
        .to_string();
    let read = json(
        d,
        &[
            "read-quilt",
            "--quilt-id",
            &tagged_id,
            "--tag",
            "type",
            "bin",
            "--json",
        ],
    );
    assert_eq!(read.as_array().unwrap().len(), 1);
    assert_eq!(read[0]["identifier"], "bee");
    assert_eq!(read[0]["tags"]["n"], "3");
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .decode(read[0]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, site.bin);
}

/// Refusals, each with a message that says what is wrong.
fn refusals_say_what_is_wrong(d: &Path, q: &StoredQuilt) {
    let (ok, _, err) = run(d, &["store-quilt", "--paths", "site", "site", "--dry-run"]);
    assert!(!ok && err.contains("duplicate identifier"), "{err}");
    let (ok, _, err) = run(
        d,
        &[
            "store-quilt",
            "--blobs",
            r#"{"path":"b.bin","identifier":"b "}"#,
            "--dry-run",
        ],
    );
    assert!(!ok && err.contains("whitespace"), "{err}");
    for i in 0..7 {
        std::fs::write(d.join(format!("many-{i}")), [i as u8]).unwrap();
    }
    let many: Vec<String> = (0..7).map(|i| format!("many-{i}")).collect();
    let mut args = vec!["store-quilt", "--dry-run", "--paths"];
    args.extend(many.iter().map(String::as_str));
    let (ok, _, err) = run(d, &args);
    assert!(!ok && err.contains("too many patches"), "{err}");
    let (ok, _, err) = run(
        d,
        &[
            "read-quilt",
            "--quilt-id",
            &q.quilt_id,
            "--identifiers",
            "nope.txt",
        ],
    );
    assert!(!ok && err.contains("no patch \"nope.txt\""), "{err}");
    let (ok, _, err) = run(d, &["read-quilt", "--quilt-patch-ids", "AAAA"]);
    assert!(!ok && err.contains("33 bytes"), "{err}");
}

/// An identifier is any valid string, "../x" included: --out never writes outside DIR.
fn read_quilt_out_never_writes_outside_its_directory(d: &Path) {
    let stored = json(
        d,
        &[
            "store-quilt",
            "--blobs",
            r#"{"path":"b.bin","identifier":"../escaped"}"#,
            "--epochs",
            "1",
            "--json",
        ],
    );
    let sneaky = stored["storedQuiltBlobs"][0]["quiltPatchId"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, _, err) = run(
        d,
        &["read-quilt", "--quilt-patch-ids", &sneaky, "--out", "out2"],
    );
    assert!(!ok && err.contains("not a plain relative path"), "{err}");
    assert!(!d.join("escaped").exists());
}

/// `floe load` journals every operation as typed lines, and `floe load --verify` reads back
/// every blob the journal says was certified, with the bytes its seed determines.
#[test]
fn a_load_journal_is_verified_against_the_network() {
    use floe_bench::journal::{self, Line};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _bed = start_bed(d);
    let (ok, _, err) = run(
        d,
        &[
            "load",
            "--duration",
            "3s",
            "--workers",
            "2",
            "--daemon-workers",
            "0",
            "--max-size",
            "8KiB",
            "--epochs",
            "2",
            "--seed",
            "7",
            "--journal",
            "load.jsonl",
        ],
    );
    assert!(ok, "floe load failed: {err}");
    let lines: Vec<Line> = journal::read(&d.join("load.jsonl"))
        .unwrap()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert!(
        matches!(lines.first(), Some(Line::Start { seed, .. }) if seed == "0000000000000007"),
        "{:?}",
        lines.first()
    );
    let certified: std::collections::BTreeSet<String> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Store(op) if op.ok => op.blob_id.clone(),
            _ => None,
        })
        .collect();
    assert!(
        !certified.is_empty(),
        "no store succeeded in 3 s: {lines:?}"
    );
    match lines.last() {
        Some(Line::Summary {
            wrong, stores_ok, ..
        }) => {
            assert_eq!(*wrong, 0);
            assert!(*stores_ok >= certified.len() as u64);
        }
        other => panic!("the journal does not end with a summary: {other:?}"),
    }

    let (ok, _, err) = run(
        d,
        &[
            "load",
            "--verify",
            "load.jsonl",
            "--journal",
            "verify.jsonl",
        ],
    );
    assert!(ok, "floe load --verify failed: {err}");
    let verified = journal::read(&d.join("verify.jsonl")).unwrap();
    let summary = verified.iter().find_map(|(_, l)| match l {
        Line::VerifySummary {
            certified: c,
            read_back,
            lost,
            wrong,
            ..
        } => Some((*c, *read_back, *lost, *wrong)),
        _ => None,
    });
    let n = certified.len();
    assert_eq!(summary, Some((n, n as u64, 0, 0)), "{verified:?}");
}
