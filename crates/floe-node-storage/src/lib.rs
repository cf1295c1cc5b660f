//! Persistent state of a Floe storage node.
//!
//! A node keeps blob metadata, the slivers of the shards it holds, what it learned about each
//! blob from ledger events ([`BlobInfo`]) and how far it has read the ledger (the event
//! cursor). All of it sits behind the narrow synchronous [`NodeStore`] trait, with two
//! implementations:
//!
//! * [`FjallStore`]: on disk, on the fjall LSM-tree engine, all slivers in one keyspace (large
//!   batches' bytes in segment files of their own); see its docs for durability.
//! * [`MemoryStore`]: in memory, for tests of the code above.
//!
//! Every stored value is versioned and every store directory carries a `store-format` record,
//! so a newer layout is refused with [`StoreError::UnsupportedVersion`] instead of misread.
//!
//! # On-disk layout (format version 3)
//!
//! A store directory holds a text record `store-format` (`floe-node-storage` /
//! `format-version 3`, written before anything else), the engine directory `db/` and the
//! segment files `segments/<id>.seg` (see `segments.rs`). The engine has these keyspaces:
//!
//! | keyspace | key | value |
//! |---|---|---|
//! | `meta` | blob ID (32 raw bytes) | BCS `BlobMetadata` (an enum with `V1`) |
//! | `blob-info` | blob ID | BCS `StoredBlobInfo::V2(BlobInfo)` (V1, without entry digests, still read) |
//! | `node-state` | `event-cursor` | BCS `StoredCursor::V1(u64)` |
//! | `node-state` | `shard/` + shard index (u16 BE) | BCS `StoredShard::V1` (present = held) |
//! | `node-state` | `migration/` + shard index (u16 BE) + axis (0 primary, 1 secondary) | BCS `StoredMigration::V1 { epoch: u32, next: Option<BlobId> }` |
//! | `node-state` | `dropping/` + shard index (u16 BE) | empty (the shard's slivers are being deleted) |
//! | `node-state` | `segment/` + segment id (u64 BE) | BCS `StoredSegment::V1 { live: u32 }` (slivers pointing into it) |
//! | `slivers` | shard index (u16 BE) + axis (0 primary, 1 secondary) + blob ID | BCS `StoredSliverEntry`: `V1(SliverData)` inline, or `V2(Location)` in a segment |
//!
//! Every value is BCS of an enum whose first variant is `V1`, so its first byte is the version
//! tag. Blob IDs are raw bytes, so iteration is in blob-ID order. A batch of slivers of at
//! least [`StoreOptions::segment_min_bytes`] goes to a segment, written once; smaller ones
//! stay inline in the engine.
//!
//! Format 2 had no segments: opening a format-2 store only rewrites its record. Format 1 kept
//! the slivers of each (shard, axis) in a keyspace of its own,
//! `shard-NNNN-primary` / `shard-NNNN-secondary` (`NNNN` the zero-padded shard index), keyed by
//! blob ID. Opening a format-1 store upgrades it in place; those keyspaces remain, empty.
#![forbid(unsafe_code)]

mod blob_info;
mod codec;
mod error;
mod fjall_store;
mod format;
mod located;
mod memory;
mod segments;
mod store;
mod upgrade;

pub use blob_info::{BlobInfo, ObjectInfo};
pub use error::StoreError;
pub use fjall_store::{Durability, FjallStore, StoreOptions};
pub use format::STORE_FORMAT_VERSION;
pub use memory::MemoryStore;
pub use store::{MigrationCursor, NodeStore};
