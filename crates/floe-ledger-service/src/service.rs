//! The ledger service: the pure state machine, sequenced under one lock, over a durable log.
//!
//! Write path: lock → apply to the state (atomic; a rejection changes nothing) → enqueue the
//! entry to the group committer (the log order is the apply order) → unlock → await durability
//! → acknowledge. Read path: answer from the state, then wait until every entry the answer may
//! reflect is durable, so no reader ever sees a write that a crash could undo.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use floe_ledger::api_types::CertificateRecord;
use floe_ledger::{
    Event, EventKind, GenesisConfig, LedgerState, LogEntry, SignedTransaction, TxError, TxKind,
};
use floe_log::{CommitterOptions, FileLog, GroupCommitter, LogError, LogOptions};

/// Log entries parsed and pre-verified together on replay.
const REPLAY_WINDOW: usize = 1024;
/// Most entries applied but not yet durable; beyond it submissions get "busy" (429). Kept far
/// below the committer's own queue bound so that an applied entry can always be enqueued.
pub const MAX_IN_FLIGHT: u64 = 4096;
/// Largest accepted transaction, in bytes of its log entry.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// A source of wall-clock time in milliseconds since the Unix epoch (injectable for tests).
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Rejected(#[from] TxError),
    #[error("the ledger is busy ({0} entries awaiting durability); retry shortly")]
    Busy(u64),
    #[error("transaction too large: {0} bytes (limit {MAX_ENTRY_BYTES})")]
    TooLarge(usize),
    #[error("the ledger log failed and this process must be restarted: {0}")]
    LogFailed(String),
}

/// Errors opening the ledger.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("genesis: {0}")]
    Genesis(#[from] floe_ledger::GenesisError),
    #[error("log: {0}")]
    Log(#[from] LogError),
    #[error("log entry {index} cannot be decoded: {reason}")]
    Corrupt { index: u64, reason: String },
    #[error(
        "log entry {index} no longer applies ({error}): the log does not belong to this genesis or this build"
    )]
    Diverged { index: u64, error: TxError },
}

/// The acknowledgement of an accepted entry.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub entry_index: u64,
    pub events: Vec<Event>,
    /// The running digest after this entry.
    pub digest: [u8; 32],
}

pub(crate) struct Inner {
    pub(crate) state: LedgerState,
    /// Every event, in order (index = position).
    pub(crate) events: Vec<Event>,
    /// For entry i: the event count after it.
    pub(crate) events_after: Vec<u64>,
    /// For entry i: the digest after it.
    pub(crate) digests: Vec<[u8; 32]>,
    /// Set when the log failed: state may hold an entry the log does not.
    pub(crate) poisoned: Option<String>,
    /// The certificate of each blob's first certification (served, not part of the state).
    pub(crate) certificates: std::collections::HashMap<floe_core::BlobId, CertificateRecord>,
}

impl Inner {
    /// Bookkeeping after `entry` applied with `events`: events, counts, digest, certificate.
    /// Returns the digest after the entry.
    fn record_applied(&mut self, entry: &LogEntry, events: &[Event]) -> [u8; 32] {
        note_certificate(&mut self.certificates, entry, events);
        self.events.extend(events.iter().cloned());
        let count = self.events.len() as u64;
        self.events_after.push(count);
        let digest = self.state.digest();
        self.digests.push(digest);
        digest
    }
}

/// Keep the certificate of a `certifyBlob` entry whose events certify a blob for the first time.
fn note_certificate(
    certificates: &mut std::collections::HashMap<floe_core::BlobId, CertificateRecord>,
    entry: &LogEntry,
    events: &[Event],
) {
    let LogEntry::Tx(tx) = entry else { return };
    let TxKind::CertifyBlob { certificate, .. } = &tx.tx.kind else {
        return;
    };
    for e in events {
        if let EventKind::BlobCertified {
            blob_id,
            is_extension: false,
            ..
        } = &e.kind
        {
            certificates
                .entry(*blob_id)
                .or_insert_with(|| CertificateRecord {
                    blob_id: *blob_id,
                    epoch: e.epoch,
                    event_index: e.index,
                    certificate: certificate.clone(),
                });
        }
    }
}

/// A running ledger.
pub struct Ledger {
    inner: Mutex<Inner>,
    committer: GroupCommitter,
    clock: Arc<dyn Clock>,
    genesis: GenesisConfig,
}

