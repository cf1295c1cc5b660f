//! Prometheus text exposition: requests and bytes by route, storage counters, progress.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::node::StorageNode;
use crate::runner::WorkerStatus;

/// (method, route, status).
type RouteKey = (String, String, u16);

/// Requests and request-body bytes by (method, route, status).
#[derive(Default)]
pub struct RequestMetrics {
    requests: Mutex<BTreeMap<RouteKey, (u64, u64)>>,
}

pub async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let bytes = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if let Ok(mut m) = s.metrics.requests.lock() {
        let e = m.entry((method, route, status)).or_default();
        e.0 += 1;
        e.1 += bytes;
    }
    resp
}

impl RequestMetrics {
    pub fn render(&self, node: &StorageNode, bodies: &floe_http::pooled::BufferPool) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE floe_node_requests_total counter");
        let _ = writeln!(out, "# TYPE floe_node_request_bytes_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), (n, bytes)) in m.iter() {
                let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
                let _ = writeln!(out, "floe_node_requests_total{{{labels}}} {n}");
                let _ = writeln!(out, "floe_node_request_bytes_total{{{labels}}} {bytes}");
            }
        }
        let c = &node.counters;
        for (name, v) in [
            (
                "floe_node_slivers_stored_total",
                c.slivers_stored.load(Ordering::Relaxed),
            ),
            (
                "floe_node_sliver_bytes_stored_total",
                c.sliver_bytes_stored.load(Ordering::Relaxed),
            ),
            (
                "floe_node_slivers_served_total",
                c.slivers_served.load(Ordering::Relaxed),
            ),
            (
                "floe_node_sliver_bytes_served_total",
                c.sliver_bytes_served.load(Ordering::Relaxed),
            ),
            (
                "floe_node_metadata_stored_total",
                c.metadata_stored.load(Ordering::Relaxed),
            ),
            (
                "floe_node_confirmations_signed_total",
                c.confirmations_signed.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {v}");
        }
        let view = node.view();
        let _ = writeln!(
            out,
            "# TYPE floe_node_epoch gauge\nfloe_node_epoch {}",
            view.epoch
        );
        let _ = writeln!(
            out,
            "# TYPE floe_node_owned_shards gauge\nfloe_node_owned_shards {}",
            view.my_shards.len()
        );
        let _ = writeln!(
            out,
            "# TYPE floe_node_event_cursor gauge\nfloe_node_event_cursor {}",
            node.events_persisted.load(Ordering::Relaxed)
        );
        let pending = node.pending.lock().map(|p| p.len()).unwrap_or(0);
        let _ = writeln!(
            out,
            "# TYPE floe_node_pending_uploads gauge\nfloe_node_pending_uploads {pending}"
        );
        let _ = writeln!(
            out,
            "# TYPE floe_node_upload_buffers_kept_bytes gauge\nfloe_node_upload_buffers_kept_bytes {}",
            bodies.retained_bytes()
        );
        out.push_str(&node.challenge_metrics());
        out.push_str(&worker_metrics(node));
        out
    }
}

/// A worker's extra labels and value in one series.
type WorkerSample = fn(&WorkerStatus) -> (String, u64);

/// Each background worker's steps, failures and state.
fn worker_metrics(node: &StorageNode) -> String {
    let statuses = node.workers().statuses();
    let mut out = String::new();
    let series: [(&str, &str, WorkerSample); 3] = [
        ("floe_node_worker_steps_total", "counter", |w| {
            (String::new(), w.steps)
        }),
        ("floe_node_worker_failures_total", "counter", |w| {
            (String::new(), w.failures)
        }),
        ("floe_node_worker_state", "gauge", |w| {
            (format!(",state=\"{}\"", w.state.label()), 1)
        }),
    ];
    for (name, kind, value) in series {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for w in &statuses {
            let (labels, v) = value(w);
            let _ = writeln!(out, "{name}{{worker=\"{}\"{labels}}} {v}", w.name);
        }
    }
    out
}
