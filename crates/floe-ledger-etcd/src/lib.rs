//! The ledger's replicated log on an etcd cluster.
//!
//! etcd supplies the order, the durability and the replication (Raft, crash-fault tolerant with
//! 2f+1 members); this crate supplies a log on top of it that needs nothing else from etcd:
//!
//! * records are stored under `<prefix>log/<seq, 20 digits>`, each a versioned, BCS-encoded
//!   [`Record`] naming the hash of its predecessor;
//! * [`EtcdLog::append`] writes a batch in one transaction guarded by `create_revision == 0` on
//!   every key, so a retry is idempotent and two writers can never both take a sequence number
//!   (no locks, no leases);
//! * a [`Follower`] tails the log by range reads and a watch and runs [`Chain::accept`] on every
//!   record (sequence continuity and the hash chain), which also guards against etcd 3.4's watch
//!   replays after a partition;
//! * [`EtcdLog::prune_below`] deletes records covered by a snapshot and compacts etcd's history;
//!   [`EtcdLog::defragment_members`] then returns the space to the filesystem, member by member.
//!
//! [`EtcdMembers`] runs a local cluster of `etcd` child processes for the testbed and tests.
#![forbid(unsafe_code)]

mod log;
mod maintenance;
pub mod members;
pub mod record;
mod writer;

pub use log::{
    Appended, EtcdLog, EtcdLogConfig, EtcdLogError, Follower, MAX_BATCH, MAX_BATCH_BYTES,
    MAX_RECORD_BYTES, MemberStatus, member_status,
};
pub use maintenance::{DEFRAG_TIMEOUT, MemberSpace};
pub use members::{EtcdMembers, INSTALL_HINT, MEMBERS_FILE, MembersError};
pub use record::{Chain, ChainError, Record, hash_parts};
pub use writer::{MAX_STEPS, WriteError, Writer};
