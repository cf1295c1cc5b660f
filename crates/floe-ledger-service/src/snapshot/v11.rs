//! Snapshot formats 11 and 12: a fixed header with a table of sections, each section with its
//! own CRC-32, so that a restart can read and check the state's sections alone and leave the
//! history's (events, digests, certificates) to another thread.
//!
//! ```text
//! version u8 = 12 | seq u64 | chain_head [32] | sections u32 = 8
//! | 8 × (length u64, crc32 u32) | crc32 u32 of all the header before it
//! | the sections, back to back, in table order
//! ```
//!
//! Integers are little-endian. The file is exactly the header and its sections: a length that
//! disagrees is a damaged file. Format 11 is the same with the first 7 sections: it has no
//! table of recent transactions ([`crate::recent_txs`]).

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use floe_ledger::{LedgerState, StateIndex};

use super::{SnapshotError, read_u64s};
use crate::certificates::Certificates;
use crate::event_log::EventLog;
use crate::recent_txs::RecentTxs;

pub(super) const VERSION: u8 = 12;
/// The format before: no table of recent transactions.
pub(super) const V11: u8 = 11;
/// The number of sections, in table order (the constants below).
pub(super) const SECTIONS: usize = 8;
pub(super) const STATE: usize = 0;
pub(super) const STATE_INDEX: usize = 1;
pub(super) const EVENTS: usize = 2;
pub(super) const EVENT_ENDS: usize = 3;
pub(super) const DIGESTS: usize = 4;
pub(super) const CERTIFICATES: usize = 5;
pub(super) const CERTIFICATE_ENDS: usize = 6;
/// Format 12 on: [`RecentTxs::encode`].
pub(super) const RECENT_TXS: usize = 7;
const NAMES: [&str; SECTIONS] = [
    "state",
    "state index",
    "events",
    "event ends",
    "digests",
    "certificates",
    "certificate ends",
    "recent transactions",
];
/// The longest header: the fixed fields, the table and the header's own CRC.
pub(super) const HEADER_LEN: usize = header_len(SECTIONS);

/// The header's length with `sections` sections.
const fn header_len(sections: usize) -> usize {
    1 + 8 + 32 + 4 + sections * 12 + 4
}

/// Whether `version` is one this module reads.
pub(super) fn reads(version: u8) -> bool {
    version == VERSION || version == V11
}

/// The sections a file of `version` holds.
fn sections_of(version: u8) -> usize {
    if version == V11 { RECENT_TXS } else { SECTIONS }
}
/// Sections larger than this are read as two halves on two threads.
const SPLIT_ABOVE: usize = 1 << 20;

/// A parsed, checked header.
#[derive(Clone, Debug)]
pub(super) struct Header {
    pub seq: u64,
    pub chain_head: [u8; 32],
    /// Sections in the file (format 11 has no [`RECENT_TXS`]).
    count: usize,
    lens: [u64; SECTIONS],
    crcs: [u32; SECTIONS],
}

/// The file: the header, then the sections.
pub(super) fn write(seq: u64, chain_head: [u8; 32], sections: [&[u8]; SECTIONS]) -> Vec<u8> {
    let body: usize = sections.iter().map(|s| s.len()).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + body);
    out.push(VERSION);
    out.extend(seq.to_le_bytes());
    out.extend(chain_head);
    out.extend((SECTIONS as u32).to_le_bytes());
    for s in &sections {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(crc32fast::hash(s).to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_le_bytes());
    debug_assert_eq!(out.len(), HEADER_LEN);
    for s in sections {
        out.extend_from_slice(s);
    }
    out
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4 bytes"))
}

impl Header {
    /// Parse the first [`HEADER_LEN`] bytes of a file of `file_len` bytes.
    pub fn parse(bytes: &[u8], file_len: u64) -> Result<Header, SnapshotError> {
        let decode = |m: String| SnapshotError::Decode(m);
        let version = *bytes.first().ok_or_else(|| decode("empty".into()))?;
        if !reads(version) {
            return Err(SnapshotError::Version(version));
        }
        let expected_count = sections_of(version);
        let header_len = header_len(expected_count);
        let Some(bytes) = bytes.get(..header_len) else {
            return Err(decode(format!(
                "{} bytes, shorter than a version {version} header ({header_len})",
                bytes.len()
            )));
        };
        let (head, crc) = bytes.split_at(header_len - 4);
        let (expected, got) = (le_u32(crc), crc32fast::hash(head));
        if expected != got {
            return Err(SnapshotError::Checksum {
                what: "header",
                expected,
                got,
            });
        }
        let count = le_u32(&bytes[41..45]) as usize;
        if count != expected_count {
            return Err(decode(format!(
                "{count} sections, not {expected_count} (version {version})"
            )));
        }
        let mut header = Header {
            seq: le_u64(&bytes[1..9]),
            chain_head: bytes[9..41].try_into().expect("32 bytes"),
            count,
            lens: [0; SECTIONS],
            crcs: [0; SECTIONS],
        };
        let mut total = header_len as u64;
        for (i, entry) in bytes[45..45 + count * 12].chunks_exact(12).enumerate() {
            header.lens[i] = le_u64(&entry[..8]);
            header.crcs[i] = le_u32(&entry[8..]);
            total = total.checked_add(header.lens[i]).ok_or_else(|| {
                decode(format!("section {} of {} bytes", NAMES[i], header.lens[i]))
            })?;
        }
        if total != file_len {
            return Err(decode(format!(
                "the header's sections make {total} bytes, the file has {file_len}"
            )));
        }
        for i in [EVENT_ENDS, CERTIFICATE_ENDS] {
            if !header.lens[i].is_multiple_of(8) {
                return Err(decode(format!(
                    "{} bytes of {}, not a multiple of 8",
                    header.lens[i], NAMES[i]
                )));
            }
        }
        if header.lens[DIGESTS] != header.seq.saturating_mul(32) {
            return Err(decode(format!(
                "{} bytes of entry digests for {} entries",
                header.lens[DIGESTS], header.seq
            )));
        }
        Ok(header)
    }

