//! Snapshots of the whole ledger: a deterministic, versioned encoding with a root, written
//! atomically (tmp file, fsync, rename, fsync of the directory), newest two kept.
//!
//! Replicas that applied the same log prefix produce byte-identical snapshots, so equal roots
//! at equal sequence numbers is a check of agreement, and a replica can take a peer's snapshot
//! once its root matches the one committed in the log by a `Checkpoint` entry.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use floe_core::BlobId;
use floe_core::merkle::blake2b256;
use floe_ledger::{Event, LedgerState};
use serde::{Deserialize, Serialize};

use crate::certificates::StoredCertificate;
pub use crate::event_log::EventLog;

/// The snapshot format this build writes and reads.
/// Version 2 added the running digest after every covered entry (so `/v1/entries/N` answers
/// for entries before the snapshot after a restart). Version 3: the state holds the storage
/// challenges of recent epochs, and the snapshot each blob's first certificate (so
/// `GET /v1/blobs/{id}/certificate` answers after a restart from it). Version 4: storage nodes
/// carry their network (TLS) public key. Version 5: the state holds shared blobs. Version 6:
/// storage nodes carry the network key they replaced, while clients still accept it. Version 7:
/// the events, digests and certificates are sections of their own (byte strings), so that a
/// restart decodes them and the state in parallel. Version 8: the state holds the version of
/// the ledger's rules. Version 9: the events are kept as their encodings back to back, with
/// where each ends, so that a restart takes them without decoding them ([`EventLog`]).
/// Version 8 is still read; older snapshots are skipped (the log is replayed instead).
pub const SNAPSHOT_VERSION: u8 = 9;
/// The oldest version this build reads.
const OLDEST_READ: u8 = 8;
/// Snapshots kept on disk (the newest, plus one fallback).
pub const KEEP_SNAPSHOTS: usize = 2;
/// Directory of the snapshots inside the data directory.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// Why a snapshot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot io: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot format version {0}; this build reads {OLDEST_READ} to {SNAPSHOT_VERSION}")]
    Version(u8),
    #[error("snapshot cannot be decoded: {0}")]
    Decode(String),
    #[error("snapshot root {got} is not the committed root {expected}")]
    RootMismatch { expected: String, got: String },
}

/// The encoded form: every field is deterministic (BCS; the state's maps are ordered). Each
/// section is a byte string holding its own BCS encoding, so sections decode independently.
#[derive(Serialize, Deserialize)]
struct SnapshotFile<'a> {
    version: u8,
    /// Log entries covered: the snapshot is the state after entries `0..seq`.
    seq: u64,
    /// Hash of log record `seq − 1` (the chain seed when `seq` is 0).
    chain_head: [u8; 32],
    /// [`LedgerState::to_snapshot_bytes`].
    #[serde(borrow, with = "serde_bytes")]
    state: &'a [u8],
    /// Every event so far (storage nodes follow events from any cursor): their BCS
    /// encodings back to back.
    #[serde(borrow, with = "serde_bytes")]
    events: &'a [u8],
    /// Where each event ends in `events`: a little-endian `u64` each.
    #[serde(borrow, with = "serde_bytes")]
    event_ends: &'a [u8],
    /// The running digest after each entry `0..seq`, 32 bytes each, concatenated (like the
    /// events above it grows with history; pruning both is future work).
    #[serde(borrow, with = "serde_bytes")]
    digests: &'a [u8],
    /// BCS `Vec<StoredCertificate>`: each certified blob's first certificate, by blob ID.
    #[serde(borrow, with = "serde_bytes")]
    certificates: &'a [u8],
}

/// Version 8: the same, but the events as BCS `Vec<Event>` and no ends.
#[derive(Deserialize)]
struct SnapshotFileV8<'a> {
    version: u8,
    seq: u64,
    chain_head: [u8; 32],
    #[serde(borrow, with = "serde_bytes")]
    state: &'a [u8],
    #[serde(borrow, with = "serde_bytes")]
    events: &'a [u8],
    #[serde(borrow, with = "serde_bytes")]
    digests: &'a [u8],
    #[serde(borrow, with = "serde_bytes")]
    certificates: &'a [u8],
}

