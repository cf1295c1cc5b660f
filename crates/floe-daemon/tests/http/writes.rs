//! The publisher side: deletes, sends and shares objects, authenticates, and reports a store
//! left without confirmations.

use super::*;

/// A shared blob made by a store with `share=true`.
struct Shared {
    /// The shared blob's own object ID.
    object: String,
    /// The ID of the blob object wrapped inside it.
    wrapped: String,
}

/// Deleting, sending, sharing, load shedding, tokens and too few nodes, as named steps on one
/// network.
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

    a_blob_deleted_by_blob_id_reads_as_deleted(&http, &daemon, seed).await;
    permanent_blobs_are_kept_and_others_deleted_by_object_id(&http, &daemon, seed).await;
    let recipient = a_blob_sent_to_a_recipient_is_theirs(&http, &daemon, &client, seed).await;
    let shared = a_shared_blob_reads_by_its_object_and_is_never_deleted(&http, &daemon, seed).await;
    anyone_may_extend_a_shared_blob_but_not_a_wrapped_one(&client, &shared).await;
    sharing_and_sending_in_one_store_is_refused(&http, &daemon, recipient).await;
    a_second_concurrent_store_is_shed_with_429(&http, &client, seed).await;
    a_publisher_requiring_tokens_refuses_bad_ones(&http, &client, seed).await;
    too_few_nodes_leave_a_store_without_confirmations(&http, &daemon, &mut bed, seed).await;

    daemon.shutdown().await;
    tokio::time::timeout(Duration::from_secs(20), bed.shutdown())
        .await
        .unwrap();
}

/// Delete by blob ID, then reads say it was deleted and deleting again finds nothing owned.
async fn a_blob_deleted_by_blob_id_reads_as_deleted(
    http: &reqwest::Client,
    daemon: &Daemon,
    seed: u64,
) {
    let (_, r) = put(http, daemon.at("/v1/blobs"), data(seed, 3000)).await;
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
}

