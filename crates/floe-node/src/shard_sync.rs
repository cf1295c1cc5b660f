//! Shard migration: a node that gains a shard in an epoch change pulls the shard's slivers from
//! the previous owner in batches over `POST /v1/migrate/sync_shard`.
//!
//! The request is a [`SignedMessage`] (JSON) over a `SyncShardRequest` (intent 3) for the
//! current epoch, signed with the requester's protocol key. The serving node accepts it only if
//! the signature verifies under the key of the shard's owner in the ledger's current
//! committee, and only for a shard it still holds (owned or read-only). The answer is BCS: up to
//! `sliverCount` slivers in blob-ID order from `startingBlobId` (inclusive). The requester
//! verifies every sliver against the blob's metadata (itself verified against the blob ID)
//! before storing it, so a lying previous owner is detected and abandoned; batches resume from
//! the last blob ID stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use floe_core::{BlobId, BlobMetadata, ShardIndex, SliverData, SliverType};
use floe_crypto::{
    ProtocolMessage, SignedMessage, SyncShardRequest, SyncShardRequestV1, VerificationError,
};
use floe_ledger::api_types::MemberInfo;
use floe_node_client::NodeClient;
use floe_node_storage::{MigrationCursor, StoreError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::node::StorageNode;
use crate::view::CommitteeView;

/// The route.
pub const SYNC_SHARD_PATH: &str = "/v1/migrate/sync_shard";
use crate::limits::{BATCH_TIMEOUT, METADATA_FETCHES, REQUEST_BATCH};
pub use crate::limits::{MAX_BATCH_BYTES, MAX_SLIVERS_PER_BATCH};
/// Most bytes of an error answer kept for the message.
const MAX_ERROR_TEXT: usize = 4096;

/// The wire version of [`SyncShardResponse`] this node writes and reads.
pub const SYNC_SHARD_RESPONSE_VERSION: u8 = 1;

/// One batch of a shard's slivers (BCS).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncShardResponse {
    /// Wire version ([`SYNC_SHARD_RESPONSE_VERSION`]).
    pub version: u8,
    pub slivers: Vec<(BlobId, SliverData)>,
    /// True when no slivers follow the last one returned.
    pub done: bool,
}

/// Why a shard sync request or a migration step failed.
#[derive(Debug, thiserror::Error)]
pub enum ShardSyncError {
    #[error("malformed sync request: {0}")]
    BadRequest(String),
    #[error("the request is for epoch {theirs}, this node is in epoch {mine}")]
    WrongEpoch { mine: u32, theirs: u32 },
    #[error("the requester is not the owner of shard {0} in the current committee")]
    NotAuthorized(u16),
    #[error("shard {0} is not held by this node")]
    NotHeld(u16),
    #[error("storage failure: {0}")]
    Storage(#[from] StoreError),
    #[error("peer {peer} failed: {reason}")]
    PeerUnavailable { peer: String, reason: String },
    #[error("peer {peer} served bad data: {reason}")]
    PeerLied { peer: String, reason: String },
}

/// The blob ID right after `id` in byte order, or `None` after the last one.
fn successor(id: &BlobId) -> Option<BlobId> {
    let mut bytes = id.0;
    for b in bytes.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return Some(BlobId(bytes));
        }
    }
    None
}

