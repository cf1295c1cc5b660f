//! Storage capacity: a reservation of encoded bytes for a range of epochs fits under the
//! committee's total capacity in every epoch it covers, and is counted once made.

use floe_core::Epoch;

use super::LedgerState;
use crate::error::TxError;

impl LedgerState {
    /// Checks a reservation of `size` for `[start, end)`; returns the epochs to charge.
    pub(super) fn check_reservation(
        &self,
        size: u64,
        start: Epoch,
        end: Epoch,
    ) -> Result<(Epoch, Epoch), TxError> {
        if size == 0 {
            return Err(TxError::ZeroSize);
        }
        if end <= self.epoch || end <= start {
            return Err(TxError::EndNotInFuture {
                end,
                epoch: self.epoch,
            });
        }
        if end - self.epoch > self.params.max_epochs_ahead {
            return Err(TxError::TooFarAhead {
                end,
                max: self.epoch + self.params.max_epochs_ahead,
            });
        }
        let total = self.total_capacity();
        for e in start..end {
            let used = self.used_capacity(e);
            if used.saturating_add(size) > total {
                return Err(TxError::CapacityExceeded {
                    epoch: e,
                    used,
                    requested: size,
                    total,
                });
            }
        }
        Ok((start, end))
    }

    pub(super) fn reserve(&mut self, range: &(Epoch, Epoch), size: u64) {
        for e in range.0..range.1 {
            *self.used_capacity.entry(e).or_insert(0) += size;
        }
    }
}
