//! Bounded request bodies: every frame of a body must arrive within an idle timeout (408 when
//! it does not), a body declared larger than the limit is refused before it is read (413), and
//! a refused body is read and discarded in the background, within bounds, so that a client
//! still sending it reads the answer instead of a reset connection.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tower_http::timeout::{TimeoutBody, TimeoutError};

use crate::{ApiError, Domain};

/// Bounds on request bodies, for [`guard_bodies`].
#[derive(Clone, Copy, Debug)]
pub struct BodyGuard {
    /// Bodies declared (`Content-Length`) larger than this are refused at once with 413.
    /// `None`: the routes check sizes themselves.
    pub max_declared: Option<u64>,
    /// Longest wait for the next piece of a body.
    pub idle_timeout: Duration,
    /// At most this many bytes of a refused body are read and discarded...
    pub drain_budget: u64,
    /// ...for at most this long.
    pub drain_timeout: Duration,
}

impl BodyGuard {
    /// `max_declared` and `idle_timeout`, with a drain budget of four times the limit (at least
    /// 16 MiB) and 30 s.
    pub fn new(max_declared: Option<u64>, idle_timeout: Duration) -> Self {
        Self {
            max_declared,
            idle_timeout,
            drain_budget: max_declared.unwrap_or(0).saturating_mul(4).max(16 << 20),
            drain_timeout: Duration::from_secs(30),
        }
    }

