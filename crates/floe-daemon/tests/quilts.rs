//! Quilts through the daemon over real HTTP: multipart stores, patch reads with their headers,
//! and the refusals, against a local network (see `support`).

mod support;

use floe_client::Client;
use floe_core::ObjectId;
use floe_daemon::{DaemonOptions, Mode};
use reqwest::StatusCode;
use serde_json::Value;

use support::*;

/// A `multipart/form-data` body of `fields` (name, bytes), and its content type.
fn multipart(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "floe-test-boundary-7d1";
    let mut body = Vec::new();
    for (name, data) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn put_quilt(
    http: &reqwest::Client,
    url: String,
    fields: &[(&str, &[u8])],
) -> (StatusCode, Value) {
    let (content_type, body) = multipart(fields);
    let r = http
        .put(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A quilt stored through the daemon, and what later steps read back.
struct StoredQuilt {
    quilt_id: String,
    object: ObjectId,
    html_patch_id: String,
    html: Vec<u8>,
    bin: Vec<u8>,
}

/// A multipart store, the quilt's attributes, patch listing and reads with their headers, and
/// the refusals, as named steps on one network; then a daemon that shows every tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quilts_are_stored_from_multipart_and_patches_read_with_their_headers() {
    let seed = test_seed("quilts_are_stored_from_multipart_and_patches_read_with_their_headers");
    let (_dir, bed, client) = network().await;
    let http = reqwest::Client::new();
    let daemon = Daemon::start(
        &client,
        DaemonOptions {
            max_quilt_body_size: 64,
            ..DaemonOptions::default()
        },
    )
    .await;
    let q = a_multipart_put_stores_a_quilt_with_patches_sorted(&http, &daemon, seed).await;
    the_quilts_object_is_marked_and_allowed_attributes_become_headers(&client, &http, &daemon, &q)
        .await;
    patches_are_listed_with_non_string_tags_as_json_text(&http, &daemon, &q).await;
    patches_are_read_with_their_identifier_etag_and_allowed_tags(&http, &daemon, &q).await;
    missing_patches_and_bad_ids_are_refused(&http, &daemon, &q).await;
    bad_stores_are_refused_each_with_its_own_reason(&http, &daemon).await;
    daemon.shutdown().await;
    every_tag_is_a_header_when_tags_are_allowed_in_responses(&client, &http, &q).await;
    bed.shutdown().await;
}

/// A multipart PUT of two files and their metadata stores a quilt whose patches are sorted
/// by identifier, each with a range.
async fn a_multipart_put_stores_a_quilt_with_patches_sorted(
    http: &reqwest::Client,
    daemon: &Daemon,
    seed: u64,
) -> StoredQuilt {
    let html = data(seed, 4_000);
    let bin = data(seed + 1, 20_000);
    let metadata =
        br#"[{"identifier":"index.html","tags":{"content-type":"text/html","x-build":7}}]"#;
    let (status, stored) = put_quilt(
        http,
        daemon.at("/v1/quilts?epochs=2&quilt_version=V1"),
        &[
            ("index.html", &html),
            ("b.bin", &bin),
            ("_metadata", metadata),
        ],
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    let quilt_id = stored["blobStoreResult"]["newlyCreated"]["blobObject"]["blobId"]
        .as_str()
        .unwrap()
        .to_string();
    let patches = stored["storedQuiltBlobs"].as_array().unwrap();
    assert_eq!(patches.len(), 2);
    assert_eq!(patches[0]["identifier"], "b.bin", "sorted by identifier");
    let object: ObjectId = stored["blobStoreResult"]["newlyCreated"]["blobObject"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let html_patch_id = patches[1]["quiltPatchId"].as_str().unwrap().to_string();
    assert!(patches[1]["range"].is_array());
    StoredQuilt {
        quilt_id,
        object,
        html_patch_id,
        html,
        bin,
    }
}

/// The quilt's blob object is marked as a quilt (as Walrus), and attributes named in
/// --allowed-headers become headers of reads by object ID.
async fn the_quilts_object_is_marked_and_allowed_attributes_become_headers(
    client: &Client,
    http: &reqwest::Client,
    daemon: &Daemon,
    q: &StoredQuilt,
) {
    let object = &q.object;
    let attributes = client.blob_attributes(object).await.unwrap();
    assert_eq!(attributes["_walrusBlobType"], "quilt");
    client
        .set_blob_attributes(
            object,
            vec![
                ("content-type".into(), "application/x-quilt".into()),
                ("x-private".into(), "no".into()),
            ],
        )
        .await
        .unwrap();
    let r = http
        .get(daemon.at(&format!("/v1/blobs/by-object-id/{object}")))
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-quilt");
    assert!(r.headers().get("x-private").is_none());
    assert!(r.headers().get("_walrusblobtype").is_none());
}

/// The quilt's patches are listed with their IDs, non-string tags as JSON text.
async fn patches_are_listed_with_non_string_tags_as_json_text(
    http: &reqwest::Client,
    daemon: &Daemon,
    q: &StoredQuilt,
) {
    let listed: Value = http
        .get(daemon.at(&format!("/v1/quilts/{}/patches", q.quilt_id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[1]["patch_id"], q.html_patch_id.as_str());
    assert_eq!(
        listed[1]["tags"]["x-build"], "7",
        "non-string tags as JSON text"
    );
}

/// Patches read by patch ID and by quilt ID and identifier come with their bytes and headers.
async fn patches_are_read_with_their_identifier_etag_and_allowed_tags(
    http: &reqwest::Client,
    daemon: &Daemon,
    q: &StoredQuilt,
) {
    let StoredQuilt {
        quilt_id,
        html_patch_id,
        ..
    } = q;
    // By patch ID: the bytes, the identifier header, the quilt ID as ETag, and only the tags
    // named in --allowed-headers (content-type is, x-build is not).
    let r = http
        .get(daemon.at(&format!("/v1/blobs/by-quilt-patch-id/{html_patch_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-quilt-patch-identifier"], "index.html");
    assert_eq!(r.headers()["etag"], format!("\"{quilt_id}\"").as_str());
    assert_eq!(r.headers()["content-type"], "text/html");
    assert!(r.headers().get("x-build").is_none());
    assert_eq!(r.bytes().await.unwrap(), q.html);
    let r = http
        .get(daemon.at(&format!("/v1/blobs/by-quilt-id/{quilt_id}/b.bin")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-quilt-patch-identifier"], "b.bin");
    assert_eq!(r.bytes().await.unwrap(), q.bin);
}

/// A missing patch is not found and a malformed patch ID is a bad request, each with its
/// reason.
async fn missing_patches_and_bad_ids_are_refused(
    http: &reqwest::Client,
    daemon: &Daemon,
    q: &StoredQuilt,
) {
    let r = http
        .get(daemon.at(&format!("/v1/blobs/by-quilt-id/{}/nope", q.quilt_id)))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status.as_u16(), reason(&body)),
        (404, "QUILT_PATCH_NOT_FOUND")
    );
    let r = http
        .get(daemon.at("/v1/blobs/by-quilt-patch-id/AAAA"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status.as_u16(), reason(&body)),
        (400, "INVALID_QUILT_PATCH_ID")
    );
}

/// Refused stores, each with its own reason: bad fields, a body over the limit, and a body
/// that is not multipart.
async fn bad_stores_are_refused_each_with_its_own_reason(http: &reqwest::Client, daemon: &Daemon) {
    let url = daemon.at("/v1/quilts");
    let one: &[u8] = b"1";
    type Fields<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: Vec<(Fields<'_>, u16, &str)> = vec![
        (vec![("a", one), ("a", one)], 400, "DUPLICATE_IDENTIFIER"),
        (vec![("_metadata", b"[]")], 400, "NO_FILES"),
        (vec![("a ", one)], 400, "INVALID_IDENTIFIER"),
        (
            (0..7)
                .map(|i| (["f0", "f1", "f2", "f3", "f4", "f5", "f6"][i], one))
                .collect(),
            400,
            "TOO_MANY_PATCHES",
        ),
        (
            vec![("a", one), ("_metadata", br#"[{"identifier":"zz"}]"#)],
            400,
            "UNKNOWN_IDENTIFIER",
        ),
    ];
    for (fields, status, why) in cases {
        let (got, body) = put_quilt(http, url.clone(), &fields).await;
        assert_eq!((got.as_u16(), reason(&body)), (status, why), "{body}");
    }
    let big = vec![0u8; 70 * 1024];
    let (got, body) = put_quilt(http, url.clone(), &[("big", &big)]).await;
    assert_eq!((got.as_u16(), reason(&body)), (413, "BODY_TOO_LARGE"));
    let (got, body) = put(http, url.clone(), b"raw".to_vec()).await;
    assert_eq!((got.as_u16(), reason(&body)), (400, "INVALID_MULTIPART"));
}

/// With --allow-quilt-patch-tags-in-response every tag is a header.
async fn every_tag_is_a_header_when_tags_are_allowed_in_responses(
    client: &Client,
    http: &reqwest::Client,
    q: &StoredQuilt,
) {
    let open = Daemon::start(
        client,
        DaemonOptions {
            mode: Mode::Aggregator,
            allow_quilt_patch_tags_in_response: true,
            ..DaemonOptions::default()
        },
    )
    .await;
    let r = http
        .get(open.at(&format!("/v1/blobs/by-quilt-patch-id/{}", q.html_patch_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-build"], "7");
    open.shutdown().await;
}