/// A decoded snapshot.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub seq: u64,
    pub chain_head: [u8; 32],
    pub state: LedgerState,
    pub events: EventLog,
    /// The running digest after each entry `0..seq`.
    pub digests: Vec<[u8; 32]>,
    /// Each certified blob's first certificate.
    pub certificates: HashMap<BlobId, StoredCertificate>,
}

/// The root of encoded snapshot bytes.
pub fn root_of(bytes: &[u8]) -> [u8; 32] {
    blake2b256(&[b"floe-snapshot-root-v1", bytes])
}

/// Encode a snapshot. Its root ([`root_of`] the bytes, a hash of the whole file) is left to
/// the callers that need one: a replica commits it; the embedded ledger never uses it.
pub fn encode(
    seq: u64,
    chain_head: [u8; 32],
    state: &LedgerState,
    events: &EventLog,
    digests: &[[u8; 32]],
    certificates: &HashMap<BlobId, StoredCertificate>,
) -> Vec<u8> {
    encode_sections(seq, chain_head, state, events, digests, certificates).to_bytes()
}

/// A snapshot's sections, each encoded, not yet joined into the file. Both backends encode
/// them under the state lock and join them outside it (joining copies every byte once more
/// into a fresh buffer: about a third of the work at 20k blobs; a replica also hashes the file
/// for its root there).
#[derive(Debug)]
pub struct EncodedSnapshot {
    seq: u64,
    chain_head: [u8; 32],
    state: Vec<u8>,
    events: Vec<u8>,
    event_ends: Vec<u8>,
    digests: Vec<u8>,
    certificates: Vec<u8>,
}

impl EncodedSnapshot {
    /// The log entries it covers.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The snapshot file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let file = SnapshotFile {
            version: SNAPSHOT_VERSION,
            seq: self.seq,
            chain_head: self.chain_head,
            state: &self.state,
            events: &self.events,
            event_ends: &self.event_ends,
            digests: &self.digests,
            certificates: &self.certificates,
        };
        bcs::to_bytes(&file).expect("a snapshot serialises")
    }
}

/// Encode each section of a snapshot ([`EncodedSnapshot::to_bytes`] makes the file).
pub fn encode_sections(
    seq: u64,
    chain_head: [u8; 32],
    state: &LedgerState,
    events: &EventLog,
    digests: &[[u8; 32]],
    certificates: &HashMap<BlobId, StoredCertificate>,
) -> EncodedSnapshot {
    debug_assert_eq!(digests.len() as u64, seq, "one digest per covered entry");
    // Sorted, so that replicas with equal maps write equal bytes.
    let mut certificates: Vec<&StoredCertificate> = certificates.values().collect();
    certificates.sort_unstable_by_key(|c| c.blob_id);
    EncodedSnapshot {
        seq,
        chain_head,
        state: state.to_snapshot_bytes(),
        events: events.bytes().to_vec(),
        event_ends: events.ends().iter().flat_map(|e| e.to_le_bytes()).collect(),
        digests: digests.concat(),
        certificates: bcs::to_bytes(&certificates).expect("certificates serialise"),
    }
}

