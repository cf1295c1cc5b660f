//! The ledger service: the pure state machine, sequenced under one lock, over a durable log.
//!
//! Write path: lock → apply to the state (atomic; a rejection changes nothing) → enqueue the
//! entry to the group committer (the log order is the apply order) → unlock → await durability
//! → acknowledge. Read path: answer from the state, then wait until every entry the answer may
//! reflect is durable, so no reader ever sees a write that a crash could undo.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use floe_ledger::api_types::CertificateRecord;
use floe_ledger::{Event, GenesisConfig, LedgerState, LogEntry, SignedTransaction, TxError};
use floe_log::{GroupCommitter, LogError};
use tokio::sync::watch;

use crate::event_log::EventLog;
use crate::recent_txs::RecentTxs;
use crate::replica::Replica;

/// Log entries parsed and pre-verified together on replay.
pub(crate) const REPLAY_WINDOW: usize = 1024;
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
    #[error("the replicated log is unavailable: {0}")]
    Unavailable(String),
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
    #[error("log entry {index}: {reason} (a bug in the ledger's rules; the log is unchanged)")]
    Invariant { index: u64, reason: String },
    #[error("etcd log: {0}")]
    Etcd(#[from] floe_ledger_etcd::EtcdLogError),
    #[error("snapshot: {0}")]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error("cannot bootstrap from a peer's snapshot: {0}")]
    Bootstrap(String),
    #[error(
        "the log before entry {first} was pruned and no usable snapshot covers it: restore the \
         data directory's snapshots/ from a backup"
    )]
    Pruned { first: u64 },
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
    /// Every event, the digest after every entry from the first (snapshots carry those they
    /// cover), and each blob's first certificate (served for audits; not part of the state,
    /// so the state hash is unchanged).
    pub(crate) history: crate::history::History,
    /// For entry i: the event count after it.
    pub(crate) events_after: Vec<u64>,
    /// Set when the log failed: state may hold an entry the log does not.
    pub(crate) poisoned: Option<String>,
    /// Log entries applied (with the replicated log, rejected entries count too; with the
    /// local log it equals the state's entry count).
    pub(crate) applied: u64,
    /// Log entries before `base` are covered by a snapshot: `events_after` is indexed from
    /// it.
    pub(crate) base: u64,
    /// Events up to `base`.
    pub(crate) base_events: u64,
    /// Replicated mode: recent outcomes by log position (bounded), for answering the
    /// submission that appended each.
    pub(crate) outcomes: BTreeMap<u64, Result<Accepted, TxError>>,
    /// The positions of the transactions accepted in the last entries, by digest, so that a
    /// retried transaction is answered with its first outcome (snapshots carry them).
    pub(crate) recent_txs: RecentTxs,
    /// The state hash with the running digest it was computed at: every change to the state
    /// is an applied entry, which moves the digest, so an equal digest means an equal hash.
    pub(crate) state_hash_memo: Option<([u8; 32], [u8; 32])>,
}

/// Where entries become durable.
pub(crate) enum Backend {
    /// The embedded file log: apply, then append.
    Local(GroupCommitter),
    /// An etcd cluster: append, then apply (in log order, on every replica).
    Replicated(Box<Replica>),
}

impl Backend {
    /// Log entries durable (local) or applied from the replicated log (replicated).
    pub(crate) fn durable_len(&self) -> u64 {
        match self {
            Backend::Local(c) => c.durable_len(),
            Backend::Replicated(r) => r.applied_len(),
        }
    }

    pub(crate) fn watermark_rx(&self) -> watch::Receiver<u64> {
        match self {
            Backend::Local(c) => c.watermark(),
            Backend::Replicated(r) => r.watermark(),
        }
    }

    async fn wait_durable(&self, count: u64) -> Result<(), SubmitError> {
        match self {
            Backend::Local(c) => c
                .wait_durable(count)
                .await
                .map_err(|e| SubmitError::LogFailed(e.to_string())),
            // Everything applied came from the replicated log: it is durable already.
            Backend::Replicated(_) => Ok(()),
        }
    }
}

/// `result`, of an access to the history (see [`crate::history`]): one that failed means the
/// history cannot be read, and the ledger stops accepting writes, with the reason.
pub(crate) fn poison_on<T>(
    poisoned: &mut Option<String>,
    result: Result<T, String>,
) -> Result<T, String> {
    result.inspect_err(|reason| {
        poisoned.get_or_insert_with(|| reason.clone());
    })
}