    /// Read and discard `body` in the background, within this guard's bounds. The connection
    /// keeps reading while the body is alive, so the client's sending is not cut off.
    pub fn discard(&self, body: Body) {
        let (budget, timeout) = (self.drain_budget, self.drain_timeout);
        tokio::spawn(async move {
            let mut body = body;
            let discard = async {
                let mut seen = 0u64;
                while let Some(Ok(frame)) = body.frame().await {
                    if let Ok(data) = frame.into_data() {
                        seen += data.len() as u64;
                        if seen > budget {
                            break;
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(timeout, discard).await;
        });
    }
}

/// The `Content-Length` of a request, if it declares one.
pub fn declared_length(req: &Request) -> Option<u64> {
    declared_length_in(req.headers())
}

/// The `Content-Length` in `headers`, if there is one that parses.
pub fn declared_length_in(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

/// 413: the body is larger than the service takes (`message` says by how much, when known).
pub fn body_too_large<D: Domain>(message: impl Into<String>) -> ApiError<D> {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "SIZE_EXCEEDED",
        "BODY_TOO_LARGE",
        message,
    )
}

/// Middleware (`axum::middleware::from_fn_with_state(guard, guard_bodies::<D>)`): 413 for a
/// body declared over the limit (discarded in the background), and the idle timeout on every
/// other body.
pub async fn guard_bodies<D: Domain>(
    State(guard): State<BodyGuard>,
    req: Request,
    next: Next,
) -> Response {
    if let (Some(max), Some(declared)) = (guard.max_declared, declared_length(&req))
        && declared > max
    {
        guard.discard(req.into_body());
        return body_too_large::<D>(format!(
            "the body ({declared} bytes) exceeds this service's limit of {max} bytes"
        ))
        .into_response();
    }
    let idle = guard.idle_timeout;
    next.run(req.map(|b| Body::new(TimeoutBody::new(idle, b))))
        .await
}

/// Why a request body could not be read in full.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadBodyError {
    /// More than the limit arrived (the rest is left in the body).
    #[error("the body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The body stopped arriving within the idle timeout ([`guard_bodies`]).
    #[error("the request body stopped arriving before it was complete")]
    Timeout,
    /// The connection failed or the body was malformed.
    #[error("reading the body failed: {0}")]
    Invalid(String),
}

impl ReadBodyError {
    /// The answer to give: 413 `BODY_TOO_LARGE`, 408 `BODY_TIMEOUT` or 400 `INVALID_BODY`.
    pub fn into_api<D: Domain>(self) -> ApiError<D> {
        match self {
            Self::TooLarge { limit } => body_too_large(format!(
                "the body exceeds this service's limit of {limit} bytes"
            )),
            Self::Timeout => body_timeout(),
            e @ Self::Invalid(_) => ApiError::bad_request("INVALID_BODY", e.to_string()),
        }
    }
}

/// Append `body`'s data to `out`, refusing more than `limit` bytes in all. The body stays the
/// caller's: after [`ReadBodyError::TooLarge`] (`out` then holds the frames before the one that
/// crossed the limit) it may drain the rest, or drop it.
pub async fn read_into(
    body: &mut Body,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), ReadBodyError> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            if is_body_timeout(&e) {
                ReadBodyError::Timeout
            } else {
                ReadBodyError::Invalid(e.to_string())
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if out.len().saturating_add(data.len()) > limit {
            return Err(ReadBodyError::TooLarge { limit });
        }
        out.extend_from_slice(&data);
    }
    Ok(())
}

/// Whether `e` (or an error it wraps) is a body that stopped arriving within the idle timeout.
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    for _ in 0..16 {
        let Some(e) = current else { return false };
        if e.is::<TimeoutError>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// 408: the body stopped arriving.
pub fn body_timeout<D: Domain>() -> ApiError<D> {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "DEADLINE_EXCEEDED",
        "BODY_TIMEOUT",
        "the request body stopped arriving before it was complete",
    )
}

#[cfg(test)]
mod tests {
    use crate::TestDomain as Test;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use axum::body::Bytes;
    use http_body::Frame;

    use super::*;

    /// A body that yields `chunks`, then either ends, fails, or never sends another frame.
    struct Chunks {
        chunks: VecDeque<&'static [u8]>,
        then: Then,
    }

    #[derive(Clone, Copy)]
    enum Then {
        End,
        Fail,
        Stall,
    }

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            if let Some(c) = self.chunks.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(c)))));
            }
            match self.then {
                Then::End => Poll::Ready(None),
                Then::Fail => Poll::Ready(Some(Err(std::io::Error::other("connection reset")))),
                Then::Stall => Poll::Pending,
            }
        }
    }

    fn body(chunks: &[&'static [u8]], then: Then) -> Body {
        Body::new(Chunks {
            chunks: chunks.iter().copied().collect(),
            then,
        })
    }

    #[tokio::test]
    async fn a_body_is_appended_up_to_its_limit_and_refused_past_it() {
        let mut out = b"head:".to_vec();
        read_into(&mut body(&[b"abc", b"de"], Then::End), &mut out, 10)
            .await
            .unwrap();
        assert_eq!(
            out, b"head:abcde",
            "appended after what was there, at the limit exactly"
        );

        let mut out = Vec::new();
        let mut b = body(&[b"abcd", b"efgh", b"ij", b"kl"], Then::End);
        let err = read_into(&mut b, &mut out, 9).await.unwrap_err();
        assert_eq!(err, ReadBodyError::TooLarge { limit: 9 });
        assert_eq!(out, b"abcdefgh", "the frame crossing the limit is not kept");
        // The frames after it stay in the body, for the caller to drain.
        let rest = b.collect().await.unwrap().to_bytes();
        assert_eq!(&rest[..], b"kl");
        assert_eq!(err.into_api::<Test>().http, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_failing_or_stalled_body_is_told_apart() {
        let err = read_into(&mut body(&[b"ab"], Then::Fail), &mut Vec::new(), 100)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ReadBodyError::Invalid(m) if m.contains("connection reset")),
            "{err:?}"
        );
        assert_eq!(err.into_api::<Test>().http, StatusCode::BAD_REQUEST);

        // Behind the idle timeout of `guard_bodies`, a body that stops arriving is a timeout.
        let mut stalled = Body::new(TimeoutBody::new(
            Duration::from_millis(50),
            body(&[b"ab"], Then::Stall),
        ));
        let mut out = Vec::new();
        let err = read_into(&mut stalled, &mut out, 100).await.unwrap_err();
        assert_eq!(err, ReadBodyError::Timeout);
        assert_eq!(out, b"ab");
        assert_eq!(err.into_api::<Test>().http, StatusCode::REQUEST_TIMEOUT);
    }
}
