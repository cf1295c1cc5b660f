//! The daemon over real HTTP, its limits: concurrent reads of one blob share one read, and
//! bodies that stall, overflow or go to unknown routes are bounded and refused cleanly.

mod support;
use floe_client::{Client, ClientConfig};
use floe_daemon::DaemonOptions;
use floe_ledger::AccountKey;
use floe_testbed::Testbed;
use reqwest::StatusCode;
use std::time::Duration;
use support::*;

/// Slivers the testbed's nodes have served so far, from their Prometheus metrics.
async fn slivers_served(bed: &Testbed) -> u64 {
    let pools = floe_node_client::NodeHttp::with_defaults();
    let mut total = 0;
    for i in 0..bed.node_count() {
        let (base, http) = bed.node_endpoint(i, &pools).unwrap();
        let text = text_of(&http, format!("{base}/metrics")).await;
        total += text
            .lines()
            .find_map(|l| l.strip_prefix("floe_node_slivers_served_total "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .expect("the node reports slivers served");
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_of_one_blob_share_one_read() {
    let seed = test_seed("concurrent_reads_of_one_blob_share_one_read");
    let (_dir, bed, client) = network().await;
    let http = reqwest::Client::new();
    let daemon = Daemon::start(&client, DaemonOptions::default()).await;
    // The largest blob at n = 10, so that a read lasts while the others arrive.
    let blob = data(seed, 1_800_000);
    let (status, body) = put(&http, daemon.at("/v1/blobs?epochs=1"), blob.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["newlyCreated"]["blobObject"]["blobId"]
        .as_str()
        .unwrap()
        .to_string();
    let before = slivers_served(&bed).await;
    const READERS: u64 = 100;
    let reads: Vec<_> = (0..READERS)
        .map(|_| {
            let (http, url) = (http.clone(), daemon.at(&format!("/v1/blobs/{id}")));
            tokio::spawn(async move {
                let r = http.get(url).send().await.unwrap();
                (r.status(), r.bytes().await.unwrap())
            })
        })
        .collect();
    for r in reads {
        let (status, bytes) = r.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(bytes == blob, "a reader got other bytes");
    }
    // One read needs p = 4 primary slivers at n = 10: reads of their own would have cost the
    // nodes at least 4 per request.
    let served = slivers_served(&bed).await - before;
    println!("{READERS} concurrent reads cost the nodes {served} slivers");
    assert!(
        served < READERS * 4 / 2,
        "{served} slivers served for {READERS} reads of one blob: they were not shared"
    );
    daemon.shutdown().await;
    bed.shutdown().await;
}

/// Many readers of distinct small blobs through a client whose node requests are capped far
/// below them: the reads queue for the cap, and each still costs the nodes about one sliver
/// (its data row). Before, a read whose row waited for the cap longer than the hedge delay
/// fell back to a whole read (p slivers), which deepened the queue for all the others: in
/// `floe bench e2e`, a third of 1000 such GETs ended in 503 after 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_readers_of_small_blobs_under_a_saturated_cap_each_read_their_own_row() {
    let seed =
        test_seed("many_readers_of_small_blobs_under_a_saturated_cap_each_read_their_own_row");
    let (_dir, bed, client) = network().await;
    const READERS: u64 = 120;
    let mut stored = Vec::new();
    for i in 0..READERS {
        // At n = 10 a row holds 14 bytes or more: one row.
        let blob = data(seed + i, 12);
        let outcome = client
            .store(
                blob.clone(),
                &floe_client::StoreOptions::default(),
                std::sync::Arc::new(floe_client::NoProgress),
            )
            .await
            .unwrap();
        stored.push((outcome.result.blob_id().unwrap().to_string(), blob));
    }
    let mut config = ClientConfig {
        ledger_url: bed.ledger_url(),
        ..ClientConfig::default()
    };
    let comm = &mut config.communication;
    (
        comm.max_concurrent_node_requests,
        comm.max_concurrent_sliver_reads,
    ) = (3, 2);
    (comm.hedge_after_ms, comm.hedge_min_ms) = (10, 2);
    let reader = Client::new(config, Some(AccountKey::from_seed(&[7; 32]))).unwrap();
    let daemon = Daemon::start(&reader, DaemonOptions::default()).await;
    let http = reqwest::Client::new();
    let before = slivers_served(&bed).await;
    let started = std::time::Instant::now();
    let reads: Vec<_> = stored
        .into_iter()
        .map(|(id, blob)| {
            let (http, url) = (http.clone(), daemon.at(&format!("/v1/blobs/{id}")));
            tokio::spawn(async move {
                let r = http.get(url).send().await.unwrap();
                let status = r.status();
                (status, r.bytes().await.unwrap() == blob)
            })
        })
        .collect();
    for r in reads {
        let (status, same) = r.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(same, "a reader got other bytes");
    }
    // p = 4 at n = 10: a read that fell back costs at least 4 slivers, its row read 1.
    let served = slivers_served(&bed).await - before;
    println!(
        "seed {seed}: {READERS} reads of distinct small blobs took {:?} and cost the nodes {served} slivers",
        started.elapsed()
    );
    assert!(
        served < READERS * 3 / 2,
        "{served} slivers served for {READERS} reads of one row each: reads fell back to whole reads"
    );
    daemon.shutdown().await;
    bed.shutdown().await;
}

/// Reads one HTTP/1.1 answer (head and `Content-Length` body) from a raw connection; returns
/// the status code.
async fn read_answer(s: &mut tokio::net::TcpStream) -> u16 {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut byte))
            .await
            .expect("an answer within 20 s")
            .expect("the connection stays usable");
        assert_eq!(
            n,
            1,
            "closed before the answer; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).await.unwrap();
    head[9..12].parse().unwrap()
}

/// A body that stops arriving gets 408; a client still sending a body to an unknown route
/// reads the 404 and keeps its connection. (No network is needed: neither reaches it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_bounded_and_refused_without_resets() {
    use tokio::io::AsyncWriteExt;
    let config = ClientConfig {
        ledger_url: "http://127.0.0.1:9".into(),
        ..ClientConfig::default()
    };
    let client = Client::new(config, Some(AccountKey::from_seed(&[7; 32]))).unwrap();
    let daemon = Daemon::start(
        &client,
        DaemonOptions {
            body_idle_timeout_ms: 300,
            ..DaemonOptions::default()
        },
    )
    .await;
    let address = daemon.url.trim_start_matches("http://").to_string();

    let mut s = tokio::net::TcpStream::connect(&address).await.unwrap();
    s.write_all(b"PUT /v1/blobs HTTP/1.1\r\nhost: d\r\ncontent-length: 100\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&[0; 10]).await.unwrap();
    assert_eq!(read_answer(&mut s).await, 408);

    for (method, path) in [("PUT", "/v1/no/such/route"), ("POST", "/v1/blobs")] {
        let mut s = tokio::net::TcpStream::connect(&address).await.unwrap();
        let size = 2 << 20;
        s.write_all(
            format!("{method} {path} HTTP/1.1\r\nhost: d\r\ncontent-length: {size}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        s.write_all(&[1; 65536]).await.unwrap();
        let want = if method == "PUT" { 404 } else { 405 };
        assert_eq!(read_answer(&mut s).await, want, "{method} {path}");
        for _ in 1..size / 65536 {
            s.write_all(&[1; 65536])
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: sending the rest failed: {e}"));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        s.write_all(b"GET /status HTTP/1.1\r\nhost: d\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_answer(&mut s).await, 200, "{method} {path}: reused");
    }
    daemon.shutdown().await;
}
