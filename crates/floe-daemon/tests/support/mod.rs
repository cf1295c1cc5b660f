//! Shared by the daemon's HTTP tests: a local network, a daemon on a loopback socket, and
//! small request helpers. Each test file uses only some of them.
#![allow(dead_code)]

// Not every test file that includes this module draws data.
#[allow(unused_imports)]
pub use floe_test_support::{data, test_seed};
use std::time::{SystemTime, UNIX_EPOCH};

use floe_client::{Client, ClientConfig};
use floe_daemon::DaemonOptions;
use floe_ledger::AccountKey;
use floe_node::config::Limits;
use floe_testbed::{Testbed, TestbedOptions};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub async fn network() -> (tempfile::TempDir, Testbed, Client) {
    let dir = tempfile::tempdir().unwrap();
    let bed = Testbed::start(
        dir.path(),
        TestbedOptions {
            nodes: 7,
            n_shards: 10,
            epoch_duration_ms: 3_600_000,
            node_limits: Limits {
                sync_delay_ms: 0,
                maintenance_interval_secs: 1,
                ..Limits::default()
            },
            ..TestbedOptions::default()
        },
    )
    .await
    .unwrap();
    let mut config = ClientConfig {
        ledger_url: bed.ledger_url(),
        ..ClientConfig::default()
    };
    config.communication.request_timeout_ms = 5_000;
    config.communication.max_attempts = 2;
    config.communication.tail_min_ms = 100;
    config.communication.tail_max_ms = 1_000;
    let client = Client::new(config, Some(AccountKey::from_seed(&[7; 32]))).unwrap();
    (dir, bed, client)
}

/// A daemon on a free port: its base URL, the trigger of its graceful shutdown, its task.
pub struct Daemon {
    pub url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), floe_daemon::DaemonError>>,
}

impl Daemon {
    pub async fn start(client: &Client, options: DaemonOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(floe_daemon::serve_on(
            listener,
            client.clone(),
            options,
            async move {
                let _ = rx.await;
            },
        ));
        Self { url, stop, task }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

pub fn reason(v: &Value) -> &str {
    v["error"]["details"][0]["reason"].as_str().unwrap_or("")
}

pub async fn error_of(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    assert_eq!(
        r.headers()["cache-control"],
        "no-store",
        "errors are never cached"
    );
    (status, r.json().await.unwrap())
}

pub async fn put(http: &reqwest::Client, url: String, body: Vec<u8>) -> (StatusCode, Value) {
    let r = http.put(url).body(body).send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The body of `GET url` as text (a Prometheus page).
pub async fn text_of(http: &reqwest::Client, url: String) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}
