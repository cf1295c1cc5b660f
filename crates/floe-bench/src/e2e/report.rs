//! What `floe bench e2e` reports: one typed struct (`--json`) and its table.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::units::format_size;

const MIB: f64 = (1u64 << 20) as f64;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub quick: bool,
    pub binary: String,
    /// Where the network was laid out (removed at the end unless `--dir` was given).
    pub dir: String,
    pub nodes: usize,
    pub n_shards: u16,
    /// Nodes served HTTPS with their network keys (false: `--disable-tls`).
    pub tls: bool,
    /// f = ⌊(n − 1)/3⌋ shards.
    pub f: u16,
    pub cores: usize,
    /// The daemon's `--max-body-size`, in KiB.
    pub max_body_size_kib: u64,
    /// The bench client's timeout of every HTTP request, in seconds.
    pub timeout_s: f64,
    /// Until the ledger, every node and the daemon answered.
    pub setup_ms: f64,
    pub sizes: Vec<SizeRow>,
    /// CPU per PUT of the largest size.
    pub cpu: Option<CpuRow>,
    /// Concurrent GETs of one 1 MiB blob.
    pub readers: Option<ReadersRow>,
    /// Concurrent GETs of distinct 1 KiB blobs.
    pub small_readers: Option<ReadersRow>,
    /// Nodes holding at most f shards paused (`None` with `--no-faults`).
    pub silent_f: Option<SilentRow>,
    /// Nodes holding more than f shards paused (`None` with `--no-faults`).
    pub silent_more: Option<SilentRow>,
    /// Node memory against data stored (`--fill`).
    pub fill: Option<super::fill::FillRow>,
    /// Every process at the end.
    pub processes: Vec<ProcRow>,
    /// The daemon's RSS when the network came up, and after the run once idle.
    pub daemon_memory: DaemonMemoryRow,
    pub total_ms: f64,
}

/// The daemon's memory: whether it returns to its baseline once its requests are over.
#[derive(Debug, Serialize)]
pub struct DaemonMemoryRow {
    /// `VmRSS` once the network answered, before any blob.
    pub start_rss_bytes: u64,
    /// `VmRSS` after the run and `idle_wait_ms` with no request.
    pub idle_rss_bytes: u64,
    pub idle_wait_ms: f64,
}

/// PUT and GET of one size.
#[derive(Debug, Serialize)]
pub struct SizeRow {
    pub size: u64,
    pub runs: usize,
    pub put_p50_ms: f64,
    pub put_p99_ms: f64,
    /// size / p50 latency.
    pub put_mib_s: f64,
    pub get_p50_ms: f64,
    pub get_p99_ms: f64,
    pub get_mib_s: f64,
    /// GETs whose bytes equal what was PUT (a mismatch stops the benchmark instead).
    pub gets_matched: usize,
    /// The daemon's peak RSS during a PUT of this size (the highest of the runs), measured from
    /// a `VmHWM` reset just before it; `None` where the kernel refused the reset.
    pub daemon_put_peak_rss_bytes: Option<u64>,
    /// The same during a GET.
    pub daemon_get_peak_rss_bytes: Option<u64>,
    /// What a PUT of this size added at its peak (the highest of the runs): the peak less the
    /// daemon's RSS just before the request. The rest of the peak is memory the daemon held
    /// already (its start, and what earlier requests left in its allocator).
    pub daemon_put_rise_bytes: Option<u64>,
    /// The same for a GET.
    pub daemon_get_rise_bytes: Option<u64>,
    /// The daemon's RSS after the first run (PUT and GET) of this size and a wait with no
    /// request (`DaemonMemoryRow::idle_wait_ms`, in which it gives free memory back).
    pub daemon_idle_after_first_bytes: u64,
    /// The same after the last run: about equal to the first when each request gave back what
    /// it took.
    pub daemon_idle_after_last_bytes: u64,
}

/// CPU seconds per PUT of `size`, averaged over `puts` PUTs, by process group.
#[derive(Debug, Serialize)]
pub struct CpuRow {
    pub size: u64,
    pub puts: usize,
    pub ledger_s: f64,
    pub nodes_sum_s: f64,
    pub nodes_max_s: f64,
    pub daemon_s: f64,
}

/// Many GETs at once.
#[derive(Debug, Serialize)]
pub struct ReadersRow {
    pub requests: usize,
    pub distinct_blobs: usize,
    pub blob_size: u64,
    pub ok: usize,
    /// Failed requests by HTTP status, `timeout` or `transport`.
    pub failures: BTreeMap<String, u64>,
    pub first_failure: Option<String>,
    /// Latencies of the successful requests.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// From the first request sent to the last answer.
    pub wall_ms: f64,
    /// Small readers: the time to store the blobs beforehand (8 PUTs at a time).
    pub store_ms: Option<f64>,
}

