//! `floe testbed --ledger-replicas N`: the control plane as separate processes — 3 `etcd`
//! members and N `floe ledger run --etcd-endpoints …` replicas — so that each can be killed.
//! `floe testbed ledger` lists them (from `<data-dir>/ledger-replicas.json`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use floe_ledger_client::LedgerClient;
use floe_ledger_etcd::EtcdMembers;
use serde::{Deserialize, Serialize};

/// Where the running replicas are recorded.
pub const REPLICAS_FILE: &str = "ledger-replicas.json";
/// etcd members the testbed runs.
pub const ETCD_MEMBERS: usize = 3;
/// Longest wait for a replica to answer after it starts.
const REPLICA_READY: Duration = Duration::from_secs(60);

/// `ledger-replicas.json`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicasFile {
    pub version: u32,
    pub replicas: Vec<ReplicaEntry>,
    pub etcd: Vec<EtcdEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaEntry {
    pub index: usize,
    pub url: String,
    pub pid: u32,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdEntry {
    pub name: String,
    pub url: String,
    pub pid: Option<u32>,
}

/// The running control plane; dropping it stops the replicas (SIGTERM: each writes a final
/// snapshot, so the next start replays no transaction; SIGKILL for any still running after
/// [`STOP_GRACE`]) and the etcd members.
pub struct ControlPlane {
    _etcd: EtcdMembers,
    replicas: Vec<Child>,
    urls: Vec<String>,
}

/// How long stopping the testbed waits for its replicas' clean stops.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

impl Drop for ControlPlane {
    fn drop(&mut self) {
        stop_children(&mut self.replicas, STOP_GRACE);
    }
}

/// Ask every child still running to stop (SIGTERM), wait up to `grace` for all of them, then
/// kill (SIGKILL) and reap those left.
fn stop_children(children: &mut [Child], grace: Duration) {
    for c in children.iter_mut() {
        if matches!(c.try_wait(), Ok(None)) {
            terminate(c);
        }
    }
    let deadline = Instant::now() + grace;
    for c in children.iter_mut() {
        while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[allow(unsafe_code)] // kill(2); see SAFETY
fn terminate(c: &Child) {
    let Ok(pid) = libc::pid_t::try_from(c.id()) else {
        return;
    };
    // SAFETY: kill(2) with the pid of our own child, not yet reaped (`try_wait` saw it
    // running, and only this struct waits for it): the pid cannot name another process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

impl ControlPlane {
    /// The replicas' URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Start (or resume) the etcd members in `dir/etcd` and `n` replicas of the ledger whose
    /// genesis is `dir/genesis.json`, and wait until every replica answers.
    pub async fn start(dir: &Path, n: usize) -> Result<Self> {
        let etcd = EtcdMembers::start_or_resume(&dir.join("etcd"), ETCD_MEMBERS)
            .await
            .context("cannot start the etcd members of the replicated ledger")?;
        let endpoints = etcd.endpoints().join(",");
        let exe = std::env::current_exe().context("cannot find the floe binary")?;
        let ports: Vec<u16> = (0..n)
            .map(|_| floe_ledger_etcd::members::free_port())
            .collect::<std::io::Result<_>>()?;
        let urls: Vec<String> = ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        let mut plane = ControlPlane {
            _etcd: etcd,
            replicas: Vec::new(),
            urls: urls.clone(),
        };
        let mut entries = Vec::new();
        for i in 0..n {
            let data_dir = dir.join(format!("ledger-replica-{i}"));
            let log_path = dir.join(format!("ledger-replica-{i}.log"));
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("cannot open {}", log_path.display()))?;
            let peers: Vec<&str> = urls
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, u)| u.as_str())
                .collect();
            let child = Command::new(&exe)
                .args(["ledger", "run", "--genesis"])
                .arg(dir.join("genesis.json"))
                .arg("--data-dir")
                .arg(&data_dir)
                .arg("--listen")
                .arg(format!("127.0.0.1:{}", ports[i]))
                .arg("--etcd-endpoints")
                .arg(&endpoints)
                .arg("--peers")
                .arg(peers.join(","))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("cannot start a ledger replica")?;
            entries.push(ReplicaEntry {
                index: i,
                url: urls[i].clone(),
                pid: child.id(),
                data_dir,
                log: log_path,
            });
            plane.replicas.push(child);
        }
        for (i, url) in urls.iter().enumerate() {
            wait_healthy(url, REPLICA_READY).await.with_context(|| {
                format!(
                    "ledger replica {i} did not start; see {}",
                    dir.join(format!("ledger-replica-{i}.log")).display()
                )
            })?;
        }
        let etcd_entries = plane
            ._etcd
            .specs()
            .iter()
            .enumerate()
            .map(|(i, s)| EtcdEntry {
                name: s.name.clone(),
                url: s.client_url(),
                pid: plane._etcd.pid(i),
            })
            .collect();
        let file = ReplicasFile {
            version: 1,
            replicas: entries,
            etcd: etcd_entries,
        };
        std::fs::write(
            dir.join(REPLICAS_FILE),
            serde_json::to_string_pretty(&file)?,
        )?;
        Ok(plane)
    }
}

async fn wait_healthy(url: &str, limit: Duration) -> Result<()> {
    let client = LedgerClient::new(url);
    let started = Instant::now();
    loop {
        match client.health().await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > limit => bail!("{url}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// `floe testbed ledger`: the replicas (address, pid, applied entries, state hash, snapshot)
/// and the etcd members (leader, raft index).
/// `floe testbed ledger --json`: the replicas and etcd members as they answered now.
#[derive(Serialize)]
struct Listing<'a> {
    replicas: Vec<ReplicaRow<'a>>,
    etcd: Vec<MemberRow<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplicaRow<'a> {
    index: usize,
    url: &'a str,
    pid: u32,
    up: bool,
    #[serde(flatten)]
    state: ReplicaState,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ReplicaState {
    #[serde(rename_all = "camelCase")]
    Up {
        applied_seq: u64,
        state_hash: String,
        chain_head: Option<String>,
        snapshot_seq: Option<u64>,
        snapshot_root: Option<String>,
        status: String,
        last_error: Option<String>,
    },
    Down {
        error: String,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberRow<'a> {
    name: &'a str,
    url: &'a str,
    pid: Option<u32>,
    up: bool,
    #[serde(flatten)]
    state: MemberState,
}

#[derive(Serialize)]
#[serde(untagged)]
enum MemberState {
    #[serde(rename_all = "camelCase")]
    Up {
        leader: bool,
        raft_index: u64,
        version: String,
    },
    Down {
        error: String,
    },
}

/// Ask every replica (3 s each) and every etcd member how it is.
async fn survey(file: &ReplicasFile) -> Listing<'_> {
    let mut replicas = Vec::new();
    for r in &file.replicas {
        let health = tokio::time::timeout(
            Duration::from_secs(3),
            LedgerClient::new(r.url.clone()).health(),
        )
        .await;
        let (up, state) = match health {
            Ok(Ok(h)) => (
                true,
                ReplicaState::Up {
                    applied_seq: h.entries,
                    state_hash: h.state_hash,
                    chain_head: h.chain_head,
                    snapshot_seq: h.snapshot_seq,
                    snapshot_root: h.snapshot_root,
                    status: h.status,
                    last_error: h.last_error,
                },
            ),
            Ok(Err(e)) => (
                false,
                ReplicaState::Down {
                    error: e.to_string(),
                },
            ),
            Err(_) => (
                false,
                ReplicaState::Down {
                    error: "no answer within 3 s".into(),
                },
            ),
        };
        replicas.push(ReplicaRow {
            index: r.index,
            url: &r.url,
            pid: r.pid,
            up,
            state,
        });
    }
    let mut etcd = Vec::new();
    for m in &file.etcd {
        let (up, state) = match floe_ledger_etcd::member_status(&m.url).await {
            Ok(s) => (
                true,
                MemberState::Up {
                    leader: s.leader_id == s.member_id,
                    raft_index: s.raft_index,
                    version: s.version,
                },
            ),
            Err(e) => (
                false,
                MemberState::Down {
                    error: e.to_string(),
                },
            ),
        };
        etcd.push(MemberRow {
            name: &m.name,
            url: &m.url,
            pid: m.pid,
            up,
            state,
        });
    }
    Listing { replicas, etcd }
}

pub async fn list(data_dir: &Path, json: bool) -> Result<()> {
    let path = data_dir.join(REPLICAS_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} not found: is a `floe testbed --ledger-replicas N` running in {}?",
            path.display(),
            data_dir.display()
        )
    })?;
    let file: ReplicasFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a replicas file", path.display()))?;
    let listing = survey(&file).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(());
    }
    println!("Ledger replicas:");
    for r in &listing.replicas {
        match &r.state {
            ReplicaState::Up {
                applied_seq,
                state_hash,
                snapshot_seq,
                status,
                ..
            } => println!(
                "  {}  {}  pid {}  applied {applied_seq}  state {}  snapshot {}  {status}",
                r.index,
                r.url,
                r.pid,
                state_hash.chars().take(16).collect::<String>(),
                snapshot_seq.map_or("null".to_string(), |s| s.to_string()),
            ),
            ReplicaState::Down { error } => {
                println!("  {}  {}  pid {}  DOWN: {error}", r.index, r.url, r.pid);
            }
        }
    }
    println!("etcd members:");
    for m in &listing.etcd {
        match &m.state {
            MemberState::Up {
                leader, raft_index, ..
            } => println!(
                "  {}  {}  pid {}  raft index {raft_index}{}",
                m.name,
                m.url,
                m.pid.map_or("null".to_string(), |p| p.to_string()),
                if *leader { "  (leader)" } else { "" }
            ),
            MemberState::Down { error } => println!("  {}  {}  DOWN: {error}", m.name, m.url),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::stop_children;

    /// `sh -c script`, once it has printed its first line (so whatever came before is set).
    fn child(script: &str) -> std::process::Child {
        let mut c = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        let stdout = c.stdout.take().expect("piped");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        assert_eq!(line, "ready\n");
        c
    }

    /// A replica that stops on SIGTERM is left to stop; one that ignores it is killed once
    /// the grace period is over, and both are reaped.
    #[test]
    fn children_that_ignore_the_stop_request_are_killed_after_the_grace_period() {
        // `exec` so that the signal reaches `sleep` itself, not a shell waiting for it.
        let mut children = vec![
            child("echo ready; exec sleep 30"),
            child("trap '' TERM; echo ready; exec sleep 30"),
        ];
        let grace = Duration::from_millis(500);
        let t = Instant::now();
        stop_children(&mut children, grace);
        let took = t.elapsed();
        assert!(took >= grace, "did not wait for the grace period: {took:?}");
        assert!(took < Duration::from_secs(10), "took {took:?}");
        let signals: Vec<Option<i32>> = children
            .iter_mut()
            .map(|c| c.try_wait().unwrap().expect("reaped").signal())
            .collect();
        assert_eq!(signals, vec![Some(libc::SIGTERM), Some(libc::SIGKILL)]);
    }
}
