//! The node's side of an epoch change, as a pure function: [`plan`] turns what the node knows
//! (its committee view, the shards its store holds, whether a migration was started) into an
//! [`EpochPlan`]; the epoch-change worker (`workers::epoch_change`) carries it out.
//!
//! * Shards lost stay in the store, read-only, for the rest of the epoch: still served to
//!   readers (who use the committee that certified the blob until the change is done) and to
//!   the new owners' shard sync. Held shards that are neither owned nor read-only (lost in an
//!   earlier change) are dropped.
//! * Shards gained are pulled from their previous owner by shard sync; if that owner is down
//!   or serves bad data, the node falls back to RedStuff recovery, blob by blob.
//! * Once every certified blob's slivers of its shards are stored, the node reports
//!   `EpochSyncDone`; the ledger ends the change when a quorum of shards has reported. A node
//!   that gained shards after the quorum ended the change still fills them, without a report.

use std::collections::{BTreeMap, BTreeSet};

use floe_core::Epoch;
use floe_ledger::NodeId;
use floe_ledger::api_types::MemberInfo;

use crate::view::CommitteeView;

/// What the plan is made from. `O` is how a previous owner is reached (its member record).
#[derive(Clone, Debug)]
pub struct EpochFacts<O> {
    pub epoch: Epoch,
    /// This node's ID in the current committee; `None` if it is not a member.
    pub me: Option<NodeId>,
    pub owned: BTreeSet<u16>,
    pub read_only: BTreeSet<u16>,
    /// For each owned shard that was in the previous committee: its owner there.
    pub previous_owners: BTreeMap<u16, (NodeId, O)>,
    /// Whether a change is in progress, and whether this node has reported it synced.
    pub change: Change,
    /// Shards the store holds.
    pub held: BTreeSet<u16>,
    /// Whether this process already started the migration into `epoch`.
    pub started: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// No change in progress.
    Settled,
    InProgress {
        reported: bool,
    },
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochPlan<O> {
    /// Held shards to empty: neither owned nor read-only.
    pub drop: Vec<u16>,
    /// The migration to start, if one is due and not running.
    pub migration: Option<MigrationPlan<O>>,
}

/// A migration: rounds of pulling `pulls` (each gained shard from its previous owner), then
/// recovering every certified blob still missing data, until nothing is missing; then the
/// report, if `report`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationPlan<O> {
    pub epoch: Epoch,
    pub me: NodeId,
    pub pulls: Vec<(u16, O)>,
    /// Submit `EpochSyncDone` at the end (the change was in progress when planned; the worker
    /// checks again before submitting).
    pub report: bool,
}

/// The shards gained in the change (owned now, owned by another node before), with their
/// previous owner.
pub fn gained<O: Clone>(facts: &EpochFacts<O>) -> Vec<(u16, O)> {
    facts
        .previous_owners
        .iter()
        .filter(|(s, (owner, _))| facts.owned.contains(s) && Some(*owner) != facts.me)
        .map(|(&s, (_, o))| (s, o.clone()))
        .collect()
}

/// The plan for `facts`.
pub fn plan<O: Clone>(facts: &EpochFacts<O>) -> EpochPlan<O> {
    let drop = facts
        .held
        .iter()
        .copied()
        .filter(|s| !facts.owned.contains(s) && !facts.read_only.contains(s))
        .collect();
    let pulls = gained(facts);
    let migration = match (facts.me, facts.change) {
        (None, _) => None,
        _ if facts.started => None,
        (Some(_), Change::InProgress { reported: true }) => None,
        (Some(_), Change::Settled) if pulls.is_empty() => None,
        (Some(me), change) => Some(MigrationPlan {
            epoch: facts.epoch,
            me,
            pulls,
            report: matches!(change, Change::InProgress { .. }),
        }),
    };
    EpochPlan { drop, migration }
}

