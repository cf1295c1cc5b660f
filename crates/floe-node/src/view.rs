//! The node's view of the committee: the current epoch, the shard assignment, and its own
//! shards. Refreshed from the ledger at start-up and at every epoch event.

use std::collections::BTreeSet;

use floe_core::{BlobId, EncodingConfig, Epoch, ShardIndex, SliverPairIndex};
use floe_crypto::ProtocolPublicKey;
use floe_ledger::EpochState;
use floe_ledger::api_types::{CommitteeInfo, SystemInfo};

#[derive(Clone, Debug)]
pub struct CommitteeView {
    pub epoch: Epoch,
    pub config: EncodingConfig,
    pub committee: CommitteeInfo,
    /// This node's position in the committee (signer-bitmap index), if it is a member.
    pub my_index: Option<usize>,
    pub my_shards: BTreeSet<u16>,
    /// The committee before the current one.
    pub previous: Option<CommitteeInfo>,
    /// Shards this node held in the previous committee and no longer owns, kept read-only
    /// (served for reads and shard sync) for the rest of this epoch: removed when the next
    /// epoch starts, so new owners that finish after the quorum can still pull them.
    pub read_only: BTreeSet<u16>,
    /// Nodes that reported their shards synced, while the change is in progress.
    pub reported: Option<Vec<floe_ledger::NodeId>>,
}

impl CommitteeView {
    pub fn from_system(system: &SystemInfo, me: &ProtocolPublicKey) -> Result<Self, String> {
        let config = EncodingConfig::new(system.n_shards).map_err(|e| e.to_string())?;
        let my_index = system
            .committee
            .members
            .iter()
            .position(|m| &m.protocol_key == me);
        let my_shards: BTreeSet<u16> = my_index
            .map(|i| system.committee.members[i].shards.iter().copied().collect())
            .unwrap_or_default();
        let reported = match &system.epoch_state {
            EpochState::Syncing { reported, .. } => Some(reported.clone()),
            EpochState::Done | EpochState::NextParamsSelected => None,
        };
        let previous = system.previous_committee.clone();
        let read_only = previous
            .as_ref()
            .and_then(|p| p.members.iter().find(|m| &m.protocol_key == me))
            .map(|m| {
                m.shards
                    .iter()
                    .copied()
                    .filter(|s| !my_shards.contains(s))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            epoch: system.epoch,
            config,
            committee: system.committee.clone(),
            my_index,
            my_shards,
            previous,
            read_only,
            reported,
        })
    }

    pub fn n(&self) -> u16 {
        self.config.n_shards()
    }

    /// The shard holding `pair` of `blob_id`.
    pub fn shard_of(&self, blob_id: &BlobId, pair: SliverPairIndex) -> ShardIndex {
        pair.to_shard_index(self.n(), blob_id)
    }

    pub fn owns(&self, shard: ShardIndex) -> bool {
        self.my_shards.contains(&shard.0)
    }

    /// Whether this node serves reads of `shard`: owned, or held read-only during a change.
    pub fn serves(&self, shard: ShardIndex) -> bool {
        self.owns(shard) || self.read_only.contains(&shard.0)
    }

    /// Whether an epoch change is in progress.
    pub fn syncing(&self) -> bool {
        self.reported.is_some()
    }

    /// The pairs of `blob_id` this node must hold.
    pub fn my_pairs(&self, blob_id: &BlobId) -> Vec<(ShardIndex, SliverPairIndex)> {
        self.my_shards
            .iter()
            .map(|&s| {
                (
                    ShardIndex(s),
                    ShardIndex(s).to_pair_index(self.n(), blob_id),
                )
            })
            .collect()
    }
}
