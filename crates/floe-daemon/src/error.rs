//! Error answers in Walrus's JSON shape (domain `daemon.walrus.space`, which Walrus clients
//! match on), and the mapping of client
//! errors onto HTTP statuses and reasons.
//!
//! | condition | status | reason |
//! |---|---|---|
//! | never registered, deleted, expired (the message says which) | 404 | `BLOB_NOT_FOUND` |
//! | registered but not yet certified | 404 | `BLOB_NOT_CERTIFIED` |
//! | proven or found inconsistently encoded (never any data) | 404 | `BLOB_INVALID` |
//! | not enough slivers or metadata from the nodes | 503 | `BLOB_UNAVAILABLE` |
//! | larger than `--max-blob-size` (reads) | 403 | `BLOB_TOO_LARGE` |
//! | larger than the network's maximum (writes) | 413 | `BLOB_TOO_LARGE` |
//! | range outside the blob | 416 | `INVALID_BYTE_RANGE` (with `Content-Range: bytes */size`) |
//! | not enough confirmations to certify | 504 | `INSUFFICIENT_CONFIRMATIONS` |
//! | ledger unreachable or busy | 503 | `LEDGER_UNAVAILABLE` |
//! | ledger refused a transaction | 409 | `LEDGER_REJECTED` |

use axum::http::StatusCode;
use axum::http::header::{CONTENT_RANGE, HeaderValue};
use axum::response::{IntoResponse, Response};
use floe_client::ClientError;
use floe_ledger_client::LedgerClientError;

/// Error domain in error bodies: Walrus's daemon domain.
pub const DOMAIN: &str = "daemon.walrus.space";

/// The daemon's errors (domain `daemon.walrus.space`).
pub struct DaemonDomain;
impl floe_http::Domain for DaemonDomain {
    const NAME: &'static str = DOMAIN;
}

/// An error body with its status and reason.
pub type ApiError = floe_http::ApiError<DaemonDomain>;

/// An error answer, with the headers some statuses call for.
pub struct Failure {
    api: ApiError,
    /// For 416: the blob's size, sent as `Content-Range: bytes */size`.
    unsatisfiable_size: Option<u64>,
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.api)
    }
}

impl Failure {
    pub fn new(
        http: StatusCode,
        status: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError::new(http, status, reason, message).into()
    }

    pub fn bad_request(reason: &'static str, message: impl Into<String>) -> Self {
        ApiError::bad_request(reason, message).into()
    }

    pub fn not_found(reason: &'static str, message: impl Into<String>) -> Self {
        ApiError::not_found(reason, message).into()
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "UNAUTHORIZED",
            message,
        )
    }

    pub fn busy(what: &str) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "TOO_MANY_REQUESTS",
            format!("too many {what} requests are running or waiting; retry later"),
        )
    }

    /// 429 when the waiting room is full, 503 when a slot did not come free in time.
    pub fn refused(what: &str, why: crate::limit::Refused) -> Self {
        match why {
            crate::limit::Refused::Full => Self::busy(what),
            crate::limit::Refused::Waited(wait) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "OVERLOADED",
                format!(
                    "no {what} slot came free within {} s; the daemon is overloaded, retry later",
                    wait.as_secs()
                ),
            ),
        }
    }

    /// 416 for a range outside a blob of `size` bytes.
    pub fn unsatisfiable(message: impl Into<String>, size: u64) -> Self {
        Self {
            unsatisfiable_size: Some(size),
            ..Self::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "OUT_OF_RANGE",
                "INVALID_BYTE_RANGE",
                message,
            )
        }
    }

    /// The HTTP status of this answer.
    pub fn status(&self) -> StatusCode {
        self.api.http
    }

    /// The machine-readable reason.
    pub fn reason(&self) -> &'static str {
        self.api.reason
    }
}

impl From<ApiError> for Failure {
    fn from(api: ApiError) -> Self {
        Self {
            api,
            unsatisfiable_size: None,
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if self.api.http.is_server_error() {
            tracing::warn!(reason = self.api.reason, message = %self.api.message, "request failed");
        }
        let size = self.unsatisfiable_size;
        let mut response = self.api.into_response();
        if let Some(size) = size
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            response.headers_mut().insert(CONTENT_RANGE, v);
        }
        response
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::from(&e)
    }
}

