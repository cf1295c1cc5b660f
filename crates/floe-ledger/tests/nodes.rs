//! Node registration, deregistration and weight changes, and the epoch changes they cause.

mod common;

use common::{Net, seed};
use floe_crypto::{ProofOfPossession, ProtocolKeyPair};
use floe_ledger::{AccountKey, EpochState, EventKind, LogEntry, NodeId, TxError, TxKind};

fn registration(key: &ProtocolKeyPair, owner: &AccountKey, epoch: u32, name: &str) -> TxKind {
    TxKind::RegisterNode {
        name: name.into(),
        network_address: "127.0.0.1:1".into(),
        protocol_key: *key.public_key(),
        proof_of_possession: ProofOfPossession::create(key, epoch, &owner.address().0),
        capacity: 1 << 40,
        weight: 1,
        network_public_key: None,
    }
}

fn registered_id(events: &[floe_ledger::Event]) -> NodeId {
    events
        .iter()
        .find_map(|e| match e.kind {
            EventKind::NodeRegistered { node_id, .. } => Some(node_id),
            _ => None,
        })
        .expect("a NodeRegistered event")
}

/// Advance one epoch; report members of the new committee until the change is done.
fn change_epoch(net: &mut Net, owners: &[(NodeId, AccountKey)]) -> Vec<floe_ledger::Event> {
    let next = net.state.epoch() + 1;
    let mut events = net
        .apply(LogEntry::Clock {
            now_ms: net.state.epoch_start_ms(next),
        })
        .unwrap();
    let members: Vec<NodeId> = net
        .state
        .committee()
        .members
        .iter()
        .map(|m| m.node_id)
        .collect();
    for id in members {
        if !matches!(net.state.epoch_state(), EpochState::Syncing { .. }) {
            break;
        }
        let op = owners.iter().find(|(n, _)| *n == id).unwrap().1.clone();
        events.extend(
            net.submit(
                &op,
                TxKind::EpochSyncDone {
                    node_id: id,
                    epoch: next,
                },
            )
            .unwrap(),
        );
    }
    events
}

fn owners(net: &Net) -> Vec<(NodeId, AccountKey)> {
    net.state
        .nodes()
        .values()
        .map(|n| {
            let op = net
                .operators
                .iter()
                .find(|o| o.address() == n.owner)
                .cloned()
                .unwrap();
            (n.id, op)
        })
        .collect()
}

#[test]
fn register_checks_proof_of_possession_and_uniqueness() {
    let mut net = Net::new(4, 100);
    let op = AccountKey::from_seed(&seed("new-op", 0));
    let key = ProtocolKeyPair::from_seed(&seed("new-bls", 0));
    // A proof made for another owner does not verify.
    let other = AccountKey::from_seed(&seed("other", 0));
    let err = net
        .submit(&op, registration(&key, &other, 0, "n4"))
        .unwrap_err();
    assert_eq!(err.code(), "BAD_NODE");
    // Nor one for another epoch.
    let err = net
        .submit(&op, registration(&key, &op, 7, "n4"))
        .unwrap_err();
    assert_eq!(err.code(), "BAD_NODE");
    // An existing key is refused.
    let taken = registration(&net.node_keys[0], &op, 0, "n5");
    assert_eq!(net.submit(&op, taken).unwrap_err().code(), "BAD_NODE");
    // A zero weight is refused.
    let mut zero = registration(&key, &op, 0, "n4");
    if let TxKind::RegisterNode { weight, .. } = &mut zero {
        *weight = 0;
    }
    assert_eq!(net.submit(&op, zero).unwrap_err().code(), "BAD_NODE");
    let before = net.state.state_hash();
    let events = net.submit(&op, registration(&key, &op, 0, "n4")).unwrap();
    assert_ne!(before, net.state.state_hash());
    let id = registered_id(&events);
    assert_eq!(net.state.nodes()[&id].owner, op.address());
    // Not in the committee until the next epoch, but in the preview.
    assert!(
        net.state
            .committee()
            .members
            .iter()
            .all(|m| m.node_id != id)
    );
    let next = net.state.next_committee();
    assert_eq!(
        next.members
            .iter()
            .find(|m| m.node_id == id)
            .unwrap()
            .shards
            .len(),
        20
    );
    // Same name again: refused.
    let key2 = ProtocolKeyPair::from_seed(&seed("new-bls", 1));
    let err = net
        .submit(&op, registration(&key2, &op, 0, "n4"))
        .unwrap_err();
    assert_eq!(err.code(), "BAD_NODE");
}