/// A PUT or GET that may fail.
#[derive(Debug, Serialize)]
pub struct Attempt {
    pub ok: bool,
    /// An HTTP answer came (success or error status), not a timeout or a broken connection.
    pub definite: bool,
    pub status: Option<u16>,
    pub ms: f64,
    /// The first 200 characters of the error body (or the transport error).
    pub error: Option<String>,
}

/// Some nodes paused with SIGSTOP while a 1 MiB blob is PUT and an earlier one is read.
#[derive(Debug, Serialize)]
pub struct SilentRow {
    /// Node indices paused.
    pub paused: Vec<usize>,
    /// Shards they hold.
    pub paused_shards: u64,
    pub get: Attempt,
    pub put: Attempt,
    /// Against the p50 of 1 MiB without faults (`None` if 1 MiB is not among the sizes).
    pub get_ratio: Option<f64>,
    pub put_ratio: Option<f64>,
    /// Until every paused node answered again after SIGCONT.
    pub resume_ms: f64,
    /// With at most f shards paused: a GET of the largest size's last blob too (`None` with
    /// more than f, or when the largest size is 1 MiB or less).
    pub large_get: Option<LargeGetRow>,
}

/// A GET of a large blob while nodes are paused: the client gets repair slivers for the
/// systematic ones the paused nodes hold, and decodes.
#[derive(Debug, Serialize)]
pub struct LargeGetRow {
    pub size: u64,
    pub get: Attempt,
    /// Against this size's GET p50 without faults.
    pub ratio: Option<f64>,
    /// The daemon's peak RSS during this GET (see [`SizeRow::daemon_put_peak_rss_bytes`]).
    pub daemon_peak_rss_bytes: Option<u64>,
    /// What this GET added at its peak (see [`SizeRow::daemon_put_rise_bytes`]).
    pub daemon_rise_bytes: Option<u64>,
}

