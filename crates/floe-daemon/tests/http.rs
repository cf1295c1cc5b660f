//! The daemon over real HTTP against a local network: a ledger and seven storage nodes on
//! loopback sockets (n = 10 shards, f = 3).

mod support;

use floe_client::{Client, ClientConfig};
use floe_daemon::auth::{Claims, mint};
use floe_daemon::{DaemonOptions, JwtAlgorithm, Mode};
use floe_ledger::AccountKey;
use floe_ledger::api_types::ObjectResponse;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_and_reads_with_ranges_headers_limits_cors_and_metrics() {
    let seed = test_seed("stores_and_reads_with_ranges_headers_limits_cors_and_metrics");
    let (_dir, bed, client) = network().await;
    let http = reqwest::Client::new();
    let daemon = Daemon::start(
        &client,
        DaemonOptions {
            max_body_size: 2048,
            ..DaemonOptions::default()
        },
    )
    .await;

    let r = http.get(daemon.at("/status")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "OK");
    let api: Value = http
        .get(daemon.at("/v1/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(api["paths"]["/v1/blobs"]["put"].is_object());

    // Never stored: 404 BLOB_NOT_FOUND, not cacheable.
    let missing = floe_core::BlobId([9; 32]);
    let r = http
        .get(daemon.at(&format!("/v1/blobs/{missing}")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::NOT_FOUND, "BLOB_NOT_FOUND")
    );

    // Round trips of 0, 1 and 1 MiB bytes.
    let mut stored = Vec::new();
    for (k, len) in [0usize, 1, 1 << 20].into_iter().enumerate() {
        let bytes = data(seed + k as u64, len);
        let (status, result) = put(&http, daemon.at("/v1/blobs?epochs=2"), bytes.clone()).await;
        assert_eq!(status, StatusCode::OK, "{result}");
        let object = &result["newlyCreated"]["blobObject"];
        assert_eq!(object["size"], len as u64, "{result}");
        assert_eq!(object["deletable"], true);
        assert!(object["certifiedEpoch"].is_number());
        assert!(result["newlyCreated"]["resourceOperation"]["registerFromScratch"].is_object());
        let blob_id = object["blobId"].as_str().unwrap().to_string();
        let r = http
            .get(daemon.at(&format!("/v1/blobs/{blob_id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers().clone();
        assert_eq!(h["etag"], format!("\"{blob_id}\""));
        assert_eq!(
            h["cache-control"],
            "public, max-age=86400, stale-while-revalidate=3600"
        );
        assert_eq!(h["accept-ranges"], "bytes");
        // Announced up front, also when the body is sent as the slivers it arrived in.
        assert_eq!(h["content-length"], len.to_string());
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["content-type"], "application/octet-stream");
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            bytes.as_slice(),
            "size {len}"
        );
        stored.push((blob_id, object["id"].as_str().unwrap().to_string(), bytes));
    }
    let (big_id, big_object, big) = stored[2].clone();
    let size = big.len();

    // The same bytes again: already certified, through the publisher's own object.
    let (status, again) = put(&http, daemon.at("/v1/blobs"), stored[1].2.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["alreadyCertified"]["blobId"],
        stored[1].0.as_str(),
        "{again}"
    );
    assert_eq!(again["alreadyCertified"]["object"], stored[1].1.as_str());

    // The content type mirrors a concrete Accept.
    let r = http
        .get(daemon.at(&format!("/v1/blobs/{}", stored[1].0)))
        .header("accept", "image/png")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");

    // Ranges: closed, suffix and open ones get 206 with the right bytes and Content-Range.
    let blob_url = daemon.at(&format!("/v1/blobs/{big_id}"));
    for (header, start, end) in [
        ("bytes=100-199", 100, 199),
        ("bytes=-10", size - 10, size - 1),
        (&*format!("bytes={}-", size - 6), size - 6, size - 1),
        ("bytes=1000-99999999", 1000, size - 1),
    ] {
        let r = http
            .get(&blob_url)
            .header("range", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{header}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {start}-{end}/{size}"),
            "{header}"
        );
        assert_eq!(r.headers()["etag"], format!("\"{big_id}\""));
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            &big[start..=end],
            "{header}"
        );
    }
    // Past the end: 416 naming the size; several ranges: ignored (the whole blob).
    let r = http
        .get(&blob_url)
        .header("range", "bytes=2000000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-range"], format!("bytes */{size}"));
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::RANGE_NOT_SATISFIABLE, "INVALID_BYTE_RANGE")
    );
    let r = http
        .get(&blob_url)
        .header("range", "bytes=0-1,5-6")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), size);
    let r = http
        .get(daemon.at(&format!("/v1/blobs/{}", stored[0].0)))
        .header("range", "bytes=0-0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["content-range"], "bytes */0");

    // The byte-range route.
    let r = http
        .get(daemon.at(&format!(
            "/v1/blobs/{big_id}/byte-range?start=5000&length=70000"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &big[5000..75000]);
    // Past the end is a bad argument on this route (400, as Walrus's spec declares), unlike
    // the `Range` header's 416; unknown parameters are refused.
    for (query, want) in [
        ("start=5&length=0", "INVALID_BYTE_RANGE"),
        ("start=5", "INVALID_BYTE_RANGE"),
        ("start=1048570&length=7", "INVALID_BYTE_RANGE"),
        ("start=5&length=1&lenght=2", "INVALID_BYTE_RANGE"),
    ] {
        let r = http
            .get(daemon.at(&format!("/v1/blobs/{big_id}/byte-range?{query}")))
            .send()
            .await
            .unwrap();
        let (status, body) = error_of(r).await;
        assert_eq!(
            (status, reason(&body)),
            (StatusCode::BAD_REQUEST, want),
            "{query}: {body}"
        );
        assert_eq!(
            body["error"]["details"][0]["domain"], "daemon.walrus.space",
            "{body}"
        );
        assert!(
            body["error"]["details"][0]["metadata"].is_object(),
            "{body}"
        );
    }
    let r = http
        .get(daemon.at(&format!("/v1/blobs/{big_id}?strict=true")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
        "{body}"
    );
    // A misspelt lifetime (`epoch` for `epochs`) is refused, not stored for the default.
    let (status, body) = put(&http, daemon.at("/v1/blobs?epoch=5"), b"typo".to_vec()).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
        "{body}"
    );

    // By object ID; consistency flags; bad IDs.
    let r = http
        .get(daemon.at(&format!(
            "/v1/blobs/by-object-id/{big_object}?strict_consistency_check=true"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], format!("\"{big_id}\""));
    assert_eq!(r.bytes().await.unwrap().as_ref(), big.as_slice());
    let r = http
        .get(daemon.at(&format!("/v1/blobs/by-object-id/0x{}", "00".repeat(32))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for path in [
        format!("/v1/blobs/{big_id}?strict_consistency_check=true&skip_consistency_check=true"),
        "/v1/blobs/not-a-blob-id".to_string(),
        "/v1/blobs/by-object-id/0xzz".to_string(),
    ] {
        let r = http.get(daemon.at(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    // Short object IDs, as Sui writes them, are left-padded: `0x1` is a (missing) object.
    let r = http
        .get(daemon.at("/v1/blobs/by-object-id/0x1"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::NOT_FOUND, "BLOB_NOT_FOUND"),
        "{body}"
    );

    // Streaming: every blob in order, its length announced up front. (The times are printed,
    // not checked: time to the first byte against the whole stream.)
    for (id, _, bytes) in &stored {
        let started = std::time::Instant::now();
        let mut r = http
            .get(daemon.at(&format!("/v1alpha/blobs/{id}/stream")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-length"], bytes.len().to_string());
        let mut got = Vec::new();
        let mut first_byte = None;
        while let Some(chunk) = r.chunk().await.unwrap() {
            first_byte.get_or_insert(started.elapsed());
            got.extend_from_slice(&chunk);
        }
        println!(
            "stream of {} bytes: first byte after {:?}, all after {:?}",
            bytes.len(),
            first_byte,
            started.elapsed()
        );
        assert_eq!(got, *bytes, "stream of {} bytes", bytes.len());
    }
    let r = http
        .get(daemon.at(&format!("/v1alpha/blobs/{missing}/stream")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::NOT_FOUND, "BLOB_NOT_FOUND")
    );

    // Concatenation by blob ID and blob object ID, with GET and POST.
    let mut want = stored[1].2.clone();
    want.extend_from_slice(&big);
    want.extend_from_slice(&stored[0].2);
    let ids = [stored[1].0.clone(), big_object.clone(), stored[0].0.clone()];
    let r = http
        .get(daemon.at(&format!("/v1alpha/blobs/concat?ids={}", ids.join(","))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], want.len().to_string());
    assert_eq!(r.bytes().await.unwrap().as_ref(), want.as_slice());
    let r = http
        .post(daemon.at("/v1alpha/blobs/concat"))
        .json(&serde_json::json!({"ids": ids, "strict_consistency_check": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), want.as_slice());
    for (path, code, why) in [
        (
            format!("/v1alpha/blobs/concat?ids={big_id},{missing}"),
            StatusCode::NOT_FOUND,
            "BLOB_NOT_FOUND",
        ),
        (
            format!("/v1alpha/blobs/concat?ids={big_id}&idz=1"),
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY",
        ),
        (
            format!(
                "/v1alpha/blobs/concat?ids={big_id}&strict_consistency_check=true&skip_consistency_check=true"
            ),
            StatusCode::BAD_REQUEST,
            "INVALID_CONSISTENCY_OPTIONS",
        ),
        (
            "/v1alpha/blobs/concat?ids=nonsense".to_string(),
            StatusCode::BAD_REQUEST,
            "INVALID_ID",
        ),
    ] {
        let r = http.get(daemon.at(&path)).send().await.unwrap();
        let (status, body) = error_of(r).await;
        assert_eq!((status, reason(&body)), (code, why), "{path}: {body}");
    }

    // A body over the limit: 413 saying the limit, before anything is stored.
    let (status, body) = put(&http, daemon.at("/v1/blobs"), vec![1; 2048 * 1024 + 1]).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2048 KiB"),
        "{body}"
    );

    // CORS preflight.
    let r = http
        .request(reqwest::Method::OPTIONS, daemon.at("/v1/blobs"))
        .header("origin", "https://example.com")
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["access-control-max-age"], "86400");
    assert!(r.headers().contains_key("access-control-allow-methods"));

    // An aggregator with a size limit: whole reads above it get 403, small ranges pass; it
    // stores nothing.
    let aggregator = Daemon::start(
        &client,
        DaemonOptions {
            mode: Mode::Aggregator,
            max_blob_size: Some(1000),
            ..DaemonOptions::default()
        },
    )
    .await;
    let r = http
        .get(aggregator.at(&format!("/v1/blobs/{big_id}")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::FORBIDDEN, "BLOB_TOO_LARGE")
    );
    let r = http
        .get(aggregator.at(&format!("/v1/blobs/{big_id}")))
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &big[..100]);
    let (status, _) = put(&http, aggregator.at("/v1/blobs"), vec![1]).await;
    assert!(status.is_client_error(), "{status}");
    aggregator.shutdown().await;

    // Metrics count requests by route and status, and time stores and reads.
    let text = text_of(&http, daemon.at("/metrics")).await;
    let value = |prefix: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{prefix} missing in\n{text}"))
    };
    assert_eq!(
        value(r#"floe_daemon_requests_total{method="PUT",route="/v1/blobs",status="200"}"#),
        4
    );
    assert_eq!(
        value(r#"floe_daemon_requests_total{method="PUT",route="/v1/blobs",status="413"}"#),
        1
    );
    assert!(
        value(
            r#"floe_daemon_requests_total{method="GET",route="/v1/blobs/{blob_id}",status="206"}"#
        ) >= 4
    );
    assert_eq!(
        value(r#"floe_daemon_store_duration_seconds_count{outcome="newly_created"}"#),
        3
    );
    assert!(value(r#"floe_daemon_read_duration_seconds_count{kind="full",outcome="ok"}"#) >= 3);
    assert!(value("floe_daemon_served_bytes_total") >= big.len() as u64);

    daemon.shutdown().await;
    bed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_sends_and_shares_objects_authenticates_and_reports_missing_confirmations() {
    let seed = test_seed(
        "deletes_sends_and_shares_objects_authenticates_and_reports_missing_confirmations",
    );
    let (_dir, mut bed, client) = network().await;
    let http = reqwest::Client::new();
    let daemon = Daemon::start(
        &client,
        DaemonOptions {
            enable_delete: true,
            ..DaemonOptions::default()
        },
    )
    .await;

    // Delete by blob ID, then reads say it was deleted.
    let (_, r) = put(&http, daemon.at("/v1/blobs"), data(seed, 3000)).await;
    let object = &r["newlyCreated"]["blobObject"];
    let blob_id = object["blobId"].as_str().unwrap().to_string();
    let object_id = object["id"].as_str().unwrap().to_string();
    let r = http
        .delete(daemon.at(&format!("/v1/blobs/{blob_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let deleted: Value = r.json().await.unwrap();
    assert_eq!(
        deleted["deletedObjects"][0],
        object_id.as_str(),
        "{deleted}"
    );
    assert_eq!(deleted["blobStatus"]["status"], "deleted", "{deleted}");
    let r = http
        .get(daemon.at(&format!("/v1/blobs/{blob_id}")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::NOT_FOUND, "BLOB_NOT_FOUND")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deleted"),
        "{body}"
    );
    let r = http
        .get(daemon.at(&format!("/v1/blobs/by-object-id/{object_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http
        .delete(daemon.at(&format!("/v1/blobs/{blob_id}")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::NOT_FOUND, "NOT_OWNED")
    );

    // Permanent blobs are not deleted; deletion by object ID.
    let (_, r) = put(
        &http,
        daemon.at("/v1/blobs?permanent=true"),
        data(seed + 1, 100),
    )
    .await;
    assert_eq!(r["newlyCreated"]["blobObject"]["deletable"], false, "{r}");
    let permanent_id = r["newlyCreated"]["blobObject"]["blobId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .delete(daemon.at(&format!("/v1/blobs/{permanent_id}")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::CONFLICT, "NOT_DELETABLE")
    );
    let (_, r) = put(&http, daemon.at("/v1/blobs"), data(seed + 2, 100)).await;
    let object_id = r["newlyCreated"]["blobObject"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .delete(daemon.at(&format!("/v1/blobs/by-object-id/{object_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .delete(daemon.at(&format!("/v1/blobs/by-object-id/{object_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // send_object_to: the recipient owns the new object; the publisher no longer does.
    let recipient = AccountKey::from_seed(&[42; 32]).address();
    let (status, r) = put(
        &http,
        daemon.at(&format!("/v1/blobs?send_object_to={recipient}")),
        data(seed + 3, 5000),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let sent = r["newlyCreated"]["blobObject"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let account = client.ledger().account(&recipient).await.unwrap();
    assert!(
        account.blobs.iter().any(|b| b.id.to_string() == sent),
        "{account:?}"
    );
    let sent_blob = r["newlyCreated"]["blobObject"]["blobId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .get(daemon.at(&format!("/v1/blobs/{sent_blob}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        data(seed + 3, 5000).as_slice()
    );
    let r = http
        .delete(daemon.at(&format!("/v1/blobs/{sent_blob}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, _) = put(&http, daemon.at("/v1/blobs?send_object_to=0x12"), vec![1]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // share=true: the new blob object is wrapped into a shared blob, named in the answer; it
    // reads by its own object ID, anyone may extend it, and nobody may delete it.
    let (status, r) = put(
        &http,
        daemon.at("/v1/blobs?share=true&epochs=2"),
        data(seed + 4, 3000),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let created = &r["newlyCreated"];
    let shared = created["sharedBlobObject"]
        .as_str()
        .expect("sharedBlobObject");
    let wrapped = created["blobObject"]["id"].as_str().unwrap();
    assert_ne!(shared, wrapped);
    let shared_blob_id = created["blobObject"]["blobId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .get(daemon.at(&format!("/v1/blobs/by-object-id/{shared}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        data(seed + 4, 3000).as_slice()
    );
    // The dashboard looks a shared blob up by its ID too, showing the blob it wraps.
    let page = text_of(&http, daemon.at(&format!("/dashboard/blob/{shared}"))).await;
    assert!(page.contains(&shared_blob_id), "{page}");
    let r = http
        .delete(daemon.at(&format!("/v1/blobs/{shared_blob_id}")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("SHARED_BLOB"), "{body}");
    let stranger = Client::new(
        ClientConfig {
            ledger_url: client.config().ledger_url.clone(),
            ..ClientConfig::default()
        },
        Some(AccountKey::from_seed(&[43; 32])),
    )
    .unwrap();
    let shared_id: floe_core::ObjectId = shared.parse().unwrap();
    let before = client.ledger().object(&shared_id).await.unwrap();
    let Some(ObjectResponse::SharedBlob(before)) = before else {
        panic!("{before:?} is not a shared blob")
    };
    let end = stranger.extend_shared(&shared_id, 3).await.unwrap();
    assert_eq!(end, before.blob.end_epoch() + 3);
    assert!(matches!(
        stranger.extend_shared(&wrapped.parse().unwrap(), 1).await,
        Err(floe_client::ClientError::NotSharedBlob(_))
    ));
    let (status, _) = put(
        &http,
        daemon.at(&format!("/v1/blobs?share=true&send_object_to={recipient}")),
        vec![1],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Load shedding: with one store running and no waiting room, a second concurrent store is
    // refused at once with 429 (a store takes at least the 100 ms upload tail).
    let narrow = Daemon::start(
        &client,
        DaemonOptions {
            mode: Mode::Publisher,
            publisher_max_concurrent_requests: 1,
            publisher_max_buffer_size: 0,
            ..DaemonOptions::default()
        },
    )
    .await;
    let (a, b) = tokio::join!(
        put(&http, narrow.at("/v1/blobs"), data(seed + 7, 50_000)),
        put(&http, narrow.at("/v1/blobs"), data(seed + 8, 50_000)),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS],
        "{a:?} {b:?}"
    );
    narrow.shutdown().await;

    // A publisher requiring tokens.
    let secret = "test-secret";
    let authed = Daemon::start(
        &client,
        DaemonOptions {
            mode: Mode::Publisher,
            jwt_decode_secret: Some(secret.into()),
            jwt_verify_upload: true,
            ..DaemonOptions::default()
        },
    )
    .await;
    let token = |claims: Claims| mint(JwtAlgorithm::Hs256, secret.as_bytes(), &claims);
    let put_with = |auth: Option<String>, body: Vec<u8>| {
        let mut req = http.put(authed.at("/v1/blobs")).body(body);
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let r = put_with(None, data(seed + 4, 200)).await.unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    let valid = Claims {
        exp: now() + 600,
        jti: Some("token-1".into()),
        max_size: Some(1000),
        ..Claims::default()
    };
    let r = put_with(Some(token(valid.clone())), data(seed + 4, 200))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The same token ID again: replayed.
    let r = put_with(Some(token(valid.clone())), data(seed + 4, 200))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let expired = Claims {
        exp: now() - 10,
        ..Claims::default()
    };
    let r = put_with(Some(token(expired)), data(seed + 4, 200))
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    let too_big = Claims {
        jti: Some("token-2".into()),
        ..valid.clone()
    };
    let r = put_with(Some(token(too_big)), data(seed + 5, 2000))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let forged = mint(JwtAlgorithm::Hs256, b"another secret", &valid);
    let r = put_with(Some(forged), data(seed + 4, 200)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    authed.shutdown().await;

    // With too few nodes up, a store cannot certify: 504 naming the node errors.
    for i in 0..bed.node_count() {
        bed.stop_node(i).await;
    }
    let (status, body) = put(&http, daemon.at("/v1/blobs"), data(seed + 6, 1000)).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::GATEWAY_TIMEOUT, "INSUFFICIENT_CONFIRMATIONS"),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("node-"),
        "{body}"
    );

    daemon.shutdown().await;
    tokio::time::timeout(Duration::from_secs(20), bed.shutdown())
        .await
        .unwrap();
}