impl EpochFacts<MemberInfo> {
    /// The facts of `view`, with the shards the store holds and whether the migration into
    /// the view's epoch was started.
    pub fn of(view: &CommitteeView, held: BTreeSet<u16>, started: bool) -> Self {
        let me = view.my_index.map(|i| view.committee.members[i].node_id);
        let previous_owners = view
            .previous
            .iter()
            .flat_map(|p| {
                view.my_shards.iter().filter_map(|&s| {
                    let owner = &p.members[p.owner_of(s)?];
                    Some((s, (owner.node_id, owner.clone())))
                })
            })
            .collect();
        let change = match &view.reported {
            None => Change::Settled,
            Some(r) => Change::InProgress {
                reported: me.is_some_and(|me| r.contains(&me)),
            },
        };
        Self {
            epoch: view.epoch,
            me,
            owned: view.my_shards.clone(),
            read_only: view.read_only.clone(),
            previous_owners,
            change,
            held,
            started,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: NodeId = floe_core::ObjectId([1; 32]);
    const PEER: NodeId = floe_core::ObjectId([2; 32]);

    /// Facts of a node that owns shards 0..4 in epoch 5, gained shards 2 and 3 from PEER.
    fn base() -> EpochFacts<&'static str> {
        EpochFacts {
            epoch: 5,
            me: Some(ME),
            owned: BTreeSet::from([0, 1, 2, 3]),
            read_only: BTreeSet::new(),
            previous_owners: BTreeMap::from([
                (0, (ME, "me")),
                (1, (ME, "me")),
                (2, (PEER, "peer")),
                (3, (PEER, "peer")),
            ]),
            change: Change::InProgress { reported: false },
            held: BTreeSet::from([0, 1, 2, 3]),
            started: false,
        }
    }

    fn migration(pulls: &[u16], report: bool) -> Option<MigrationPlan<&'static str>> {
        Some(MigrationPlan {
            epoch: 5,
            me: ME,
            pulls: pulls.iter().map(|&s| (s, "peer")).collect(),
            report,
        })
    }

    #[test]
    fn the_plan_of_each_situation() {
        type Case = (
            &'static str,
            fn(&mut EpochFacts<&'static str>),
            Vec<u16>,
            Option<MigrationPlan<&'static str>>,
        );
        let cases: Vec<Case> = vec![
            (
                "change in progress, shards gained",
                |_| {},
                vec![],
                migration(&[2, 3], true),
            ),
            (
                "already started in this process",
                |f| f.started = true,
                vec![],
                None,
            ),
            (
                "already reported (a restart after the report)",
                |f| f.change = Change::InProgress { reported: true },
                vec![],
                None,
            ),
            (
                "change ended by the quorum before this node filled its gained shards",
                |f| f.change = Change::Settled,
                vec![],
                migration(&[2, 3], false),
            ),
            (
                "no change, nothing gained",
                |f| {
                    f.change = Change::Settled;
                    f.previous_owners.retain(|_, (o, _)| *o == ME);
                },
                vec![],
                None,
            ),
            (
                "change in progress, nothing gained: still report",
                |f| f.previous_owners.retain(|_, (o, _)| *o == ME),
                vec![],
                migration(&[], true),
            ),
            (
                "genesis committee: no previous owners",
                |f| {
                    f.change = Change::Settled;
                    f.previous_owners.clear();
                },
                vec![],
                None,
            ),
            (
                "shards lost stay read-only; older losses are dropped",
                |f| {
                    f.held.extend([7, 8, 9]);
                    f.read_only.insert(8);
                },
                vec![7, 9],
                migration(&[2, 3], true),
            ),
            (
                "not a member: everything not read-only goes, no migration",
                |f| {
                    f.me = None;
                    f.owned.clear();
                    f.read_only = BTreeSet::from([1]);
                },
                vec![0, 2, 3],
                None,
            ),
        ];
        for (name, change, drop, migration) in cases {
            let mut facts = base();
            change(&mut facts);
            let plan = plan(&facts);
            assert_eq!(plan.drop, drop, "{name}");
            assert_eq!(plan.migration, migration, "{name}");
        }
    }
}
