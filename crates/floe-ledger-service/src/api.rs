//! HTTP/JSON routes of the ledger. Successes are `{"success":{"code","data"}}`; errors are
//! `{"error":{"status","code","message","details":[{"@type":"ErrorInfo","reason","domain"}]}}`,
//! the envelopes of Walrus's node API.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use floe_core::{BlobId, ObjectId};
use floe_ledger::api_types::{
    AccountResponse, BlobStatusResponse, EntryDigest, EventsPage, HealthInfo, ObjectResponse,
    SubmitResponse, SystemInfo,
};
use floe_ledger::{Address, BlobStatus, SignedTransaction, TxError};
use serde::{Deserialize, Serialize};

use crate::service::{Ledger, SubmitError};

/// Error domain in error bodies.
pub const DOMAIN: &str = "ledger.floe";
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 512 * 1024;
/// Largest page of events.
pub const MAX_EVENT_PAGE: usize = 1000;
/// Longest long-poll wait.
pub const MAX_WAIT_MS: u64 = 30_000;

/// The ledger's errors (domain `ledger.floe`).
pub struct LedgerDomain;
impl floe_http::Domain for LedgerDomain {
    const NAME: &'static str = DOMAIN;
}

/// An API error with its HTTP status, status name and reason code.
pub type ApiError = floe_http::ApiError<LedgerDomain>;

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match &e {
            SubmitError::Rejected(tx) => {
                let (http, status) = match tx {
                    TxError::BadSignature => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
                    TxError::NotOwner(_) => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
                    TxError::NoSuchObject(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
                    TxError::BadSequence { .. } => (StatusCode::CONFLICT, "ABORTED"),
                    _ => (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"),
                };
                ApiError::new(http, status, tx.code(), e.to_string())
            }
            SubmitError::Busy(_) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "BUSY",
                e.to_string(),
            ),
            SubmitError::TooLarge(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_EXCEEDED",
                "TOO_LARGE",
                e.to_string(),
            ),
            SubmitError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "LOG_UNAVAILABLE",
                e.to_string(),
            ),
            SubmitError::LogFailed(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "LOG_FAILED",
                e.to_string(),
            ),
        }
    }
}

/// `{"success":{"code":200,"data":…}}`.
fn ok<T: Serialize>(data: T) -> Response {
    floe_http::success(StatusCode::OK, data)
}

type Shared = State<Arc<Ledger>>;

/// All routes.
pub fn router(ledger: Arc<Ledger>) -> Router {
    Router::new()
        .route("/v1/transactions", post(submit))
        .route("/v1/system", get(system))
        .route("/v1/blobs/{blob_id}", get(blob))
        .route("/v1/blobs/{blob_id}/certificate", get(certificate))
        .route("/v1/objects/{object_id}", get(object))
        .route("/v1/accounts/{address}", get(account))
        .route("/v1/challenges", get(challenges))
        .route("/v1/challenges/{epoch}", get(epoch_challenges))
        .route("/v1/events", get(events))
        .route("/v1/entries/{index}", get(entry))
        .route("/v1/health", get(health))
        .route("/v1/snapshot", get(snapshot))
        .route("/v1/api", get(openapi))
        .fallback(|| async {
            ApiError::not_found(
                "NO_SUCH_ROUTE",
                "no such route; see GET /v1/api for the API",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "INVALID_ARGUMENT",
                "METHOD_NOT_ALLOWED",
                "this route does not take that method; see GET /v1/api",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            ledger.clone(),
            read_your_writes,
        ))
        .with_state(ledger)
}

/// Request header: answer only from a state with at least this many log entries applied.
pub const MIN_SEQ_HEADER: &str = "x-floe-min-seq";
/// Response header: log entries applied when the answer was made.
pub const SEQ_HEADER: &str = "x-floe-seq";
/// Longest wait for [`MIN_SEQ_HEADER`] before answering 503 (the client then asks another
/// replica).
pub const MIN_SEQ_WAIT: Duration = Duration::from_secs(1);

/// Read-your-writes across replicas: a client sends the highest [`SEQ_HEADER`] it has seen
/// as [`MIN_SEQ_HEADER`], and a replica that is behind waits briefly for it or refuses.
async fn read_your_writes(
    State(ledger): Shared,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let min = request
        .headers()
        .get(MIN_SEQ_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(min) = min
        && !ledger.wait_applied(min, MIN_SEQ_WAIT).await
    {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "BEHIND",
            format!(
                "this replica has applied {} log entries, the client has seen {min}",
                ledger.progress().0
            ),
        )
        .into_response();
    }
    let mut response = next.run(request).await;
    let applied = ledger.progress().0;
    if let Ok(v) = axum::http::HeaderValue::from_str(&applied.to_string()) {
        response.headers_mut().insert(SEQ_HEADER, v);
    }
    response
}

async fn snapshot(State(ledger): Shared) -> Result<Response, ApiError> {
    match ledger.newest_snapshot().await {
        Some((seq, bytes)) => Ok((
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/octet-stream".to_string(),
                ),
                (
                    axum::http::HeaderName::from_static("x-floe-snapshot-seq"),
                    seq.to_string(),
                ),
            ],
            bytes,
        )
            .into_response()),
        None => Err(ApiError::not_found(
            "NO_SNAPSHOT",
            "this ledger has no snapshot",
        )),
    }
}

