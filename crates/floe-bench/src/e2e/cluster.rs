//! The network of `floe e2e`: one `floe ledger run`, N `floe node run` and one `floe daemon`,
//! each a child process of this one, laid out by `Testbed::init` in one directory (each
//! process's output in `logs/<name>.log`).
//!
//! [`Cluster`] is the guard: dropping it SIGKILLs and reaps every child, stopped ones included,
//! so an error or a panic leaves nothing running. On Linux each child also gets
//! `PR_SET_PDEATHSIG = SIGKILL`, so they die with this process even when it is killed itself.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use floe_ledger::api_types::SystemInfo;
use floe_testbed::{Testbed, TestbedOptions, TestbedState};

use super::E2eError;

/// How long a process may take to answer its health route after it was started or continued.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// Timeout of one health request.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the network is made of.
pub struct Layout {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub nodes: usize,
    pub n_shards: u16,
    pub seed: u64,
    /// The daemon's `--max-body-size`, in KiB.
    pub max_body_kib: u64,
    /// Nodes serve plain HTTP instead of HTTPS.
    pub disable_tls: bool,
}

/// One child process.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    /// The highest `VmHWM` read before the kernel's peak was last reset (see
    /// [`Cluster::daemon_peak_during`]): the peak of the whole run is the larger of this and
    /// `VmHWM` now.
    earlier_peak: u64,
}

impl Proc {
    fn pid(&self) -> i32 {
        // Linux pids fit in an i32 (pid_max ≤ 2^22).
        self.child.id() as i32
    }

    /// Its stats, the peak being the whole run's (see `earlier_peak`).
    fn stats(&self) -> Option<ProcStats> {
        let mut s = proc_stats(self.child.id())?;
        s.peak_rss_bytes = s.peak_rss_bytes.max(self.earlier_peak);
        Some(s)
    }

    /// Reset the kernel's `VmHWM` to the RSS now, keeping the peak so far in `earlier_peak`.
    /// Returns the RSS it was reset to, or `None` if the kernel refused.
    fn restart_peak(&mut self) -> Option<u64> {
        let pid = self.child.id();
        if let Some(s) = proc_stats(pid) {
            self.earlier_peak = self.earlier_peak.max(s.peak_rss_bytes);
        }
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").ok()?;
        // Read after the reset: `VmHWM` is now the RSS it was reset to.
        proc_stats(pid).map(|s| s.peak_rss_bytes)
    }

    /// The last lines of its log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// The daemon's resident memory around one request (see [`Cluster::daemon_peak_during`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Peak {
    /// `VmHWM` after the request, reset just before it.
    pub peak_bytes: u64,
    /// The RSS just before it: what the daemon held already.
    pub before_bytes: u64,
}

impl Peak {
    /// What the request itself added at its peak.
    pub fn rise(&self) -> u64 {
        self.peak_bytes.saturating_sub(self.before_bytes)
    }
}

/// CPU time and memory of one process, from `/proc`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcStats {
    /// User + system time, in seconds.
    pub cpu_seconds: f64,
    /// `VmHWM`: the peak resident set.
    pub peak_rss_bytes: u64,
    /// `VmRSS`: the resident set now.
    pub rss_bytes: u64,
}

/// The running network; every child is killed when it is dropped.
pub struct Cluster {
    pub state: TestbedState,
    /// Shards of node i in the genesis committee (the committee does not change here).
    weights: Vec<u64>,
    pub daemon_url: String,
    http: reqwest::Client,
    /// Clients of the nodes (HTTPS pinned to each node's network key).
    node_http: floe_node_client::NodeHttp,
    dir: PathBuf,
    ledger: Option<Proc>,
    nodes: Vec<Proc>,
    daemon: Option<Proc>,
    logs: PathBuf,
}

