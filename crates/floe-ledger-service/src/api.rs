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
        .route("/v1/events", get(events))
        .route("/v1/entries/{index}", get(entry))
        .route("/v1/health", get(health))
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
        .with_state(ledger)
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
    let info = ledger.read(|s, _| SystemInfo::from_state(s)).await?;
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
    let resp = ledger
        .read(|s, events| {
            let status = s.blob_status(&blob_id);
            let event = status_event(&status).and_then(|i| events.get(i as usize).cloned());
            BlobStatusResponse {
                blob_id,
                epoch: s.epoch(),
                status,
                event,
            }
        })
        .await?;
    Ok(ok(resp))
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

async fn object(State(ledger): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: ObjectId = id.parse().map_err(|e: floe_core::IdParseError| {
        ApiError::bad_request("BAD_OBJECT_ID", e.to_string())
    })?;
    let found = ledger
        .read(|s, _| {
            s.blob_object(&id)
                .cloned()
                .map(ObjectResponse::Blob)
                .or_else(|| {
                    s.storage_resource(&id)
                        .cloned()
                        .map(ObjectResponse::Storage)
                })
                .or_else(|| s.nodes().get(&id).cloned().map(ObjectResponse::Node))
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
        .read(|s, _| AccountResponse {
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
    let events = ledger.events(q.cursor, limit, wait).await;
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
    let (epoch, digest, state_hash, events) = ledger
        .read(|s, ev| {
            (
                s.epoch(),
                hex::encode(s.digest()),
                hex::encode(s.state_hash()),
                ev.len(),
            )
        })
        .await?;
    Ok(ok(HealthInfo {
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