    /// Where section `i` lies in the file.
    pub fn range(&self, i: usize) -> Range<usize> {
        let start = header_len(self.count) + self.lens[..i].iter().sum::<u64>() as usize;
        start..start + self.lens[i] as usize
    }

    /// The bytes of the sections read at once (the state's, the recent transactions), and
    /// of the history's.
    pub fn sizes(&self) -> (u64, u64) {
        let state = self.lens[..EVENTS].iter().sum::<u64>() + self.lens[RECENT_TXS];
        (state, self.lens[EVENTS..RECENT_TXS].iter().sum())
    }

    /// The number of events the snapshot holds.
    pub fn events(&self) -> u64 {
        self.lens[EVENT_ENDS] / 8
    }

    /// Section `i`'s bytes are the ones the header describes, or a checksum error.
    fn check(&self, i: usize, crc: u32) -> Result<(), SnapshotError> {
        if crc == self.crcs[i] {
            Ok(())
        } else {
            Err(SnapshotError::Checksum {
                what: NAMES[i],
                expected: self.crcs[i],
                got: crc,
            })
        }
    }
}

/// The state: its sections' checksums checked, its large maps reading their entries from
/// `file` when first used.
fn state(
    file: &Arc<Vec<u8>>,
    state: Range<usize>,
    index: &[u8],
) -> Result<LedgerState, SnapshotError> {
    let index: StateIndex =
        bcs::from_bytes(index).map_err(|e| SnapshotError::Decode(format!("state index: {e}")))?;
    LedgerState::from_snapshot_parts(file.clone(), state, index)
        .map_err(|e| SnapshotError::Decode(format!("state: {e}")))
}

/// A snapshot's history: every event, the running digest after every entry, each certified
/// blob's first certificate.
#[derive(Debug)]
pub struct HistoryParts {
    pub events: EventLog,
    pub digests: Vec<[u8; 32]>,
    pub certificates: Certificates,
}

/// The history from its sections (their checksums already checked). `certificates` is the
/// certificates section alone.
fn history(
    events: Vec<u8>,
    event_ends: &[u8],
    digests: &[u8],
    certificates: Arc<Vec<u8>>,
    certificate_ends: &[u8],
) -> Result<HistoryParts, SnapshotError> {
    let events = EventLog::from_parts(events, read_u64s("event ends", event_ends)?)
        .map_err(|e| SnapshotError::Decode(e.to_string()))?;
    let digests = digests
        .chunks_exact(32)
        .map(|d| <[u8; 32]>::try_from(d).expect("chunks of 32"))
        .collect();
    let ends = read_u64s("certificate ends", certificate_ends)?;
    let len = certificates.len();
    let certificates = Certificates::from_encoded(certificates, 0..len, ends)
        .map_err(|e| SnapshotError::Decode(format!("certificates: {e}")))?;
    Ok(HistoryParts {
        events,
        digests,
        certificates,
    })
}

/// The table of recent transactions of a snapshot at `seq` (`None`: a format 11 file).
fn recent_txs(seq: u64, section: Option<&[u8]>) -> Result<RecentTxs, SnapshotError> {
    match section {
        Some(bytes) => {
            RecentTxs::decode(bytes, seq).map_err(|e| SnapshotError::Decode(e.to_string()))
        }
        None => Ok(RecentTxs::unknown_before(seq)),
    }
}

