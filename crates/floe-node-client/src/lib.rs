//! A typed client of one storage node's REST API (BCS bodies, JSON envelopes). Used by nodes
//! (recovery, invalidity attestations) and by clients (uploads, reads, confirmations).
//!
//! Nothing returned here is trusted: callers verify metadata against the blob ID, slivers and
//! symbols against the metadata, and signatures against the committee.
#![forbid(unsafe_code)]

pub mod batch;
pub mod chunks;
pub mod pool;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use batch::{FinishedBatch, SLIVER_BATCH_VERSION, SliverBatchBody};
pub use chunks::BodyChunks;
use floe_core::recovery::{EitherDecodingSymbol, GeneralRecoverySymbol, InconsistencyProof};
use floe_core::{
    BlobId, BlobMetadata, BlobMetadataWithId, ObjectId, Sliver, SliverData, SliverIndex,
    SliverPairIndex, SliverType,
};
use floe_crypto::{NetworkPublicKey, SignedMessage};
pub use pool::{BuildError, NodeHttp};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a node call failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeClientError {
    #[error("cannot reach node {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("node {url} answered {status} {reason}: {message}")]
    Api {
        url: String,
        status: u16,
        reason: String,
        message: String,
    },
    #[error("unexpected answer from node {url}: {reason}")]
    Decode { url: String, reason: String },
}

impl NodeClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            NodeClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn reason(&self) -> Option<&str> {
        match self {
            NodeClientError::Api { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// What a PUT did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    Created,
    Buffered,
    AlreadyStored,
}

/// An error and its causes, `: `-separated: reqwest's own message ("error sending request for
/// url …") hides them (refused, reset, a protocol error of the connection, a timeout, …).
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    reason
}

/// Upper bound on the time a small request may take. A connection that died silently (a
/// partition, a frozen peer) then costs seconds, not the full timeout meant for large transfers.
pub const SMALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The slowest upload rate assumed when bounding an upload's time (bytes per second).
pub const MIN_UPLOAD_RATE: u64 = 1 << 20;

/// A client of one node, `base` like `http://127.0.0.1:9185`.
#[derive(Clone, Debug)]
pub struct NodeClient {
    base: String,
    http: reqwest::Client,
    timeout: Duration,
    /// Why this node cannot be reached at all (no TLS client could be built for its key):
    /// every request fails at once with this reason, naming the node.
    unusable: Option<Arc<str>>,
}

impl NodeClient {
    /// A client of the node registered at `address` with network keys `keys` (HTTPS pinned to
    /// them when there are any: the registered key, then a replaced one still honoured; see
    /// [`pool`]). Clients share connections through `pools`.
    pub fn for_node(
        pools: &NodeHttp,
        address: &str,
        keys: &[NetworkPublicKey],
        timeout: Duration,
    ) -> Self {
        match pools.route(address, keys) {
            Ok((base, http)) => Self {
                base,
                http,
                timeout,
                unusable: None,
            },
            Err(e) => {
                let host = address
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                let mut client = Self::new(pools.plain().clone(), host, timeout);
                client.base = format!("https://{}", host.trim_end_matches('/'));
                client.unusable = Some(format!("no TLS client for its network key: {e}").into());
                client
            }
        }
    }

