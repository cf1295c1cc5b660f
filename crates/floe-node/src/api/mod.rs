//! The node's REST API: Walrus's routes, BCS bodies (`application/octet-stream`) and JSON
//! envelopes (`{"success":{"code","data"}}`, `{"error":{"status","code","message","details"}}`).

mod handlers;
mod metrics;
mod migrate;
mod openapi;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use floe_http::body::BodyGuard;
use serde::Serialize;
use tower_http::cors::{Any, CorsLayer};

use crate::node::{NodeError, StorageNode};

pub use metrics::RequestMetrics;

/// Error domain in error bodies: Walrus's storage-node domain, which Walrus clients match on.
pub const DOMAIN: &str = "storage.walrus.space";

/// The node's errors (domain `storage.walrus.space`).
pub struct NodeDomain;
impl floe_http::Domain for NodeDomain {
    const NAME: &'static str = DOMAIN;
}

/// An error response.
pub type ApiError = floe_http::ApiError<NodeDomain>;

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        use StatusCode as S;
        let (http, status, reason) = match &e {
            NodeError::NotRegistered(_) => {
                (S::BAD_REQUEST, "FAILED_PRECONDITION", "NOT_REGISTERED")
            }
            NodeError::MetadataNotFound(_) => (S::NOT_FOUND, "NOT_FOUND", "METADATA_NOT_FOUND"),
            NodeError::InvalidMetadata(_) => {
                (S::BAD_REQUEST, "INVALID_ARGUMENT", "INVALID_METADATA")
            }
            NodeError::InvalidBlob(_) => (S::BAD_REQUEST, "FAILED_PRECONDITION", "INVALID_BLOB"),
            NodeError::SliverNotFound => (S::NOT_FOUND, "NOT_FOUND", "SLIVER_NOT_FOUND"),
            NodeError::ShardNotAssigned(_) => {
                (S::BAD_REQUEST, "FAILED_PRECONDITION", "SHARD_NOT_ASSIGNED")
            }
            NodeError::IndexOutOfRange { .. } => {
                (S::BAD_REQUEST, "INVALID_ARGUMENT", "INDEX_OUT_OF_RANGE")
            }
            NodeError::SliverIndexMismatch { .. } => {
                (S::BAD_REQUEST, "INVALID_ARGUMENT", "SLIVER_INDEX_MISMATCH")
            }
            NodeError::InvalidSliver(_) => (S::BAD_REQUEST, "INVALID_ARGUMENT", "INVALID_SLIVER"),
            NodeError::BadBody(_) => (S::BAD_REQUEST, "INVALID_ARGUMENT", "INVALID_BODY"),
            NodeError::MissingSlivers { .. } => {
                (S::BAD_REQUEST, "FAILED_PRECONDITION", "MISSING_SLIVERS")
            }
            NodeError::NotLiveDeletable(_) => {
                (S::BAD_REQUEST, "FAILED_PRECONDITION", "NOT_REGISTERED")
            }
            NodeError::CacheSaturated => (
                S::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "CACHE_SATURATED",
            ),
            NodeError::InvalidProof(_) => (S::BAD_REQUEST, "INVALID_ARGUMENT", "INVALID_PROOF"),
            NodeError::Busy => (S::SERVICE_UNAVAILABLE, "UNAVAILABLE", "UNAVAILABLE"),
            NodeError::BadQuery(_) => (S::BAD_REQUEST, "INVALID_ARGUMENT", "INVALID_FILTER"),
            NodeError::NoTargetSlivers => (
                S::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "NO_TARGET_SLIVERS_SPECIFIED",
            ),
            NodeError::TooManyTargets { .. } => (
                S::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "TOO_MANY_TARGET_SLIVERS",
            ),
            NodeError::Storage(_) | NodeError::Internal(_) => {
                (S::INTERNAL_SERVER_ERROR, "INTERNAL", "INTERNAL")
            }
        };
        if http == S::SERVICE_UNAVAILABLE {
            // Load shedding: the caller retries; not worth an operator's attention.
            tracing::debug!(error = %e, "request refused");
        } else if http.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        ApiError::new(http, status, reason, e.to_string())
    }
}

pub use floe_http::success;

/// A BCS body.
pub fn bcs_body<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let bytes = bcs::to_bytes(value).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "INTERNAL",
            e.to_string(),
        )
    })?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        bytes,
    )
        .into_response())
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub node: Arc<StorageNode>,
    pub metrics: Arc<RequestMetrics>,
    /// Buffers that sliver-batch bodies are read into, kept for the next upload.
    pub bodies: Arc<floe_http::pooled::BufferPool>,
}

