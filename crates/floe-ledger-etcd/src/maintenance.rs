//! Returning the space of pruned records to the filesystem: etcd's compaction frees pages
//! inside each member's database file but never shrinks it; only a `defragment` of that
//! member does, and a member is unavailable while it defragments. So members are
//! defragmented one at a time, and only those whose file is mostly free.

use std::time::Duration;

use crate::log::{EtcdLog, EtcdLogError, bounded, connect_client};

/// Longest wait for one member's defragmentation (it rewrites the whole database file).
pub const DEFRAG_TIMEOUT: Duration = Duration::from_secs(60);

/// One member's database before (and after, if defragmented) a maintenance pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSpace {
    pub endpoint: String,
    /// Size of the database file, and the part of it in use, in bytes.
    pub db_size: u64,
    pub in_use: u64,
    /// The file's size after a defragmentation, if this pass ran one.
    pub defragmented_to: Option<u64>,
}

impl MemberSpace {
    /// Bytes a defragmentation would return.
    pub fn reclaimable(&self) -> u64 {
        self.db_size.saturating_sub(self.in_use)
    }
}

impl EtcdLog {
    /// Looks at every configured member in turn and defragments each whose database has at
    /// least `min_reclaim` bytes free and is at least half free. Members that cannot be
    /// reached are skipped (the next pass tries again); the first other failure ends the pass.
    pub async fn defragment_members(
        &self,
        min_reclaim: u64,
    ) -> Result<Vec<MemberSpace>, EtcdLogError> {
        let mut out = Vec::new();
        for endpoint in &self.config.endpoints {
            let Ok(client) = connect_client(&self.config, vec![endpoint.clone()]).await else {
                continue;
            };
            let mut maintenance = client.maintenance_client();
            let Ok(status) = bounded(self.config.request_timeout, maintenance.status()).await
            else {
                continue;
            };
            let mut member = MemberSpace {
                endpoint: endpoint.clone(),
                db_size: status.db_size().max(0) as u64,
                in_use: status.raft_used_db_size().max(0) as u64,
                defragmented_to: None,
            };
            let free = member.reclaimable();
            if free >= min_reclaim && free.saturating_mul(2) >= member.db_size {
                bounded(DEFRAG_TIMEOUT, maintenance.defragment()).await?;
                let after = bounded(self.config.request_timeout, maintenance.status()).await?;
                member.defragmented_to = Some(after.db_size().max(0) as u64);
                tracing::info!(
                    endpoint,
                    before = member.db_size,
                    after = member.defragmented_to,
                    "etcd member defragmented"
                );
            }
            out.push(member);
        }
        Ok(out)
    }
}