    /// A client of `address` (plain HTTP unless it says `https://`) over `http`.
    pub fn new(http: reqwest::Client, address: &str, timeout: Duration) -> Self {
        let base = if address.starts_with("http://") || address.starts_with("https://") {
            address.trim_end_matches('/').to_string()
        } else {
            format!("http://{address}")
        };
        Self {
            base,
            http,
            timeout,
            unusable: None,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Why no request to this node can be sent, if so (see [`Self::for_node`]).
    pub fn unusable(&self) -> Option<&str> {
        self.unusable.as_deref()
    }

    /// The error every request to an unusable node gets, before anything is sent.
    fn check_usable(&self, url: &str) -> Result<(), NodeClientError> {
        match &self.unusable {
            Some(reason) => Err(NodeClientError::Unreachable {
                url: url.into(),
                reason: reason.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// The HTTP client this node is reached with (pinned to its network key when it has one).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Time allowed for a request whose bodies are small (metadata, confirmations, statuses):
    /// the client's timeout, at most [`SMALL_REQUEST_TIMEOUT`].
    fn small(&self) -> Duration {
        self.timeout.min(SMALL_REQUEST_TIMEOUT)
    }

    /// Time allowed for an upload of `bytes`: [`SMALL_REQUEST_TIMEOUT`] plus the time at
    /// [`MIN_UPLOAD_RATE`], at most the client's timeout.
    fn upload(&self, bytes: usize) -> Duration {
        let transfer = Duration::from_secs_f64(bytes as f64 / MIN_UPLOAD_RATE as f64);
        self.timeout.min(SMALL_REQUEST_TIMEOUT + transfer)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<(u16, bytes::Bytes), NodeClientError> {
        self.send_within(req, url, self.timeout).await
    }

    async fn send_within(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
        timeout: Duration,
    ) -> Result<(u16, bytes::Bytes), NodeClientError> {
        self.check_usable(url)?;
        let resp = req
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| NodeClientError::Unreachable {
                url: url.into(),
                reason: with_causes(&e),
            })?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| NodeClientError::Unreachable {
                url: url.into(),
                reason: with_causes(&e),
            })?;
        // The body as received: callers decode from it. (Copied here, every sliver a read
        // fetched was copied once more, into fresh pages.)
        if (200..300).contains(&status) {
            return Ok((status, bytes));
        }
        Err(Self::api_error(url, status, &bytes))
    }

    /// The error a non-2xx answer stands for (Walrus's JSON error envelope, or its first bytes).
    fn api_error(url: &str, status: u16, bytes: &[u8]) -> NodeClientError {
        let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        NodeClientError::Api {
            url: url.into(),
            status,
            reason: v["error"]["details"][0]["reason"]
                .as_str()
                .unwrap_or("UNKNOWN")
                .to_string(),
            message: v["error"]["message"].as_str().map_or_else(
                || String::from_utf8_lossy(bytes).chars().take(300).collect(),
                String::from,
            ),
        }
    }

    fn json_data<T: DeserializeOwned>(url: &str, bytes: &[u8]) -> Result<T, NodeClientError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| NodeClientError::Decode {
            url: url.into(),
            reason: e.to_string(),
        })?;
        serde_json::from_value(v["success"]["data"].clone()).map_err(|e| NodeClientError::Decode {
            url: url.into(),
            reason: e.to_string(),
        })
    }

    fn bcs<T: DeserializeOwned>(url: &str, bytes: &[u8]) -> Result<T, NodeClientError> {
        bcs::from_bytes(bytes).map_err(|e| NodeClientError::Decode {
            url: url.into(),
            reason: e.to_string(),
        })
    }

    fn stored(status: u16) -> Stored {
        match status {
            201 => Stored::Created,
            202 => Stored::Buffered,
            _ => Stored::AlreadyStored,
        }
    }

    pub async fn get_metadata(
        &self,
        blob_id: &BlobId,
    ) -> Result<BlobMetadataWithId, NodeClientError> {
        let url = format!("{}/v1/blobs/{blob_id}/metadata", self.base);
        let (_, b) = self
            .send_within(self.http.get(&url), &url, self.small())
            .await?;
        Self::bcs(&url, &b)
    }

    pub async fn put_metadata(
        &self,
        blob_id: &BlobId,
        metadata: &BlobMetadata,
    ) -> Result<Stored, NodeClientError> {
        let url = format!("{}/v1/blobs/{blob_id}/metadata", self.base);
        let body = bcs::to_bytes(metadata).expect("serialises");
        let timeout = self.upload(body.len());
        let (s, _) = self
            .send_within(self.http.put(&url).body(body), &url, timeout)
            .await?;
        Ok(Self::stored(s))
    }

    pub async fn put_sliver(
        &self,
        blob_id: &BlobId,
        pair: SliverPairIndex,
        axis: SliverType,
        sliver: &SliverData,
    ) -> Result<Stored, NodeClientError> {
        let url = format!("{}/v1/blobs/{blob_id}/slivers/{pair}/{axis}", self.base);
        let body = bcs::to_bytes(sliver).expect("serialises");
        let timeout = self.upload(body.len());
        let (s, _) = self
            .send_within(self.http.put(&url).body(body), &url, timeout)
            .await?;
        Ok(Self::stored(s))
    }

    /// Floe's batched upload: every pair this node holds, in one request.
    pub async fn put_sliver_batch(
        &self,
        blob_id: &BlobId,
        slivers: Vec<(SliverPairIndex, Sliver)>,
    ) -> Result<u64, NodeClientError> {
        let mut body = SliverBatchBody::new();
        for (pair, sliver) in slivers {
            let axis = sliver.axis();
            let d = sliver.into_data();
            body.push(pair, axis, d.index, d.symbol_size, d.symbols.into());
        }
        self.put_sliver_batch_body(blob_id, &body.finish()).await
    }

    /// The batched upload with a body built by [`SliverBatchBody`], streamed from its chunks.
    pub async fn put_sliver_batch_body(
        &self,
        blob_id: &BlobId,
        body: &FinishedBatch,
    ) -> Result<u64, NodeClientError> {
        let url = format!("{}/v1/blobs/{blob_id}/slivers", self.base);
        let timeout = self.upload(body.len());
        let request = self
            .http
            .put(&url)
            .header(reqwest::header::CONTENT_LENGTH, body.len())
            .body(body.body());
        let (_, b) = self.send_within(request, &url, timeout).await?;
        let v: Value = Self::json_data(&url, &b)?;
        Ok(v["stored"].as_u64().unwrap_or(0))
    }

    /// Whether the node answers its health route within `timeout` (any HTTP answer counts:
    /// the process is alive and serving).
    pub async fn probe(&self, timeout: Duration) -> bool {
        let url = format!("{}/v1/health", self.base);
        if self.unusable.is_some() {
            return false;
        }
        matches!(
            tokio::time::timeout(timeout, self.http.get(&url).timeout(timeout).send()).await,
            Ok(Ok(_))
        )
    }

    pub async fn get_sliver(
        &self,
        blob_id: &BlobId,
        pair: SliverPairIndex,
        axis: SliverType,
    ) -> Result<SliverData, NodeClientError> {
        let url = format!("{}/v1/blobs/{blob_id}/slivers/{pair}/{axis}", self.base);
        let (_, b) = self.send(self.http.get(&url), &url).await?;
        Self::bcs(&url, &b)
    }

    /// The node's signed storage confirmation (permanent, or bound to a deletable object).
    pub async fn confirmation(
        &self,
        blob_id: &BlobId,
        deletable: Option<&ObjectId>,
    ) -> Result<SignedMessage, NodeClientError> {
        let url = match deletable {
            Some(o) => format!(
                "{}/v1/blobs/{blob_id}/confirmation/deletable/{o}",
                self.base
            ),
            None => format!("{}/v1/blobs/{blob_id}/confirmation/permanent", self.base),
        };
        let (_, b) = self
            .send_within(self.http.get(&url), &url, self.small())
            .await?;
        let v: Value = Self::json_data(&url, &b)?;
        serde_json::from_value(v["signed"].clone()).map_err(|e| NodeClientError::Decode {
            url,
            reason: e.to_string(),
        })
    }

    /// Recovery symbols by `(row, column)` IDs. A node holding both slivers of a symbol serves
    /// it from its secondary sliver; see [`Self::recovery_symbols_proven_on`].
    pub async fn recovery_symbols(
        &self,
        blob_id: &BlobId,
        ids: &[(u16, u16)],
    ) -> Result<Vec<GeneralRecoverySymbol>, NodeClientError> {
        self.symbols_by_id(blob_id, ids, None).await
    }

    /// Recovery symbols by `(row, column)` IDs, each taken from a sliver of `proof_axis` (and
    /// proven against that sliver's hash): `Secondary` for symbols that rebuild primary
    /// slivers, `Primary` for symbols that rebuild secondary slivers.
    pub async fn recovery_symbols_proven_on(
        &self,
        blob_id: &BlobId,
        ids: &[(u16, u16)],
        proof_axis: SliverType,
    ) -> Result<Vec<GeneralRecoverySymbol>, NodeClientError> {
        self.symbols_by_id(blob_id, ids, Some(proof_axis)).await
    }

    async fn symbols_by_id(
        &self,
        blob_id: &BlobId,
        ids: &[(u16, u16)],
        proof_axis: Option<SliverType>,
    ) -> Result<Vec<GeneralRecoverySymbol>, NodeClientError> {
        let mut query: Vec<String> = ids.iter().map(|(r, c)| format!("id={r}-{c}")).collect();
        if let Some(axis) = proof_axis {
            query.push(format!("proofAxis={axis}"));
        }
        let url = format!(
            "{}/v1/blobs/{blob_id}/recoverySymbols?{}",
            self.base,
            query.join("&")
        );
        let (_, b) = self.send(self.http.get(&url), &url).await?;
        Self::bcs(&url, &b)
    }

    /// Every recovery symbol the node can serve for sliver `target` of `target_type`, from
    /// the orthogonal slivers it stores.
    pub async fn recovery_symbols_for_target(
        &self,
        blob_id: &BlobId,
        target_type: SliverType,
        target: SliverIndex,
    ) -> Result<Vec<GeneralRecoverySymbol>, NodeClientError> {
        let url = format!(
            "{}/v1/blobs/{blob_id}/recoverySymbols?targetSliver={target}&targetType={target_type}",
            self.base
        );
        let (_, b) = self.send(self.http.get(&url), &url).await?;
        Self::bcs(&url, &b)
    }

    /// Decoding symbols (no proofs) for target slivers `targets` of axis `target_type`: per
    /// target, the symbols the node can supply from the orthogonal slivers it stores. Nothing
    /// here is proven: check what is rebuilt from them against the metadata. The node accepts
    /// at most 100 targets per request.
    pub async fn decoding_symbols(
        &self,
        blob_id: &BlobId,
        target_type: SliverType,
        targets: &[SliverIndex],
    ) -> Result<BTreeMap<SliverIndex, Vec<EitherDecodingSymbol>>, NodeClientError> {
        let mut query: Vec<String> = targets
            .iter()
            .map(|t| format!("targetSlivers={t}"))
            .collect();
        query.push(format!("targetType={target_type}"));
        let url = format!(
            "{}/v1/blobs/{blob_id}/decodingSymbols?{}",
            self.base,
            query.join("&")
        );
        let (_, b) = self.send(self.http.get(&url), &url).await?;
        Self::bcs(&url, &b)
    }

    /// Send an inconsistency proof; returns the node's signed invalid-blob attestation.
    pub async fn inconsistency_proof(
        &self,
        blob_id: &BlobId,
        axis: SliverType,
        proof: &InconsistencyProof,
    ) -> Result<SignedMessage, NodeClientError> {
        let url = format!("{}/v1/blobs/{blob_id}/inconsistencyProof/{axis}", self.base);
        let body = bcs::to_bytes(proof).expect("serialises");
        let (_, b) = self.send(self.http.post(&url).body(body), &url).await?;
        Self::json_data(&url, &b)
    }

    /// A possession audit of one shard: sends the BCS `request`, returns the node's signed
    /// answer (unverified: see `floe_crypto::audit::verify_audit_answer`). Bounded by `timeout`
    /// and by `max_bytes` of answer, read as it arrives: a node that sends more is cut off.
    pub async fn audit(
        &self,
        request: &floe_core::audit::AuditRequest,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<SignedMessage, NodeClientError> {
        let blob_id = request.v1().blob_id;
        let url = format!("{}/v1/blobs/{blob_id}/audit", self.base);
        self.check_usable(&url)?;
        let body = bcs::to_bytes(request).expect("a fixed-layout request serialises");
        let unreachable = |e: reqwest::Error| NodeClientError::Unreachable {
            url: url.clone(),
            reason: with_causes(&e),
        };
        let work = async {
            let mut resp = self
                .http
                .post(&url)
                .body(body)
                .send()
                .await
                .map_err(unreachable)?;
            let status = resp.status().as_u16();
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
                if bytes.len() + chunk.len() > max_bytes {
                    return Err(NodeClientError::Decode {
                        url: url.clone(),
                        reason: format!("answer exceeds {max_bytes} bytes"),
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(timeout, work).await.map_err(|_| {
            NodeClientError::Unreachable {
                url: url.clone(),
                reason: format!("no complete answer within {timeout:?}"),
            }
        })??;
        if !(200..300).contains(&status) {
            return Err(Self::api_error(&url, status, &bytes));
        }
        Self::bcs(&url, &bytes)
    }

    /// The node's view of the blob's status (JSON as served).
    pub async fn blob_status(&self, blob_id: &BlobId) -> Result<Value, NodeClientError> {
        let url = format!("{}/v1/blobs/{blob_id}/status", self.base);
        let (_, b) = self.send(self.http.get(&url), &url).await?;
        Self::json_data(&url, &b)
    }

    /// `nonexistent`, `buffered` or `stored`.
    pub async fn sliver_status(
        &self,
        blob_id: &BlobId,
        pair: SliverPairIndex,
        axis: SliverType,
    ) -> Result<String, NodeClientError> {
        let url = format!(
            "{}/v1/blobs/{blob_id}/slivers/{pair}/{axis}/status",
            self.base
        );
        let (_, b) = self.send(self.http.get(&url), &url).await?;
        Self::json_data(&url, &b)
    }
}

#[cfg(test)]
mod unusable_tests {
    use super::*;

    #[tokio::test]
    async fn an_unusable_node_fails_every_request_at_once_with_its_reason() {
        // A port that answers nothing: were anything sent, the request would fail differently.
        let mut client = NodeClient::new(
            reqwest::Client::new(),
            "127.0.0.1:9",
            Duration::from_secs(5),
        );
        client.base = "https://127.0.0.1:9".into();
        client.unusable = Some("no TLS client for its network key: test".into());
        let blob_id = BlobId([7; 32]);
        let err = client.get_metadata(&blob_id).await.expect_err("unusable");
        let text = err.to_string();
        assert!(
            text.contains("https://127.0.0.1:9/v1/blobs/")
                && text.contains("no TLS client for its network key: test"),
            "{text}"
        );
        assert!(
            !client.probe(Duration::from_secs(1)).await,
            "no probe either"
        );
        assert_eq!(
            client.unusable(),
            Some("no TLS client for its network key: test")
        );
    }
}
