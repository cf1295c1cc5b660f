//! A live dashboard of a Floe network, served by Floe itself: `floe dashboard`, and the
//! aggregator/publisher daemon (the testbed's included) at `/dashboard`.
//!
//! * The network page: the epoch with its dates and a countdown, epoch-change progress, the
//!   committee now and next with each node's health, event lag and drift fields, the ledger
//!   servers and their positions, storage used against capacity, request rates and latencies
//!   as small SVG charts, and the latest ledger events.
//! * The blob page (by blob ID or object ID): status and the event behind it, size, end epoch
//!   and its date, the nodes that confirm it, a map of where each shard's slivers are, audit
//!   results where nodes report any, a quilt's patches, and a download.
//! * The upload page, where the server takes writes: a file sent through the daemon's
//!   `PUT /v1/blobs` with a progress bar, answered with the blob ID and a link to its page.
//!
//! Pages are rendered on the server (readable without JavaScript); the one embedded script
//! only refreshes the live part, ticks the countdown and drives uploads. Every asset is in the
//! binary. Work is bounded: the sampler runs only while somebody looks (and stops
//! [`DashboardOptions::idle_after`] later), keeps [`sampler::HISTORY`] points, probes with
//! deadlines and size caps; downloads are capped at [`DashboardOptions::max_download_bytes`].
//!
//! Layout: `sampler` (what is measured) → `model` (the snapshot) → `network` (its HTML);
//! `blob` (a blob's facts) → `blob_page`; `chart`, `html`, `fetch`, `prom`, `error`.
#![forbid(unsafe_code)]

mod blob;
mod blob_page;
mod chart;
mod error;
mod fetch;
mod html;
pub mod model;
mod network;
mod prom;
mod sampler;
mod upload;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use floe_client::Client;

pub use error::DashboardError;
use error::ErrorPage;
use html::Nav;
use model::Snapshot;

/// Where the dashboard's metrics charts get the daemon's Prometheus text.
#[derive(Clone, Default)]
pub enum MetricsSource {
    /// No daemon: the daemon charts stay empty.
    #[default]
    None,
    /// `GET` this URL (a daemon's `/metrics`).
    Url(String),
    /// Render it in-process (the daemon mounting the dashboard).
    Local(Arc<dyn Fn() -> String + Send + Sync>),
}

impl MetricsSource {
    async fn text(&self, http: &reqwest::Client) -> Option<String> {
        match self {
            MetricsSource::None => None,
            MetricsSource::Local(render) => Some(render()),
            MetricsSource::Url(url) => {
                fetch::get_text(http, url, Duration::from_millis(2500), 2 << 20)
                    .await
                    .ok()
            }
        }
    }
}

/// Where uploads go, when the server takes them.
#[derive(Clone, Debug)]
pub struct UploadTarget {
    /// The publisher's store route, `/v1/blobs` on the daemon.
    pub path: String,
    /// The largest body it takes.
    pub max_bytes: u64,
}

/// How the dashboard runs.
#[derive(Clone)]
pub struct DashboardOptions {
    /// The path it is mounted at (`/dashboard`).
    pub prefix: String,
    /// `Some` only where the server accepts writes (publisher or daemon mode).
    pub upload: Option<UploadTarget>,
    /// The daemon's read route (`/v1/blobs`), linked from blob pages where reads are served.
    pub read_route: Option<String>,
    pub metrics: MetricsSource,
    /// Ledger servers to show; empty: the client's.
    pub ledger_urls: Vec<String>,
    /// Time between samples while somebody looks.
    pub sample_interval: Duration,
    /// The sampler stops this long after the last page view.
    pub idle_after: Duration,
    /// The largest blob the download route reads.
    pub max_download_bytes: u64,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        Self {
            prefix: "/dashboard".into(),
            upload: None,
            read_route: None,
            metrics: MetricsSource::None,
            ledger_urls: Vec::new(),
            sample_interval: Duration::from_secs(2),
            idle_after: Duration::from_secs(60),
            max_download_bytes: 64 << 20,
        }
    }
}

/// The dashboard's shared state.
pub struct Dashboard {
    client: Client,
    options: DashboardOptions,
    http: reqwest::Client,
    sampler: tokio::sync::Mutex<sampler::Sampler>,
    latest: Mutex<Option<Arc<Snapshot>>>,
    last_view_ms: AtomicU64,
    sampling: AtomicBool,
    /// Blob pages being gathered (each asks every node, and small networks every sliver).
    blob_pages: tokio::sync::Semaphore,
    /// Downloads in flight (each holds its blob in memory).
    downloads: tokio::sync::Semaphore,
}

