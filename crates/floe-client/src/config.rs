//! Client settings. Every field has a default, so a config needs only the ledger's URL.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a client reaches the network and how hard it pushes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// The ledger (control plane), e.g. `http://127.0.0.1:9100`.
    pub ledger_url: String,
    /// Replicas of the ledger; when given, used instead of `ledger_url` (the client fails over
    /// between them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ledger_urls: Vec<String>,
    pub communication: CommunicationConfig,
    /// How patch reads of quilts get missing columns.
    pub quilt: QuiltReadConfig,
}

/// Patch reads of a quilt fetch only the patch's columns (secondary slivers). When some are
/// missing they are rebuilt from decoding symbols; when more are missing than is worth
/// rebuilding, or the rebuild fails, the whole quilt is read once instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuiltReadConfig {
    /// Most missing columns one read rebuilds from decoding symbols; with more missing it reads
    /// the whole quilt. 0 always reads the whole quilt when a column is missing.
    pub max_unavailable_slivers_to_recover: usize,
    /// Nodes asked for decoding symbols at once while rebuilding columns.
    pub recovery_concurrency: usize,
}

impl Default for QuiltReadConfig {
    fn default() -> Self {
        Self {
            max_unavailable_slivers_to_recover: 100,
            recovery_concurrency: 8,
        }
    }
}

impl ClientConfig {
    /// Check that the limits are usable.
    pub fn validate(&self) -> Result<(), String> {
        self.communication.validate()?;
        if self.quilt.recovery_concurrency == 0 {
            return Err("quilt.recovery_concurrency must be at least 1".into());
        }
        Ok(())
    }

    /// The ledger URLs to use: `ledger_urls` if given, else `ledger_url` (which may itself be
    /// a comma-separated list).
    pub fn ledger_urls(&self) -> Vec<String> {
        if self.ledger_urls.is_empty() {
            split_urls(&self.ledger_url)
        } else {
            self.ledger_urls.clone()
        }
    }
}

/// Split a comma-separated list of URLs.
pub fn split_urls(list: &str) -> Vec<String> {
    list.split(',')
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect()
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            ledger_url: "http://127.0.0.1:9100".into(),
            ledger_urls: Vec::new(),
            communication: CommunicationConfig::default(),
            quilt: QuiltReadConfig::default(),
        }
    }
}

/// Limits on concurrency, bytes in flight, timeouts and retries. All are bounded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommunicationConfig {
    /// Storage nodes written to at once.
    pub max_concurrent_nodes: usize,
    /// Sliver bytes in upload requests at once, across all nodes.
    pub max_data_in_flight_bytes: u64,
    /// Upper bound of one batched sliver upload request's sliver bytes.
    pub batch_bytes: u64,
    /// Time allowed for one request to a node.
    pub request_timeout_ms: u64,
    /// Time allowed to connect to a node.
    pub connect_timeout_ms: u64,
    /// Attempts per node request before that node counts as failed.
    pub max_attempts: u32,
    /// Exponential backoff between attempts: first and largest delay.
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// How long nodes may take to see a registration before uploads to them give up.
    pub registration_wait_ms: u64,
    /// How often to retry a node that has not seen the registration yet.
    pub registration_poll_ms: u64,
    /// After a quorum confirmed, keep uploading to the rest for
    /// `clamp(elapsed / 2 + tail_min, tail_min, tail_max)`, but not for nodes that fail a
    /// health probe sent then (see [`CommunicationConfig::tail_probe`]).
    pub tail_min_ms: u64,
    pub tail_max_ms: u64,
    /// Sliver downloads at once during a read.
    pub max_concurrent_sliver_reads: usize,
    /// Metadata requests at once during a read.
    pub max_concurrent_metadata_reads: usize,
    /// Time allowed for one status request to a node.
    pub status_timeout_ms: u64,
    /// During a read, when no request has answered for this long, ask one more node (so a
    /// node that hangs costs this delay, not a request timeout).
    pub hedge_after_ms: u64,
    /// Once a read has answers in hand, a request is hedged sooner: after one and a half times
    /// the 90th percentile of the answers' latencies, but never sooner than this.
    pub hedge_min_ms: u64,
    /// A node whose request has gone unanswered this long gets a liveness probe (its health
    /// route). A node that does not answer the probe within `probe_timeout_ms` is *silent*:
    /// writes and reads stop counting on it, so an operation that cannot succeed without it
    /// fails at once with "not enough shards" instead of waiting for timeouts.
    pub silent_after_ms: u64,
    pub probe_timeout_ms: u64,
    /// Requests to storage nodes in flight at once across the whole client (all reads and
    /// writes); more wait their turn. Bounds sockets and file descriptors under many readers.
    pub max_concurrent_node_requests: usize,
    /// Blobs of at least this many bytes are encoded with their repair slivers (3.5 times the
    /// blob) written to a temporary file instead of memory, and read back as they are sent:
    /// the writer then holds about the blob and the batches in flight. 0: always in memory.
    pub spill_above_bytes: u64,
    /// Where those temporary files are made (each is unlinked at once, and gone when its upload
    /// ends). Default: the system's temporary directory (`$TMPDIR`, else `/tmp`).
    pub spill_dir: Option<std::path::PathBuf>,
}