impl Ledger {
    /// Open (or create) the ledger in `dir`, replaying its log onto `genesis`.
    pub fn open(
        dir: &Path,
        genesis: GenesisConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, OpenError> {
        let mut state = LedgerState::genesis(&genesis)?;
        let (log, replay) = FileLog::open(dir, LogOptions::default())?;
        let mut events = Vec::new();
        let mut certificates = std::collections::HashMap::new();
        let mut events_after = Vec::with_capacity(replay.len());
        let mut digests = Vec::with_capacity(replay.len());
        let started = std::time::Instant::now();
        for (w, window) in replay.chunks(REPLAY_WINDOW).enumerate() {
            let first = (w * REPLAY_WINDOW) as u64;
            let entries = window
                .iter()
                .enumerate()
                .map(|(j, bytes)| {
                    LogEntry::from_bytes(bytes).map_err(|e| OpenError::Corrupt {
                        index: first + j as u64,
                        reason: e.to_string(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            // The window's certificates are verified across the cores first; the result is
            // the same as applying one by one (see `LedgerState::preverify`).
            state.preverify(&entries);
            for (j, entry) in entries.iter().enumerate() {
                let index = first + j as u64;
                let evs = state
                    .apply(entry)
                    .map_err(|error| OpenError::Diverged { index, error })?;
                note_certificate(&mut certificates, entry, &evs);
                events.extend(evs);
                events_after.push(events.len() as u64);
                digests.push(state.digest());
            }
        }
        tracing::info!(
            entries = replay.len(),
            events = events.len(),
            epoch = state.epoch(),
            ms = started.elapsed().as_millis() as u64,
            "ledger replayed"
        );
        let committer = GroupCommitter::spawn(
            Box::new(log),
            CommitterOptions {
                max_queued_records: 65_536,
                max_queued_bytes: 2 * 1024 * 1024 * 1024,
            },
        )?;
        Ok(Arc::new(Self {
            inner: Mutex::new(Inner {
                state,
                events,
                events_after,
                digests,
                poisoned: None,
                certificates,
            }),
            committer,
            clock,
            genesis,
        }))
    }

    pub fn genesis(&self) -> &GenesisConfig {
        &self.genesis
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Apply and durably log `entry`; resolves once it is durable.
    pub async fn submit(&self, entry: LogEntry) -> Result<Accepted, SubmitError> {
        let bytes = entry.to_bytes();
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(SubmitError::TooLarge(bytes.len()));
        }
        // Verify certificates (the expensive part) in parallel, outside the sequencing lock.
        let check = self.lock().state.certificate_check(&entry);
        if let Some(check) = check
            && let Ok(Some(key)) = tokio::task::spawn_blocking(move || check.run()).await
        {
            self.lock().state.record_verified(key);
        }
        let sequenced: Result<_, (TxError, u64)> = 'sequenced: {
            let mut inner = self.lock();
            if let Some(reason) = &inner.poisoned {
                return Err(SubmitError::LogFailed(reason.clone()));
            }
            let in_flight = inner.state.entry_count() - self.committer.durable_len();
            if in_flight >= MAX_IN_FLIGHT {
                return Err(SubmitError::Busy(in_flight));
            }
            let events = match inner.state.apply(&entry) {
                Ok(events) => events,
                // The rejection reflects the current state (e.g. "next sequence is N"):
                // answer only once everything it may reflect is durable (below).
                Err(e) => break 'sequenced Err((e, inner.state.entry_count())),
            };
            let entry_index = inner.state.entry_count() - 1;
            let pending = match self.committer.enqueue(bytes) {
                Ok(p) => p,
                Err(e) => {
                    // The state holds an entry the log does not: stop serving writes.
                    let reason = e.to_string();
                    inner.poisoned = Some(reason.clone());
                    tracing::error!(%reason, "log refused an applied entry; restart to recover from the log");
                    return Err(SubmitError::LogFailed(reason));
                }
            };
            debug_assert_eq!(pending.index(), entry_index);
            let digest = inner.record_applied(&entry, &events);
            Ok((
                pending,
                Accepted {
                    entry_index,
                    events,
                    digest,
                },
            ))
        };
        let (pending, accepted) = match sequenced {
            Ok(ok) => ok,
            Err((rejection, applied)) => {
                self.committer
                    .wait_durable(applied)
                    .await
                    .map_err(|e| SubmitError::LogFailed(e.to_string()))?;
                return Err(rejection.into());
            }
        };
        pending.await.map_err(|e| {
            let reason = e.to_string();
            self.lock().poisoned = Some(reason.clone());
            SubmitError::LogFailed(reason)
        })?;
        Ok(accepted)
    }

    /// Submit a signed transaction.
    pub async fn submit_tx(&self, tx: SignedTransaction) -> Result<Accepted, SubmitError> {
        self.submit(LogEntry::Tx(tx)).await
    }

    /// Read from the state; the answer is returned only once everything it may reflect is
    /// durable.
    /// The certificate of `blob_id`'s first certification, once durable.
    pub async fn certificate(
        &self,
        blob_id: &floe_core::BlobId,
    ) -> Result<Option<CertificateRecord>, SubmitError> {
        let (answer, applied) = {
            let inner = self.lock();
            (
                inner.certificates.get(blob_id).cloned(),
                inner.state.entry_count(),
            )
        };
        self.committer
            .wait_durable(applied)
            .await
            .map_err(|e| SubmitError::LogFailed(e.to_string()))?;
        Ok(answer)
    }

    pub async fn read<R>(
        &self,
        f: impl FnOnce(&LedgerState, &[Event]) -> R,
    ) -> Result<R, SubmitError> {
        let (answer, applied) = {
            let inner = self.lock();
            (f(&inner.state, &inner.events), inner.state.entry_count())
        };
        self.committer
            .wait_durable(applied)
            .await
            .map_err(|e| SubmitError::LogFailed(e.to_string()))?;
        Ok(answer)
    }

    /// The digest after entry `index`, if that entry is durable.
    pub fn digest_after(&self, index: u64) -> Option<[u8; 32]> {
        if index >= self.committer.durable_len() {
            return None;
        }
        self.lock().digests.get(index as usize).copied()
    }

    /// Events of durable entries: the count after the last durable entry.
    fn durable_event_count(&self, durable_entries: u64) -> u64 {
        match durable_entries.checked_sub(1) {
            Some(last) => self
                .lock()
                .events_after
                .get(last as usize)
                .copied()
                .unwrap_or(0),
            None => 0,
        }
    }

    /// Durable events from `cursor`, at most `limit`; waits up to `wait` for the first one.
    /// An acknowledged entry's events are visible here as soon as it is acknowledged.
    pub async fn events(&self, cursor: u64, limit: usize, wait: Duration) -> Vec<Event> {
        let mut watermark = self.committer.watermark();
        let deadline = tokio::time::Instant::now() + wait;
        let durable = loop {
            // Copy the watermark out first: holding the watch's read guard while taking the
            // state lock would deadlock against a submitter (state lock → watermark read)
            // queued behind the commit worker's watermark write.
            let entries = *watermark.borrow_and_update();
            let durable = self.durable_event_count(entries);
            if durable > cursor || tokio::time::Instant::now() >= deadline {
                break durable;
            }
            match tokio::time::timeout_at(deadline, watermark.changed()).await {
                Ok(Ok(())) => continue,
                _ => {
                    let entries = *watermark.borrow();
                    break self.durable_event_count(entries);
                }
            }
        };
        if durable <= cursor {
            return Vec::new();
        }
        let inner = self.lock();
        let end = durable
            .min(cursor.saturating_add(limit as u64))
            .min(inner.events.len() as u64);
        inner.events[cursor as usize..end as usize].to_vec()
    }

    /// Entries applied and entries durable.
    pub fn progress(&self) -> (u64, u64) {
        (
            self.lock().state.entry_count(),
            self.committer.durable_len(),
        )
    }

    pub fn poisoned(&self) -> Option<String> {
        self.lock().poisoned.clone()
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Drive the epoch state machine by the clock: fix the next committee half an epoch in,
    /// start the next epoch at its boundary (one step per clock entry, each change completing
    /// before the next starts). Runs until the ledger is dropped.
    pub fn spawn_epoch_clock(self: &Arc<Self>, tick: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let Some(ledger) = weak.upgrade() else { return };
                let now = ledger.clock.now_ms();
                let due = ledger.lock().state.clock_due(now);
                if due {
                    match ledger.submit(LogEntry::Clock { now_ms: now }).await {
                        Ok(a) => tracing::info!(entry = a.entry_index, "epoch clock advanced"),
                        Err(e) => tracing::warn!(error = %e, "epoch clock entry failed"),
                    }
                }
            }
        });
    }
}
