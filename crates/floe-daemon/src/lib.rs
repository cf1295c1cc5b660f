//! Floe's aggregator and publisher: Walrus's HTTP API over a [`floe_client::Client`].
//!
//! * Every mode: `GET /status` (`OK`), `GET /v1/api` (this API's OpenAPI 3.1 document),
//!   `GET /metrics` (Prometheus text). CORS allows any origin, method and header (preflights
//!   are cached for 24 h) and exposes every response header.
//! * Aggregator: `GET /v1/blobs/{blob_id}` (with one `Range`), `GET
//!   /v1/blobs/{blob_id}/byte-range?start=&length=`, `GET /v1/blobs/by-object-id/{object_id}`
//!   (module `aggregator` documents the headers and the [`range`] rules);
//!   `GET /v1alpha/blobs/{blob_id}/stream` and `GET`/`POST /v1alpha/blobs/concat`, streamed
//!   (module `stream`).
//! * Quilts (module `quilt`): `PUT /v1/quilts` (publisher), patches by patch ID or by quilt ID
//!   and identifier, and a quilt's patch list (aggregator).
//! * Publisher: `PUT /v1/blobs` (module `publisher`), and, with `--enable-delete`, `DELETE
//!   /v1/blobs/{blob_id}` and `DELETE /v1/blobs/by-object-id/{object_id}`, answered with a
//!   [`DeleteResult`]. Optional JWT authentication ([`auth`]).
//!
//! * The web dashboard at `/dashboard` (crate `floe_dashboard`; `--no-dashboard` turns it off),
//!   with uploads only where this daemon stores blobs without a JWT.
//!
//! Errors use Walrus's JSON error body (domain `daemon.walrus.space`; statuses in [`error`]) and carry
//! `Cache-Control: no-store`. Reads and writes are each bounded: so many run, so many wait, the
//! rest get 429 (module `limit`).
//!
//! A binary runs it with [`serve`] (or [`serve_on`] with its own listener) and
//! [`shutdown_signal`]; [`router`] gives the bare routes.
//!
//! Layout: `options` (settings, clap flags), `aggregator` and `publisher` (handlers), `range`
//! (the `Range` header), `auth` (JWT), `limit` (load shedding), `metrics`, `openapi`, `error`,
//! `memory` (free memory returned once idle).
#![forbid(unsafe_code)]

mod aggregator;
pub mod auth;
mod coalesce;
pub mod error;
mod limit;
pub mod memory;
mod metrics;
mod multipart;
mod openapi;
pub mod options;
mod publisher;
mod quilt;
pub mod range;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, put};
use floe_client::Client;
use floe_http::body::BodyGuard;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};

pub use auth::{Claims, JwtAuth};
pub use error::{DOMAIN, Failure};
pub use openapi::spec as openapi_spec;
pub use options::{DaemonOptions, JwtAlgorithm, Mode};
pub use publisher::DeleteResult;

use crate::limit::Limiter;
use crate::metrics::Metrics;

