//! `floe bench e2e --quick --json` end to end: a ledger, four nodes and a daemon as separate
//! `floe` processes, driven over HTTP. Checks what must hold whatever the machine's speed
//! (every GET matched, every reader served, the silent-node scenarios behave as the fault
//! model says), never timings: those belong to the benchmark's figures.

use std::process::Command;

#[test]
fn bench_e2e_quick_runs_a_network_of_processes() {
    let (r, stderr, dir) = run_quick(tempfile::tempdir().unwrap());
    let context = format!("{r:#}\n{stderr}");

    assert_eq!(r["nodes"], 4, "{context}");
    assert_eq!(r["n_shards"], 40, "{context}");
    let sizes = r["sizes"].as_array().expect("sizes");
    assert_eq!(sizes.len(), 3, "{context}");
    for s in sizes {
        assert_eq!(s["gets_matched"], s["runs"], "{context}");
        assert!(s["put_mib_s"].as_f64().unwrap() > 0.0, "{context}");
    }
    daemon_memory_is_consistent(&r, &context);
    for key in ["readers", "small_readers"] {
        let x = &r[key];
        assert_eq!(x["ok"], x["requests"], "{key}: {context}");
    }
    assert_eq!(r["small_readers"]["distinct_blobs"], 100, "{context}");
    // ≤ f shards silent: reads and writes still succeed.
    let few = &r["silent_f"];
    assert_eq!(few["paused"].as_array().unwrap().len(), 1, "{context}");
    assert_eq!(few["get"]["ok"], true, "{context}");
    assert_eq!(few["put"]["ok"], true, "{context}");
    // …and so does a GET of the 2 MiB blob.
    let large = &few["large_get"];
    assert_eq!(large["size"], 2 << 20, "{context}");
    assert_eq!(large["get"]["ok"], true, "{context}");
    // > f shards silent: a definite answer; no certificate without n − f shards.
    let many = &r["silent_more"];
    assert!(many["large_get"].is_null(), "{context}");
    assert_eq!(many["paused"].as_array().unwrap().len(), 2, "{context}");
    assert_eq!(many["get"]["definite"], true, "{context}");
    assert_eq!(many["put"]["definite"], true, "{context}");
    assert_eq!(many["put"]["ok"], false, "{context}");
    // Node memory levels off as data is stored: over the second half of the fill each node
    // stored about as many sliver bytes as the blobs' size (n = 40, 4 nodes). A node keeping
    // recent writes in memory keeps setting new RSS peaks in step with them (about 1.1 RSS
    // bytes per byte stored here); a bounded one reached its peak in the first half. Peaks,
    // not the least-squares slope: RSS dips after each flush, and one dip at the midpoint
    // swung the slope from 0.1 to 0.5 between runs of the same build.
    let fill = &r["fill"];
    assert!(
        fill["stored_second_half_bytes"].as_u64().unwrap() >= 128 << 20,
        "{context}"
    );
    let rise = fill["node_rss_peak_rise_per_byte"].as_f64().unwrap();
    assert!(
        rise < 0.5,
        "node peak RSS rose {rise:.2} bytes per byte stored over the second half: {context}"
    );
    // The daemon gives its memory back once idle: after the fill (PUTs of 8 MiB, each holding
    // about 50 MiB while it stores) and a second with no request, it is within 128 MiB of
    // where it started. Without the allocator's fixed thresholds and the idle release, it
    // stayed at its peak, about 250 MiB above its start.
    let memory = &r["daemon_memory"];
    let (start, idle) = (
        memory["start_rss_bytes"].as_u64().unwrap(),
        memory["idle_rss_bytes"].as_u64().unwrap(),
    );
    assert!(
        start > 0 && idle < start + (128 << 20),
        "the daemon kept {} MiB after its requests ({} MiB at its start): {context}",
        idle >> 20,
        start >> 20
    );
    // Six processes with their memory, all stopped at the end.
    let procs = r["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 6, "{context}");
    assert!(
        procs
            .iter()
            .all(|p| p["peak_rss_bytes"].as_u64().unwrap() > 0),
        "{context}"
    );
    // --dir is kept, with every process's log.
    let logs = dir.path().join("net/logs");
    for name in ["ledger", "node-0", "node-3", "daemon"] {
        assert!(
            logs.join(format!("{name}.log")).is_file(),
            "{name}.log in {}",
            logs.display()
        );
    }
}

/// `floe bench e2e --quick` with a size above 1 MiB (so that the ≤ f scenario reads a large
/// blob too), in `dir`: its JSON report, its stderr, and `dir`. On failure the network's files
/// are kept and the panic shows what its processes logged.
fn run_quick(dir: tempfile::TempDir) -> (serde_json::Value, String, tempfile::TempDir) {
    let out = Command::new(env!("CARGO_BIN_EXE_floe"))
        .args([
            "bench",
            "e2e",
            "--quick",
            "--sizes",
            "1KiB,1MiB,2MiB",
            "--json",
            "--dir",
        ])
        .arg(dir.path().join("net"))
        .output()
        .expect("floe runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        // A failure here is rare and cannot be reproduced from the seed alone (it depends on
        // timing).
        let net = dir.keep().join("net");
        let logs: String = std::fs::read_dir(net.join("logs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                format!("--- {} (last 30 lines)\n{tail}\n", e.path().display())
            })
            .collect();
        panic!(
            "floe bench e2e failed (files kept in {}):\n{stderr}\n{logs}",
            net.display()
        );
    }
    let r =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stderr}"));
    (r, stderr, dir)
}

/// The daemon's peak over the whole run bounds its peak during any one request, though the
/// kernel's counter was reset before each of them; and each request's rise (its peak less the
/// RSS before it) is less than its peak.
fn daemon_memory_is_consistent(r: &serde_json::Value, context: &str) {
    let procs = r["processes"].as_array().unwrap();
    let daemon = procs
        .iter()
        .find(|p| p["name"] == "daemon")
        .expect("daemon");
    let whole_run = daemon["peak_rss_bytes"].as_u64().unwrap();
    let check = |row: &serde_json::Value, peak: &str, rise: &str| {
        let peak = row[peak].as_u64().expect("a peak (the kernel reset VmHWM)");
        let rise = row[rise].as_u64().expect("a rise");
        assert!(
            peak > 0 && peak <= whole_run,
            "a request's peak {peak} against the run's {whole_run}: {context}"
        );
        assert!(
            rise < peak,
            "a rise {rise} within the peak {peak}: {context}"
        );
    };
    for s in r["sizes"].as_array().unwrap() {
        check(s, "daemon_put_peak_rss_bytes", "daemon_put_rise_bytes");
        check(s, "daemon_get_peak_rss_bytes", "daemon_get_rise_bytes");
        // Sampled while nothing ran: within what the run ever held.
        for idle in [
            "daemon_idle_after_first_bytes",
            "daemon_idle_after_last_bytes",
        ] {
            let rss = s[idle].as_u64().expect(idle);
            assert!(
                rss > 0 && rss <= whole_run,
                "{idle} {rss} against the run's peak {whole_run}: {context}"
            );
        }
    }
    let large = &r["silent_f"]["large_get"];
    check(large, "daemon_peak_rss_bytes", "daemon_rise_bytes");
}
