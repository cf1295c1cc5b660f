//! A server that is told to stop returns promptly, and nothing its connections held outlives
//! it: a connection that has not sent a byte yet does not keep the router's state (a node's
//! store, whose lock a restart in the same process needs) for the header-read deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use floe_http::{ServeLimits, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_does_not_outlive_the_server() {
    let held = Arc::new(());
    let state = Arc::clone(&held);
    let router = Router::new().route(
        "/",
        get(move || {
            let _keep = Arc::clone(&state);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ServeLimits {
        header_read_timeout: Duration::from_secs(30),
        ..ServeLimits::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router, limits, async {
        let _ = stop_rx.await;
    }));

    // One request answered, and one connection that says nothing.
    let body = reqwest::get(format!("http://{addr}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(Arc::strong_count(&held) > 1, "the server holds the router");

    let started = Instant::now();
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server waited for a connection that never sent a byte")
        .unwrap()
        .unwrap();
    println!("stopped in {:?}", started.elapsed());
    assert_eq!(
        Arc::strong_count(&held),
        1,
        "a connection task still holds the router after the server returned"
    );
}
