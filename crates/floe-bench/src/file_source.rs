//! A file as a `BlobSource`, read with positioned reads so that both encoder threads can read it
//! at once and the blob never has to sit in memory whole. Used by `floe bench encode` and by
//! `floe blob-id` / `floe encode`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use floe_core::BlobSource;

/// Why a file cannot serve as a blob.
#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot stat {}", path.display())]
    Stat {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is a directory; give the path of a file", path.display())]
    Directory { path: PathBuf },
    #[error("{} is {len} bytes, too large for this machine's address space", path.display())]
    TooLarge { path: PathBuf, len: u64 },
}

pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub fn open(path: &Path) -> Result<Self, FileSourceError> {
        let file = File::open(path).map_err(|source| FileSourceError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| FileSourceError::Stat {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            return Err(FileSourceError::Directory {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            file,
            len: meta.len(),
        })
    }
}

impl BlobSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        self.file.read_exact_at(buf, offset).map_err(|e| {
            format!("read of {} bytes at offset {offset} failed: {e} (was the file changed while reading?)", buf.len())
        })
    }
}

/// Read a whole file into a buffer with room for `capacity` bytes.
pub fn read_with_capacity(path: &Path, capacity: usize) -> Result<Vec<u8>, FileSourceError> {
    let src = FileSource::open(path)?;
    let len = usize::try_from(src.len).map_err(|_| FileSourceError::TooLarge {
        path: path.to_path_buf(),
        len: src.len,
    })?;
    let mut buf = Vec::with_capacity(capacity.max(len));
    buf.resize(len, 0);
    src.file
        .read_exact_at(&mut buf, 0)
        .map_err(|source| FileSourceError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(buf)
}
