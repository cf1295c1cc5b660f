//! Child processes that never outlive their test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

/// How long [`Proc::wait_healthy`] waits for an answer.
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(30);
/// How long [`Proc::stop`] waits for a clean exit after SIGTERM.
pub const EXIT_WITHIN: Duration = Duration::from_secs(15);
/// Lines of stderr quoted when a process fails.
const TAIL_LINES: usize = 30;

/// How to stop a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM, then wait for a clean exit.
    Term,
    /// SIGKILL.
    Kill,
}

/// A child process; SIGKILLed and reaped when dropped, so a failing test leaves nothing
/// running.
pub struct Proc {
    child: Option<Child>,
    name: String,
    stderr_path: Option<PathBuf>,
}

impl Proc {
    /// Start `cmd` (with `RUST_LOG=warn` unless it sets its own) with stdout and stderr in
    /// `logs/{name}-{n}.out|.err`, `n` counting this name's earlier starts.
    pub fn spawn(mut cmd: Command, name: &str, logs: &Path) -> Proc {
        std::fs::create_dir_all(logs).unwrap_or_else(|e| panic!("{}: {e}", logs.display()));
        let n = std::fs::read_dir(logs)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| {
                        let f = e.file_name().to_string_lossy().into_owned();
                        f.strip_prefix(&format!("{name}-"))
                            .and_then(|rest| rest.strip_suffix(".err"))
                            .is_some_and(|k| k.parse::<u32>().is_ok())
                    })
                    .count()
            })
            .unwrap_or(0);
        let stderr_path = logs.join(format!("{name}-{n}.err"));
        if !cmd.get_envs().any(|(k, _)| k == "RUST_LOG") {
            cmd.env("RUST_LOG", "warn");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(logs.join(format!("{name}-{n}.out"))).expect("a log file"))
            .stderr(File::create(&stderr_path).expect("a log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        Proc {
            child: Some(child),
            name: name.into(),
            stderr_path: Some(stderr_path),
        }
    }

    /// Guard a child started elsewhere (its output wherever its command sent it).
    pub fn guard(child: Child, name: &str) -> Proc {
        Proc {
            child: Some(child),
            name: name.into(),
            stderr_path: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process ID (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Its whole stderr so far (empty for a guarded child).
    pub fn stderr(&self) -> String {
        self.stderr_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// The last lines of its stderr, to quote in a failure.
    pub fn stderr_tail(&self) -> String {
        let text = self.stderr();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Send a signal (`TERM`, `STOP`, `CONT`, …) with `kill`.
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let sent = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status()
                .expect("kill runs");
            assert!(sent.success(), "kill -{sig} {} failed", c.id());
        }
    }

    /// Wait until `GET url` succeeds; panics, quoting stderr, if the process exits or
    /// [`HEALTHY_WITHIN`] passes.
    pub async fn wait_healthy(&mut self, http: &reqwest::Client, url: &str) {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        loop {
            if let Some(status) = self.exited() {
                panic!(
                    "{} exited with {status}:\n{}",
                    self.name,
                    self.stderr_tail()
                );
            }
            if let Ok(r) = http.get(url).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer {url} within {HEALTHY_WITHIN:?}:\n{}",
                self.name,
                self.stderr_tail()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stop the process and reap it. After SIGTERM it must exit cleanly within
    /// [`EXIT_WITHIN`].
    pub async fn stop(mut self, how: Stop) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        match how {
            Stop::Kill => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Stop::Term => {
                let pid = child.id().to_string();
                let sent = Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .expect("kill runs");
                assert!(sent.success(), "kill -TERM {pid} failed");
                let deadline = Instant::now() + EXIT_WITHIN;
                let status = loop {
                    if let Some(status) = child.try_wait().expect("try_wait") {
                        break status;
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!(
                            "{} did not exit within {EXIT_WITHIN:?} of SIGTERM",
                            self.name
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                };
                assert!(
                    status.success(),
                    "{} exited with {status} after SIGTERM:\n{}",
                    self.name,
                    self.stderr_tail()
                );
            }
        }
    }

    /// SIGKILL and reap, without a runtime.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `count` consecutive free loopback ports below the ephemeral range, so that while a node
/// is down its port cannot become the source port of some outgoing connection (which would
/// keep the restarted node from listening on it).
pub fn free_base_port(count: u16) -> u16 {
    let low = ephemeral_ports_start();
    let (from, to) = if low > 10_000 + 2 * count {
        (10_000, low - count)
    } else {
        (1024, low.max(1024 + 2 * count) - count)
    };
    let mut r = rand::rng();
    for _ in 0..200 {
        let base = r.random_range(from..to);
        let held: Vec<_> = (0..count)
            .map_while(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(count) {
            return base;
        }
    }
    panic!("no {count} consecutive free ports in {from}..{to}");
}

/// The first port of the kernel's ephemeral range (where outgoing connections take theirs).
fn ephemeral_ports_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// One free loopback port for a child to listen on: below the ephemeral range, like
/// [`free_base_port`], so no outgoing connection takes it before the child binds it.
pub fn free_port() -> u16 {
    free_base_port(1)
}

/// Established TCP connections of this process to `port` on IPv4 (its client ends: remote port
/// `port`), from `/proc/self/net/tcp`: how a test sees what a client's connection pool keeps.
pub fn established_connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/self/net/tcp")
        .expect("/proc/self/net/tcp is readable (Linux)");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let remote = cols
                .get(2)
                .and_then(|c| c.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            remote == Some(port) && cols.get(3) == Some(&"01")
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn established_connections_to_a_port_are_counted() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(established_connections_to(port), 0);
        let a = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let b = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(established_connections_to(port), 2);
        drop((a, b));
        // A test running alongside that spawns a process holds copies of every descriptor
        // between its fork and its exec (close-on-exec), so a closed end may stay established
        // for a moment: wait for it, boundedly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while established_connections_to(port) != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            established_connections_to(port),
            0,
            "closed ends still counted after 5 s"
        );
    }

    #[tokio::test]
    async fn a_dropped_process_is_killed_and_logs_are_numbered() {
        let logs = std::env::temp_dir().join(format!("floe-ts-{}", std::process::id()));
        let mut sleeper = Command::new("sleep");
        sleeper.arg("60");
        let p = Proc::spawn(sleeper, "sleeper", &logs);
        let pid = p.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(p);
        let gone = !Path::new(&format!("/proc/{pid}")).exists();
        assert!(gone, "the child outlived its guard");
        let mut echo = Command::new("sh");
        echo.args(["-c", "echo oops >&2; exit 3"]);
        let mut p = Proc::spawn(echo, "sleeper", &logs);
        assert!(
            logs.join("sleeper-1.err").exists(),
            "a second start gets its own log"
        );
        let status = loop {
            if let Some(s) = p.exited() {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(p.stderr_tail(), "oops");
        let _ = std::fs::remove_dir_all(&logs);
    }

    /// Another process on the machine may take a port between the check and this bind (it
    /// happened once in a full suite run), so a range is allowed to be taken twice; a third
    /// taken range fails the test.
    #[test]
    fn port_ranges_are_free_and_below_the_ephemeral_range() {
        let low = ephemeral_ports_start();
        let mut taken = Vec::new();
        for _ in 0..3 {
            let base = free_base_port(5);
            assert!(
                base + 5 <= low,
                "{base} reaches the ephemeral range at {low}"
            );
            let bound: Result<Vec<_>, _> = (0..5)
                .map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)))
                .collect();
            match bound {
                Ok(_) => return,
                Err(e) => taken.push((base, e.to_string())),
            }
        }
        panic!("three ranges said free were not: {taken:?}");
    }
}
