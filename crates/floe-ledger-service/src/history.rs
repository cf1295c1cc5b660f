//! The ledger's history beside its state: every event, the running digest after every entry,
//! each certified blob's first certificate.
//!
//! Applying an entry only appends to it, and nothing in the state depends on it, so a restart
//! does not wait for it: the state is loaded from the snapshot, the ledger starts serving, and
//! the snapshot's history is read and checked on another thread meanwhile. Until it arrives,
//! [`History`] holds what was appended since the snapshot, and the counts the snapshot's header
//! gave. The first read of anything older waits for it ([`History::settle`]).
//!
//! A snapshot whose history turns out damaged is renamed (`….damaged`) so that the next start
//! uses the previous snapshot and the log after it, and the ledger stops accepting writes
//! with a reason that says to restart: nothing is lost, since the log is kept from the oldest
//! snapshot kept.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Instant;

use floe_ledger::{Event, LogEntry};

use crate::certificates::{Certificates, StoredCertificate, note_certificate};
use crate::event_log::EventLog;
use crate::snapshot::{HistoryParts, SnapshotError};

/// Events, digests and certificates; see the module's documentation.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// Every event, or (while loading) those after the snapshot.
    events: EventLog,
    /// The digest after every entry, or (while loading) after those after the snapshot.
    digests: Vec<[u8; 32]>,
    /// First certificates, or (while loading) those noted since the snapshot.
    certificates: Certificates,
    /// The snapshot's history, while it is being read.
    loading: Option<Loading>,
}

/// A snapshot's history being read on another thread.
#[derive(Debug)]
struct Loading {
    /// Events and digests the snapshot holds.
    events: u64,
    digests: u64,
    /// `None` once joined and failed (`failed` says why).
    thread: Option<JoinHandle<Result<(HistoryParts, Instant), SnapshotError>>>,
    failed: Option<String>,
    /// The snapshot file (renamed if its history is damaged).
    path: PathBuf,
}

impl History {
    pub(crate) fn from_parts(parts: HistoryParts) -> Self {
        History {
            events: parts.events,
            digests: parts.digests,
            certificates: parts.certificates,
            loading: None,
        }
    }

    /// The history of the snapshot at `path`, which holds `events` events and `digests`
    /// digests, read by `read` on a thread of its own. The thread also returns when it ended.
    pub(crate) fn loading(
        events: u64,
        digests: u64,
        path: PathBuf,
        read: impl FnOnce() -> Result<HistoryParts, SnapshotError> + Send + 'static,
    ) -> Result<Self, SnapshotError> {
        let thread = std::thread::Builder::new()
            .name("snapshot-history".into())
            .spawn(move || read().map(|parts| (parts, Instant::now())))?;
        Ok(History {
            loading: Some(Loading {
                events,
                digests,
                thread: Some(thread),
                failed: None,
                path,
            }),
            ..History::default()
        })
    }

    /// The number of events, loaded or not.
    pub(crate) fn event_count(&self) -> u64 {
        self.loading.as_ref().map_or(0, |l| l.events) + self.events.len() as u64
    }

    /// Record an applied entry: its events, the digest after it, its certificate if it
    /// certified a blob for the first time. Never waits for a snapshot's history.
    pub(crate) fn record(&mut self, entry: &LogEntry, events: &[Event], digest: [u8; 32]) {
        self.note_certificate(entry, events);
        self.extend_events(events);
        self.push_digest(digest);
    }

    /// Keep `entry`'s certificate if `events` (its outcome) certify a blob for the first time.
    pub(crate) fn note_certificate(&mut self, entry: &LogEntry, events: &[Event]) {
        note_certificate(&mut self.certificates, entry, events);
    }

    pub(crate) fn extend_events(&mut self, events: &[Event]) {
        self.events.extend(events);
    }

    pub(crate) fn push_digest(&mut self, digest: [u8; 32]) {
        self.digests.push(digest);
    }

    /// Whether a snapshot's history was being read and the read has ended (so that settling
    /// does not wait).
    pub(crate) fn read_ended(&self) -> bool {
        self.loading
            .as_ref()
            .and_then(|l| l.thread.as_ref())
            .is_some_and(|t| t.is_finished())
    }

