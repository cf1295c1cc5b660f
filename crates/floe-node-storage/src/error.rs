//! The one error type of the store.

use std::path::PathBuf;

use floe_core::ShardIndex;

/// Why a store operation failed.
///
/// Engine errors are carried as text so that the storage engine stays an implementation detail
/// of [`crate::FjallStore`] and can be replaced without changing this type.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation of the store itself (not of the engine) failed.
    #[error("I/O error: {context}: {source}")]
    Io {
        /// What the store was doing, including the path.
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The storage engine reported an error (I/O inside the engine, a failed fsync, a journal
    /// that cannot be recovered, ...). After a failed fsync the engine refuses further writes.
    #[error("storage engine error: {0}")]
    Engine(String),
    /// Another process (or another open store in this process) holds the directory.
    #[error("store directory {} is locked by another open store", dir.display())]
    Locked { dir: PathBuf },
    /// The shard is not held by this store: create it with `create_shard` first.
    #[error("shard {0} is not stored on this node")]
    ShardNotFound(ShardIndex),
    /// A stored value or key could not be decoded.
    #[error("corrupt {what}: {reason}")]
    Corrupt { what: String, reason: String },
    /// A stored value (or the store directory) has a format version this build cannot read.
    ///
    /// `version` is the version as written on disk, counted from 1 (for BCS-enum values the
    /// variant tag plus one); `supported` is the newest version this build reads.
    #[error(
        "{what} has format version {version}, but this build of floe-node-storage only reads \
         versions up to {supported}; upgrade the node software"
    )]
    UnsupportedVersion {
        what: String,
        version: u64,
        supported: u64,
    },
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

impl From<fjall::Error> for StoreError {
    fn from(e: fjall::Error) -> Self {
        match e {
            fjall::Error::Poisoned => StoreError::Engine(
                "a previous fsync failed; the store refuses writes until it is reopened \
                 (check the disk)"
                    .to_string(),
            ),
            other => StoreError::Engine(other.to_string()),
        }
    }
}
