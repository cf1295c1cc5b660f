//! A ledger replica over the etcd log: append, then apply.
//!
//! Any number of replicas run the same state machine on the same log. A submission goes to this
//! replica's appender (one task, bounded queue, batches of up to [`MAX_BATCH`] records in one
//! compare-and-swap transaction), and is answered once the follower has applied the log up to
//! and including its record. The follower applies records strictly in order after the chain
//! check; a record that does not apply is a recorded rejection, identical on every replica.
//!
//! Every [`ReplicaOptions::snapshot_every`] entries, and after each epoch change, the replica
//! encodes a snapshot at exactly that position, writes it atomically and appends a
//! `Checkpoint {seq, state_root}`. A checkpoint that disagrees with this replica's own root for
//! the same position stops it (divergence). Records below the previous checkpoint are pruned
//! (deleted, and etcd compacted). A replica that finds its next record pruned bootstraps from a
//! peer's snapshot whose root matches a committed checkpoint. A clean stop ([`Ledger::close`])
//! writes a snapshot at the replica's position and lands its checkpoint, so the next start
//! replays no transaction.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use floe_core::Epoch;
use floe_ledger::{EntryDecodeError, GenesisConfig, LedgerState, LogEntry, TxError};
use floe_ledger_etcd::{
    Chain, EtcdLog, EtcdLogConfig, EtcdLogError, Follower, MAX_BATCH, MAX_BATCH_BYTES, Record,
    Writer, hash_parts,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::service::{Accepted, Backend, Clock, Inner, Ledger, OpenError, OpenStats, SubmitError};
use crate::snapshot;

mod snapshots;
use snapshots::{divergence, install, snapshot_holds_window};

/// A replica opening more than this many times `snapshot_every` entries behind the log's end
/// asks its peers for a snapshot first.
pub const PEER_SNAPSHOT_AFTER: u64 = 2;
/// Submissions queued for the appender before "busy".
pub const APPEND_QUEUE: usize = 4096;
/// Longest wait for a submission to land in the log and be applied here.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the appender keeps retrying one batch against an unavailable cluster.
pub const APPEND_RETRY_FOR: Duration = Duration::from_secs(10);
/// Outcomes remembered for answering the submissions that appended them.
pub const MAX_OUTCOMES: usize = 65_536;
/// Longest catch-up before a replica starts serving (it keeps catching up afterwards).
pub const CATCH_UP_BEFORE_SERVING: Duration = Duration::from_secs(120);
/// Own snapshot roots remembered for comparison with checkpoints.
const MAX_OWN_ROOTS: usize = 64;

/// Settings of a replica.
#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    pub etcd: EtcdLogConfig,
    /// Snapshot every this many log entries (and at each epoch change). 0 = never.
    pub snapshot_every: u64,
    /// Delete records below the previous checkpoint and compact etcd.
    pub prune: bool,
    /// Ledger URLs of other replicas, asked for a snapshot when this one needs to bootstrap.
    pub peers: Vec<String>,
}

/// What a replica reports about itself (health).
#[derive(Clone, Debug, Default)]
pub struct ReplicaStatus {
    pub chain_head: [u8; 32],
    pub snapshot_seq: Option<u64>,
    pub snapshot_root: Option<[u8; 32]>,
    pub committed_checkpoint: Option<(u64, [u8; 32])>,
    pub last_error: Option<String>,
    /// Prune passes started since open: one per applied batch that held checkpoints.
    pub prune_passes: u64,
}

/// The appender's answer to one request: the position the record landed at, or why not.
type AppendReply = oneshot::Receiver<Result<u64, String>>;

struct AppendRequest {
    payload: Vec<u8>,
    reply: oneshot::Sender<Result<u64, String>>,
}

struct Shared {
    head: Chain,
    status: ReplicaStatus,
    own_roots: BTreeMap<u64, [u8; 32]>,
    committed: BTreeMap<u64, [u8; 32]>,
    /// The position after the last applied entry that was not a checkpoint (or of a peer's
    /// snapshot installed): a clean stop writes a snapshot when its disk has none this new.
    last_work: u64,
}