/// Permanent blobs are not deleted; deletion by object ID.
async fn permanent_blobs_are_kept_and_others_deleted_by_object_id(
    http: &reqwest::Client,
    daemon: &Daemon,
    seed: u64,
) {
    let (_, r) = put(
        http,
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
    let (_, r) = put(http, daemon.at("/v1/blobs"), data(seed + 2, 100)).await;
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
}

/// send_object_to: the recipient owns the new object; the publisher no longer does.
async fn a_blob_sent_to_a_recipient_is_theirs(
    http: &reqwest::Client,
    daemon: &Daemon,
    client: &Client,
    seed: u64,
) -> Address {
    let recipient = AccountKey::from_seed(&[42; 32]).address();
    let (status, r) = put(
        http,
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
    let (status, _) = put(http, daemon.at("/v1/blobs?send_object_to=0x12"), vec![1]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    recipient
}

/// share=true: the new blob object is wrapped into a shared blob, named in the answer; it
/// reads by its own object ID and nobody may delete it.
async fn a_shared_blob_reads_by_its_object_and_is_never_deleted(
    http: &reqwest::Client,
    daemon: &Daemon,
    seed: u64,
) -> Shared {
    let (status, r) = put(
        http,
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
    let page = text_of(http, daemon.at(&format!("/dashboard/blob/{shared}"))).await;
    assert!(page.contains(&shared_blob_id), "{page}");
    let r = http
        .delete(daemon.at(&format!("/v1/blobs/{shared_blob_id}")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("SHARED_BLOB"), "{body}");
    Shared {
        object: shared.to_string(),
        wrapped: wrapped.to_string(),
    }
}

/// Anyone may extend a shared blob, but a wrapped blob object is not a shared blob.
async fn anyone_may_extend_a_shared_blob_but_not_a_wrapped_one(client: &Client, shared: &Shared) {
    let stranger = Client::new(
        ClientConfig {
            ledger_url: client.config().ledger_url.clone(),
            ..ClientConfig::default()
        },
        Some(AccountKey::from_seed(&[43; 32])),
    )
    .unwrap();
    let shared_id: floe_core::ObjectId = shared.object.parse().unwrap();
    let before = client.ledger().object(&shared_id).await.unwrap();
    let Some(ObjectResponse::SharedBlob(before)) = before else {
        panic!("{before:?} is not a shared blob")
    };
    let end = stranger.extend_shared(&shared_id, 3).await.unwrap();
    assert_eq!(end, before.blob.end_epoch() + 3);
    assert!(matches!(
        stranger
            .extend_shared(&shared.wrapped.parse().unwrap(), 1)
            .await,
        Err(floe_client::ClientError::NotSharedBlob(_))
    ));
}

/// A store cannot both share its blob and send the object to someone.
async fn sharing_and_sending_in_one_store_is_refused(
    http: &reqwest::Client,
    daemon: &Daemon,
    recipient: Address,
) {
    let (status, _) = put(
        http,
        daemon.at(&format!("/v1/blobs?share=true&send_object_to={recipient}")),
        vec![1],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Load shedding: with one store running and no waiting room, a second concurrent store is
/// refused at once with 429 (a store takes at least the 100 ms upload tail).
async fn a_second_concurrent_store_is_shed_with_429(
    http: &reqwest::Client,
    client: &Client,
    seed: u64,
) {
    let narrow = Daemon::start(
        client,
        DaemonOptions {
            mode: Mode::Publisher,
            publisher_max_concurrent_requests: 1,
            publisher_max_buffer_size: 0,
            ..DaemonOptions::default()
        },
    )
    .await;
    let (a, b) = tokio::join!(
        put(http, narrow.at("/v1/blobs"), data(seed + 7, 50_000)),
        put(http, narrow.at("/v1/blobs"), data(seed + 8, 50_000)),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS],
        "{a:?} {b:?}"
    );
    narrow.shutdown().await;
}

/// A publisher requiring tokens refuses a store without one, or with one that is replayed,
/// expired, too small for the body or forged.
async fn a_publisher_requiring_tokens_refuses_bad_ones(
    http: &reqwest::Client,
    client: &Client,
    seed: u64,
) {
    let secret = "test-secret";
    let authed = Daemon::start(
        client,
        DaemonOptions {
            mode: Mode::Publisher,
            jwt_decode_secret: Some(secret.into()),
            jwt_verify_upload: true,
            ..DaemonOptions::default()
        },
    )
    .await;
    let token = |claims: Claims| mint(JwtAlgorithm::Hs256, secret.as_bytes(), &claims);
    let put_with = |auth, body| put_with_token(http, &authed, auth, body);
    let r = put_with(None, data(seed + 4, 200)).await;
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
    let r = put_with(Some(token(valid.clone())), data(seed + 4, 200)).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The same token ID again: replayed.
    let r = put_with(Some(token(valid.clone())), data(seed + 4, 200)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let expired = Claims {
        exp: now() - 10,
        ..Claims::default()
    };
    let r = put_with(Some(token(expired)), data(seed + 4, 200)).await;
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
    let r = put_with(Some(token(too_big)), data(seed + 5, 2000)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let forged = mint(JwtAlgorithm::Hs256, b"another secret", &valid);
    let r = put_with(Some(forged), data(seed + 4, 200)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    authed.shutdown().await;
}

/// `PUT /v1/blobs` on `daemon` with `auth` as the bearer token, if any.
async fn put_with_token(
    http: &reqwest::Client,
    daemon: &Daemon,
    auth: Option<String>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = http.put(daemon.at("/v1/blobs")).body(body);
    if let Some(t) = auth {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// With too few nodes up, a store cannot certify: 504 naming the node errors.
async fn too_few_nodes_leave_a_store_without_confirmations(
    http: &reqwest::Client,
    daemon: &Daemon,
    bed: &mut Testbed,
    seed: u64,
) {
    for i in 0..bed.node_count() {
        bed.stop_node(i).await;
    }
    let (status, body) = put(http, daemon.at("/v1/blobs"), data(seed + 6, 1000)).await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::GATEWAY_TIMEOUT, "INSUFFICIENT_CONFIRMATIONS"),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("node-"),
        "{body}"
    );
}