async fn submit(
    State(ledger): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_EXCEEDED",
                "BODY_TOO_LARGE",
                format!("request body exceeds {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::bad_request("BAD_BODY", e.body_text())
        }
    })?;
    let tx: SignedTransaction = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "MALFORMED_TRANSACTION",
            format!("the body is not a signed transaction: {e}"),
        )
    })?;
    let accepted = ledger.submit_tx(tx).await?;
    Ok(ok(SubmitResponse {
        entry_index: accepted.entry_index,
        digest: hex::encode(accepted.digest),
        events: accepted.events,
    }))
}

async fn system(State(ledger): Shared) -> Result<Response, ApiError> {
    let info = ledger.read_state(SystemInfo::from_state).await?;
    Ok(ok(info))
}

fn status_event(status: &BlobStatus) -> Option<u64> {
    match status {
        BlobStatus::Nonexistent => None,
        BlobStatus::Registered { event, .. }
        | BlobStatus::Certified { event, .. }
        | BlobStatus::Invalid { event }
        | BlobStatus::Deleted { event }
        | BlobStatus::Expired { event, .. } => Some(*event),
    }
}

async fn blob(State(ledger): Shared, Path(blob_id): Path<String>) -> Result<Response, ApiError> {
    let blob_id: BlobId = blob_id.parse().map_err(|e: floe_core::IdParseError| {
        ApiError::bad_request("BAD_BLOB_ID", e.to_string())
    })?;
    let (status, epoch) = ledger
        .read_state(|s| (s.blob_status(&blob_id), s.epoch()))
        .await?;
    // The event of an applied entry never changes: read apart from the state.
    let event = match status_event(&status) {
        Some(i) => ledger.event(i)?,
        None => None,
    };
    Ok(ok(BlobStatusResponse {
        blob_id,
        epoch,
        status,
        event,
    }))
}

async fn certificate(
    State(ledger): Shared,
    Path(blob_id): Path<String>,
) -> Result<Response, ApiError> {
    let blob_id: BlobId = blob_id.parse().map_err(|e: floe_core::IdParseError| {
        ApiError::bad_request("BAD_BLOB_ID", e.to_string())
    })?;
    match ledger.certificate(&blob_id).await? {
        Some(record) => Ok(ok(record)),
        None => Err(ApiError::not_found(
            "NOT_CERTIFIED",
            format!("blob {blob_id} was never certified"),
        )),
    }
}

/// `GET /v1/challenges`: the storage-challenge tallies of the kept epochs.
async fn challenges(State(ledger): Shared) -> Result<Response, ApiError> {
    Ok(ok(ledger.read_state(|s| s.challenge_summary()).await?))
}

/// `GET /v1/challenges/{epoch}`: one epoch's seed, samples, tallies, failures and signed
/// reports.
async fn epoch_challenges(
    State(ledger): Shared,
    Path(epoch): Path<String>,
) -> Result<Response, ApiError> {
    let epoch: u32 = epoch.parse().map_err(|_| {
        ApiError::bad_request("BAD_EPOCH", format!("{epoch:?} is not an epoch number"))
    })?;
    let found = ledger.read_state(|s| s.challenges(epoch).cloned()).await?;
    found.map(ok).ok_or_else(|| {
        ApiError::not_found(
            "NO_CHALLENGES",
            format!(
                "no storage challenges recorded for epoch {epoch} (they start when an epoch \
                 change is done, and the ledger keeps the last {} epochs)",
                floe_ledger::challenge::EPOCHS_KEPT
            ),
        )
    })
}

