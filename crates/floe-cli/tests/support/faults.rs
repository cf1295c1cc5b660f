//! Faults injected into a running network of processes: slivers deleted on disk, a node
//! behind a proxy that turns audits of one blob into audits of another, and the `floe` CLI
//! run against the network's directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use std::sync::Arc;

use floe_client::{Lifetime, NoProgress, StoreOptions};
use floe_core::audit::AuditRequest;
use floe_core::{BlobId, ObjectId, ShardIndex};
use floe_node_storage::{FjallStore, NodeStore};

use super::{Net, Stop};

/// `floe ARGS --config DIR/floe.yaml` in `dir`: (exit code, stdout, stderr).
pub fn floe(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_floe"))
        .current_dir(dir)
        .env_remove("FLOE_CONFIG")
        .env("HOME", dir)
        .args(args)
        .arg("--config")
        .arg(dir.join("floe.yaml"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Store `size` seeded random bytes (tag `tag`) for `epochs` epochs with client 0; returns the
/// blob ID and the blob object.
pub async fn store_random(
    net: &Net,
    (seed, tag): (u64, &str),
    size: usize,
    epochs: u32,
    deletable: bool,
) -> (BlobId, ObjectId) {
    let data = super::random_bytes(&mut super::rng(seed, tag), size);
    let options = StoreOptions {
        lifetime: Lifetime::Epochs(epochs),
        deletable,
        force: false,
    };
    let out = net
        .client(0)
        .store(data, &options, Arc::new(NoProgress))
        .await
        .unwrap();
    (out.result.blob_id().unwrap(), out.object.unwrap().id)
}

/// Write `DIR/floe.yaml` pointing at the network's ledger.
pub fn write_cli_config(net: &Net) {
    std::fs::write(
        net.dir().join("floe.yaml"),
        format!("ledger_url: {}\nwallet: wallet.json\n", net.ledger_url()),
    )
    .unwrap();
}

/// Node `i` stopped, the slivers of its shard `shard` deleted from its store, node restarted.
pub async fn delete_shard_on_disk(net: &mut Net, i: usize, shard: u16) {
    net.stop_node(i, Stop::Term).await;
    {
        let store = FjallStore::open(&net.node_dir(i).join("data"), Default::default()).unwrap();
        store.drop_shard(ShardIndex(shard)).unwrap();
        store.create_shard(ShardIndex(shard)).unwrap();
        store.persist().unwrap();
    }
    net.start_node(i).await;
}

/// Node `i` restarted with `from` replaced by `to` in its `node.toml`.
pub async fn restart_with_config_edit(net: &mut Net, i: usize, from: &str, to: &str) {
    net.stop_node(i, Stop::Term).await;
    let path = net.node_dir(i).join("node.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    assert!(toml.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(&path, toml.replace(from, to)).unwrap();
    net.start_node(i).await;
}

/// A node restarted behind a lying proxy; dropping it does not undo anything, call
/// [`LyingNode::restore`].
pub struct LyingNode {
    pub proxy: tokio::task::JoinHandle<()>,
    toml_path: PathBuf,
    toml: String,
}

impl LyingNode {
    /// Stop the proxy and put the node's configuration back (the node keeps running on its
    /// hidden port until restarted).
    pub fn restore(self) {
        self.proxy.abort();
        std::fs::write(&self.toml_path, self.toml).unwrap();
    }
}

/// Node `i` restarted on another port behind a proxy on its registered address that turns
/// every audit of `a` into an audit of `b` and the other way round: the node signs genuine
/// answers, for the wrong blob. Other routes are not served at the registered address.
pub async fn restart_behind_lying_proxy(
    net: &mut Net,
    i: usize,
    a: BlobId,
    b: BlobId,
) -> LyingNode {
    let registered = net.state.node_addresses[i].clone();
    net.stop_node(i, Stop::Term).await;
    let toml_path = net.node_dir(i).join("node.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    let hidden = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(&toml_path, toml.replace(&registered, &hidden.to_string())).unwrap();
    // The proxy holds the node's network key: clients pin it, and it is the node's to use.
    let key = net.node_network_key(i);
    let tls = floe_tls::server_config(&key, None, &["127.0.0.1".into()]).unwrap();
    let upstream = net
        .node_http
        .route(&hidden.to_string(), &[key.public_key()])
        .unwrap();
    let proxy = tokio::spawn(serve_lying_proxy(registered, upstream, tls, (a, b)));
    net.spawn_node_unchecked(i);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    LyingNode {
        proxy,
        toml_path,
        toml,
    }
}

/// A proxy on `listen` that forwards audits to `upstream`, asking about the other blob of
/// `swap` than the one asked for (audits of other blobs pass through unchanged).
async fn serve_lying_proxy(
    listen: String,
    (upstream, http): (String, reqwest::Client),
    tls: std::sync::Arc<rustls::ServerConfig>,
    swap: (BlobId, BlobId),
) {
    use axum::body::Bytes;
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/blobs/{id}/audit",
        post(move |body: Bytes| {
            let http = http.clone();
            let upstream = upstream.clone();
            async move {
                let AuditRequest::V1(mut r) = bcs::from_bytes::<AuditRequest>(&body).unwrap();
                r.blob_id = match r.blob_id {
                    x if x == swap.0 => swap.1,
                    x if x == swap.1 => swap.0,
                    x => x,
                };
                let asked = r.blob_id;
                let resp = http
                    .post(format!("{upstream}/v1/blobs/{asked}/audit"))
                    .body(bcs::to_bytes(&AuditRequest::V1(r)).unwrap())
                    .send()
                    .await
                    .unwrap();
                resp.bytes().await.unwrap().to_vec()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
    let limits = floe_http::ServeLimits::default();
    floe_http::serve_with(listener, app, limits, Some(tls), std::future::pending())
        .await
        .unwrap();
}