impl StorageNode {
    /// Serve one batch of a shard to its new owner (the handler of [`SYNC_SHARD_PATH`]).
    pub fn serve_sync_shard(
        &self,
        request: &SignedMessage,
    ) -> Result<SyncShardResponse, ShardSyncError> {
        let view = self.view();
        let unverified =
            ProtocolMessage::<SyncShardRequest>::from_bytes(&request.serialized_message)
                .map_err(|e| ShardSyncError::BadRequest(e.to_string()))?;
        let SyncShardRequest::V1(body) = unverified.body;
        if unverified.epoch != view.epoch || body.epoch != view.epoch {
            return Err(ShardSyncError::WrongEpoch {
                mine: view.epoch,
                theirs: unverified.epoch,
            });
        }
        let shard = body.shard_index;
        if shard.0 >= view.n() {
            return Err(ShardSyncError::BadRequest(format!(
                "shard {shard} out of range"
            )));
        }
        let owner = view
            .committee
            .owner_of(shard.0)
            .map(|i| view.committee.members[i].protocol_key)
            .ok_or(ShardSyncError::NotAuthorized(shard.0))?;
        request
            .verify_sync_shard_request(&owner, view.epoch)
            .map_err(|e| match e {
                VerificationError::InvalidSignature => ShardSyncError::NotAuthorized(shard.0),
                other => ShardSyncError::BadRequest(other.to_string()),
            })?;
        if !view.serves(shard) {
            return Err(ShardSyncError::NotHeld(shard.0));
        }
        let limit = body.sliver_count.clamp(1, MAX_SLIVERS_PER_BATCH) as usize;
        let ids =
            self.store
                .sliver_ids(shard, body.sliver_type, Some(&body.starting_blob_id), limit)?;
        let mut done = ids.len() < limit;
        let mut slivers = Vec::with_capacity(ids.len());
        let mut bytes = 0;
        for blob_id in ids {
            if bytes >= MAX_BATCH_BYTES {
                done = false;
                break;
            }
            let invalid = self
                .store
                .get_blob_info(&blob_id)?
                .is_some_and(|i| i.invalid_event.is_some());
            if invalid {
                continue;
            }
            if let Some(s) = self.store.get_sliver(shard, body.sliver_type, &blob_id)? {
                bytes += s.symbols.len();
                slivers.push((blob_id, s));
            }
        }
        self.counters
            .slivers_served
            .fetch_add(slivers.len() as u64, Ordering::Relaxed);
        self.counters
            .sliver_bytes_served
            .fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(SyncShardResponse {
            version: SYNC_SHARD_RESPONSE_VERSION,
            slivers,
            done,
        })
    }

