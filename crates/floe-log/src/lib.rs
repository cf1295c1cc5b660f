//! The durable, ordered, append-only log under Floe's control plane (the ledger).
//!
//! The ledger is a deterministic state machine: every accepted transaction is appended here
//! and made durable (write + fdatasync) before it is acknowledged, and on restart the state is
//! rebuilt by replaying the log from the start.
//!
//! * [`DurableLog`] — the narrow, synchronous, object-safe interface the ledger depends on. A
//!   replicated log will implement it later.
//! * [`FileLog`] — the embedded implementation: segment files in one directory (the newest,
//!   appended to, is `<dir>/ledger.log`), in the format described in [`format`]. Opening it
//!   recovers from a torn tail and returns the payloads to replay; whole sealed files before a
//!   snapshot can be deleted ([`DurableLog::prune_before`]).
//! * [`GroupCommitter`] — an async front end that batches concurrent submissions into one
//!   write+fsync, preserving submission order, with a bounded queue and a durable watermark.
//! * [`MemoryLog`] — a non-durable implementation for tests.
//!
//! ```no_run
//! use floe_log::{DurableLog, FileLog, GroupCommitter, CommitterOptions, LogOptions};
//! # async fn demo() -> Result<(), floe_log::LogError> {
//! let (log, replay) = FileLog::open("/var/lib/floe".as_ref(), LogOptions::default())?;
//! for tx in &replay { /* apply tx to the state machine */ }
//! let committer = GroupCommitter::spawn(Box::new(log), CommitterOptions::default())?;
//! let pending = committer.enqueue(b"tx bytes".to_vec())?; // order fixed here
//! let index = pending.await?;                              // durable now
//! # let _ = index; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(unix))]
compile_error!("floe-log uses positioned file I/O and currently supports Unix only");

mod error;
mod file_log;
pub mod format;
mod group;
mod memory;
mod recovery;
mod segment;

pub use error::LogError;
pub use file_log::{FileLog, LOCK_FILE_NAME, LogOptions, Replay};
pub use group::{CommitterOptions, GroupCommitter, Pending, Pruner};
pub use memory::MemoryLog;
pub use recovery::{Recovery, TailDamage, Truncation};

/// A durable, ordered, append-only sequence of opaque records, indexed from 0.
///
/// Synchronous and object-safe, so it can sit behind a `Box<dyn DurableLog>` on a dedicated
/// thread (see [`GroupCommitter`]).
pub trait DurableLog: Send {
    /// Number of records durably in the log; the index the next record will get.
    fn len(&self) -> u64;

    /// Whether the log holds no records.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Largest payload [`append_durable`](Self::append_durable) accepts, in bytes.
    fn max_payload_len(&self) -> usize;

    /// Append `payloads` as consecutive records and make them durable before returning.
    /// Returns the index of the first appended record (`len()` if `payloads` is empty).
    ///
    /// Either every record is appended or, on error, none is acknowledged. A payload over
    /// [`max_payload_len`](Self::max_payload_len) fails the call before anything is written.
    /// After an I/O error the outcome on disk is unknown: records from the failed call may or
    /// may not reappear on recovery, and an implementation may refuse further appends.
    fn append_durable(&mut self, payloads: &[&[u8]]) -> Result<u64, LogError>;

    /// Read records `[from, to)`, for replay or serving. Errors if `from > to` or
    /// `to > len()`, or if `from` is below [`first_index`](Self::first_index).
    fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, LogError>;

    /// Index of the oldest record still held (records before it were pruned). Default 0.
    fn first_index(&self) -> u64 {
        0
    }

    /// Allow the records before `index` to be deleted (the caller holds a snapshot of the
    /// state they lead to). An implementation may keep some of them, for example to delete
    /// only whole files. Returns the new [`first_index`](Self::first_index). By default
    /// nothing is deleted.
    fn prune_before(&mut self, index: u64) -> Result<u64, LogError> {
        let _ = index;
        Ok(self.first_index())
    }
}

impl<L: DurableLog + ?Sized> DurableLog for Box<L> {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn max_payload_len(&self) -> usize {
        (**self).max_payload_len()
    }
    fn append_durable(&mut self, payloads: &[&[u8]]) -> Result<u64, LogError> {
        (**self).append_durable(payloads)
    }
    fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, LogError> {
        (**self).read_range(from, to)
    }
    fn first_index(&self) -> u64 {
        (**self).first_index()
    }
    fn prune_before(&mut self, index: u64) -> Result<u64, LogError> {
        (**self).prune_before(index)
    }
}
