//! The drift check on real processes: a node whose store lost the ledger events of a blob (as
//! if it had missed them) takes a different blob-table digest at the next epoch change, and
//! `floe health` names exactly that node; every node's event lag is a number.

#[allow(dead_code)]
mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_client::{Lifetime, NoProgress, StoreOptions};
use floe_node::config::Limits;
use floe_node_storage::{BlobInfo, FjallStore, NodeStore};
use serde_json::Value;
use support::{NODES, Net, SERIAL, Stop, random_bytes, rng};

fn health(dir: &std::path::Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_floe"))
        .current_dir(dir)
        .env_remove("FLOE_CONFIG")
        .env("HOME", dir)
        .args(["health", "--json", "--config"])
        .arg(dir.join("floe.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_names_the_node_whose_blob_table_drifted() {
    let _serial = SERIAL.lock().await;
    let seed = support::test_seed("drift");
    let limits = Limits {
        maintenance_interval_secs: 3600,
        ..Limits::default()
    };
    let mut net = Net::start_with_epochs("drift", seed, limits, 20_000).await;
    let dir = net.dir().to_path_buf();
    std::fs::write(
        dir.join("floe.yaml"),
        format!("ledger_url: {}\nwallet: wallet.json\n", net.ledger_url()),
    )
    .unwrap();
    let options = StoreOptions {
        lifetime: Lifetime::Epochs(5),
        deletable: true,
        force: false,
    };
    let data = random_bytes(&mut rng(seed, "drift"), 20_000);
    let blob = net
        .client(0)
        .store(data, &options, Arc::new(NoProgress))
        .await
        .unwrap()
        .result
        .blob_id()
        .unwrap();

    // The drifter forgets everything the ledger said about the blob, as if it missed the
    // events, and keeps its event cursor.
    let drifter = 2;
    net.stop_node(drifter, Stop::Term).await;
    {
        let store =
            FjallStore::open(&net.node_dir(drifter).join("data"), Default::default()).unwrap();
        let cursor = store.event_cursor().unwrap();
        store
            .apply_events(&[(blob, BlobInfo::default())], cursor)
            .unwrap();
        store.persist().unwrap();
    }
    net.start_node(drifter).await;
    let epoch = net.ledger.system().await.unwrap().epoch;

    // Wait for the next epoch change and every node's digest of it.
    let deadline = Instant::now() + Duration::from_secs(90);
    let report = loop {
        let h = health(&dir);
        let nodes = h.as_array().unwrap();
        let digested = nodes
            .iter()
            .filter(|n| n["health"]["blobTableDigest"]["epoch"].as_u64() > Some(u64::from(epoch)))
            .count();
        if digested == NODES {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "no epoch change digested by all: {h}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let name = net.system.committee.members[net.member(drifter)]
        .name
        .clone();
    let rows = report.as_array().unwrap();
    for n in rows {
        println!(
            "{}: blob table {}, event lag {}",
            n["name"], n["blobTable"], n["eventLag"]
        );
        let expected = if n["name"] == name.as_str() {
            "disagrees"
        } else {
            "agrees"
        };
        assert_eq!(n["blobTable"], expected, "{n}");
        assert!(n["eventLag"].is_u64(), "event lag is a number: {n}");
    }
    // The text output names it too.
    let out = Command::new(env!("CARGO_BIN_EXE_floe"))
        .current_dir(&dir)
        .env("HOME", &dir)
        .args(["health", "--config"])
        .arg(dir.join("floe.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "DISAGREE (missed or misapplied ledger events): {name}"
        )),
        "{text}"
    );
    assert!(!text.contains("event lag ?"), "{text}");
}
