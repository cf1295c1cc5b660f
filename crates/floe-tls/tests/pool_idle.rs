//! A client from `floe_tls::http_client` drops an idle kept-alive connection after
//! `POOL_IDLE_TIMEOUT`, before Floe's servers would close it (30 s): it never sends a request
//! into a connection the server is closing. The server here keeps connections for ever, so
//! only the client can be the one closing.

use floe_test_support::established_connections_to;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answer every request on every connection with `ok`, keeping connections open.
async fn keep_alive_server(listener: tokio::net::TcpListener) {
    loop {
        let (mut stream, _) = listener.accept().await.unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut seen = Vec::new();
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                seen.extend_from_slice(&buf[..n]);
                while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    seen.drain(..end + 4);
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_dropped_before_the_servers_keep_alive_ends() {
    assert!(floe_tls::POOL_IDLE_TIMEOUT < Duration::from_secs(30));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(keep_alive_server(listener));
    let client = floe_tls::http_client(reqwest::Client::builder().no_proxy()).unwrap();
    let body = client
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        established_connections_to(port),
        1,
        "the connection is kept for reuse"
    );
    // hyper's pool checks for expired connections on a timer: allow it a few seconds.
    tokio::time::sleep(floe_tls::POOL_IDLE_TIMEOUT + Duration::from_secs(3)).await;
    assert_eq!(
        established_connections_to(port),
        0,
        "the idle connection outlived the pool's idle timeout"
    );
}
