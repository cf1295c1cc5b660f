//! A real ledger and a real storage node on loopback sockets, with real on-disk storage: the
//! upload flow, every rejection, confirmations, certification, restart, recovery symbols and
//! inconsistency attestations.

use std::time::Duration;

use floe_core::recovery::{GeneralRecoverySymbol, InconsistencyProof, Recovered, recover_sliver};
use floe_core::sliver::metadata_from_slivers;
use floe_core::{
    BlobId, EncodingConfig, EncodingType, Sliver, SliverData, SliverIndex, SliverPairIndex,
    SliverType, encode,
};
use floe_crypto::{
    BlobPersistenceType, Certificate, CommitteeMember, CommitteeWeights, Confirmation,
    SignedMessage,
};
use floe_ledger::{AccountKey, TxKind};
use floe_ledger_client::{AccountSession, LedgerClient};
use floe_node::config::Limits;
use floe_node::node::SliverBatch;
use serde_json::Value;

mod single;
use single::*;

async fn register(
    ledger: &LedgerClient,
    user: &AccountSession,
    e: &floe_core::EncodedBlob,
    size: u64,
    deletable: bool,
) -> floe_core::ObjectId {
    let r = user
        .submit(TxKind::ReserveAndRegister {
            end_epoch: 5,
            blob_id: e.blob_id(),
            root_hash: e.metadata().metadata.root_hash(),
            size,
            encoding_type: EncodingType::RS2,
            deletable,
        })
        .await
        .unwrap();
    let _ = ledger;
    r.events
        .iter()
        .find_map(|ev| match &ev.kind {
            floe_ledger::EventKind::BlobRegistered { object_id, .. } => Some(*object_id),
            _ => None,
        })
        .unwrap()
}

/// The blob the upload test stores, and its encoding.
struct Upload {
    config: EncodingConfig,
    data: Vec<u8>,
    e: floe_core::EncodedBlob,
    id: BlobId,
}

/// The whole upload path on one node, as named steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_confirm_certify_restart_and_reject() {
    let mut net = Net::new().await;
    let ledger = LedgerClient::new(net.ledger_url.clone());
    let user = AccountSession::new(AccountKey::from_seed(&seed("user", 0)), ledger.clone());
    let config = EncodingConfig::new(N).unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 256) as u8).collect();
    let e = encode(&config, &data).unwrap();
    let u = Upload {
        id: e.blob_id(),
        config,
        data,
        e,
    };
    metadata_before_registration_is_refused_or_buffered(&net, &u).await;
    let object = registration_flushes_the_buffered_metadata(&net, &ledger, &user, &u).await;
    bad_slivers_are_refused_with_their_reason(&net, &u).await;
    slivers_are_stored_one_at_a_time_and_in_a_batch(&net, &u).await;
    let signed = the_node_confirms_with_a_signature_that_verifies(&net, &u).await;
    certification_is_reported_by_the_node(&net, &user, object, signed, &u).await;
    recovery_symbols_verify_and_rebuild_a_sliver(&net, &u).await;
    health_metrics_and_the_api_document_are_served(&net).await;
    a_restarted_node_still_serves_its_slivers(&mut net, &u).await;
}

/// Before registration metadata is refused, or buffered with `?pending=true`; garbage and
/// lying metadata are refused.
async fn metadata_before_registration_is_refused_or_buffered(net: &Net, u: &Upload) {
    let (config, e, id) = (&u.config, &u.e, u.id);
    let meta_bytes = bcs::to_bytes(&e.metadata().metadata).unwrap();
    let (s, v) = net
        .put(&format!("/v1/blobs/{id}/metadata"), meta_bytes.clone())
        .await;
    assert_eq!((s, reason(&v).as_str()), (400, "NOT_REGISTERED"), "{v}");
    let (s, _) = net
        .put(
            &format!("/v1/blobs/{id}/metadata?pending=true"),
            meta_bytes.clone(),
        )
        .await;
    assert_eq!(s, 202);
    let (_, v) = net
        .get_json(&format!("/v1/blobs/{id}/metadata/status"))
        .await;
    assert_eq!(v["success"]["data"], "buffered");
    let (s, v) = net
        .put(&format!("/v1/blobs/{id}/metadata"), vec![1, 2, 3])
        .await;
    assert_eq!((s, reason(&v).as_str()), (400, "INVALID_BODY"));
    let other = bcs::to_bytes(&encode(config, b"other").unwrap().metadata().metadata).unwrap();
    let (s, v) = net.put(&format!("/v1/blobs/{id}/metadata"), other).await;
    assert_eq!((s, reason(&v).as_str()), (400, "INVALID_METADATA"));
}