/// Blob pages gathered at once, and downloads; more wait up to [`BUSY_WAIT`], then get 503.
const MAX_BLOB_PAGES: usize = 4;
const MAX_DOWNLOADS: usize = 2;
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// A permit of `s` within [`BUSY_WAIT`], or `Busy(what)`.
async fn permit<'a>(
    s: &'a tokio::sync::Semaphore,
    what: &'static str,
) -> Result<tokio::sync::SemaphorePermit<'a>, DashboardError> {
    match tokio::time::timeout(BUSY_WAIT, s.acquire()).await {
        Ok(Ok(p)) => Ok(p),
        _ => Err(DashboardError::Busy(what)),
    }
}

type Shared = Arc<Dashboard>;

impl Dashboard {
    fn ledger_urls(&self) -> Vec<String> {
        if self.options.ledger_urls.is_empty() {
            vec![self.client.config().ledger_url.clone()]
        } else {
            self.options.ledger_urls.clone()
        }
    }

    /// The latest snapshot; the first view (or the first after an idle spell) samples at once.
    async fn snapshot(self: &Arc<Self>) -> Arc<Snapshot> {
        self.last_view_ms
            .store(sampler::now_ms(), Ordering::Relaxed);
        self.start_sampler();
        if let Some(s) = self.latest() {
            return s;
        }
        let mut sampler = self.sampler.lock().await;
        if let Some(s) = self.latest() {
            return s;
        }
        let s = Arc::new(sampler.sample(self).await);
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.clone());
        s
    }

    fn latest(&self) -> Option<Arc<Snapshot>> {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Start the sampling task unless it runs. It holds only a weak reference, so it ends
    /// when the router is dropped, and it ends once nobody looked for `idle_after`.
    fn start_sampler(self: &Arc<Self>) {
        if self.sampling.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        let interval = self.options.sample_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(d) = weak.upgrade() else { return };
                let idle = sampler::now_ms().saturating_sub(d.last_view_ms.load(Ordering::Relaxed));
                if idle > d.options.idle_after.as_millis() as u64 {
                    *d.latest.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    d.sampling.store(false, Ordering::Release);
                    return;
                }
                let s = Arc::new(d.sampler.lock().await.sample(&d).await);
                *d.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
            }
        });
    }
}

/// An HTML answer that is never cached, never sniffed, and may load nothing from elsewhere.
pub(crate) fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CONTENT_SECURITY_POLICY, CSP),
        ],
        body,
    )
        .into_response()
}

