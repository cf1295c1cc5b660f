//! Certificate checks run ahead of `apply`, many at once, for a replay of the log.
//!
//! Verifying a BLS certificate costs about a millisecond and dominates a replay. Before a window
//! of entries is applied, every certificate in it is checked in parallel against the committee
//! in force at the window's start, and the valid ones are recorded in the verified cache. The
//! cache is only an accelerator: a certificate that comes after an epoch change inside the
//! window misses it (its key names the old epoch) and `apply` verifies it inline. The outcome is
//! therefore exactly that of applying the entries one by one.

use rayon::prelude::*;

use super::LedgerState;
use crate::tx::LogEntry;

impl LedgerState {
    /// Check the certificates of `entries` across the cores, for the current committee, and
    /// record the valid ones, so that applying `entries` next finds them verified.
    pub fn preverify(&mut self, entries: &[LogEntry]) {
        let checks: Vec<_> = entries
            .iter()
            .filter_map(|e| self.certificate_check(e))
            .collect();
        let verified: Vec<[u8; 32]> = checks.par_iter().filter_map(|c| c.run()).collect();
        for key in verified {
            self.record_verified(key);
        }
    }
}
