//! The crate's error type.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything that can go wrong opening, appending to, reading from, or group-committing to a log.
///
/// `LogError` is `Clone` (I/O errors are shared behind an [`Arc`]) so that a single failed
/// write+fsync can be reported to every submitter whose record was in the failed batch.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An operating-system I/O call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being attempted ("open", "fdatasync", ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },

    /// The file does not start with the Floe log magic bytes.
    #[error(
        "{}: not a Floe ledger log: found magic \"{}\", expected \"FLOELOG\\0\"",
        path.display(),
        found.escape_ascii()
    )]
    BadMagic {
        /// The log file.
        path: PathBuf,
        /// The eight bytes found where the magic should be.
        found: [u8; 8],
    },

    /// The file was written in a format version this build does not understand.
    #[error(
        "{}: unsupported log format version {found} (this build reads versions 1 to \
         {supported}; upgrade this build)",
        path.display()
    )]
    UnsupportedVersion {
        /// The log file.
        path: PathBuf,
        /// The version number found in the header.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// The header is malformed in some other way (too short, non-zero reserved field).
    #[error("{}: bad log header: {reason}", path.display())]
    BadHeader {
        /// The log file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Another handle (in this or another process) holds the log's exclusive lock.
    #[error("{}: log is already open elsewhere (exclusive lock is held)", path.display())]
    Locked {
        /// The log file.
        path: PathBuf,
    },

    /// A payload exceeds the configured maximum; nothing was written.
    #[error("payload of {len} bytes exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The maximum accepted.
        max: usize,
    },

    /// `read_range(from, to)` was called with `from > to` or `to > len`.
    #[error("record range [{from}, {to}) is out of bounds for a log of {len} records")]
    RangeOutOfBounds {
        /// Requested start (inclusive).
        from: u64,
        /// Requested end (exclusive).
        to: u64,
        /// Records in the log.
        len: u64,
    },

    /// `read_range` asked for records that were pruned (deleted after a snapshot covered them).
    #[error("records before {first} were pruned (asked from {from}); a snapshot covers them")]
    Pruned {
        /// Requested start.
        from: u64,
        /// The oldest record still held.
        first: u64,
    },

    /// A record that was valid when the log was opened no longer checks out on read.
    #[error("{}: record {index} at byte offset {offset} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// The record's index.
        index: u64,
        /// The record's byte offset in the file.
        offset: u64,
        /// What failed to check out.
        reason: &'static str,
    },

    /// An earlier write or fsync failed, so the on-disk state is unknown; the log refuses all
    /// further appends. Reopen it to recover from what is actually on disk.
    #[error("log refuses appends after an earlier write/fsync failure: {cause}")]
    Poisoned {
        /// The failure that poisoned the log.
        cause: Box<LogError>,
    },

    /// The group committer's queue is full; the record was not enqueued.
    #[error(
        "group-commit queue is full ({queued_records} records / {queued_bytes} bytes pending); retry later"
    )]
    Backpressure {
        /// Records pending (queued or being written) when the enqueue was refused.
        queued_records: usize,
        /// Payload bytes pending when the enqueue was refused.
        queued_bytes: usize,
    },

    /// The group committer stopped after a failed append; no record is accepted any more.
    #[error("group committer stopped after a failed append: {cause}")]
    CommitterFailed {
        /// The failure that stopped it.
        cause: Box<LogError>,
    },

    /// The group committer's worker thread could not be started.
    #[error("could not start the group-commit thread: {source}")]
    Spawn {
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },

    /// The group committer has been shut down (or its worker thread died).
    #[error("group committer is shut down")]
    CommitterClosed,

    /// A log implementation placed a batch at an index other than the one the committer
    /// promised at enqueue time. Indicates a bug in the `DurableLog` implementation.
    #[error("log appended batch at index {found}, expected {expected}")]
    UnexpectedIndex {
        /// The index the committer expected.
        expected: u64,
        /// The index the log reported.
        found: u64,
    },
}

impl LogError {
    /// Build an [`LogError::Io`] for `op` on `path`.
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        LogError::Io {
            op,
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }

    /// Whether this error reports a full queue (a transient condition worth retrying).
    pub fn is_backpressure(&self) -> bool {
        matches!(self, LogError::Backpressure { .. })
    }
}
