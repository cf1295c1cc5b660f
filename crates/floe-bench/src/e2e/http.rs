//! The benchmark's side of the daemon's HTTP API: `PUT /v1/blobs?epochs=N` and
//! `GET /v1/blobs/{id}`, every request bounded by the client's timeout, every GET's bytes
//! compared with what was PUT.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_client::BlobStoreResult;
use floe_core::BlobId;
use tokio::sync::{Barrier, Semaphore};
use tokio::task::JoinSet;

use super::E2eError;
use super::report::{Attempt, ReadersRow, ms, percentile};

/// Lifetime of every blob stored, in epochs (the testbed's epochs last an hour).
const EPOCHS: u32 = 2;
/// How much of an error body a report keeps.
const ERROR_CHARS: usize = 200;
/// Characters kept of an error body's JSON `message`.
const MESSAGE_CHARS: usize = 2_000;

/// An HTTP client of one daemon.
#[derive(Clone)]
pub struct Daemon {
    http: reqwest::Client,
    base: String,
}

/// How one request ended.
enum Answer {
    /// A 2xx with its body.
    Ok(Vec<u8>),
    /// Another status, with the start of its body.
    Status(u16, String),
    /// No answer within the timeout.
    TimedOut,
    /// No HTTP answer at all (connection refused or reset, …).
    Transport(String),
}

impl Answer {
    fn describe(&self) -> String {
        match self {
            Answer::Ok(_) => "ok".into(),
            Answer::Status(code, body) => format!("HTTP {code}: {body}"),
            Answer::TimedOut => "no answer within the timeout".into(),
            Answer::Transport(e) => e.clone(),
        }
    }

    /// How failures are counted: the status code, `timeout` or `transport`.
    fn failure_key(&self) -> String {
        match self {
            Answer::Ok(_) => "ok".into(),
            Answer::Status(code, _) => code.to_string(),
            Answer::TimedOut => "timeout".into(),
            Answer::Transport(_) => "transport".into(),
        }
    }
}

impl Daemon {
    pub fn new(base: &str, timeout: Duration) -> Result<Daemon, E2eError> {
        let http = floe_tls::http_client(
            reqwest::Client::builder()
                .no_proxy()
                .timeout(timeout)
                .connect_timeout(Duration::from_secs(5).min(timeout)),
        )
        .map_err(|e| E2eError::Http(e.to_string()))?;
        Ok(Daemon {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (Duration, Answer) {
        let started = Instant::now();
        let answer = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(body) if status.is_success() => Answer::Ok(body.to_vec()),
                    Ok(body) => Answer::Status(status.as_u16(), excerpt(&body)),
                    Err(e) if e.is_timeout() => Answer::TimedOut,
                    Err(e) => Answer::Transport(floe_node_client::with_causes(&e)),
                }
            }
            Err(e) if e.is_timeout() => Answer::TimedOut,
            Err(e) => Answer::Transport(floe_node_client::with_causes(&e)),
        };
        (started.elapsed(), answer)
    }

    async fn put_answer(&self, data: Vec<u8>) -> (Duration, Answer) {
        let url = format!("{}/v1/blobs?epochs={EPOCHS}", self.base);
        self.send(self.http.put(url).body(data)).await
    }

    async fn get_answer(&self, id: &BlobId) -> (Duration, Answer) {
        let url = format!("{}/v1/blobs/{id}", self.base);
        self.send(self.http.get(url)).await
    }

    /// Store `data`; anything but a newly created or already certified blob is an error.
    pub async fn put(&self, data: &[u8]) -> Result<(Duration, BlobId), E2eError> {
        let (took, answer) = self.put_answer(data.to_vec()).await;
        let Answer::Ok(body) = answer else {
            return Err(E2eError::Request {
                what: format!("PUT of {} bytes", data.len()),
                detail: answer.describe(),
            });
        };
        Ok((took, stored_id(&body, data.len())?))
    }

    /// Read `id` and check that the bytes are `want`.
    pub async fn get(&self, id: &BlobId, want: &[u8]) -> Result<Duration, E2eError> {
        let (took, answer) = self.get_answer(id).await;
        match answer {
            Answer::Ok(body) => {
                check_bytes(id, &body, want)?;
                Ok(took)
            }
            other => Err(E2eError::Request {
                what: format!("GET {id}"),
                detail: other.describe(),
            }),
        }
    }

    /// A PUT whose failure is a figure (the silent-node scenarios), not an error.
    pub async fn try_put(&self, data: Vec<u8>) -> Attempt {
        let len = data.len();
        let (took, answer) = self.put_answer(data).await;
        // A 200 whose result says the blob was not stored is an answer, but not a success.
        let answer = match answer {
            Answer::Ok(body) => match stored_id(&body, len) {
                Ok(_) => Answer::Ok(body),
                Err(e) => Answer::Status(200, excerpt(e.to_string().as_bytes())),
            },
            other => other,
        };
        attempt(took, &answer)
    }

    /// A GET whose failure is a figure; wrong bytes are still an error.
    pub async fn try_get(&self, id: &BlobId, want: &[u8]) -> Result<Attempt, E2eError> {
        let (took, answer) = self.get_answer(id).await;
        if let Answer::Ok(body) = &answer {
            check_bytes(id, body, want)?;
        }
        Ok(attempt(took, &answer))
    }