/// Registration flushes the buffered metadata, which the node then serves.
async fn registration_flushes_the_buffered_metadata(
    net: &Net,
    ledger: &LedgerClient,
    user: &AccountSession,
    u: &Upload,
) -> floe_core::ObjectId {
    let (e, id) = (&u.e, u.id);
    let object = register(ledger, user, e, u.data.len() as u64, false).await;
    net.wait_status(&id, |d| d.get("permanent").is_some()).await;
    // The buffered metadata was flushed on registration.
    let (_, v) = net
        .get_json(&format!("/v1/blobs/{id}/metadata/status"))
        .await;
    assert_eq!(v["success"]["data"], "stored");
    let (s, bytes) = net.get_bytes(&format!("/v1/blobs/{id}/metadata")).await;
    assert_eq!(s, 200);
    assert_eq!(
        bcs::from_bytes::<floe_core::BlobMetadataWithId>(&bytes).unwrap(),
        *e.metadata()
    );
    object
}

/// Confirmation waits for every sliver; bad slivers are refused with their reason.
async fn bad_slivers_are_refused_with_their_reason(net: &Net, u: &Upload) {
    let (config, e, id) = (&u.config, &u.e, u.id);
    // Confirmation is refused until every sliver is stored.
    let (s, v) = net
        .get_json(&format!("/v1/blobs/{id}/confirmation/permanent"))
        .await;
    assert_eq!((s, reason(&v).as_str()), (400, "MISSING_SLIVERS"), "{v}");

    let pair0 = e.sliver_pair(SliverPairIndex(0));
    let mut bad = pair0.primary.clone();
    bad.symbols[0] ^= 1;
    let (s, v) = net
        .put(
            &format!("/v1/blobs/{id}/slivers/0/primary"),
            bcs::to_bytes(&bad).unwrap(),
        )
        .await;
    assert_eq!((s, reason(&v).as_str()), (400, "INVALID_SLIVER"));
    let (s, v) = net
        .put(
            &format!("/v1/blobs/{id}/slivers/1/primary"),
            bcs::to_bytes(&pair0.primary).unwrap(),
        )
        .await;
    assert_eq!((s, reason(&v).as_str()), (400, "SLIVER_INDEX_MISMATCH"));
    let (s, v) = net
        .put(
            &format!("/v1/blobs/{id}/slivers/{N}/primary"),
            bcs::to_bytes(&pair0.primary).unwrap(),
        )
        .await;
    assert_eq!((s, reason(&v).as_str()), (400, "INDEX_OUT_OF_RANGE"));
    let (s, v) = net
        .put(&format!("/v1/blobs/{id}/slivers/0/sideways"), vec![])
        .await;
    assert_eq!((s, reason(&v).as_str()), (400, "INVALID_SLIVER_TYPE"));
    let (s, v) = net
        .put(&format!("/v1/blobs/{id}/slivers/0/primary"), vec![0xff; 7])
        .await;
    assert_eq!((s, reason(&v).as_str()), (400, "INVALID_BODY"));
    let (s, v) = net
        .put(
            &format!("/v1/blobs/{id}/slivers/0/primary"),
            vec![0; 2 << 20],
        )
        .await;
    assert_eq!((s, reason(&v).as_str()), (413, "BODY_TOO_LARGE"));
    let unregistered = encode(config, b"never registered").unwrap();
    let (s, v) = net
        .put(
            &format!("/v1/blobs/{}/slivers/0/primary", unregistered.blob_id()),
            bcs::to_bytes(&unregistered.sliver_pair(SliverPairIndex(0)).primary).unwrap(),
        )
        .await;
    assert_eq!((s, reason(&v).as_str()), (400, "NOT_REGISTERED"));
}

