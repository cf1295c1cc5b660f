//! [`FileLog`]: the embedded, single-file implementation of [`DurableLog`].

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::DurableLog;
use crate::error::LogError;
use crate::format::{
    DEFAULT_MAX_PAYLOAD_LEN, FILE_HEADER_LEN, FORMAT_VERSION, LOG_FILE_NAME, MAGIC,
    RECORD_HEADER_LEN, checksum, decode_file_header, decode_record_header, encode_file_header,
    encode_record, record_len,
};
use crate::recovery::{Recovery, Truncation, scan};

/// Options for [`FileLog::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Largest payload [`DurableLog::append_durable`] accepts, in bytes. Default 16 MiB.
    /// Values above `u32::MAX` are treated as `u32::MAX` (the format's length field is a u32).
    ///
    /// Only appends are checked: records already in the file are recovered whatever their
    /// size, so lowering this never makes acknowledged data unreadable.
    pub max_payload_len: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
        }
    }
}

/// What [`FileLog::open_from`] recovered: the number of records, and the payloads of those
/// from `first` on.
#[derive(Debug)]
pub struct Replay {
    /// Index of `payloads[0]`: the `keep_from` asked for, or the record count if that is less.
    pub first: u64,
    /// Records in the log.
    pub records: u64,
    /// The payloads of records `first..records`, in order.
    pub payloads: Vec<Vec<u8>>,
}

/// A durable log stored in `<dir>/ledger.log`.
///
/// The file is held under an exclusive advisory lock (`flock`) for the lifetime of the value,
/// so a second `FileLog` on the same directory — in this process or another — is refused.
///
/// Offsets of all records are kept in memory (8 bytes per record), so
/// [`read_range`](DurableLog::read_range) is one positioned read.
#[derive(Debug)]
pub struct FileLog {
    path: PathBuf,
    file: File,
    /// Byte offset of each record, by index.
    offsets: Vec<u64>,
    /// End of the last durable record.
    end: u64,
    max_payload_len: usize,
    /// Set after a failed write or fsync; every later append returns it.
    poisoned: Option<LogError>,
    recovery: Recovery,
}

impl FileLog {
    /// Open (creating if needed) the log in `dir`, recover it, and return it together with
    /// every recovered payload in index order, for the caller to replay.
    ///
    /// Recovery reads records in order and stops at the first one that is short, fails its
    /// checksum, or is not the next consecutive index; the file is truncated to the end of the
    /// last good record and fsync'd. A missing or unreadable header is a hard error.
    pub fn open(dir: &Path, options: LogOptions) -> Result<(FileLog, Vec<Vec<u8>>), LogError> {
        Self::open_from(dir, options, 0).map(|(log, replay)| (log, replay.payloads))
    }

    /// Like [`open`](Self::open), but return only the payloads from index `keep_from` on (for
    /// a caller that restores the state before it from a snapshot). Every record is still read
    /// and checked, but the earlier payloads are not held, so the memory an open needs does
    /// not grow with the log's history.
    pub fn open_from(
        dir: &Path,
        options: LogOptions,
        keep_from: u64,
    ) -> Result<(FileLog, Replay), LogError> {
        fs::create_dir_all(dir).map_err(|e| LogError::io("create directory", dir, e))?;
        let path = dir.join(LOG_FILE_NAME);
        let exists = path
            .try_exists()
            .map_err(|e| LogError::io("stat", &path, e))?;
        if !exists {
            create_fresh(dir, &path)?;
        }

        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| LogError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(LogError::Locked { path }),
            Err(TryLockError::Error(e)) => return Err(LogError::io("lock", &path, e)),
        }
        let file_len = file
            .metadata()
            .map_err(|e| LogError::io("stat", &path, e))?
            .len();
        check_header(&file, &path, file_len)?;

        let scan = scan(&file, &path, file_len, keep_from)?;
        if let Some(t) = &scan.truncation {
            cut_damaged_tail(&file, &path, t)?;
        }

        let recovery = Recovery {
            records: scan.offsets.len() as u64,
            truncation: scan.truncation,
        };
        tracing::debug!(path = %path.display(), records = recovery.records, "log: opened");
        let log = FileLog {
            path,
            file,
            offsets: scan.offsets,
            end: scan.end,
            max_payload_len: options.max_payload_len.min(u32::MAX as usize),
            poisoned: None,
            recovery,
        };
        let records = log.offsets.len() as u64;
        let replay = Replay {
            first: keep_from.min(records),
            records,
            payloads: scan.payloads,
        };
        Ok((log, replay))
    }

    /// Path of the log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What recovery found when this log was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Size in bytes of the durable part of the file (header included).
    pub fn byte_len(&self) -> u64 {
        self.end
    }

    /// Whether an earlier write/fsync failure has made this log refuse appends.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    fn record_end(&self, index: u64) -> u64 {
        match self.offsets.get(index as usize) {
            Some(&off) => off,
            None => self.end,
        }
    }

    fn poison(&mut self, err: LogError) -> LogError {
        tracing::error!(path = %self.path.display(), error = %err, "log: append failed; log is now poisoned");
        self.poisoned = Some(err.clone());
        err
    }
}