impl Cluster {
    /// Lay the network out in `layout.dir` and start it; returns once every process answers.
    pub async fn start(layout: &Layout) -> Result<Cluster, E2eError> {
        let state = Testbed::init(
            &layout.dir,
            &TestbedOptions {
                nodes: layout.nodes,
                n_shards: layout.n_shards,
                seed: layout.seed,
                disable_tls: layout.disable_tls,
                ..TestbedOptions::default()
            },
        )
        .await?;
        let logs = layout.dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(io(&logs))?;
        let http = floe_tls::http_client(
            reqwest::Client::builder()
                .no_proxy()
                .timeout(HEALTH_TIMEOUT),
        )
        .map_err(|e| E2eError::Http(e.to_string()))?;
        // The guard exists before the first child does.
        let mut cluster = Cluster {
            weights: Vec::new(),
            daemon_url: String::new(),
            http,
            node_http: floe_node_client::NodeHttp::new(|b| b.no_proxy().timeout(HEALTH_TIMEOUT))
                .map_err(|e| E2eError::Http(e.to_string()))?,
            dir: layout.dir.clone(),
            ledger: None,
            nodes: Vec::new(),
            daemon: None,
            logs,
            state,
        };
        let ledger_url = format!("http://{}", cluster.state.ledger_address);
        let mut ledger = Command::new(&layout.binary);
        ledger
            .args(["ledger", "run", "--genesis"])
            .arg(layout.dir.join("genesis.json"))
            .arg("--data-dir")
            .arg(layout.dir.join("ledger"))
            .args(["--listen", &cluster.state.ledger_address]);
        cluster.ledger = Some(cluster.spawn(ledger, "ledger", &layout.binary)?);
        cluster
            .wait_ready(Role::Ledger, &format!("{ledger_url}/v1/health"))
            .await?;
        let system = floe_ledger_client::LedgerClient::new(ledger_url.clone())
            .system()
            .await
            .map_err(|e| E2eError::Ledger(e.to_string()))?;
        cluster.weights = weights(&system, &cluster.state.node_addresses);
        for i in 0..layout.nodes {
            let mut node = Command::new(&layout.binary);
            node.args(["node", "run", "--config"])
                .arg(layout.dir.join(format!("node-{i}")).join("node.toml"));
            let proc = cluster.spawn(node, &format!("node-{i}"), &layout.binary)?;
            cluster.nodes.push(proc);
        }
        for i in 0..layout.nodes {
            cluster.wait_node(i).await?;
        }
        // The daemon: its own config and wallet (created on first use), a free loopback port.
        let port = floe_ledger_etcd::members::free_port().map_err(io(&layout.dir))?;
        let address = format!("127.0.0.1:{port}");
        let config = layout.dir.join("floe.yaml");
        // The client settings are the defaults, as for a new user.
        let yaml = format!("ledger_url: {ledger_url}\nwallet: daemon-wallet.json\n");
        std::fs::write(&config, yaml).map_err(io(&config))?;
        let mut daemon = Command::new(&layout.binary);
        daemon
            .arg("daemon")
            .arg("--config")
            .arg(&config)
            .args(["--bind-address", &address])
            .args(["--max-body-size", &layout.max_body_kib.to_string()]);
        cluster.daemon = Some(cluster.spawn(daemon, "daemon", &layout.binary)?);
        cluster.daemon_url = format!("http://{address}");
        let status = format!("{}/status", cluster.daemon_url);
        cluster.wait_ready(Role::Daemon, &status).await?;
        Ok(cluster)
    }

