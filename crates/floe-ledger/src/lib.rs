//! Floe's control plane as a pure, deterministic state machine (the role Sui plays for Walrus).
//!
//! The ledger applies a totally ordered log of [`LogEntry`]s: Ed25519-signed transactions and
//! clock ticks. It holds accounts, storage nodes, the committee and shard assignment of each
//! epoch, storage resources and blob objects, and emits numbered [`Event`]s. Everything it
//! records is verified: blob IDs against their derivation, certificates against the committee's
//! BLS keys and shard weights, owners against signatures. No I/O: the durable log and the HTTP
//! service live in `floe-ledger-service`.
#![forbid(unsafe_code)]

pub mod api_types;
pub mod challenge;
pub mod committee;
pub mod error;
pub mod event;
pub mod lazy_map;
pub mod membership;
pub mod rules;
pub mod state;
pub mod status;
pub mod tx;
pub mod types;

pub use error::TxError;
pub use event::{Event, EventKind};
pub use rules::RULES_VERSION;
pub use state::{
    CertCheck, GenesisError, LedgerState, MapIndex, StateIndex, StateLoadError, Threshold,
    created_object_id,
};
pub use status::BlobStatus;
pub use tx::{
    AccountKey, EntryDecodeError, LOG_ENTRY_VERSION, LogEntry, SignedTransaction, Transaction,
    TxKind,
};
pub use types::{
    Address, BlobObject, Committee, CommitteeMember, EpochState, GenesisConfig, GenesisNode,
    NodeId, PreviousNetworkKey, SharedBlob, StorageNode, StorageResource, SystemParams,
};
