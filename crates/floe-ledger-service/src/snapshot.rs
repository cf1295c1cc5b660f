//! Snapshots of the whole ledger: a deterministic, versioned encoding with a root, written
//! atomically (tmp file, fsync, rename, fsync of the directory), newest two kept.
//!
//! Replicas that applied the same log prefix produce byte-identical snapshots, so equal roots
//! at equal sequence numbers is a check of agreement, and a replica can take a peer's snapshot
//! once its root matches the one committed in the log by a `Checkpoint` entry.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use floe_core::merkle::blake2b256;
use floe_ledger::{Event, LedgerState, StateIndex};
use serde::Deserialize;

use crate::certificates::{Certificates, StoredCertificate};
pub use crate::event_log::EventLog;
pub use crate::recent_txs::RecentTxs;

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
/// Version 10: where each entry of the state's large maps and each certificate ends, so that a
/// restart decodes them only when they are used ([`floe_ledger::lazy_map`]), and a CRC-32 of
/// the file at its end (checked before anything is read from it). Version 11: a header with a
/// table of sections, each with its own CRC-32 ([`v11`]), so that a restart reads and checks
/// the state alone and reads the history (events, digests, certificates) on another thread.
/// Version 12: a section with the transactions accepted in the last entries
/// ([`crate::recent_txs`]), so that a retried transaction is answered with its first outcome
/// after a restart or a bootstrap from a peer too. Versions 8 to 11 are still read (with no
/// such table); older snapshots are skipped (the log is replayed instead).
pub const SNAPSHOT_VERSION: u8 = v11::VERSION;
/// The oldest version this build reads.
const OLDEST_READ: u8 = 8;
/// Snapshots kept on disk (the newest, plus one fallback).
pub const KEEP_SNAPSHOTS: usize = 2;
/// Directory of the snapshots inside the data directory.
pub const SNAPSHOT_DIR: &str = "snapshots";
mod v11;
pub use v11::HistoryParts;

/// The length of the checksum that ends a version 10 file.
const CHECKSUM_LEN: usize = 4;

/// Why a snapshot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot io: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot format version {0}; this build reads {OLDEST_READ} to {SNAPSHOT_VERSION}")]
    Version(u8),
    #[error("snapshot cannot be decoded: {0}")]
    Decode(String),
    #[error(
        "snapshot {what} checksum {got:08x} is not the one the file records ({expected:08x}): the file is damaged"
    )]
    Checksum {
        /// The part of the file that was checked.
        what: &'static str,
        expected: u32,
        got: u32,
    },
}

/// Version 10: every field is deterministic (BCS; the state's maps are ordered). Each section
/// is a byte string holding its own encoding, so sections decode independently. The file is
/// this structure's BCS encoding followed by its CRC-32 (little-endian). Version 11 holds the
/// same sections ([`v11`]).
#[derive(Deserialize)]
struct SnapshotFileV10<'a> {
    version: u8,
    /// Log entries covered: the snapshot is the state after entries `0..seq`.
    seq: u64,
    /// Hash of log record `seq − 1` (the chain seed when `seq` is 0).
    chain_head: [u8; 32],
    /// [`LedgerState::to_snapshot_bytes`].
    #[serde(borrow, with = "serde_bytes")]
    state: &'a [u8],
    /// BCS [`StateIndex`]: where the state's large maps and each of their entries end.
    #[serde(borrow, with = "serde_bytes")]
    state_index: &'a [u8],
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
    /// Where each certificate ends in `certificates`: a little-endian `u64` each.
    #[serde(borrow, with = "serde_bytes")]
    certificate_ends: &'a [u8],
}

/// Version 9: no state index, certificate ends or checksum.
#[derive(Deserialize)]
struct SnapshotFileV9<'a> {
    version: u8,
    seq: u64,
    chain_head: [u8; 32],
    #[serde(borrow, with = "serde_bytes")]
    state: &'a [u8],
    #[serde(borrow, with = "serde_bytes")]
    events: &'a [u8],
    #[serde(borrow, with = "serde_bytes")]
    event_ends: &'a [u8],
    #[serde(borrow, with = "serde_bytes")]
    digests: &'a [u8],
    #[serde(borrow, with = "serde_bytes")]
    certificates: &'a [u8],
}

