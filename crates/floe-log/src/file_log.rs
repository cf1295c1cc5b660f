//! [`FileLog`]: the embedded implementation of [`DurableLog`], a directory of segment files.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::DurableLog;
use crate::error::LogError;
use crate::format::{
    DEFAULT_MAX_PAYLOAD_LEN, DEFAULT_SEGMENT_BYTES, LOG_FILE_NAME, encode_file_header,
    encode_record, parse_sealed_segment_name, record_len, sealed_segment_name,
};
use crate::recovery::{Recovery, Start, Truncation, scan};
use crate::segment::{Segment, read_header};

/// Name of the lock file inside the data directory (the segment files change on roll-over;
/// this file does not).
pub const LOCK_FILE_NAME: &str = "ledger.lock";

/// Options for [`FileLog::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Largest payload [`DurableLog::append_durable`] accepts, in bytes. Default 16 MiB.
    /// Values above `u32::MAX` are treated as `u32::MAX` (the format's length field is a u32).
    ///
    /// Only appends are checked: records already in the file are recovered whatever their
    /// size, so lowering this never makes acknowledged data unreadable.
    pub max_payload_len: usize,
    /// Once the file being appended to holds this many bytes of records, the next append
    /// seals it and starts a new one, so that [`DurableLog::prune_before`] can delete whole
    /// files. Default 8 MiB. A batch is never split, so a file may exceed this.
    pub segment_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// What [`FileLog::open_from`] recovered: the number of records, and the payloads of those
/// from `first` on.
#[derive(Debug)]
pub struct Replay {
    /// Index of `payloads[0]`: the `keep_from` asked for, raised to the log's first index if
    /// that is pruned, and lowered to the record count if that is less.
    pub first: u64,
    /// Records in the log (the index the next one will get).
    pub records: u64,
    /// The payloads of records `first..records`, in order.
    pub payloads: Vec<Vec<u8>>,
}

/// A durable log stored in `<dir>`: the file being appended to, `ledger.log`, and the sealed
/// files before it, `ledger-<first index>.log` (see [`format`](crate::format)).
///
/// The directory is held under an exclusive advisory lock (`flock` of `ledger.lock`, and of
/// `ledger.log`) for the lifetime of the value, so a second `FileLog` on the same directory —
/// in this process or another — is refused.
///
/// Offsets of the records of scanned files are kept in memory (8 bytes per record), so
/// [`read_range`](DurableLog::read_range) is one positioned read per file.
#[derive(Debug)]
pub struct FileLog {
    dir: PathBuf,
    /// `<dir>/ledger.log`.
    path: PathBuf,
    /// Held for its `flock`.
    _lock: File,
    /// Sealed segments, oldest first, each ending where the next starts.
    sealed: VecDeque<Segment>,
    /// The segment appended to (always at `path`).
    active: Segment,
    max_payload_len: usize,
    segment_bytes: u64,
    /// Set after a failed write or fsync; every later append returns it.
    poisoned: Option<LogError>,
    recovery: Recovery,
}

impl FileLog {
    /// Open (creating if needed) the log in `dir`, recover it, and return it together with
    /// every recovered payload in index order, for the caller to replay.
    ///
    /// Recovery reads records in order and stops at the first one that is short, fails its
    /// checksum, or is not the next consecutive index; the file being appended to is truncated
    /// to the end of the last good record and fsync'd. A missing or unreadable header is a hard
    /// error, and so is damage inside a sealed file (it was durable before the next began).
    pub fn open(dir: &Path, options: LogOptions) -> Result<(FileLog, Vec<Vec<u8>>), LogError> {
        Self::open_from(dir, options, 0).map(|(log, replay)| (log, replay.payloads))
    }

    /// Like [`open`](Self::open), but return only the payloads from index `keep_from` on (for
    /// a caller that restores the state before it from a snapshot). Sealed files wholly before
    /// `keep_from` are not read now (their records are checked when a read reaches them), and
    /// the earlier records of the others are checked without being held, so neither the time
    /// nor the memory an open needs grows with the log's history.
    pub fn open_from(
        dir: &Path,
        options: LogOptions,
        keep_from: u64,
    ) -> Result<(FileLog, Replay), LogError> {
        fs::create_dir_all(dir).map_err(|e| LogError::io("create directory", dir, e))?;
        let lock = lock_dir(dir)?;
        let path = dir.join(LOG_FILE_NAME);
        let mut sealed = list_sealed(dir)?;
        let exists = path
            .try_exists()
            .map_err(|e| LogError::io("stat", &path, e))?;
        if !exists {
            if let Some((first, _)) = sealed.first() {
                return Err(LogError::BadHeader {
                    path,
                    reason: format!(
                        "missing while sealed segments (from {}) exist, so the newest records \
                         are gone; restore it from a backup",
                        sealed_segment_name(*first)
                    ),
                });
            }
            create_fresh(dir, &path)?;
        }

        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| LogError::io("open", &path, e))?;
        try_lock(&file, &path)?;
        let file_len = file
            .metadata()
            .map_err(|e| LogError::io("stat", &path, e))?
            .len();
        let start = read_header(&file, &path, file_len)?;
        drop_interrupted_roll(dir, &mut sealed, start.index)?;
        let mut sealed = open_sealed(sealed, start.index)?;