/// One process at the end of the run.
#[derive(Debug, Serialize)]
pub struct ProcRow {
    pub name: String,
    /// CPU over the whole run.
    pub cpu_s: f64,
    /// `VmHWM`.
    pub peak_rss_bytes: u64,
    /// `VmRSS` at the end.
    pub rss_bytes: u64,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values (`None` if there are none).
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

pub fn print_table(r: &Report) {
    println!(
        "floe bench e2e: ledger + {} node processes ({}, n = {} shards, f = {}) + daemon, {} cores, seed {}",
        r.nodes,
        if r.tls { "HTTPS" } else { "plain HTTP" },
        r.n_shards,
        r.f,
        r.cores,
        r.seed
    );
    println!(
        "network up in {:.1} s; daemon --max-body-size {} KiB; client timeout {:.0} s; layout in {}\n",
        r.setup_ms / 1000.0,
        r.max_body_size_kib,
        r.timeout_s,
        r.dir
    );
    println!(
        "{:>10} {:>5} {:>11} {:>11} {:>10} {:>11} {:>11} {:>10} {:>8} {:>15}",
        "size",
        "runs",
        "PUT p50 ms",
        "PUT p99 ms",
        "PUT MiB/s",
        "GET p50 ms",
        "GET p99 ms",
        "GET MiB/s",
        "matched",
        "daemon peak MiB"
    );
    for s in &r.sizes {
        let peak = |b: Option<u64>| b.map_or("-".to_string(), |b| format!("{:.0}", mib(b)));
        println!(
            "{:>10} {:>5} {:>11.1} {:>11.1} {:>10.2} {:>11.1} {:>11.1} {:>10.2} {:>8} {:>15}",
            format_size(s.size),
            s.runs,
            s.put_p50_ms,
            s.put_p99_ms,
            s.put_mib_s,
            s.get_p50_ms,
            s.get_p99_ms,
            s.get_mib_s,
            format!("{}/{}", s.gets_matched, s.runs),
            format!(
                "{} (+{}) / {} (+{})",
                peak(s.daemon_put_peak_rss_bytes),
                peak(s.daemon_put_rise_bytes),
                peak(s.daemon_get_peak_rss_bytes),
                peak(s.daemon_get_rise_bytes)
            ),
        );
    }
    if let Some(c) = &r.cpu {
        println!(
            "\nCPU per PUT of {} (mean of {}, until 1 s after the answer): ledger {:.2} s, \
             nodes {:.2} s summed (max {:.2} s), daemon {:.2} s",
            format_size(c.size),
            c.puts,
            c.ledger_s,
            c.nodes_sum_s,
            c.nodes_max_s,
            c.daemon_s
        );
    }
    println!();
    for (label, row) in [
        ("readers (one blob)", &r.readers),
        ("small readers", &r.small_readers),
    ] {
        let Some(x) = row else { continue };
        let failures: Vec<String> = x.failures.iter().map(|(k, v)| format!("{v}×{k}")).collect();
        println!(
            "{label}: {} concurrent GETs of {} {} blob(s) of {}: {} ok{}; p50 {} ms, p99 {} ms, \
             max {} ms; wall {:.0} ms{}",
            x.requests,
            x.distinct_blobs,
            if x.distinct_blobs == 1 {
                "stored"
            } else {
                "distinct"
            },
            format_size(x.blob_size),
            x.ok,
            if failures.is_empty() {
                String::new()
            } else {
                format!(", failed {}", failures.join(", "))
            },
            opt(x.p50_ms),
            opt(x.p99_ms),
            opt(x.max_ms),
            x.wall_ms,
            x.store_ms.map_or(String::new(), |s| format!(
                " (stored in {:.1} s)",
                s / 1000.0
            )),
        );
        if let Some(e) = &x.first_failure {
            println!("  first failure: {e}");
        }
    }
    for (label, row) in [
        ("nodes with ≤ f shards paused", &r.silent_f),
        ("nodes with > f shards paused", &r.silent_more),
    ] {
        let Some(x) = row else { continue };
        println!(
            "\n{label}: nodes {:?} ({} shards, f = {}); resumed and answering in {:.0} ms",
            x.paused, x.paused_shards, r.f, x.resume_ms
        );
        let large = x.large_get.as_ref();
        let rows = [
            ("GET", MIB as u64, &x.get, x.get_ratio, None),
            ("PUT", MIB as u64, &x.put, x.put_ratio, None),
        ]
        .into_iter()
        .chain(large.map(|l| {
            let peak = l.daemon_peak_rss_bytes.zip(l.daemon_rise_bytes);
            ("GET", l.size, &l.get, l.ratio, peak)
        }));
        for (op, size, a, ratio, peak) in rows {
            let outcome = match (a.ok, a.status, &a.error) {
                (true, _, _) => "ok".to_string(),
                (false, Some(code), e) => format!("HTTP {code}: {}", e.as_deref().unwrap_or("")),
                (false, None, e) => format!("no answer: {}", e.as_deref().unwrap_or("")),
            };
            println!(
                "  {op} {}: {:.0} ms{}{} -> {outcome}",
                format_size(size),
                a.ms,
                ratio.map_or(String::new(), |q| format!(" ({q:.1}× normal)")),
                peak.map_or(String::new(), |(b, rise)| format!(
                    ", daemon peak {:.0} MiB (+{:.0})",
                    mib(b),
                    mib(rise)
                )),
            );
        }
    }
    if let Some(f) = &r.fill {
        println!(
            "\nfill: {} stored in blobs of {}; node RSS MiB after each tenth:",
            format_size(f.stored_bytes),
            format_size(f.blob_bytes)
        );
        let step = f.samples.len().div_ceil(10).max(1);
        for s in f.samples.iter().skip(step - 1).step_by(step) {
            let nodes: Vec<String> = s
                .node_rss_bytes
                .iter()
                .map(|b| format!("{:.0}", mib(*b)))
                .collect();
            println!(
                "  {:>10}  nodes [{}]  daemon {:.0}",
                format_size(s.stored_bytes),
                nodes.join(" "),
                mib(s.daemon_rss_bytes)
            );
        }
        println!(
            "  largest node RSS {:.0} MiB; over the last {}: {:+.1} MiB, {:.3} bytes of RSS per byte stored (steepest node); peak RSS rose {:.3} per byte stored",
            mib(f.node_rss_max_bytes),
            format_size(f.stored_second_half_bytes),
            f.node_rss_growth_second_half_bytes as f64 / MIB,
            f.node_rss_slope_second_half,
            f.node_rss_peak_rise_per_byte
        );
    }
    println!(
        "\n{:<10} {:>8} {:>14} {:>13}",
        "process", "CPU s", "peak RSS MiB", "RSS end MiB"
    );
    for p in &r.processes {
        println!(
            "{:<10} {:>8.2} {:>14.1} {:>13.1}",
            p.name,
            p.cpu_s,
            mib(p.peak_rss_bytes),
            mib(p.rss_bytes)
        );
    }
    let d = &r.daemon_memory;
    let idle: Vec<String> = r
        .sizes
        .iter()
        .map(|s| {
            format!(
                "{} {:.1} / {:.1}",
                format_size(s.size),
                mib(s.daemon_idle_after_first_bytes),
                mib(s.daemon_idle_after_last_bytes)
            )
        })
        .collect();
    println!(
        "daemon RSS: {:.1} MiB at the start; idle after the first / last run of each size: {} \
         MiB; {:.1} MiB after the run ({:.1} s idle each time)",
        mib(d.start_rss_bytes),
        idle.join(", "),
        mib(d.idle_rss_bytes),
        d.idle_wait_ms / 1000.0
    );
    println!("\ntotal {:.1} s", r.total_ms / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.5), Some(3.0));
        assert_eq!(percentile(&v, 0.99), Some(5.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 0.5), None);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 0.99), Some(99.0));
        assert_eq!(percentile(&hundred, 0.5), Some(50.0));
    }
}
