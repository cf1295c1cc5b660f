//! One file of a [`FileLog`](crate::FileLog): its header, its records' offsets, and reads.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::format::{
    FILE_HEADER_LEN, FILE_HEADER_V2_LEN, FORMAT_VERSION, MAGIC, RECORD_HEADER_LEN, checksum,
    decode_file_header, decode_record_header,
};
use crate::recovery::{Start, scan};

/// A segment file and what is known of its records.
#[derive(Debug)]
pub(crate) struct Segment {
    pub path: PathBuf,
    pub file: File,
    /// Where the records start, and the first one's index.
    pub start: Start,
    /// Records in the file.
    pub count: u64,
    /// Byte offset of each record, once the file has been scanned. A sealed segment that an
    /// open did not need is only scanned when a read reaches it.
    pub offsets: Option<Vec<u64>>,
    /// End of the last record.
    pub end: u64,
}

impl Segment {
    /// Index one past the last record.
    pub fn end_index(&self) -> u64 {
        self.start.index + self.count
    }

    /// Bytes of records (the header excluded).
    pub fn record_bytes(&self) -> u64 {
        self.end - self.start.offset
    }

    /// Read records `[from, to)`, all inside this segment, checking each one.
    pub fn read(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, LogError> {
        debug_assert!(self.start.index <= from && from <= to && to <= self.end_index());
        if from == to {
            return Ok(Vec::new());
        }
        let Some(offsets) = &self.offsets else {
            return self.read_unscanned(from, to);
        };
        let at = |index: u64| match offsets.get((index - self.start.index) as usize) {
            Some(&off) => off,
            None => self.end,
        };
        let start = at(from);
        let stop = at(to);
        let mut buf = vec![0u8; (stop - start) as usize];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| LogError::io("read", &self.path, e))?;

        let mut out = Vec::with_capacity((to - from) as usize);
        let mut pos = 0usize;
        for index in from..to {
            let offset = start + pos as u64;
            let corrupt = |reason| LogError::Corrupt {
                path: self.path.clone(),
                index,
                offset,
                reason,
            };
            let hdr: &[u8; RECORD_HEADER_LEN] = buf[pos..pos + RECORD_HEADER_LEN]
                .try_into()
                .expect("header slice");
            let h = decode_record_header(hdr);
            let body = pos + RECORD_HEADER_LEN;
            let next = body + h.len as usize;
            if next as u64 != at(index + 1) - start {
                return Err(corrupt("length field changed since open"));
            }
            let payload = &buf[body..next];
            if h.index != index || checksum(h.index, payload) != h.crc {
                return Err(corrupt("checksum or index mismatch"));
            }
            out.push(payload.to_vec());
            pos = next;
        }
        Ok(out)
    }

    /// A read from a sealed segment that was not scanned on open: scan it now (every record is
    /// checked), keeping the payloads from `from` on.
    fn read_unscanned(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, LogError> {
        let found = self.scan_sealed(from)?;
        let mut payloads = found.payloads;
        payloads.truncate((to - from) as usize);
        Ok(payloads)
    }

    /// Scan a sealed segment, which must hold exactly `count` intact records: it was complete
    /// and durable before the next one was started, so any damage is corruption, not a torn
    /// write, and is reported rather than cut.
    pub fn scan_sealed(&self, keep_from: u64) -> Result<crate::recovery::Scan, LogError> {
        let found = scan(&self.file, &self.path, self.start, self.end, keep_from)?;
        if let Some(t) = &found.truncation {
            return Err(LogError::Corrupt {
                path: self.path.clone(),
                index: self.start.index + found.offsets.len() as u64,
                offset: t.offset,
                reason: "damaged record in a sealed segment",
            });
        }
        if found.offsets.len() as u64 != self.count {
            return Err(LogError::Corrupt {
                path: self.path.clone(),
                index: self.start.index + found.offsets.len() as u64,
                offset: found.end,
                reason: "sealed segment holds fewer records than the next one's first index says",
            });
        }
        Ok(found)
    }
}

/// Read and check a segment file's header; returns where its records start.
pub(crate) fn read_header(file: &File, path: &Path, file_len: u64) -> Result<Start, LogError> {
    let bad = |reason: String| LogError::BadHeader {
        path: path.to_path_buf(),
        reason,
    };
    if file_len < FILE_HEADER_LEN {
        return Err(bad(format!(
            "file is {file_len} bytes long, shorter than the {FILE_HEADER_LEN}-byte header"
        )));
    }
    let mut raw = [0u8; FILE_HEADER_LEN as usize];
    file.read_exact_at(&mut raw, 0)
        .map_err(|e| LogError::io("read header", path, e))?;
    let h = decode_file_header(&raw);
    if h.magic != MAGIC {
        return Err(LogError::BadMagic {
            path: path.to_path_buf(),
            found: h.magic,
        });
    }
    if h.version == 0 || h.version > FORMAT_VERSION {
        return Err(LogError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: h.version,
            supported: FORMAT_VERSION,
        });
    }
    if h.reserved != 0 {
        return Err(bad(format!(
            "reserved header field is {:#010x}, expected 0",
            h.reserved
        )));
    }
    if h.version == 1 {
        return Ok(Start {
            offset: FILE_HEADER_LEN,
            index: 0,
        });
    }
    if file_len < FILE_HEADER_V2_LEN {
        return Err(bad(format!(
            "file is {file_len} bytes long, shorter than the {FILE_HEADER_V2_LEN}-byte \
             version-2 header"
        )));
    }
    let mut first = [0u8; 8];
    file.read_exact_at(&mut first, FILE_HEADER_LEN)
        .map_err(|e| LogError::io("read header", path, e))?;
    Ok(Start {
        offset: FILE_HEADER_V2_LEN,
        index: u64::from_le_bytes(first),
    })
}
