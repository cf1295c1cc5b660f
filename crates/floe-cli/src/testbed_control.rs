//! The control API of a running `floe testbed`: other terminals add, remove and re-weight its
//! nodes (`floe testbed add-node | remove-node | set-weight | nodes`, in `testbed_remote`).
//!
//! It listens on a loopback port and writes `<data-dir>/control.json` (mode 0600) with its URL
//! and a random bearer token; every request must carry `Authorization: Bearer <token>`. The file
//! is removed when the testbed stops.
//!
//! | route | does |
//! |---|---|
//! | `GET /v1/nodes` | the nodes: index, address, running, removed, node ID, weight, shards now and next |
//! | `POST /v1/nodes` `{"weight":W}` | add a node (register, start) |
//! | `DELETE /v1/nodes/{i}` | remove node i: deregister it now; stop it once it is in no committee |
//! | `POST /v1/nodes/{i}/weight` `{"weight":W}` | change node i's weight |
//!
//! Errors are `{"error": reason}` with a 4xx or 5xx status.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use floe_ledger::api_types::{ObjectResponse, SystemInfo};
use floe_ledger_client::LedgerClient;
use floe_testbed::{Testbed, TestbedError, node_protocol_key};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

use crate::node_membership::{Effect, member, merge};

/// The running testbed, shared by the foreground task and the control API. `None` once the
/// testbed is shutting down.
pub type SharedTestbed = Arc<Mutex<Option<Testbed>>>;

/// The format version of `control.json`.
pub const CONTROL_VERSION: u32 = 1;

/// `<data-dir>/control.json`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlFile {
    pub version: u32,
    pub url: String,
    pub token: String,
}

pub fn control_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.json")
}

/// The running control API; [`Control::stop`] it (dropping it removes `control.json` too).
pub struct Control {
    pub url: String,
    path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Control {
    /// Stop serving (letting requests in flight finish, bounded) and remove `control.json`.
    pub async fn stop(mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
        {
            eprintln!("warning: the testbed control API did not stop within 10 s");
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[derive(Clone)]
struct Ctl {
    bed: SharedTestbed,
    token: Arc<str>,
    seed: u64,
    ledger: LedgerClient,
}

/// Serve the control API of `bed` (whose directory is `dir`) on a loopback port, and write
/// `control.json`.
pub async fn serve(bed: SharedTestbed, dir: &Path) -> Result<Control> {
    let (seed, ledger_url) = {
        let guard = bed.lock().await;
        let b = guard.as_ref().context("the testbed is not running")?;
        (b.state().seed, b.ledger_url())
    };
    let token = random_hex()?;
    let ctl = Ctl {
        bed,
        token: token.clone().into(),
        seed,
        ledger: LedgerClient::new(ledger_url),
    };
    let leaving = {
        let guard = ctl.bed.lock().await;
        guard.as_ref().map(|b| b.leaving()).unwrap_or_default()
    };
    for i in leaving {
        println!(
            "node {i} was leaving when the testbed stopped: it serves its shards until they have moved"
        );
        tokio::spawn(stop_when_gone(ctl.clone(), i));
    }
    let router = axum::Router::new()
        .route("/v1/nodes", get(list).post(add))
        .route("/v1/nodes/{i}", delete(remove))
        .route("/v1/nodes/{i}/weight", post(set_weight))
        .fallback(|| async {
            ApiError(
                StatusCode::NOT_FOUND,
                "no such route: use GET or POST /v1/nodes, DELETE /v1/nodes/{i}, \
                 POST /v1/nodes/{i}/weight"
                    .into(),
            )
        })
        .layer(axum::middleware::from_fn_with_state(ctl.clone(), authorize))
        .with_state(ctl);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot listen on a loopback port for the testbed control API")?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            eprintln!("error: the testbed control API failed: {e}");
        }
    });
    let path = control_path(dir);
    let control = Control {
        url: url.clone(),
        path: path.clone(),
        stop: Some(tx),
        task: Some(task),
    };
    // A file left by a testbed that was killed: this process owns the directory now (the
    // ledger's lock and ports would have refused a second testbed).
    let _ = std::fs::remove_file(&path);
    let file = ControlFile {
        version: CONTROL_VERSION,
        url,
        token,
    };
    crate::cli_config::write_private(&path, &serde_json::to_string_pretty(&file)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(control)
}

fn random_hex() -> Result<String> {
    let mut b = [0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?,
        &mut b,
    )?;
    Ok(hex::encode(b))
}

/// A `{"error": reason}` answer.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

fn stopping() -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "the testbed is stopping".into(),
    )
}

