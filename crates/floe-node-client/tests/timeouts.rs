//! Small requests to a node that went silent (connection up, no answer: a partition that drops
//! packets, a frozen process) fail within seconds, not after the timeout sized for transfers.

use std::time::{Duration, Instant};

use floe_core::{BlobId, EncodingConfig, compute_metadata};
use floe_node_client::{NodeClient, SMALL_REQUEST_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_costs_small_requests_the_small_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = NodeClient::new(reqwest::Client::new(), &address, Duration::from_secs(120));
    let metadata = compute_metadata(&EncodingConfig::new(10).unwrap(), b"hello").unwrap();
    let id: BlobId = metadata.blob_id;

    // Both at once, each on its own connection.
    let t = Instant::now();
    let (put, confirm) = tokio::join!(
        async {
            let r = client.put_metadata(&id, &metadata.metadata).await;
            (r.is_err(), t.elapsed())
        },
        async {
            let r = client.confirmation(&id, None).await;
            (r.is_err(), t.elapsed())
        }
    );
    for (what, (failed, took)) in [("metadata upload", put), ("confirmation", confirm)] {
        assert!(failed, "{what}: a silent node cannot answer");
        assert!(
            took >= SMALL_REQUEST_TIMEOUT,
            "{what}: gave up early: {took:?}"
        );
        assert!(
            took < SMALL_REQUEST_TIMEOUT + Duration::from_secs(5),
            "{what}: held for {took:?}"
        );
    }
    holder.abort();
}
