//! Segment files: sliver bytes written once, outside the engine (format version 3).
//!
//! Before format 3 every sliver went through the engine: into its journal on commit, then
//! into a blob file when the memtable was flushed, so each byte was written twice and held in
//! a memtable in between. On this VM the kernel's first touch of fresh page-cache pages was
//! 17–43 % of all samples of a 64 MiB PUT profile, so the second write cost as much as the
//! first. A large batch of slivers (one upload of a blob's slivers to this node, a batch of a
//! shard migration) is now written once, to a file of its own under `segments/`, and the engine
//! keeps only where each sliver is (see [`Location`]).
//!
//! # File layout
//!
//! `segments/<id>.seg`, `<id>` sixteen lower-case hex digits. The file starts with the 16-byte
//! header `floe-seg` + version (u32 LE, 1) + 4 zero bytes; then the values back to back, each
//! exactly the engine's inline sliver value (tag 0, ULEB128 length, symbols, symbol size and
//! index). A value is found by its [`Location`] and checked against the CRC-32 (IEEE) stored
//! there.
//!
//! # Lifetime
//!
//! A segment is created whole: written, fsynced (file and directory) and only then referenced
//! by one engine batch that also records `segment/<id>` with the number of live slivers in it.
//! Deleting or replacing a located sliver decrements that count in the same batch; afterwards
//! the value's bytes are released (a punched hole) and a segment whose count reached zero is
//! unlinked. Opening the store unlinks every segment without a record: one written by a batch
//! that never committed, or emptied by a batch whose unlink did not happen.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use floe_core::SliverData;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Sub-directory of the store directory holding the segment files.
pub(crate) const SEGMENTS_DIR: &str = "segments";
const MAGIC: &[u8; 8] = b"floe-seg";
/// Version of the segment file layout written by this build.
const FILE_VERSION: u32 = 1;
const HEADER_LEN: u64 = 16;

/// Where a sliver's value is: its segment, byte range and checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Location {
    pub segment: u64,
    pub offset: u64,
    pub len: u32,
    pub crc32: u32,
}

/// The segment files of one store.
pub(crate) struct Segments {
    dir: PathBuf,
    next_id: AtomicU64,
    /// Readers hold it from looking a location up until they have read the bytes; space is
    /// released (holes punched, files unlinked) only with it held for writing, so a reader
    /// never reads a released range.
    gate: RwLock<()>,
    /// Whether a new segment is fsynced before it is referenced (`Durability::Sync`).
    sync: bool,
    /// Segments written without fsync (buffered durability), synced by [`Self::persist`].
    unsynced: Mutex<Vec<u64>>,
}

