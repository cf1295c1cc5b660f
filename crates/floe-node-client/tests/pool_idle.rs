//! The clients pinned to a node's network key follow the same idle rule as every other client
//! (`floe_tls::POOL_IDLE_TIMEOUT`): they are built apart from `floe_tls::http_client`, so the
//! rule is set twice and checked here, over HTTPS/2 to a server like a node's.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use floe_test_support::established_connections_to;
use floe_tls::NetworkKeyPair;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_client_drops_an_idle_connection_after_the_pool_timeout() {
    let key = NetworkKeyPair::generate().unwrap();
    let tls = floe_tls::server_config(&key, None, &["127.0.0.1".to_string()]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = Router::new().route("/", get(|| async { "ok" }));
    // A node's server keeps an idle HTTP/2 connection open: only the client can close it.
    tokio::spawn(floe_http::serve_with(
        listener,
        router,
        floe_http::ServeLimits::default(),
        Some(tls),
        std::future::pending(),
    ));

    let client = floe_node_client::NodeHttp::with_defaults()
        .pinned(&[key.public_key()])
        .unwrap();
    let resp = client
        .get(format!("https://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.text().await.unwrap(), "ok");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(established_connections_to(port), 1, "kept for reuse");
    // hyper's pool looks for expired connections on a timer: allow it a few seconds.
    tokio::time::sleep(floe_tls::POOL_IDLE_TIMEOUT + Duration::from_secs(3)).await;
    assert_eq!(
        established_connections_to(port),
        0,
        "the idle connection outlived the pool's idle timeout"
    );
}