/// The replicated backend of a [`Ledger`].
pub(crate) struct Replica {
    log: EtcdLog,
    dir: PathBuf,
    options: ReplicaOptions,
    applied_tx: watch::Sender<u64>,
    applied_rx: watch::Receiver<u64>,
    appender: mpsc::Sender<AppendRequest>,
    appender_rx: Mutex<Option<mpsc::Receiver<AppendRequest>>>,
    shared: Mutex<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Snapshot writes (and their checkpoints) in flight; a clean stop waits for them.
    snapshot_tasks: Mutex<Vec<JoinHandle<Option<AppendReply>>>>,
    /// Hashing the snapshot this replica opened (for its status); a clean stop waits for it.
    opened_root: Mutex<Option<JoinHandle<()>>>,
    /// The ledger this replica belongs to (set once, right after it is built).
    self_ref: Mutex<Weak<Ledger>>,
    /// Set while a pass over the etcd members' free space runs (one at a time).
    defragmenting: Arc<std::sync::atomic::AtomicBool>,
}

/// A member's database is defragmented once at least this much of it is free (and at least
/// half of it): a defragmentation blocks the member while it rewrites the file.
pub const DEFRAG_MIN_BYTES: u64 = 64 << 20;

impl Drop for Replica {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// The hash record 0 names: binds the log to this genesis.
pub fn chain_seed(genesis: &LedgerState) -> [u8; 32] {
    hash_parts(&[b"floe-etcd-chain-seed-v1", &genesis.digest()])
}

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Replica {
    pub(crate) fn applied_len(&self) -> u64 {
        *self.applied_rx.borrow()
    }

    pub(crate) fn watermark(&self) -> watch::Receiver<u64> {
        self.applied_rx.clone()
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn status(&self) -> ReplicaStatus {
        self.shared().status.clone()
    }

    fn set_error(&self, e: Option<String>) {
        self.shared().status.last_error = e;
    }

    /// Append `entry` to the log and answer with its outcome once applied here.
    pub(crate) async fn submit(
        &self,
        ledger: &Ledger,
        entry: LogEntry,
    ) -> Result<Accepted, SubmitError> {
        let bytes = entry.to_bytes();
        if bytes.len() > crate::service::MAX_ENTRY_BYTES {
            return Err(SubmitError::TooLarge(bytes.len()));
        }
        let digest = match &entry {
            LogEntry::Tx(tx) => Some(tx.digest()),
            _ => None,
        };
        if let LogEntry::Tx(tx) = &entry {
            if !tx.verify_signature() {
                return Err(SubmitError::Rejected(TxError::BadSignature));
            }
            let mut inner = ledger.lock();
            if let Some(reason) = &inner.poisoned {
                return Err(SubmitError::LogFailed(reason.clone()));
            }
            if let Some(done) = digest.and_then(|d| inner.accepted_outcome(&d)) {
                return Ok(done); // a retry of an applied transaction
            }
            let next = inner.state.next_sequence(&tx.sender_address());
            if tx.tx.sequence < next {
                return Err(SubmitError::Rejected(TxError::BadSequence {
                    expected: next,
                    got: tx.tx.sequence,
                }));
            }
        }
        let check = ledger.lock().state.certificate_check(&entry);
        if let Some(check) = check
            && let Ok(Some(key)) = tokio::task::spawn_blocking(move || check.run()).await
        {
            ledger.lock().state.record_verified(key);
        }
        let (reply, rx) = oneshot::channel();
        self.appender
            .try_send(AppendRequest {
                payload: bytes,
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SubmitError::Busy(APPEND_QUEUE as u64),
                mpsc::error::TrySendError::Closed(_) => {
                    SubmitError::LogFailed("the appender stopped".into())
                }
            })?;
        let seq = match tokio::time::timeout(SUBMIT_TIMEOUT, rx).await {
            Ok(Ok(Ok(seq))) => seq,
            Ok(Ok(Err(e))) => return Err(SubmitError::Unavailable(e)),
            Ok(Err(_)) => return Err(SubmitError::LogFailed("the appender stopped".into())),
            Err(_) => {
                return Err(SubmitError::Unavailable(format!(
                    "not appended within {SUBMIT_TIMEOUT:?}"
                )));
            }
        };
        if !ledger.wait_applied(seq + 1, SUBMIT_TIMEOUT).await {
            return Err(SubmitError::Unavailable(format!(
                "entry {seq} is in the log but was not applied here within {SUBMIT_TIMEOUT:?}"
            )));
        }
        let mut inner = ledger.lock();
        if let Some(reason) = &inner.poisoned {
            return Err(SubmitError::LogFailed(reason.clone()));
        }
        match inner.outcomes.get(&seq).cloned() {
            Some(Ok(accepted)) => Ok(accepted),
            Some(Err(e)) => {
                // A duplicate of an accepted transaction (two replicas appended it) answers
                // with the first outcome.
                if let Some(done) = digest.and_then(|d| inner.accepted_outcome(&d)) {
                    return Ok(done);
                }
                Err(SubmitError::Rejected(e))
            }
            None => Err(SubmitError::Unavailable(format!(
                "the outcome of entry {seq} is no longer held"
            ))),
        }
    }
}

impl Ledger {
    /// Open a replica over the etcd log described by `options`, with snapshots in `dir`.
    /// Restarts from the newest local snapshot and catches up from the log (or from a peer's
    /// snapshot when the records it needs were pruned) before returning.
    pub async fn open_replicated(
        dir: &std::path::Path,
        genesis: GenesisConfig,
        clock: Arc<dyn Clock>,
        options: ReplicaOptions,
    ) -> Result<Arc<Self>, OpenError> {
        let started = std::time::Instant::now();
        let genesis_state = LedgerState::genesis(&genesis)?;
        let seed = chain_seed(&genesis_state);
        let mut inner = Inner::new(genesis_state);
        let mut head = Chain::new(0, seed);
        let mut status = ReplicaStatus::default();
        // Opened as the embedded ledger opens its own: the state's sections now, the history
        // on a thread of its own, the file's root (a hash of every byte) in the background.
        let mut opened = None;
        let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1e3;
        let t = std::time::Instant::now();
        if let Some(snap) = snapshot::open_newest_where(dir, |_, _, _| true)? {
            tracing::info!(seq = snap.seq, "opened local snapshot");
            status.snapshot_seq = Some(snap.seq);
            head = Chain::new(snap.seq, snap.chain_head);
            opened = Some((snap.seq, snap.path.clone()));
            install(&mut inner, snap.seq, snap.state, snap.history, snap.recent);
        }
        status.chain_head = head.head;
        let snapshot_ms = ms(t);
        let t = std::time::Instant::now();
        let log = EtcdLog::connect(&options.etcd).await?;
        let (applied_tx, applied_rx) = watch::channel(inner.applied);
        let (appender, appender_rx) = mpsc::channel(APPEND_QUEUE);
        let ledger = Arc::new(Ledger {
            inner: Mutex::new(inner),
            backend: Backend::Replicated(Box::new(Replica {
                log: log.clone(),
                dir: dir.to_path_buf(),
                options,
                applied_tx,
                applied_rx,
                appender,
                appender_rx: Mutex::new(Some(appender_rx)),
                shared: Mutex::new(Shared {
                    head,
                    status,
                    own_roots: BTreeMap::new(),
                    committed: BTreeMap::new(),
                    last_work: head.next_seq,
                }),
                tasks: Mutex::new(Vec::new()),
                snapshot_tasks: Mutex::new(Vec::new()),
                opened_root: Mutex::new(None),
                self_ref: Mutex::new(Weak::new()),
                defragmenting: Arc::default(),
            })),
            clock,
            genesis,
            snapshot_every: 0,
            dir: dir.to_path_buf(),
            pruner: None,
            open_stats: Mutex::default(),
        });
        *ledger
            .replica()
            .self_ref
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(&ledger);
        // Catch up before serving: to the log's end as it was when we started (a busy log
        // keeps growing; the follower task takes over from there).
        let target = log.bounds().await?.map_or(0, |(_, next)| next);
        let log_ms = ms(t);
        // Far behind a log that still holds the entries (a new replica, or one back from a long
        // stop): a peer's verified snapshot is one request instead of a long replay.
        let mut from_peer = None;
        let far_behind = {
            let o = &ledger.replica().options;
            !o.peers.is_empty()
                && o.snapshot_every > 0
                && target.saturating_sub(ledger.progress().0)
                    > PEER_SNAPSHOT_AFTER * o.snapshot_every
        };
        if far_behind {
            match ledger.peer_snapshot_ahead().await {
                Ok(follower) => from_peer = Some(follower),
                Err(why) => tracing::info!(%why, "replaying the log: no peer snapshot taken"),
            }
        }
        let (t, from) = (std::time::Instant::now(), ledger.progress().0);
        let mut follower = from_peer.unwrap_or_else(|| log.follow(head));
        let deadline = tokio::time::Instant::now() + CATCH_UP_BEFORE_SERVING;
        while ledger.progress().0 < target && tokio::time::Instant::now() < deadline {
            match follower.next(Duration::from_millis(50)).await {
                Ok(records) if records.is_empty() => break,
                Ok(records) => ledger.apply_records(&records),
                Err(EtcdLogError::Pruned { .. }) => {
                    follower = ledger.bootstrap_from_peer().await?;
                }
                Err(e @ EtcdLogError::Chain(_)) => return Err(e.into()),
                // One member down (a connection refused, a timeout) must not stop a replica
                // from starting while a majority serves: retry until the catch-up deadline,
                // then serve and let the follower task go on retrying.
                Err(e) => {
                    tracing::warn!(error = %e, "catching up: etcd did not answer; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let (applied, _) = ledger.progress();
        *ledger.open_stats.lock().unwrap_or_else(|e| e.into_inner()) = OpenStats {
            log_ms,
            snapshot_ms,
            replay_ms: ms(t),
            replayed: applied.saturating_sub(from),
        };
        tracing::info!(
            applied,
            ms = started.elapsed().as_millis() as u64,
            "replica caught up"
        );
        // Only now: on two cores, hashing every byte of the file beside the catch-up (and the
        // history's decoding) slowed the restart by a third at 20k blobs.
        if let Some((seq, path)) = opened {
            ledger.spawn_opened_root(seq, path);
        }
        let replica = ledger.replica();
        let rx = replica
            .appender_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("the appender starts once");
        let a = tokio::spawn(run_appender(Arc::downgrade(&ledger), log.clone(), rx));
        let f = tokio::spawn(run_follower(Arc::downgrade(&ledger), follower));
        replica
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([a, f]);
        Ok(ledger)
    }

    pub(crate) fn replica(&self) -> &Replica {
        match &self.backend {
            Backend::Replicated(r) => r,
            Backend::Local(_) => unreachable!("only called on replicas"),
        }
    }

    /// The replica's status, if this ledger is a replica.
    pub fn replica_status(&self) -> Option<ReplicaStatus> {
        match &self.backend {
            Backend::Replicated(r) => Some(r.status()),
            Backend::Local(_) => None,
        }
    }

    /// Wait until at least `count` log entries are applied (bounded by `limit`).
    pub async fn wait_applied(&self, count: u64, limit: Duration) -> bool {
        let mut rx = self.backend.watermark_rx();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if *rx.borrow_and_update() >= count {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return *rx.borrow() >= count,
            }
        }
    }

    /// Apply chain-checked records in order.
    fn apply_records(&self, records: &[Record]) {
        let replica = self.replica();
        let every = replica.options.snapshot_every;
        let mut pending = Vec::new();
        let mut checkpoints = Vec::new();
        let mut last_work = None;
        {
            let mut inner = self.lock();
            if inner.poisoned.is_some() {
                return;
            }
            let entries: Vec<Result<LogEntry, EntryDecodeError>> = records
                .iter()
                .map(|r| LogEntry::from_bytes(&r.payload))
                .collect();
            let decoded: Vec<LogEntry> = entries.iter().flatten().cloned().collect();
            inner.state.preverify(&decoded);
            for (record, entry) in records.iter().zip(entries) {
                debug_assert_eq!(record.seq, inner.applied);
                let epoch_before: Epoch = inner.state.epoch();
                if !matches!(entry, Ok(LogEntry::Checkpoint { .. })) {
                    last_work = Some(record.seq + 1);
                }
                let outcome = match entry {
                    // Written by a newer build: skipping it would go on under older rules
                    // than the replicas that apply it, so this replica stops instead.
                    Err(e) if e.is_from_newer_build() => {
                        let reason = format!("log record {}: {e}", record.seq);
                        tracing::error!(%reason, "replica stopped");
                        inner.poisoned = Some(reason);
                        break;
                    }
                    Err(_) => Err(TxError::Undecodable(format!("record {}", record.seq))),
                    Ok(LogEntry::Checkpoint { seq, state_root }) => {
                        checkpoints.push((seq, state_root));
                        Ok(Vec::new())
                    }
                    Ok(e) => {
                        let r = match crate::guard::apply(&mut inner.state, &e) {
                            Ok(r) => r,
                            Err(reason) => {
                                tracing::error!(%reason, seq = record.seq, "replica stopped");
                                inner.poisoned = Some(reason);
                                break;
                            }
                        };
                        if let Ok(events) = &r {
                            inner.history.note_certificate(&e, events);
                        }
                        if r.is_ok() {
                            inner.recent_txs.note_entry(&e, record.seq);
                        }
                        r
                    }
                };
                let digest = inner.state.digest();
                let outcome = outcome.map(|events| {
                    inner.history.extend_events(&events);
                    Accepted {
                        entry_index: record.seq,
                        events,
                        digest,
                    }
                });
                let count = inner.history.event_count();
                inner.events_after.push(count);
                inner.history.push_digest(digest);
                inner.applied = record.seq + 1;
                inner.outcomes.insert(record.seq, outcome);
                while inner.outcomes.len() > MAX_OUTCOMES {
                    inner.outcomes.pop_first();
                }
                let applied = inner.applied;
                inner.recent_txs.prune(applied);
                let epoch_changed = inner.state.epoch() != epoch_before;
                if ((every > 0 && applied.is_multiple_of(every)) || epoch_changed)
                    && snapshot_holds_window(&inner)
                {
                    // The history may still be loading from the snapshot this replica
                    // opened: `snapshot_at` waits for it, and a damaged one stops the
                    // replica, as it stops the embedded ledger.
                    match inner.snapshot_at(record.hash()) {
                        Ok(sections) => pending.push(sections),
                        Err(reason) => {
                            tracing::error!(%reason, "no snapshot taken; replica stopped");
                            break;
                        }
                    }
                }
            }
            let mut shared = replica.shared();
            if let Some(seq) = last_work {
                shared.last_work = shared.last_work.max(seq.min(inner.applied));
            }
            // The last record applied (all of them, unless a violated invariant stopped us).
            if let Some(last) = records.iter().rfind(|r| r.seq < inner.applied) {
                shared.head = Chain::new(last.seq + 1, last.hash());
                shared.status.chain_head = last.hash();
            }
            for (seq, root) in &checkpoints {
                let first = *shared.committed.entry(*seq).or_insert(*root);
                // This replica's own root at `seq`, if its snapshot was hashed already (if
                // not, `record_own_root` compares when it is).
                if let Some(own) = shared.own_roots.get(seq)
                    && let Some(reason) = divergence(*seq, own, &first)
                {
                    inner.poisoned = Some(reason);
                }
                if shared
                    .status
                    .committed_checkpoint
                    .is_none_or(|(s, _)| s < *seq)
                {
                    shared.status.committed_checkpoint = Some((*seq, first));
                }
                while shared.committed.len() > MAX_OWN_ROOTS {
                    shared.committed.pop_first();
                }
            }
            let _ = replica.applied_tx.send(inner.applied);
        }
        for p in pending {
            self.spawn_snapshot_write(p);
        }
        if replica.options.prune {
            // Pruning below the newest checkpoint of the batch covers the older ones: one
            // task, not one per checkpoint (a catch-up may apply dozens of them at once).
            if let Some(seq) = checkpoints.iter().map(|(seq, _)| *seq).max() {
                // Keep one snapshot interval below the newest checkpoint, for replicas a
                // little behind; older records are only needed by replicas that can bootstrap.
                let below = seq.saturating_sub(every.max(1));
                if below > 0 {
                    replica.shared().status.prune_passes += 1;
                    let log = replica.log.clone();
                    let busy = replica.defragmenting.clone();
                    tokio::spawn(async move {
                        if let Err(e) = log.prune_below(below).await {
                            tracing::debug!(error = %e, below, "prune skipped");
                            return;
                        }
                        // Then give the space back, member by member (see `defragment_members`).
                        use std::sync::atomic::Ordering;
                        if busy.swap(true, Ordering::AcqRel) {
                            return;
                        }
                        if let Err(e) = log.defragment_members(DEFRAG_MIN_BYTES).await {
                            tracing::warn!(error = %e, "defragmenting etcd members failed");
                        }
                        busy.store(false, Ordering::Release);
                    });
                }
            }
        }
    }

    fn weak(&self) -> Weak<Ledger> {
        // The tasks hold `Weak`s made from the `Arc` at open; this ledger is always in one.
        self.replica()
            .self_ref
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

async fn run_follower(weak: Weak<Ledger>, mut follower: Follower) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let result = follower.next(Duration::from_millis(500)).await;
        let Some(ledger) = weak.upgrade() else { return };
        match result {
            Ok(records) => {
                backoff = Duration::from_millis(100);
                if !records.is_empty() {
                    ledger.apply_records(&records);
                    ledger.replica().set_error(None);
                }
            }
            Err(EtcdLogError::Pruned { next, oldest }) => {
                tracing::warn!(next, oldest, "fell behind a compaction; bootstrapping");
                match ledger.bootstrap_from_peer().await {
                    Ok(f) => follower = f,
                    Err(e) => ledger.replica().set_error(Some(e.to_string())),
                }
            }
            Err(EtcdLogError::Chain(e)) => {
                let reason = format!("the replicated log is corrupt: {e}");
                tracing::error!(%reason, "replica stopped applying");
                ledger.lock().poisoned = Some(reason);
                return;
            }
            Err(e) => {
                ledger.replica().set_error(Some(e.to_string()));
                drop(ledger);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn run_appender(weak: Weak<Ledger>, log: EtcdLog, mut rx: mpsc::Receiver<AppendRequest>) {
    let start = match weak.upgrade() {
        Some(l) => l.replica().shared().head,
        None => return,
    };
    let mut writer = Writer::new(log, start);
    let mut carry: Option<AppendRequest> = None;
    loop {
        let first = match carry.take() {
            Some(r) => r,
            None => match rx.recv().await {
                Some(r) => r,
                None => return,
            },
        };
        let mut bytes = first.payload.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) if bytes + r.payload.len() + 64 * batch.len() > MAX_BATCH_BYTES / 2 => {
                    carry = Some(r);
                    break;
                }
                Ok(r) => {
                    bytes += r.payload.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let payloads: Vec<Vec<u8>> = batch.iter().map(|r| r.payload.clone()).collect();
        let mut landed: Vec<u64> = Vec::with_capacity(batch.len());
        let deadline = tokio::time::Instant::now() + APPEND_RETRY_FOR;
        let mut backoff = Duration::from_millis(50);
        let mut last_error = String::new();
        while landed.len() < payloads.len() {
            match weak.upgrade() {
                Some(l) => writer.advance_to(l.replica().shared().head),
                None => return,
            }
            match writer.append(&payloads[landed.len()..]).await {
                Ok(seqs) => landed.extend(seqs),
                Err(e) => {
                    landed.extend(e.done);
                    last_error = e.error.to_string();
                    if tokio::time::Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        for (i, req) in batch.into_iter().enumerate() {
            let _ =
                req.reply.send(landed.get(i).copied().ok_or_else(|| {
                    format!("etcd unavailable for {APPEND_RETRY_FOR:?}: {last_error}")
                }));
        }
    }
}
