//! Human-readable sizes, epochs with dates, and progress bars.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use floe_ledger::api_types::SystemInfo;

/// `1.5 MiB`, `532 B` (shared with the benchmarks, which own it).
pub use floe_bench::units::format_size as size;

/// When `epoch` starts, by the ledger's schedule, as an RFC 3339 UTC time.
pub fn epoch_start(system: &SystemInfo, epoch: u32) -> String {
    let offset = i64::from(epoch) - i64::from(system.epoch);
    let ms = system.current_epoch_start_ms as i64 + offset * system.epoch_duration_ms as i64;
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `epoch 7 (starts 2026-11-24T10:00:00Z)`.
pub fn epoch_with_date(system: &SystemInfo, epoch: u32) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let offset = i64::from(epoch) - i64::from(system.epoch);
    let start = system.current_epoch_start_ms as i64 + offset * system.epoch_duration_ms as i64;
    let verb = if start <= now { "started" } else { "starts" };
    format!("epoch {epoch} ({verb} {})", epoch_start(system, epoch))
}

/// A duration like `1h 30m`, `45s`.
pub fn duration(ms: u64) -> String {
    humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
}

/// Progress bars on stderr when it is a terminal (and not in JSON mode).
pub struct Bar {
    bar: indicatif::ProgressBar,
}

impl Bar {
    /// A reporter for the client library: a bar if `enabled` and stderr is a terminal.
    pub fn reporter(enabled: bool, label: &str) -> Arc<dyn floe_client::Progress> {
        use std::io::IsTerminal;
        if !enabled || !std::io::stderr().is_terminal() {
            return Arc::new(floe_client::NoProgress);
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_prefix(label.to_string());
        Arc::new(Self { bar })
    }
}

impl floe_client::Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        let style = if total > 0 {
            indicatif::ProgressStyle::with_template(
                "{prefix} {msg:>11} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
        } else {
            indicatif::ProgressStyle::with_template("{prefix} {msg:>11} {spinner} {elapsed}")
        }
        .expect("valid template")
        .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.set_message(name.to_string());
        if total == 0 {
            self.bar.enable_steady_tick(Duration::from_millis(120));
        }
    }
    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
