//! Membership changes through real processes: `floe testbed` as a child process, changed from
//! outside with `floe testbed add-node | set-weight | remove-node | nodes` and watched with
//! `floe info`; a resume that does not restart a removed node but does restart one that was
//! still leaving; and the operator's path,
//! `floe node keygen | register | set-weight | deregister`, against the testbed's ledger.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use floe_test_support::{Bed, Floe, wait_for};
use serde_json::Value;

fn cli(dir: &Path) -> Floe {
    Floe::new(env!("CARGO_BIN_EXE_floe"), dir)
}

fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    cli(dir).run(args)
}

fn json(dir: &Path, args: &[&str]) -> Value {
    cli(dir).json(args)
}

/// `floe testbed` on `data_dir`: four nodes, 40 shards, 4 s epochs, no daemon; its output
/// echoed as `testbed> …`.
fn start_bed(dir: &Path, data_dir: &Path) -> Bed {
    let data_dir = data_dir.to_string_lossy();
    let args = [
        "--data-dir",
        &data_dir,
        "--nodes",
        "4",
        "--n-shards",
        "40",
        "--epoch-duration",
        "4s",
        "--base-port",
        "0",
        "--no-daemon",
    ];
    Bed::start(&cli(dir), &args, true)
}

/// How long a testbed may take to stop on Ctrl-C (a membership change may be in flight).
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// A raw HTTP/1.1 request; the status code.
fn http_status(url: &str, method: &str, path: &str, auth: Option<&str>) -> u16 {
    let host = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

struct Net {
    dir: PathBuf,
    data: String,
    config: String,
}

impl Net {
    fn info(&self) -> Value {
        json(&self.dir, &["info", "--json", "--config", &self.config])
    }

    fn nodes(&self) -> Vec<Value> {
        json(
            &self.dir,
            &["testbed", "nodes", "--data-dir", &self.data, "--json"],
        )
        .as_array()
        .unwrap()
        .clone()
    }

    fn testbed(&self, verb: &[&str]) -> Value {
        let mut args = vec!["testbed"];
        args.extend_from_slice(verb);
        args.extend_from_slice(&["--data-dir", &self.data, "--json"]);
        json(&self.dir, &args)
    }
}

/// `info`'s row of node `name`, if it is in the current or next committee.
fn row<'a>(info: &'a Value, name: &str) -> Option<&'a Value> {
    info["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
}

/// No epoch change in progress: `epochState` is a unit variant (`done`, …), not `syncing`.
fn settled(info: &Value) -> bool {
    info["epochState"].is_string()
}

