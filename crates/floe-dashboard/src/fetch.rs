//! Bounded HTTP reads of the nodes' and the daemon's JSON and metrics: every request has a
//! deadline and every body a size cap, so a slow or hostile server costs little.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

/// Why a read failed, in words for the page.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    #[error("not JSON: {0}")]
    NotJson(String),
}

/// GET `url` and return its body, within `timeout` and at most `max_bytes`.
pub async fn get_bytes(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    let work = async {
        let response = http
            .get(url)
            .send()
            .await
            .map_err(|e| FetchError::Unreachable(short_error(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > max_bytes as u64)
        {
            return Err(FetchError::TooLarge(max_bytes));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| FetchError::Unreachable(short_error(&e)))?;
            if body.len() + chunk.len() > max_bytes {
                return Err(FetchError::TooLarge(max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| FetchError::Timeout(timeout))?
}

/// GET `url` as JSON; a Walrus success envelope (`{"success": {"data": …}}`) is unwrapped.
pub async fn get_json(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Value, FetchError> {
    let body = get_bytes(http, url, timeout, max_bytes).await?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| FetchError::NotJson(e.to_string()))?;
    Ok(match value.pointer("/success/data") {
        Some(data) => data.clone(),
        None => value,
    })
}

/// GET `url` as text (Prometheus metrics).
pub async fn get_text(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<String, FetchError> {
    let body = get_bytes(http, url, timeout, max_bytes).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// reqwest's error without the URL (the page shows the URL already).
fn short_error(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connection refused or failed".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        e.without_url_ref().to_string()
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let text = self.to_string();
        match self.url() {
            Some(u) => text.replace(u.as_str(), "…"),
            None => text,
        }
    }
}
