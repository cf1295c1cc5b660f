//! The write/read committee as a client sees it: one node client per member, shard owners,
//! and the signing weights the certificate is checked against.

use std::time::Duration;

use floe_core::Epoch;
use floe_core::{BlobId, EncodingConfig, PairRotation, SliverIndex, SliverType};
use floe_crypto::{CommitteeMember, CommitteeWeights};
use floe_ledger::api_types::{CommitteeInfo, MemberInfo, SystemInfo};
use floe_node_client::NodeClient;

use crate::ClientError;

/// The member index owning each shard, checking that the members' shards are exactly
/// 0..n, once each.
pub(crate) fn shard_owners(committee: &CommitteeInfo) -> Result<Vec<usize>, String> {
    let n = usize::from(committee.n_shards);
    let mut owner = vec![usize::MAX; n];
    for (i, m) in committee.members.iter().enumerate() {
        for &s in &m.shards {
            let slot = owner
                .get_mut(usize::from(s))
                .ok_or_else(|| format!("shard {s} out of range"))?;
            if *slot != usize::MAX {
                return Err(format!("shard {s} has two owners"));
            }
            *slot = i;
        }
    }
    if let Some(s) = owner.iter().position(|&o| o == usize::MAX) {
        return Err(format!("shard {s} has no owner"));
    }
    Ok(owner)
}

/// One committee member and a client for its node.
#[derive(Clone, Debug)]
pub struct Member {
    pub info: MemberInfo,
    pub client: NodeClient,
}

impl Member {
    pub fn weight(&self) -> u64 {
        self.info.shards.len() as u64
    }

    pub fn label(&self) -> String {
        format!("{} ({})", self.info.name, self.info.network_address)
    }
}

/// The committee of one epoch.
#[derive(Clone, Debug)]
pub struct CommitteeView {
    pub epoch: Epoch,
    pub config: EncodingConfig,
    pub members: Vec<Member>,
    pub weights: CommitteeWeights,
    /// Member index owning each shard.
    shard_owner: Vec<usize>,
}

impl CommitteeView {
    pub fn from_system(
        system: &SystemInfo,
        http: &floe_node_client::NodeHttp,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let committee = &system.committee;
        let config = EncodingConfig::new(committee.n_shards)
            .map_err(|e| ClientError::Committee(e.to_string()))?;
        let shard_owner = shard_owners(committee).map_err(ClientError::Committee)?;
        let weights = CommitteeWeights::new(
            committee
                .members
                .iter()
                .map(|m| CommitteeMember {
                    public_key: m.protocol_key,
                    weight: m.shards.len() as u16,
                })
                .collect(),
            committee.n_shards,
        )
        .map_err(|e| ClientError::Committee(e.to_string()))?;
        let members = committee
            .members
            .iter()
            .map(|m| Member {
                info: m.clone(),
                client: NodeClient::for_node(http, &m.network_address, &m.pinned_keys(), timeout),
            })
            .collect();
        Ok(Self {
            epoch: committee.epoch,
            config,
            members,
            weights,
            shard_owner,
        })
    }

    pub fn n_shards(&self) -> u16 {
        self.config.n_shards()
    }

    /// n − f: the weight a certificate needs.
    pub fn quorum(&self) -> u64 {
        self.weights.quorum_threshold()
    }

    /// f + 1: enough weight that at least one honest shard is included.
    pub fn validity(&self) -> u64 {
        self.weights.validity_threshold()
    }

    /// The member owning `shard` (in range: `shard < n_shards`).
    pub fn owner_of_shard(&self, shard: floe_core::ShardIndex) -> usize {
        self.shard_owner[shard.as_usize()]
    }

    /// The member holding the shard that stores sliver `index` of `axis` for `blob_id`.
    pub fn holder_of(&self, blob_id: &BlobId, axis: SliverType, index: SliverIndex) -> usize {
        self.placement(blob_id, axis).holder(index.0)
    }

    /// The holders of `blob_id`'s slivers of `axis`, for many lookups (the blob's rotation is
    /// worked out once).
    pub fn placement(&self, blob_id: &BlobId, axis: SliverType) -> Placement<'_> {
        Placement {
            owners: &self.shard_owner,
            rotation: PairRotation::of(blob_id, self.n_shards()),
            axis,
        }
    }
}

/// Who holds each sliver of one axis of one blob (see [`CommitteeView::placement`]).
#[derive(Clone, Copy, Debug)]
pub struct Placement<'a> {
    owners: &'a [usize],
    rotation: PairRotation,
    axis: SliverType,
}

impl Placement<'_> {
    /// The member holding sliver `index` (in range: `index < n_shards`).
    pub fn holder(&self, index: u16) -> usize {
        let pair = SliverIndex(index).to_pair_index(self.axis, self.owners.len() as u16);
        self.owners[self.rotation.shard(pair).as_usize()]
    }
}