/// Version 8: as version 9, but the events as BCS `Vec<Event>` and no ends.
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
    pub certificates: Certificates,
    /// The transactions accepted in the last entries (unknown before `seq` in a file older
    /// than version 12).
    pub recent: RecentTxs,
}

/// The root of encoded snapshot bytes.
pub fn root_of(bytes: &[u8]) -> [u8; 32] {
    blake2b256(&[ROOT_DOMAIN, bytes])
}

const ROOT_DOMAIN: &[u8] = b"floe-snapshot-root-v1";

/// [`root_of`] a file's bytes, read 1 MiB at a time (not the whole file in memory).
pub fn root_of_file(path: &Path) -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = floe_core::merkle::Blake2b256::default();
    hasher.update(ROOT_DOMAIN);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.finalize()),
            Ok(n) => {
                hasher.update(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Encode a snapshot. Its root ([`root_of`] the bytes, a hash of the whole file) is left to
/// the callers that need one: a replica commits it; the embedded ledger never uses it.
pub fn encode(
    seq: u64,
    chain_head: [u8; 32],
    state: &LedgerState,
    history: (&EventLog, &[[u8; 32]], &Certificates),
    recent: &RecentTxs,
) -> Vec<u8> {
    encode_sections(seq, chain_head, state, history, recent).to_bytes()
}

/// A snapshot's sections, each encoded, not yet joined into the file. Both backends encode
/// them under the state lock and join them outside it (joining copies every byte once more
/// into a fresh buffer; a replica also hashes the file for its root there).
#[derive(Debug)]
pub struct EncodedSnapshot {
    seq: u64,
    chain_head: [u8; 32],
    state: Vec<u8>,
    state_index: Vec<u8>,
    events: Vec<u8>,
    event_ends: Vec<u8>,
    digests: Vec<u8>,
    certificates: Vec<u8>,
    certificate_ends: Vec<u8>,
    recent: Vec<u8>,
}

impl EncodedSnapshot {
    /// The log entries it covers.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The snapshot file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        v11::write(
            self.seq,
            self.chain_head,
            [
                &self.state,
                &self.state_index,
                &self.events,
                &self.event_ends,
                &self.digests,
                &self.certificates,
                &self.certificate_ends,
                &self.recent,
            ],
        )
    }
}

fn le_u64s(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|e| e.to_le_bytes()).collect()
}

/// Encode each section of a snapshot ([`EncodedSnapshot::to_bytes`] makes the file): the
/// state, the history (events, the digest after each entry, certificates) and the recent
/// transactions.
pub fn encode_sections(
    seq: u64,
    chain_head: [u8; 32],
    state: &LedgerState,
    (events, digests, certificates): (&EventLog, &[[u8; 32]], &Certificates),
    recent: &RecentTxs,
) -> EncodedSnapshot {
    debug_assert_eq!(digests.len() as u64, seq, "one digest per covered entry");
    let (state, index) = state.to_snapshot_parts();
    let (certificates, certificate_ends) = certificates.encode();
    EncodedSnapshot {
        seq,
        chain_head,
        state,
        state_index: bcs::to_bytes(&index).expect("an index serialises"),
        events: events.bytes().to_vec(),
        event_ends: le_u64s(events.ends()),
        digests: digests.concat(),
        certificates,
        certificate_ends: le_u64s(&certificate_ends),
        recent: recent.encode(),
    }
}

