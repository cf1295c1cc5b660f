//! Floe's client library: what the `floe` CLI and the aggregator/publisher daemon are built on.
//!
//! * [`Client::store`] encodes a blob, registers it on the ledger, sends every storage node the
//!   sliver pairs of its shards, collects signed confirmations until nodes holding n − f shards
//!   answered, aggregates them into a certificate and certifies the blob: the point of
//!   availability. A node that fails or stalls never blocks a write that a quorum can finish.
//! * [`Client::read`] checks the blob's status on the ledger (so "does not exist", "invalid" and
//!   "not certified" are answered distinctly), fetches metadata verified against the blob ID,
//!   then primary slivers verified against the metadata until n − 2f are in hand, and decodes
//!   with a consistency check. f absent or lying shards cannot make it fail or lie.
//! * [`Client::read_range`] fetches only the slivers holding a byte range;
//!   [`Client::read_stream`] hands out a blob's bytes in order, row by row, as they arrive.
//! * [`Client::store_quilt`] stores many files as one quilt; [`Client::open_quilt`] reads its
//!   index and patches by fetching only their columns (secondary slivers).
//! * [`Client::audit`] asks every shard's node for a few sampled symbols with proofs, signed,
//!   and states whether the blob is available, at risk or unreadable ([`audit`]).
//! * [`Client::verified_status`], [`Client::list_blobs`], [`Client::delete`], [`Client::extend`].
//!
//! Every request is bounded in time, every retry loop in attempts, and uploads in concurrency
//! and bytes in flight ([`CommunicationConfig`]).
#![forbid(unsafe_code)]

pub mod audit;
mod challenges;
mod committee;
mod compute;
mod config;
mod error;
mod fetch;
mod health;
mod liveness;
mod manage;
mod parts;
mod progress;
mod quilt;
mod read;
mod slivers;
mod stream;
mod types;
mod write;

use std::sync::Arc;
use std::time::Duration;

pub use challenges::BlobChallenges;
pub use committee::{CommitteeView, Member};
pub use config::{ClientConfig, CommunicationConfig, QuiltReadConfig, split_urls};
pub use error::{ClientError, NodeFailure};
pub use floe_core::ConsistencyCheck;
use floe_ledger::api_types::SystemInfo;
use floe_ledger::{AccountKey, Address};
use floe_ledger_client::{AccountSession, LedgerClient};
pub use manage::{NodeAgreement, VerifiedStatus};
pub use parts::BlobParts;
pub use progress::{NoProgress, Progress};
pub use quilt::{
    BLOB_TYPE_ATTRIBUTE, OpenQuilt, QUILT_BLOB_TYPE, QuiltReadStats, QuiltStoreOutcome,
    stored_patches,
};
pub use read::ReadOptions;
pub use stream::BlobStream;
pub use types::{
    BlobObjectJson, BlobStoreResult, CertifiedBy, EventId, QuiltPatchListItem, QuiltStoreResult,
    ResourceOperation, StorageJson, StoredQuiltPatch,
};
pub use write::{Lifetime, StoreOptions, StoreOutcome, StoreTimings};

/// A client of one Floe network. Cheap to clone; clones share connections and the wallet.
#[derive(Clone)]
pub struct Client {
    config: Arc<ClientConfig>,
    http: floe_node_client::NodeHttp,
    ledger: LedgerClient,
    wallet: Option<Arc<AccountSession>>,
    /// Nodes that failed recently, asked last (shared by clones).
    health: Arc<health::NodeHealth>,
    /// Node requests in flight, client-wide (`max_concurrent_node_requests`; shared by clones).
    node_requests: Arc<tokio::sync::Semaphore>,
}

impl Client {
    /// A client; `wallet` signs ledger transactions (needed to store, delete and extend).
    pub fn new(config: ClientConfig, wallet: Option<AccountKey>) -> Result<Self, ClientError> {
        config.validate().map_err(ClientError::Committee)?;
        let connect = Duration::from_millis(config.communication.connect_timeout_ms);
        let http = floe_node_client::NodeHttp::new(move |b| {
            // Idle connections go after `floe_tls::POOL_IDLE_TIMEOUT`.
            b.connect_timeout(connect).pool_max_idle_per_host(64)
        })
        .map_err(|e| ClientError::Internal(e.to_string()))?;
        let ledger = LedgerClient::with_urls(config.ledger_urls());
        let node_requests = Arc::new(tokio::sync::Semaphore::new(
            config.communication.max_concurrent_node_requests,
        ));
        let wallet = wallet.map(|k| Arc::new(AccountSession::new(k, ledger.clone())));
        Ok(Self {
            config: Arc::new(config),
            http,
            ledger,
            wallet,
            health: Arc::default(),
            node_requests,
        })
    }

    /// Whether a read may multiply its requests (hedging into a fallback that asks many nodes)
    /// without crowding out other reads: at least one read's worth of the client-wide request
    /// cap is free. Under saturation a slow answer is the load's doing, not the node's, and a
    /// fallback of hundreds of requests per read would only deepen the queue.
    pub(crate) fn has_spare_requests(&self) -> bool {
        self.node_requests.available_permits()
            >= self.config.communication.max_concurrent_sliver_reads
    }

    /// Whether this client found the node at `address` silent (no answer to a request, nor to
    /// a health probe) in the last 30 s and has not heard from it since.
    pub fn node_is_silent(&self, address: &str) -> bool {
        self.health.is_silent(address, std::time::Instant::now())
    }

    /// The connection pools towards nodes (each node's client pinned to its network key).
    pub fn node_http(&self) -> &floe_node_client::NodeHttp {
        &self.http
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn ledger(&self) -> &LedgerClient {
        &self.ledger
    }

    /// The wallet's address, if a wallet is configured.
    pub fn address(&self) -> Option<Address> {
        self.wallet.as_ref().map(|w| w.address())
    }

    fn wallet(&self) -> Result<&Arc<AccountSession>, ClientError> {
        self.wallet.as_ref().ok_or(ClientError::NoWallet)
    }

    /// The ledger's current system state.
    pub async fn system(&self) -> Result<SystemInfo, ClientError> {
        Ok(self.ledger.system().await?)
    }

    /// The current system state and its committee.
    pub async fn committee(&self) -> Result<(SystemInfo, CommitteeView), ClientError> {
        let system = self.system().await?;
        let view = CommitteeView::from_system(
            &system,
            &self.http,
            self.config.communication.request_timeout(),
        )?;
        Ok((system, view))
    }
}
