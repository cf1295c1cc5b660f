//! `floe audit` against a network of real processes (the fault suite's harness): a healthy blob
//! is AVAILABLE and its evidence verifies offline while a tampered copy does not; a node whose
//! slivers of one shard were deleted on disk is named and that shard fails; nodes stopped until
//! the proven shards fall below the quorum and then below the read threshold change the exit
//! code to 1 and then 2; a node behind a proxy that answers for another blob is named as
//! answering for another blob; `floe blob-status` shows the last audit.

#[allow(dead_code)]
mod support;

use std::path::Path;
use std::time::Duration;

use floe_core::{BlobId, ObjectId};
use floe_node::config::Limits;
use serde_json::Value;
use support::faults::{
    delete_shard_on_disk, floe, restart_behind_lying_proxy, store_random, write_cli_config,
};
use support::{NODES, Net, SERIAL, Stop, random_bytes, rng};

/// No recovery gets in the way: what a node proves must come from its own disk.
fn limits() -> Limits {
    Limits {
        sync_delay_ms: 600_000,
        maintenance_interval_secs: 3600,
        ..Limits::default()
    }
}

/// `floe audit BLOB --json [extra]`: the exit code and the blob's report.
fn audit(dir: &Path, blob: &BlobId, extra: &[&str]) -> (i32, Value) {
    let id = blob.to_string();
    let mut args = vec!["audit", id.as_str(), "--json", "--timeout", "3s"];
    args.extend_from_slice(extra);
    let (code, out, err) = floe(dir, &args);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("floe audit: exit {code}: {e}: {out} {err}"));
    println!(
        "audit: exit {code}, proved {} failed {} no answer {}, failed nodes {}",
        v[0]["proved"], v[0]["failed"], v[0]["noAnswer"], v[0]["failedNodes"]
    );
    (code, v[0].clone())
}

async fn store(net: &Net, seed: u64, tag: &str) -> (BlobId, ObjectId) {
    store_random(net, (seed, tag), 40_000, 2, true).await
}

/// Kill running nodes other than `keep`, in index order, until fewer than `threshold` shards
/// can prove possession; `proved` and `stopped` follow.
async fn stop_until_below(
    net: &mut Net,
    keep: usize,
    threshold: u64,
    proved: &mut u64,
    stopped: &mut Vec<usize>,
) {
    let candidates: Vec<usize> = (0..NODES)
        .filter(|&i| i != keep && !stopped.contains(&i))
        .collect();
    for i in candidates {
        if *proved < threshold {
            break;
        }
        net.stop_node(i, Stop::Kill).await;
        *proved -= net.weight(i);
        stopped.push(i);
    }
}

/// The report without its shards (their signed answers are long).
fn brief(report: &Value) -> Value {
    let mut v = report.clone();
    v["shards"] = Value::Null;
    v["certificate"] = Value::Null;
    v
}