async fn object(State(ledger): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: ObjectId = id.parse().map_err(|e: floe_core::IdParseError| {
        ApiError::bad_request("BAD_OBJECT_ID", e.to_string())
    })?;
    let found = ledger
        .read_state(|s| {
            s.blob_object(&id)
                .cloned()
                .map(ObjectResponse::Blob)
                .or_else(|| {
                    s.storage_resource(&id)
                        .cloned()
                        .map(ObjectResponse::Storage)
                })
                .or_else(|| s.nodes().get(&id).cloned().map(ObjectResponse::Node))
                .or_else(|| s.shared_blob(&id).map(ObjectResponse::SharedBlob))
        })
        .await?;
    found
        .map(ok)
        .ok_or_else(|| ApiError::not_found("OBJECT_NOT_FOUND", format!("no object {id}")))
}

async fn account(State(ledger): Shared, Path(address): Path<String>) -> Result<Response, ApiError> {
    let address: Address = address
        .parse()
        .map_err(|e: String| ApiError::bad_request("BAD_ADDRESS", e))?;
    let resp = ledger
        .read_state(|s| AccountResponse {
            address,
            next_sequence: s.next_sequence(&address),
            blobs: s.blobs_of(&address).cloned().collect(),
            storage: s.storage_of(&address).cloned().collect(),
            nodes: s.nodes_of(&address).cloned().collect(),
        })
        .await?;
    Ok(ok(resp))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    cursor: u64,
    limit: Option<usize>,
    #[serde(default)]
    wait_ms: u64,
}

async fn events(
    State(ledger): Shared,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("BAD_QUERY", e.body_text()))?;
    let limit = q.limit.unwrap_or(MAX_EVENT_PAGE).clamp(1, MAX_EVENT_PAGE);
    let wait = Duration::from_millis(q.wait_ms.min(MAX_WAIT_MS));
    // A ledger whose snapshot history cannot be read answers 503 with the reason.
    let events = ledger.try_events(q.cursor, limit, wait).await?;
    let next_cursor = events.last().map_or(q.cursor, |e| e.index + 1);
    Ok(ok(EventsPage {
        events,
        next_cursor,
    }))
}

async fn entry(State(ledger): Shared, Path(index): Path<String>) -> Result<Response, ApiError> {
    let index: u64 = index.parse().map_err(|_| {
        ApiError::bad_request(
            "BAD_ENTRY_INDEX",
            format!("{index:?} is not a log entry index"),
        )
    })?;
    let digest = ledger.digest_after(index).ok_or_else(|| {
        ApiError::not_found("ENTRY_NOT_FOUND", format!("no durable entry {index}"))
    })?;
    Ok(ok(EntryDigest {
        index,
        digest: hex::encode(digest),
    }))
}

async fn health(State(ledger): Shared) -> Result<Response, ApiError> {
    let (applied, durable) = ledger.progress();
    let poisoned = ledger.poisoned();
    let (epoch, digest, state_hash, events) = ledger.summary().await?;
    let (digest, state_hash) = (hex::encode(digest), hex::encode(state_hash));
    let replica = ledger.replica_status();
    Ok(ok(HealthInfo {
        backend: Some(if replica.is_some() { "etcd" } else { "file" }.to_string()),
        chain_head: replica.as_ref().map(|r| hex::encode(r.chain_head)),
        snapshot_seq: replica.as_ref().and_then(|r| r.snapshot_seq),
        snapshot_root: replica
            .as_ref()
            .and_then(|r| r.snapshot_root.map(hex::encode)),
        last_error: replica.as_ref().and_then(|r| r.last_error.clone()),
        status: if poisoned.is_some() { "failed" } else { "ok" }.to_string(),
        epoch,
        entries: applied,
        durable_entries: durable,
        events: events as u64,
        digest,
        state_hash,
        failure: poisoned,
    }))
}

async fn openapi() -> Response {
    axum::Json(crate::openapi::spec()).into_response()
}
