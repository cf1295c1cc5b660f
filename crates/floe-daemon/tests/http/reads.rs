//! The aggregator side: stores and reads with ranges, headers, limits, CORS and metrics.

use super::*;

/// A blob ID that is never stored.
const MISSING: floe_core::BlobId = floe_core::BlobId([9; 32]);

/// One stored blob: its ID, its blob object's ID and its bytes.
struct Blob {
    id: String,
    object: String,
    bytes: Vec<u8>,
}

/// What storing leaves for the steps after it: blobs of 0, 1 and 1 MiB bytes.
struct Stored {
    empty: Blob,
    one: Blob,
    big: Blob,
}

impl Stored {
    /// The blobs in the order they were stored.
    fn all(&self) -> [&Blob; 3] {
        [&self.empty, &self.one, &self.big]
    }
}

/// Stores and reads through one daemon, as named steps on one network.
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

    status_and_api_description_are_served(&http, &daemon).await;
    a_never_stored_blob_is_not_found(&http, &daemon).await;
    let s = blobs_of_0_1_and_1_mib_bytes_round_trip(&http, &daemon, seed).await;
    the_same_bytes_again_are_already_certified(&http, &daemon, &s).await;
    the_content_type_mirrors_a_concrete_accept(&http, &daemon, &s).await;
    range_headers_are_served_and_bad_ones_refused(&http, &daemon, &s).await;
    the_byte_range_route_serves_slices_and_refuses_bad_arguments(&http, &daemon, &s).await;
    unknown_and_misspelt_query_parameters_are_refused(&http, &daemon, &s).await;
    blobs_are_read_by_object_id_and_bad_ids_refused(&http, &daemon, &s).await;
    every_blob_streams_with_its_length_announced(&http, &daemon, &s).await;
    blobs_are_concatenated_by_blob_and_object_id(&http, &daemon, &s).await;
    a_body_over_the_limit_is_refused_before_storing(&http, &daemon).await;
    cors_preflights_are_answered(&http, &daemon).await;
    an_aggregator_with_a_size_limit_refuses_large_whole_reads(&http, &client, &s).await;
    metrics_count_requests_and_time_stores_and_reads(&http, &daemon, &s).await;

    daemon.shutdown().await;
    bed.shutdown().await;
}

/// `/status` answers OK and `/v1/api` describes the store route.
async fn status_and_api_description_are_served(http: &reqwest::Client, daemon: &Daemon) {
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
}

/// Never stored: 404 BLOB_NOT_FOUND, not cacheable.
async fn a_never_stored_blob_is_not_found(http: &reqwest::Client, daemon: &Daemon) {
    let r = http
        .get(daemon.at(&format!("/v1/blobs/{MISSING}")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::NOT_FOUND, "BLOB_NOT_FOUND")
    );
}

/// Round trips of 0, 1 and 1 MiB bytes.
async fn blobs_of_0_1_and_1_mib_bytes_round_trip(
    http: &reqwest::Client,
    daemon: &Daemon,
    seed: u64,
) -> Stored {
    Stored {
        empty: a_blob_round_trips_with_its_headers(http, daemon, data(seed, 0)).await,
        one: a_blob_round_trips_with_its_headers(http, daemon, data(seed + 1, 1)).await,
        big: a_blob_round_trips_with_its_headers(http, daemon, data(seed + 2, 1 << 20)).await,
    }
}

/// A new blob is stored for two epochs and read back whole with its caching headers.
async fn a_blob_round_trips_with_its_headers(
    http: &reqwest::Client,
    daemon: &Daemon,
    bytes: Vec<u8>,
) -> Blob {
    let len = bytes.len();
    let (status, result) = put(http, daemon.at("/v1/blobs?epochs=2"), bytes.clone()).await;
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
    Blob {
        id: blob_id,
        object: object["id"].as_str().unwrap().to_string(),
        bytes,
    }
}

/// The same bytes again: already certified, through the publisher's own object.
async fn the_same_bytes_again_are_already_certified(
    http: &reqwest::Client,
    daemon: &Daemon,
    s: &Stored,
) {
    let (status, again) = put(http, daemon.at("/v1/blobs"), s.one.bytes.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["alreadyCertified"]["blobId"],
        s.one.id.as_str(),
        "{again}"
    );
    assert_eq!(again["alreadyCertified"]["object"], s.one.object.as_str());
}

/// The content type mirrors a concrete Accept.
async fn the_content_type_mirrors_a_concrete_accept(
    http: &reqwest::Client,
    daemon: &Daemon,
    s: &Stored,
) {
    let r = http
        .get(daemon.at(&format!("/v1/blobs/{}", s.one.id)))
        .header("accept", "image/png")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
}