fn shards_of(report: &Value, result: &str) -> Vec<u64> {
    report["shards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["result"] == result)
        .map(|s| s["shard"].as_u64().unwrap())
        .collect()
}

fn node_name(net: &Net, i: usize) -> String {
    net.system.committee.members[net.member(i)].name.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_names_failed_shards_and_exit_codes_follow_the_margins() {
    let _serial = SERIAL.lock().await;
    let seed = support::test_seed("audit");
    let mut net = Net::start("audit", seed, limits()).await;
    let dir = net.dir().to_path_buf();
    write_cli_config(&net);
    let (blob, object) = store(&net, seed, "a").await;
    let (other, _) = store(&net, seed, "b").await;
    net.wait_replicated(&[blob, other], Duration::from_secs(30))
        .await
        .unwrap();

    // Healthy: every shard proves possession; the evidence verifies offline.
    let (code, r) = audit(&dir, &blob, &["--evidence", "ev.json"]);
    assert_eq!(code, 0, "{}", brief(&r));
    assert_eq!(r["verdict"], "available");
    assert_eq!(r["proved"], 10);
    assert_eq!(r["margins"]["aboveReadThreshold"], 6);
    assert_eq!(r["margins"]["aboveQuorum"], 3);
    assert_eq!(r["certificateCheck"]["result"], "verified", "{}", brief(&r));
    assert_eq!(r["certificateCheck"]["signerShards"], 10);
    let evidence: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ev.json")).unwrap()).unwrap();
    let answers: Vec<usize> = evidence[0]["report"]["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["answer"]["serializedMessage"].as_str().unwrap().len() * 3 / 4 + 96)
        .collect();
    println!(
        "signed answers (4 samples per sliver, 40 kB blob, n = 10): {}..{} bytes per shard",
        answers.iter().min().unwrap(),
        answers.iter().max().unwrap()
    );
    let (code, out, err) = floe(&dir, &["audit", "--verify", "ev.json"]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("supports AVAILABLE"), "{out}");
    assert!(out.contains("certificate verified here"), "{out}");
    check_tampering(&dir);

    // Several blobs at once, one given as a file: one report each, the worst exit code.
    std::fs::write(dir.join("a.bin"), random_bytes(&mut rng(seed, "a"), 40_000)).unwrap();
    let (code, out, err) = floe(
        &dir,
        &["audit", "--file", "a.bin", &other.to_string(), "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let reports: Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["blobId"].as_str().unwrap())
        .collect();
    let (blob_s, other_s) = (blob.to_string(), other.to_string());
    assert_eq!(ids, vec![other_s.as_str(), blob_s.as_str()]);

    // One node's slivers of one shard deleted on disk: that shard fails, the node is named.
    let victim = (0..NODES).max_by_key(|&i| net.weight(i)).unwrap();
    let shard = net.shards(victim)[0];
    delete_shard_on_disk(&mut net, victim, shard).await;
    let (code, r) = audit(&dir, &blob, &["--evidence", "ev2.json"]);
    assert_eq!(
        shards_of(&r, "failed"),
        vec![u64::from(shard)],
        "{}",
        brief(&r)
    );
    assert_eq!(r["proved"], 9);
    assert_eq!(code, 0, "9 of 10 shards is still above the quorum of 7");
    let named = &r["failedNodes"][0];
    assert_eq!(named["node"], node_name(&net, victim));
    let reasons = named["reasons"].to_string();
    assert!(reasons.contains("refused"), "{reasons}");
    // A signed refusal is evidence too: it verifies, and counts as a signed failure.
    let (code, out, _) = floe(&dir, &["audit", "--verify", "ev2.json"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 failures signed"), "{out}");

    // blob-status shows the last audit and the event behind the ledger's status.
    let (code, out, err) = floe(&dir, &["blob-status", "--blob-id", &blob.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Last audit") && out.contains("9 of 10 shards"),
        "{out}"
    );
    assert!(out.contains("Made so by ledger event"), "{out}");

    // An extension (a new event for the blob) makes the victim schedule a sync of what it
    // lacks (after the long sync delay): it now says it is recovering, and is listed so.
    net.client(0).extend(&object, 1).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, r) = audit(&dir, &blob, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        shards_of(&r, "failed"),
        vec![u64::from(shard)],
        "{}",
        brief(&r)
    );
    assert_eq!(
        r["recoveringNodes"],
        serde_json::json!([node_name(&net, victim)])
    );
    assert!(
        r["failedNodes"][0]["reasons"]
            .to_string()
            .contains("recovering"),
        "{}",
        brief(&r)
    );

    // Stop other nodes until fewer than n − f = 7 shards prove possession: at risk (1).
    let mut proved = 9;
    let mut stopped = Vec::new();
    stop_until_below(&mut net, victim, 7, &mut proved, &mut stopped).await;
    let (code, r) = audit(&dir, &blob, &[]);
    assert_eq!(r["proved"], proved, "{}", brief(&r));
    assert_eq!(code, if proved >= 4 { 1 } else { 2 }, "{}", brief(&r));
    assert!(!shards_of(&r, "noAnswer").is_empty());
    // Then below the read threshold n − 2f = 4: unreadable (2).
    stop_until_below(&mut net, victim, 4, &mut proved, &mut stopped).await;
    let (code, r) = audit(&dir, &blob, &[]);
    assert_eq!(r["proved"], proved, "{}", brief(&r));
    assert_eq!(code, 2, "{}", brief(&r));
    assert_eq!(r["verdict"], "unreadable");
    // Every node down: no metadata, nothing proven, still a verdict (2), not an error.
    let up: Vec<usize> = (0..NODES).filter(|i| !stopped.contains(i)).collect();
    for &i in &up {
        net.stop_node(i, Stop::Kill).await;
    }
    let (code, r) = audit(&dir, &blob, &[]);
    assert_eq!(
        (code, r["proved"].as_u64(), r["noAnswer"].as_u64()),
        (2, Some(0), Some(10))
    );
    for i in stopped.into_iter().chain(up) {
        net.start_node(i).await;
    }

    // A node that answers for another blob is named, never believed.
    liar_is_named(&mut net, &dir, blob, other).await;

    // Not certified: exit 3, no node asked.
    let (code, r) = audit(&dir, &BlobId([7; 32]), &[]);
    assert_eq!(code, 3, "{}", brief(&r));
    assert_eq!(r["verdict"], "notCertified");
}

/// One way of editing an evidence file.
type Tamper = Box<dyn Fn(&mut Value)>;

/// Tampered evidence files fail verification (exit 1).
fn check_tampering(dir: &Path) {
    let text = std::fs::read_to_string(dir.join("ev.json")).unwrap();
    let original: Value = serde_json::from_str(&text).unwrap();
    let tampers: Vec<(&str, Tamper)> = vec![
        (
            "nonce",
            Box::new(|v: &mut Value| {
                let nonce = v[0]["report"]["shards"][3]["nonce"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let flipped = if nonce.starts_with('0') { "1" } else { "0" };
                v[0]["report"]["shards"][3]["nonce"] =
                    Value::from(format!("{flipped}{}", &nonce[1..]));
            }),
        ),
        (
            "signed bytes",
            Box::new(|v: &mut Value| {
                let answer = &mut v[0]["report"]["shards"][5]["answer"]["serializedMessage"];
                let s = answer.as_str().unwrap().to_string();
                let mid = s.len() / 2;
                let c = if &s[mid..mid + 1] == "A" { "B" } else { "A" };
                *answer = Value::from(format!("{}{c}{}", &s[..mid], &s[mid + 1..]));
            }),
        ),
        (
            "claimed verdict",
            Box::new(|v: &mut Value| {
                v[0]["report"]["shards"][2]["answer"] = Value::Null;
                v[0]["report"]["shards"][2]["result"] = Value::from("noAnswer");
            }),
        ),
        (
            "metadata",
            Box::new(|v: &mut Value| {
                let m = v[0]["metadata"].as_str().unwrap().to_string();
                let last = if m.ends_with('0') { "1" } else { "0" };
                v[0]["metadata"] = Value::from(format!("{}{last}", &m[..m.len() - 1]));
            }),
        ),
    ];
    for (what, tamper) in tampers {
        let mut v = original.clone();
        tamper(&mut v);
        std::fs::write(dir.join("bad.json"), v.to_string()).unwrap();
        let (code, out, err) = floe(dir, &["audit", "--verify", "bad.json"]);
        println!("tampered {what}: exit {code}: {}", out.trim());
        assert_eq!(code, 1, "tampered {what} must fail: {out} {err}");
        assert!(out.contains("does NOT verify"), "{out}");
    }
}

/// Node `i` restarted behind a proxy on its registered address that turns every audit of
/// `blob` into an audit of `other`: the node signs a genuine answer, for the wrong blob.
async fn liar_is_named(net: &mut Net, dir: &Path, blob: BlobId, other: BlobId) {
    let liar = (0..NODES).min_by_key(|&i| net.weight(i)).unwrap();
    let lying = restart_behind_lying_proxy(net, liar, blob, other).await;
    let (code, r) = audit(dir, &blob, &[]);
    let named = r["failedNodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["node"] == node_name(net, liar))
        .unwrap_or_else(|| panic!("the liar is not named: {}", brief(&r)));
    let reasons = named["reasons"].to_string();
    assert!(reasons.contains("another blob"), "{reasons}");
    // The shard deleted earlier still fails too.
    assert_eq!(
        r["proved"].as_u64().unwrap(),
        9 - net.weight(liar),
        "{}",
        brief(&r)
    );
    assert_eq!(code, 0);
    lying.restore();
}
