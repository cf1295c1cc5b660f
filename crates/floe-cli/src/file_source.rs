//! A file as a `BlobSource`, read with positioned reads so that both encoder threads can read it
//! at once and the blob never has to sit in memory whole.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result};
use floe_core::BlobSource;

pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if meta.is_dir() {
            anyhow::bail!("{} is a directory; give the path of a file", path.display());
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
pub fn read_with_capacity(path: &Path, capacity: usize) -> Result<Vec<u8>> {
    let src = FileSource::open(path)?;
    let len = usize::try_from(src.len)?;
    let mut buf = Vec::with_capacity(capacity.max(len));
    buf.resize(len, 0);
    src.file
        .read_exact_at(&mut buf, 0)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(buf)
}