impl Inner {
    /// The snapshot of everything applied, its sections encoded (joined outside the lock),
    /// or why there is none. The local log chains by the state's digest.
    fn snapshot(&mut self) -> Result<crate::snapshot::EncodedSnapshot, String> {
        let head = self.state.digest();
        self.snapshot_at(head)
    }

    /// [`Self::snapshot`] with the log's chain head after the last applied entry (a
    /// replica's: the hash of that etcd record). Waits for a restart's history; a history
    /// that cannot be read stops the ledger, with the reason.
    pub(crate) fn snapshot_at(
        &mut self,
        chain_head: [u8; 32],
    ) -> Result<crate::snapshot::EncodedSnapshot, String> {
        let history = poison_on(&mut self.poisoned, self.history.parts())?;
        Ok(crate::snapshot::encode_sections(
            self.applied,
            chain_head,
            &self.state,
            history,
            &self.recent_txs,
        ))
    }

    /// The first outcome of the accepted transaction with `digest`, if it is among the recent
    /// ones: from the outcomes held (a replica's), or else from the history.
    pub(crate) fn accepted_outcome(&mut self, digest: &[u8; 32]) -> Option<Accepted> {
        let index = self.recent_txs.get(digest)?;
        if let Some(outcome) = self.outcomes.get(&index) {
            return outcome.clone().ok();
        }
        let found = crate::recent_txs::accepted_from_history(&mut self.history, index);
        poison_on(&mut self.poisoned, found).ok().flatten()
    }

    /// Wait for a snapshot's history if it is still being read (see [`crate::history`]); if it
    /// cannot be read, the ledger stops accepting writes, with the reason.
    pub(crate) fn settle_history(&mut self) -> Result<(), String> {
        poison_on(&mut self.poisoned, self.history.settle()).map(drop)
    }

    pub(crate) fn new(state: LedgerState) -> Self {
        let applied = state.entry_count();
        Inner {
            state,
            history: Default::default(),
            events_after: Vec::new(),
            poisoned: None,
            applied,
            base: applied,
            base_events: 0,
            outcomes: BTreeMap::new(),
            recent_txs: RecentTxs::default(),
            state_hash_memo: None,
        }
    }
}

/// Write a local snapshot, then let the log delete the segments that the oldest snapshot kept
/// covers (the newest may turn out damaged on the next start; the one before it is the
/// fallback, so the log is kept from there).
fn write_snapshot(
    dir: &Path,
    snapshot: &crate::snapshot::EncodedSnapshot,
    pruner: Option<&floe_log::Pruner>,
) -> Result<(), crate::snapshot::SnapshotError> {
    let written = crate::snapshot::write_atomic(dir, snapshot.seq(), &snapshot.to_bytes())?;
    if let Some(pruner) = pruner {
        pruner.prune_before(written.oldest_kept);
    }
    Ok(())
}

/// A running ledger.
pub struct Ledger {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) backend: Backend,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) genesis: GenesisConfig,
    /// Local log: snapshot every this many entries (0: never).
    pub(crate) snapshot_every: u64,
    /// The data directory (the log, and snapshots).
    pub(crate) dir: std::path::PathBuf,
    /// Local log, when pruning is on: deletes log segments a kept snapshot covers.
    pub(crate) pruner: Option<floe_log::Pruner>,
    /// Where the last open's time went; set once the open is done (a replica's after its
    /// catch-up).
    pub(crate) open_stats: Mutex<OpenStats>,
}

/// Where a ledger's open (a restart) spent its time, for `floe bench ledger`.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenStats {
    /// Reading and checking the log file (every record's checksum); for a replica,
    /// connecting to etcd and asking where the log ends.
    pub log_ms: f64,
    /// Opening the newest snapshot (its state; the history is read on another thread).
    pub snapshot_ms: f64,
    /// Applying the entries after the snapshot (a replica's catch-up: reading them from etcd
    /// and applying them).
    pub replay_ms: f64,
    /// Entries applied (the rest came from the snapshot).
    pub replayed: u64,
}