        let mut payloads = Vec::new();
        for seg in sealed.iter_mut().filter(|s| s.end_index() > keep_from) {
            let found = seg.scan_sealed(keep_from)?;
            seg.offsets = Some(found.offsets);
            payloads.extend(found.payloads);
        }
        let found = scan(&file, &path, start, file_len, keep_from)?;
        if let Some(t) = &found.truncation {
            cut_damaged_tail(&file, &path, t)?;
        }
        payloads.extend(found.payloads);
        let active = Segment {
            path: path.clone(),
            file,
            start,
            count: found.offsets.len() as u64,
            offsets: Some(found.offsets),
            end: found.end,
        };

        let recovery = Recovery {
            records: active.end_index(),
            truncation: found.truncation,
        };
        tracing::debug!(path = %path.display(), records = recovery.records, sealed = sealed.len(), "log: opened");
        let log = FileLog {
            dir: dir.to_path_buf(),
            path,
            _lock: lock,
            sealed,
            active,
            max_payload_len: options.max_payload_len.min(u32::MAX as usize),
            segment_bytes: options.segment_bytes.max(1),
            poisoned: None,
            recovery,
        };
        let records = log.len();
        let replay = Replay {
            first: keep_from.max(log.first_index()).min(records),
            records,
            payloads,
        };
        Ok((log, replay))
    }

    /// Path of the file being appended to (`<dir>/ledger.log`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What recovery found when this log was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Size in bytes of the durable part of the segment files (headers included).
    pub fn byte_len(&self) -> u64 {
        self.sealed.iter().map(|s| s.end).sum::<u64>() + self.active.end
    }

    /// Number of segment files (the sealed ones and the one appended to).
    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// Whether an earlier write/fsync failure has made this log refuse appends.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    fn poison(&mut self, err: LogError) -> LogError {
        tracing::error!(path = %self.path.display(), error = %err, "log: append failed; log is now poisoned");
        self.poisoned = Some(err.clone());
        err
    }

    /// Seal `ledger.log` and start a new, empty one whose first record is the next index.
    ///
    /// The new file is written and fsync'd under a temporary name; the current one gets its
    /// sealed name as a second (hard) link; a rename then replaces `ledger.log`; the directory
    /// is fsync'd. `ledger.log` exists at every instant. A crash between the link and the
    /// rename leaves a sealed link of the current file, which the next open deletes.
    fn roll(&mut self) -> Result<(), LogError> {
        let first = self.len();
        let tmp = self.dir.join(format!("{LOG_FILE_NAME}.next"));
        let header = encode_file_header(first);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| LogError::io("create", &tmp, e))?;
        file.write_all(&header)
            .map_err(|e| LogError::io("write", &tmp, e))?;
        file.sync_all()
            .map_err(|e| LogError::io("fsync", &tmp, e))?;
        try_lock(&file, &tmp)?;
        let sealed_path = self.dir.join(sealed_segment_name(self.active.start.index));
        fs::hard_link(&self.path, &sealed_path)
            .map_err(|e| LogError::io("link", &sealed_path, e))?;
        fs::rename(&tmp, &self.path).map_err(|e| LogError::io("rename", &tmp, e))?;
        sync_dir(&self.dir)?;
        let next = Segment {
            path: self.path.clone(),
            file,
            start: Start {
                offset: header.len() as u64,
                index: first,
            },
            count: 0,
            offsets: Some(Vec::new()),
            end: header.len() as u64,
        };
        let mut done = std::mem::replace(&mut self.active, next);
        done.path = sealed_path;
        tracing::info!(sealed = %done.path.display(), records = done.count, "log: segment sealed");
        self.sealed.push_back(done);
        Ok(())
    }
}

impl DurableLog for FileLog {
    fn len(&self) -> u64 {
        self.active.end_index()
    }