    fn spawn(&self, mut cmd: Command, name: &str, binary: &Path) -> Result<Proc, E2eError> {
        let log = self.logs.join(format!("{name}.log"));
        let out = File::create(&log).map_err(io(&log))?;
        let err = out.try_clone().map_err(io(&log))?;
        // Plain text logs (they go to files); everything else is inherited, RUST_LOG included.
        cmd.env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|source| E2eError::Spawn {
            name: name.to_string(),
            binary: binary.to_path_buf(),
            source,
        })?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log,
            earlier_peak: 0,
        })
    }

    fn proc_mut(&mut self, role: Role) -> &mut Proc {
        match role {
            Role::Ledger => self.ledger.as_mut().expect("the ledger runs"),
            Role::Node(i) => &mut self.nodes[i],
            Role::Daemon => self.daemon.as_mut().expect("the daemon runs"),
        }
    }

    /// Wait until `GET url` succeeds; fails if the process exits or [`READY_LIMIT`] passes.
    async fn wait_ready(&mut self, role: Role, url: &str) -> Result<(), E2eError> {
        let http = self.http.clone();
        self.wait_ready_with(role, url, http).await
    }

    async fn wait_ready_with(
        &mut self,
        role: Role,
        url: &str,
        http: reqwest::Client,
    ) -> Result<(), E2eError> {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            let proc = self.proc_mut(role);
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Err(E2eError::Exited {
                    name: proc.name.clone(),
                    status: status.to_string(),
                    log: proc.log_tail(),
                });
            }
            if let Ok(r) = http.get(url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let proc = self.proc_mut(role);
                return Err(E2eError::NotReady {
                    name: proc.name.clone(),
                    url: url.to_string(),
                    secs: READY_LIMIT.as_secs(),
                    log: proc.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until node `i` answers its health route.
    pub async fn wait_node(&mut self, i: usize) -> Result<(), E2eError> {
        let (base, http) = floe_testbed::node_endpoint(&self.dir, &self.state, i, &self.node_http)?;
        self.wait_ready_with(Role::Node(i), &format!("{base}/v1/health"), http)
            .await
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Shards node `i` holds.
    pub fn weight(&self, i: usize) -> u64 {
        self.weights[i]
    }

    /// SIGSTOP node `i`: its sockets stay open, it just stops answering.
    pub fn pause_node(&self, i: usize) -> Result<(), E2eError> {
        signal(&self.nodes[i], libc::SIGSTOP, "SIGSTOP")
    }

    /// SIGCONT node `i`.
    pub fn resume_node(&self, i: usize) -> Result<(), E2eError> {
        signal(&self.nodes[i], libc::SIGCONT, "SIGCONT")
    }

    /// Every process, as (name, stats); a process whose `/proc` entry cannot be read is left out.
    /// Peaks are over the whole run, across [`Self::daemon_peak_during`].
    pub fn stats(&self) -> Vec<(String, ProcStats)> {
        self.ledger
            .iter()
            .chain(&self.nodes)
            .chain(self.daemon.iter())
            .filter_map(|p| Some((p.name.clone(), p.stats()?)))
            .collect()
    }

    /// Run `work` (requests to the daemon) and measure the daemon's peak RSS meanwhile: its
    /// `VmHWM` is reset to its RSS first (`clear_refs`, see proc(5)), after the peak so far is
    /// kept for [`Self::stats`]. `None` if the kernel refused the reset.
    pub async fn daemon_peak_during<T>(
        &mut self,
        work: impl std::future::Future<Output = T>,
    ) -> (T, Option<Peak>) {
        let before = self.daemon.as_mut().and_then(Proc::restart_peak);
        let out = work.await;
        let peak = before.and_then(|before_bytes| {
            let now = proc_stats(self.daemon.as_ref()?.child.id())?;
            Some(Peak {
                peak_bytes: now.peak_rss_bytes,
                before_bytes,
            })
        });
        (out, peak)
    }

    /// CPU seconds of the ledger, of each node and of the daemon (0 where unreadable).
    pub fn cpu(&self) -> CpuSample {
        let cpu = |p: &Proc| proc_stats(p.child.id()).map_or(0.0, |s| s.cpu_seconds);
        CpuSample {
            ledger: self.ledger.as_ref().map_or(0.0, cpu),
            nodes: self.nodes.iter().map(cpu).collect(),
            daemon: self.daemon.as_ref().map_or(0.0, cpu),
        }
    }

    /// `e`, followed by what the processes behind a failed request show (see
    /// [`processes_now`]). Other errors are returned as they are.
    pub fn explain(&mut self, e: E2eError) -> E2eError {
        if !matches!(e, E2eError::Request { .. } | E2eError::Mismatch { .. }) {
            return e;
        }
        let procs = self
            .ledger
            .iter_mut()
            .chain(self.nodes.iter_mut())
            .chain(self.daemon.iter_mut());
        E2eError::Explained {
            failure: Box::new(e),
            processes: processes_now(procs),
        }
    }

    /// Stop everything now: SIGCONT (for paused nodes), then SIGKILL, and reap.
    pub fn shutdown(mut self) {
        self.kill_all();
    }

    fn kill_all(&mut self) {
        let procs = self
            .daemon
            .take()
            .into_iter()
            .chain(self.nodes.drain(..))
            .chain(self.ledger.take());
        for mut p in procs {
            let _ = signal(&p, libc::SIGCONT, "SIGCONT");
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Each process that exited, with its status and the end of its log; when none did, the end
/// of the daemon's log (a panic or an error it logged shows there).
fn processes_now<'a>(procs: impl Iterator<Item = &'a mut Proc>) -> String {
    let mut exited = Vec::new();
    let mut daemon = None;
    for p in procs {
        if let Ok(Some(status)) = p.child.try_wait() {
            exited.push(format!(
                "{} exited ({status}); the end of its log:\n{}",
                p.name,
                p.log_tail()
            ));
        } else if p.name == "daemon" {
            daemon = Some(format!(
                "every process still runs; the end of the daemon's log ({}):\n{}",
                p.log.display(),
                p.log_tail()
            ));
        }
    }
    if exited.is_empty() {
        daemon.unwrap_or_else(|| "every process still runs".into())
    } else {
        exited.join("\n")
    }
}

/// CPU seconds per process at one moment.
#[derive(Clone, Debug, Default)]
pub struct CpuSample {
    pub ledger: f64,
    pub nodes: Vec<f64>,
    pub daemon: f64,
}

#[derive(Clone, Copy)]
enum Role {
    Ledger,
    Node(usize),
    Daemon,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> E2eError + '_ {
    move |source| E2eError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Shards per node address, in the order of `addresses`.
fn weights(system: &SystemInfo, addresses: &[String]) -> Vec<u64> {
    addresses
        .iter()
        .map(|a| {
            system
                .committee
                .members
                .iter()
                .find(|m| &m.network_address == a)
                .map_or(0, |m| m.shards.len() as u64)
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // pre_exec; see SAFETY
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only makes one
    // async-signal-safe system call (prctl). The death signal fires when the thread that
    // spawned the child exits; every child is spawned from the thread that runs the
    // benchmark's `block_on`, which outlives them all.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

#[allow(unsafe_code)] // kill(2); see SAFETY
fn signal(p: &Proc, sig: libc::c_int, name: &'static str) -> Result<(), E2eError> {
    // SAFETY: kill(2) with the pid of our own, not yet reaped child: the pid cannot have been
    // reused by another process.
    let rc = unsafe { libc::kill(p.pid(), sig) };
    if rc != 0 {
        return Err(E2eError::Signal {
            signal: name,
            name: p.name.clone(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Clock ticks per second, the unit of `utime` / `stime` in `/proc/<pid>/stat`.
#[allow(unsafe_code)] // sysconf(3); see SAFETY
fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU time and memory of process `pid`, or `None` if `/proc` cannot tell.
pub fn proc_stats(pid: u32) -> Option<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ticks = cpu_ticks(&stat)?;
    Some(ProcStats {
        cpu_seconds: ticks as f64 / clock_ticks(),
        peak_rss_bytes: status_kib(&status, "VmHWM")? * 1024,
        rss_bytes: status_kib(&status, "VmRSS")? * 1024,
    })
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after its last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// A `Key:   123 kB` line of `/proc/<pid>/status`, in KiB.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real child running `script` under `sh`, its output in `dir/<name>.log`.
    fn sh(dir: &Path, name: &str, script: &str) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).unwrap();
        let child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(out)
            .spawn()
            .unwrap();
        Proc {
            name: name.into(),
            child,
            log,
            earlier_peak: 0,
        }
    }

    #[test]
    fn a_restarted_peak_forgets_what_came_before_but_the_whole_run_keeps_it() {
        // A real process that touches 100 MiB, frees it (a block that large is a mapping of
        // its own, so it goes back to the system) and waits.
        let script = "b = b'x' * (100 << 20); del b; print('freed', flush=True); \
                      import time; time.sleep(60)";
        let child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed by this test (apt-get install python3)");
        let dir = tempfile::tempdir().unwrap();
        let mut p = Proc {
            name: "python".into(),
            child,
            log: dir.path().join("none.log"),
            earlier_peak: 0,
        };
        let mut line = String::new();
        let stdout = p.child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        assert_eq!(line.trim(), "freed");
        let before = proc_stats(p.child.id()).unwrap();
        assert!(before.peak_rss_bytes >= 100 << 20, "{before:?}");
        assert!(before.rss_bytes < 60 << 20, "{before:?}");
        let reset_to = p.restart_peak().expect("the kernel refused clear_refs");
        let after = proc_stats(p.child.id()).unwrap();
        assert!(after.peak_rss_bytes < 60 << 20, "{after:?}");
        assert!(reset_to < 60 << 20, "reset to the RSS then: {reset_to}");
        assert!(p.earlier_peak >= 100 << 20, "{}", p.earlier_peak);
        assert!(p.stats().unwrap().peak_rss_bytes >= 100 << 20);
        p.child.kill().unwrap();
        p.child.wait().unwrap();
    }

    #[test]
    fn a_failure_names_the_process_that_exited_or_shows_the_daemons_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut node = sh(dir.path(), "node-1", "echo sliver store broken; exit 3");
        let mut daemon = sh(
            dir.path(),
            "daemon",
            "echo serving on 127.0.0.1; exec sleep 30",
        );
        node.child.wait().unwrap();
        // The daemon's line is in its log once the shell has written it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&daemon.log).unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the shell never wrote its line");
            std::thread::sleep(Duration::from_millis(10));
        }

        let text = processes_now([&mut node, &mut daemon].into_iter());
        assert!(text.contains("node-1 exited (exit status: 3)"), "{text}");
        assert!(text.contains("sliver store broken"), "{text}");
        assert!(!text.contains("serving on"), "{text}");

        let text = processes_now(std::iter::once(&mut daemon));
        assert!(text.starts_with("every process still runs"), "{text}");
        assert!(text.contains("serving on 127.0.0.1"), "{text}");

        daemon.child.kill().unwrap();
        daemon.child.wait().unwrap();
        let text = processes_now(std::iter::once(&mut daemon));
        assert!(text.contains("daemon exited (signal: 9"), "{text}");
    }

    #[test]
    fn proc_fields_are_parsed() {
        let stat = "4242 (floe (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 \
                    123 456 789";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(cpu_ticks("garbage"), None);
        let status = "Name:\tfloe\nVmPeak:\t  999 kB\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(2048));
        assert_eq!(status_kib(status, "VmRSS"), Some(1024));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_has_stats() {
        let s = proc_stats(std::process::id()).expect("/proc/self is readable");
        assert!(s.peak_rss_bytes >= s.rss_bytes && s.rss_bytes > 0, "{s:?}");
    }
}