#[test]
fn only_the_owner_changes_weight_or_deregisters() {
    let mut net = Net::new(4, 100);
    let id = net.state.committee().members[0].node_id;
    let owner = owners(&net).into_iter().find(|(n, _)| *n == id).unwrap().1;
    let stranger = AccountKey::from_seed(&seed("stranger", 0));
    let err = net
        .submit(
            &stranger,
            TxKind::SetNodeWeight {
                node_id: id,
                weight: 3,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::NotOwner(_)));
    let err = net
        .submit(&stranger, TxKind::DeregisterNode { node_id: id })
        .unwrap_err();
    assert!(matches!(err, TxError::NotOwner(_)));
    let err = net
        .submit(
            &owner,
            TxKind::SetNodeWeight {
                node_id: id,
                weight: 0,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "BAD_NODE");
    net.submit(
        &owner,
        TxKind::SetNodeWeight {
            node_id: id,
            weight: 2,
        },
    )
    .unwrap();
    assert_eq!(net.state.nodes()[&id].weight, 2);
    net.submit(&owner, TxKind::DeregisterNode { node_id: id })
        .unwrap();
    let err = net
        .submit(
            &owner,
            TxKind::SetNodeWeight {
                node_id: id,
                weight: 1,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "NODE_DEREGISTERED");
}

#[test]
fn the_last_node_cannot_leave() {
    let mut net = Net::new(1, 10);
    let all = owners(&net);
    let (id, op) = all[0].clone();
    let err = net
        .submit(&op, TxKind::DeregisterNode { node_id: id })
        .unwrap_err();
    assert_eq!(err, TxError::LastNode);
}

#[test]
fn joins_leaves_and_weights_move_few_shards_and_finish_at_quorum() {
    let mut net = Net::new(4, 100);
    // Two new nodes join, one leaves, one doubles its weight.
    let mut all = owners(&net);
    let mut new_ids = Vec::new();
    for i in 0..2 {
        let op = AccountKey::from_seed(&seed("join-op", i));
        let key = ProtocolKeyPair::from_seed(&seed("join-bls", i));
        let ev = net
            .submit(&op, registration(&key, &op, 0, &format!("join-{i}")))
            .unwrap();
        let id = registered_id(&ev);
        all.push((id, op));
        new_ids.push(id);
    }
    let leaving = net.state.committee().members[3].node_id;
    let heavier = net.state.committee().members[0].node_id;
    let op = |id: NodeId| all.iter().find(|(n, _)| *n == id).unwrap().1.clone();
    net.submit(&op(leaving), TxKind::DeregisterNode { node_id: leaving })
        .unwrap();
    net.submit(
        &op(heavier),
        TxKind::SetNodeWeight {
            node_id: heavier,
            weight: 2,
        },
    )
    .unwrap();
    let preview = net.state.next_committee();
    let old = net.state.committee().clone();
    // Clock: the change starts with the previewed committee and waits for reports.
    let next = net.state.epoch() + 1;
    let ev = net
        .apply(LogEntry::Clock {
            now_ms: net.state.epoch_start_ms(next),
        })
        .unwrap();
    // The committee was not fixed half-way (no clock entry then): the boundary fixes it.
    assert_eq!(
        ev.iter().map(|e| &e.kind).collect::<Vec<_>>(),
        [
            &EventKind::EpochParametersSelected { next_epoch: 1 },
            &EventKind::EpochChangeStart { epoch: 1 }
        ]
    );
    assert_eq!(net.state.committee().members, preview.members);
    assert_eq!(net.state.previous_committee(), Some(&old));
    let new = net.state.committee().clone();
    assert!(new.members.iter().all(|m| m.node_id != leaving));
    // Moved = what the leaver held plus what the others shrink by; nothing else.
    let kept: usize = old
        .members
        .iter()
        .filter_map(|o| {
            let n = new.members.iter().find(|m| m.node_id == o.node_id)?;
            Some(o.shards.len().min(n.shards.len()))
        })
        .sum();
    let sizes: Vec<usize> = new.members.iter().map(|m| m.shards.len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 100);
    let moved = (0..100u16)
        .filter(|&s| {
            old.members[old.owner_of(s).unwrap()].node_id
                != new.members[new.owner_of(s).unwrap()].node_id
        })
        .count();
    assert_eq!(moved, 100 - kept, "only the necessary shards move");
    assert!(
        sizes.iter().max() > sizes.iter().min(),
        "the heavier node holds more"
    );
    // The clock cannot advance during the change.
    let err = net
        .apply(LogEntry::Clock {
            now_ms: net.state.epoch_start_ms(next + 3),
        })
        .unwrap_err();
    assert_eq!(err.code(), "EPOCH_CHANGE_IN_PROGRESS");
    // The leaver cannot report (not a member); reports count shards until n − f = 67.
    let err = net
        .submit(
            &op(leaving),
            TxKind::EpochSyncDone {
                node_id: leaving,
                epoch: 1,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::NotInCommittee(_)));
    let mut reported = 0;
    let mut done = false;
    for m in &new.members {
        let ev = net
            .submit(
                &op(m.node_id),
                TxKind::EpochSyncDone {
                    node_id: m.node_id,
                    epoch: 1,
                },
            )
            .unwrap();
        reported += m.shards.len();
        done = ev
            .iter()
            .any(|e| matches!(e.kind, EventKind::EpochChangeDone { epoch: 1 }));
        assert_eq!(done, reported >= 67, "done exactly at quorum ({reported})");
        if done {
            break;
        }
    }
    assert!(done);
    assert_eq!(net.state.epoch_state(), &EpochState::Done);
    // Five more changes with no membership change finish at once.
    for _ in 0..5 {
        let ev = change_epoch(&mut net, &all);
        assert!(
            ev.iter()
                .any(|e| matches!(e.kind, EventKind::EpochChangeDone { .. }))
        );
    }
    assert_eq!(net.state.epoch(), 6);
}

#[test]
fn node_transactions_replay_deterministically() {
    let build = || {
        let mut net = Net::new(4, 50);
        let mut all = owners(&net);
        let op = AccountKey::from_seed(&seed("det-op", 0));
        let key = ProtocolKeyPair::from_seed(&seed("det-bls", 0));
        let id = registered_id(&net.submit(&op, registration(&key, &op, 0, "det")).unwrap());
        all.push((id, op));
        change_epoch(&mut net, &all);
        let victim = net.state.committee().members[1].node_id;
        let vop = all.iter().find(|(n, _)| *n == victim).unwrap().1.clone();
        net.submit(&vop, TxKind::DeregisterNode { node_id: victim })
            .unwrap();
        change_epoch(&mut net, &all);
        net
    };
    let a = build();
    let b = build();
    assert_eq!(a.state.digest(), b.state.digest());
    assert_eq!(a.state.state_hash(), b.state.state_hash());
    let mut replay =
        floe_ledger::LedgerState::genesis(&common::genesis_config(4, 50, 1 << 40).0).unwrap();
    for e in &a.log {
        replay.apply(e).unwrap();
    }
    assert_eq!(replay.digest(), a.state.digest());
    assert_eq!(replay.committee().members.len(), 4);
}

#[test]
fn the_next_committee_is_fixed_half_an_epoch_in() {
    let mut net = Net::new(4, 100);
    let owners = owners(&net);
    let half = net.state.selection_time_ms(0);
    assert_eq!(
        half - net.state.epoch_start_ms(0),
        net.state.params().epoch_duration_ms / 2
    );
    // Before the middle of the epoch a clock entry changes nothing.
    let err = net.apply(LogEntry::Clock { now_ms: half - 1 }).unwrap_err();
    assert!(matches!(err, TxError::StaleClock { .. }), "{err:?}");
    assert!(!net.state.clock_due(half - 1));
    assert!(net.state.clock_due(half));
    // A node registered before the middle is in the committee fixed there.
    let early_op = AccountKey::from_seed(&seed("early-op", 0));
    let early_key = ProtocolKeyPair::from_seed(&seed("early-bls", 0));
    let early = registered_id(
        &net.submit(&early_op, registration(&early_key, &early_op, 0, "early"))
            .unwrap(),
    );
    let events = net.apply(LogEntry::Clock { now_ms: half }).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::EpochParametersSelected { next_epoch: 1 })
    );
    assert_eq!(net.state.epoch_state(), &EpochState::NextParamsSelected);
    let fixed = net.state.selected_committee().cloned().expect("fixed");
    assert!(fixed.members.iter().any(|m| m.node_id == early));
    // Selecting twice is refused.
    assert!(net.apply(LogEntry::Clock { now_ms: half + 1 }).is_err());
    // A node registered after the middle does not change the fixed committee...
    let late_op = AccountKey::from_seed(&seed("late-op", 0));
    let late_key = ProtocolKeyPair::from_seed(&seed("late-bls", 0));
    let late = registered_id(
        &net.submit(&late_op, registration(&late_key, &late_op, 0, "late"))
            .unwrap(),
    );
    assert_eq!(net.state.next_committee(), fixed);
    let mut all = owners.clone();
    all.push((early, early_op));
    all.push((late, late_op));
    change_epoch(&mut net, &all);
    assert_eq!(net.state.epoch(), 1);
    assert_eq!(net.state.committee().members, fixed.members);
    assert!(
        net.state
            .committee()
            .members
            .iter()
            .all(|m| m.node_id != late)
    );
    assert_eq!(net.state.epoch_state(), &EpochState::Done);
    assert!(net.state.selected_committee().is_none());
    // ...it joins one epoch later. Here the boundary comes without a selection entry first: the
    // boundary entry fixes the committee and starts the change at once.
    let events = change_epoch(&mut net, &all);
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::EpochParametersSelected { next_epoch: 2 })
    );
    assert!(
        net.state
            .committee()
            .members
            .iter()
            .any(|m| m.node_id == late && !m.shards.is_empty())
    );
}