impl Segments {
    /// Opens (creating) the directory under `store_dir`; `recorded` are the segments that have
    /// a record: every other segment file is unlinked.
    pub(crate) fn open(
        store_dir: &Path,
        recorded: &[u64],
        sync: bool,
    ) -> Result<Segments, StoreError> {
        let dir = store_dir.join(SEGMENTS_DIR);
        fs::create_dir_all(&dir)
            .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        let recorded: HashSet<u64> = recorded.iter().copied().collect();
        let mut max = recorded.iter().copied().max().unwrap_or(0);
        let entries = fs::read_dir(&dir)
            .map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
        let mut removed = false;
        for entry in entries {
            let entry =
                entry.map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
            let name = entry.file_name();
            let id = name.to_str().and_then(parse_name);
            match id {
                Some(id) if recorded.contains(&id) => max = max.max(id),
                _ => {
                    // Unreferenced (or not ours to keep: a temporary name of a crashed writer).
                    if let Some(id) = id {
                        max = max.max(id);
                    }
                    let path = entry.path();
                    fs::remove_file(&path)
                        .map_err(|e| StoreError::io(format!("removing {}", path.display()), e))?;
                    removed = true;
                }
            }
        }
        if removed {
            sync_dir(&dir)?;
        }
        Ok(Segments {
            dir,
            next_id: AtomicU64::new(max + 1),
            gate: RwLock::new(()),
            sync,
            unsynced: Mutex::new(Vec::new()),
        })
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}.seg"))
    }

    /// Writes the slivers' inline values to a new segment, durably when the store syncs; its
    /// id and where each value went.
    pub(crate) fn write(
        &self,
        slivers: &[&SliverData],
    ) -> Result<(u64, Vec<Location>), StoreError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let path = self.path(id);
        let ctx = |what: &str| format!("{what} segment {}", path.display());
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StoreError::io(ctx("creating"), e))?;
        let mut header = [0u8; HEADER_LEN as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&FILE_VERSION.to_le_bytes());
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, &mut file);
        out.write_all(&header)
            .map_err(|e| StoreError::io(ctx("writing"), e))?;
        let mut offset = HEADER_LEN;
        let mut locations = Vec::with_capacity(slivers.len());
        for sliver in slivers {
            let (head, tail) = crate::codec::sliver_frame(sliver)?;
            let mut crc = crc32fast::Hasher::new();
            for part in [&head[..], &sliver.symbols[..], &tail[..]] {
                crc.update(part);
                out.write_all(part)
                    .map_err(|e| StoreError::io(ctx("writing"), e))?;
            }
            let len = head.len() + sliver.symbols.len() + tail.len();
            let len = u32::try_from(len)
                .map_err(|_| StoreError::corrupt("sliver", "too long for a segment"))?;
            locations.push(Location {
                segment: id,
                offset,
                len,
                crc32: crc.finalize(),
            });
            offset += u64::from(len);
        }
        out.flush().map_err(|e| StoreError::io(ctx("writing"), e))?;
        drop(out);
        if self.sync {
            file.sync_data()
                .map_err(|e| StoreError::io(ctx("syncing"), e))?;
            sync_dir(&self.dir)?;
        } else {
            self.unsynced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(id);
        }
        Ok((id, locations))
    }

    /// Holds off the release of space while located values are looked up and read.
    pub(crate) fn read_gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads and checks the value at `at`; the caller holds [`Self::read_gate`] since before
    /// it looked the location up.
    pub(crate) fn read(&self, at: &Location) -> Result<Vec<u8>, StoreError> {
        let path = self.path(at.segment);
        let what = || format!("segment {}", path.display());
        let file =
            File::open(&path).map_err(|e| StoreError::io(format!("opening {}", what()), e))?;
        let mut buf = vec![0u8; at.len as usize];
        file.read_exact_at(&mut buf, at.offset).map_err(|e| {
            StoreError::io(
                format!("reading {} bytes at {} of {}", at.len, at.offset, what()),
                e,
            )
        })?;
        let crc = crc32fast::hash(&buf);
        if crc != at.crc32 {
            return Err(StoreError::corrupt(
                what(),
                format!(
                    "checksum of the {} bytes at {} is {crc:08x}, expected {:08x}",
                    at.len, at.offset, at.crc32
                ),
            ));
        }
        Ok(buf)
    }

    /// Releases the space of values no longer referenced and unlinks the segments emptied.
    /// Called after the engine batch that dropped the references committed. Failures only
    /// delay the release: a hole not punched is reclaimed with its segment, a segment not
    /// unlinked on the next open.
    pub(crate) fn release(&self, dead: &[Location], emptied: &[u64]) {
        if dead.is_empty() && emptied.is_empty() {
            return;
        }
        // Each segment is opened once, however many of its values died.
        let mut holes: BTreeMap<u64, Vec<&Location>> = BTreeMap::new();
        for at in dead.iter().filter(|at| !emptied.contains(&at.segment)) {
            holes.entry(at.segment).or_default().push(at);
        }
        let _gate = self.gate.write().unwrap_or_else(|e| e.into_inner());
        for (id, ranges) in holes {
            let Ok(file) = OpenOptions::new().write(true).open(self.path(id)) else {
                continue;
            };
            for at in ranges {
                let _ = rustix::fs::fallocate(
                    &file,
                    rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
                    at.offset,
                    u64::from(at.len),
                );
            }
        }
        for &id in emptied {
            let _ = fs::remove_file(self.path(id));
        }
    }

    /// Fsyncs the segments written without it, and the directory.
    pub(crate) fn persist(&self) -> Result<(), StoreError> {
        let ids = std::mem::take(&mut *self.unsynced.lock().unwrap_or_else(|e| e.into_inner()));
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            let path = self.path(id);
            match File::open(&path) {
                Ok(file) => file
                    .sync_data()
                    .map_err(|e| StoreError::io(format!("syncing {}", path.display()), e))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // emptied since
                Err(e) => return Err(StoreError::io(format!("opening {}", path.display()), e)),
            }
        }
        sync_dir(&self.dir)
    }

    /// Bytes the segment files occupy on disk (holes excluded).
    pub(crate) fn disk_space(&self) -> Result<u64, StoreError> {
        let ctx = || format!("listing {}", self.dir.display());
        let mut total = 0;
        for entry in fs::read_dir(&self.dir).map_err(|e| StoreError::io(ctx(), e))? {
            let entry = entry.map_err(|e| StoreError::io(ctx(), e))?;
            match entry.metadata() {
                Ok(m) => total += m.blocks() * 512,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(ctx(), e)),
            }
        }
        Ok(total)
    }
}

