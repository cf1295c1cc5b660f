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
    let (_dir, bed) = bed(Limits {
        maintenance_interval_secs: 1,
        challenge_poll_ms: 200,
        ..Limits::default()
    })
    .await;
    let config = bed.node_config(0);
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

/// However many blobs need syncing, the blob-sync worker holds at most
/// `SYNC_TASKS_PER_PERMIT` tasks per sync permit; the other requests wait in the bounded queue
/// (and are still counted as syncing, so they are not asked for twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_syncs_beyond_the_task_bound_wait_in_the_queue() {
    use floe_node::limits::SYNC_TASKS_PER_PERMIT;
    const REQUESTS: usize = 3 * SYNC_TASKS_PER_PERMIT;
    let (_dir, bed) = bed(Limits {
        max_concurrent_syncs: 1,
        ..Limits::default()
    })
    .await;
    let node = floe_node::start(bed.node_config(0)).await.unwrap();
    // Queued before the worker runs, each to start in an hour: none finishes during the test.
    let ids: Vec<floe_core::BlobId> = (0..REQUESTS)
        .map(|i| floe_core::BlobId(floe_core::merkle::blake2b256(&[&i.to_le_bytes()])))
        .collect();
    for id in &ids {
        node.request_sync(*id, Duration::from_secs(3600));
    }
    let options = floe_node::workers::WorkerOptions {
        maintenance_every: None,
    };
    floe_node::workers::start(&node, options);
    let expected = format!(
        "{SYNC_TASKS_PER_PERMIT} syncs running or waiting out their delay, {} queued, 0 finished",
        REQUESTS - SYNC_TASKS_PER_PERMIT
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let progress = node
            .workers()
            .statuses()
            .into_iter()
            .find(|s| s.name == "blob_sync")
            .and_then(|s| s.progress);
        if progress.as_deref() == Some(expected.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "blob_sync's progress is {progress:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It stays there: the worker takes no more while its tasks wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = node.workers().statuses();
    let blob_sync = status.iter().find(|s| s.name == "blob_sync").unwrap();
    assert_eq!(blob_sync.progress.as_deref(), Some(expected.as_str()));
    assert!(ids.iter().all(|id| node.is_syncing(id)));
    let report = node.workers().stop(Duration::from_secs(5)).await;
    assert!(report.aborted.is_empty(), "{report:?}");
}
