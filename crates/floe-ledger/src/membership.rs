//! Reading a membership change back from the ledger: where a protocol key sits in the
//! committees, and from which epoch a change just submitted takes effect.
//!
//! Changes take effect at an epoch change. The ledger fixes the next committee half-way through
//! an epoch, so a change made after that waits one epoch more. Callers (the `floe node` verbs
//! and the testbed's control API) read the ledger after submitting and report the epoch this
//! module computes, never a promise of "next epoch".

use floe_crypto::ProtocolPublicKey;
use serde::{Deserialize, Serialize};

use crate::api_types::{CommitteeInfo, MemberInfo, SystemInfo};
use crate::types::EpochState;

/// When a membership change submitted just now takes effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Effect {
    /// The ledger's epoch when the change was read back.
    pub epoch: u32,
    /// The first epoch whose committee reflects the change.
    pub effective_epoch: u32,
    /// When that epoch starts by the ledger's schedule (ms since the Unix epoch).
    pub effective_at_ms: u64,
    /// Whether the ledger had fixed the next committee when the change was read back.
    pub next_committee_fixed: bool,
}

impl Effect {
    /// From the ledger's state read after the change. `reflected`: whether the next committee
    /// shows the change (`None` when that cannot be seen from the committee, e.g. a weight
    /// change: then it does unless the next committee is fixed).
    pub fn after(system: &SystemInfo, reflected: Option<bool>) -> Self {
        let fixed = next_committee_fixed(&system.epoch_state);
        let reflected = match (reflected, &system.next_committee) {
            (Some(r), Some(_)) => r,
            _ => !fixed,
        };
        let effective_epoch = system.epoch + if reflected { 1 } else { 2 };
        let effective_at_ms = system.current_epoch_start_ms
            + u64::from(effective_epoch - system.epoch) * system.epoch_duration_ms;
        Self {
            epoch: system.epoch,
            effective_epoch,
            effective_at_ms,
            next_committee_fixed: fixed,
        }
    }

    /// Whether the change waits an extra epoch because the next committee was already fixed.
    pub fn waits_an_extra_epoch(&self) -> bool {
        self.effective_epoch > self.epoch + 1
    }
}

/// Whether the ledger has fixed the next committee, so that membership changes made now take
/// effect one epoch later.
pub fn next_committee_fixed(state: &EpochState) -> bool {
    // `Done` and `Syncing` leave the next committee open; `NextParamsSelected` fixes it.
    !matches!(state, EpochState::Done | EpochState::Syncing { .. })
}

/// The member of `c` with this protocol key.
pub fn member<'a>(c: &'a CommitteeInfo, key: &ProtocolPublicKey) -> Option<&'a MemberInfo> {
    c.members.iter().find(|m| &m.protocol_key == key)
}

/// How many shards the key holds in `c` (0 when it is not a member).
pub fn shard_count(c: &CommitteeInfo, key: &ProtocolPublicKey) -> usize {
    member(c, key).map_or(0, |m| m.shards.len())
}

/// How many shards the key holds in the next committee; `None` when the ledger did not say
/// which committee comes next.
pub fn next_shard_count(system: &SystemInfo, key: &ProtocolPublicKey) -> Option<usize> {
    system.next_committee.as_ref().map(|c| shard_count(c, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(epoch_state: EpochState, next: bool) -> SystemInfo {
        let committee = CommitteeInfo {
            epoch: 5,
            n_shards: 10,
            members: Vec::new(),
        };
        SystemInfo {
            epoch: 5,
            epoch_state,
            n_shards: 10,
            epoch_duration_ms: 60_000,
            genesis_time_ms: 0,
            current_epoch_start_ms: 300_000,
            next_epoch_start_ms: 360_000,
            max_epochs_ahead: 53,
            total_capacity: 1,
            used_capacity: 0,
            max_blob_size: 1,
            committee: committee.clone(),
            previous_committee: None,
            next_committee: next.then_some(committee),
        }
    }

    #[test]
    fn a_change_the_next_committee_shows_takes_effect_next_epoch() {
        let e = Effect::after(&system(EpochState::Done, true), Some(true));
        assert_eq!((e.effective_epoch, e.effective_at_ms), (6, 360_000));
        assert!(!e.next_committee_fixed);
        assert!(!e.waits_an_extra_epoch());
        let e = Effect::after(&system(EpochState::Done, true), Some(false));
        assert_eq!((e.effective_epoch, e.effective_at_ms), (7, 420_000));
        assert!(e.waits_an_extra_epoch());
        // Without a next committee to look at, the epoch state decides.
        let e = Effect::after(&system(EpochState::Done, false), Some(false));
        assert_eq!(e.effective_epoch, 6);
        let syncing = EpochState::Syncing {
            reported: Vec::new(),
            weight: 0,
        };
        assert_eq!(
            Effect::after(&system(syncing, true), None).effective_epoch,
            6
        );
    }

    #[test]
    fn a_key_outside_the_committee_holds_no_shards() {
        let s = system(EpochState::Done, false);
        let key = *floe_crypto::ProtocolKeyPair::from_seed(&[7; 32]).public_key();
        assert_eq!(shard_count(&s.committee, &key), 0);
        assert_eq!(next_shard_count(&s, &key), None);
        assert!(member(&s.committee, &key).is_none());
    }
}