/// Serve the node's routes on `listener` (HTTP/1.1 and HTTP/2, within its connection and
/// header-read limits) until `shutdown` resolves, then drain.
pub async fn serve(
    node: Arc<StorageNode>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = floe_http::ServeLimits {
        max_connections: node.config.limits.max_connections,
        header_read_timeout: std::time::Duration::from_millis(
            node.config.limits.header_read_timeout_ms,
        ),
        ..floe_http::ServeLimits::default()
    };
    let tls = node
        .tls_config(&listener.local_addr()?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let served =
        floe_http::serve_with(listener, router(Arc::clone(&node)), limits, tls, shutdown).await;
    // The server is down: stop the background workers too, so the store can close.
    let report = node
        .workers()
        .stop(crate::limits::WORKER_STOP_DEADLINE)
        .await;
    if !report.aborted.is_empty() {
        tracing::warn!(aborted = ?report.aborted, "workers still busy at the stop deadline were aborted");
    }
    served
}

/// All routes.
pub fn router(node: Arc<StorageNode>) -> Router {
    let max_body = node.config.limits.max_body_bytes;
    let guard = BodyGuard::new(
        Some(max_body as u64),
        std::time::Duration::from_millis(node.config.limits.body_idle_timeout_ms),
    );
    let bodies = floe_http::pooled::BufferPool::new(
        crate::limits::UPLOAD_BUFFERS_KEPT,
        crate::limits::UPLOAD_BUFFER_MAX_BYTES,
    );
    // An idle node does not keep its upload buffers (the task ends with the router).
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(floe_http::pooled::BufferPool::free_when_idle(
            Arc::downgrade(&bodies),
            std::time::Duration::from_millis(node.config.limits.upload_buffers_idle_ms.max(1)),
        ));
    }
    let state = AppState {
        node,
        metrics: Arc::new(RequestMetrics::default()),
        bodies,
    };
    Router::new()
        .route(
            "/v1/blobs/{blob_id}/metadata",
            get(handlers::get_metadata).put(handlers::put_metadata),
        )
        .route(
            "/v1/blobs/{blob_id}/metadata/status",
            get(handlers::metadata_status),
        )
        .route(
            "/v1/blobs/{blob_id}/slivers",
            put(handlers::put_sliver_batch),
        )
        .route(
            "/v1/blobs/{blob_id}/slivers/{pair}/{sliver_type}",
            get(handlers::get_sliver).put(handlers::put_sliver),
        )
        .route(
            "/v1/blobs/{blob_id}/slivers/{pair}/{sliver_type}/status",
            get(handlers::sliver_status),
        )
        .route(
            "/v1/blobs/{blob_id}/confirmation/permanent",
            get(handlers::confirm_permanent),
        )
        .route(
            "/v1/blobs/{blob_id}/confirmation/deletable/{object_id}",
            get(handlers::confirm_deletable),
        )
        .route(
            "/v1/blobs/{blob_id}/recoverySymbols",
            get(handlers::recovery_symbols),
        )
        .route(
            "/v1/blobs/{blob_id}/decodingSymbols",
            get(handlers::decoding_symbols),
        )
        .route(
            "/v1/blobs/{blob_id}/inconsistencyProof/{sliver_type}",
            post(handlers::inconsistency_proof),
        )
        .route("/v1/blobs/{blob_id}/status", get(handlers::blob_status))
        .route("/v1/blobs/{blob_id}/audit", post(handlers::audit))
        .route(
            crate::shard_sync::SYNC_SHARD_PATH,
            post(migrate::sync_shard),
        )
        .route("/v1/health", get(handlers::health))
        .route("/v1/api", get(|| async { axum::Json(openapi::spec()) }))
        .route("/metrics", get(handlers::metrics))
        .fallback(move |req: axum::extract::Request| async move {
            // Read (and discard) what the client is still sending, so it reads the 404.
            guard.discard(req.into_body());
            ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "NO_SUCH_ROUTE",
                "no such route; see GET /v1/api",
            )
        })
        // Like Walrus's nodes: any origin, method and header, so browser clients can talk to
        // nodes directly; preflights are answered here.
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods(Any)
                .allow_headers(Any)
                .expose_headers(Any),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            floe_http::body::guard_bodies::<NodeDomain>,
        ))
        .with_state(state)
}
