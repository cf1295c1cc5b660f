//! Jepsen-style checks of the replicated control plane on real processes: 3 `etcd` members and
//! 3 `floe ledger run --etcd-endpoints …` replicas, each a child process, under a load of
//! signed transactions sent through a client that knows all three replicas.
//!
//! Faults, one at a time while the load runs: kill -9 a replica (then restart it), SIGSTOP a
//! replica (then SIGCONT) for long enough that the others prune the log past it (it must reload
//! a peer's snapshot, and its stale appender must not write into the pruned prefix), kill -9 the etcd leader (then restart it), kill -9 another etcd
//! member. Checks: no submission fails (a majority of etcd and at least one replica are always
//! up); every acknowledged transaction is applied exactly once on every replica; the replicas'
//! logs are prefixes of one another (equal digests at every common position) and their states
//! are equal at equal positions; the restarted replica converges.
//!
//! Needs the `etcd` binary: `apt-get install etcd-server`. Without it this test fails with that
//! message (it does not skip).

use floe_test_support::test_seed;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use floe_ledger_client::LedgerClient;
use floe_ledger_etcd::EtcdMembers;
use floe_ledger_etcd::members::free_port;

/// One `floe ledger run` replica process.
struct Replica {
    data_dir: PathBuf,
    port: u16,
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
}

impl Replica {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_floe"))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn floe ledger run");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status()
                .unwrap();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.signal("CONT");
        self.kill();
    }
}

fn write_genesis(dir: &Path) -> PathBuf {
    let out = dir.join("genesis.json");
    let status = Command::new(env!("CARGO_BIN_EXE_floe"))
        .args(["ledger", "init", "--generate", "1", "--n-shards", "10"])
        .args(["--epoch-duration", "1h", "--keys-dir"])
        .arg(dir.join("keys"))
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "floe ledger init failed");
    out
}