/// Shards held by the nodes `floe info` lists.
fn total_shards(info: &Value) -> u64 {
    info["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["shards"].as_u64().unwrap())
        .sum()
}

#[test]
fn nodes_join_leave_and_reweight_a_running_testbed() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data = d.join("bed");
    println!("testbed directory: {} (key seed 0)", data.display());
    let net = Net {
        dir: d.to_path_buf(),
        data: data.display().to_string(),
        config: data.join("floe.yaml").display().to_string(),
    };

    // Without a running testbed the verbs say so.
    let (ok, _, err) = run(d, &["testbed", "nodes", "--data-dir", &net.data]);
    assert!(!ok);
    assert!(
        err.contains("no testbed is running in") && err.contains("floe testbed"),
        "{err}"
    );

    let bed = start_bed(d, &data);
    the_control_api_is_private_and_authenticated(&data);
    four_nodes_run_with_ten_shards_each(&net);
    a_fifth_node_joins(&net);
    a_node_is_reweighted_and_another_leaves(&net);
    an_operator_registers_reweights_and_deregisters_a_node(&net);
    let bed = a_resumed_testbed_leaves_the_removed_node_stopped(&net, bed, &data);
    let bed = a_node_removed_before_a_stop_hands_its_shards_over_after_the_resume(&net, bed, &data);
    drop(bed);
    println!(
        "membership test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `control.json` is mode 0600, and the control API wants its bearer token.
fn the_control_api_is_private_and_authenticated(data: &Path) {
    let control: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("control.json")).unwrap()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("control.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "control.json is private");
    }
    let url = control["url"].as_str().unwrap();
    let token = control["token"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(http_status(url, "GET", "/v1/nodes", None), 401);
    assert_eq!(http_status(url, "GET", "/v1/nodes", Some("wrong")), 401);
    assert_eq!(http_status(url, "GET", "/v1/nodes", Some(token)), 200);
    assert_eq!(http_status(url, "DELETE", "/v1/nodes/9", Some(token)), 404);
}

/// The testbed starts with four running nodes of ten shards each.
fn four_nodes_run_with_ten_shards_each(net: &Net) {
    let nodes = net.nodes();
    assert_eq!(nodes.len(), 4);
    assert!(
        nodes
            .iter()
            .all(|n| n["running"] == true && n["shards"] == 10)
    );
}

/// A fifth node joins: it holds shards from the epoch `add-node` named, and `info` shows it.
fn a_fifth_node_joins(net: &Net) {
    let d = net.dir.as_path();
    let added = net.testbed(&["add-node"]);
    assert_eq!(added["index"], 4, "{added}");
    let epoch = added["epoch"].as_u64().unwrap();
    let effective = added["effectiveEpoch"].as_u64().unwrap();
    assert!(effective == epoch + 1 || effective == epoch + 2, "{added}");
    let joined = wait_for(
        "node-4 holds shards and no change is in progress",
        Duration::from_secs(60),
        || {
            let info = net.info();
            let shards = row(&info, "node-4")?["shards"].as_u64()?;
            (shards > 0 && settled(&info)).then_some(info)
        },
    );
    assert!(joined["epoch"].as_u64().unwrap() >= effective);
    let (ok, human, err) = run(d, &["info", "--config", &net.config]);
    assert!(ok, "{err}");
    assert!(
        human.contains("Shards per node") && human.contains("node-4"),
        "{human}"
    );
}

/// Node 1 weighs three times as much and node 0 leaves (a second removal and a zero weight
/// are refused): node 1's share grows, node 0 ends with no shards, stopped.
fn a_node_is_reweighted_and_another_leaves(net: &Net) {
    let d = net.dir.as_path();
    let next_before = net.nodes()[1]["nextShards"].as_u64().unwrap();
    let reweighted = net.testbed(&["set-weight", "1", "3"]);
    assert_eq!(reweighted["weight"], 3, "{reweighted}");
    let removed = net.testbed(&["remove-node", "0"]);
    assert_eq!(removed["index"], 0, "{removed}");
    let (ok, _, err) = run(d, &["testbed", "remove-node", "0", "--data-dir", &net.data]);
    assert!(!ok && err.contains("node 0 was removed"), "{err}");
    let (ok, _, err) = run(
        d,
        &["testbed", "set-weight", "2", "0", "--data-dir", &net.data],
    );
    assert!(!ok && err.contains("at least 1"), "{err}");
    wait_for(
        "node 1's share of the next committee grows",
        Duration::from_secs(30),
        || (net.nodes()[1]["nextShards"].as_u64()? > next_before).then_some(()),
    );
    let address0 = net.nodes()[0]["address"].as_str().unwrap().to_string();
    wait_for(
        "node 0 holds no shards and is stopped",
        Duration::from_secs(60),
        || {
            let info = net.info();
            let n0 = &net.nodes()[0];
            let gone = row(&info, "node-0").is_none_or(|r| r["shards"] == 0);
            (gone && n0["running"] == false && n0["removed"] == true).then_some(())
        },
    );
    assert!(
        std::net::TcpStream::connect(&address0).is_err(),
        "node 0 no longer serves on {address0}"
    );
    assert_eq!(total_shards(&net.info()), 40);
}

/// The operator's path against the same ledger: a node of its own keys is registered,
/// re-keyed (a no-op), re-weighted and deregistered, with the refusals on the way.
fn an_operator_registers_reweights_and_deregisters_a_node(net: &Net) {
    let d = net.dir.as_path();
    let ledger_url = std::fs::read_to_string(&net.config)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("ledger_url: ").map(str::to_string))
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let keys = d.join("operator-keys.json").display().to_string();
    let address = format!("127.0.0.1:{port}");
    println!("operator keys: {keys}, node address {address}, ledger {ledger_url}");
    let (ok, generated, err) = run(
        d,
        &[
            "node",
            "keygen",
            "--out",
            &keys,
            "--name",
            "operator-node",
            "--address",
            &address,
        ],
    );
    assert!(ok, "{err}");
    let op = |verb: &[&str], keys: &str| {
        let mut args = vec!["node"];
        args.extend_from_slice(verb);
        args.extend_from_slice(&["--keys", keys, "--ledger-url", &ledger_url]);
        run(d, &args)
    };
    let (ok, _, err) = op(&["deregister"], &keys);
    assert!(
        !ok && err.contains("not registered") && err.contains("floe node register"),
        "{err}"
    );
    let (ok, out, err) = op(&["register", "--json"], &keys);
    assert!(ok, "{err}");
    let registered: Value = serde_json::from_str(&out).unwrap();
    assert!(registered["nodeId"].is_string(), "{registered}");
    let e = registered["epoch"].as_u64().unwrap();
    let eff = registered["effectiveEpoch"].as_u64().unwrap();
    assert!(eff == e + 1 || eff == e + 2, "{registered}");
    let (ok, _, err) = op(&["register"], &keys);
    assert!(
        !ok && err.contains("already registered") && err.contains("floe node set-weight"),
        "{err}"
    );
    // The registration carried the key file's network key; setting it again changes nothing,
    // and keygen will not replace a key the ledger may have registered.
    let generated: Value = serde_json::from_str(&generated).unwrap();
    let (ok, out, err) = op(&["set-network-key", "--json"], &keys);
    assert!(ok, "{err}");
    let set: Value = serde_json::from_str(&out).unwrap();
    assert!(generated["networkPublicKey"].is_string(), "{generated}");
    assert_eq!(
        set["previousNetworkPublicKey"],
        generated["networkPublicKey"]
    );
    assert_eq!(set["networkPublicKey"], generated["networkPublicKey"]);
    let (ok, _, err) = run(d, &["node", "keygen", "--network-key-only", "--out", &keys]);
    assert!(!ok && err.contains("already has a network key"), "{err}");
    let (ok, out, err) = op(&["set-weight", "--weight", "2"], &keys);
    assert!(ok && out.contains("from 1 to 2"), "{out}{err}");
    let (ok, out, err) = op(&["deregister"], &keys);
    assert!(ok && out.contains("Deregistered"), "{out}{err}");
    let (ok, _, err) = op(&["set-weight", "--weight", "2"], &keys);
    assert!(!ok && err.contains("deregistered"), "{err}");
    let (ok, _, err) = op(&["register"], &keys);
    assert!(!ok && err.contains("floe node keygen"), "{err}");
}

/// Stopped and resumed, the testbed does not start the removed node again.
fn a_resumed_testbed_leaves_the_removed_node_stopped(net: &Net, bed: Bed, data: &Path) -> Bed {
    bed.interrupt(STOP_WITHIN);
    assert!(!data.join("control.json").exists(), "control.json removed");
    let bed = start_bed(&net.dir, data);
    let nodes = net.nodes();
    assert_eq!(nodes.len(), 5);
    assert_eq!(nodes[0]["running"], false);
    assert_eq!(nodes[0]["removed"], true);
    assert!(nodes[1..].iter().all(|n| n["running"] == true));
    bed
}

/// A node removed just before the testbed stops is still handing its shards over: the
/// resumed testbed starts it again, and stops it once they have moved.
fn a_node_removed_before_a_stop_hands_its_shards_over_after_the_resume(
    net: &Net,
    bed: Bed,
    data: &Path,
) -> Bed {
    let held = row(&net.info(), "node-2").unwrap()["shards"]
        .as_u64()
        .unwrap();
    assert!(held > 0, "node 2 holds shards before its removal");
    let removed = net.testbed(&["remove-node", "2"]);
    assert_eq!(removed["index"], 2, "{removed}");
    bed.interrupt(STOP_WITHIN);
    let bed = start_bed(&net.dir, data);
    let n2 = net.nodes()[2].clone();
    assert!(
        n2["running"] == true && n2["removed"] == true,
        "the leaving node runs after the resume: {n2}"
    );
    wait_for(
        "node 2 holds no shards and is stopped",
        Duration::from_secs(60),
        || {
            let info = net.info();
            let n2 = &net.nodes()[2];
            let gone = row(&info, "node-2").is_none_or(|r| r["shards"] == 0);
            (gone && n2["running"] == false && settled(&info)).then_some(())
        },
    );
    assert_eq!(total_shards(&net.info()), 40);
    bed
}
