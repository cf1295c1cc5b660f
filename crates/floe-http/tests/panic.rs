//! A handler that panics answers 500 with the panic's message, on a real socket, and the
//! server (the same kept-alive connection included) goes on serving.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use floe_http::{ServeLimits, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_answers_500_and_the_server_goes_on() {
    let router = Router::new()
        .route(
            "/boom",
            get(|| async {
                let sizes: Vec<usize> = Vec::new();
                // An out-of-bounds index, as a real bug would panic.
                sizes[3].to_string()
            }),
        )
        .route("/ok", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router, ServeLimits::default(), async {
        let _ = stop_rx.await;
    }));

    // One connection for both requests: the panic must not have closed it.
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let resp = http
        .get(format!("http://{addr}/boom"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let body: serde_json::Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("index out of bounds"), "{body}");
    assert_eq!(body["error"]["details"][0]["reason"], "HANDLER_PANICKED");

    for _ in 0..3 {
        let resp = http.get(format!("http://{addr}/ok")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "ok");
    }

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
