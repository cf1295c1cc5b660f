//! `serve_with` over TLS, on a real socket: a client that connects and never starts its TLS
//! handshake holds its connection slot only until the header-read deadline, and a client
//! pinned to the server's network key is then served over HTTP/2.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use floe_http::ServeLimits;
use floe_tls::NetworkKeyPair;
use tokio::net::{TcpListener, TcpStream};

const DEADLINE: Duration = Duration::from_millis(400);

/// A TLS server with one connection slot and `DEADLINE` for a client's first bytes, answering
/// `ok` on `/`; its key and address.
async fn one_slot_server() -> (NetworkKeyPair, SocketAddr) {
    let key = NetworkKeyPair::generate().unwrap();
    let tls = floe_tls::server_config(&key, None, &["127.0.0.1".into()]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let limits = ServeLimits {
        max_connections: 1,
        header_read_timeout: DEADLINE,
        ..ServeLimits::default()
    };
    let router = Router::new().route("/", get(|| async { "ok" }));
    tokio::spawn(floe_http::serve_with(
        listener,
        router,
        limits,
        Some(tls),
        std::future::pending(),
    ));
    (key, address)
}

/// `GET /` from a client pinned to `key` (HTTP/2 by ALPN), within 10 s.
async fn get_pinned(
    key: &NetworkKeyPair,
    address: SocketAddr,
) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(floe_tls::pinned_client_config(key.public_key()))
        .timeout(Duration::from_secs(10))
        .build()?
        .get(format!("https://{address}/"))
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_loses_its_slot_at_the_handshake_deadline() {
    let (key, address) = one_slot_server().await;

    // The only slot, taken by a client that sends nothing at all.
    let _silent = TcpStream::connect(address).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let resp = get_pinned(&key, address).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.text().await.unwrap(), "ok");
    // Served only once the silent client was cut off (without the deadline it would wait for
    // ever and the request would time out).
    assert!(
        waited >= DEADLINE / 2,
        "served after {waited:?}, before the silent client's deadline"
    );
}

/// A client that completes the TLS handshake with ALPN `h2` and then never sends the HTTP/2
/// preface is cut off at the same deadline: the handshake alone does not buy a slot for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_silent_after_the_handshake_loses_its_slot_at_the_preface_deadline() {
    let (key, address) = one_slot_server().await;

    // The only slot: a finished TLS handshake that chose h2, then silence.
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        floe_tls::pinned_client_config(key.public_key()),
    ));
    let tcp = TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut silent = connector.connect(name, tcp).await.unwrap();
    assert_eq!(silent.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    let started = Instant::now();
    let resp = get_pinned(&key, address)
        .await
        .expect("served once the silent client was cut off");
    let waited = started.elapsed();
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert!(
        waited >= DEADLINE / 2,
        "served after {waited:?}, before the silent client's deadline"
    );
    // And the server closed the silent connection (it reads EOF or an error, not a hang).
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        use tokio::io::AsyncReadExt;
        loop {
            match silent.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // the server's own SETTINGS frame, if any
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the silent connection is still open");
}