#[test]
fn no_selection_while_a_change_is_in_progress() {
    let mut net = Net::new(4, 100);
    let op = AccountKey::from_seed(&seed("joiner", 0));
    let key = ProtocolKeyPair::from_seed(&seed("joiner-bls", 0));
    net.submit(&op, registration(&key, &op, 0, "joiner"))
        .unwrap();
    net.apply(LogEntry::Clock {
        now_ms: net.state.epoch_start_ms(1),
    })
    .unwrap();
    assert!(net.state.epoch_state().is_syncing());
    // Half-way through epoch 1 the change into it is still running: nothing is fixed.
    let half = net.state.selection_time_ms(1);
    assert!(!net.state.clock_due(half));
    let err = net.apply(LogEntry::Clock { now_ms: half }).unwrap_err();
    assert!(matches!(err, TxError::StaleClock { .. }), "{err:?}");
    assert!(net.state.selected_committee().is_none());
}

#[test]
fn only_the_owner_sets_a_network_key_and_keys_are_not_shared() {
    let mut net = Net::new(4, 100);
    let members: Vec<NodeId> = net
        .state
        .committee()
        .members
        .iter()
        .map(|m| m.node_id)
        .collect();
    let owner_of = |net: &Net, id| owners(net).into_iter().find(|(n, _)| *n == id).unwrap().1;
    let key = floe_crypto::NetworkPublicKey::from_bytes(&[2; 33]).unwrap();
    let set = |id| TxKind::SetNetworkKey {
        node_id: id,
        network_public_key: key,
    };
    let stranger = AccountKey::from_seed(&seed("stranger", 0));
    let err = net.submit(&stranger, set(members[0])).unwrap_err();
    assert!(matches!(err, TxError::NotOwner(_)), "{err:?}");
    let owner = owner_of(&net, members[0]);
    net.submit(&owner, set(members[0])).unwrap();
    assert_eq!(net.state.nodes()[&members[0]].network_public_key, Some(key));
    // Clients read it at once, in the committee's member list.
    let info = floe_ledger::api_types::CommitteeInfo::new(net.state.committee(), net.state.nodes());
    let member = info
        .members
        .iter()
        .find(|m| m.node_id == members[0])
        .unwrap();
    assert_eq!(member.network_public_key, Some(key));
    let other = owner_of(&net, members[1]);
    let err = net.submit(&other, set(members[1])).unwrap_err();
    assert!(matches!(err, TxError::BadNode(_)), "{err:?}");
}