impl Ledger {
    /// Open (or create) the ledger in `dir`, replaying its log onto `genesis`.
    pub fn open(
        dir: &Path,
        genesis: GenesisConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, OpenError> {
        Self::open_with_snapshots(dir, genesis, clock, 0)
    }

    /// Like [`open`](Self::open), and snapshot the state every `snapshot_every` entries and at
    /// each epoch change (0: never), so that a restart loads the newest snapshot and applies
    /// only the entries after it; log segments before the older snapshot kept are deleted.
    pub fn open_with_snapshots(
        dir: &Path,
        genesis: GenesisConfig,
        clock: Arc<dyn Clock>,
        snapshot_every: u64,
    ) -> Result<Arc<Self>, OpenError> {
        let options = crate::local_open::LocalOptions {
            snapshot_every,
            ..Default::default()
        };
        Self::open_local(dir, genesis, clock, options)
    }

    /// Where the last open spent its time.
    pub fn open_stats(&self) -> OpenStats {
        *self.open_stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn genesis(&self) -> &GenesisConfig {
        &self.genesis
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Apply and durably log `entry`; resolves once it is durable (with the replicated log:
    /// once it is in the log and applied here).
    pub async fn submit(&self, entry: LogEntry) -> Result<Accepted, SubmitError> {
        let committer = match &self.backend {
            Backend::Local(c) => c,
            Backend::Replicated(r) => return r.submit(self, entry).await,
        };
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
            // A snapshot's history read meanwhile is joined as soon as it is there, so that a
            // damaged one stops writes at once (see `crate::history`).
            if inner.history.read_ended() && inner.settle_history().is_err() {
                let reason = inner.poisoned.clone().unwrap_or_default();
                return Err(SubmitError::LogFailed(reason));
            }
            let in_flight = inner.state.entry_count() - committer.durable_len();
            if in_flight >= MAX_IN_FLIGHT {
                return Err(SubmitError::Busy(in_flight));
            }
            let epoch_before = inner.state.epoch();
            let events = match crate::guard::apply(&mut inner.state, &entry) {
                Ok(Ok(events)) => events,
                // The rejection reflects the current state (e.g. "next sequence is N"):
                // answer only once everything it may reflect is durable (below).
                Ok(Err(e)) => break 'sequenced Err((e, inner.state.entry_count())),
                Err(reason) => {
                    tracing::error!(%reason, "ledger stopped: the entry is not in the log");
                    inner.poisoned = Some(reason.clone());
                    return Err(SubmitError::LogFailed(reason));
                }
            };
            let entry_index = inner.state.entry_count() - 1;
            inner.applied = inner.state.entry_count();
            inner.recent_txs.note_entry(&entry, entry_index);
            let applied = inner.applied;
            inner.recent_txs.prune(applied);
            let pending = match committer.enqueue(bytes) {
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
            let digest = inner.state.digest();
            inner.history.record(&entry, &events, digest);
            let count = inner.history.event_count();
            inner.events_after.push(count);
            let every = self.snapshot_every;
            let snapshot = (every > 0
                && (inner.applied.is_multiple_of(every) || inner.state.epoch() != epoch_before))
                .then(|| inner.snapshot())
                .and_then(|s| {
                    s.inspect_err(|reason| tracing::error!(%reason, "no snapshot taken"))
                        .ok()
                });
            Ok((
                pending,
                snapshot,
                Accepted {
                    entry_index,
                    events,
                    digest,
                },
            ))
        };
        let (pending, snapshot, accepted) = match sequenced {
            Ok(ok) => ok,
            Err((rejection, applied)) => {
                self.backend.wait_durable(applied).await?;
                // A transaction sent again after its answer was lost: its first outcome.
                if matches!(rejection, TxError::BadSequence { .. })
                    && let LogEntry::Tx(tx) = &entry
                    && let Some(first) = self.lock().accepted_outcome(&tx.digest())
                {
                    return Ok(first);
                }
                return Err(rejection.into());
            }
        };
        pending.await.map_err(|e| {
            let reason = e.to_string();
            self.lock().poisoned = Some(reason.clone());
            SubmitError::LogFailed(reason)
        })?;
        // Written only once the entries it covers are durable, so it is never ahead of the log.
        if let Some(snapshot) = snapshot {
            let dir = self.dir.clone();
            let pruner = self.pruner.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = write_snapshot(&dir, &snapshot, pruner.as_ref()) {
                    tracing::warn!(seq = snapshot.seq(), error = %e, "snapshot write failed");
                }
            });
        }
        Ok(accepted)
    }

    /// A clean stop. The local backend, once everything applied is durable, writes a snapshot
    /// at that position (if snapshots are on and the newest one is older), so the next start
    /// loads it and replays nothing. Returns the snapshot's position when one was written.
    /// A replica waits for the snapshots it is writing and, if it applied transactions since
    /// the newest, writes one at its position and appends that snapshot's checkpoint.
    pub async fn close(&self) -> Result<Option<u64>, SubmitError> {
        if let Backend::Replicated(_) = &self.backend {
            return self.close_replica().await;
        }
        if self.snapshot_every == 0 {
            return Ok(None);
        }
        let applied = self.lock().applied;
        self.backend.wait_durable(applied).await?;
        let newest = crate::snapshot::newest_seq(&self.dir).ok().flatten();
        if applied == 0 || newest.is_some_and(|seq| seq >= applied) {
            return Ok(None);
        }
        let snapshot = self.lock().snapshot().map_err(SubmitError::LogFailed)?;
        let seq = snapshot.seq();
        // A submit may have slipped in after the wait: the snapshot must never be ahead of
        // the durable log.
        self.backend.wait_durable(seq).await?;
        let dir = self.dir.clone();
        let pruner = self.pruner.clone();
        tokio::task::spawn_blocking(move || write_snapshot(&dir, &snapshot, pruner.as_ref()))
            .await
            .map_err(|e| SubmitError::LogFailed(format!("snapshot task: {e}")))?
            .map_err(|e| SubmitError::LogFailed(format!("final snapshot: {e}")))?;
        tracing::info!(seq, "final snapshot written at a clean stop");
        Ok(Some(seq))
    }

    /// Submit a signed transaction.
    pub async fn submit_tx(&self, tx: SignedTransaction) -> Result<Accepted, SubmitError> {
        self.submit(LogEntry::Tx(tx)).await
    }

    /// The certificate of `blob_id`'s first certification, once durable.
    pub async fn certificate(
        &self,
        blob_id: &floe_core::BlobId,
    ) -> Result<Option<CertificateRecord>, SubmitError> {
        let (answer, applied) = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let record = poison_on(&mut inner.poisoned, inner.history.certificate(blob_id))
                .map_err(SubmitError::LogFailed)?
                .and_then(crate::certificates::StoredCertificate::decode);
            (record, inner.applied)
        };
        self.backend.wait_durable(applied).await?;
        Ok(answer)
    }

    /// Read from the state alone; the answer is returned only once everything it may reflect
    /// is durable. Unlike [`Self::read`], it never waits for the history of the snapshot a
    /// restart started from.
    pub async fn read_state<R>(&self, f: impl FnOnce(&LedgerState) -> R) -> Result<R, SubmitError> {
        let (answer, applied) = {
            let inner = self.lock();
            (f(&inner.state), inner.applied)
        };
        self.backend.wait_durable(applied).await?;
        Ok(answer)
    }

    /// Event `index`, if there is one (waiting for a restart's snapshot history only if the
    /// event is in it).
    pub fn event(&self, index: u64) -> Result<Option<Event>, SubmitError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        poison_on(&mut inner.poisoned, inner.history.event(index)).map_err(SubmitError::LogFailed)
    }

