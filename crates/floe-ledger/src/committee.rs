//! Shard apportionment: shards by weight (D'Hondt), and transitions that move as few shards as
//! possible.

use std::collections::BTreeMap;

use crate::types::{Committee, CommitteeMember, NodeId};

/// Shards per node by weight with the D'Hondt (highest quotient) method; ties go to the node
/// listed first. Every node with positive weight gets at least one shard when there are enough.
pub fn apportion(n_shards: u16, weights: &[(NodeId, u64)]) -> Vec<(NodeId, u16)> {
    let mut counts: Vec<(NodeId, u16)> = weights.iter().map(|(id, _)| (*id, 0)).collect();
    let total: u128 = weights.iter().map(|(_, w)| u128::from(*w)).sum();
    if total == 0 || weights.is_empty() {
        return counts;
    }
    for _ in 0..n_shards {
        // Highest quotient w / (c + 1), compared exactly by cross-multiplication.
        let best = (0..weights.len())
            .filter(|&i| weights[i].1 > 0)
            .max_by(|&a, &b| {
                let qa = u128::from(weights[a].1) * u128::from(counts[b].1 + 1);
                let qb = u128::from(weights[b].1) * u128::from(counts[a].1 + 1);
                qa.cmp(&qb).then(b.cmp(&a))
            })
            .expect("some positive weight");
        counts[best].1 += 1;
    }
    counts
}

/// The genesis committee: consecutive shard ranges in node-ID order.
pub fn genesis_committee(n_shards: u16, weights: &[(NodeId, u64)]) -> Committee {
    let mut sorted = weights.to_vec();
    sorted.sort_by_key(|(id, _)| *id);
    let mut next = 0u16;
    let members = apportion(n_shards, &sorted)
        .into_iter()
        .filter(|(_, c)| *c > 0)
        .map(|(node_id, c)| {
            let shards = (next..next + c).collect();
            next += c;
            CommitteeMember { node_id, shards }
        })
        .collect();
    Committee {
        epoch: 0,
        n_shards,
        members,
    }
}

/// The next committee for new weights, keeping every shard where it is unless its holder must
/// shrink or leave; freed shards go to nodes that must grow, lowest shard first.
pub fn transition(current: &Committee, epoch: u32, weights: &[(NodeId, u64)]) -> Committee {
    let mut sorted = weights.to_vec();
    sorted.sort_by_key(|(id, _)| *id);
    let targets: BTreeMap<NodeId, u16> = apportion(current.n_shards, &sorted).into_iter().collect();
    let mut held: BTreeMap<NodeId, Vec<u16>> = BTreeMap::new();
    let mut free: Vec<u16> = Vec::new();
    for m in &current.members {
        let target = usize::from(targets.get(&m.node_id).copied().unwrap_or(0));
        let mut shards = m.shards.clone();
        shards.sort_unstable();
        free.extend(shards.drain(target.min(shards.len())..));
        held.insert(m.node_id, shards);
    }
    free.sort_unstable();
    let mut free = free.into_iter();
    let mut members = Vec::new();
    for (node_id, target) in &targets {
        let mut shards = held.remove(node_id).unwrap_or_default();
        while shards.len() < usize::from(*target) {
            shards.push(free.next().expect("apportionment sums to n_shards"));
        }
        shards.sort_unstable();
        if !shards.is_empty() {
            members.push(CommitteeMember {
                node_id: *node_id,
                shards,
            });
        }
    }
    Committee {
        epoch,
        n_shards: current.n_shards,
        members,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_core::ObjectId;

    fn id(i: u8) -> NodeId {
        ObjectId([i; 32])
    }

    #[test]
    fn apportionment_is_proportional_and_complete() {
        let a = apportion(1000, &[(id(1), 1), (id(2), 1), (id(3), 2)]);
        assert_eq!(
            a.iter().map(|x| x.1).collect::<Vec<_>>(),
            vec![250, 250, 500]
        );
        let a = apportion(10, &[(id(1), 1), (id(2), 1), (id(3), 1)]);
        assert_eq!(a.iter().map(|x| u32::from(x.1)).sum::<u32>(), 10);
        assert_eq!(a.iter().map(|x| x.1).collect::<Vec<_>>(), vec![4, 3, 3]);
    }

    #[test]
    fn genesis_ranges_and_minimal_transition() {
        let w = [(id(1), 1), (id(2), 1), (id(3), 1), (id(4), 1)];
        let g = genesis_committee(100, &w);
        assert_eq!(g.members[0].shards, (0..25).collect::<Vec<_>>());
        assert_eq!(g.members[3].shards, (75..100).collect::<Vec<_>>());
        // Node 4 leaves: only its 25 shards move.
        let t = transition(&g, 1, &w[..3]);
        let moved: usize = g
            .members
            .iter()
            .map(|m| {
                m.shards
                    .iter()
                    .filter(|s| t.owner_of(**s).map(|i| t.members[i].node_id) != Some(m.node_id))
                    .count()
            })
            .sum();
        assert_eq!(moved, 25);
        assert_eq!(t.members.iter().map(|m| m.shards.len()).sum::<usize>(), 100);
    }
}
