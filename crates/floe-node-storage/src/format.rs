//! The `store-format` record: which on-disk layout a store directory uses.
//!
//! A store directory holds this small text file and the engine's own directory `db/`:
//!
//! ```text
//! floe-node-storage
//! format-version 3
//! ```
//!
//! It is written (atomically: temporary file, fsync, rename, directory fsync) before the engine
//! creates anything, so a directory with `db/` but no record is not one of ours or was damaged.
//! A directory whose record names a newer version is refused before the engine touches it.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::error::StoreError;

/// The layout version written by this build, and the newest it can open.
pub const STORE_FORMAT_VERSION: u64 = 3;

/// File name of the record inside the store directory.
pub(crate) const FORMAT_FILE: &str = "store-format";
/// Sub-directory holding the engine's files.
pub(crate) const ENGINE_DIR: &str = "db";

const MAGIC: &str = "floe-node-storage";

fn render(version: u64) -> String {
    format!("{MAGIC}\nformat-version {version}\n")
}

/// Parses the record; `Err(reason)` when it is not one.
fn parse(text: &str) -> Result<u64, String> {
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(format!("first line is not {MAGIC:?}"));
    }
    let line = lines.next().unwrap_or_default();
    let version = line
        .strip_prefix("format-version ")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("expected \"format-version <number>\", found {line:?}"))?;
    if version == 0 {
        return Err("format version 0 does not exist".to_string());
    }
    Ok(version)
}

/// Checks the record of `dir`, or creates the directory and the record for a new store; the
/// format version the directory is in (older ones are upgraded by the caller).
pub(crate) fn check_or_init(dir: &Path) -> Result<u64, StoreError> {
    let shown = dir.display();
    fs::create_dir_all(dir)
        .map_err(|e| StoreError::io(format!("creating store directory {shown}"), e))?;
    let path = dir.join(FORMAT_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let what = || format!("store-format record of store directory {shown}");
            let text = String::from_utf8(bytes)
                .map_err(|_| StoreError::corrupt(what(), "not UTF-8 text"))?;
            let version = parse(&text).map_err(|reason| StoreError::corrupt(what(), reason))?;
            if version > STORE_FORMAT_VERSION {
                return Err(StoreError::UnsupportedVersion {
                    what: format!("store directory {shown}"),
                    version,
                    supported: STORE_FORMAT_VERSION,
                });
            }
            Ok(version)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.join(ENGINE_DIR).exists() {
                return Err(StoreError::corrupt(
                    format!("store directory {shown}"),
                    format!("it has an engine directory {ENGINE_DIR}/ but no {FORMAT_FILE} record"),
                ));
            }
            write_record(dir, STORE_FORMAT_VERSION)?;
            Ok(STORE_FORMAT_VERSION)
        }
        Err(e) => Err(StoreError::io(format!("reading {}", path.display()), e)),
    }
}

/// Writes the record atomically and durably.
pub(crate) fn write_record(dir: &Path, version: u64) -> Result<(), StoreError> {
    let tmp = dir.join(format!("{FORMAT_FILE}.tmp"));
    let path = dir.join(FORMAT_FILE);
    let ctx = |what: &str| format!("{what} {}", tmp.display());
    let mut file = fs::File::create(&tmp).map_err(|e| StoreError::io(ctx("creating"), e))?;
    file.write_all(render(version).as_bytes())
        .map_err(|e| StoreError::io(ctx("writing"), e))?;
    file.sync_all()
        .map_err(|e| StoreError::io(ctx("syncing"), e))?;
    drop(file);
    fs::rename(&tmp, &path)
        .map_err(|e| StoreError::io(format!("renaming to {}", path.display()), e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("syncing directory {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        assert_eq!(parse(&render(1)), Ok(1));
        assert_eq!(parse(&render(77)), Ok(77));
        assert!(parse("something else\nformat-version 1\n").is_err());
        assert!(parse("floe-node-storage\nformat-version x\n").is_err());
        assert!(parse("floe-node-storage\n").is_err());
        assert!(parse(&render(0)).is_err());
    }

    #[test]
    fn new_directory_gets_a_record_and_future_versions_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        check_or_init(&dir).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join(FORMAT_FILE)).unwrap(),
            render(STORE_FORMAT_VERSION)
        );
        check_or_init(&dir).unwrap();

        write_record(&dir, 4).unwrap();
        let err = check_or_init(&dir).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::UnsupportedVersion {
                    version: 4,
                    supported: 3,
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.display().to_string()) && msg.contains('4'),
            "{msg}"
        );

        fs::write(dir.join(FORMAT_FILE), b"garbage").unwrap();
        assert!(matches!(
            check_or_init(&dir),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn engine_directory_without_record_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join(ENGINE_DIR)).unwrap();
        assert!(matches!(
            check_or_init(tmp.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
