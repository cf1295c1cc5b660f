//! Conformance with Walrus's published OpenAPI specifications: schemathesis (from PyPI) sends
//! generated requests to a running daemon and a running storage node of a local network, and
//! checks every answer: no server error, no status code the specification does not declare,
//! no body that does not match the declared schema.
//!
//! The specifications are copies of Walrus's (`tests/walrus-openapi/`), patched only where the
//! published document is itself wrong; `tests/walrus-openapi/PATCHES.md` explains each patch.
//! schemathesis must be installed (`python3 -m pip install schemathesis`; `.ci/run` does it).

use floe_test_support::test_seed;
use std::path::PathBuf;
use std::process::Command;

use floe_client::{Client, ClientConfig};
use floe_daemon::DaemonOptions;
use floe_ledger::AccountKey;
use floe_node::config::Limits;
use floe_testbed::{Testbed, TestbedOptions};
use tokio::net::TcpListener;

/// Checks run on every answer.
const CHECKS: &str = "not_a_server_error,status_code_conformance,response_schema_conformance";

fn spec(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/walrus-openapi")
        .join(name)
}

/// The schemathesis command, or a failure that says how to install it.
fn schemathesis() -> Command {
    let found = Command::new("st")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "this test needs schemathesis (from PyPI) on the PATH as `st`: install it with \
         `python3 -m pip install schemathesis` (.ci/run does)"
    );
    Command::new("st")
}

/// Which of schemathesis's phases a run takes, and with how many workers.
#[derive(Clone, Copy)]
enum Phases {
    /// The declared examples, then `examples` generated requests per operation (2 workers).
    Generated { examples: u32 },
    /// The coverage phase: every boundary and every way to break each declared constraint
    /// (wrong types, missing parameters, values out of range, undeclared methods), derived
    /// from the document, so the same requests every run. One worker: with two, schemathesis
    /// 4.x crashes inside its own generator (a KeyError from a cache that two threads share).
    Coverage,
}

/// Run schemathesis with `spec` against `url`; panics with its report unless every check
/// passed.
fn run(spec: &PathBuf, url: &str, seed: u64, phases: Phases) {
    let report = tempfile::tempdir().unwrap();
    let mut st = schemathesis();
    st.arg("run")
        .arg(spec)
        .args(["--url", url, "--checks", CHECKS])
        .args(["--seed", &seed.to_string()])
        .args(["--request-timeout", "60"])
        .args(["--suppress-health-check", "all", "--no-shrink"]);
    match phases {
        Phases::Generated { examples } => st
            .args(["--phases", "examples,fuzzing", "--workers", "2"])
            .args(["--max-examples", &examples.to_string()]),
        Phases::Coverage => st.args(["--phases", "coverage", "--workers", "1"]),
    };
    let out = st
        // Nodes serve HTTPS with a self-signed certificate from their network key (Floe's
        // clients pin the key; schemathesis has no pinning, so it skips verification).
        .args(["--tls-verify", "false"])
        .arg("--report-dir")
        .arg(report.path())
        // schemathesis keeps a cache in its working directory: not in the source tree.
        .current_dir(report.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found non-conforming answers of {url} with {}:\n{stdout}\n{stderr}",
        spec.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_and_a_node_conform_to_walruss_published_specs() {
    let seed = test_seed("the_daemon_and_a_node_conform_to_walruss_published_specs");
    let dir = tempfile::tempdir().unwrap();
    let bed = Testbed::start(
        dir.path(),
        TestbedOptions {
            nodes: 4,
            n_shards: 10,
            epoch_duration_ms: 3_600_000,
            node_limits: Limits {
                sync_delay_ms: 0,
                ..Limits::default()
            },
            ..TestbedOptions::default()
        },
    )
    .await
    .unwrap();
    let mut config = ClientConfig {
        ledger_url: bed.ledger_url(),
        ..ClientConfig::default()
    };
    config.communication.request_timeout_ms = 5_000;
    config.communication.max_attempts = 2;
    let client = Client::new(config, Some(AccountKey::from_seed(&[7; 32]))).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let daemon_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(floe_daemon::serve_on(
        listener,
        client,
        DaemonOptions::default(),
        std::future::pending(),
    ));
    let (node_url, _) = bed
        .node_endpoint(0, &floe_node_client::NodeHttp::with_defaults())
        .unwrap();
    assert!(
        node_url.starts_with("https://"),
        "nodes serve TLS by default"
    );

    let daemon_spec = spec("daemon_openapi.yaml");
    let node_spec = spec("storage_openapi.yaml");
    let (d, n) = (daemon_url.clone(), node_url.clone());
    tokio::task::spawn_blocking(move || {
        for phases in [Phases::Coverage, Phases::Generated { examples: 25 }] {
            run(&node_spec, &n, seed, phases);
            run(&daemon_spec, &d, seed, phases);
        }
    })
    .await
    .unwrap();
    bed.shutdown().await;
}