/// How long browsers may cache a CORS preflight answer.
pub const CORS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Why the daemon cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("invalid daemon options: {0}")]
    Options(String),
    #[error("the {0} mode stores blobs and needs a wallet to pay for and own them; configure one")]
    NoWallet(&'static str),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// What every handler shares.
pub struct Shared {
    pub(crate) client: Client,
    pub(crate) options: DaemonOptions,
    pub(crate) metrics: Metrics,
    pub(crate) reads: Limiter,
    pub(crate) writes: Limiter,
    pub(crate) auth: Option<JwtAuth>,
    pub(crate) reads_in_flight: coalesce::Coalescer,
    /// Requests in flight, for returning free memory when idle ([`memory`]).
    pub(crate) idle: Arc<memory::Idle>,
}

pub(crate) type AppState = Arc<Shared>;

fn build(client: Client, options: DaemonOptions) -> Result<AppState, DaemonError> {
    options.validate()?;
    if options.mode.writes() && client.address().is_none() {
        return Err(DaemonError::NoWallet(options.mode.name()));
    }
    let auth = JwtAuth::from_options(&options).map_err(DaemonError::Options)?;
    Ok(Arc::new(Shared {
        client,
        reads_in_flight: coalesce::Coalescer::default(),
        idle: Arc::default(),
        reads: Limiter::new(
            options.aggregator_max_concurrent_requests,
            options.aggregator_max_buffer_size,
        ),
        writes: Limiter::new(
            options.publisher_max_concurrent_requests,
            options.publisher_max_buffer_size,
        ),
        metrics: Metrics::default(),
        auth,
        options,
    }))
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    let text = s.metrics.render(
        s.options.mode.reads().then_some(&s.reads),
        s.options.mode.writes().then_some(&s.writes),
    );
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

/// Errors are never cached (a blob missing now may be certified a second later), and no
/// answer is content-sniffed.
async fn response_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !response.status().is_success() {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn app(state: AppState) -> Router {
    let mode = state.options.mode;
    // Routes check body sizes themselves (the publisher drains what it refuses).
    let guard = BodyGuard::new(
        None,
        Duration::from_millis(state.options.body_idle_timeout_ms),
    );
    let spec = Arc::new(openapi::spec(&state.options));
    let mut router = Router::new()
        .route("/status", get(|| async { "OK" }))
        .route(
            "/v1/api",
            get(move || {
                let spec = spec.clone();
                async move { axum::Json((*spec).clone()) }
            }),
        )
        .route("/metrics", get(metrics_text));
    let mut by_blob_id: MethodRouter<AppState> = MethodRouter::new();
    let mut by_object_id: MethodRouter<AppState> = MethodRouter::new();
    if mode.reads() {
        by_blob_id = by_blob_id.get(aggregator::get_blob);
        by_object_id = by_object_id.get(aggregator::get_by_object_id);
        router = router
            .route(
                "/v1/blobs/{blob_id}/byte-range",
                get(aggregator::get_byte_range),
            )
            .route(
                "/v1/blobs/by-quilt-patch-id/{quilt_patch_id}",
                get(quilt::get_by_patch_id),
            )
            .route(
                "/v1/blobs/by-quilt-id/{quilt_id}/{identifier}",
                get(quilt::get_by_identifier),
            )
            .route("/v1/quilts/{quilt_id}/patches", get(quilt::list_patches))
            .route("/v1alpha/blobs/{blob_id}/stream", get(stream::get_stream))
            .route(
                "/v1alpha/blobs/concat",
                get(stream::get_concat).post(stream::post_concat),
            );
    }
    if mode.writes() {
        router = router.route("/v1/quilts", put(quilt::put_quilt));
        by_blob_id = by_blob_id.delete(publisher::delete_blob);
        by_object_id = by_object_id.delete(publisher::delete_by_object_id);
        router = router.route("/v1/blobs", put(publisher::put_blob));
    }
    let router = router
        .route("/v1/blobs/{blob_id}", by_blob_id)
        .route("/v1/blobs/by-object-id/{object_id}", by_object_id)
        // Both fallbacks read (and discard) what the client is still sending, so it reads the
        // answer instead of a reset.
        .fallback(move |req: axum::extract::Request| async move {
            guard.discard(req.into_body());
            Failure::not_found(
                "NO_SUCH_ROUTE",
                "no such route; see GET /v1/api for the API",
            )
        })
        .method_not_allowed_fallback(move |req: axum::extract::Request| async move {
            guard.discard(req.into_body());
            Failure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "INVALID_ARGUMENT",
                "METHOD_NOT_ALLOWED",
                "this route does not take that method in this mode; see GET /v1/api",
            )
        })
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods(Any)
                .allow_headers(Any)
                .expose_headers(Any)
                .max_age(CORS_MAX_AGE),
        )
        .layer(axum::middleware::map_response(response_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            floe_http::body::guard_bodies::<error::DaemonDomain>,
        ))
        .with_state(state.clone());
    let idle = state.idle.clone();
    // Merged after the layers: the dashboard sets its own headers, and its polling is not
    // counted in the daemon's request metrics.
    let router = if state.options.no_dashboard {
        router
    } else {
        router.merge(dashboard(state))
    };
    router.layer(axum::middleware::from_fn_with_state(idle, memory::track))
}

/// The web dashboard at `/dashboard`, charting this daemon's own metrics; uploads through
/// `PUT /v1/blobs` only where this daemon stores blobs without a JWT.
fn dashboard(state: AppState) -> Router {
    let o = &state.options;
    let upload =
        (o.mode.writes() && o.jwt_decode_secret.is_none()).then(|| floe_dashboard::UploadTarget {
            path: "/v1/blobs".into(),
            max_bytes: o.max_body_bytes(),
        });
    let read_route = o.mode.reads().then(|| "/v1/blobs".to_string());
    let client = state.client.clone();
    let metrics = floe_dashboard::MetricsSource::Local(Arc::new(move || {
        state.metrics.render(
            state.options.mode.reads().then_some(&state.reads),
            state.options.mode.writes().then_some(&state.writes),
        )
    }));
    floe_dashboard::router(
        client,
        floe_dashboard::DashboardOptions {
            upload,
            read_route,
            metrics,
            ..floe_dashboard::DashboardOptions::default()
        },
    )
}

fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// The daemon's routes for `options.mode`, reading and storing through `client` (whose wallet
/// pays for and owns what the publisher stores).
pub fn router(client: Client, options: DaemonOptions) -> Result<Router, DaemonError> {
    Ok(app(build(client, options)?))
}

/// Listen on `options.bind_address` (and `options.metrics_address`, if set) and serve until
/// `shutdown` completes; then stop accepting, finish the requests in flight, and return.
pub async fn serve(
    client: Client,
    options: DaemonOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let address = options.bind_address;
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| DaemonError::Bind { address, source })?;
    serve_on(listener, client, options, shutdown).await
}

/// [`serve`] on a listener the caller bound (tests bind port 0).
pub async fn serve_on(
    listener: TcpListener,
    client: Client,
    options: DaemonOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let state = build(client, options)?;
    let releasing = memory::release().map(|release| {
        tokio::spawn(memory::release_when_idle(
            state.idle.clone(),
            release,
            memory::IDLE_BEFORE_RELEASE,
        ))
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics_server = match state.options.metrics_address {
        Some(address) => {
            let l = TcpListener::bind(address)
                .await
                .map_err(|source| DaemonError::Bind { address, source })?;
            let mut rx = stop_rx.clone();
            let app = metrics_app(state.clone());
            Some(tokio::spawn(async move {
                axum::serve(l, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|stop| *stop).await;
                    })
                    .await
            }))
        }
        None => None,
    };
    tracing::info!(
        mode = state.options.mode.name(),
        address = %listener.local_addr().map_err(DaemonError::Serve)?,
        wallet = ?state.client.address(),
        "serving"
    );
    let served = floe_http::serve(
        listener,
        app(state),
        floe_http::ServeLimits::default(),
        async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        },
    )
    .await;
    if let Some(task) = releasing {
        task.abort();
    }
    if let Some(task) = metrics_server {
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "the metrics server failed"),
            Err(e) => tracing::warn!(error = %e, "the metrics server panicked"),
            Ok(Ok(())) => {}
        }
    }
    served.map_err(DaemonError::Serve)
}

/// Completes on Ctrl-C or, on Unix, SIGTERM: the usual `shutdown` for [`serve`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
