//! The node's server under clients that misbehave, on a real socket: idle and slow clients
//! cannot hold its connection slots (each gets `header_read_timeout_ms`, then is closed), a
//! client over the connection cap waits instead of being refused while the cap is full, and
//! HTTP/2 with prior knowledge (how Walrus's clients talk to nodes) is served on the same port
//! as HTTP/1.1.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOTS: usize = 4;
const HEADER_MS: u64 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_clients_are_cut_off_and_h2_is_served() {
    let mut cluster = Cluster::prepare(1, 4).await;
    cluster.limits.max_connections = SLOTS;
    cluster.limits.header_read_timeout_ms = HEADER_MS;
    cluster.start_node(0).await;
    let address: std::net::SocketAddr = cluster.addresses[0].parse().unwrap();
    let health = format!("http://{address}/v1/health");

    // Fill every slot: two clients that send nothing, two that dribble a request's headers.
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(address).await.unwrap());
    }
    for _ in 0..2 {
        let mut s = TcpStream::connect(address).await.unwrap();
        s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        idle.push(s);
    }
    // A fifth client waits for a slot, and gets one once the server cut the others off.
    let started = Instant::now();
    let fresh = reqwest::Client::new();
    let answer = fresh
        .get(&health)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("served once the idle connections were closed");
    assert!(answer.status().is_success(), "{}", answer.status());
    let waited = started.elapsed();
    println!("the fifth client was served after {waited:?}");
    assert!(
        waited >= Duration::from_millis(HEADER_MS / 2),
        "served after {waited:?}, before any slot could be freed: the connection cap did not hold"
    );
    // Every idle or slow connection was closed by the server (EOF), within a few header
    // timeouts.
    for (i, s) in idle.iter_mut().enumerate() {
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue, // e.g. a 408 for the half-sent request
                }
            }
        })
        .await;
        assert!(read.is_ok(), "connection {i} is still open after 5 s");
    }

    // HTTP/2 with prior knowledge, on the same port.
    let tcp = TcpStream::connect(address).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("an HTTP/2 handshake");
    tokio::spawn(conn);
    let request = hyper::Request::get(&health)
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.expect("an h2 answer");
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert!(response.status().is_success(), "{}", response.status());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["success"]["data"].is_object(), "{v}");
}
