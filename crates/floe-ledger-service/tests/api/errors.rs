//! Errors: every refusal is a 4xx in the error envelope with its reason, framework-level
//! errors included.

use super::*;

/// Every kind of refusal on one server, as named steps: each answers the right 4xx with an error
/// envelope (never a panic or a 5xx) and leaves the ledger as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_4xx_with_error_envelopes() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let alice = AccountKey::from_seed(&seed("alice", 1));
    let mallory = AccountKey::from_seed(&seed("mallory", 1));

    let blob = synthetic_blob(300, 4096);
    let good = alice.sign(0, register_kind(blob, 4, true));
    let good_json = serde_json::to_value(&good).unwrap();

    bodies_that_are_not_transactions_are_malformed(&server).await;
    unknown_fields_kinds_and_bad_signature_lengths_are_malformed(&server, &good_json).await;
    a_body_over_512_kib_is_too_large_and_none_reached_the_ledger(&server, &good_json).await;
    forged_and_stolen_signatures_are_unauthorized(&server, &alice, &mallory, &good, blob).await;
    let object = too_high_and_replayed_sequences_conflict(&server, &alice, &good, blob).await;
    a_non_owner_cannot_delete_and_keeps_its_sequence(&server, &mallory, object).await;
    weak_or_misaddressed_certificates_are_refused(&server, &net, &alice, blob, object).await;
    a_blob_id_that_does_not_match_its_derivation_is_refused(&server, &alice, blob).await;
    // The blob is still only registered, and alice's sequence is 1.
    let st = server.get_ok(&format!("/v1/blobs/{}", blob.0)).await;
    assert_eq!(st["status"]["status"], "registered");
    assert_eq!(server.next_sequence(&alice).await, 1);

    bad_path_parameters_are_bad_requests(&server).await;
    bad_event_queries_are_bad_requests(&server).await;
    unknown_routes_are_not_found(&server).await;

    // The server is still healthy and nothing was logged but the one registration.
    let health = server.get_ok("/v1/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["entries"], 1);

    server.shutdown().await;
}

