//! Prometheus text exposition: requests and bytes by (method, route, status), store and read
//! latency histograms by outcome, bytes stored and served, and the load-shedding queues.
//! Everything lives in the daemon's state; there is no global registry.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;
use crate::limit::Limiter;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// A latency histogram with Prometheus's cumulative buckets.
#[derive(Clone, Debug, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let i = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c;
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// (method, route, status).
type RouteKey = (String, String, u16);

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    requests: u64,
    request_bytes: u64,
    response_bytes: u64,
}

/// The daemon's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RouteKey, Counts>>,
    /// Store latency by outcome.
    stores: Mutex<BTreeMap<&'static str, Histogram>>,
    /// Read latency by (kind, outcome).
    reads: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
    stored_bytes: AtomicU64,
    served_bytes: AtomicU64,
}

impl Metrics {
    /// A store of `bytes` that ended with `outcome` after `elapsed`.
    pub fn store(&self, outcome: &'static str, bytes: u64, elapsed: Duration) {
        if let Ok(mut m) = self.stores.lock() {
            m.entry(outcome).or_default().observe(elapsed.as_secs_f64());
        }
        if outcome != "error" {
            self.stored_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// A read (`full` or `range`) that returned `bytes` (0 on errors) after `elapsed`.
    pub fn read(&self, kind: &'static str, outcome: &'static str, bytes: u64, elapsed: Duration) {
        if let Ok(mut m) = self.reads.lock() {
            m.entry((kind, outcome))
                .or_default()
                .observe(elapsed.as_secs_f64());
        }
        self.served_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, reads: Option<&Limiter>, writes: Option<&Limiter>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP floe_daemon_requests_total HTTP requests answered."
        );
        let _ = writeln!(out, "# TYPE floe_daemon_requests_total counter");
        let _ = writeln!(out, "# TYPE floe_daemon_request_bytes_total counter");
        let _ = writeln!(out, "# TYPE floe_daemon_response_bytes_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), c) in m.iter() {
                let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
                let _ = writeln!(out, "floe_daemon_requests_total{{{labels}}} {}", c.requests);
                let _ = writeln!(
                    out,
                    "floe_daemon_request_bytes_total{{{labels}}} {}",
                    c.request_bytes
                );
                let _ = writeln!(
                    out,
                    "floe_daemon_response_bytes_total{{{labels}}} {}",
                    c.response_bytes
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP floe_daemon_store_duration_seconds Time to store a blob, by outcome."
        );
        let _ = writeln!(out, "# TYPE floe_daemon_store_duration_seconds histogram");
        if let Ok(m) = self.stores.lock() {
            for (outcome, h) in m.iter() {
                h.render(
                    &mut out,
                    "floe_daemon_store_duration_seconds",
                    &format!("outcome=\"{outcome}\""),
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP floe_daemon_read_duration_seconds Time to read a blob or range, by outcome."
        );
        let _ = writeln!(out, "# TYPE floe_daemon_read_duration_seconds histogram");
        if let Ok(m) = self.reads.lock() {
            for ((kind, outcome), h) in m.iter() {
                h.render(
                    &mut out,
                    "floe_daemon_read_duration_seconds",
                    &format!("kind=\"{kind}\",outcome=\"{outcome}\""),
                );
            }
        }
        for (name, v) in [
            ("floe_daemon_stored_bytes_total", &self.stored_bytes),
            ("floe_daemon_served_bytes_total", &self.served_bytes),
        ] {
            let _ = writeln!(
                out,
                "# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# TYPE floe_daemon_running_requests gauge");
        let _ = writeln!(out, "# TYPE floe_daemon_waiting_requests gauge");
        for (kind, limiter) in [("read", reads), ("write", writes)] {
            if let Some(l) = limiter {
                let _ = writeln!(
                    out,
                    "floe_daemon_running_requests{{kind=\"{kind}\"}} {}",
                    l.running()
                );
                let _ = writeln!(
                    out,
                    "floe_daemon_waiting_requests{{kind=\"{kind}\"}} {}",
                    l.waiting()
                );
            }
        }
        out
    }
}

/// Middleware counting every request by its route pattern (never the raw path, so blob IDs do
/// not multiply the series).
pub async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let request_bytes = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    let response = next.run(req).await;
    let response_bytes = response.body().size_hint().exact().unwrap_or(0);
    if let Ok(mut m) = s.metrics.requests.lock() {
        let c = m
            .entry((method, route, response.status().as_u16()))
            .or_default();
        c.requests += 1;
        c.request_bytes += request_bytes;
        c.response_bytes += response_bytes;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_complete() {
        let m = Metrics::default();
        m.store("newly_created", 10, Duration::from_millis(40));
        m.store("newly_created", 10, Duration::from_secs(1000));
        m.store("error", 99, Duration::from_millis(5));
        m.read("full", "ok", 7, Duration::from_millis(1));
        let text = m.render(Some(&Limiter::new(2, 3)), None);
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix} missing in\n{text}"))
                .to_string()
        };
        assert!(
            line(
                "floe_daemon_store_duration_seconds_bucket{outcome=\"newly_created\",le=\"0.05\"}"
            )
            .ends_with(" 1")
        );
        assert!(
            line(
                "floe_daemon_store_duration_seconds_bucket{outcome=\"newly_created\",le=\"+Inf\"}"
            )
            .ends_with(" 2")
        );
        assert!(
            line("floe_daemon_store_duration_seconds_count{outcome=\"error\"}").ends_with(" 1")
        );
        assert!(line("floe_daemon_stored_bytes_total").ends_with(" 20"));
        assert!(line("floe_daemon_served_bytes_total").ends_with(" 7"));
        assert!(line("floe_daemon_running_requests{kind=\"read\"}").ends_with(" 0"));
    }
}
