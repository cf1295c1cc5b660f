//! Why a dashboard page cannot be shown; each answers with its status and an HTML page that
//! gives the reason (never a panic, never a bare 500).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::html::{Nav, esc, page};

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(
        "{0:?} is neither a blob ID (43 characters of base64url) nor an object ID (0x and up to 64 hex digits)"
    )]
    BadId(String),
    #[error("there is no object {0} on the ledger")]
    NoSuchObject(String),
    #[error("object {0} is not a blob object (it is a storage resource or a node)")]
    NotABlob(String),
    #[error("the ledger did not answer: {0}")]
    Ledger(String),
    #[error("the blob is {size} bytes; this dashboard downloads blobs of at most {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("the blob cannot be read: {0}")]
    Read(String),
    #[error("the dashboard is busy with other {0}; try again in a moment")]
    Busy(&'static str),
}

impl DashboardError {
    pub fn status(&self) -> StatusCode {
        match self {
            DashboardError::BadId(_) => StatusCode::BAD_REQUEST,
            DashboardError::NoSuchObject(_) => StatusCode::NOT_FOUND,
            DashboardError::NotABlob(_) => StatusCode::UNPROCESSABLE_ENTITY,
            DashboardError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            DashboardError::Ledger(_) | DashboardError::Read(_) => StatusCode::BAD_GATEWAY,
            DashboardError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The error as a page under `prefix`.
    pub fn page(&self, prefix: &str) -> Response {
        let main = format!(
            "<h1>{title}</h1><p class=\"alert\" role=\"alert\" id=\"error-reason\">{reason}</p>\
             <p><a href=\"{p}/blob\">Search again</a> or go back to the <a href=\"{p}\">network</a>.</p>",
            title = self.status().canonical_reason().unwrap_or("Error"),
            reason = esc(&self.to_string()),
            p = esc(prefix),
        );
        crate::html_response(self.status(), page(prefix, "Error", Nav::None, &main))
    }
}

/// An error together with the prefix its page links to.
pub struct ErrorPage(pub String, pub DashboardError);

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        self.1.page(&self.0)
    }
}
