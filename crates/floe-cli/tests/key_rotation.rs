//! A node's network (TLS) key changes on a running network, as an operator would do it:
//! `floe node keygen --network-key-only`, `floe node set-network-key`, then a restart with the
//! new key file. Clients reach the node at every step, because the ledger keeps the replaced key
//! pinned through the epoch after the change; afterwards only the new key is accepted.
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use floe_node::config::{Limits, NodeKeysFile};
use floe_node_client::NodeClient;
use serde_json::Value;
use support::faults::{floe, store_random, write_cli_config};
use support::{Net, SERIAL, Stop};

/// Short epochs: the replaced key must be seen dropped two epoch changes later.
const EPOCH_MS: u64 = 6_000;

/// A client of node `i` built from what the ledger lists now (a fresh client, as any reader
/// would build after the change).
async fn fresh_client(net: &Net, i: usize) -> (NodeClient, Vec<floe_crypto::NetworkPublicKey>) {
    let system = net.ledger.system().await.unwrap();
    let member = system
        .committee
        .members
        .iter()
        .find(|m| m.network_address == net.state.node_addresses[i])
        .expect("node i is a member")
        .clone();
    let keys = member.pinned_keys();
    let client = NodeClient::for_node(
        &net.node_http,
        &member.network_address,
        &keys,
        Duration::from_secs(5),
    );
    (client, keys)
}

/// `floe ARGS` for the operator's node verbs (they take no client config).
fn operator(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_floe"))
        .env_remove("FLOE_CONFIG")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn wait_epoch(net: &Net, epoch: u32) {
    let deadline = Instant::now() + Duration::from_millis(4 * EPOCH_MS);
    while net.ledger.system().await.unwrap().epoch < epoch {
        assert!(
            Instant::now() < deadline,
            "epoch {epoch} not reached in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_changes_its_network_key_without_becoming_unreachable() {
    let _serial = SERIAL.lock().await;
    let seed = support::test_seed("key-rotation");
    let mut net = Net::start_with_epochs("key-rotation", seed, Limits::default(), EPOCH_MS).await;
    write_cli_config(&net);
    let node = 0;
    let old = net.node_network_key(node).public_key();
    let (blob, _) = store_random(&net, (seed, "before-change"), 20_000, 5, false).await;
    // Asked of node 0 through a client pinned as the ledger lists it now.
    let reach = |client: NodeClient| async move { client.blob_status(&blob).await };

    // A second key file for node 0: same identity, a new network key.
    let keys_path = net.node_dir(node).join("keys.json");
    let mut file: NodeKeysFile =
        serde_json::from_str(&std::fs::read_to_string(&keys_path).unwrap()).unwrap();
    file.network_key = None;
    let new_path = net.dir().join("node-0-new-keys.json");
    std::fs::write(&new_path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let new_path_s = new_path.to_str().unwrap();
    let (code, _, err) = operator(&["node", "keygen", "--network-key-only", "--out", new_path_s]);
    assert_eq!(code, 0, "{err}");

    let ledger_url = net.ledger_url();
    let before = net.ledger.system().await.unwrap().epoch;
    let set_key = || {
        operator(&[
            "node",
            "set-network-key",
            "--keys",
            new_path_s,
            "--ledger-url",
            &ledger_url,
            "--json",
        ])
    };
    let (code, out, err) = set_key();
    assert_eq!(code, 0, "{err}");
    let set: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(set["previousNetworkPublicKey"], old.to_string(), "{set}");
    let new = set["networkPublicKey"].as_str().unwrap().to_string();
    assert_ne!(new, old.to_string());
    let until = set["previousKeyAcceptedUntilEpoch"].as_u64().unwrap() as u32;
    assert!(until > before, "{set}");
    assert_eq!(set["changed"], true, "{set}");
    // Run again with the same key file: nothing changes, and the overlap still running is
    // reported as it stands on the ledger.
    let (code, out, err) = set_key();
    assert_eq!(code, 0, "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["previousNetworkPublicKey"], new.as_str(), "{again}");
    assert_eq!(
        again["previousKeyAcceptedUntilEpoch"].as_u64(),
        Some(u64::from(until)),
        "{again}"
    );
    println!(
        "node {node}: network key {old} -> {new} after epoch {before}, old kept until {until}"
    );

    // Before the restart: the node still serves with the old key, and a client built from the
    // ledger's new listing reaches it (the old key is still pinned beside the new one).
    let (client, keys) = fresh_client(&net, node).await;
    assert_eq!(keys.len(), 2, "both keys pinned: {keys:?}");
    reach(client)
        .await
        .expect("the node is reachable with its old key during the overlap");
    let (during, _) = store_random(&net, (seed, "during-overlap"), 20_000, 5, false).await;

    // The operator restarts the node with the new key file.
    net.stop_node(node, Stop::Term).await;
    std::fs::copy(&new_path, &keys_path).unwrap();
    net.start_node(node).await;
    let (client, _) = fresh_client(&net, node).await;
    reach(client)
        .await
        .expect("the node is reachable with its new key");
    for id in [blob, during] {
        let (code, _, err) = floe(net.dir(), &["read", &id.to_string(), "--out", "read.bin"]);
        assert_eq!(code, 0, "{err}");
    }

    // Two epoch changes later the ledger no longer lists the old key.
    wait_epoch(&net, until + 1).await;
    let (client, keys) = fresh_client(&net, node).await;
    assert_eq!(keys.len(), 1, "only the new key is pinned: {keys:?}");
    assert_eq!(keys[0].to_string(), new);
    reach(client).await.expect("still reachable");
}
