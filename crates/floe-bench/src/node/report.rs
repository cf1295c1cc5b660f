//! What `floe bench node` reports: the types its `--json` prints, and the readable form.

use serde::Serialize;

use super::MIB;

/// What a recovering node may download per recovered sliver pair, in sliver pairs.
pub(super) const RECOVERY_TARGET: f64 = 3.0;

/// `floe bench node --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NodeReport {
    pub nodes: usize,
    pub n_shards: u16,
    pub blob_size: u64,
    pub symbol_size: u16,
    pub sliver_pair_bytes: u64,
    pub concurrency: usize,
    pub cores: usize,
    pub setup_seconds: f64,
    /// Batched, then one sliver per request.
    pub put: Vec<RateRow>,
    /// One at a time, then concurrently.
    pub get: Vec<RateRow>,
    /// `None` with `--no-recovery`.
    pub recovery: Option<RecoveryReport>,
}

/// One way of moving slivers, measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RateRow {
    pub route: &'static str,
    pub blobs: usize,
    pub requests: usize,
    pub sliver_bytes: u64,
    pub seconds: f64,
    pub mib_per_second: f64,
    pub requests_per_second: f64,
    pub latency_us: Percentiles,
}

#[derive(Debug, Serialize)]
pub(super) struct Percentiles {
    pub p50: f64,
    pub p99: f64,
}

/// A node started after certification, recovering its slivers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RecoveryReport {
    pub node: usize,
    pub recovered_pairs: usize,
    pub node_start_seconds: f64,
    pub seconds: f64,
    pub recovered_mib_per_second: f64,
    pub requests: u64,
    pub symbol_requests: u64,
    /// Proven recovery-symbol IDs asked for (the fallback; 0 when it was not needed).
    pub symbols_requested: u64,
    pub symbols_requested_per_pair: f64,
    /// Symbols received: decoding symbols in the answers plus proven symbols asked for.
    pub symbols_received: u64,
    pub symbols_received_per_pair: f64,
    pub minimum_symbols_per_pair: f64,
    pub uploaded_bytes: u64,
    pub downloaded_bytes: u64,
    pub downloaded_body_bytes: u64,
    pub downloaded_symbol_body_bytes: u64,
    pub downloaded_bytes_per_pair: f64,
    pub per_pair_over_sliver_pair: f64,
    pub per_pair_over_blob: f64,
    pub plain_rs_per_pair_over_sliver_pair: f64,
    pub target_over_sliver_pair: f64,
    pub target_met: bool,
    pub requests_to_recovering_node: u64,
}

pub(super) fn print_report(r: &NodeReport) {
    println!(
        "floe bench node: {} nodes, n = {} shards, blobs of {:.2} MiB (symbol {} B, sliver pair {:.1} KiB), \
         {} cores shared by the ledger, every node and the client; fsync per write",
        r.nodes,
        r.n_shards,
        r.blob_size as f64 / MIB,
        r.symbol_size,
        r.sliver_pair_bytes as f64 / 1024.0,
        r.cores,
    );
    println!(
        "setup (ledger + nodes): {:.2} s; {} requests in flight\n",
        r.setup_seconds, r.concurrency
    );
    println!(
        "{:<16} {:>6} {:>9} {:>11} {:>9} {:>10} {:>10} {:>11} {:>11}",
        "", "blobs", "requests", "sliver MiB", "seconds", "MiB/s", "req/s", "p50 µs", "p99 µs"
    );
    for (label, rows) in [("PUT", &r.put), ("GET", &r.get)] {
        for row in rows {
            println!(
                "{:<16} {:>6} {:>9} {:>11.1} {:>9.2} {:>10.1} {:>10.0} {:>11.0} {:>11.0}",
                format!("{label} {}", row.route),
                row.blobs,
                row.requests,
                row.sliver_bytes as f64 / MIB,
                row.seconds,
                row.mib_per_second,
                row.requests_per_second,
                row.latency_us.p50,
                row.latency_us.p99,
            );
        }
    }
    let Some(rec) = &r.recovery else {
        return;
    };
    let ratio = rec.per_pair_over_sliver_pair;
    println!(
        "\nrecovery: node {} started after the blob was certified ({:.2} s to open its store) and \
         recovered its {} sliver pairs in {:.2} s ({:.2} MiB/s of slivers)",
        rec.node,
        rec.node_start_seconds,
        rec.recovered_pairs,
        rec.seconds,
        rec.recovered_mib_per_second,
    );
    println!(
        "  downloaded {:.2} MiB in {} requests ({} for symbols; {:.0} symbols received per pair, \
         {:.0} of them proven ones asked for by ID, minimum p + s = {:.0}); uploaded {:.2} MiB",
        rec.downloaded_bytes as f64 / MIB,
        rec.requests,
        rec.symbol_requests,
        rec.symbols_received_per_pair,
        rec.symbols_requested_per_pair,
        rec.minimum_symbols_per_pair,
        rec.uploaded_bytes as f64 / MIB,
    );
    println!(
        "  per recovered pair: {:.1} KiB = {:.2}× the sliver pair (target ≤ {RECOVERY_TARGET}×: {}) = {:.4}× the blob \
         (plain Reed–Solomon repair: 1× the blob = {:.0}× the sliver pair)",
        rec.downloaded_bytes_per_pair / 1024.0,
        ratio,
        if rec.target_met { "met" } else { "NOT met" },
        rec.per_pair_over_blob,
        rec.plain_rs_per_pair_over_sliver_pair,
    );
}
