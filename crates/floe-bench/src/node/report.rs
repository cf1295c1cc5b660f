//! The readable report of `floe bench node`, printed from the JSON object `measure` builds.

use serde_json::Value;

use super::MIB;

pub(super) fn print_report(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    println!(
        "floe bench node: {} nodes, n = {} shards, blobs of {:.2} MiB (symbol {} B, sliver pair {:.1} KiB), \
         {} cores shared by the ledger, every node and the client; fsync per write",
        r["nodes"],
        r["nShards"],
        f(&r["blobSize"]) / MIB,
        r["symbolSize"],
        f(&r["sliverPairBytes"]) / 1024.0,
        r["cores"],
    );
    println!(
        "setup (ledger + nodes): {:.2} s; {} requests in flight\n",
        f(&r["setupSeconds"]),
        r["concurrency"]
    );
    println!(
        "{:<16} {:>6} {:>9} {:>11} {:>9} {:>10} {:>10} {:>11} {:>11}",
        "", "blobs", "requests", "sliver MiB", "seconds", "MiB/s", "req/s", "p50 µs", "p99 µs"
    );
    for (label, rows) in [("PUT", &r["put"]), ("GET", &r["get"])] {
        for row in rows.as_array().into_iter().flatten() {
            println!(
                "{:<16} {:>6} {:>9} {:>11.1} {:>9.2} {:>10.1} {:>10.0} {:>11.0} {:>11.0}",
                format!("{label} {}", row["route"].as_str().unwrap_or("")),
                u(&row["blobs"]),
                u(&row["requests"]),
                f(&row["sliverBytes"]) / MIB,
                f(&row["seconds"]),
                f(&row["mibPerSecond"]),
                f(&row["requestsPerSecond"]),
                f(&row["latencyUs"]["p50"]),
                f(&row["latencyUs"]["p99"]),
            );
        }
    }
    let rec = &r["recovery"];
    if rec.is_null() {
        return;
    }
    let ratio = f(&rec["perPairOverSliverPair"]);
    println!(
        "\nrecovery: node {} started after the blob was certified ({:.2} s to open its store) and \
         recovered its {} sliver pairs in {:.2} s ({:.2} MiB/s of slivers)",
        rec["node"],
        f(&rec["nodeStartSeconds"]),
        rec["recoveredPairs"],
        f(&rec["seconds"]),
        f(&rec["recoveredMibPerSecond"]),
    );
    println!(
        "  downloaded {:.2} MiB in {} requests ({} for recovery symbols; {:.0} symbols asked per pair, \
         minimum p + s = {:.0}); uploaded {:.2} MiB",
        f(&rec["downloadedBytes"]) / MIB,
        rec["requests"],
        rec["symbolRequests"],
        f(&rec["symbolsRequestedPerPair"]),
        f(&rec["minimumSymbolsPerPair"]),
        f(&rec["uploadedBytes"]) / MIB,
    );
    println!(
        "  per recovered pair: {:.1} KiB = {:.2}× the sliver pair (target ≤ 3×: {}) = {:.4}× the blob \
         (plain Reed–Solomon repair: 1× the blob = {:.0}× the sliver pair)",
        f(&rec["downloadedBytesPerPair"]) / 1024.0,
        ratio,
        if ratio <= 3.0 { "met" } else { "NOT met" },
        f(&rec["perPairOverBlob"]),
        f(&rec["plainRsPerPairOverSliverPair"]),
    );
}
