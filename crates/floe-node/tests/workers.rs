//! The node's background workers, end to end: a real ledger and node on loopback sockets. Each
//! worker shows in the detailed health and in the metrics; stopping the server stops them all
//! within the deadline, and nothing of them keeps the node (and its store) alive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_node::config::Limits;
use floe_node::runner::WorkerState;

mod single;
use single::*;

const WORKERS: [&str; 5] = [
    "follower",
    "epoch_change",
    "blob_sync",
    "challenger",
    "maintenance",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_report_their_state_and_stop_with_the_server() {
    let (dir, _key, ledger_url) = ledger_and_keys().await;
    let limits = Limits {
        maintenance_interval_secs: 1,
        challenge_poll_ms: 200,
        ..Limits::default()
    };
    let config = node_config(dir.path(), &ledger_url, limits);
    let storage = config.storage_path.clone();
    let node = floe_node::start(config).await.unwrap();
    floe_node::workers::start(&node, floe_node::workers::WorkerOptions::from_config(&node));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(floe_node::api::serve(
        Arc::clone(&node),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));

    // Every worker is listed, and the periodic ones have stepped.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let workers = loop {
        let (_, v) = get_json(&http, &format!("{url}/v1/health?detailed=true")).await;
        let workers = v["success"]["data"]["workers"].clone();
        let steps = |name: &str| {
            workers.as_array().and_then(|ws| {
                ws.iter()
                    .find(|w| w["name"] == name)
                    .and_then(|w| w["steps"].as_u64())
            })
        };
        if steps("follower") >= Some(1) && steps("maintenance") >= Some(2) {
            break workers;
        }
        assert!(Instant::now() < deadline, "workers never stepped: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names: Vec<&str> = workers
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, WORKERS, "{workers}");
    for w in workers.as_array().unwrap() {
        let state = w["state"].as_str().unwrap();
        assert!(
            ["busy", "idle", "retrying"].contains(&state),
            "a running node's worker is {state}: {w}"
        );
    }
    // The plain health route stays Walrus's shape.
    let (_, v) = get_json(&http, &format!("{url}/v1/health")).await;
    assert!(v["success"]["data"].get("workers").is_none(), "{v}");
    let metrics = get(&http, &format!("{url}/metrics"))
        .await
        .text()
        .await
        .unwrap();
    for name in WORKERS {
        let line = format!("floe_node_worker_steps_total{{worker=\"{name}\"}} ");
        assert!(metrics.contains(&line), "no {line} in\n{metrics}");
    }

    // Stop the server: the workers stop with it, well within the deadline. Close this
    // client's keep-alive connections first, so that the server's drain does not wait on them.
    drop(http);
    let started = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server and its workers stop")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let states: Vec<(&str, WorkerState)> = node
        .workers()
        .statuses()
        .iter()
        .map(|s| (s.name, s.state))
        .collect();
    assert!(
        states.iter().all(|(_, s)| *s == WorkerState::Stopped),
        "{states:?}"
    );

    // Nothing of the workers holds the node: dropping the last handle closes the store, which
    // then opens again.
    assert_eq!(Arc::strong_count(&node), 1, "only this handle is left");
    drop(node);
    floe_node_storage::FjallStore::open(&storage, Default::default())
        .expect("the store was closed with the node");
}