impl From<&ClientError> for Failure {
    fn from(e: &ClientError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        if let ClientError::RangeNotSatisfiable { size, .. } = e {
            return Failure::unsatisfiable(message, *size);
        }
        if let ClientError::Quilt(q) = e {
            return quilt_failure(q, message);
        }
        let (http, status, reason) = match e {
            ClientError::BlobNotFound(_)
            | ClientError::Deleted(_)
            | ClientError::Expired { .. } => (S::NOT_FOUND, "NOT_FOUND", "BLOB_NOT_FOUND"),
            ClientError::NotCertified(_) => (S::NOT_FOUND, "NOT_FOUND", "BLOB_NOT_CERTIFIED"),
            ClientError::Invalid(_) | ClientError::Inconsistent(_) => {
                (S::NOT_FOUND, "NOT_FOUND", "BLOB_INVALID")
            }
            ClientError::NotEnoughSlivers { .. } | ClientError::NoMetadata { .. } => {
                (S::SERVICE_UNAVAILABLE, "UNAVAILABLE", "BLOB_UNAVAILABLE")
            }
            ClientError::NotEnoughConfirmations { .. } => (
                S::GATEWAY_TIMEOUT,
                "DEADLINE_EXCEEDED",
                "INSUFFICIENT_CONFIRMATIONS",
            ),
            ClientError::BlobTooLarge { .. } => {
                (S::PAYLOAD_TOO_LARGE, "SIZE_EXCEEDED", "BLOB_TOO_LARGE")
            }
            ClientError::BadLifetime(_) => (S::BAD_REQUEST, "INVALID_ARGUMENT", "INVALID_LIFETIME"),
            ClientError::NotOwned(_) => (S::NOT_FOUND, "NOT_FOUND", "NOT_OWNED"),
            ClientError::NotSharedBlob(_) => (S::NOT_FOUND, "NOT_FOUND", "NOT_SHARED_BLOB"),
            ClientError::Ledger(l) if l.is_transient() => {
                (S::SERVICE_UNAVAILABLE, "UNAVAILABLE", "LEDGER_UNAVAILABLE")
            }
            ClientError::Ledger(LedgerClientError::Api { .. }) => {
                (S::CONFLICT, "FAILED_PRECONDITION", "LEDGER_REJECTED")
            }
            ClientError::Ledger(_) | ClientError::Committee(_) => {
                (S::BAD_GATEWAY, "UNAVAILABLE", "BAD_LEDGER_ANSWER")
            }
            ClientError::RangeNotSatisfiable { .. }
            | ClientError::Quilt(_)
            | ClientError::NoWallet
            | ClientError::Encode(_)
            | ClientError::Spill { .. }
            | ClientError::Decode(_)
            | ClientError::Internal(_) => (S::INTERNAL_SERVER_ERROR, "INTERNAL", "INTERNAL"),
        };
        Failure::new(http, status, reason, message)
    }
}

/// Quilt errors: what a request got wrong is a 400 with its own reason; a missing patch 404.
fn quilt_failure(e: &floe_core::quilt::QuiltError, message: String) -> Failure {
    use floe_core::quilt::QuiltError as Q;
    let reason = match e {
        Q::PatchNotFound(_) => {
            return Failure::not_found("QUILT_PATCH_NOT_FOUND", message);
        }
        Q::Empty => "NO_FILES",
        Q::InvalidIdentifier { .. } => "INVALID_IDENTIFIER",
        Q::DuplicateIdentifier(_) => "DUPLICATE_IDENTIFIER",
        Q::TooManyPatches { .. } => "TOO_MANY_PATCHES",
        Q::TagsTooLarge { .. } | Q::PatchTooLarge { .. } | Q::QuiltTooLarge { .. } => {
            "QUILT_TOO_LARGE"
        }
        Q::PatchIdTooShort(_)
        | Q::PatchIdEncoding(_)
        | Q::UnsupportedPatchId { .. }
        | Q::BadPatchRange { .. } => "INVALID_QUILT_PATCH_ID",
        _ => "NOT_A_QUILT",
    };
    Failure::bad_request(reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_core::BlobId;

    #[test]
    fn client_errors_map_to_walrus_statuses_and_distinct_reasons() {
        let id = BlobId([1; 32]);
        let cases = [
            (ClientError::BlobNotFound(id), 404, "BLOB_NOT_FOUND"),
            (ClientError::Deleted(id), 404, "BLOB_NOT_FOUND"),
            (
                ClientError::Expired {
                    blob_id: id,
                    end_epoch: 3,
                },
                404,
                "BLOB_NOT_FOUND",
            ),
            (ClientError::NotCertified(id), 404, "BLOB_NOT_CERTIFIED"),
            (ClientError::Invalid(id), 404, "BLOB_INVALID"),
            (ClientError::Inconsistent(id), 404, "BLOB_INVALID"),
            (
                ClientError::NotEnoughSlivers {
                    blob_id: id,
                    have: 1,
                    need: 4,
                    failures: vec![],
                },
                503,
                "BLOB_UNAVAILABLE",
            ),
            (
                ClientError::NotEnoughConfirmations {
                    blob_id: id,
                    weight: 5,
                    needed: 7,
                    failures: vec![],
                },
                504,
                "INSUFFICIENT_CONFIRMATIONS",
            ),
            (
                ClientError::RangeNotSatisfiable {
                    start: 9,
                    length: 1,
                    size: 5,
                },
                416,
                "INVALID_BYTE_RANGE",
            ),
        ];
        for (e, http, reason) in cases {
            let text = e.to_string();
            let f = Failure::from(e);
            assert_eq!((f.status().as_u16(), f.reason()), (http, reason), "{text}");
        }
    }

    #[test]
    fn unsatisfiable_ranges_name_the_size() {
        let r = Failure::unsatisfiable("no", 42).into_response();
        assert_eq!(r.status(), 416);
        assert_eq!(r.headers()[CONTENT_RANGE], "bytes */42");
    }
}
