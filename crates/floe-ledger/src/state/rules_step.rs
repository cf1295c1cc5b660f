//! The step from one version of the ledger's rules to a newer one (see [`crate::rules`]).

use super::LedgerState;
use crate::error::TxError;
use crate::rules::RULES_VERSION;

impl LedgerState {
    /// The version of the rules in force.
    pub fn rules(&self) -> u16 {
        self.rules
    }

    /// Whether a running ledger of this build should step its rules up (append
    /// [`crate::LogEntry::Rules`] with [`RULES_VERSION`]).
    pub fn rules_behind(&self) -> bool {
        self.rules < RULES_VERSION
    }

    /// Apply a `Rules` entry: the rules of `version` hold from the next entry on. Emits no
    /// event: nothing a storage node follows changes.
    pub(super) fn step_rules(&mut self, version: u16) -> Result<(), TxError> {
        if version > RULES_VERSION {
            return Err(TxError::UnknownRules(version));
        }
        if version <= self.rules {
            return Err(TxError::RulesNotNewer {
                current: self.rules,
                requested: version,
            });
        }
        self.rules = version;
        Ok(())
    }
}
