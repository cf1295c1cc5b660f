//! Walrus-style JSON envelopes shared by Floe's HTTP services:
//! `{"success":{"code","data"}}` and
//! `{"error":{"status","code","message","details":[{"@type":"ErrorInfo","reason","domain",
//! "metadata"}]}}`.
//!
//! Walrus's clients match on the error domain and require `metadata` (a string map, possibly
//! empty) in every `ErrorInfo`, so both are always present.
#![forbid(unsafe_code)]

pub mod body;
pub mod pooled;
pub mod serve;

pub use serve::{ServeLimits, serve, serve_with};

use std::collections::BTreeMap;
use std::marker::PhantomData;

use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// The service an error comes from (its `domain` in error bodies).
pub trait Domain: 'static {
    const NAME: &'static str;
}

/// An error answer: HTTP status, Google-RPC style status name, machine-readable reason.
pub struct ApiError<D> {
    pub http: StatusCode,
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
    /// `metadata` of the `ErrorInfo` detail: machine-readable context of the error.
    pub metadata: BTreeMap<String, String>,
    domain: PhantomData<D>,
}

impl<D> std::fmt::Debug for ApiError<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}: {}",
            self.http, self.status, self.reason, self.message
        )
    }
}

impl<D: Domain> ApiError<D> {
    pub fn new(
        http: StatusCode,
        status: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            http,
            status,
            reason,
            message: message.into(),
            metadata: BTreeMap::new(),
            domain: PhantomData,
        }
    }

    /// Add an entry to the detail's `metadata`.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    pub fn bad_request(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", reason, message)
    }

    pub fn not_found(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", reason, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "INTERNAL",
            message,
        )
    }

    /// A body that could not be read: too large (413 `BODY_TOO_LARGE`), stopped arriving (408
    /// `BODY_TIMEOUT`, see [`body`]) or otherwise bad.
    pub fn from_body_rejection(e: BytesRejection) -> Self {
        if body::is_body_timeout(&e) {
            body::body_timeout()
        } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            body::body_too_large("request body exceeds this service's limit")
        } else {
            Self::bad_request("INVALID_BODY", e.body_text())
        }
    }
}

impl<D: Domain> IntoResponse for ApiError<D> {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "status": self.status,
            "code": self.http.as_u16(),
            "message": self.message,
            "details": [{
                "@type": "ErrorInfo",
                "reason": self.reason,
                "domain": D::NAME,
                "metadata": self.metadata,
            }],
        }});
        (self.http, axum::Json(body)).into_response()
    }
}

/// A success envelope with an explicit HTTP status.
pub fn success<T: Serialize>(http: StatusCode, data: T) -> Response {
    (
        http,
        axum::Json(json!({"success": {"code": http.as_u16(), "data": data}})),
    )
        .into_response()
}

/// The error domain of this crate's unit tests.
#[cfg(test)]
pub(crate) struct TestDomain;
#[cfg(test)]
impl Domain for TestDomain {
    const NAME: &'static str = "test.floe";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestDomain as Test;

    #[tokio::test]
    async fn envelopes() {
        let r = ApiError::<Test>::bad_request("WHY", "because")
            .with_metadata("blob", "x")
            .into_response();
        assert_eq!(r.status(), 400);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["details"][0]["reason"], "WHY");
        assert_eq!(v["error"]["details"][0]["domain"], "test.floe");
        assert_eq!(v["error"]["details"][0]["metadata"], json!({"blob": "x"}));
        assert_eq!(v["error"]["code"], 400);
        let r = ApiError::<Test>::internal("no").into_response();
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["error"]["details"][0]["metadata"],
            json!({}),
            "always present"
        );
        let r = success(StatusCode::CREATED, "ok");
        assert_eq!(r.status(), 201);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        assert_eq!(body.as_ref(), br#"{"success":{"code":201,"data":"ok"}}"#);
    }
}
