//! `floe testbed --ledger-replicas 3` through real processes: the testbed starts 3 etcd
//! members and 3 `floe ledger run` replicas as children; `floe testbed ledger` lists them and
//! `floe info` shows each replica's health; a blob stored through the replicated control
//! plane reads back; after kill -9 of one replica (by the pid the listing gives) the listing
//! shows it down and a store still certifies; on Ctrl-C the testbed stops the surviving
//! replicas with SIGTERM, and each writes a final snapshot at its position (so the next start
//! replays no transaction).
//!
//! Needs the `etcd` binary (`apt-get install etcd-server`); the testbed fails with that
//! message otherwise.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use floe_test_support::{Bed, Floe, wait_for};
use serde_json::Value;

fn cli(dir: &Path) -> Floe {
    Floe::new(env!("CARGO_BIN_EXE_floe"), dir)
}

/// How long the testbed may take to stop on Ctrl-C (its replicas' clean stops included).
const STOP_WITHIN: Duration = Duration::from_secs(40);

fn listing(d: &Path, data: &str) -> Value {
    cli(d).json(&["testbed", "ledger", "--data-dir", data, "--json"])
}

fn store(d: &Path, config: &str, name: &str, bytes: &[u8]) -> String {
    std::fs::write(d.join(name), bytes).unwrap();
    let stored = cli(d).json(&["store", name, "--epochs", "2", "--json", "--config", config]);
    let created = &stored[0]["blobStoreResult"]["newlyCreated"]["blobObject"];
    created["blobId"]
        .as_str()
        .unwrap_or_else(|| panic!("no new blob in {stored}"))
        .to_string()
}

fn read_back(d: &Path, config: &str, blob_id: &str, expected: &[u8]) {
    let out = d.join(format!("{blob_id}.out"));
    let (ok, _, err) = cli(d).run(&[
        "read",
        blob_id,
        "--out",
        &out.display().to_string(),
        "--config",
        config,
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        expected,
        "blob {blob_id} read back different bytes"
    );
}

#[test]
fn a_testbed_with_three_ledger_replicas_survives_a_replica_kill_and_stops_cleanly() {
    // The testbed's own error (on its stderr) is not shown here: say how to get etcd first.
    if let Err(e) = floe_ledger_etcd::members::find_etcd() {
        panic!("this test runs etcd: {e}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data_dir = d.join("bed");
    let data = data_dir.display().to_string();
    let config = data_dir.join("floe.yaml").display().to_string();
    println!("testbed directory: {data}");
    let args = [
        "--data-dir",
        &data,
        "--nodes",
        "4",
        "--n-shards",
        "40",
        "--base-port",
        "0",
        "--no-daemon",
        "--ledger-replicas",
        "3",
    ];
    let bed = Bed::start(&cli(d), &args, true);

    let l = listing(d, &data);
    let replicas = l["replicas"].as_array().expect("replicas listed");
    assert_eq!(replicas.len(), 3, "{l}");
    assert!(replicas.iter().all(|r| r["up"] == true), "{l}");
    let members = l["etcd"].as_array().expect("etcd members listed");
    assert_eq!(members.len(), 3, "{l}");
    assert!(members.iter().all(|m| m["up"] == true), "{l}");
    assert_eq!(
        members.iter().filter(|m| m["leader"] == true).count(),
        1,
        "one etcd leader: {l}"
    );
    let info = cli(d).json(&["info", "--json", "--config", &config]);
    let plane = info["controlPlane"]
        .as_array()
        .expect("controlPlane in info");
    assert_eq!(plane.len(), 3, "floe info shows every replica: {info}");

    let a: Vec<u8> = (0..50_000u32).map(|i| (i * 13 + i / 7) as u8).collect();
    let blob_a = store(d, &config, "a.bin", &a);
    read_back(d, &config, &blob_a, &a);

    // kill -9 replica 0; the others carry the control plane.
    let pid = replicas[0]["pid"].as_u64().expect("a pid").to_string();
    let killed = Command::new("kill").args(["-9", &pid]).status().unwrap();
    assert!(killed.success());
    wait_for("replica 0 listed as down", Duration::from_secs(15), || {
        (listing(d, &data)["replicas"][0]["up"] == false).then_some(())
    });
    let b: Vec<u8> = (0..30_000u32).map(|i| (i * 31 + 5) as u8).collect();
    let blob_b = store(d, &config, "b.bin", &b);
    read_back(d, &config, &blob_b, &b);
    read_back(d, &config, &blob_a, &a);

    // The survivors agree before the stop.
    let applied = wait_for("replicas 1 and 2 agree", Duration::from_secs(15), || {
        let l = listing(d, &data);
        let (x, y) = (&l["replicas"][1], &l["replicas"][2]);
        (x["up"] == true && x["appliedSeq"] == y["appliedSeq"] && x["stateHash"] == y["stateHash"])
            .then(|| x["appliedSeq"].as_u64().unwrap())
    });
    assert!(applied > 0);

    // Ctrl-C: the testbed stops its replicas with SIGTERM; each writes a final snapshot at
    // (or past: its own checkpoint is an entry too) the position it had applied.
    bed.interrupt(STOP_WITHIN);
    for i in [1, 2] {
        let log =
            std::fs::read_to_string(data_dir.join(format!("ledger-replica-{i}.log"))).unwrap();
        assert!(
            log.contains("final snapshot written and checkpointed"),
            "replica {i} did not stop cleanly:\n{log}"
        );
        let newest = floe_ledger_service::snapshot::newest_seq(
            &data_dir.join(format!("ledger-replica-{i}")),
        )
        .unwrap();
        assert!(
            newest.is_some_and(|seq| seq >= applied),
            "replica {i}'s newest snapshot is {newest:?}, before the {applied} entries it applied"
        );
    }
}