/// Pair 0 one sliver at a time (a repeat is "already stored"), the rest in one batch.
async fn slivers_are_stored_one_at_a_time_and_in_a_batch(net: &Net, u: &Upload) {
    let (e, id) = (&u.e, u.id);
    let pair0 = e.sliver_pair(SliverPairIndex(0));
    let (s, _) = net
        .put(
            &format!("/v1/blobs/{id}/slivers/0/primary"),
            bcs::to_bytes(&pair0.primary).unwrap(),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = net
        .put(
            &format!("/v1/blobs/{id}/slivers/0/primary"),
            bcs::to_bytes(&pair0.primary).unwrap(),
        )
        .await;
    assert_eq!(s, 200, "a repeated upload is 'already stored'");
    let (s, _) = net
        .put(
            &format!("/v1/blobs/{id}/slivers/0/secondary"),
            bcs::to_bytes(&pair0.secondary).unwrap(),
        )
        .await;
    assert_eq!(s, 201);
    let batch = SliverBatch {
        version: 1,
        slivers: (1..N)
            .flat_map(|k| {
                let p = e.sliver_pair(SliverPairIndex(k));
                [
                    (SliverPairIndex(k), Sliver::Primary(p.primary)),
                    (SliverPairIndex(k), Sliver::Secondary(p.secondary)),
                ]
            })
            .collect(),
    };
    let (s, v) = net
        .put(
            &format!("/v1/blobs/{id}/slivers"),
            bcs::to_bytes(&batch).unwrap(),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["success"]["data"]["stored"], 2 * (N as u64 - 1));
    // The batch's body buffer is kept for the next upload (freed only after a whole idle
    // period, 1 s here, without uploads).
    let kept = kept_upload_bytes(net).await;
    assert!(kept > 0, "the batch's buffer was not kept");
    let (s, bytes) = net
        .get_bytes(&format!("/v1/blobs/{id}/slivers/3/secondary"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        bcs::from_bytes::<SliverData>(&bytes).unwrap(),
        e.sliver_pair(SliverPairIndex(3)).secondary
    );
}

/// Now the node confirms; the signature verifies over the exact 40-byte message.
async fn the_node_confirms_with_a_signature_that_verifies(net: &Net, u: &Upload) -> SignedMessage {
    let id = u.id;
    let (s, v) = net
        .get_json(&format!("/v1/blobs/{id}/confirmation/permanent"))
        .await;
    assert_eq!(s, 200, "{v}");
    let signed: SignedMessage =
        serde_json::from_value(v["success"]["data"]["signed"].clone()).unwrap();
    signed
        .verify_confirmation(
            net.key.public_key(),
            0,
            &id,
            &BlobPersistenceType::Permanent,
        )
        .unwrap();
    assert_eq!(
        signed.serialized_message,
        Confirmation::new(0, id, BlobPersistenceType::Permanent).to_bytes()
    );
    signed
}

/// Certified on the ledger, the blob is reported certified by the node.
async fn certification_is_reported_by_the_node(
    net: &Net,
    user: &AccountSession,
    object: floe_core::ObjectId,
    signed: SignedMessage,
    u: &Upload,
) {
    let id = u.id;
    let weights = CommitteeWeights::new(
        vec![CommitteeMember {
            public_key: *net.key.public_key(),
            weight: N,
        }],
        N,
    )
    .unwrap();
    let cert = Certificate::aggregate(&weights, &[(0, signed)]).unwrap();
    user.submit(TxKind::CertifyBlob {
        blob_object: object,
        certificate: cert,
    })
    .await
    .unwrap();
    let st = net
        .wait_status(&id, |d| d["permanent"]["isCertified"] == true)
        .await;
    assert_eq!(st["permanent"]["endEpoch"], 5);
}

/// Recovery symbols for primary sliver 2 all verify against the metadata, and recovering the
/// sliver from them gives the original; a request naming no symbol is refused.
async fn recovery_symbols_verify_and_rebuild_a_sliver(net: &Net, u: &Upload) {
    let (config, e, id) = (&u.config, &u.e, u.id);
    let (s, bytes) = net
        .get_bytes(&format!(
            "/v1/blobs/{id}/recoverySymbols?targetSliver=2&targetType=primary"
        ))
        .await;
    assert_eq!(s, 200);
    let symbols: Vec<GeneralRecoverySymbol> = bcs::from_bytes(&bytes).unwrap();
    assert_eq!(symbols.len(), N as usize);
    match recover_sliver(
        config,
        &e.metadata().metadata,
        SliverType::Primary,
        SliverIndex(2),
        symbols,
    )
    .unwrap()
    {
        Recovered::Sliver(s) => assert_eq!(s, e.sliver(SliverType::Primary, SliverIndex(2))),
        Recovered::Inconsistent(_) => panic!("consistent blob"),
    }
    let (s, v) = net
        .get_json(&format!("/v1/blobs/{id}/recoverySymbols"))
        .await;
    assert_eq!((s, reason(&v).as_str()), (400, "NO_SYMBOLS_SPECIFIED"));
}

/// Health, metrics and the API document.
async fn health_metrics_and_the_api_document_are_served(net: &Net) {
    let (s, v) = net.get_json("/v1/health?detailed=true").await;
    assert_eq!(s, 200);
    assert_eq!(v["success"]["data"]["shardSummary"]["owned"], N);
    let metrics = metrics(net).await;
    assert!(
        metrics.contains("floe_node_slivers_stored_total 20"),
        "{metrics}"
    );
    // The upload buffer kept since the batch is freed once the node has been idle for its
    // period (1–2 s after the last upload).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let kept = kept_upload_bytes(net).await;
        if kept == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the idle node still keeps {kept} bytes of upload buffers after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (s, v) = net.get_json("/v1/api").await;
    assert_eq!((s, v["openapi"].as_str()), (200, Some("3.1.0")));
}

/// The node's `/metrics` text.
async fn metrics(net: &Net) -> String {
    let (s, body) = net.get_bytes("/metrics").await;
    assert_eq!(s, 200);
    String::from_utf8(body).expect("metrics are text")
}

/// The node's `floe_node_upload_buffers_kept_bytes` gauge.
async fn kept_upload_bytes(net: &Net) -> u64 {
    let metrics = metrics(net).await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("floe_node_upload_buffers_kept_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no upload buffer gauge in:\n{metrics}"))
}

/// Restarted on the same directory, the node still serves what it stored.
async fn a_restarted_node_still_serves_its_slivers(net: &mut Net, u: &Upload) {
    let (e, id) = (&u.e, u.id);
    net.restart_node().await;
    let r = reqwest::get(format!("{}/v1/blobs/{id}/slivers/7/primary", net.node_url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got: SliverData = bcs::from_bytes(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(got, e.sliver_pair(SliverPairIndex(7)).primary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inconsistency_proofs_are_attested_only_when_valid() {
    let net = Net::new().await;
    let ledger = LedgerClient::new(net.ledger_url.clone());
    let user = AccountSession::new(AccountKey::from_seed(&seed("user", 1)), ledger.clone());
    let config = EncodingConfig::new(N).unwrap();
    let data = vec![42u8; 3000];
    let honest = encode(&config, &data).unwrap();
    // A malicious encoding: primary sliver 1 altered, metadata computed from what is sent.
    let mut primary: Vec<SliverData> = (0..N)
        .map(|i| honest.sliver(SliverType::Primary, SliverIndex(i)))
        .collect();
    let secondary: Vec<SliverData> = (0..N)
        .map(|i| honest.sliver(SliverType::Secondary, SliverIndex(i)))
        .collect();
    primary[1].symbols[3] ^= 0x77;
    let bad_meta = metadata_from_slivers(&config, data.len() as u64, &primary, &secondary).unwrap();
    let id = bad_meta.blob_id;
    user.submit(TxKind::ReserveAndRegister {
        end_epoch: 5,
        blob_id: id,
        root_hash: bad_meta.metadata.root_hash(),
        size: data.len() as u64,
        encoding_type: EncodingType::RS2,
        deletable: true,
    })
    .await
    .unwrap();
    net.wait_status(&id, |d| d.get("deletable").is_some()).await;
    let (s, _) = net
        .put(
            &format!("/v1/blobs/{id}/metadata"),
            bcs::to_bytes(&bad_meta.metadata).unwrap(),
        )
        .await;
    assert_eq!(s, 201);
    // The column symbols of row 1, proven against the published metadata, expose the lie.
    let symbols: Vec<GeneralRecoverySymbol> = secondary
        .iter()
        .map(|s| {
            floe_core::SymbolSource::new(&config, SliverType::Secondary, s)
                .unwrap()
                .symbol_for(SliverIndex(1))
                .unwrap()
        })
        .collect();
    let Recovered::Inconsistent(proof) = recover_sliver(
        &config,
        &bad_meta.metadata,
        SliverType::Primary,
        SliverIndex(1),
        symbols,
    )
    .unwrap() else {
        panic!("the tampered row must be proven inconsistent")
    };
    let r = net
        .http
        .post(format!(
            "{}/v1/blobs/{id}/inconsistencyProof/primary",
            net.node_url
        ))
        .body(bcs::to_bytes(&proof).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let signed: SignedMessage = serde_json::from_value(v["success"]["data"].clone()).unwrap();
    signed
        .verify_invalid_blob_id(net.key.public_key(), 0, &id)
        .unwrap();
    // A proof claimed on the wrong axis, or truncated, is refused.
    let r = net
        .http
        .post(format!(
            "{}/v1/blobs/{id}/inconsistencyProof/secondary",
            net.node_url
        ))
        .body(bcs::to_bytes(&proof).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let mut short: InconsistencyProof = proof.clone();
    short.symbols.pop();
    let r = net
        .http
        .post(format!(
            "{}/v1/blobs/{id}/inconsistencyProof/primary",
            net.node_url
        ))
        .body(bcs::to_bytes(&short).unwrap())
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(reason(&v), "INVALID_PROOF");
}

/// What an unmodified Walrus client relies on beyond the bytes: the detailed health shape,
/// refusal of unknown query parameters, Walrus's error domain with `metadata`, and CORS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walrus_wire_details() {
    let net = Net::new().await;
    let (s, v) = net.get_json("/v1/health?detailed=true").await;
    assert_eq!(s, 200, "{v}");
    let data = &v["success"]["data"];
    let owned = data["shardDetail"]["owned"].as_array().expect("owned list");
    assert_eq!(owned.len(), usize::from(N), "{v}");
    assert!(owned.iter().all(|s| s["status"] == "ready"), "{v}");
    assert_eq!(data["shardDetail"]["other"], serde_json::json!([]), "{v}");
    assert_eq!(data["shardSummary"]["ownedShardStatus"]["ready"], N, "{v}");
    assert_eq!(data["shardSummary"]["readOnly"], 0, "{v}");
    let (_, v) = net.get_json("/v1/health").await;
    assert!(v["success"]["data"].get("shardDetail").is_none(), "{v}");

    // Unknown (e.g. misspelt) query parameters are refused, not ignored.
    let (s, v) = net.get_json("/v1/health?detail=true").await;
    assert_eq!((s, reason(&v).as_str()), (400, "INVALID_QUERY"), "{v}");
    let id = BlobId([7; 32]);
    let (s, v) = net
        .put(&format!("/v1/blobs/{id}/metadata?pendng=true"), vec![0])
        .await;
    assert_eq!((s, reason(&v).as_str()), (400, "INVALID_QUERY"), "{v}");
    for path in [
        format!("/v1/blobs/{id}/status?x=1"),
        format!("/v1/blobs/{id}/metadata?pendng=true"),
        format!("/v1/blobs/{id}/slivers/0/primary?epoch=1"),
    ] {
        let (s, v) = net.get_json(&path).await;
        assert_eq!(
            (s, reason(&v).as_str()),
            (400, "INVALID_QUERY"),
            "{path}: {v}"
        );
    }
    // Walrus's document lists `pending` on metadata reads: accepted (and ignored).
    let (s, v) = net
        .get_json(&format!("/v1/blobs/{id}/metadata?pending=true"))
        .await;
    assert_eq!((s, reason(&v).as_str()), (404, "METADATA_NOT_FOUND"), "{v}");

    // Errors carry Walrus's domain and a `metadata` map.
    let (s, v) = net.get_json(&format!("/v1/blobs/{id}/metadata")).await;
    assert_eq!(s, 404, "{v}");
    let detail = &v["error"]["details"][0];
    assert_eq!(detail["domain"], "storage.walrus.space", "{v}");
    assert!(detail["metadata"].is_object(), "{v}");

    // CORS: a preflight is answered for any origin, method and header, and answers carry
    // the allowed origin.
    let r = net
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/blobs/{id}/slivers/0/primary", net.node_url),
        )
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type, x-custom")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "preflight: {}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-allow-methods"], "*");
    assert_eq!(h["access-control-allow-headers"], "*");
    let r = net
        .http
        .get(format!("{}/v1/health", net.node_url))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    // `txDigest` in a status event is base58 of the 32-byte digest of the ledger entry that
    // emitted the event, as the ledger reports it.
    let ledger = LedgerClient::new(net.ledger_url.clone());
    let user = AccountSession::new(AccountKey::from_seed(&seed("user", 9)), ledger);
    let e = encode(&EncodingConfig::new(N).unwrap(), b"tx digest").unwrap();
    let reg = user
        .submit(TxKind::ReserveAndRegister {
            end_epoch: 5,
            blob_id: e.blob_id(),
            root_hash: e.metadata().metadata.root_hash(),
            size: 9,
            encoding_type: EncodingType::RS2,
            deletable: false,
        })
        .await
        .unwrap();
    let event = reg
        .events
        .iter()
        .find(|ev| matches!(ev.kind, floe_ledger::EventKind::BlobRegistered { .. }))
        .unwrap();
    let status = net
        .wait_status(&e.blob_id(), |d| d.get("permanent").is_some())
        .await;
    let shown = &status["permanent"]["statusEvent"];
    let digest = shown["txDigest"].as_str().unwrap();
    let bytes = floe_core::tx_digest::base58_decode(digest).expect("base58");
    assert_eq!(bytes.len(), 32, "{status}");
    assert_eq!(bytes, event.tx_digest.0, "{status}");
    assert_eq!(shown["eventSeq"], event.index.to_string(), "{status}");
}

/// Reads one HTTP/1.1 answer (head and `Content-Length` body) from a raw connection; returns
/// the status code.
async fn read_answer(s: &mut tokio::net::TcpStream) -> u16 {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut byte))
            .await
            .expect("an answer within 20 s")
            .expect("the connection stays usable");
        assert_eq!(
            n,
            1,
            "closed before the answer; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).await.unwrap();
    head[9..12].parse().unwrap()
}

/// Bodies are bounded: one that stops arriving gets 408, one declared over the limit gets 413
/// before it is sent, and a client still sending a refused body (unknown route, or too large)
/// reads the answer and keeps its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_bounded_and_refused_without_resets() {
    use tokio::io::AsyncWriteExt;
    let net = Net::with_limits(Limits {
        body_idle_timeout_ms: 300,
        ..net_limits()
    })
    .await;
    let address = net.bed.node_address(0).to_string();
    let id = BlobId([7; 32]);
    let connect = || tokio::net::TcpStream::connect(address.clone());

    // Declares 100 bytes, sends 10, then nothing: 408 once the idle timeout passes. The
    // sliver-batch route reads its body into a pooled buffer, with the same bounds.
    for route in ["metadata", "slivers"] {
        let mut s = connect().await.unwrap();
        s.write_all(
            format!(
                "PUT /v1/blobs/{id}/{route} HTTP/1.1\r\nhost: n\r\ncontent-length: 100\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        s.write_all(&[0; 10]).await.unwrap();
        assert_eq!(read_answer(&mut s).await, 408, "stalled {route} body");
    }

    // A batch body sent in chunks (no length declared) that grows past the 1 MiB limit: 413.
    let mut s = connect().await.unwrap();
    s.write_all(
        format!(
            "PUT /v1/blobs/{id}/slivers HTTP/1.1\r\nhost: n\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    for _ in 0..17 {
        s.write_all(b"10000\r\n").await.unwrap();
        s.write_all(&[1; 65536]).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    assert_eq!(
        read_answer(&mut s).await,
        413,
        "chunked batch body over the limit"
    );

    // Declared over the limit: 413 before any of it is sent; then the client sends it anyway
    // and its connection survives for the next request.
    for (path, big, want) in [
        (format!("/v1/blobs/{id}/slivers/0/primary"), 2 << 20, 413),
        ("/v1/no/such/route".to_string(), 1 << 20, 404),
    ] {
        let mut s = connect().await.unwrap();
        s.write_all(
            format!("PUT {path} HTTP/1.1\r\nhost: n\r\ncontent-length: {big}\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        s.write_all(&[1; 65536]).await.unwrap();
        assert_eq!(read_answer(&mut s).await, want, "{path}");
        // The rest of the body, slowly: it is read and discarded, not reset.
        for _ in 0..(big - 65536) / 65536 {
            s.write_all(&[1; 65536])
                .await
                .unwrap_or_else(|e| panic!("{path}: sending the rest of the body failed: {e}"));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        s.write_all(b"GET /v1/health HTTP/1.1\r\nhost: n\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(
            read_answer(&mut s).await,
            200,
            "{path}: the connection is reused"
        );
    }
}
