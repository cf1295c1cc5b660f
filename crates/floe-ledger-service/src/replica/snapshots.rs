//! A replica's snapshots: written and checkpointed outside the state lock, their roots
//! compared with the committed checkpoints, and taken from a peer to bootstrap.

use std::time::Duration;

use floe_ledger::LogEntry;
use floe_ledger_etcd::{Chain, EtcdLog, Follower};
use tokio::sync::oneshot;

use super::{AppendReply, AppendRequest, MAX_OWN_ROOTS, hex};
use crate::service::{Inner, Ledger, OpenError, SubmitError};
use crate::snapshot::{self, EncodedSnapshot, Snapshot};

/// Why the replica stops if its own snapshot root at `seq` is not the committed one.
pub(super) fn divergence(seq: u64, own: &[u8; 32], committed: &[u8; 32]) -> Option<String> {
    (own != committed).then(|| {
        let reason = format!(
            "divergence: this replica's snapshot root at {seq} is {}, the committed checkpoint says {}",
            hex(own),
            hex(committed)
        );
        tracing::error!(%reason, "replica stopped");
        reason
    })
}

impl Ledger {
    pub(super) fn spawn_snapshot_write(&self, p: EncodedSnapshot) {
        let task = tokio::spawn(write_and_checkpoint(self.weak(), p));
        let mut tasks = self
            .replica()
            .snapshot_tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// A replica's clean stop: wait (bounded) for its background work, then, if anything but
    /// checkpoints was applied after the newest snapshot on disk, write one at the applied
    /// position and wait (bounded) for its checkpoint to land in the log. The next start then
    /// replays only checkpoints, not up to `snapshot_every` transactions whose certificates
    /// would all be verified again. Returns the final snapshot's position.
    pub(crate) async fn close_replica(&self) -> Result<Option<u64>, SubmitError> {
        self.wait_background(tokio::time::Instant::now() + CLOSE_WAIT)
            .await;
        if self.replica().options.snapshot_every == 0 {
            return Ok(None);
        }
        let Some(pending) = self.final_snapshot()? else {
            return Ok(None);
        };
        let seq = pending.seq();
        let Some(rx) = write_and_checkpoint(self.weak(), pending).await else {
            return Err(SubmitError::LogFailed(format!(
                "the final snapshot at {seq} was not written"
            )));
        };
        match tokio::time::timeout(CLOSE_WAIT, rx).await {
            Ok(Ok(Ok(at))) => tracing::info!(seq, at, "final snapshot written and checkpointed"),
            other => tracing::warn!(
                seq,
                answer = ?other.map(|r| r.ok()),
                "final snapshot written; its checkpoint did not land (peers cannot bootstrap from it until the next one)"
            ),
        }
        Ok(Some(seq))
    }

    /// Wait until `deadline` for the hash of the opened snapshot and the snapshot writes in
    /// flight (with their checkpoints' appends queued).
    async fn wait_background(&self, deadline: tokio::time::Instant) {
        let replica = self.replica();
        let opened = replica
            .opened_root
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let writes: Vec<_> = std::mem::take(
            &mut *replica
                .snapshot_tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if let Some(t) = opened
            && tokio::time::timeout_at(deadline, t).await.is_err()
        {
            tracing::warn!("hashing the opened snapshot outlived the clean stop's wait");
        }
        for t in writes {
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                tracing::warn!("a snapshot write outlived the clean stop's wait");
            }
        }
    }

    /// The sections of a snapshot at the applied position, unless the newest one on disk
    /// already covers every entry but checkpoints.
    fn final_snapshot(&self) -> Result<Option<EncodedSnapshot>, SubmitError> {
        let replica = self.replica();
        let newest = snapshot::newest_seq(&replica.dir)
            .map_err(|e| SubmitError::LogFailed(format!("cannot list snapshots: {e}")))?;
        let mut inner = self.lock();
        if let Some(reason) = &inner.poisoned {
            return Err(SubmitError::LogFailed(reason.clone()));
        }
        let shared = replica.shared();
        if newest.unwrap_or(0) >= shared.last_work
            || inner.applied == 0
            || !snapshot_holds_window(&inner)
        {
            return Ok(None);
        }
        if shared.head.next_seq != inner.applied {
            return Err(SubmitError::LogFailed(format!(
                "no final snapshot: the chain head is at {}, the state at {}",
                shared.head.next_seq, inner.applied
            )));
        }
        inner
            .snapshot_at(shared.head.head)
            .map(Some)
            .map_err(SubmitError::LogFailed)
    }

    /// Hash the snapshot file opened at `seq` for its root, in the background: a restart
    /// does not wait for a hash of every byte of the file. The status shows the root once it
    /// is known, unless a newer snapshot was written meanwhile.
    pub(super) fn spawn_opened_root(&self, seq: u64, path: std::path::PathBuf) {
        let weak = self.weak();
        let task = tokio::task::spawn_blocking(move || {
            let root = match snapshot::root_of_file(&path) {
                Ok(root) => root,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot hash the opened snapshot");
                    return;
                }
            };
            if let Some(l) = weak.upgrade() {
                // A committed checkpoint at `seq` (its own, from before the restart, or a
                // peer's) now checks the file this replica restarted from.
                l.record_own_root(seq, root);
                let mut shared = l.replica().shared();
                if shared.status.snapshot_seq == Some(seq) && shared.status.snapshot_root.is_none()
                {
                    shared.status.snapshot_root = Some(root);
                }
            }
        });
        *self
            .replica()
            .opened_root
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// Note this replica's snapshot root at `seq` and compare it with the committed checkpoint
    /// at `seq`, if one was applied already; a difference stops the replica.
    fn record_own_root(&self, seq: u64, root: [u8; 32]) {
        // The state lock first, then the shared status: the order `apply_records` takes them.
        let mut inner = self.lock();
        let mut shared = self.replica().shared();
        shared.own_roots.insert(seq, root);
        while shared.own_roots.len() > MAX_OWN_ROOTS {
            shared.own_roots.pop_first();
        }
        if inner.poisoned.is_none()
            && let Some(committed) = shared.committed.get(&seq)
            && let Some(reason) = divergence(seq, &root, committed)
        {
            inner.poisoned = Some(reason);
        }
    }

    /// Fetch a peer's snapshot, check its root against a committed checkpoint, install it.
    /// Tries every peer once a second, for up to 30 rounds.
    pub(super) async fn bootstrap_from_peer(&self) -> Result<Follower, OpenError> {
        let replica = self.replica();
        let http = peer_client(Duration::from_secs(30)).map_err(OpenError::Bootstrap)?;
        let mut last = String::from("no peers given (--peers)");
        for round in 0..30 {
            for peer in &replica.options.peers {
                match fetch_verified(&http, &replica.log, peer).await {
                    Ok((snap, root)) => {
                        tracing::info!(peer, seq = snap.seq, root = %hex(&root), "bootstrapped from a peer's snapshot");
                        return Ok(self.install_peer_snapshot(snap, root));
                    }
                    Err(e) => last = format!("{peer}: {e}"),
                }
            }
            tracing::warn!(round, %last, "no verifiable peer snapshot yet");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(OpenError::Bootstrap(last))
    }

    /// Ask each peer once (each within [`PEER_SNAPSHOT_TIMEOUT`]) for a verified snapshot ahead
    /// of this replica and install the first: the way to skip replaying a long stretch of log
    /// that is still there. `Err` says why none was taken; the caller then replays.
    pub(super) async fn peer_snapshot_ahead(&self) -> Result<Follower, String> {
        let replica = self.replica();
        let http = peer_client(PEER_SNAPSHOT_TIMEOUT)?;
        let mut why = Vec::new();
        for peer in &replica.options.peers {
            match fetch_verified(&http, &replica.log, peer).await {
                Ok((snap, root)) if snap.seq > self.progress().0 => {
                    tracing::info!(peer, seq = snap.seq, root = %hex(&root), "far behind: started from a peer's snapshot instead of replaying");
                    return Ok(self.install_peer_snapshot(snap, root));
                }
                Ok((snap, _)) => why.push(format!(
                    "{peer}: its snapshot at {} is not ahead of this replica",
                    snap.seq
                )),
                Err(e) => why.push(format!("{peer}: {e}")),
            }
        }
        Err(why.join("; "))
    }

    /// Make a verified peer snapshot this replica's state; the log is followed from there.
    fn install_peer_snapshot(&self, snap: Snapshot, root: [u8; 32]) -> Follower {
        let replica = self.replica();
        let head = Chain::new(snap.seq, snap.chain_head);
        {
            let mut inner = self.lock();
            let mut shared = replica.shared();
            shared.head = head;
            // Not on this replica's disk: a clean stop writes it.
            shared.last_work = snap.seq;
            shared.status.chain_head = head.head;
            shared.status.snapshot_seq = Some(snap.seq);
            shared.status.snapshot_root = Some(root);
            install_decoded(&mut inner, snap);
            let _ = replica.applied_tx.send(inner.applied);
        }
        replica.log.follow(head)
    }
}

/// How long a replica that could replay instead waits for each peer's snapshot.
pub(super) const PEER_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(5);

fn peer_client(timeout: Duration) -> Result<reqwest::Client, String> {
    floe_tls::http_client(reqwest::Client::builder().timeout(timeout)).map_err(|e| e.to_string())
}

/// Longest a clean stop waits for snapshot writes, and for its final checkpoint to land.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// Join and hash a snapshot's sections for its root (not under the state lock: both grow with
/// the history), compare the root with a committed checkpoint, write the file, and append its
/// checkpoint. `None` if it was not written; else the append's answer.
async fn write_and_checkpoint(
    weak: std::sync::Weak<Ledger>,
    p: EncodedSnapshot,
) -> Option<AppendReply> {
    let seq = p.seq();
    let (bytes, root) = tokio::task::spawn_blocking(move || {
        let bytes = p.to_bytes();
        let root = snapshot::root_of(&bytes);
        (bytes, root)
    })
    .await
    .ok()?;
    let (dir, appender) = {
        let l = weak.upgrade()?;
        l.record_own_root(seq, root);
        let replica = l.replica();
        (replica.dir.clone(), replica.appender.clone())
    };
    match tokio::task::spawn_blocking(move || snapshot::write_atomic(&dir, seq, &bytes)).await {
        Ok(Ok(written)) => {
            tracing::info!(seq, root = %hex(&root), file = %written.path.display(), "snapshot written");
            let l = weak.upgrade()?;
            let mut shared = l.replica().shared();
            shared.status.snapshot_seq = Some(seq);
            shared.status.snapshot_root = Some(root);
        }
        Ok(Err(e)) => {
            tracing::warn!(seq, error = %e, "snapshot write failed");
            return None;
        }
        Err(_) => return None,
    }
    let entry = LogEntry::Checkpoint {
        seq,
        state_root: root,
    };
    let (reply, rx) = oneshot::channel();
    let _ = appender.try_send(AppendRequest {
        payload: entry.to_bytes(),
        reply,
    });
    Some(rx)
}

/// Replace the state with a snapshot's at `seq` (all positions before it are covered by it);
/// its history may still be being read (a restart's, see [`crate::history`]).
pub(super) fn install(
    inner: &mut Inner,
    seq: u64,
    state: floe_ledger::LedgerState,
    history: crate::history::History,
    recent: crate::recent_txs::RecentTxs,
) {
    inner.base = seq;
    inner.applied = seq;
    inner.base_events = history.event_count();
    inner.state = state;
    inner.history = history;
    inner.events_after.clear();
    inner.outcomes.clear();
    inner.recent_txs = recent;
}

/// Whether a snapshot at the applied position holds the table of recent transactions that
/// every other replica's at that position holds. Not for one window of entries after this
/// replica installed a snapshot of format 11 or older, which had no table: such a snapshot is
/// not written (its root would disagree with the committed one); the peers write theirs.
pub(super) fn snapshot_holds_window(inner: &Inner) -> bool {
    let complete = inner.recent_txs.complete_at(inner.applied);
    if !complete {
        tracing::warn!(
            applied = inner.applied,
            window = crate::recent_txs::RETRY_WINDOW,
            "no snapshot written here: this replica opened a snapshot without recent transactions, and does not know all of the window's yet"
        );
    }
    complete
}

/// [`install`] a snapshot decoded whole (a peer's).
fn install_decoded(inner: &mut Inner, snap: Snapshot) {
    let history = crate::history::History::from_parts(crate::snapshot::HistoryParts {
        events: snap.events,
        digests: snap.digests,
        certificates: snap.certificates,
    });
    install(inner, snap.seq, snap.state, history, snap.recent);
}

async fn fetch_verified(
    http: &reqwest::Client,
    log: &EtcdLog,
    peer: &str,
) -> Result<(Snapshot, [u8; 32]), String> {
    let url = format!("{}/v1/snapshot", peer.trim_end_matches('/'));
    let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("{url} answered {}", resp.status()));
    }
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    let snap = snapshot::decode(&bytes).map_err(|e| e.to_string())?;
    let root = snapshot::root_of(&bytes);
    // The committed checkpoint for this position follows it in the log.
    let (records, _) = log.read_from(snap.seq).await.map_err(|e| e.to_string())?;
    let committed = records
        .iter()
        .find_map(|r| match LogEntry::from_bytes(&r.payload) {
            Ok(LogEntry::Checkpoint { seq, state_root }) if seq == snap.seq => Some(state_root),
            _ => None,
        });
    match committed {
        Some(committed) if committed == root => Ok((snap, root)),
        Some(committed) => Err(format!(
            "snapshot at {} has root {}, the log committed {}",
            snap.seq,
            hex(&root),
            hex(&committed)
        )),
        None => Err(format!(
            "no committed checkpoint for the snapshot at {} yet",
            snap.seq
        )),
    }
}
