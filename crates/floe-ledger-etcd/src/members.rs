//! [`EtcdMembers`]: a local etcd cluster of child processes on loopback ports, for the testbed
//! and the tests. Each member can be killed (SIGKILL), paused (SIGSTOP) and restarted on its
//! data directory. The children are killed when the value is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::log::{EtcdLog, EtcdLogConfig};

/// How to get the `etcd` binary, printed when it is missing.
pub const INSTALL_HINT: &str = "etcd was not found on PATH: install it with `apt-get install etcd-server` (Debian/Ubuntu), or put an `etcd` 3.4+ binary on PATH";

/// Where [`EtcdMembers::start_or_resume`] records the members.
pub const MEMBERS_FILE: &str = "members.txt";

/// Longest wait for a fresh cluster to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the members could not be run.
#[derive(Debug, thiserror::Error)]
pub enum MembersError {
    #[error("{INSTALL_HINT}")]
    Missing,
    #[error("starting etcd member {name}: {source}")]
    Spawn {
        name: String,
        source: std::io::Error,
    },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("the etcd members did not answer within {0:?}: {1}")]
    NotReady(Duration, String),
}

/// The `etcd` binary on PATH, if any.
pub fn find_etcd() -> Result<PathBuf, MembersError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("etcd");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(MembersError::Missing)
}

/// Where ports of [`free_port`] come from: up to the start of the ephemeral range.
const FIRST_PORT: u16 = 10_000;

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A free loopback port for a child process to listen on, never handed out twice by this
/// process (until the range wraps).
///
/// A port of the ephemeral range (what binding port 0 gives) stays free only until some
/// outgoing connection takes it as its source port, which can happen before the child that
/// should listen on it has started; and two callers in one process could be given the same
/// one. So ports are taken in turn below the ephemeral range, from a starting point that
/// differs between processes, each checked free by binding it.
pub fn free_port() -> std::io::Result<u16> {
    static NEXT: std::sync::Mutex<Option<u16>> = std::sync::Mutex::new(None);
    let end = ephemeral_start();
    if end <= FIRST_PORT + 100 {
        // An unusual range: fall back to one the kernel picks.
        return Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
    }
    let span = end - FIRST_PORT;
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    let offset = u64::from(std::process::id()).wrapping_mul(7919) % u64::from(span);
    let mut port = next.unwrap_or(FIRST_PORT + offset as u16);
    for _ in 0..span {
        let candidate = port;
        port = if port + 1 >= end {
            FIRST_PORT
        } else {
            port + 1
        };
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            *next = Some(port);
            return Ok(candidate);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free loopback port below the ephemeral range",
    ))
}

/// One member's fixed settings.
#[derive(Clone, Debug)]
pub struct MemberSpec {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
}

impl MemberSpec {
    /// `http://127.0.0.1:<client port>`.
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }
    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// A running local cluster.
pub struct EtcdMembers {
    binary: PathBuf,
    specs: Vec<MemberSpec>,
    children: Vec<Option<Child>>,
    token: String,
    log_dir: PathBuf,
}

impl EtcdMembers {
    /// Start `n` members with data under `dir` (`dir/<name>`), on fresh loopback ports, and
    /// wait until the cluster answers.
    pub async fn start(dir: &Path, n: usize) -> Result<Self, MembersError> {
        let binary = find_etcd()?;
        std::fs::create_dir_all(dir)?;
        let mut specs = Vec::with_capacity(n);
        for i in 0..n {
            specs.push(MemberSpec {
                name: format!("m{i}"),
                client_port: free_port()?,
                peer_port: free_port()?,
                data_dir: dir.join(format!("m{i}")),
            });
        }
        let token = format!("floe-{}-{}", std::process::id(), specs[0].client_port);
        Self::run(binary, dir, specs, token).await
    }

    /// Like [`start`](Self::start), but a cluster started before in `dir` is resumed on its
    /// recorded ports and data (`dir/members.txt`), so its log survives.
    pub async fn start_or_resume(dir: &Path, n: usize) -> Result<Self, MembersError> {
        let record = dir.join(MEMBERS_FILE);
        let Ok(text) = std::fs::read_to_string(&record) else {
            let members = Self::start(dir, n).await?;
            let mut out = format!("{}\n", members.token);
            for s in &members.specs {
                out.push_str(&format!("{} {} {}\n", s.name, s.client_port, s.peer_port));
            }
            std::fs::write(&record, out)?;
            return Ok(members);
        };
        let binary = find_etcd()?;
        let mut lines = text.lines();
        let token = lines.next().unwrap_or("floe").to_string();
        let mut specs = Vec::new();
        for line in lines {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let [name, client, peer] = parts[..]
                && let (Ok(client_port), Ok(peer_port)) = (client.parse(), peer.parse())
            {
                specs.push(MemberSpec {
                    name: name.to_string(),
                    client_port,
                    peer_port,
                    data_dir: dir.join(name),
                });
            }
        }
        if specs.is_empty() {
            return Err(MembersError::NotReady(
                Duration::ZERO,
                format!("{} lists no members", record.display()),
            ));
        }
        Self::run(binary, dir, specs, token).await
    }

