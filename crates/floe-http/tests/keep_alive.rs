//! A kept-alive HTTP/1.1 connection that stays idle after its response is closed by the server
//! once the header-read deadline passes: the reason every Floe client drops idle connections
//! sooner (`floe_tls::POOL_IDLE_TIMEOUT`) than a server's deadline.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use floe_http::{ServeLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_deadline() {
    const DEADLINE: Duration = Duration::from_millis(500);
    let router = Router::new().route("/", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ServeLimits {
        header_read_timeout: DEADLINE,
        ..ServeLimits::default()
    };
    tokio::spawn(serve(listener, router, limits, std::future::pending()));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"ok") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    let answered = Instant::now();

    // Kept alive, then idle: the next read ends with the server's close, after the deadline.
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("the idle connection was never closed")
        .unwrap_or(0);
    let idle = answered.elapsed();
    assert_eq!(n, 0, "the server sent more bytes instead of closing");
    assert!(
        idle >= DEADLINE - Duration::from_millis(50),
        "closed after {idle:?}, before the deadline"
    );
    println!("closed after {idle:?} idle");
}