/// Malformed JSON, valid JSON of the wrong shape and an empty body are malformed transactions.
async fn bodies_that_are_not_transactions_are_malformed(server: &Server) {
    // Malformed JSON.
    assert_error(
        server.post_raw(&b"{\"tx\": {"[..]).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    assert_error(
        server.post_raw(&b"not json at all"[..]).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Valid JSON, wrong shape.
    assert_error(
        server.post_json(&json!({"tx": 1, "signature": "00"})).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    assert_error(
        server.post_json(&json!([1, 2, 3])).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Empty body.
    assert_error(
        server.post_raw(Vec::<u8>::new()).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
}

/// A good transaction's JSON with an unknown field, kind or a short signature is malformed.
async fn unknown_fields_kinds_and_bad_signature_lengths_are_malformed(
    server: &Server,
    good_json: &Value,
) {
    // Unknown top-level field.
    let mut extra = good_json.clone();
    extra["extra"] = json!(true);
    assert_error(
        server.post_json(&extra).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Unknown field in tx.
    let mut extra = good_json.clone();
    extra["tx"]["gasBudget"] = json!(1000);
    assert_error(
        server.post_json(&extra).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Unknown field nested in tx.kind.
    let mut extra = good_json.clone();
    extra["tx"]["kind"]["reserveAndRegister"]["bogus"] = json!(1);
    assert_error(
        server.post_json(&extra).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Unknown transaction kind.
    let mut extra = good_json.clone();
    extra["tx"]["kind"] = json!({"mintMoney": {"amount": 1}});
    assert_error(
        server.post_json(&extra).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
    // Signature of the wrong length.
    let mut extra = good_json.clone();
    extra["signature"] = json!("abcd");
    assert_error(
        server.post_json(&extra).await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_TRANSACTION",
    );
}

/// A large but well-formed body is too large; no malformed body so far reached the ledger.
async fn a_body_over_512_kib_is_too_large_and_none_reached_the_ledger(
    server: &Server,
    good_json: &Value,
) {
    let mut huge = good_json.clone();
    huge["padding"] = json!("x".repeat(600 * 1024));
    assert_error(
        server.post_json(&huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "BODY_TOO_LARGE",
    );
    // None of the above reached the ledger.
    assert_eq!(server.get_ok("/v1/health").await["entries"], 0);
}

/// A signature with one bit flipped, or by another key over the same transaction, is refused.
async fn forged_and_stolen_signatures_are_unauthorized(
    server: &Server,
    alice: &AccountKey,
    mallory: &AccountKey,
    good: &SignedTransaction,
    blob: (BlobId, [u8; 32], u64),
) {
    // Bad signature: one bit flipped.
    let mut forged = good.clone();
    forged.signature[10] ^= 0x01;
    assert_error(
        server.post_tx(&forged).await,
        StatusCode::UNAUTHORIZED,
        "BAD_SIGNATURE",
    );
    // A signature by another key over the same transaction.
    let mut stolen = mallory.sign(0, register_kind(blob, 4, true));
    stolen.tx.sender = alice.public_key();
    assert_error(
        server.post_tx(&stolen).await,
        StatusCode::UNAUTHORIZED,
        "BAD_SIGNATURE",
    );
}

/// A too-high sequence conflicts; then the good registration is accepted. Sent again (its
/// answer lost, say), the same transaction is answered with its first outcome, not applied
/// twice; a different transaction with the used sequence number conflicts.
async fn too_high_and_replayed_sequences_conflict(
    server: &Server,
    alice: &AccountKey,
    good: &SignedTransaction,
    blob: (BlobId, [u8; 32], u64),
) -> ObjectId {
    assert_error(
        server
            .post_tx(&alice.sign(5, register_kind(blob, 4, true)))
            .await,
        StatusCode::CONFLICT,
        "BAD_SEQUENCE",
    );
    let registered = server.submit_ok(good).await;
    let object = registered_object(&registered);
    let again = server.submit_ok(good).await;
    assert_eq!(again, registered, "the first outcome, once more");
    assert_eq!(server.next_sequence(alice).await, 1, "applied once");
    assert_error(
        server
            .post_tx(&alice.sign(0, register_kind(blob, 5, true)))
            .await,
        StatusCode::CONFLICT,
        "BAD_SEQUENCE",
    );
    object
}

/// Deleting another account's blob is refused without consuming the sender's sequence number.
async fn a_non_owner_cannot_delete_and_keeps_its_sequence(
    server: &Server,
    mallory: &AccountKey,
    object: ObjectId,
) {
    assert_error(
        server
            .post_tx(&mallory.sign(
                0,
                TxKind::DeleteBlob {
                    blob_object: object,
                },
            ))
            .await,
        StatusCode::FORBIDDEN,
        "NOT_OWNER",
    );
    // Rejections do not consume the sender's sequence number.
    assert_eq!(server.next_sequence(mallory).await, 0);
}

/// An under-weight certificate, one for another object, and one for a missing object are refused.
async fn weak_or_misaddressed_certificates_are_refused(
    server: &Server,
    net: &TestNet,
    alice: &AccountKey,
    blob: (BlobId, [u8; 32], u64),
    object: ObjectId,
) {
    // Under-weight certificate: signed by members holding fewer than n − f shards.
    let quorum = net.quorum();
    let mut signers = net.signers_with_weight(quorum);
    signers.pop();
    let weight: usize = signers
        .iter()
        .map(|&i| net.genesis_state.committee().members[i].shards.len())
        .sum();
    assert!(weight < usize::from(quorum));
    let weak = net.certificate(blob.0, object, true, 0, &signers);
    assert_error(
        server
            .post_tx(&alice.sign(
                1,
                TxKind::CertifyBlob {
                    blob_object: object,
                    certificate: weak,
                },
            ))
            .await,
        StatusCode::BAD_REQUEST,
        "BAD_CERTIFICATE",
    );
    // A quorum certificate for another blob object.
    let other = net.quorum_certificate(blob.0, ObjectId([9; 32]), true);
    assert_error(
        server
            .post_tx(&alice.sign(
                1,
                TxKind::CertifyBlob {
                    blob_object: object,
                    certificate: other,
                },
            ))
            .await,
        StatusCode::BAD_REQUEST,
        "BAD_CERTIFICATE",
    );
    // Certifying a missing object.
    assert_error(
        server
            .post_tx(&alice.sign(
                1,
                TxKind::CertifyBlob {
                    blob_object: ObjectId([9; 32]),
                    certificate: net.quorum_certificate(blob.0, ObjectId([9; 32]), true),
                },
            ))
            .await,
        StatusCode::NOT_FOUND,
        "NO_SUCH_OBJECT",
    );
}

/// Registering the blob's ID with another blob's root and size is `BLOB_ID_MISMATCH`.
async fn a_blob_id_that_does_not_match_its_derivation_is_refused(
    server: &Server,
    alice: &AccountKey,
    blob: (BlobId, [u8; 32], u64),
) {
    let (_, root, size) = synthetic_blob(301, 10);
    assert_error(
        server
            .post_tx(&alice.sign(
                1,
                TxKind::ReserveAndRegister {
                    end_epoch: 3,
                    blob_id: blob.0,
                    root_hash: root,
                    size,
                    encoding_type: EncodingType::RS2,
                    deletable: false,
                },
            ))
            .await,
        StatusCode::BAD_REQUEST,
        "BLOB_ID_MISMATCH",
    );
}

/// Unparsable blob IDs, object IDs and addresses in the path are bad requests.
async fn bad_path_parameters_are_bad_requests(server: &Server) {
    for bad in ["not-a-blob-id", "0x1234", "%20", "zzzz"] {
        assert_error(
            server.get(&format!("/v1/blobs/{bad}")).await,
            StatusCode::BAD_REQUEST,
            "BAD_BLOB_ID",
        );
    }
    assert_error(
        server.get("/v1/objects/0xzz").await,
        StatusCode::BAD_REQUEST,
        "BAD_OBJECT_ID",
    );
    assert_error(
        server.get("/v1/accounts/alice").await,
        StatusCode::BAD_REQUEST,
        "BAD_ADDRESS",
    );
}

/// Unparsable or unknown query parameters on `/v1/events` are `BAD_QUERY`.
async fn bad_event_queries_are_bad_requests(server: &Server) {
    for q in [
        "cursor=abc",
        "limit=-1",
        "waitMs=soon",
        "cursor=1.5",
        "unknownParam=1",
    ] {
        assert_error(
            server.get(&format!("/v1/events?{q}")).await,
            StatusCode::BAD_REQUEST,
            "BAD_QUERY",
        );
    }
}

/// Paths no route matches are `NO_SUCH_ROUTE`.
async fn unknown_routes_are_not_found(server: &Server) {
    for path in ["/v1/nope", "/", "/v2/health", "/v1/blobs", "/v1/blobs/a/b"] {
        assert_error(
            server.get(path).await,
            StatusCode::NOT_FOUND,
            "NO_SUCH_ROUTE",
        );
    }
}

/// Errors raised by axum's own extractors and router, outside the handlers' error mapping.
/// Known gap in `src/api.rs` (reported): `GET /v1/entries/abc` answers a plain-text 400 from the
/// `Path<u64>` extractor, and a wrong method on a known route answers 405 with an empty body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_level_errors_use_the_error_envelope() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let mut failures = Vec::new();

    // A non-numeric entry index (the `Path<u64>` extractor).
    let got = server.get("/v1/entries/abc").await;
    if !(got.0.is_client_error() && got.1.get("error").is_some()) {
        failures.push(format!("GET /v1/entries/abc -> {} {}", got.0, got.1));
    }
    // A known route with the wrong method.
    let resp = server
        .client
        .get(server.url("/v1/transactions"))
        .send()
        .await
        .unwrap();
    let got = split(resp).await;
    if !(got.0.is_client_error() && got.1.get("error").is_some()) {
        failures.push(format!("GET /v1/transactions -> {} {}", got.0, got.1));
    }
    let resp = server
        .client
        .post(server.url("/v1/health"))
        .send()
        .await
        .unwrap();
    let got = split(resp).await;
    if !(got.0.is_client_error() && got.1.get("error").is_some()) {
        failures.push(format!("POST /v1/health -> {} {}", got.0, got.1));
    }
    server.shutdown().await;
    assert!(
        failures.is_empty(),
        "answers without an error envelope:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The epoch clock.
// ---------------------------------------------------------------------------------------------