    fn first_index(&self) -> u64 {
        self.sealed
            .front()
            .map_or(self.active.start.index, |s| s.start.index)
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
        let full = self.active.count > 0 && self.active.record_bytes() >= self.segment_bytes;
        if full && let Err(e) = self.roll() {
            return Err(self.poison(e));
        }

        let total: u64 = payloads.iter().map(|p| record_len(p.len())).sum();
        let mut buf = Vec::with_capacity(total as usize);
        let mut new_offsets = Vec::with_capacity(payloads.len());
        let end = self.active.end;
        for (i, p) in payloads.iter().enumerate() {
            new_offsets.push(end + buf.len() as u64);
            encode_record(&mut buf, first + i as u64, p);
        }

        if let Err(e) = self.active.file.write_all_at(&buf, end) {
            let err = LogError::io("write", &self.path, e);
            return Err(self.poison(err));
        }
        if let Err(e) = self.active.file.sync_data() {
            let err = LogError::io("fdatasync", &self.path, e);
            return Err(self.poison(err));
        }
        self.active.end += buf.len() as u64;
        self.active.count += payloads.len() as u64;
        self.active
            .offsets
            .get_or_insert_with(Vec::new)
            .extend_from_slice(&new_offsets);
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
        let first = self.first_index();
        if from < first {
            return Err(LogError::Pruned { from, first });
        }
        let mut out = Vec::with_capacity((to - from) as usize);
        for seg in self.sealed.iter().chain(std::iter::once(&self.active)) {
            let (a, b) = (from.max(seg.start.index), to.min(seg.end_index()));
            if a < b {
                out.extend(seg.read(a, b)?);
            }
        }
        Ok(out)
    }

    /// Delete the sealed files whose records all precede `index`; the file being appended to
    /// is never deleted. Returns the new first index.
    fn prune_before(&mut self, index: u64) -> Result<u64, LogError> {
        let mut removed = 0usize;
        while let Some(seg) = self.sealed.front() {
            if seg.end_index() > index {
                break;
            }
            match fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("remove", &seg.path, e)),
            }
            self.sealed.pop_front();
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
            tracing::info!(
                removed,
                first = self.first_index(),
                "log: pruned sealed segments"
            );
        }
        Ok(self.first_index())
    }
}

/// Take the directory's lock file, refusing if another handle holds it.
fn lock_dir(dir: &Path) -> Result<File, LogError> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| LogError::io("open", &path, e))?;
    try_lock(&file, &path)?;
    Ok(file)
}

fn try_lock(file: &File, path: &Path) -> Result<(), LogError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(LogError::Locked {
            path: path.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(LogError::io("lock", path, e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io("fsync directory", dir, e))
}

/// The sealed segment files in `dir`, by first index.
fn list_sealed(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| LogError::io("list", dir, e))? {
        let entry = entry.map_err(|e| LogError::io("list", dir, e))?;
        let name = entry.file_name();
        if let Some(first) = name.to_str().and_then(parse_sealed_segment_name) {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// A sealed file starting where `ledger.log` starts is the second link a roll-over made just
/// before a crash (the rename that would have replaced `ledger.log` did not happen): delete it.
/// One starting later cannot come from a roll-over.
fn drop_interrupted_roll(
    dir: &Path,
    sealed: &mut Vec<(u64, PathBuf)>,
    active_first: u64,
) -> Result<(), LogError> {
    while let Some((first, path)) = sealed.last() {
        if *first < active_first {
            break;
        }
        if *first > active_first {
            return Err(LogError::BadHeader {
                path: path.clone(),
                reason: format!(
                    "sealed segment starts at record {first}, after {LOG_FILE_NAME}'s first \
                     record {active_first}; the segment files do not form one log"
                ),
            });
        }
        tracing::warn!(file = %path.display(), "log: removing the link of an interrupted roll-over");
        fs::remove_file(path).map_err(|e| LogError::io("remove", path, e))?;
        sync_dir(dir)?;
        sealed.pop();
    }
    Ok(())
}

/// Open the sealed files (checking each header against its name); the record count of each is
/// where the next one starts. Their records are not read here.
fn open_sealed(
    sealed: Vec<(u64, PathBuf)>,
    active_first: u64,
) -> Result<VecDeque<Segment>, LogError> {
    let nexts: Vec<u64> = sealed
        .iter()
        .skip(1)
        .map(|(first, _)| *first)
        .chain(std::iter::once(active_first))
        .collect();
    let mut out = VecDeque::with_capacity(sealed.len());
    for ((first, path), next) in sealed.into_iter().zip(nexts) {
        let file = File::open(&path).map_err(|e| LogError::io("open", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| LogError::io("stat", &path, e))?
            .len();
        let start = read_header(&file, &path, len)?;
        if start.index != first {
            return Err(LogError::BadHeader {
                path,
                reason: format!(
                    "the file name says its first record is {first}, the header says {}",
                    start.index
                ),
            });
        }
        out.push_back(Segment {
            path,
            file,
            start,
            count: next - first,
            offsets: None,
            end: len,
        });
    }
    Ok(out)
}

/// Create `<dir>/ledger.log` holding only the header, atomically: write a temporary file,
/// fsync it, rename it into place and fsync the directory. A crash leaves either no log file
/// or a complete header, never a torn one.
fn create_fresh(dir: &Path, path: &Path) -> Result<(), LogError> {
    let tmp = dir.join(format!("{LOG_FILE_NAME}.tmp"));
    let mut f = File::create(&tmp).map_err(|e| LogError::io("create", &tmp, e))?;
    f.write_all(&encode_file_header(0))
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