/// Only this server: no CDN, no inline script.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("../assets/dashboard.css");
const JS: &str = include_str!("../assets/dashboard.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=300"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn network_page(State(d): State<Shared>) -> Response {
    let s = d.snapshot().await;
    let p = &d.options.prefix;
    let main = network::main(p, &s, d.options.sample_interval.as_millis() as u64);
    html_response(
        StatusCode::OK,
        html::page(p, "Network", Nav::Network, &main),
    )
}

async fn live_fragment(State(d): State<Shared>) -> Response {
    let s = d.snapshot().await;
    html_response(StatusCode::OK, network::live(&d.options.prefix, &s))
}

async fn network_json(State(d): State<Shared>) -> Response {
    let s = d.snapshot().await;
    ([(CACHE_CONTROL, "no-store")], axum::Json((*s).clone())).into_response()
}

#[derive(serde::Deserialize)]
struct IdQuery {
    id: Option<String>,
}

async fn blob_search(State(d): State<Shared>, Query(q): Query<IdQuery>) -> Response {
    match q.id {
        Some(id) if !id.trim().is_empty() => blob_page(&d, &id).await,
        _ => {
            let p = &d.options.prefix;
            html_response(
                StatusCode::OK,
                html::page(p, "Find a blob", Nav::Blob, &blob_page::search_main(p)),
            )
        }
    }
}

async fn blob_by_path(State(d): State<Shared>, Path(id): Path<String>) -> Response {
    blob_page(&d, &id).await
}

async fn blob_page(d: &Shared, id: &str) -> Response {
    let p = &d.options.prefix;
    let facts = match blob::parse_id(id) {
        Ok(lookup) => match permit(&d.blob_pages, "blob pages").await {
            Ok(_permit) => blob::gather(d, lookup).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match facts {
        Ok(f) => {
            let main = blob_page::main(p, &f, d.options.read_route.as_deref());
            html_response(StatusCode::OK, html::page(p, "Blob", Nav::Blob, &main))
        }
        Err(e) => e.page(p),
    }
}

async fn download(State(d): State<Shared>, Path(id): Path<String>) -> Response {
    let p = d.options.prefix.clone();
    match read_blob(&d, &id).await {
        Ok((blob_id, bytes)) => (
            [
                (CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{blob_id}\""),
                ),
                (CACHE_CONTROL, "no-store".to_string()),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => ErrorPage(p, e).into_response(),
    }
}

async fn read_blob(d: &Dashboard, id: &str) -> Result<(String, Vec<u8>), DashboardError> {
    let ledger = d.client.ledger();
    let blob_id = match blob::parse_id(id)? {
        blob::Lookup::Blob(b) => b,
        blob::Lookup::Object(o) => match ledger.object(&o).await {
            Ok(Some(floe_ledger::api_types::ObjectResponse::Blob(b))) => b.blob_id,
            Ok(Some(_)) => return Err(DashboardError::NotABlob(o.to_string())),
            Ok(None) => return Err(DashboardError::NoSuchObject(o.to_string())),
            Err(e) => return Err(DashboardError::Ledger(e.to_string())),
        },
    };
    let _permit = permit(&d.downloads, "downloads").await?;
    let max = d.options.max_download_bytes;
    // The size is in the blob's metadata: read it only if it is within the cap.
    if let Ok(Some(size)) = blob_size(d, &blob_id).await
        && size > max
    {
        return Err(DashboardError::TooLarge { size, max });
    }
    let bytes = d
        .client
        .read(
            &blob_id,
            floe_client::ReadOptions::default(),
            Arc::new(floe_client::NoProgress),
        )
        .await
        .map_err(|e| DashboardError::Read(e.to_string()))?;
    Ok((blob_id.to_string(), bytes))
}

/// The size registered on the ledger for `blob_id`'s current object.
async fn blob_size(
    d: &Dashboard,
    blob_id: &floe_core::BlobId,
) -> Result<Option<u64>, DashboardError> {
    use floe_ledger::status::BlobStatus;
    let ledger = d.client.ledger();
    let status = ledger
        .blob_status(blob_id)
        .await
        .map_err(|e| DashboardError::Ledger(e.to_string()))?;
    let object_id = match status.status {
        BlobStatus::Certified { object_id, .. } | BlobStatus::Registered { object_id, .. } => {
            object_id
        }
        _ => return Ok(None),
    };
    Ok(match ledger.object(&object_id).await {
        Ok(Some(floe_ledger::api_types::ObjectResponse::Blob(b))) => Some(b.size),
        _ => None,
    })
}

async fn upload_page(State(d): State<Shared>) -> Response {
    let p = &d.options.prefix;
    let main = upload::main(p, d.options.upload.as_ref());
    html_response(StatusCode::OK, html::page(p, "Upload", Nav::Upload, &main))
}

/// The dashboard's routes under `options.prefix`, reading through `client`. Mount it with
/// `Router::merge`; it carries its own state.
pub fn router(client: Client, options: DashboardOptions) -> Router {
    let mut options = options;
    options.prefix = options.prefix.trim_end_matches('/').to_string();
    options.sample_interval = options.sample_interval.max(Duration::from_millis(500));
    let p = options.prefix.clone();
    let http = floe_tls::http_client(
        reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2)),
    )
    .unwrap_or_default();
    let d = Arc::new(Dashboard {
        client,
        options,
        http,
        sampler: tokio::sync::Mutex::new(sampler::Sampler::default()),
        latest: Mutex::new(None),
        last_view_ms: AtomicU64::new(0),
        sampling: AtomicBool::new(false),
        blob_pages: tokio::sync::Semaphore::new(MAX_BLOB_PAGES),
        downloads: tokio::sync::Semaphore::new(MAX_DOWNLOADS),
    });
    let root = if p.is_empty() {
        "/".to_string()
    } else {
        p.clone()
    };
    let mut router = Router::new().route(&root, get(network_page));
    if !p.is_empty() {
        let to = p.clone();
        router = router.route(
            &format!("{p}/"),
            get(move || {
                let to = to.clone();
                async move { Redirect::permanent(&to) }
            }),
        );
    }
    router
        .route(&format!("{p}/live"), get(live_fragment))
        .route(&format!("{p}/api/network"), get(network_json))
        .route(&format!("{p}/blob"), get(blob_search))
        .route(&format!("{p}/blob/{{id}}"), get(blob_by_path))
        .route(&format!("{p}/blob/{{id}}/download"), get(download))
        .route(&format!("{p}/upload"), get(upload_page))
        .route(
            &format!("{p}/assets/dashboard.css"),
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            &format!("{p}/assets/dashboard.js"),
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .with_state(d)
}