    /// Wait for the snapshot's history if it is still being read, and join what was recorded
    /// since onto it. Returns when the read ended (`None` if there was none), or why the
    /// history is unavailable.
    pub(crate) fn settle(&mut self) -> Result<Option<Instant>, String> {
        let Some(loading) = &mut self.loading else {
            return Ok(None);
        };
        if let Some(reason) = &loading.failed {
            return Err(reason.clone());
        }
        let joined = loading
            .thread
            .take()
            .expect("a loading history has its thread until it fails")
            .join();
        let result = match joined {
            Ok(Ok(parts)) => Ok(parts),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the thread reading it panicked".to_string()),
        };
        match result {
            Ok((mut parts, ended)) => {
                let (events, digests) = (loading.events, loading.digests);
                if parts.events.len() as u64 != events || parts.digests.len() as u64 != digests {
                    let reason = format!(
                        "it holds {} events and {} digests, its header said {events} and {digests}",
                        parts.events.len(),
                        parts.digests.len()
                    );
                    return Err(self.fail(reason));
                }
                parts.events.append(std::mem::take(&mut self.events));
                parts.digests.append(&mut self.digests);
                parts
                    .certificates
                    .absorb(std::mem::take(&mut self.certificates));
                *self = History::from_parts(parts);
                Ok(Some(ended))
            }
            Err(reason) => Err(self.fail(reason)),
        }
    }

    /// Note that the snapshot's history cannot be read: rename the file so that the next
    /// start does not use it, and say what to do.
    fn fail(&mut self, reason: String) -> String {
        let loading = self.loading.as_mut().expect("failing while loading");
        let mut damaged = loading.path.clone().into_os_string();
        damaged.push(".damaged");
        let renamed = std::fs::rename(&loading.path, &damaged);
        let reason = format!(
            "the history of snapshot {} cannot be read ({reason}); {}; restart the ledger: it \
             will start from the previous snapshot and the log",
            loading.path.display(),
            match renamed {
                Ok(()) => format!("the file is now {}", PathBuf::from(damaged).display()),
                Err(e) => format!("renaming the file failed ({e}): remove it"),
            }
        );
        tracing::error!(%reason, "snapshot history damaged");
        loading.failed = Some(reason.clone());
        reason
    }

    /// Every event (waiting for a snapshot's history).
    pub(crate) fn events(&mut self) -> Result<&EventLog, String> {
        self.settle()?;
        Ok(&self.events)
    }

    /// Event `index`, if there is one (waiting for a snapshot's history only if the event is
    /// in it).
    pub(crate) fn event(&mut self, index: u64) -> Result<Option<Event>, String> {
        if let Some(l) = &self.loading
            && let Some(after) = index.checked_sub(l.events)
        {
            return Ok(self.events.get(after as usize));
        }
        self.settle()?;
        Ok(self.events.get(index as usize))
    }

    /// The digest after entry `index`, if recorded (waiting for a snapshot's history only if
    /// the digest is in it).
    pub(crate) fn digest(&mut self, index: u64) -> Result<Option<[u8; 32]>, String> {
        if let Some(l) = &self.loading
            && let Some(after) = index.checked_sub(l.digests)
        {
            return Ok(self.digests.get(after as usize).copied());
        }
        self.settle()?;
        Ok(self.digests.get(index as usize).copied())
    }

    /// `blob_id`'s first certificate (waiting for a snapshot's history).
    pub(crate) fn certificate(
        &mut self,
        blob_id: &floe_core::BlobId,
    ) -> Result<Option<&StoredCertificate>, String> {
        self.settle()?;
        Ok(self.certificates.get(blob_id))
    }