    /// Read from the state and the events (waiting for a restart's snapshot history); the
    /// answer is returned only once everything it may reflect is durable.
    pub async fn read<R>(
        &self,
        f: impl FnOnce(&LedgerState, &EventLog) -> R,
    ) -> Result<R, SubmitError> {
        let (answer, applied) = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let events = poison_on(&mut inner.poisoned, inner.history.events())
                .map_err(SubmitError::LogFailed)?;
            (f(&inner.state, events), inner.applied)
        };
        self.backend.wait_durable(applied).await?;
        Ok(answer)
    }

    /// The epoch, running digest, state hash and event count, read together once what they
    /// reflect is durable (for `/v1/health`). The state hash encodes and hashes the whole
    /// state, so it is computed once per state, not once per call.
    pub async fn summary(&self) -> Result<(u32, [u8; 32], [u8; 32], usize), SubmitError> {
        let (answer, applied) = {
            let mut inner = self.lock();
            let digest = inner.state.digest();
            let hash = match inner.state_hash_memo {
                Some((at, hash)) if at == digest => hash,
                _ => {
                    let hash = inner.state.state_hash();
                    inner.state_hash_memo = Some((digest, hash));
                    hash
                }
            };
            let answer = (
                inner.state.epoch(),
                digest,
                hash,
                inner.history.event_count() as usize,
            );
            (answer, inner.applied)
        };
        self.backend.wait_durable(applied).await?;
        Ok(answer)
    }

    /// The digest after entry `index`, if that entry is durable.
    pub fn digest_after(&self, index: u64) -> Option<[u8; 32]> {
        if index >= self.backend.durable_len() {
            return None;
        }
        let mut guard = self.lock();
        let inner = &mut *guard;
        poison_on(&mut inner.poisoned, inner.history.digest(index))
            .ok()
            .flatten()
    }

    /// Wait until the history of the snapshot this ledger started from has been read (the
    /// ledger serves meanwhile; see [`crate::history`]). Returns when the read ended, if one
    /// was still to be joined, or why the history cannot be read.
    pub fn wait_history(&self) -> Result<Option<std::time::Instant>, String> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        poison_on(&mut inner.poisoned, inner.history.settle())
    }

    /// Events of durable entries: the count after the last durable entry.
    fn durable_event_count(&self, durable_entries: u64) -> u64 {
        let inner = self.lock();
        if durable_entries <= inner.base {
            // Everything up to the snapshot's events (which the snapshot holds).
            return if durable_entries == inner.base {
                inner.base_events
            } else {
                0
            };
        }
        inner
            .events_after
            .get((durable_entries - 1 - inner.base) as usize)
            .copied()
            .unwrap_or(0)
    }

    /// [`Self::try_events`], with none when the history cannot be read (which is logged, and
    /// reported by `/v1/health`).
    pub async fn events(&self, cursor: u64, limit: usize, wait: Duration) -> Vec<Event> {
        self.try_events(cursor, limit, wait)
            .await
            .unwrap_or_default()
    }

    /// Durable events from `cursor`, at most `limit`; waits up to `wait` for the first one.
    /// An acknowledged entry's events are visible here as soon as it is acknowledged. Fails
    /// only if the snapshot's history this ledger started from cannot be read.
    pub async fn try_events(
        &self,
        cursor: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<Event>, SubmitError> {
        let mut watermark = self.backend.watermark_rx();
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
            return Ok(Vec::new());
        }
        // Only the encoded bytes are copied under the lock; they are decoded after it.
        let page = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let events = poison_on(&mut inner.poisoned, inner.history.events())
                .map_err(SubmitError::LogFailed)?;
            let end = durable
                .min(cursor.saturating_add(limit as u64))
                .min(events.len() as u64);
            events.slice(cursor as usize, end as usize)
        };
        Ok(page.to_vec())
    }

    /// Entries applied and entries durable.
    pub fn progress(&self) -> (u64, u64) {
        (self.lock().applied, self.backend.durable_len())
    }

    /// The newest snapshot file: its position and bytes.
    pub async fn newest_snapshot(&self) -> Option<(u64, Vec<u8>)> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || crate::snapshot::newest_bytes(&dir).ok().flatten())
            .await
            .ok()
            .flatten()
    }

    pub fn poisoned(&self) -> Option<String> {
        self.lock().poisoned.clone()
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Step the ledger's rules up to this build's ([`floe_ledger::RULES_VERSION`]) when its
    /// state is older: one `Rules` entry, after which every entry is judged by the new rules.
    /// Returns the entry's index when one was written. A second writer (another replica) gets
    /// `RULES_NOT_NEWER`, which changes nothing.
    pub async fn step_rules(&self) -> Result<Option<u64>, SubmitError> {
        let from = {
            let inner = self.lock();
            if !inner.state.rules_behind() {
                return Ok(None);
            }
            inner.state.rules()
        };
        let version = floe_ledger::RULES_VERSION;
        let accepted = self.submit(LogEntry::Rules { version }).await?;
        tracing::info!(
            from,
            to = version,
            entry = accepted.entry_index,
            "ledger rules stepped up"
        );
        Ok(Some(accepted.entry_index))
    }

    /// Drive the epoch state machine by the clock: fix the next committee half an epoch in,
    /// start the next epoch at its boundary (one step per clock entry, each change completing
    /// before the next starts). Runs until the ledger is dropped. Its first act, retried each tick
    /// until done, is to step the rules up ([`Ledger::step_rules`]) if this ledger's are older
    /// than this build's.
    pub fn spawn_epoch_clock(self: &Arc<Self>, tick: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(ledger) = weak.upgrade() else { return };
                // Once the rules are this build's, this only reads the state. Another replica
                // stepping first, or a stopped ledger (a failed log), is nothing to report.
                match ledger.step_rules().await {
                    Ok(_)
                    | Err(SubmitError::Rejected(TxError::RulesNotNewer { .. }))
                    | Err(SubmitError::LogFailed(_)) => {}
                    Err(e) => tracing::warn!(error = %e, "ledger rules step failed; retrying"),
                }
                drop(ledger);
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
