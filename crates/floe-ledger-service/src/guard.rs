//! `LedgerState::apply` panics when an entry breaks one of the state's invariants (a bug in the
//! rules; see `floe_ledger::state::invariants`). Here that panic becomes the reason this ledger
//! stops: writes are refused and the health answer says `failed` with the violation, instead of
//! a dead task beside a half-applied state.

use floe_ledger::{Event, LedgerState, LogEntry, TxError};

/// `state.apply(entry)`; `Err` with the violation if the rules panicked.
pub(crate) fn apply(
    state: &mut LedgerState,
    entry: &LogEntry,
) -> Result<Result<Vec<Event>, TxError>, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.apply(entry))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the ledger's rules panicked".into())
    })
}