impl Default for CommunicationConfig {
    fn default() -> Self {
        Self {
            max_concurrent_nodes: 32,
            max_data_in_flight_bytes: 256 << 20,
            batch_bytes: 8 << 20,
            request_timeout_ms: 60_000,
            connect_timeout_ms: 5_000,
            max_attempts: 5,
            backoff_min_ms: 100,
            backoff_max_ms: 5_000,
            registration_wait_ms: 30_000,
            registration_poll_ms: 10,
            tail_min_ms: 500,
            tail_max_ms: 10_000,
            max_concurrent_sliver_reads: 64,
            max_concurrent_metadata_reads: 3,
            status_timeout_ms: 2_000,
            hedge_after_ms: 1_000,
            hedge_min_ms: 50,
            silent_after_ms: 1_500,
            probe_timeout_ms: 1_500,
            max_concurrent_node_requests: 256,
            spill_above_bytes: 16 << 20,
            spill_dir: None,
        }
    }
}

impl CommunicationConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The delay before attempt `attempt` (0-based; attempt 0 has none).
    pub fn backoff(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let ms = self
            .backoff_min_ms
            .saturating_mul(1u64 << (attempt - 1).min(16))
            .min(self.backoff_max_ms);
        Duration::from_millis(ms)
    }

    /// After a quorum confirmed, the nodes still uploading get a health probe bounded by this
    /// (a quarter of the time the quorum took, within `hedge_min_ms` and `probe_timeout_ms`):
    /// the tail does not wait for a node that does not answer it.
    pub fn tail_probe(&self, elapsed: Duration) -> Duration {
        let ms = (elapsed.as_millis() as u64 / 4).clamp(
            self.hedge_min_ms,
            self.probe_timeout_ms.max(self.hedge_min_ms),
        );
        Duration::from_millis(ms)
    }

    /// How long to keep uploading to the remaining nodes after a quorum confirmed.
    pub fn tail(&self, elapsed: Duration) -> Duration {
        let ms = (elapsed.as_millis() as u64 / 2 + self.tail_min_ms)
            .clamp(self.tail_min_ms, self.tail_max_ms.max(self.tail_min_ms));
        Duration::from_millis(ms)
    }

    /// Check that the limits are usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_concurrent_nodes == 0
            || self.max_concurrent_sliver_reads == 0
            || self.max_concurrent_metadata_reads == 0
            || self.max_concurrent_node_requests == 0
        {
            return Err("concurrency limits must be at least 1".into());
        }
        if self.hedge_after_ms == 0 || self.hedge_min_ms == 0 {
            return Err("hedge_after_ms and hedge_min_ms must be at least 1".into());
        }
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        if self.batch_bytes == 0 || self.max_data_in_flight_bytes < self.batch_bytes {
            return Err("batch_bytes must be > 0 and ≤ max_data_in_flight_bytes".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = CommunicationConfig::default();
        assert_eq!(c.backoff(0), Duration::ZERO);
        assert_eq!(c.backoff(1), Duration::from_millis(100));
        assert_eq!(c.backoff(2), Duration::from_millis(200));
        assert_eq!(c.backoff(40), Duration::from_millis(5_000));
    }

    #[test]
    fn tail_is_half_the_elapsed_time_plus_a_floor_within_bounds() {
        let c = CommunicationConfig::default();
        assert_eq!(c.tail(Duration::ZERO), Duration::from_millis(500));
        assert_eq!(c.tail(Duration::from_secs(2)), Duration::from_millis(1_500));
        assert_eq!(
            c.tail(Duration::from_secs(600)),
            Duration::from_millis(10_000)
        );
    }

    #[test]
    fn the_tail_probe_is_a_quarter_of_the_quorum_time_within_bounds() {
        let c = CommunicationConfig::default();
        assert_eq!(c.tail_probe(Duration::ZERO), Duration::from_millis(50));
        assert_eq!(
            c.tail_probe(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
        assert_eq!(
            c.tail_probe(Duration::from_secs(60)),
            Duration::from_millis(1_500)
        );
    }

    #[test]
    fn a_config_with_only_the_ledger_url_parses_and_unknown_fields_are_refused() {
        let c: ClientConfig = serde_json::from_str(r#"{"ledger_url":"http://x:1"}"#).unwrap();
        assert_eq!(c.ledger_url, "http://x:1");
        assert_eq!(c.communication, CommunicationConfig::default());
        assert!(serde_json::from_str::<ClientConfig>(r#"{"ledger":"x"}"#).is_err());
        let bad = CommunicationConfig {
            batch_bytes: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