/// A replaced network key stays pinned through the epoch after the change (the node keeps
/// serving with it until it restarts), then the ledger drops it; setting the same key again
/// changes nothing, and no other node may take either key meanwhile.
#[test]
fn a_replaced_network_key_is_honoured_through_the_next_epoch() {
    let mut net = Net::new(4, 100);
    let all = owners(&net);
    let (id, owner) = all[0].clone();
    let old = floe_crypto::NetworkPublicKey::from_bytes(&[2; 33]).unwrap();
    let new = floe_crypto::NetworkPublicKey::from_bytes(&[3; 33]).unwrap();
    let set = |key| TxKind::SetNetworkKey {
        node_id: id,
        network_public_key: key,
    };
    net.submit(&owner, set(old)).unwrap();
    assert_eq!(net.state.nodes()[&id].previous_network_key, None);
    net.submit(&owner, set(new)).unwrap();
    let rotated_in = net.state.epoch();
    let node = &net.state.nodes()[&id];
    assert_eq!(node.pinned_keys(), vec![new, old]);
    assert_eq!(
        node.previous_network_key.map(|p| p.until_epoch),
        Some(rotated_in + 1)
    );
    // Setting the current key again keeps the overlap as it is.
    net.submit(&owner, set(new)).unwrap();
    assert_eq!(net.state.nodes()[&id].pinned_keys(), vec![new, old]);
    let member_keys = |net: &Net| {
        let info =
            floe_ledger::api_types::CommitteeInfo::new(net.state.committee(), net.state.nodes());
        info.members
            .iter()
            .find(|m| m.node_id == id)
            .unwrap()
            .pinned_keys()
    };
    assert_eq!(member_keys(&net), vec![new, old]);
    // Neither key may go to another node while both are pinned.
    let (other, other_owner) = all[1].clone();
    let err = net
        .submit(
            &other_owner,
            TxKind::SetNetworkKey {
                node_id: other,
                network_public_key: old,
            },
        )
        .unwrap_err();
    assert!(matches!(err, TxError::BadNode(_)), "{err:?}");
    change_epoch(&mut net, &all);
    assert_eq!(
        member_keys(&net),
        vec![new, old],
        "still honoured next epoch"
    );
    change_epoch(&mut net, &all);
    assert_eq!(net.state.epoch(), rotated_in + 2);
    assert_eq!(member_keys(&net), vec![new], "dropped after its last epoch");
    assert_eq!(net.state.nodes()[&id].previous_network_key, None);
}