/// Decode a whole version 11 or 12 file held in memory, checking every section.
pub(super) fn decode(file: &Arc<Vec<u8>>) -> Result<super::Snapshot, SnapshotError> {
    let header = Header::parse(file, file.len() as u64)?;
    let section = |i: usize| &file[header.range(i)];
    for i in 0..header.count {
        header.check(i, crc32fast::hash(section(i)))?;
    }
    let state = state(file, header.range(STATE), section(STATE_INDEX))?;
    let recent = recent_txs(
        header.seq,
        (header.count > RECENT_TXS).then(|| section(RECENT_TXS)),
    )?;
    let parts = history(
        section(EVENTS).to_vec(),
        section(EVENT_ENDS),
        section(DIGESTS),
        Arc::new(section(CERTIFICATES).to_vec()),
        section(CERTIFICATE_ENDS),
    )?;
    Ok(super::Snapshot {
        seq: header.seq,
        chain_head: header.chain_head,
        state,
        events: parts.events,
        digests: parts.digests,
        certificates: parts.certificates,
        recent,
    })
}

/// `len` bytes of `file` at `offset`, with their CRC-32. With `split`, a large read is split
/// in two halves read (and hashed while in cache) on two threads: copying from the page cache
/// into fresh memory is the cost here, about 1 GB/s on one core.
fn read_checked(
    file: &File,
    offset: u64,
    len: usize,
    split: bool,
) -> std::io::Result<(Vec<u8>, u32)> {
    read_hashed(file, offset, len, len, split)
}

/// [`read_checked`], with the CRC-32 of only the first `hashed` bytes read.
pub(super) fn read_hashed(
    file: &File,
    offset: u64,
    len: usize,
    hashed: usize,
    split: bool,
) -> std::io::Result<(Vec<u8>, u32)> {
    let mut bytes = vec![0u8; len];
    // Read `part`, which starts `at` bytes into the read, and hash what of it is hashed.
    let read = |part: &mut [u8], at: usize| -> std::io::Result<crc32fast::Hasher> {
        file.read_exact_at(part, offset + at as u64)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&part[..hashed.saturating_sub(at).min(part.len())]);
        Ok(crc)
    };
    if !split || len <= SPLIT_ABOVE {
        let crc = read(&mut bytes, 0)?;
        return Ok((bytes, crc.finalize()));
    }
    let mid = len / 2;
    let (first, second) = bytes.split_at_mut(mid);
    let crc = std::thread::scope(|scope| {
        let other = scope.spawn(|| read(second, mid));
        let mut crc = read(first, 0)?;
        let rest = other
            .join()
            .map_err(|_| std::io::Error::other("a snapshot reading thread panicked"))??;
        crc.combine(&rest);
        Ok::<_, std::io::Error>(crc)
    })?;
    Ok((bytes, crc.finalize()))
}

/// A version 11 or 12 file opened for a restart: the header, the state and the recent
/// transactions read and checked, the history still in the file.
pub(super) struct Opened {
    pub header: Header,
    pub state: LedgerState,
    pub recent: RecentTxs,
    pub file: File,
}

/// Read the header, the state and the recent transactions of the version 11 or 12 file `file` (of `len` bytes, whose first
/// [`HEADER_LEN`] bytes are `head`).
pub(super) fn open_state(file: File, head: &[u8], len: u64) -> Result<Opened, SnapshotError> {
    let header = Header::parse(head, len)?;
    let state_range = header.range(STATE);
    // The restart waits for this read: both cores.
    let (bytes, crc) = read_checked(&file, state_range.start as u64, state_range.len(), true)?;
    header.check(STATE, crc)?;
    let index_range = header.range(STATE_INDEX);
    let (index, crc) = read_checked(&file, index_range.start as u64, index_range.len(), true)?;
    header.check(STATE_INDEX, crc)?;
    let recent = if header.count > RECENT_TXS {
        let r = header.range(RECENT_TXS);
        let (recent, crc) = read_checked(&file, r.start as u64, r.len(), false)?;
        header.check(RECENT_TXS, crc)?;
        Some(recent)
    } else {
        None
    };
    let recent = recent_txs(header.seq, recent.as_deref())?;
    let len = bytes.len();
    let state = state(&Arc::new(bytes), 0..len, &index)?;
    Ok(Opened {
        header,
        state,
        recent,
        file,
    })
}

/// Read and check the history sections of an opened file: on one thread, since the ledger is
/// serving meanwhile.
pub(super) fn read_history(header: &Header, file: &File) -> Result<HistoryParts, SnapshotError> {
    let read = |i: usize| -> Result<Vec<u8>, SnapshotError> {
        let r = header.range(i);
        let (bytes, crc) = read_checked(file, r.start as u64, r.len(), false)?;
        header.check(i, crc)?;
        Ok(bytes)
    };
    let events = read(EVENTS)?;
    let event_ends = read(EVENT_ENDS)?;
    let digests = read(DIGESTS)?;
    let certificates = read(CERTIFICATES)?;
    let certificate_ends = read(CERTIFICATE_ENDS)?;
    history(
        events,
        &event_ends,
        &digests,
        Arc::new(certificates),
        &certificate_ends,
    )
}