    /// All of it, for a snapshot (waiting for a snapshot's history).
    pub(crate) fn parts(&mut self) -> Result<(&EventLog, &[[u8; 32]], &Certificates), String> {
        self.settle()?;
        Ok((&self.events, &self.digests, &self.certificates))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use floe_core::{BlobId, ObjectId};
    use floe_ledger::EventKind;

    use super::*;

    fn event(i: u64) -> Event {
        Event {
            index: i,
            entry_index: i,
            epoch: 0,
            tx_digest: floe_core::TxDigest([i as u8; 32]),
            kind: EventKind::BlobDeleted {
                blob_id: BlobId([i as u8; 32]),
                object_id: ObjectId([1; 32]),
                end_epoch: 3,
                was_certified: false,
            },
        }
    }

    fn certificate(blob: u8, epoch: u32) -> StoredCertificate {
        StoredCertificate {
            blob_id: BlobId([blob; 32]),
            epoch,
            event_index: 0,
            signers_bitmap: vec![1],
            serialized_message: vec![2],
            signature: vec![3; 96],
        }
    }

    fn parts(events: std::ops::Range<u64>, digests: u8) -> HistoryParts {
        HistoryParts {
            events: EventLog::from_events(&events.map(event).collect::<Vec<_>>()),
            digests: (0..digests).map(|d| [d; 32]).collect(),
            certificates: Certificates::from_records([certificate(7, 0)]),
        }
    }

    #[test]
    fn what_is_recorded_while_loading_lands_after_the_snapshot() {
        let (release, wait) = mpsc::channel::<()>();
        let mut history = History::loading(5, 3, PathBuf::from("unused"), move || {
            wait.recv().expect("released");
            Ok(parts(0..5, 3))
        })
        .unwrap();
        history.extend_events(&[event(5), event(6)]);
        history.push_digest([3; 32]);
        // The same blob again (its first certificate is the snapshot's), and a new one.
        history.certificates = Certificates::from_records([certificate(7, 9), certificate(8, 9)]);
        assert_eq!(history.event_count(), 7);
        // A digest or an event after the snapshot is answered without waiting for it.
        assert_eq!(history.digest(3), Ok(Some([3; 32])));
        assert_eq!(history.event(6), Ok(Some(event(6))));
        assert_eq!(history.event(7), Ok(None));
        assert!(history.loading.is_some(), "still loading");
        assert!(!history.read_ended());

        release.send(()).unwrap();
        assert!(history.settle().unwrap().is_some());
        assert_eq!(history.settle(), Ok(None), "settled once");
        assert_eq!(
            history.events().unwrap(),
            &EventLog::from_events(&(0..7).map(event).collect::<Vec<_>>())
        );
        assert_eq!(history.digest(2), Ok(Some([2; 32])));
        assert_eq!(history.digest(3), Ok(Some([3; 32])));
        assert_eq!(history.digest(4), Ok(None));
        assert_eq!(history.event(1), Ok(Some(event(1))));
        assert_eq!(
            history
                .certificate(&BlobId([7; 32]))
                .unwrap()
                .unwrap()
                .epoch,
            0
        );
        assert_eq!(
            history
                .certificate(&BlobId([8; 32]))
                .unwrap()
                .unwrap()
                .epoch,
            9
        );
        assert_eq!(history.parts().unwrap().2.len(), 2);
    }

    #[test]
    fn a_history_that_does_not_load_sets_its_snapshot_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot-00000000000000000005.bin");
        std::fs::write(&path, b"bytes").unwrap();
        let mut history = History::loading(5, 5, path.clone(), || {
            Err(SnapshotError::Decode("events: damaged".into()))
        })
        .unwrap();
        history.extend_events(&[event(5)]);
        let reason = history.settle().unwrap_err();
        assert!(reason.contains("events: damaged"), "{reason}");
        assert!(reason.contains("restart the ledger"), "{reason}");
        assert!(!path.exists());
        assert!(
            dir.path()
                .join("snapshot-00000000000000000005.bin.damaged")
                .exists()
        );
        // It stays unavailable, with the same reason, and nothing is renamed twice.
        assert_eq!(history.events().unwrap_err(), reason);
        assert_eq!(history.digest(1).unwrap_err(), reason);
        assert_eq!(history.event_count(), 6);

        // Counts that disagree with the header are refused the same way.
        let path = dir.path().join("other.bin");
        std::fs::write(&path, b"bytes").unwrap();
        let mut history = History::loading(4, 3, path, || Ok(parts(0..5, 3))).unwrap();
        let reason = history.settle().unwrap_err();
        assert!(reason.contains("its header said 4 and 3"), "{reason}");
    }
}
