//! A replica's snapshots: written and checkpointed outside the state lock, their roots
//! compared with the committed checkpoints, and taken from a peer to bootstrap.

use std::time::Duration;

use floe_ledger::LogEntry;
use floe_ledger_etcd::{Chain, EtcdLog, Follower};
use tokio::sync::oneshot;

use super::{AppendRequest, MAX_OWN_ROOTS, hex};
use crate::service::{Inner, Ledger, OpenError};
use crate::snapshot::{self, Snapshot};

/// A snapshot's sections encoded at one position under the lock; joined, hashed for its root,
/// written and checkpointed outside it.
pub(super) struct PendingSnapshot {
    pub(super) sections: snapshot::EncodedSnapshot,
}

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
    pub(super) fn spawn_snapshot_write(&self, p: PendingSnapshot) {
        let replica = self.replica();
        let dir = replica.dir.clone();
        let appender = replica.appender.clone();
        let weak = self.weak();
        tokio::spawn(async move {
            let seq = p.sections.seq();
            // Joining and hashing the file grow with the history: both run here, not under
            // the state lock (`apply_records` only encodes the sections).
            let hashed = tokio::task::spawn_blocking(move || {
                let bytes = p.sections.to_bytes();
                let root = snapshot::root_of(&bytes);
                (bytes, root)
            })
            .await;
            let Ok((bytes, root)) = hashed else { return };
            match weak.upgrade() {
                Some(l) => l.record_own_root(seq, root),
                None => return,
            }
            let written =
                tokio::task::spawn_blocking(move || snapshot::write_atomic(&dir, seq, &bytes))
                    .await;
            match written {
                Ok(Ok(written)) => {
                    tracing::info!(seq, root = %hex(&root), file = %written.path.display(), "snapshot written");
                    if let Some(l) = weak.upgrade() {
                        let mut shared = l.replica().shared();
                        shared.status.snapshot_seq = Some(seq);
                        shared.status.snapshot_root = Some(root);
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(seq, error = %e, "snapshot write failed");
                    return;
                }
                Err(_) => return,
            }
            let entry = LogEntry::Checkpoint {
                seq,
                state_root: root,
            };
            let (reply, _rx) = oneshot::channel();
            let _ = appender.try_send(AppendRequest {
                payload: entry.to_bytes(),
                reply,
            });
        });
    }

    /// Hash the snapshot file opened at `seq` for its root, in the background: a restart
    /// does not wait for a hash of every byte of the file. The status shows the root once it
    /// is known, unless a newer snapshot was written meanwhile.
    pub(super) fn spawn_opened_root(&self, seq: u64, path: std::path::PathBuf) {
        let weak = self.weak();
        tokio::task::spawn_blocking(move || {
            let root = match std::fs::read(&path) {
                Ok(bytes) => snapshot::root_of(&bytes),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot hash the opened snapshot");
                    return;
                }
            };
            if let Some(l) = weak.upgrade() {
                let mut shared = l.replica().shared();
                if shared.status.snapshot_seq == Some(seq) && shared.status.snapshot_root.is_none()
                {
                    shared.status.snapshot_root = Some(root);
                }
            }
        });
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
    pub(super) async fn bootstrap_from_peer(&self) -> Result<Follower, OpenError> {
        let replica = self.replica();
        let http =
            floe_tls::http_client(reqwest::Client::builder().timeout(Duration::from_secs(30)))
                .map_err(|e| OpenError::Bootstrap(e.to_string()))?;
        let mut last = String::from("no peers given (--peers)");
        for round in 0..30 {
            for peer in &replica.options.peers {
                match fetch_verified(&http, &replica.log, peer).await {
                    Ok((snap, root)) => {
                        tracing::info!(peer, seq = snap.seq, root = %hex(&root), "bootstrapped from a peer's snapshot");
                        let head = Chain::new(snap.seq, snap.chain_head);
                        {
                            let mut inner = self.lock();
                            let mut shared = replica.shared();
                            shared.head = head;
                            shared.status.chain_head = head.head;
                            shared.status.snapshot_seq = Some(snap.seq);
                            shared.status.snapshot_root = Some(root);
                            install_decoded(&mut inner, snap);
                            let _ = replica.applied_tx.send(inner.applied);
                        }
                        return Ok(replica.log.follow(head));
                    }
                    Err(e) => last = format!("{peer}: {e}"),
                }
            }
            tracing::warn!(round, %last, "no verifiable peer snapshot yet");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(OpenError::Bootstrap(last))
    }
}

/// Replace the state with a snapshot's at `seq` (all positions before it are covered by it);
/// its history may still be being read (a restart's, see [`crate::history`]).
pub(super) fn install(
    inner: &mut Inner,
    seq: u64,
    state: floe_ledger::LedgerState,
    history: crate::history::History,
) {
    inner.base = seq;
    inner.applied = seq;
    inner.base_events = history.event_count();
    inner.state = state;
    inner.history = history;
    inner.events_after.clear();
    inner.outcomes.clear();
    inner.accepted_txs.clear();
    inner.accepted_order.clear();
}

/// [`install`] a snapshot decoded whole (a peer's).
fn install_decoded(inner: &mut Inner, snap: Snapshot) {
    let history = crate::history::History::from_parts(crate::snapshot::HistoryParts {
        events: snap.events,
        digests: snap.digests,
        certificates: snap.certificates,
    });
    install(inner, snap.seq, snap.state, history);
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
