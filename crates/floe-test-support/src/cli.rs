//! The `floe` binary as a user runs it: in a directory of its own, and `floe testbed` as a
//! long-running child.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long `floe testbed` may take to print `ready`.
pub const READY_WITHIN: Duration = Duration::from_secs(60);

/// The `floe` binary, run in `dir` with `HOME=dir` and no `FLOE_CONFIG`, so that config
/// discovery sees only what the test made.
#[derive(Clone, Debug)]
pub struct Floe {
    bin: PathBuf,
    dir: PathBuf,
}

impl Floe {
    /// `bin` is the caller's `env!("CARGO_BIN_EXE_floe")`.
    pub fn new(bin: impl Into<PathBuf>, dir: &Path) -> Self {
        Self {
            bin: bin.into(),
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A command for `floe` in the directory.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.current_dir(&self.dir)
            .env_remove("FLOE_CONFIG")
            .env("HOME", &self.dir);
        c
    }

    /// Run `floe args…` to the end: (succeeded, stdout, stderr).
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> (bool, String, String) {
        let out = self
            .command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{} does not run: {e}", self.bin.display()));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Run `floe args…`, which must succeed and print JSON.
    pub fn json<S: AsRef<OsStr> + std::fmt::Debug>(&self, args: &[S]) -> Value {
        let (ok, out, err) = self.run(args);
        assert!(ok, "floe {args:?} failed: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("floe {args:?}: {e}: {out}"))
    }
}

/// `floe testbed …` as a child process: started, it has printed `ready`; killed when dropped.
pub struct Bed(Child);

impl Bed {
    /// Start `floe testbed args…` and wait for `ready`. With `echo`, its output is printed
    /// as `testbed> …` lines (they show in a failing test's output).
    pub fn start<S: AsRef<OsStr>>(floe: &Floe, args: &[S], echo: bool) -> Self {
        let mut child = floe
            .command()
            .arg("testbed")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("floe testbed starts");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if echo {
                    println!("testbed> {line}");
                }
                let _ = tx.send(line);
            }
        });
        let bed = Self(child);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("the testbed printed `ready` within {READY_WITHIN:?}"));
            if line == "ready" {
                return bed;
            }
        }
    }

    /// Ctrl-C; the process must exit cleanly within `limit`.
    pub fn interrupt(mut self, limit: Duration) {
        let pid = self.0.id().to_string();
        let sent = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -INT {pid} failed");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                assert!(status.success(), "testbed exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "testbed did not stop on Ctrl-C");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
