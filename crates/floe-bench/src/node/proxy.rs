//! A counting reverse proxy: forwards every request to one node and counts the bytes both
//! ways at the HTTP level.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

/// HTTP traffic through one proxy, in bytes as on the wire (headers approximately), indexed by
/// the constants below.
pub type Traffic = [AtomicU64; 8];
pub type Counts = [u64; 8];
pub const REQUESTS: usize = 0;
pub const REQUEST_BYTES: usize = 1;
pub const RESPONSE_HEADER_BYTES: usize = 2;
pub const RESPONSE_BODY_BYTES: usize = 3;
/// Requests for decoding symbols or recovery symbols.
pub const SYMBOL_REQUESTS: usize = 4;
/// Proven recovery-symbol IDs asked for (`id=` parameters; 0 when no fallback was needed).
pub const SYMBOL_IDS: usize = 5;
pub const SYMBOL_BODY_BYTES: usize = 6;
/// Symbols received: the decoding symbols in each successful answer (counted by decoding it),
/// plus the proven recovery symbols asked for.
pub const SYMBOLS_RECEIVED: usize = 7;

/// The number of decoding symbols in a `decodingSymbols` answer (0 if it does not decode).
fn decoding_symbols_in(body: &[u8]) -> u64 {
    type Answer = std::collections::BTreeMap<
        floe_core::SliverIndex,
        Vec<floe_core::recovery::EitherDecodingSymbol>,
    >;
    bcs::from_bytes::<Answer>(body).map_or(0, |a| a.values().map(|v| v.len() as u64).sum())
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    traffic: Arc<Traffic>,
}

/// Header block size: `name: value\r\n` per header, then the blank line.
fn header_bytes(h: &HeaderMap) -> u64 {
    h.iter()
        .map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64)
        .sum::<u64>()
        + 2
}

/// Forward one request to the real node and count both directions.
async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |x| x.as_str())
        .to_string();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::BAD_REQUEST, "unreadable request body").into_response();
    };
    let t = &p.traffic;
    t[REQUESTS].fetch_add(1, Relaxed);
    // Request line `METHOD PATH HTTP/1.1\r\n`, headers, body.
    let line = parts.method.as_str().len() + path.len() + 11;
    let request = line as u64 + header_bytes(&parts.headers) + body.len() as u64;
    t[REQUEST_BYTES].fetch_add(request, Relaxed);
    let sent = p
        .http
        .request(parts.method, format!("{}{path}", p.upstream))
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let Ok(bytes) = resp.bytes().await else {
        return (StatusCode::BAD_GATEWAY, "upstream body lost").into_response();
    };
    // Status line `HTTP/1.1 200 OK\r\n`, headers, body.
    let status_line = 15 + status.canonical_reason().map_or(0, str::len) as u64;
    t[RESPONSE_HEADER_BYTES].fetch_add(status_line + header_bytes(&headers), Relaxed);
    t[RESPONSE_BODY_BYTES].fetch_add(bytes.len() as u64, Relaxed);
    // Recovery traffic: proof-less decoding symbols (the usual path) and proven recovery
    // symbols (the fallback when a rebuilt sliver does not verify).
    let decoding = path.contains("/decodingSymbols");
    if decoding || path.contains("/recoverySymbols") {
        t[SYMBOL_REQUESTS].fetch_add(1, Relaxed);
        if decoding {
            if status.is_success() {
                t[SYMBOLS_RECEIVED].fetch_add(decoding_symbols_in(&bytes), Relaxed);
            }
        } else {
            let ids = path.matches("id=").count() as u64;
            t[SYMBOL_IDS].fetch_add(ids, Relaxed);
            t[SYMBOLS_RECEIVED].fetch_add(ids, Relaxed);
        }
        t[SYMBOL_BODY_BYTES].fetch_add(bytes.len() as u64, Relaxed);
    }
    let mut r = (status, bytes).into_response();
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        r.headers_mut().insert(CONTENT_TYPE, ct.clone());
    }
    r
}

/// Serve on `listener` a proxy to `upstream` (`http://host:port`) that adds to `traffic`; the
/// task runs until aborted.
pub fn spawn(
    listener: TcpListener,
    upstream: String,
    http: reqwest::Client,
    traffic: Arc<Traffic>,
) -> tokio::task::JoinHandle<()> {
    let state = Proxy {
        upstream,
        http,
        traffic,
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "counting proxy stopped");
        }
    })
}
