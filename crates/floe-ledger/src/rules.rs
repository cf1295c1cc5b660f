//! Versions of the ledger's rules.
//!
//! A rule that would judge an old entry differently (accept what was refused, or refuse what
//! was accepted) cannot simply change: replaying an old log would then reach another state.
//! So rules are versioned. A genesis names the version its ledger starts with (files written
//! before the field existed start at 1), and a [`crate::LogEntry::Rules`] entry moves a running
//! ledger to a newer version at a fixed point of its log. Every entry is applied under the
//! version in force at its position, so any log replays to the same state on any build that
//! knows its versions; a build that meets a newer version stops and says so.
//!
//! | version | change |
//! |---|---|
//! | 1 | the rules before versioning |
//! | 2 | network (TLS) keys are unique: a genesis or a registration may not reuse a key that another node holds or still has honoured |

/// The newest rules this build applies; new genesis files start at it, and running ledgers
/// step up to it.
pub const RULES_VERSION: u16 = 2;

/// The version of genesis files written before rules were versioned.
pub const FIRST_RULES: u16 = 1;

/// The first version in which network keys must be unique at registration and genesis.
pub(crate) const UNIQUE_NETWORK_KEYS: u16 = 2;