/// `Range` headers: closed, suffix and open ranges get 206; past the end gets 416; several
/// ranges are ignored.
async fn range_headers_are_served_and_bad_ones_refused(
    http: &reqwest::Client,
    daemon: &Daemon,
    s: &Stored,
) {
    let (big_id, big) = (&s.big.id, &s.big.bytes);
    let size = big.len();
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
        .get(daemon.at(&format!("/v1/blobs/{}", s.empty.id)))
        .header("range", "bytes=0-0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["content-range"], "bytes */0");
}

/// The byte-range route serves a slice and refuses empty, open, past-the-end and misspelt
/// ranges with 400.
async fn the_byte_range_route_serves_slices_and_refuses_bad_arguments(
    http: &reqwest::Client,
    daemon: &Daemon,
    s: &Stored,
) {
    let big_id = &s.big.id;
    let r = http
        .get(daemon.at(&format!(
            "/v1/blobs/{big_id}/byte-range?start=5000&length=70000"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &s.big.bytes[5000..75000]);
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
}

/// Unknown query parameters on reads and stores are refused with INVALID_QUERY.
async fn unknown_and_misspelt_query_parameters_are_refused(
    http: &reqwest::Client,
    daemon: &Daemon,
    s: &Stored,
) {
    let r = http
        .get(daemon.at(&format!("/v1/blobs/{}?strict=true", s.big.id)))
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
    let (status, body) = put(http, daemon.at("/v1/blobs?epoch=5"), b"typo".to_vec()).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
        "{body}"
    );
}

/// By object ID; consistency flags; bad IDs.
async fn blobs_are_read_by_object_id_and_bad_ids_refused(
    http: &reqwest::Client,
    daemon: &Daemon,
    s: &Stored,
) {
    let (big_id, big_object) = (&s.big.id, &s.big.object);
    let r = http
        .get(daemon.at(&format!(
            "/v1/blobs/by-object-id/{big_object}?strict_consistency_check=true"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], format!("\"{big_id}\""));
    assert_eq!(r.bytes().await.unwrap().as_ref(), s.big.bytes.as_slice());
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
}

/// Streaming: every blob in order, its length announced up front; a missing one is 404.
async fn every_blob_streams_with_its_length_announced(
    http: &reqwest::Client,
    daemon: &Daemon,
    s: &Stored,
) {
    // (The times are printed, not checked: time to the first byte against the whole stream.)
    for Blob { id, bytes, .. } in s.all() {
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
        .get(daemon.at(&format!("/v1alpha/blobs/{MISSING}/stream")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::NOT_FOUND, "BLOB_NOT_FOUND")
    );
}

/// Concatenation by blob ID and blob object ID, with GET and POST; missing blobs, unknown
/// parameters, clashing flags and bad IDs are refused.
async fn blobs_are_concatenated_by_blob_and_object_id(
    http: &reqwest::Client,
    daemon: &Daemon,
    s: &Stored,
) {
    let big_id = &s.big.id;
    let mut want = s.one.bytes.clone();
    want.extend_from_slice(&s.big.bytes);
    want.extend_from_slice(&s.empty.bytes);
    let ids = [s.one.id.clone(), s.big.object.clone(), s.empty.id.clone()];
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
            format!("/v1alpha/blobs/concat?ids={big_id},{MISSING}"),
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
}

/// A body over the limit: 413 saying the limit, before anything is stored.
async fn a_body_over_the_limit_is_refused_before_storing(http: &reqwest::Client, daemon: &Daemon) {
    let (status, body) = put(http, daemon.at("/v1/blobs"), vec![1; 2048 * 1024 + 1]).await;
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
}

/// A CORS preflight is allowed from any origin and may be cached for a day.
async fn cors_preflights_are_answered(http: &reqwest::Client, daemon: &Daemon) {
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
}

/// An aggregator with a size limit: whole reads above it get 403, small ranges pass; it
/// stores nothing.
async fn an_aggregator_with_a_size_limit_refuses_large_whole_reads(
    http: &reqwest::Client,
    client: &Client,
    s: &Stored,
) {
    let big_id = &s.big.id;
    let aggregator = Daemon::start(
        client,
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
    assert_eq!(r.bytes().await.unwrap().as_ref(), &s.big.bytes[..100]);
    let (status, _) = put(http, aggregator.at("/v1/blobs"), vec![1]).await;
    assert!(status.is_client_error(), "{status}");
    aggregator.shutdown().await;
}

/// Metrics count requests by route and status, and time stores and reads.
async fn metrics_count_requests_and_time_stores_and_reads(
    http: &reqwest::Client,
    daemon: &Daemon,
    s: &Stored,
) {
    let text = text_of(http, daemon.at("/metrics")).await;
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
    assert!(value("floe_daemon_served_bytes_total") >= s.big.bytes.len() as u64);
}
