//! A node that reads a batch upload late keeps the client's HTTP/2 connection.
//!
//! An HTTP/2 server holds the DATA frames it has not read yet, and closes the connection (every
//! request on it fails with a broken pipe) once too many of them are tiny: h2's guard against
//! framing floods. A batch of small slivers sent one field per chunk was such a flood whenever
//! the node was slow to read, which a busy node is. Here the node's handler waits before it
//! reads, while batches of 1000 two-byte slivers share one connection.

use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::put;
use floe_core::{BlobId, SliverIndex, SliverPairIndex, SliverType};
use floe_node_client::{NodeClient, SliverBatchBody};

/// The node's handler: read the body only after `READ_LATE`, answer with the slivers counted.
const READ_LATE: Duration = Duration::from_millis(300);
const SLIVERS: u16 = 1000;

async fn slow_reader(body: axum::body::Body) -> axum::response::Response {
    tokio::time::sleep(READ_LATE).await;
    match axum::body::to_bytes(body, 1 << 20).await {
        Ok(bytes) => {
            // Version byte, then the sliver count as ULEB128 (1000 takes two bytes).
            let count = u64::from(bytes[1] & 0x7f) | (u64::from(bytes[2]) << 7);
            axum::Json(serde_json::json!({"success": {"code": 200, "data": {"stored": count}}}))
                .into_response()
        }
        Err(e) => (axum::http::StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_tiny_slivers_survive_a_node_that_reads_late() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let router = Router::new().route("/v1/blobs/{id}/slivers", put(slow_reader));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(floe_http::serve(
        listener,
        router,
        floe_http::ServeLimits::default(),
        async {
            let _ = stopped.await;
        },
    ));
    // One HTTP/2 connection for every request, as a client's pool keeps towards a node.
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let client = NodeClient::new(http, &address, Duration::from_secs(30));
    let blob_id = BlobId([5; 32]);
    let mut body = SliverBatchBody::new();
    for i in 0..SLIVERS {
        let symbols = bytes::Bytes::from(vec![i as u8; 2]);
        body.push(
            SliverPairIndex(i),
            SliverType::Primary,
            SliverIndex(i),
            2,
            symbols,
        );
    }
    let body = body.finish();
    let mut uploads = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (client, body) = (client.clone(), body.clone());
        uploads.spawn(async move { (i, client.put_sliver_batch_body(&blob_id, &body).await) });
    }
    while let Some(done) = uploads.join_next().await {
        let (i, result) = done.unwrap();
        let stored = result.unwrap_or_else(|e| panic!("upload {i} failed: {e}"));
        assert_eq!(stored, u64::from(SLIVERS), "upload {i}");
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