fn ledger_unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError(
        StatusCode::BAD_GATEWAY,
        format!("the testbed's ledger: {e}"),
    )
}

fn testbed_error(e: TestbedError) -> ApiError {
    match e {
        TestbedError::Ledger(reason) => ApiError(
            StatusCode::CONFLICT,
            format!("the ledger refused: {reason}"),
        ),
        TestbedError::Options(reason) => ApiError(StatusCode::BAD_REQUEST, reason),
        other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// Constant-time comparison of the presented token with ours.
fn token_matches(presented: &[u8], ours: &[u8]) -> bool {
    presented.len() == ours.len()
        && presented
            .iter()
            .zip(ours)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn authorize(State(ctl): State<Ctl>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(t) if token_matches(t.trim().as_bytes(), ctl.token.as_bytes()) => next.run(req).await,
        Some(_) => ApiError(
            StatusCode::UNAUTHORIZED,
            "wrong bearer token: use the token in this testbed's control.json".into(),
        )
        .into_response(),
        None => ApiError(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer <token>`: the token is in this testbed's control.json"
                .into(),
        )
        .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightBody {
    weight: Option<u64>,
}

/// The weight in a `{"weight":W}` body (`default` if the body is empty or has no weight).
fn weight(body: &Bytes, default: Option<u64>) -> Result<u64, ApiError> {
    let bad = |reason: String| ApiError(StatusCode::BAD_REQUEST, reason);
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Value>(body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| bad("the body must be a JSON object {\"weight\": W}".into()))
            .and_then(|v| {
                serde_json::from_value::<WeightBody>(v)
                    .map_err(|e| bad(format!("the body must be {{\"weight\": W}}: {e}")))
            })?
            .weight
    };
    match parsed.or(default) {
        None => Err(bad("the body must be {\"weight\": W}".into())),
        Some(0) => Err(bad(
            "the weight must be at least 1 (to remove a node, use DELETE /v1/nodes/{i})".into(),
        )),
        Some(w) => Ok(w),
    }
}

/// Node `i` of `bed`, checked to exist and not be removed.
fn index(bed: &Testbed, i: &str) -> Result<usize, ApiError> {
    let n = bed.node_count();
    let i: usize = i.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{i:?} is not a node index (0 to {})", n - 1),
        )
    })?;
    if i >= n {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no node {i}: the testbed has nodes 0 to {}", n - 1),
        ));
    }
    if bed.is_removed(i) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("node {i} was removed"),
        ));
    }
    Ok(i)
}

impl Ctl {
    async fn system(&self) -> Result<SystemInfo, ApiError> {
        self.ledger.system().await.map_err(ledger_unavailable)
    }

    fn key(&self, i: usize) -> floe_crypto::ProtocolPublicKey {
        *node_protocol_key(self.seed, i).public_key()
    }
}

async fn list(State(ctl): State<Ctl>) -> ApiResult {
    let nodes: Vec<(usize, String, bool, bool)> = {
        let guard = ctl.bed.lock().await;
        let bed = guard.as_ref().ok_or_else(stopping)?;
        (0..bed.node_count())
            .map(|i| {
                (
                    i,
                    bed.node_address(i).to_string(),
                    bed.is_running(i),
                    bed.is_removed(i),
                )
            })
            .collect()
    };
    let system = ctl.system().await?;
    let mut out = Vec::new();
    for (i, address, running, removed) in nodes {
        let key = ctl.key(i);
        let node_id = system.node_in_committees(&key);
        let weight = match node_id {
            Some(id) => match ctl.ledger.object(&id).await.map_err(ledger_unavailable)? {
                Some(ObjectResponse::Node(n)) => Some(n.weight),
                _ => None,
            },
            None => None,
        };
        out.push(json!({
            "index": i,
            "address": address,
            "running": running,
            "removed": removed,
            "nodeId": node_id,
            "weight": weight,
            "shards": member(&system.committee, &key).map_or(0, |m| m.shards.len()),
            "nextShards": system
                .next_committee
                .as_ref()
                .map(|c| member(c, &key).map_or(0, |m| m.shards.len())),
        }));
    }
    Ok(Json(Value::Array(out)))
}

async fn add(State(ctl): State<Ctl>, body: Bytes) -> ApiResult {
    let w = weight(&body, Some(1))?;
    let (i, address) = {
        let mut guard = ctl.bed.lock().await;
        let bed = guard.as_mut().ok_or_else(stopping)?;
        let i = bed.add_node(w).await.map_err(testbed_error)?;
        (i, bed.node_address(i).to_string())
    };
    let system = ctl.system().await?;
    let key = ctl.key(i);
    let in_next = system
        .next_committee
        .as_ref()
        .map(|c| member(c, &key).is_some());
    let mut v = json!({
        "index": i,
        "address": address,
        "nodeId": system.node_in_committees(&key),
        "weight": w,
    });
    merge(&mut v, &Effect::after(&system, in_next));
    Ok(Json(v))
}

async fn remove(State(ctl): State<Ctl>, UrlPath(i): UrlPath<String>) -> ApiResult {
    let i = {
        let mut guard = ctl.bed.lock().await;
        let bed = guard.as_mut().ok_or_else(stopping)?;
        let i = index(bed, &i)?;
        bed.remove_node(i).await.map_err(testbed_error)?;
        i
    };
    tokio::spawn(stop_when_gone(ctl.clone(), i));
    let system = ctl.system().await?;
    let key = ctl.key(i);
    let out_of_next = system
        .next_committee
        .as_ref()
        .map(|c| member(c, &key).is_none());
    let mut v = json!({
        "index": i,
        "nodeId": system.node_in_committees(&key),
        "inCommittee": member(&system.committee, &key).is_some(),
        "nextShards": system
            .next_committee
            .as_ref()
            .map(|c| member(c, &key).map_or(0, |m| m.shards.len())),
    });
    merge(&mut v, &Effect::after(&system, out_of_next));
    Ok(Json(v))
}

async fn set_weight(State(ctl): State<Ctl>, UrlPath(i): UrlPath<String>, body: Bytes) -> ApiResult {
    let w = weight(&body, None)?;
    let i = {
        let mut guard = ctl.bed.lock().await;
        let bed = guard.as_mut().ok_or_else(stopping)?;
        let i = index(bed, &i)?;
        bed.set_node_weight(i, w).await.map_err(testbed_error)?;
        i
    };
    let system = ctl.system().await?;
    let key = ctl.key(i);
    let mut v = json!({
        "index": i,
        "nodeId": system.node_in_committees(&key),
        "weight": w,
        "nextShards": system
            .next_committee
            .as_ref()
            .map(|c| member(c, &key).map_or(0, |m| m.shards.len())),
    });
    merge(&mut v, &Effect::after(&system, None));
    Ok(Json(v))
}

/// Stop removed node `i` once it is in none of the current, previous and next committees and
/// no epoch change is in progress: nobody needs its shards any more. Ends when the testbed
/// stops.
async fn stop_when_gone(ctl: Ctl, i: usize) {
    let key = ctl.key(i);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let gone = match ctl.ledger.system().await {
            Ok(s) => s.node_in_committees(&key).is_none() && !s.epoch_state.is_syncing(),
            Err(_) => false,
        };
        let mut guard = ctl.bed.lock().await;
        let Some(bed) = guard.as_mut() else {
            return;
        };
        if gone {
            bed.stop_node(i).await;
            println!("node {i} left the committee and was stopped");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(b"abc", b"abc"));
        assert!(!token_matches(b"abd", b"abc"));
        assert!(!token_matches(b"ab", b"abc"));
        assert!(!token_matches(b"", b"abc"));
    }

    #[test]
    fn weights_are_positive_and_bodies_strict() {
        assert_eq!(weight(&Bytes::from_static(b""), Some(1)).ok(), Some(1));
        assert_eq!(
            weight(&Bytes::from_static(b"{\"weight\":3}"), None).ok(),
            Some(3)
        );
        assert!(weight(&Bytes::from_static(b""), None).is_err());
        assert!(weight(&Bytes::from_static(b"{\"weight\":0}"), Some(1)).is_err());
        assert!(weight(&Bytes::from_static(b"{\"wait\":2}"), Some(1)).is_err());
        assert!(weight(&Bytes::from_static(b"[1]"), Some(1)).is_err());
    }
}
