//! Uploads before registration (`?pending=true`) on a real node: they are buffered (202) and
//! flushed to storage when the registration event arrives, so the node can confirm at once;
//! buffered uploads older than the TTL are dropped and never flushed.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use floe_core::{EncodedBlob, EncodingConfig, SliverData, SliverPairIndex, SliverType, encode};
use serde_json::Value;

const N: u16 = 10;

struct Raw {
    http: reqwest::Client,
    base: String,
}

impl Raw {
    async fn put(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .body(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn status(&self, path: &str) -> String {
        let v: Value = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["success"]["data"].as_str().unwrap_or("?").to_string()
    }

    /// Upload the metadata and every sliver with `?pending=true`; all must be buffered.
    async fn put_all_pending(&self, e: &EncodedBlob) {
        let id = e.blob_id();
        let (s, v) = self
            .put(
                &format!("/v1/blobs/{id}/metadata?pending=true"),
                bcs::to_bytes(&e.metadata().metadata).unwrap(),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        for k in 0..N {
            let p = e.sliver_pair(SliverPairIndex(k));
            for (axis, sliver) in [
                (SliverType::Primary, &p.primary),
                (SliverType::Secondary, &p.secondary),
            ] {
                let (s, v) = self
                    .put(
                        &format!("/v1/blobs/{id}/slivers/{k}/{axis}?pending=true"),
                        bcs::to_bytes(sliver).unwrap(),
                    )
                    .await;
                assert_eq!(s, 202, "{v}");
            }
        }
    }

    /// The metadata status and every sliver status of `e`.
    async fn statuses(&self, e: &EncodedBlob) -> Vec<String> {
        let id = e.blob_id();
        let mut out = vec![
            self.status(&format!("/v1/blobs/{id}/metadata/status"))
                .await,
        ];
        for k in 0..N {
            for axis in [SliverType::Primary, SliverType::Secondary] {
                out.push(
                    self.status(&format!("/v1/blobs/{id}/slivers/{k}/{axis}/status"))
                        .await,
                );
            }
        }
        out
    }
}

fn data(tag: u64) -> Vec<u8> {
    (0..6_000u64)
        .map(|i| common::seed("pending", (tag << 32) | (i / 32))[(i % 32) as usize])
        .collect()
}

/// One node holding every shard, with buffered uploads kept for `ttl_secs`.
async fn single_node(ttl_secs: u64) -> (Cluster, Raw) {
    let mut cluster = Cluster::prepare(1, N).await;
    cluster.limits.pending_ttl_secs = ttl_secs;
    cluster.start_node(0).await;
    let raw = Raw {
        http: cluster.http.clone(),
        base: format!("http://{}", cluster.addresses[0]),
    };
    (cluster, raw)
}

async fn wait_registered(cluster: &Cluster, e: &EncodedBlob) {
    cluster
        .wait_node_status(0, &e.blob_id(), Duration::from_secs(10), |v| {
            v.get("permanent").is_some()
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_uploads_are_flushed_on_registration() {
    let (cluster, raw) = single_node(60).await;
    let e = encode(&EncodingConfig::new(N).unwrap(), &data(1)).unwrap();
    let id = e.blob_id();
    raw.put_all_pending(&e).await;
    assert!(raw.statuses(&e).await.iter().all(|s| s == "buffered"));
    // Buffered is not stored: nothing is served or confirmed yet.
    let client = cluster.client(0);
    let err = client
        .get_sliver(&id, SliverPairIndex(0), SliverType::Primary)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Some("SLIVER_NOT_FOUND"), "{err}");
    let err = client.confirmation(&id, None).await.unwrap_err();
    assert_eq!(err.reason(), Some("NOT_REGISTERED"), "{err}");

    let user = cluster.user(1);
    cluster
        .register(&user, e.metadata(), 5, false)
        .await
        .unwrap();
    wait_registered(&cluster, &e).await;
    // The flush happens in the same step that records the registration.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = raw.statuses(&e).await;
        if st.iter().all(|s| s == "stored") {
            break;
        }
        assert!(Instant::now() < deadline, "not flushed: {st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for k in 0..N {
        let p = e.sliver_pair(SliverPairIndex(k));
        let got: SliverData = client
            .get_sliver(&id, SliverPairIndex(k), SliverType::Secondary)
            .await
            .unwrap();
        assert_eq!(got, p.secondary);
        let got = client
            .get_sliver(&id, SliverPairIndex(k), SliverType::Primary)
            .await
            .unwrap();
        assert_eq!(got, p.primary);
    }
    assert_eq!(client.get_metadata(&id).await.unwrap(), *e.metadata());
    // Every sliver was flushed, so the node confirms without any further upload.
    let signed = client.confirmation(&id, None).await.unwrap();
    signed
        .verify_confirmation(
            &cluster.system.committee.members[0].protocol_key,
            0,
            &id,
            &floe_crypto::BlobPersistenceType::Permanent,
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_uploads_older_than_the_ttl_are_dropped() {
    let (cluster, raw) = single_node(1).await;
    let e = encode(&EncodingConfig::new(N).unwrap(), &data(2)).unwrap();
    let id = e.blob_id();
    let buffered_at = Instant::now();
    raw.put_all_pending(&e).await;
    let st = raw.statuses(&e).await;
    if buffered_at.elapsed() < Duration::from_millis(900) {
        assert!(st.iter().all(|s| s == "buffered"), "{st:?}");
    }
    tokio::time::sleep(Duration::from_millis(1_300).saturating_sub(buffered_at.elapsed())).await;
    // Past the TTL the uploads are gone, even before anything else touches the buffer.
    let st = raw.statuses(&e).await;
    assert!(st.iter().all(|s| s == "nonexistent"), "{st:?}");

    // The registration arrives late: nothing is flushed.
    let user = cluster.user(2);
    cluster
        .register(&user, e.metadata(), 5, false)
        .await
        .unwrap();
    wait_registered(&cluster, &e).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let st = raw.statuses(&e).await;
    assert!(st.iter().all(|s| s == "nonexistent"), "{st:?}");
    let client = cluster.client(0);
    let err = client.confirmation(&id, None).await.unwrap_err();
    assert_eq!(err.reason(), Some("MISSING_SLIVERS"), "{err}");
    // A sliver needs the metadata first: it was dropped, not kept.
    let p = e.sliver_pair(SliverPairIndex(0));
    let err = client
        .put_sliver(&id, SliverPairIndex(0), SliverType::Primary, &p.primary)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Some("METADATA_NOT_FOUND"), "{err}");
    // A fresh upload after registration works as usual.
    client
        .put_metadata(&id, &e.metadata().metadata)
        .await
        .unwrap();
    client
        .put_sliver(&id, SliverPairIndex(0), SliverType::Primary, &p.primary)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_long_poll_waits_for_the_registration() {
    let (cluster, raw) = single_node(60).await;
    let e = encode(&EncodingConfig::new(N).unwrap(), &data(3)).unwrap();
    let id = e.blob_id();
    raw.put_all_pending(&e).await;
    // Without the long poll (or with a zero wait) an unregistered blob is refused at once; a
    // misspelt parameter is refused.
    for q in ["", "?wait_for_registration=true&wait_millis=0"] {
        let (s, v) = raw
            .get(&format!("/v1/blobs/{id}/confirmation/permanent{q}"))
            .await;
        assert_eq!((s, reason(&v)), (400, "NOT_REGISTERED".into()), "{q}: {v}");
    }
    let (s, v) = raw
        .get(&format!(
            "/v1/blobs/{id}/confirmation/permanent?wait_for_registraton=true"
        ))
        .await;
    assert_eq!((s, reason(&v)), (400, "INVALID_QUERY".into()), "{v}");

    // A long poll started before the registration answers with the confirmation once the
    // registration arrives (and the buffered uploads are flushed).
    let poll = {
        let http = raw.http.clone();
        let url = format!(
            "{}/v1/blobs/{id}/confirmation/permanent?wait_for_registration=true&wait_millis=30000",
            raw.base
        );
        tokio::spawn(async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poll.is_finished(),
        "the long poll must wait for the registration"
    );
    let user = cluster.user(3);
    cluster
        .register(&user, e.metadata(), 5, false)
        .await
        .unwrap();
    let (s, v) = poll.await.unwrap();
    assert_eq!(s, 200, "{v}");
    let signed: floe_crypto::SignedMessage =
        serde_json::from_value(v["success"]["data"]["signed"].clone()).unwrap();
    signed
        .verify_confirmation(
            &cluster.system.committee.members[0].protocol_key,
            0,
            &id,
            &floe_crypto::BlobPersistenceType::Permanent,
        )
        .unwrap();
}

fn reason(v: &Value) -> String {
    v["error"]["details"][0]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string()
}