    /// Store `blobs` with at most `concurrency` PUTs at once; returns their IDs in order and
    /// the wall time.
    pub async fn put_many(
        &self,
        blobs: Arc<Vec<Vec<u8>>>,
        concurrency: usize,
    ) -> Result<(Vec<BlobId>, Duration), E2eError> {
        let started = Instant::now();
        let sem = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut set = JoinSet::new();
        for i in 0..blobs.len() {
            let (daemon, blobs, sem) = (self.clone(), blobs.clone(), sem.clone());
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                (i, daemon.put(&blobs[i]).await)
            });
        }
        let mut ids = vec![None; blobs.len()];
        while let Some(joined) = set.join_next().await {
            let (i, result) = joined.map_err(|e| E2eError::Task(e.to_string()))?;
            ids[i] = Some(result?.1);
        }
        let ids = ids
            .into_iter()
            .map(|id| id.expect("every PUT answered"))
            .collect();
        Ok((ids, started.elapsed()))
    }

    /// GET `targets[i]` (expecting `want[i]`) for every i, all at once: every request waits at
    /// a barrier so they start together. Wrong bytes are an error; failures are counted.
    pub async fn readers(
        &self,
        targets: Vec<BlobId>,
        want: Arc<Vec<Vec<u8>>>,
        distinct: bool,
    ) -> Result<ReadersRow, E2eError> {
        let n = targets.len();
        let barrier = Arc::new(Barrier::new(n));
        let mut set = JoinSet::new();
        for (i, id) in targets.into_iter().enumerate() {
            let (daemon, barrier) = (self.clone(), barrier.clone());
            set.spawn(async move {
                barrier.wait().await;
                let started = Instant::now();
                let (took, answer) = daemon.get_answer(&id).await;
                (i, id, started, took, answer)
            });
        }
        let mut latencies = Vec::with_capacity(n);
        let mut failures: BTreeMap<String, u64> = BTreeMap::new();
        let mut first_failure = None;
        let (mut first_start, mut last_end) = (None::<Instant>, None::<Instant>);
        while let Some(joined) = set.join_next().await {
            let (i, id, started, took, answer) =
                joined.map_err(|e| E2eError::Task(e.to_string()))?;
            first_start = Some(first_start.map_or(started, |s| s.min(started)));
            let end = started + took;
            last_end = Some(last_end.map_or(end, |e| e.max(end)));
            let expected = &want[if distinct { i } else { 0 }];
            match &answer {
                Answer::Ok(body) => {
                    check_bytes(&id, body, expected)?;
                    latencies.push(ms(took));
                }
                other => {
                    *failures.entry(other.failure_key()).or_default() += 1;
                    first_failure.get_or_insert_with(|| other.describe());
                }
            }
        }
        latencies.sort_by(f64::total_cmp);
        let wall = match (first_start, last_end) {
            (Some(s), Some(e)) => e.duration_since(s),
            _ => Duration::ZERO,
        };
        Ok(ReadersRow {
            requests: n,
            distinct_blobs: if distinct { n } else { 1 },
            blob_size: want.first().map_or(0, |b| b.len() as u64),
            ok: latencies.len(),
            failures,
            first_failure,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            max_ms: latencies.last().copied(),
            wall_ms: ms(wall),
            store_ms: None,
        })
    }
}

fn attempt(took: Duration, answer: &Answer) -> Attempt {
    let (status, error) = match answer {
        Answer::Ok(_) => (None, None),
        Answer::Status(code, body) => (Some(*code), Some(body.clone())),
        other => (None, Some(excerpt(other.describe().as_bytes()))),
    };
    Attempt {
        ok: matches!(answer, Answer::Ok(_)),
        definite: matches!(answer, Answer::Ok(_) | Answer::Status(..)),
        status,
        ms: ms(took),
        error,
    }
}

/// The blob ID of a `BlobStoreResult` body that says the blob is stored.
fn stored_id(body: &[u8], len: usize) -> Result<BlobId, E2eError> {
    let bad = |detail: String| E2eError::Request {
        what: format!("PUT of {len} bytes"),
        detail,
    };
    let result: BlobStoreResult = serde_json::from_slice(body)
        .map_err(|e| bad(format!("not a BlobStoreResult ({e}): {}", excerpt(body))))?;
    match result {
        BlobStoreResult::NewlyCreated { blob_object, .. } => Ok(blob_object.blob_id),
        BlobStoreResult::AlreadyCertified { blob_id, .. } => Ok(blob_id),
        other => Err(bad(format!("the blob was not stored: {other:?}"))),
    }
}

fn check_bytes(id: &BlobId, got: &[u8], want: &[u8]) -> Result<(), E2eError> {
    if got != want {
        return Err(E2eError::Mismatch {
            blob_id: id.to_string(),
            got: got.len(),
            want: want.len(),
        });
    }
    Ok(())
}

/// What an error body says: the `message` of a Walrus-style JSON error (which names every
/// node that failed, one line each) within [`MESSAGE_CHARS`], otherwise the first
/// [`ERROR_CHARS`] characters of the body as text.
fn excerpt(body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned));
    match message {
        Some(m) => m.chars().take(MESSAGE_CHARS).collect(),
        None => String::from_utf8_lossy(body)
            .chars()
            .take(ERROR_CHARS)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_excerpt_is_the_json_message_when_there_is_one() {
        let long = "node-1: refused; ".repeat(40);
        let body = serde_json::json!({"error": {"code": 504, "message": long}}).to_string();
        assert_eq!(
            excerpt(body.as_bytes()),
            long,
            "the whole message, not 200 characters"
        );
        let other = "x".repeat(500);
        assert_eq!(excerpt(other.as_bytes()).len(), ERROR_CHARS);
    }

    #[tokio::test]
    async fn a_transport_failure_says_what_happened_to_the_connection() {
        // A port nothing listens on any more: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let daemon =
            Daemon::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
        let (_, answer) = daemon.put_answer(vec![0; 16]).await;
        let Answer::Transport(text) = answer else {
            panic!("not a transport failure: {}", answer.describe());
        };
        assert!(text.starts_with("error sending request for url"), "{text}");
        assert!(text.to_lowercase().contains("connection refused"), "{text}");
    }
}