fn parse_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    (hex.len() == 16
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| u64::from_str_radix(hex, 16).ok())
    .flatten()
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("syncing directory {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_core::SliverIndex;

    fn sliver(len: usize, seed: u8) -> SliverData {
        SliverData {
            symbols: (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect(),
            symbol_size: 7,
            index: SliverIndex(u16::from(seed)),
        }
    }

    #[test]
    fn names_round_trip_and_others_are_refused() {
        assert_eq!(parse_name("00000000000000ff.seg"), Some(255));
        assert_eq!(parse_name("00000000000000FF.seg"), None);
        assert_eq!(parse_name("ff.seg"), None);
        assert_eq!(parse_name("00000000000000ff.seg.tmp"), None);
    }

    #[test]
    fn values_read_back_and_a_flipped_byte_is_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        let segs = Segments::open(tmp.path(), &[], true).unwrap();
        let (a, b) = (sliver(1000, 3), sliver(5, 9));
        let (id, locs) = segs.write(&[&a, &b]).unwrap();
        assert_eq!(locs[0].offset, HEADER_LEN);
        for (loc, s) in locs.iter().zip([&a, &b]) {
            let bytes = segs.read(loc).unwrap();
            assert_eq!(bytes, crate::codec::encode_sliver(s).unwrap().to_vec());
        }
        let path = segs.path(id);
        let mut raw = fs::read(&path).unwrap();
        raw[HEADER_LEN as usize + 10] ^= 1;
        fs::write(&path, raw).unwrap();
        assert!(matches!(
            segs.read(&locs[0]),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn unrecorded_segments_are_removed_on_open_and_ids_are_not_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let segs = Segments::open(tmp.path(), &[], true).unwrap();
        let (kept, _) = segs.write(&[&sliver(10, 1)]).unwrap();
        let (lost, _) = segs.write(&[&sliver(10, 2)]).unwrap();
        fs::write(segs.dir.join("junk"), b"x").unwrap();
        drop(segs);
        let segs = Segments::open(tmp.path(), &[kept], true).unwrap();
        assert!(segs.path(kept).exists());
        assert!(!segs.path(lost).exists());
        assert!(!segs.dir.join("junk").exists());
        let (next, _) = segs.write(&[&sliver(1, 1)]).unwrap();
        assert!(next > lost, "{next} reuses an id up to {lost}");
    }
}