impl DurableLog for FileLog {
    fn len(&self) -> u64 {
        self.offsets.len() as u64
    }

    fn max_payload_len(&self) -> usize {
        self.max_payload_len
    }

    fn append_durable(&mut self, payloads: &[&[u8]]) -> Result<u64, LogError> {
        if let Some(cause) = &self.poisoned {
            return Err(LogError::Poisoned {
                cause: Box::new(cause.clone()),
            });
        }
        let first = self.len();
        if let Some(p) = payloads.iter().find(|p| p.len() > self.max_payload_len) {
            return Err(LogError::PayloadTooLarge {
                len: p.len(),
                max: self.max_payload_len,
            });
        }
        if payloads.is_empty() {
            return Ok(first);
        }

        let total: u64 = payloads.iter().map(|p| record_len(p.len())).sum();
        let mut buf = Vec::with_capacity(total as usize);
        let mut new_offsets = Vec::with_capacity(payloads.len());
        for (i, p) in payloads.iter().enumerate() {
            new_offsets.push(self.end + buf.len() as u64);
            encode_record(&mut buf, first + i as u64, p);
        }

        if let Err(e) = self.file.write_all_at(&buf, self.end) {
            let err = LogError::io("write", &self.path, e);
            return Err(self.poison(err));
        }
        if let Err(e) = self.file.sync_data() {
            let err = LogError::io("fdatasync", &self.path, e);
            return Err(self.poison(err));
        }
        self.end += buf.len() as u64;
        self.offsets.extend_from_slice(&new_offsets);
        Ok(first)
    }

    fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, LogError> {
        let len = self.len();
        if from > to || to > len {
            return Err(LogError::RangeOutOfBounds { from, to, len });
        }
        if from == to {
            return Ok(Vec::new());
        }
        let start = self.offsets[from as usize];
        let stop = self.record_end(to);
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
            if next as u64 != self.record_end(index + 1) - start {
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
}

/// Create `<dir>/ledger.log` holding only the header, atomically: write a temporary file,
/// fsync it, rename it into place and fsync the directory. A crash leaves either no log file
/// or a complete header, never a torn one.
fn create_fresh(dir: &Path, path: &Path) -> Result<(), LogError> {
    let tmp = dir.join(format!("{LOG_FILE_NAME}.tmp"));
    let mut f = File::create(&tmp).map_err(|e| LogError::io("create", &tmp, e))?;
    f.write_all(&encode_file_header())
        .map_err(|e| LogError::io("write", &tmp, e))?;
    f.sync_all().map_err(|e| LogError::io("fsync", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| LogError::io("rename", &tmp, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io("fsync directory", dir, e))?;
    tracing::info!(path = %path.display(), "log: created new log file");
    Ok(())
}

fn check_header(file: &File, path: &Path, file_len: u64) -> Result<(), LogError> {
    if file_len < FILE_HEADER_LEN {
        return Err(LogError::BadHeader {
            path: path.to_path_buf(),
            reason: format!(
                "file is {file_len} bytes long, shorter than the {FILE_HEADER_LEN}-byte header"
            ),
        });
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
    if h.version != FORMAT_VERSION {
        return Err(LogError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: h.version,
            supported: FORMAT_VERSION,
        });
    }
    if h.reserved != 0 {
        return Err(LogError::BadHeader {
            path: path.to_path_buf(),
            reason: format!("reserved header field is {:#010x}, expected 0", h.reserved),
        });
    }
    Ok(())
}

/// Report a damaged tail found on open and cut the file at its start (then fsync).
fn cut_damaged_tail(file: &File, path: &Path, t: &Truncation) -> Result<(), LogError> {
    if t.valid_record_follows {
        tracing::warn!(
            path = %path.display(),
            offset = t.offset,
            discarded_bytes = t.discarded_bytes,
            damage = %t.damage,
            "log: damaged record is followed by a valid-looking record; this is not a \
             torn write and may be media corruption. Cutting the log at the damaged \
             record; everything after it is discarded"
        );
    } else {
        tracing::warn!(
            path = %path.display(),
            offset = t.offset,
            discarded_bytes = t.discarded_bytes,
            damage = %t.damage,
            "log: discarding damaged tail (an unacknowledged write torn by a crash)"
        );
    }
    file.set_len(t.offset)
        .map_err(|e| LogError::io("truncate", path, e))?;
    file.sync_all()
        .map_err(|e| LogError::io("fsync", path, e))?;
    Ok(())
}