async fn is_healthy_within(url: &str, limit: Duration) -> bool {
    let client = LedgerClient::new(url);
    let started = Instant::now();
    while started.elapsed() < limit {
        if client.health().await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn wait_healthy(url: &str, limit: Duration) {
    let client = LedgerClient::new(url);
    let started = Instant::now();
    while started.elapsed() < limit {
        if client.health().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("replica {url} not healthy within {limit:?}");
}

fn register(seed: u64, account: u64, i: u64) -> (floe_ledger::TxKind, floe_core::BlobId) {
    use floe_core::EncodingType;
    let root = floe_core::merkle::blake2b256(&[
        b"root",
        &seed.to_le_bytes(),
        &account.to_le_bytes(),
        &i.to_le_bytes(),
    ]);
    let blob_id = floe_core::metadata::derive_blob_id(EncodingType::RS2, 10, &root);
    (
        floe_ledger::TxKind::ReserveAndRegister {
            end_epoch: 3,
            blob_id,
            root_hash: root,
            size: 10,
            encoding_type: EncodingType::RS2,
            deletable: true,
        },
        blob_id,
    )
}

/// Every event of a replica.
async fn all_events(url: &str) -> Vec<floe_ledger::Event> {
    let client = LedgerClient::new(url);
    let mut out = Vec::new();
    loop {
        let page = client
            .events(out.len() as u64, 1000, Duration::ZERO)
            .await
            .expect("events");
        if page.events.is_empty() {
            return out;
        }
        out.extend(page.events);
    }
}

async fn digest_after(url: &str, i: u64) -> Option<String> {
    let resp = reqwest::get(format!("{url}/v1/entries/{i}")).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let v: serde_json::Value = resp.json().await.ok()?;
    v["success"]["data"]["digest"].as_str().map(str::to_string)
}

/// What one load account got: acknowledged (entry, blob, latency) and failed submissions.
type Outcome = (Vec<(u64, floe_core::BlobId, Duration)>, Vec<String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_survive_kills_and_pauses_with_no_failed_operation() {
    let seed = test_seed("ledger_replicas");
    let dir = tempfile::tempdir().unwrap();
    let mut members = EtcdMembers::start(&dir.path().join("etcd"), 3)
        .await
        .unwrap_or_else(|e| panic!("cannot run the etcd cluster this test needs: {e}"));
    let genesis = write_genesis(dir.path());
    let mut replicas = three_replicas(dir.path(), &genesis, &members.endpoints().join(","));
    for r in &mut replicas {
        r.spawn();
    }
    for r in &replicas {
        wait_healthy(&r.url(), Duration::from_secs(30)).await;
    }
    let urls: Vec<String> = replicas.iter().map(Replica::url).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(seed, &urls, &stop);
    replicas_and_etcd_members_are_killed_and_paused(&mut replicas, &mut members).await;
    stop.store(true, Ordering::Relaxed);
    let acked = no_submission_failed(seed, load).await;
    let entries = the_replicas_converge_to_one_state(&urls).await;
    their_logs_are_prefixes_of_one_another(&urls, entries).await;
    every_acknowledged_transaction_landed_exactly_once(&urls, &acked).await;
    the_paused_replica_reloaded_a_snapshot_and_all_wrote_some(&replicas);
}

/// Three `floe ledger run --etcd-endpoints` replicas on free ports, each knowing the others as
/// peers, snapshotting every 25 entries (not started yet).
fn three_replicas(dir: &Path, genesis: &Path, endpoints: &str) -> Vec<Replica> {
    let ports: Vec<u16> = (0..3).map(|_| free_port().unwrap()).collect();
    let replicas: Vec<Replica> = (0..3)
        .map(|i| {
            let data_dir = dir.join(format!("replica-{i}"));
            let peers: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("http://127.0.0.1:{p}"))
                .collect();
            let args = vec![
                "ledger".into(),
                "run".into(),
                "--genesis".into(),
                genesis.display().to_string(),
                "--data-dir".into(),
                data_dir.display().to_string(),
                "--listen".into(),
                format!("127.0.0.1:{}", ports[i]),
                "--etcd-endpoints".into(),
                endpoints.to_string(),
                "--snapshot-every".into(),
                "25".into(),
                "--peers".into(),
                peers.join(","),
            ];
            Replica {
                data_dir,
                port: ports[i],
                args,
                child: None,
                log: dir.join(format!("replica-{i}.log")),
            }
        })
        .collect();
    replicas
}

/// The load: accounts submitting one transaction after another through all replicas, until
/// `stop`.
fn start_load(
    seed: u64,
    urls: &[String],
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Outcome>> {
    const ACCOUNTS: u64 = 4;
    let mut load = Vec::new();
    for a in 0..ACCOUNTS {
        let client = LedgerClient::with_urls(urls.to_vec());
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let key = floe_ledger::AccountKey::from_seed(&floe_core::merkle::blake2b256(&[
                b"account",
                &seed.to_le_bytes(),
                &a.to_le_bytes(),
            ]));
            let mut acked = Vec::new();
            let mut failures = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (kind, blob) = register(seed, a, i);
                let started = Instant::now();
                match client.submit(&key.sign(i, kind)).await {
                    Ok(r) => {
                        acked.push((r.entry_index, blob, started.elapsed()));
                        i += 1;
                    }
                    Err(e) => {
                        failures.push(format!("account {a} tx {i}: {e}"));
                        // The outcome is unknown; the next attempt uses the same sequence
                        // number, so a landed transaction answers with its first outcome.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            (acked, failures)
        }));
    }
    load
}

/// Faults during the load: a replica SIGKILLed and restarted, another SIGSTOPped for 4 s,
/// the etcd leader and then another member SIGKILLed and restarted.
async fn replicas_and_etcd_members_are_killed_and_paused(
    replicas: &mut [Replica],
    members: &mut EtcdMembers,
) {
    let pause = |s: u64| tokio::time::sleep(Duration::from_secs(s));
    pause(2).await;
    eprintln!("fault: kill -9 replica 0");
    replicas[0].kill();
    pause(3).await;
    replicas[0].spawn();
    if !is_healthy_within(&replicas[0].url(), Duration::from_secs(30)).await {
        let log = std::fs::read_to_string(&replicas[0].log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "restarted replica 0 not healthy within 30 s; its log ends:\n{}",
            tail.join("\n")
        );
    }
    pause(1).await;
    eprintln!("fault: SIGSTOP replica 1 for 4 s");
    replicas[1].signal("STOP");
    pause(4).await;
    replicas[1].signal("CONT");
    pause(1).await;
    let leader = members.leader().await.expect("an etcd leader");
    eprintln!("fault: kill -9 the etcd leader m{leader}");
    members.kill(leader);
    pause(4).await;
    members.restart(leader).unwrap();
    pause(2).await;
    let other = (leader + 1) % 3;
    eprintln!("fault: kill -9 etcd member m{other}");
    members.kill(other);
    pause(3).await;
    members.restart(other).unwrap();
    pause(2).await;
}

/// No submission failed while a majority of etcd and a replica were up, and enough got
/// through; returns what was acknowledged.
async fn no_submission_failed(
    seed: u64,
    load: Vec<tokio::task::JoinHandle<Outcome>>,
) -> Vec<(u64, floe_core::BlobId, Duration)> {
    let mut acked = Vec::new();
    let mut failures = Vec::new();
    for t in load {
        let (a, f) = t.await.unwrap();
        acked.extend(a);
        failures.extend(f);
    }
    let slowest = acked.iter().map(|(_, _, d)| *d).max().unwrap_or_default();
    eprintln!(
        "seed {seed}: {} transactions acknowledged, {} failed submissions, slowest ack {slowest:?}",
        acked.len(),
        failures.len()
    );
    assert!(acked.len() > 20, "too little load got through");
    assert!(
        failures.is_empty(),
        "operations failed while a majority of etcd and a replica were up:\n{}",
        failures.join("\n")
    );
    acked
}

/// Every replica reaches the same number of applied entries, with equal state hashes;
/// returns that number.
async fn the_replicas_converge_to_one_state(urls: &[String]) -> u64 {
    let clients: Vec<LedgerClient> = urls.iter().map(|u| LedgerClient::new(u.clone())).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let entries = loop {
        let mut counts = Vec::new();
        for c in &clients {
            counts.push(c.health().await.map(|h| h.entries).unwrap_or(0));
        }
        if counts.iter().all(|c| *c == counts[0]) && counts[0] > 0 {
            break counts[0];
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not converge: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut hashes = Vec::new();
    for c in &clients {
        hashes.push(c.health().await.unwrap().state_hash);
    }
    assert!(
        hashes.iter().all(|h| *h == hashes[0]),
        "equal positions ({entries}), different state hashes: {hashes:?}"
    );
    entries
}

/// Prefixes of one another: equal digests wherever two replicas still hold a position.
async fn their_logs_are_prefixes_of_one_another(urls: &[String], entries: u64) {
    let mut compared = 0;
    for i in 0..entries {
        let mut seen: Option<String> = None;
        for u in urls {
            if let Some(d) = digest_after(u, i).await {
                if let Some(s) = &seen {
                    assert_eq!(s, &d, "replicas differ after entry {i}");
                    compared += 1;
                }
                seen = Some(d);
            }
        }
    }
    assert!(compared > 0);
}

/// Exactly once: no two acknowledgements name one entry, and every replica registered every
/// acknowledged blob once.
async fn every_acknowledged_transaction_landed_exactly_once(
    urls: &[String],
    acked: &[(u64, floe_core::BlobId, Duration)],
) {
    let mut positions = std::collections::BTreeSet::new();
    for (index, _, _) in acked {
        assert!(
            positions.insert(*index),
            "two acknowledgements name entry {index}"
        );
    }
    for u in urls {
        let mut registered: BTreeMap<floe_core::BlobId, usize> = BTreeMap::new();
        for e in all_events(u).await {
            if let floe_ledger::EventKind::BlobRegistered { blob_id, .. } = e.kind {
                *registered.entry(blob_id).or_default() += 1;
            }
        }
        for (_, blob, _) in acked {
            assert_eq!(
                registered.get(blob),
                Some(&1),
                "{u}: blob {blob} is not registered exactly once"
            );
        }
    }
}

/// The pause outlasted the pruning point (snapshots every 25 entries, records kept one
/// interval below the newest checkpoint): the paused replica found its position pruned and
/// reloaded a peer's snapshot. Its appender was just as far behind; that it wrote nothing into
/// the pruned prefix is what the checks before (no failed submission, equal digests, every
/// acknowledged blob registered exactly once) show. And every replica wrote snapshots.
fn the_paused_replica_reloaded_a_snapshot_and_all_wrote_some(replicas: &[Replica]) {
    let paused_log = std::fs::read_to_string(&replicas[1].log).unwrap_or_default();
    assert!(
        paused_log.contains("fell behind a compaction")
            && paused_log.contains("bootstrapped from a peer's snapshot"),
        "replica 1 was paused past the pruning point but never reloaded a snapshot \
         (too little load during the pause?); its log: {}",
        replicas[1].log.display()
    );
    for r in replicas {
        let snaps = std::fs::read_dir(r.data_dir.join("snapshots"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(snaps > 0, "{} wrote no snapshot", r.url());
    }
}
