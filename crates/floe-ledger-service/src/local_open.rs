//! Opening a ledger on the embedded file log: the newest usable snapshot, then the log's tail.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use floe_ledger::{GenesisConfig, LedgerState, LogEntry};
use floe_log::{CommitterOptions, DurableLog, FileLog, GroupCommitter, LogOptions, Replay};

use crate::history::History;
use crate::recent_txs::RecentTxs;
use crate::service::{Backend, Clock, Inner, Ledger, OpenError, OpenStats, REPLAY_WINDOW};

/// How a ledger on the embedded file log keeps its history.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Snapshot the state every this many entries and at each epoch change (0: never).
    pub snapshot_every: u64,
    /// Delete the log's sealed segments that the oldest snapshot kept covers. Off, every
    /// record stays (for example to replay the whole history with `floe ledger replay`).
    pub prune: bool,
    /// The log's options (segment size, largest record).
    pub log: LogOptions,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            snapshot_every: 0,
            prune: true,
            log: LogOptions::default(),
        }
    }
}

/// What the open restored before replaying.
struct Restored {
    state: LedgerState,
    /// Entries the snapshot covers (0: from the genesis).
    start: u64,
    /// The snapshot's history (perhaps still being read).
    history: History,
    /// The snapshot's recent transactions.
    recent: RecentTxs,
}

impl Ledger {
    /// Open (or create) the ledger in `dir` on the embedded file log: load the newest usable
    /// snapshot, then apply the log entries after it.
    pub fn open_local(
        dir: &Path,
        genesis: GenesisConfig,
        clock: Arc<dyn Clock>,
        options: LocalOptions,
    ) -> Result<Arc<Self>, OpenError> {
        let state = LedgerState::genesis(&genesis)?;
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        // Payloads are kept from the newest snapshot's position on (its file name says which);
        // if that snapshot turns out unusable, the log is read again from an earlier one.
        let keep_from = crate::snapshot::newest_seq(dir)?.unwrap_or(0);
        let (mut log, mut replay) = FileLog::open_from(dir, options.log.clone(), keep_from)?;
        let mut log_ms = ms(t);
        let t = Instant::now();
        let restored = restore(dir, state, &log, replay.records)?;
        let snapshot_ms = ms(t);
        if restored.start < replay.first {
            // The newest snapshot was not used: read the log again, keeping what we need.
            let t = Instant::now();
            drop(log);
            (log, replay) = FileLog::open_from(dir, options.log.clone(), restored.start)?;
            log_ms += ms(t);
        }
        let started = Instant::now();
        let (inner, replayed) = apply_tail(restored, &replay)?;
        let open_stats = OpenStats {
            log_ms,
            snapshot_ms,
            replay_ms: ms(started),
            replayed,
        };
        tracing::info!(
            entries = inner.state.entry_count(),
            replayed,
            first_log_entry = log.first_index(),
            events = inner.history.event_count(),
            epoch = inner.state.epoch(),
            log_ms,
            snapshot_ms,
            replay_ms = open_stats.replay_ms,
            "ledger replayed"
        );
        let committer = GroupCommitter::spawn(
            Box::new(log),
            CommitterOptions {
                max_queued_records: 65_536,
                max_queued_bytes: 2 * 1024 * 1024 * 1024,
            },
        )?;
        let pruner = options.prune.then(|| committer.pruner());
        Ok(Arc::new(Self {
            inner: Mutex::new(inner),
            backend: Backend::Local(committer),
            clock,
            genesis,
            snapshot_every: options.snapshot_every,
            dir: dir.to_path_buf(),
            pruner,
            open_stats: Mutex::new(open_stats),
        }))
    }
}

/// The newest snapshot that the durable log covers and continues (one ahead of it, after a
/// crash that lost the log's tail, is not used), or the genesis state when the log still
/// starts at entry 0 and no snapshot fits.
fn restore(
    dir: &Path,
    genesis_state: LedgerState,
    log: &FileLog,
    records: u64,
) -> Result<Restored, OpenError> {
    let first = log.first_index();
    let usable = |seq: u64, chain_head: &[u8; 32], state: &LedgerState| {
        seq <= records && seq >= first && *chain_head == state.digest()
    };
    if let Some(snap) = crate::snapshot::open_newest_where(dir, usable)? {
        tracing::info!(seq = snap.seq, "loaded local snapshot");
        return Ok(Restored {
            state: snap.state,
            start: snap.seq,
            history: snap.history,
            recent: snap.recent,
        });
    }
    if first > 0 {
        return Err(OpenError::Pruned { first });
    }
    if crate::snapshot::newest_seq(dir)?.is_some() {
        tracing::warn!(
            log = records,
            "no snapshot fits the log; replaying from the start"
        );
    }
    Ok(Restored {
        state: genesis_state,
        start: 0,
        history: History::default(),
        recent: RecentTxs::default(),
    })
}

/// Apply the log entries after the restored snapshot; returns the service's state and the
/// number of entries applied.
fn apply_tail(restored: Restored, replay: &Replay) -> Result<(Inner, u64), OpenError> {
    let Restored {
        mut state,
        start,
        mut history,
        mut recent,
    } = restored;
    let tail = &replay.payloads[(start - replay.first) as usize..];
    let base_events = history.event_count();
    let mut events_after = Vec::with_capacity(tail.len());
    for (w, window) in tail.chunks(REPLAY_WINDOW).enumerate() {
        let first = start + (w * REPLAY_WINDOW) as u64;
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
            let evs = crate::guard::apply(&mut state, entry)
                .map_err(|reason| OpenError::Invariant { index, reason })?
                .map_err(|error| OpenError::Diverged { index, error })?;
            history.record(entry, &evs, state.digest());
            events_after.push(history.event_count());
            recent.note_entry(entry, index);
        }
        recent.prune(first + entries.len() as u64);
    }
    // `Inner::new` counts every applied entry; the snapshot covered those before `start`.
    let mut inner = Inner::new(state);
    inner.base = start;
    inner.base_events = base_events;
    inner.history = history;
    inner.events_after = events_after;
    inner.recent_txs = recent;
    Ok((inner, tail.len() as u64))
}
