//! A typed client of the ledger's HTTP API, used by storage nodes and clients.
//!
//! Every call is bounded in time. [`AccountSession`] submits transactions for one account,
//! tracking its sequence number and resynchronising it when the ledger says it is wrong.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// With several ledger URLs (replicas), the time one attempt may take before the next replica
/// is asked, and the time allowed to connect.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_secs(2);
pub const FAILOVER_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Request header: the client has seen this many log entries applied (read-your-writes).
pub const MIN_SEQ_HEADER: &str = "x-floe-min-seq";
/// Response header: log entries the answering replica had applied.
pub const SEQ_HEADER: &str = "x-floe-seq";

/// Idle connections kept per replica. A burst of requests (a daemon serving hundreds of reads
/// asks the ledger for each blob's status) opens one HTTP/1.1 connection per request in flight;
/// past this many, a connection is closed when its request ends instead of staying idle with
/// its task and buffers (reqwest keeps any number by default).
pub const MAX_IDLE_CONNECTIONS: usize = 16;

/// A ledger endpoint, or a set of replicas of one ledger.
///
/// With several URLs every call goes to the replica that answered last; transport failures,
/// timeouts ([`FAILOVER_TIMEOUT`]) and 502/503/504 move it to the next replica (two rounds at
/// most). The client remembers the highest log position it has seen and asks every replica to
/// answer from at least that position, so it never sees an older state than one it has seen.
/// Clones share that position and the current replica.
#[derive(Clone, Debug)]
pub struct LedgerClient {
    bases: Arc<Vec<String>>,
    current: Arc<AtomicUsize>,
    seen: Arc<AtomicU64>,
    http: reqwest::Client,
}

impl LedgerClient {
    /// `base` like `http://127.0.0.1:9100`.
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_urls(vec![base.into()])
    }

    /// A client of the replicas at `urls` (at least one; an empty list is treated as
    /// `http://127.0.0.1:9100`).
    pub fn with_urls(urls: Vec<String>) -> Self {
        let mut bases: Vec<String> = urls
            .into_iter()
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if bases.is_empty() {
            bases.push("http://127.0.0.1:9100".into());
        }
        let connect = if bases.len() > 1 {
            FAILOVER_CONNECT_TIMEOUT
        } else {
            CONNECT_TIMEOUT
        };
        let http = floe_tls::http_client(
            reqwest::Client::builder()
                .connect_timeout(connect)
                .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS),
        )
        .expect("a plain HTTP client builds");
        Self {
            bases: Arc::new(bases),
            current: Arc::new(AtomicUsize::new(0)),
            seen: Arc::new(AtomicU64::new(0)),
            http,
        }
    }

    /// The replica currently used.
    pub fn base_url(&self) -> &str {
        &self.bases[self.current.load(Ordering::Relaxed) % self.bases.len()]
    }

    /// All ledger URLs.
    pub fn urls(&self) -> &[String] {
        &self.bases
    }

    /// The highest log position this client has seen.
    pub fn seen_seq(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Send a request built by `build` for a base URL, failing over between replicas.
    async fn send<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
        long_poll: bool,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T, LedgerClientError> {
        let n = self.bases.len();
        let attempts = if n > 1 { 2 * n } else { 1 };
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for attempt in 0..attempts {
            let idx = (start + attempt) % n;
            let url = format!("{}{path}", self.bases[idx]);
            // A plain request gets FAILOVER_TIMEOUT per replica; a long poll (timeout = wait
            // + LONG_POLL_MARGIN) gets its wait + FAILOVER_TIMEOUT.
            let per_attempt = match (n, long_poll) {
                (1, _) => timeout,
                (_, false) => FAILOVER_TIMEOUT,
                (_, true) => timeout.saturating_sub(LONG_POLL_MARGIN) + FAILOVER_TIMEOUT,
            };
            let mut request = build(&self.http, &url).timeout(per_attempt);
            let seen = self.seen.load(Ordering::Relaxed);
            if n > 1 && seen > 0 {
                request = request.header(MIN_SEQ_HEADER, seen);
            }
            let result = match request.send().await {
                Ok(resp) => {
                    if let Some(v) = resp
                        .headers()
                        .get(SEQ_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                    {
                        self.seen.fetch_max(v, Ordering::Relaxed);
                    }
                    Self::decode(url, resp).await
                }
                Err(source) => Err(LedgerClientError::Unreachable { url, source }),
            };
            let fail_over = n > 1
                && match &result {
                    Err(LedgerClientError::Unreachable { .. }) => true,
                    Err(LedgerClientError::Api { status, .. }) => {
                        matches!(status, 502..=504)
                    }
                    _ => false,
                };
            if !fail_over {
                if result.is_ok() {
                    self.current.store(idx, Ordering::Relaxed);
                }
                return result;
            }
            if let Err(e) = &result {
                tracing::debug!(error = %e, "ledger replica failed; trying the next");
            }
            self.current.store((idx + 1) % n, Ordering::Relaxed);
            last = Some(result);
        }
        last.expect("at least one attempt")
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
        self.send(path, timeout, false, |http, url| http.get(url))
            .await
    }

    /// Submit a signed transaction; returns once it is durable.
    pub async fn submit(
        &self,
        tx: &SignedTransaction,
    ) -> Result<SubmitResponse, LedgerClientError> {
        let sent = self
            .send("/v1/transactions", REQUEST_TIMEOUT, false, |http, url| {
                http.post(url).json(tx)
            })
            .await;
        let resp: SubmitResponse = match sent {
            Err(e) if e.reason() == Some("BAD_SEQUENCE") && self.bases.len() > 1 => {
                self.ask_each_replica(tx).await.ok_or(e)?
            }
            sent => sent?,
        };
        self.seen.fetch_max(resp.entry_index + 1, Ordering::Relaxed);
        Ok(resp)
    }

    /// `tx` sent once to each replica; the first answer that accepts it. Every replica answers
    /// a retried transaction with its first outcome while it is among the recent ones (the
    /// last 65,536 log entries, carried by snapshots), except one that started from a snapshot
    /// written before snapshots carried them (format 11), for one such window: that replica
    /// only sees a used sequence number, and another may remember. One that has not applied
    /// that position yet appends the transaction again, which is harmless: the duplicate is
    /// answered with the first outcome.
    async fn ask_each_replica(&self, tx: &SignedTransaction) -> Option<SubmitResponse> {
        for (idx, base) in self.bases.iter().enumerate() {
            let url = format!("{base}/v1/transactions");
            let request = self.http.post(&url).json(tx).timeout(FAILOVER_TIMEOUT);
            let Ok(resp) = request.send().await else {
                continue;
            };
            if let Ok(r) = Self::decode::<SubmitResponse>(url, resp).await {
                self.current.store(idx, Ordering::Relaxed);
                return Some(r);
            }
        }
        None
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

    /// The storage-challenge tallies of the epochs the ledger keeps.
    pub async fn challenge_summary(
        &self,
    ) -> Result<floe_ledger::challenge::ChallengeSummary, LedgerClientError> {
        self.get("/v1/challenges", REQUEST_TIMEOUT).await
    }

    /// One epoch's storage challenges, or `None` if none are recorded for it.
    pub async fn challenges(
        &self,
        epoch: u32,
    ) -> Result<Option<floe_ledger::challenge::EpochChallenges>, LedgerClientError> {
        match self
            .get(&format!("/v1/challenges/{epoch}"), REQUEST_TIMEOUT)
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
        self.send(&path, wait + LONG_POLL_MARGIN, true, |http, url| {
            http.get(url)
        })
        .await
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