/// Decode snapshot bytes (checking the version first).
pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let bad = |what: &str, e: bcs::Error| SnapshotError::Decode(format!("{what}: {e}"));
    let sections = match bytes.first() {
        Some(&SNAPSHOT_VERSION) => {
            let f: SnapshotFile<'_> = bcs::from_bytes(bytes).map_err(|e| bad("sections", e))?;
            Sections {
                seq: f.seq,
                chain_head: f.chain_head,
                state: f.state,
                events: Events::Encoded {
                    bytes: f.events,
                    ends: f.event_ends,
                },
                digests: f.digests,
                certificates: f.certificates,
            }
        }
        Some(&OLDEST_READ) => {
            let f: SnapshotFileV8<'_> = bcs::from_bytes(bytes).map_err(|e| bad("sections", e))?;
            debug_assert_eq!(f.version, OLDEST_READ);
            Sections {
                seq: f.seq,
                chain_head: f.chain_head,
                state: f.state,
                events: Events::Bcs(f.events),
                digests: f.digests,
                certificates: f.certificates,
            }
        }
        Some(&v) => return Err(SnapshotError::Version(v)),
        None => return Err(SnapshotError::Decode("empty".into())),
    };
    sections.decode()
}

/// The sections of a snapshot file, any version.
struct Sections<'a> {
    seq: u64,
    chain_head: [u8; 32],
    state: &'a [u8],
    events: Events<'a>,
    digests: &'a [u8],
    certificates: &'a [u8],
}

/// The events section: encoded with ends (version 9), or BCS `Vec<Event>` (version 8).
enum Events<'a> {
    Encoded { bytes: &'a [u8], ends: &'a [u8] },
    Bcs(&'a [u8]),
}

impl Events<'_> {
    fn decode(&self) -> Result<EventLog, SnapshotError> {
        match self {
            Events::Encoded { bytes, ends } => {
                if ends.len() % 8 != 0 {
                    return Err(SnapshotError::Decode(format!(
                        "{} bytes of event ends, not a multiple of 8",
                        ends.len()
                    )));
                }
                let ends = ends
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
                    .collect();
                EventLog::from_parts(bytes.to_vec(), ends)
                    .map_err(|e| SnapshotError::Decode(e.to_string()))
            }
            Events::Bcs(bytes) => {
                let events: Vec<Event> = bcs::from_bytes(bytes)
                    .map_err(|e| SnapshotError::Decode(format!("events: {e}")))?;
                Ok(EventLog::from_events(&events))
            }
        }
    }
}

impl Sections<'_> {
    fn decode(self) -> Result<Snapshot, SnapshotError> {
        if self.digests.len() as u64 != self.seq.saturating_mul(32) {
            return Err(SnapshotError::Decode(format!(
                "{} bytes of entry digests for {} entries",
                self.digests.len(),
                self.seq
            )));
        }
        let bad = |what: &str, e: bcs::Error| SnapshotError::Decode(format!("{what}: {e}"));
        // The sections are independent: the state (the largest) on another thread, the
        // history here. The root is not computed: only a replica needs it ([`root_of`] the
        // same bytes).
        let (state, events, certificates) = std::thread::scope(|scope| {
            let state = scope.spawn(|| LedgerState::from_snapshot_bytes(self.state));
            let events = self.events.decode();
            let certificates: Result<Vec<StoredCertificate>, _> =
                bcs::from_bytes(self.certificates);
            Ok::<_, SnapshotError>((
                state
                    .join()
                    .map_err(|_| {
                        SnapshotError::Decode("the state's decoding thread panicked".into())
                    })?
                    .map_err(|e| bad("state", e))?,
                events?,
                certificates.map_err(|e| bad("certificates", e))?,
            ))
        })?;
        let digests = self
            .digests
            .chunks_exact(32)
            .map(|d| <[u8; 32]>::try_from(d).expect("chunks of 32"))
            .collect();
        Ok(Snapshot {
            seq: self.seq,
            chain_head: self.chain_head,
            state,
            events,
            digests,
            certificates: certificates.into_iter().map(|c| (c.blob_id, c)).collect(),
        })
    }
}

fn file_name(seq: u64) -> String {
    format!("snapshot-{seq:020}.bin")
}

fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapshotError> {
    let dir = dir.join(SNAPSHOT_DIR);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(seq) = name
            .strip_prefix("snapshot-")
            .and_then(|n| n.strip_suffix(".bin"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((seq, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// A snapshot written by [`write_atomic`].
#[derive(Debug)]
pub struct Written {
    /// Its file.
    pub path: PathBuf,
    /// The position of the oldest snapshot still kept (the log is needed from there on).
    pub oldest_kept: u64,
}

/// Write `bytes` as the snapshot at `seq` atomically, then delete all but the newest
/// [`KEEP_SNAPSHOTS`]. An existing snapshot at `seq` is kept as it is.
pub fn write_atomic(dir: &Path, seq: u64, bytes: &[u8]) -> Result<Written, SnapshotError> {
    let snap_dir = dir.join(SNAPSHOT_DIR);
    std::fs::create_dir_all(&snap_dir)?;
    let path = snap_dir.join(file_name(seq));
    if !path.exists() {
        // Two writers may take the same position at once (a clean stop and the periodic
        // snapshot): each writes its own temporary file, and either rename leaves the same
        // bytes in place (the encoding is deterministic).
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = snap_dir.join(format!("{}.{}-{n}.tmp", file_name(seq), std::process::id()));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&snap_dir)?.sync_all()?;
    }
    let all = list(dir)?;
    let kept = all.len().saturating_sub(KEEP_SNAPSHOTS);
    for (_, old) in &all[..kept] {
        let _ = std::fs::remove_file(old);
    }
    let oldest_kept = all.get(kept).map_or(seq, |(s, _)| *s);
    Ok(Written { path, oldest_kept })
}

/// The newest snapshot that decodes, with its bytes (a damaged newest one is skipped with a
/// warning in favour of the previous one).
pub fn load_newest(dir: &Path) -> Result<Option<(Snapshot, Vec<u8>)>, SnapshotError> {
    load_newest_where(dir, |_| true)
}

/// The newest snapshot that decodes and that `usable` accepts, with its bytes (each one
/// skipped is logged).
pub fn load_newest_where(
    dir: &Path,
    usable: impl Fn(&Snapshot) -> bool,
) -> Result<Option<(Snapshot, Vec<u8>)>, SnapshotError> {
    for (seq, path) in list(dir)?.into_iter().rev() {
        let bytes = std::fs::read(&path)?;
        match decode(&bytes) {
            Ok(s) if s.seq == seq && usable(&s) => return Ok(Some((s, bytes))),
            Ok(s) if s.seq == seq => {
                tracing::warn!(file = %path.display(), "snapshot does not fit the log; skipped")
            }
            Ok(s) => {
                tracing::warn!(file = %path.display(), seq = s.seq, "snapshot file name and content disagree; skipped")
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "damaged snapshot skipped")
            }
        }
    }
    Ok(None)
}

/// The oldest snapshot with a position of at least `min_seq` that decodes (for a replay that
/// must start where a pruned log starts, and should check as much of it as it can).
pub fn load_oldest_from(dir: &Path, min_seq: u64) -> Result<Option<Snapshot>, SnapshotError> {
    for (seq, path) in list(dir)?.into_iter().filter(|(seq, _)| *seq >= min_seq) {
        match decode(&std::fs::read(&path)?) {
            Ok(s) if s.seq == seq => return Ok(Some(s)),
            _ => tracing::warn!(file = %path.display(), "damaged snapshot skipped"),
        }
    }
    Ok(None)
}

/// The position of the newest snapshot file, from its name (nothing is read).
pub fn newest_seq(dir: &Path) -> Result<Option<u64>, SnapshotError> {
    Ok(list(dir)?.pop().map(|(seq, _)| seq))
}

/// The bytes of the newest snapshot file (for serving to peers).
pub fn newest_bytes(dir: &Path) -> Result<Option<(u64, Vec<u8>)>, SnapshotError> {
    match list(dir)?.pop() {
        Some((seq, path)) => Ok(Some((seq, std::fs::read(path)?))),
        None => Ok(None),
    }
}