    /// Pull `axis` slivers of `shard` from `peer`, from `*cursor` on; the cursor advances past
    /// every stored batch and is persisted with it, so a failed pull, or a restarted node,
    /// resumes where it stopped. Returns (slivers, bytes).
    pub(crate) async fn pull_shard(
        self: &Arc<Self>,
        view: &CommitteeView,
        peer: &MemberInfo,
        shard: ShardIndex,
        axis: SliverType,
        cursor: &mut Option<BlobId>,
    ) -> Result<(u64, u64), ShardSyncError> {
        let client = NodeClient::for_node(
            &self.http,
            &peer.network_address,
            &peer.pinned_keys(),
            BATCH_TIMEOUT,
        );
        let url = format!(
            "{}{SYNC_SHARD_PATH}",
            client.base_url().trim_end_matches('/')
        );
        let unavailable = |reason: String| ShardSyncError::PeerUnavailable {
            peer: peer.name.clone(),
            reason,
        };
        if let Some(reason) = client.unusable() {
            return Err(unavailable(reason.to_string()));
        }
        let lied = |reason: String| ShardSyncError::PeerLied {
            peer: peer.name.clone(),
            reason,
        };
        let (mut count, mut total) = (0u64, 0u64);
        loop {
            let Some(start) = *cursor else {
                return Ok((count, total));
            };
            let message = ProtocolMessage::new(
                view.epoch,
                SyncShardRequest::V1(SyncShardRequestV1 {
                    shard_index: shard,
                    sliver_type: axis,
                    starting_blob_id: start,
                    sliver_count: REQUEST_BATCH,
                    epoch: view.epoch,
                }),
            );
            let signed = SignedMessage::sign(&self.keys.protocol, &message);
            let mut resp = client
                .http()
                .post(&url)
                .timeout(BATCH_TIMEOUT)
                .json(&signed)
                .send()
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            if !resp.status().is_success() {
                let status = resp.status();
                let text = match read_capped(&mut resp, MAX_ERROR_TEXT).await {
                    Ok(b) | Err(ReadError::TooLong(b)) => String::from_utf8_lossy(&b).into_owned(),
                    Err(ReadError::Http(e)) => e,
                };
                return Err(unavailable(format!("{status}: {text}")));
            }
            // A batch is cut short past MAX_BATCH_BYTES, so it overshoots by at most one
            // sliver, which no upload could make larger than the body limit.
            let cap = MAX_BATCH_BYTES + self.config.limits.max_body_bytes;
            let body = match read_capped(&mut resp, cap).await {
                Ok(body) => body,
                Err(ReadError::TooLong(_)) => {
                    return Err(lied(format!("a batch of more than {cap} bytes")));
                }
                Err(ReadError::Http(e)) => return Err(unavailable(e)),
            };
            let batch = match decode_batch(&body) {
                Ok(batch) => batch,
                Err(BatchError::NotBcs(e)) => return Err(lied(format!("not a BCS batch: {e}"))),
                // Another release's format: not a lie, but nothing this node can use.
                Err(e @ BatchError::Version(_)) => return Err(unavailable(e.to_string())),
            };
            let mut last = None;
            let mut wanted = Vec::with_capacity(batch.slivers.len());
            for (blob_id, sliver) in batch.slivers {
                if blob_id < start || last.is_some_and(|l| blob_id <= l) {
                    return Err(lied("slivers out of order".into()));
                }
                last = Some(blob_id);
                if self
                    .store
                    .get_blob_info(&blob_id)?
                    .is_some_and(|i| !i.can_delete_data(view.epoch))
                {
                    wanted.push((blob_id, sliver));
                }
            }
            let mut metadata = self.batch_metadata(view, &client, &wanted).await?;
            let mut checks = Vec::with_capacity(wanted.len());
            for (blob_id, sliver) in wanted {
                let metadata = metadata
                    .remove(&blob_id)
                    .ok_or_else(|| unavailable(format!("no metadata for {blob_id}")))?;
                let expected = shard
                    .to_pair_index(view.n(), &blob_id)
                    .to_sliver_index(axis, view.n());
                if sliver.index != expected {
                    return Err(lied(format!("sliver index {} for {blob_id}", sliver.index)));
                }
                checks.push((blob_id, sliver, metadata));
            }
            // Verifying expands every sliver to n symbols and hashes them: CPU work, done off the
            // async workers and spread over the cores.
            let config = view.config;
            let verified = tokio::task::spawn_blocking(move || {
                checks
                    .into_par_iter()
                    .map(|(blob_id, sliver, metadata)| {
                        sliver
                            .verify(axis, &config, &metadata)
                            .map(|()| (blob_id, sliver))
                            .map_err(|e| format!("sliver of {blob_id}: {e}"))
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .await
            .map_err(|e| unavailable(format!("verification task: {e}")))?
            .map_err(lied)?;
            let mut items = Vec::with_capacity(verified.len());
            for (blob_id, sliver) in verified {
                total += sliver.symbols.len() as u64;
                items.push((shard, axis, blob_id, sliver));
            }
            count += items.len() as u64;
            let next = match (batch.done, last) {
                (true, _) => None,
                (false, Some(l)) => successor(&l),
                (false, None) => return Err(lied("an empty batch that is not the last".into())),
            };
            // The slivers first, then the cursor past them: a crash in between repeats the
            // batch, never skips it.
            let store = Arc::clone(&self.store);
            let record = MigrationCursor {
                epoch: view.epoch,
                next,
            };
            tokio::task::spawn_blocking(move || {
                if !items.is_empty() {
                    store.put_slivers(&items)?;
                }
                store.set_migration_cursor(shard, axis, &record)
            })
            .await
            .map_err(|e| unavailable(format!("store task: {e}")))??;
            *cursor = next;
        }
    }

    /// The metadata of a batch's blobs: stored, or fetched from `peer` (up to
    /// [`METADATA_FETCHES`] at once), checked against the blob ID and stored.
    async fn batch_metadata(
        &self,
        view: &CommitteeView,
        peer: &NodeClient,
        slivers: &[(BlobId, SliverData)],
    ) -> Result<HashMap<BlobId, BlobMetadata>, ShardSyncError> {
        let mut out = HashMap::with_capacity(slivers.len());
        let mut absent = Vec::new();
        for (blob_id, _) in slivers {
            match self.store.get_metadata(blob_id)? {
                Some(m) => {
                    out.insert(*blob_id, m);
                }
                None => absent.push(*blob_id),
            }
        }
        let mut absent = absent.into_iter();
        let mut set = JoinSet::new();
        let mut fetched = Vec::new();
        loop {
            while set.len() < METADATA_FETCHES {
                let Some(blob_id) = absent.next() else { break };
                let peer = peer.clone();
                set.spawn(async move { (blob_id, peer.get_metadata(&blob_id).await) });
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            let (blob_id, result) = joined.map_err(|e| ShardSyncError::PeerUnavailable {
                peer: peer.base_url().to_string(),
                reason: format!("metadata task: {e}"),
            })?;
            let m = result.map_err(|e| ShardSyncError::PeerUnavailable {
                peer: peer.base_url().to_string(),
                reason: format!("metadata of {blob_id}: {e}"),
            })?;
            if m.blob_id != blob_id || m.verify(&view.config).is_err() {
                return Err(ShardSyncError::PeerLied {
                    peer: peer.base_url().to_string(),
                    reason: format!("metadata does not match {blob_id}"),
                });
            }
            fetched.push((blob_id, m.metadata));
        }
        if !fetched.is_empty() {
            let store = Arc::clone(&self.store);
            let fetched = tokio::task::spawn_blocking(move || {
                for (blob_id, m) in &fetched {
                    store.put_metadata(blob_id, m)?;
                }
                Ok::<_, StoreError>(fetched)
            })
            .await
            .map_err(|e| ShardSyncError::PeerUnavailable {
                peer: peer.base_url().to_string(),
                reason: format!("store task: {e}"),
            })??;
            out.extend(fetched);
        }
        Ok(out)
    }
}

/// A sync-shard answer this node cannot use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
enum BatchError {
    #[error("{0}")]
    NotBcs(String),
    #[error(
        "the peer answers sync-shard version {0}; this node reads {SYNC_SHARD_RESPONSE_VERSION}"
    )]
    Version(u8),
}

/// Decode a sync-shard answer, checking its wire version.
enum ReadError {
    /// Over the cap: the bytes read up to it.
    TooLong(Vec<u8>),
    Http(String),
}

/// Read an answer's body as it arrives, at most `cap` bytes.
async fn read_capped(resp: &mut reqwest::Response, cap: usize) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ReadError::Http(e.to_string()))?
    {
        if bytes.len() + chunk.len() > cap {
            let room = cap - bytes.len();
            bytes.extend_from_slice(&chunk[..room]);
            return Err(ReadError::TooLong(bytes));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn decode_batch(body: &[u8]) -> Result<SyncShardResponse, BatchError> {
    let batch: SyncShardResponse =
        bcs::from_bytes(body).map_err(|e| BatchError::NotBcs(e.to_string()))?;
    if batch.version != SYNC_SHARD_RESPONSE_VERSION {
        return Err(BatchError::Version(batch.version));
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_another_version_is_refused_by_name() {
        let batch = |version| SyncShardResponse {
            version,
            slivers: Vec::new(),
            done: true,
        };
        let ok = bcs::to_bytes(&batch(SYNC_SHARD_RESPONSE_VERSION)).unwrap();
        assert!(decode_batch(&ok).unwrap().done);
        let newer = bcs::to_bytes(&batch(2)).unwrap();
        let err = decode_batch(&newer).unwrap_err();
        assert_eq!(err, BatchError::Version(2));
        assert!(err.to_string().contains("version 2"), "{err}");
        assert!(matches!(decode_batch(&[0xff]), Err(BatchError::NotBcs(_))));
    }

    /// A peer that answers with `len` bytes of body over a real socket.
    async fn peer_sending(len: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = s.read(&mut request).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
            let _ = s.write_all(head.as_bytes()).await;
            let chunk = vec![7u8; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len());
                if s.write_all(&chunk[..n]).await.is_err() {
                    return; // the reader hung up
                }
                left -= n;
            }
        });
        url
    }

    #[tokio::test]
    async fn an_answer_is_read_only_up_to_its_cap() {
        let client = reqwest::Client::new();
        let url = peer_sending(1000).await;
        let mut resp = client.get(&url).send().await.unwrap();
        assert_eq!(
            read_capped(&mut resp, 1000).await.ok().map(|b| b.len()),
            Some(1000)
        );

        let url = peer_sending(8 << 20).await;
        let mut resp = client.get(&url).send().await.unwrap();
        match read_capped(&mut resp, 100_000).await {
            Err(ReadError::TooLong(b)) => assert_eq!(b.len(), 100_000),
            Ok(b) => panic!("read {} bytes past the cap", b.len()),
            Err(ReadError::Http(e)) => panic!("{e}"),
        }
    }

    #[test]
    fn successor_orders_after() {
        let a = BlobId([0; 32]);
        let b = successor(&a).unwrap();
        assert!(b > a);
        let mut x = [0u8; 32];
        x[31] = 0xff;
        x[30] = 3;
        let s = successor(&BlobId(x)).unwrap();
        assert_eq!(s.0[30], 4);
        assert_eq!(s.0[31], 0);
        assert!(successor(&BlobId([0xff; 32])).is_none());
    }
}
