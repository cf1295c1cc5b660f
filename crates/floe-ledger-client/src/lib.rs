//! A typed client of the ledger's HTTP API, used by storage nodes and clients.
//!
//! Every call is bounded in time. [`AccountSession`] submits transactions for one account,
//! tracking its sequence number and resynchronising it when the ledger says it is wrong.
#![forbid(unsafe_code)]

use std::time::Duration;

use floe_core::{BlobId, ObjectId};
use floe_ledger::api_types::{
    AccountResponse, BlobStatusResponse, Envelope, ErrorBody, EventsPage, HealthInfo,
    ObjectResponse, SubmitResponse, SystemInfo,
};
use floe_ledger::{AccountKey, Address, SignedTransaction, TxKind};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

/// Time allowed for a request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for a long poll beyond the wait it asks for. Short, so that a poll whose
/// connection died silently (a partition, a peer that vanished) is replaced within seconds of
/// the network healing: the server answers by the end of the wait, with a page of small events.
pub const LONG_POLL_MARGIN: Duration = Duration::from_secs(10);
/// Time allowed to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a ledger call failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerClientError {
    #[error("cannot reach the ledger at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the ledger answered {status} {reason}: {message}")]
    Api {
        status: u16,
        reason: String,
        message: String,
    },
    #[error("unexpected answer from the ledger at {url}: {reason}")]
    Decode { url: String, reason: String },
}

impl LedgerClientError {
    /// The ledger's reason code (e.g. `BAD_SEQUENCE`), for API errors.
    pub fn reason(&self) -> Option<&str> {
        match self {
            LedgerClientError::Api { reason, .. } => Some(reason),
            _ => None,
        }
    }
    /// Whether retrying the same request may succeed (transport trouble, busy, unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            LedgerClientError::Unreachable { .. } => true,
            LedgerClientError::Api { status, .. } => *status == 429 || *status >= 500,
            LedgerClientError::Decode { .. } => false,
        }
    }
}

/// A ledger endpoint.
#[derive(Clone, Debug)]
pub struct LedgerClient {
    base: String,
    http: reqwest::Client,
}

impl LedgerClient {
    /// `base` like `http://127.0.0.1:9100`.
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .expect("a plain HTTP client builds");
        Self {
            base: base.into().trim_end_matches('/').to_string(),
            http,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn decode<T: DeserializeOwned>(
        url: String,
        resp: reqwest::Response,
    ) -> Result<T, LedgerClientError> {
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| LedgerClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        if status.is_success() {
            let env: Envelope<T> =
                serde_json::from_slice(&bytes).map_err(|e| LedgerClientError::Decode {
                    url,
                    reason: e.to_string(),
                })?;
            return Ok(env.success.data);
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(LedgerClientError::Api {
                status: status.as_u16(),
                reason: body.reason().unwrap_or("UNKNOWN").to_string(),
                message: body.error.message,
            }),
            Err(_) => Err(LedgerClientError::Api {
                status: status.as_u16(),
                reason: "UNKNOWN".into(),
                message: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            }),
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<T, LedgerClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|source| LedgerClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        Self::decode(url, resp).await
    }

    /// Submit a signed transaction; returns once it is durable.
    pub async fn submit(
        &self,
        tx: &SignedTransaction,
    ) -> Result<SubmitResponse, LedgerClientError> {
        let url = format!("{}/v1/transactions", self.base);
        let resp = self
            .http
            .post(&url)
            .timeout(REQUEST_TIMEOUT)
            .json(tx)
            .send()
            .await
            .map_err(|source| LedgerClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        Self::decode(url, resp).await
    }

    pub async fn system(&self) -> Result<SystemInfo, LedgerClientError> {
        self.get("/v1/system", REQUEST_TIMEOUT).await
    }

    pub async fn blob_status(
        &self,
        blob_id: &BlobId,
    ) -> Result<BlobStatusResponse, LedgerClientError> {
        self.get(&format!("/v1/blobs/{blob_id}"), REQUEST_TIMEOUT)
            .await
    }

    /// The certificate of the blob's first certification, or `None` if it was never certified.
    pub async fn blob_certificate(
        &self,
        blob_id: &BlobId,
    ) -> Result<Option<floe_ledger::api_types::CertificateRecord>, LedgerClientError> {
        match self
            .get(&format!("/v1/blobs/{blob_id}/certificate"), REQUEST_TIMEOUT)
            .await
        {
            Err(LedgerClientError::Api { status: 404, .. }) => Ok(None),
            other => other.map(Some),
        }
    }

    /// The object, or `None` if the ledger has no such object.
    pub async fn object(&self, id: &ObjectId) -> Result<Option<ObjectResponse>, LedgerClientError> {
        match self
            .get(&format!("/v1/objects/{id}"), REQUEST_TIMEOUT)
            .await
        {
            Err(LedgerClientError::Api { status: 404, .. }) => Ok(None),
            other => other.map(Some),
        }
    }

    pub async fn account(&self, address: &Address) -> Result<AccountResponse, LedgerClientError> {
        self.get(&format!("/v1/accounts/{address}"), REQUEST_TIMEOUT)
            .await
    }

    /// Durable events from `cursor` (at most `limit`), waiting up to `wait` for the first.
    pub async fn events(
        &self,
        cursor: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<EventsPage, LedgerClientError> {
        let path = format!(
            "/v1/events?cursor={cursor}&limit={limit}&waitMs={}",
            wait.as_millis()
        );
        self.get(&path, wait + LONG_POLL_MARGIN).await
    }

    pub async fn health(&self) -> Result<HealthInfo, LedgerClientError> {
        self.get("/v1/health", REQUEST_TIMEOUT).await
    }
}

/// Submits transactions for one account, in order.
pub struct AccountSession {
    key: AccountKey,
    client: LedgerClient,
    /// The next sequence number, once known.
    next: Mutex<Option<u64>>,
}

impl AccountSession {
    pub fn new(key: AccountKey, client: LedgerClient) -> Self {
        Self {
            key,
            client,
            next: Mutex::new(None),
        }
    }

    pub fn address(&self) -> Address {
        self.key.address()
    }

    pub fn key(&self) -> &AccountKey {
        &self.key
    }

    pub fn client(&self) -> &LedgerClient {
        &self.client
    }

    /// Sign and submit `kind`. Transactions of one session are serialised. On a sequence
    /// mismatch (another writer used the account, or an earlier submission's outcome was lost)
    /// the sequence is refetched and the transaction re-signed once.
    pub async fn submit(&self, kind: TxKind) -> Result<SubmitResponse, LedgerClientError> {
        let mut next = self.next.lock().await;
        for attempt in 0..2 {
            let seq = match *next {
                Some(s) => s,
                None => {
                    self.client
                        .account(&self.key.address())
                        .await?
                        .next_sequence
                }
            };
            let tx = self.key.sign(seq, kind.clone());
            match self.client.submit(&tx).await {
                Ok(r) => {
                    *next = Some(seq + 1);
                    return Ok(r);
                }
                Err(e) if e.reason() == Some("BAD_SEQUENCE") && attempt == 0 => *next = None,
                Err(e) => {
                    // The outcome of a transport failure is unknown: refetch next time.
                    if matches!(e, LedgerClientError::Unreachable { .. }) {
                        *next = None;
                    }
                    return Err(e);
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }
}
