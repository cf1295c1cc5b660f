//! The proxy hook: a testbed whose nodes start one by one, one of them behind a proxy that
//! serves its genesis address. Requests to that address cross the proxy; the node's private
//! address reaches it directly; stopping the node stops the proxy; a plain restart serves the
//! address itself again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use floe_testbed::{Testbed, TestbedOptions};
use tokio::net::{TcpListener, TcpStream};

/// A TCP forwarder from `public` to `upstream` (`http://host:port`) counting its connections.
fn forwarder(
    public: TcpListener,
    upstream: String,
    connections: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    let target = upstream.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = public.accept().await else {
                return;
            };
            connections.fetch_add(1, Ordering::Relaxed);
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

async fn health(http: &reqwest::Client, address: &str) -> Result<u16, reqwest::Error> {
    let r = http
        .get(format!("http://{address}/v1/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await?;
    Ok(r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_behind_a_front_is_reached_through_it() {
    let root = tempfile::tempdir().unwrap();
    let mut bed = Testbed::start(
        root.path(),
        TestbedOptions {
            nodes: 2,
            n_shards: 4,
            disable_tls: true,
            start_nodes: false,
            ..TestbedOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(!bed.is_running(0) && !bed.is_running(1), "nothing starts");

    let connections = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&connections);
    let private = bed
        .start_node_behind(0, move |public, upstream| {
            forwarder(public, upstream, counter)
        })
        .await
        .unwrap()
        .expect("the node was not running");
    let public = bed.node_address(0).to_string();
    assert_ne!(private, public);
    // No pooled connection: each request opens its own.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert_eq!(health(&http, &public).await.unwrap(), 200);
    assert_eq!(connections.load(Ordering::Relaxed), 1, "crossed the front");
    assert_eq!(health(&http, &private).await.unwrap(), 200);
    assert_eq!(connections.load(Ordering::Relaxed), 1, "bypassed the front");
    assert!(bed.is_running(0) && !bed.is_running(1));

    // A second start is a no-op; a stop closes the front with the node.
    assert_eq!(
        bed.start_node_behind(0, |_, _| tokio::spawn(async {}))
            .await
            .unwrap(),
        None
    );
    bed.stop_node(0).await;
    assert!(health(&http, &public).await.is_err(), "the front is gone");

    // Started plainly, the node serves its address itself.
    bed.start_node(0).await.unwrap();
    assert_eq!(health(&http, &public).await.unwrap(), 200);
    assert_eq!(connections.load(Ordering::Relaxed), 1);
    // The other node's held address is served once it starts.
    bed.start_node(1).await.unwrap();
    assert_eq!(health(&http, bed.node_address(1)).await.unwrap(), 200);
    bed.shutdown().await;
}
