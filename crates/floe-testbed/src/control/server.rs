//! The control API's server: routes, the bearer-token check, and the tasks that stop removed
//! nodes once they have handed over their shards.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use floe_ledger::api_types::{ObjectResponse, SystemInfo};
use floe_ledger::membership::{Effect, member, next_shard_count, shard_count};
use floe_ledger_client::LedgerClient;
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

use super::{
    Added, CONTROL_VERSION, ControlError, ControlFile, ErrorBody, NodeRow, Removed, WeightBody,
    WeightChanged, control_path,
};
use crate::{Testbed, TestbedError, node_protocol_key};

/// The running testbed, shared by the foreground task and the control API. `None` once the
/// testbed is shutting down.
pub type SharedTestbed = Arc<Mutex<Option<Testbed>>>;

/// The running control API; [`Control::stop`] it (dropping it removes `control.json` too).
pub struct Control {
    pub url: String,
    path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Control {
    /// Stop serving (letting requests in flight finish, within 10 s) and remove `control.json`.
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
            tracing::warn!("the testbed control API did not stop within 10 s");
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where the control API tells its operator what it did on its own (a removed node stopped),
/// one line at a time. `floe testbed` prints them.
pub type Report = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
struct Ctl {
    bed: SharedTestbed,
    token: Arc<str>,
    seed: u64,
    ledger: LedgerClient,
    report: Report,
}

/// Serve the control API of `bed` (whose directory is `dir`) on a loopback port, and write
/// `control.json`. Nodes removed before the testbed last stopped are stopped again once they
/// have handed over their shards.
pub async fn serve(
    bed: SharedTestbed,
    dir: &Path,
    report: Report,
) -> Result<Control, ControlError> {
    let (seed, ledger_url, leaving) = {
        let guard = bed.lock().await;
        let b = guard.as_ref().ok_or(ControlError::NotRunning)?;
        (b.state().seed, b.ledger_url(), b.leaving())
    };
    let token = random_hex().map_err(ControlError::Random)?;
    let ctl = Ctl {
        bed,
        token: token.clone().into(),
        seed,
        ledger: LedgerClient::new(ledger_url),
        report,
    };
    for i in leaving {
        (ctl.report)(&format!(
            "node {i} was leaving when the testbed stopped: it serves its shards until they have moved"
        ));
        tokio::spawn(stop_when_gone(ctl.clone(), i));
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(ControlError::Listen)?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(ControlError::Listen)?
    );
    let router = router(ctl);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "the testbed control API failed");
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
    let text = serde_json::to_string_pretty(&file).unwrap_or_default();
    write_private(&path, &text).map_err(|source| ControlError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(control)
}

fn router(ctl: Ctl) -> axum::Router {
    axum::Router::new()
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
        .with_state(ctl)
}

/// Create `path` readable by its owner only (it holds the bearer token).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

fn random_hex() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut b)?;
    Ok(hex::encode(b))
}

/// A `{"error": reason}` answer.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

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

/// The weight in a `{"weight":W}` body (`default` if the body is empty or has no weight).
fn weight(body: &Bytes, default: Option<u64>) -> Result<u64, ApiError> {
    let bad = |reason: String| ApiError(StatusCode::BAD_REQUEST, reason);
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .filter(serde_json::Value::is_object)
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

async fn list(State(ctl): State<Ctl>) -> Result<Json<Vec<NodeRow>>, ApiError> {
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
    let mut out = Vec::with_capacity(nodes.len());
    for (index, address, running, removed) in nodes {
        let key = ctl.key(index);
        let node_id = system.node_in_committees(&key);
        let weight = match node_id {
            Some(id) => match ctl.ledger.object(&id).await.map_err(ledger_unavailable)? {
                Some(ObjectResponse::Node(n)) => Some(n.weight),
                _ => None,
            },
            None => None,
        };
        out.push(NodeRow {
            index,
            address,
            running,
            removed,
            node_id,
            weight,
            shards: shard_count(&system.committee, &key),
            next_shards: next_shard_count(&system, &key),
        });
    }
    Ok(Json(out))
}

async fn add(State(ctl): State<Ctl>, body: Bytes) -> Result<Json<Added>, ApiError> {
    let weight = weight(&body, Some(1))?;
    let (index, address) = {
        let mut guard = ctl.bed.lock().await;
        let bed = guard.as_mut().ok_or_else(stopping)?;
        let i = bed.add_node(weight).await.map_err(testbed_error)?;
        (i, bed.node_address(i).to_string())
    };
    let system = ctl.system().await?;
    let key = ctl.key(index);
    let in_next = system
        .next_committee
        .as_ref()
        .map(|c| member(c, &key).is_some());
    Ok(Json(Added {
        index,
        address,
        node_id: system.node_in_committees(&key),
        weight,
        effect: Effect::after(&system, in_next),
    }))
}

async fn remove(
    State(ctl): State<Ctl>,
    UrlPath(i): UrlPath<String>,
) -> Result<Json<Removed>, ApiError> {
    let index = {
        let mut guard = ctl.bed.lock().await;
        let bed = guard.as_mut().ok_or_else(stopping)?;
        let i = index(bed, &i)?;
        bed.remove_node(i).await.map_err(testbed_error)?;
        i
    };
    tokio::spawn(stop_when_gone(ctl.clone(), index));
    let system = ctl.system().await?;
    let key = ctl.key(index);
    let out_of_next = system
        .next_committee
        .as_ref()
        .map(|c| member(c, &key).is_none());
    Ok(Json(Removed {
        index,
        node_id: system.node_in_committees(&key),
        in_committee: member(&system.committee, &key).is_some(),
        next_shards: next_shard_count(&system, &key),
        effect: Effect::after(&system, out_of_next),
    }))
}

async fn set_weight(
    State(ctl): State<Ctl>,
    UrlPath(i): UrlPath<String>,
    body: Bytes,
) -> Result<Json<WeightChanged>, ApiError> {
    let weight = weight(&body, None)?;
    let index = {
        let mut guard = ctl.bed.lock().await;
        let bed = guard.as_mut().ok_or_else(stopping)?;
        let i = index(bed, &i)?;
        bed.set_node_weight(i, weight)
            .await
            .map_err(testbed_error)?;
        i
    };
    let system = ctl.system().await?;
    let key = ctl.key(index);
    Ok(Json(WeightChanged {
        index,
        node_id: system.node_in_committees(&key),
        weight,
        next_shards: next_shard_count(&system, &key),
        effect: Effect::after(&system, None),
    }))
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
            (ctl.report)(&format!("node {i} left the committee and was stopped"));
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