    async fn run(
        binary: PathBuf,
        dir: &Path,
        specs: Vec<MemberSpec>,
        token: String,
    ) -> Result<Self, MembersError> {
        let n = specs.len();
        let mut members = EtcdMembers {
            binary,
            children: (0..n).map(|_| None).collect(),
            specs,
            token,
            log_dir: dir.to_path_buf(),
        };
        for i in 0..n {
            members.spawn(i)?;
        }
        members.wait_ready(READY_TIMEOUT).await?;
        Ok(members)
    }

    /// Client URLs of all members.
    pub fn endpoints(&self) -> Vec<String> {
        self.specs.iter().map(MemberSpec::client_url).collect()
    }

    /// The members' settings.
    pub fn specs(&self) -> &[MemberSpec] {
        &self.specs
    }

    /// The pid of member `i`, if running.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(Child::id)
    }

    fn spawn(&mut self, i: usize) -> Result<(), MembersError> {
        let spec = &self.specs[i];
        let cluster = self
            .specs
            .iter()
            .map(|s| format!("{}={}", s.name, s.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{}.log", spec.name)))?;
        let child = Command::new(&self.binary)
            .arg("--name")
            .arg(&spec.name)
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .arg("--listen-client-urls")
            .arg(spec.client_url())
            .arg("--advertise-client-urls")
            .arg(spec.client_url())
            .arg("--listen-peer-urls")
            .arg(spec.peer_url())
            .arg("--initial-advertise-peer-urls")
            .arg(spec.peer_url())
            .arg("--initial-cluster")
            .arg(&cluster)
            .arg("--initial-cluster-token")
            .arg(&self.token)
            .arg("--initial-cluster-state")
            .arg("new")
            // Short elections so that a killed leader is replaced in about a second.
            .arg("--heartbeat-interval")
            .arg("100")
            .arg("--election-timeout")
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|source| MembersError::Spawn {
                name: spec.name.clone(),
                source,
            })?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// Wait until a client of all endpoints can read.
    pub async fn wait_ready(&self, limit: Duration) -> Result<(), MembersError> {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < limit {
            let config = EtcdLogConfig::new(self.endpoints(), "/floe-ready/");
            match EtcdLog::connect(&config).await {
                Ok(log) => match log.get_meta("probe").await {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(MembersError::NotReady(limit, last))
    }

    /// SIGKILL member `i` and reap it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restart member `i` on its data directory (after [`kill`](Self::kill)).
    pub fn restart(&mut self, i: usize) -> Result<(), MembersError> {
        self.kill(i);
        self.spawn(i)
    }

    /// Send `signal` (e.g. `STOP`, `CONT`) to member `i`.
    pub fn signal(&self, i: usize, signal: &str) -> std::io::Result<()> {
        if let Some(pid) = self.pid(i) {
            Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status()?;
        }
        Ok(())
    }

    /// The index of the current leader, asking each running member (None if none answers).
    pub async fn leader(&self) -> Option<usize> {
        for (i, spec) in self.specs.iter().enumerate() {
            if self.children[i].is_none() {
                continue;
            }
            let config = EtcdLogConfig::new(vec![spec.client_url()], "/");
            let Ok(log) = EtcdLog::connect(&config).await else {
                continue;
            };
            let Ok(status) = log.member_status(&spec.client_url()).await else {
                continue;
            };
            if status.leader_id == 0 {
                continue;
            }
            // Find which member has the leader's id.
            for (j, other) in self.specs.iter().enumerate() {
                if self.children[j].is_none() {
                    continue;
                }
                if let Ok(s) = log.member_status(&other.client_url()).await
                    && s.member_id == status.leader_id
                {
                    return Some(j);
                }
            }
        }
        None
    }
}

impl Drop for EtcdMembers {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            let _ = self.signal(i, "CONT");
            self.kill(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ports are distinct within a process, below the ephemeral range, and free when given.
    #[test]
    fn free_ports_are_distinct_and_below_the_ephemeral_range() {
        let end = ephemeral_start();
        let ports: Vec<u16> = (0..64).map(|_| free_port().unwrap()).collect();
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for &p in &ports {
            if end > FIRST_PORT + 100 {
                assert!(
                    (FIRST_PORT..end).contains(&p),
                    "{p} not in {FIRST_PORT}..{end}"
                );
            }
            TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }
}