/// Little-endian `u64`s, or why not.
fn read_u64s(what: &str, bytes: &[u8]) -> Result<Vec<u64>, SnapshotError> {
    if !bytes.len().is_multiple_of(8) {
        return Err(SnapshotError::Decode(format!(
            "{} bytes of {what}, not a multiple of 8",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect())
}

/// Decode snapshot bytes (checking the version, and the checksum of a version 10 file, first).
pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    decode_shared(&Arc::new(bytes.to_vec()))
}

/// [`decode`] a file's bytes without copying them: the state's large maps and the
/// certificates keep a reference to `file` and decode their entries from it when first used.
pub fn decode_shared(file: &Arc<Vec<u8>>) -> Result<Snapshot, SnapshotError> {
    decode_file(file, None)
}

/// A version 10 file's bytes before its checksum, once they match it (`body_crc`: their CRC-32
/// if it was computed while reading).
fn v10_body(bytes: &[u8], body_crc: Option<u32>) -> Result<&[u8], SnapshotError> {
    let Some(body_len) = bytes.len().checked_sub(CHECKSUM_LEN) else {
        return Err(SnapshotError::Decode("too short for its checksum".into()));
    };
    let (body, end) = bytes.split_at(body_len);
    let expected = u32::from_le_bytes(end.try_into().expect("4 bytes"));
    let got = body_crc.unwrap_or_else(|| crc32fast::hash(body));
    if got != expected {
        return Err(SnapshotError::Checksum {
            what: "file",
            expected,
            got,
        });
    }
    Ok(body)
}

/// [`decode_shared`], given the CRC-32 of all of `file` but its last [`CHECKSUM_LEN`] bytes if
/// it was computed while reading.
fn decode_file(file: &Arc<Vec<u8>>, body_crc: Option<u32>) -> Result<Snapshot, SnapshotError> {
    let bytes: &[u8] = file;
    let bad = |what: &str, e: bcs::Error| SnapshotError::Decode(format!("{what}: {e}"));
    let sections = match bytes.first() {
        Some(&v) if v11::reads(v) => return v11::decode(file),
        Some(10) => {
            let body = v10_body(bytes, body_crc)?;
            let f: SnapshotFileV10<'_> = bcs::from_bytes(body).map_err(|e| bad("sections", e))?;
            debug_assert_eq!(f.version, 10);
            Sections {
                seq: f.seq,
                chain_head: f.chain_head,
                state: StateSection::Indexed {
                    bytes: f.state,
                    index: f.state_index,
                },
                events: Events::Encoded {
                    bytes: f.events,
                    ends: f.event_ends,
                },
                digests: f.digests,
                certificates: f.certificates,
                certificate_ends: Some(f.certificate_ends),
            }
        }
        Some(9) => {
            let f: SnapshotFileV9<'_> = bcs::from_bytes(bytes).map_err(|e| bad("sections", e))?;
            debug_assert_eq!(f.version, 9);
            Sections {
                seq: f.seq,
                chain_head: f.chain_head,
                state: StateSection::Bcs(f.state),
                events: Events::Encoded {
                    bytes: f.events,
                    ends: f.event_ends,
                },
                digests: f.digests,
                certificates: f.certificates,
                certificate_ends: None,
            }
        }
        Some(&OLDEST_READ) => {
            let f: SnapshotFileV8<'_> = bcs::from_bytes(bytes).map_err(|e| bad("sections", e))?;
            debug_assert_eq!(f.version, OLDEST_READ);
            Sections {
                seq: f.seq,
                chain_head: f.chain_head,
                state: StateSection::Bcs(f.state),
                events: Events::Bcs(f.events),
                digests: f.digests,
                certificates: f.certificates,
                certificate_ends: None,
            }
        }
        Some(&v) => return Err(SnapshotError::Version(v)),
        None => return Err(SnapshotError::Decode("empty".into())),
    };
    sections.decode(file)
}

/// Where `part` (a slice of `file`) lies in it.
fn range_in(file: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(file.as_ptr() as usize);
    debug_assert!(start + part.len() <= file.len(), "a slice of the file");
    start..start + part.len()
}

/// The sections of a snapshot file, any version.
struct Sections<'a> {
    seq: u64,
    chain_head: [u8; 32],
    state: StateSection<'a>,
    events: Events<'a>,
    digests: &'a [u8],
    certificates: &'a [u8],
    /// Where each certificate ends (version 10); earlier versions decode them all.
    certificate_ends: Option<&'a [u8]>,
}

/// The state section: with its index (version 10), or BCS alone.
enum StateSection<'a> {
    Indexed { bytes: &'a [u8], index: &'a [u8] },
    Bcs(&'a [u8]),
}

impl StateSection<'_> {
    fn decode(&self, file: &Arc<Vec<u8>>) -> Result<LedgerState, SnapshotError> {
        match self {
            StateSection::Indexed { bytes, index } => {
                let index: StateIndex = bcs::from_bytes(index)
                    .map_err(|e| SnapshotError::Decode(format!("state index: {e}")))?;
                LedgerState::from_snapshot_parts(file.clone(), range_in(file, bytes), index)
                    .map_err(|e| SnapshotError::Decode(format!("state: {e}")))
            }
            StateSection::Bcs(bytes) => LedgerState::from_snapshot_bytes(bytes)
                .map_err(|e| SnapshotError::Decode(format!("state: {e}"))),
        }
    }
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
                let ends = read_u64s("event ends", ends)?;
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
    fn decode(self, file: &Arc<Vec<u8>>) -> Result<Snapshot, SnapshotError> {
        if self.digests.len() as u64 != self.seq.saturating_mul(32) {
            return Err(SnapshotError::Decode(format!(
                "{} bytes of entry digests for {} entries",
                self.digests.len(),
                self.seq
            )));
        }
        // The sections are independent: the state on another thread, the history here. The
        // root is not computed: only a replica needs it ([`root_of`] the same bytes).
        let (state, events, certificates) = std::thread::scope(|scope| {
            let state = scope.spawn(|| self.state.decode(file));
            let events = self.events.decode();
            let certificates = match self.certificate_ends {
                Some(ends) => {
                    let ends = read_u64s("certificate ends", ends)?;
                    let section = range_in(file, self.certificates);
                    Certificates::from_encoded(file.clone(), section, ends)
                        .map_err(|e| SnapshotError::Decode(format!("certificates: {e}")))
                }
                None => bcs::from_bytes::<Vec<StoredCertificate>>(self.certificates)
                    .map(Certificates::from_records)
                    .map_err(|e| SnapshotError::Decode(format!("certificates: {e}"))),
            };
            let state = state.join().map_err(|_| {
                SnapshotError::Decode("the state's decoding thread panicked".into())
            })?;
            Ok::<_, SnapshotError>((state?, events?, certificates?))
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
            certificates,
            recent: RecentTxs::unknown_before(self.seq),
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
pub fn load_newest(dir: &Path) -> Result<Option<Loaded>, SnapshotError> {
    load_newest_where(dir, |_| true)
}

/// The newest snapshot that decodes and that `usable` accepts, with its bytes (each one
/// skipped is logged).
pub fn load_newest_where(
    dir: &Path,
    usable: impl Fn(&Snapshot) -> bool,
) -> Result<Option<Loaded>, SnapshotError> {
    for (seq, path) in list(dir)?.into_iter().rev() {
        let started = std::time::Instant::now();
        let (bytes, body_crc) = read_file(&path)?;
        let bytes = Arc::new(bytes);
        let read = started.elapsed();
        let decoded = decode_file(&bytes, Some(body_crc));
        tracing::debug!(
            file = %path.display(),
            bytes = bytes.len(),
            read_ms = read.as_secs_f64() * 1e3,
            decode_ms = (started.elapsed() - read).as_secs_f64() * 1e3,
            "snapshot read"
        );
        match decoded {
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

/// A snapshot opened for a restart: the state, and the history (still being read on another
/// thread from a version 11 or 12 file; read with the rest from an older one).
pub(crate) struct OpenedSnapshot {
    pub seq: u64,
    pub chain_head: [u8; 32],
    pub state: LedgerState,
    pub history: crate::history::History,
    pub recent: RecentTxs,
    /// The file it was opened from.
    pub path: std::path::PathBuf,
}

/// The newest snapshot that opens and that `usable` accepts (given its position, chain head and
/// state), opened for a restart: of a version 11 or 12 file only the header, the state and the
/// recent transactions are read before this returns. Each one skipped is logged.
pub(crate) fn open_newest_where(
    dir: &Path,
    usable: impl Fn(u64, &[u8; 32], &LedgerState) -> bool,
) -> Result<Option<OpenedSnapshot>, SnapshotError> {
    for (seq, path) in list(dir)?.into_iter().rev() {
        let started = std::time::Instant::now();
        let opened = open_for_restart(&path);
        let (state_bytes, history_bytes) = match &opened {
            Ok(ForRestart {
                history: Err((header, _)),
                ..
            }) => header.sizes(),
            _ => (0, 0),
        };
        tracing::debug!(
            file = %path.display(),
            state_bytes,
            history_bytes,
            open_ms = started.elapsed().as_secs_f64() * 1e3,
            "snapshot opened"
        );
        let skipped = match opened {
            Ok(o) if o.seq == seq && usable(o.seq, &o.chain_head, &o.state) => {
                let history = match o.history {
                    Ok(parts) => crate::history::History::from_parts(parts),
                    Err((header, file)) => {
                        let (events, digests) = (header.events(), header.seq);
                        crate::history::History::loading(
                            events,
                            digests,
                            path.clone(),
                            move || v11::read_history(&header, &file),
                        )?
                    }
                };
                return Ok(Some(OpenedSnapshot {
                    seq: o.seq,
                    chain_head: o.chain_head,
                    state: o.state,
                    history,
                    recent: o.recent,
                    path,
                }));
            }
            Ok(o) if o.seq == seq => "snapshot does not fit the log; skipped".to_string(),
            Ok(o) => format!(
                "snapshot file name and content (at {}) disagree; skipped",
                o.seq
            ),
            Err(e) => format!("damaged snapshot skipped: {e}"),
        };
        tracing::warn!(file = %path.display(), "{skipped}");
    }
    Ok(None)
}

/// A snapshot file read for a restart; `history` is the history itself (older versions) or
/// where to read it (versions 11 and 12).
struct ForRestart {
    seq: u64,
    chain_head: [u8; 32],
    state: LedgerState,
    recent: RecentTxs,
    history: Result<HistoryParts, (v11::Header, std::fs::File)>,
}

fn open_for_restart(path: &Path) -> Result<ForRestart, SnapshotError> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut head = vec![
        0u8;
        usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(v11::HEADER_LEN)
    ];
    file.read_exact_at(&mut head, 0)?;
    if head.first().is_some_and(|&v| v11::reads(v)) {
        let o = v11::open_state(file, &head, len)?;
        return Ok(ForRestart {
            seq: o.header.seq,
            chain_head: o.header.chain_head,
            state: o.state,
            recent: o.recent,
            history: Err((o.header, o.file)),
        });
    }
    drop(file);
    let (bytes, body_crc) = read_file(path)?;
    let s = decode_file(&Arc::new(bytes), Some(body_crc))?;
    Ok(ForRestart {
        seq: s.seq,
        chain_head: s.chain_head,
        state: s.state,
        recent: s.recent,
        history: Ok(HistoryParts {
            events: s.events,
            digests: s.digests,
            certificates: s.certificates,
        }),
    })
}

/// A snapshot file's bytes, with the CRC-32 of all but its last [`CHECKSUM_LEN`] bytes (what a
/// version 10 file's checksum covers; a version 11 or 12 file checks its sections itself, so
/// none is computed for it). A large file is read as two halves on two threads, each hashed while in
/// cache ([`v11::read_hashed`]).
///
/// Snapshot files are written whole and renamed into place, never changed after.
fn read_file(path: &Path) -> std::io::Result<(Vec<u8>, u32)> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    let mut version = [0u8; 1];
    if len > 0 {
        file.read_exact_at(&mut version, 0)?;
    }
    let hashed = if v11::reads(version[0]) {
        0
    } else {
        len.saturating_sub(CHECKSUM_LEN)
    };
    v11::read_hashed(&file, 0, len, hashed, true)
}

/// A loaded snapshot and the file's bytes (which it shares).
pub type Loaded = (Snapshot, Arc<Vec<u8>>);

/// The oldest snapshot with a position of at least `min_seq` that decodes (for a replay that
/// must start where a pruned log starts, and should check as much of it as it can).
pub fn load_oldest_from(dir: &Path, min_seq: u64) -> Result<Option<Snapshot>, SnapshotError> {
    for (seq, path) in list(dir)?.into_iter().filter(|(seq, _)| *seq >= min_seq) {
        let (bytes, body_crc) = read_file(&path)?;
        match decode_file(&Arc::new(bytes), Some(body_crc)) {
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
