//! Scanning a log file's records on open and deciding where the valid prefix ends.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::LogError;
use crate::format::{RECORD_HEADER_LEN, checksum, decode_record_header};

/// What [`FileLog::open`](crate::FileLog::open) found and did while recovering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Number of valid records recovered.
    pub records: u64,
    /// Set when a damaged tail was cut off the file.
    pub truncation: Option<Truncation>,
}

/// A damaged tail that recovery cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// Byte offset the file was truncated to (the end of the last good record).
    pub offset: u64,
    /// How many bytes were discarded.
    pub discarded_bytes: u64,
    /// What was wrong with the first bad record.
    pub damage: TailDamage,
    /// Whether a record with a valid checksum sat right after the damaged one. That is not what
    /// a torn write looks like and hints at media corruption inside acknowledged data.
    pub valid_record_follows: bool,
}

/// Why the first bad record was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailDamage {
    /// Fewer bytes than a record header remained.
    ShortHeader {
        /// Bytes that remained.
        available: u64,
    },
    /// The header declares more payload than the file holds.
    ShortPayload {
        /// Declared payload length.
        declared: u32,
        /// Payload bytes actually present.
        available: u64,
    },
    /// The CRC does not match the index and payload.
    BadChecksum,
    /// The CRC matches but the index is not the next consecutive one.
    IndexMismatch {
        /// The index that should have come next.
        expected: u64,
        /// The index found.
        found: u64,
    },
}

impl std::fmt::Display for TailDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TailDamage::ShortHeader { available } => {
                write!(
                    f,
                    "short record header ({available} of {RECORD_HEADER_LEN} bytes)"
                )
            }
            TailDamage::ShortPayload {
                declared,
                available,
            } => write!(
                f,
                "short payload ({available} of {declared} declared bytes)"
            ),
            TailDamage::BadChecksum => write!(f, "checksum mismatch"),
            TailDamage::IndexMismatch { expected, found } => {
                write!(f, "index {found} where {expected} was expected")
            }
        }
    }
}

/// The outcome of scanning a file.
pub(crate) struct Scan {
    /// Payloads of the valid records from index `keep_from` on, in order (those before it are
    /// checked and dropped).
    pub payloads: Vec<Vec<u8>>,
    /// Byte offset of each valid record.
    pub offsets: Vec<u64>,
    /// End of the last valid record (the file's length once any tail is cut).
    pub end: u64,
    /// The damaged tail, if any.
    pub truncation: Option<Truncation>,
}

/// Where a segment file's records start and which index the first one has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start {
    /// Byte offset of the first record (the header's length).
    pub offset: u64,
    /// Index of the first record.
    pub index: u64,
}

/// Read every record of a segment file after its header. Only genuine I/O errors are returned
/// as errors; damage is reported in [`Scan::truncation`] and never causes anything to be cut
/// here. Every record is checked, but only the payloads from index `keep_from` on are kept:
/// those before are read into one reused buffer.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    start: Start,
    file_len: u64,
    keep_from: u64,
) -> Result<Scan, LogError> {
    let read_err = |e| LogError::io("read", path, e);
    let mut reader_file = file;
    reader_file
        .seek(SeekFrom::Start(start.offset))
        .map_err(read_err)?;
    let mut reader = BufReader::with_capacity(1 << 20, reader_file);

    let mut payloads = Vec::new();
    let mut offsets = Vec::new();
    let mut offset = start.offset;
    let mut skipped = Vec::new();

    let damage = loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            break None;
        }
        if remaining < RECORD_HEADER_LEN as u64 {
            break Some((
                TailDamage::ShortHeader {
                    available: remaining,
                },
                None,
            ));
        }
        let mut hdr = [0u8; RECORD_HEADER_LEN];
        reader.read_exact(&mut hdr).map_err(read_err)?;
        let h = decode_record_header(&hdr);
        let available = remaining - RECORD_HEADER_LEN as u64;
        if u64::from(h.len) > available {
            let damage = TailDamage::ShortPayload {
                declared: h.len,
                available,
            };
            break Some((damage, None));
        }
        let expected = start.index + offsets.len() as u64;
        let keep = expected >= keep_from;
        let mut payload = if keep {
            vec![0u8; h.len as usize]
        } else {
            skipped.resize(h.len as usize, 0);
            std::mem::take(&mut skipped)
        };
        reader.read_exact(&mut payload).map_err(read_err)?;
        let record_end = offset + RECORD_HEADER_LEN as u64 + u64::from(h.len);
        if checksum(h.index, &payload) != h.crc {
            break Some((TailDamage::BadChecksum, Some(record_end)));
        }
        if h.index != expected {
            let damage = TailDamage::IndexMismatch {
                expected,
                found: h.index,
            };
            break Some((damage, Some(record_end)));
        }
        offsets.push(offset);
        if keep {
            payloads.push(payload);
        } else {
            skipped = payload;
        }
        offset = record_end;
    };

    let truncation = match damage {
        None => None,
        Some((damage, bad_end)) => {
            let valid_record_follows = match bad_end {
                Some(next) => valid_record_at(file, next, file_len).map_err(read_err)?,
                None => false,
            };
            Some(Truncation {
                offset,
                discarded_bytes: file_len - offset,
                damage,
                valid_record_follows,
            })
        }
    };
    Ok(Scan {
        payloads,
        offsets,
        end: offset,
        truncation,
    })
}

/// Whether a complete record with a matching checksum starts at `offset`.
fn valid_record_at(file: &File, offset: u64, file_len: u64) -> std::io::Result<bool> {
    if file_len.saturating_sub(offset) < RECORD_HEADER_LEN as u64 {
        return Ok(false);
    }
    let mut hdr = [0u8; RECORD_HEADER_LEN];
    file.read_exact_at(&mut hdr, offset)?;
    let h = decode_record_header(&hdr);
    if u64::from(h.len) > file_len - offset - RECORD_HEADER_LEN as u64 {
        return Ok(false);
    }
    let mut payload = vec![0u8; h.len as usize];
    file.read_exact_at(&mut payload, offset + RECORD_HEADER_LEN as u64)?;
    Ok(checksum(h.index, &payload) == h.crc)
}
