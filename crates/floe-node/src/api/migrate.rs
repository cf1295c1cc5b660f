//! `POST /v1/migrate/sync_shard`: a batch of a shard's slivers for its new owner.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::Response;
use floe_crypto::SignedMessage;

use super::{ApiError, AppState, bcs_body};
use crate::shard_sync::ShardSyncError;

impl From<ShardSyncError> for ApiError {
    fn from(e: ShardSyncError) -> Self {
        use StatusCode as S;
        let (http, status, reason) = match &e {
            ShardSyncError::BadRequest(_) => (S::BAD_REQUEST, "INVALID_ARGUMENT", "INVALID_BODY"),
            ShardSyncError::WrongEpoch { .. } => {
                (S::BAD_REQUEST, "FAILED_PRECONDITION", "WRONG_EPOCH")
            }
            ShardSyncError::NotAuthorized(_) => {
                (S::FORBIDDEN, "PERMISSION_DENIED", "NOT_SHARD_OWNER")
            }
            ShardSyncError::NotHeld(_) => (S::NOT_FOUND, "NOT_FOUND", "SHARD_NOT_HELD"),
            ShardSyncError::Storage(_)
            | ShardSyncError::PeerUnavailable { .. }
            | ShardSyncError::PeerLied { .. } => (S::INTERNAL_SERVER_ERROR, "INTERNAL", "INTERNAL"),
        };
        ApiError::new(http, status, reason, e.to_string())
    }
}

/// The body is a JSON [`SignedMessage`] over a `SyncShardRequest`; the answer is a BCS
/// [`crate::shard_sync::SyncShardResponse`].
pub async fn sync_shard(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(ApiError::from_body_rejection)?;
    let request: SignedMessage = serde_json::from_slice(&body).map_err(|e| {
        ApiError::from(ShardSyncError::BadRequest(format!(
            "not a JSON signed message: {e}"
        )))
    })?;
    let request = std::sync::Arc::new(request);
    let serve = || {
        let (node, request) = (state.node.clone(), request.clone());
        async move {
            tokio::task::spawn_blocking(move || node.serve_sync_shard(&request))
                .await
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "INTERNAL",
                        "INTERNAL",
                        e.to_string(),
                    )
                })
        }
    };
    let response = match serve().await? {
        // The requester saw the epoch change before this node's follower did: catch up with
        // the ledger once and serve, instead of sending it to the slower recovery path.
        Err(ShardSyncError::WrongEpoch { mine, theirs }) if theirs > mine => {
            crate::workers::follower::refresh_view(&state.node).await?;
            serve().await??
        }
        other => other?,
    };
    bcs_body(&response)
}
