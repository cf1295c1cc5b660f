//! The node's view of the committee: the current epoch, the shard assignment, and its own
//! shards. Refreshed from the ledger at start-up and at every epoch event.

use std::collections::BTreeSet;

use floe_core::{BlobId, EncodingConfig, Epoch, ShardIndex, SliverPairIndex};
use floe_crypto::ProtocolPublicKey;
use floe_ledger::api_types::{CommitteeInfo, SystemInfo};

#[derive(Clone, Debug)]
pub struct CommitteeView {
    pub epoch: Epoch,
    pub config: EncodingConfig,
    pub committee: CommitteeInfo,
    /// This node's position in the committee (signer-bitmap index), if it is a member.
    pub my_index: Option<usize>,
    pub my_shards: BTreeSet<u16>,
}

impl CommitteeView {
    pub fn from_system(system: &SystemInfo, me: &ProtocolPublicKey) -> Result<Self, String> {
        let config = EncodingConfig::new(system.n_shards).map_err(|e| e.to_string())?;
        let my_index = system
            .committee
            .members
            .iter()
            .position(|m| &m.protocol_key == me);
        let my_shards = my_index
            .map(|i| system.committee.members[i].shards.iter().copied().collect())
            .unwrap_or_default();
        Ok(Self {
            epoch: system.epoch,
            config,
            committee: system.committee.clone(),
            my_index,
            my_shards,
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
