//! Walrus's `v1alpha` read routes, whose answers are streamed:
//!
//! * `GET /v1alpha/blobs/{blob_id}/stream`: the blob's bytes in order, row by row, each row a
//!   systematic sliver verified against the metadata ([`floe_client::Client::read_stream`]),
//!   so the first bytes go out before the rest is fetched. The whole blob's consistency is not
//!   checked (as with byte ranges).
//! * `GET /v1alpha/blobs/concat?ids=A,B,…` and `POST /v1alpha/blobs/concat` with
//!   `{"ids":[…]}`: several blobs (by blob ID or `0x…` blob object ID) concatenated in the
//!   order given. Every ID is resolved and checked first, so a missing blob is a 404 before
//!   any byte is sent; then each blob is read whole (with the consistency flags), sent, and
//!   freed before the next.
//!
//! Both answer with a `Content-Length`. An error after the first byte ends the body early.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use floe_client::{ClientError, ReadOptions};
use floe_core::{BlobId, ObjectId};
use floe_ledger::api_types::ObjectResponse;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::aggregator::{
    CACHE_CONTROL_OK, certified_size, check_max_size, consistency_options, content_type,
};
use crate::error::Failure;
use crate::{AppState, Shared};

/// Most blobs one concatenation may name.
pub const MAX_CONCAT_IDS: usize = 256;

/// A body fed by a channel; a `None`-terminated stream of chunks, cut short by an error.
fn channel_body(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Body::from_stream(stream)
}

fn streamed(size: u64, request: &HeaderMap, body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, content_type(request));
    h.insert(CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_OK));
    response
}

/// No query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

/// `GET /v1alpha/blobs/{blob_id}/stream`.
pub async fn get_stream(
    State(s): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<NoQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let blob_id = crate::aggregator::parse_blob_id(&id)?;
    query.map_err(|e| Failure::bad_request("INVALID_QUERY", e.body_text()))?;
    let slot = s
        .reads
        .enter_within(crate::limit::QUEUE_WAIT)
        .await
        .map_err(|why| Failure::refused("read", why))?;
    let stream = s.client.read_stream(&blob_id).await?;
    check_max_size(&s, stream.size)?;
    let (tx, rx) = mpsc::channel(1);
    let mut chunks = stream.chunks;
    tokio::spawn(async move {
        let _slot = slot;
        while let Some(chunk) = chunks.recv().await {
            let chunk = chunk
                .map(Bytes::from)
                .map_err(|e| std::io::Error::other(e.to_string()));
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(streamed(stream.size, &headers, channel_body(rx)))
}

/// `GET /v1alpha/blobs/concat`'s query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcatQuery {
    ids: String,
    #[serde(default)]
    strict_consistency_check: bool,
    #[serde(default)]
    skip_consistency_check: bool,
}

/// `POST /v1alpha/blobs/concat`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcatBody {
    ids: Vec<String>,
    strict_consistency_check: Option<bool>,
    skip_consistency_check: Option<bool>,
}

pub async fn get_concat(
    State(s): State<AppState>,
    query: Result<Query<ConcatQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let Query(q) = query.map_err(|e| Failure::bad_request("INVALID_QUERY", e.body_text()))?;
    let options = consistency_options(q.strict_consistency_check, q.skip_consistency_check)?;
    let ids: Vec<String> = q.ids.split(',').map(|s| s.trim().to_string()).collect();
    concat(s, ids, options, &headers).await
}

pub async fn post_concat(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ConcatBody>, JsonRejection>,
) -> Result<Response, Failure> {
    let Json(b) = body.map_err(|e| Failure::bad_request("INVALID_BODY", e.body_text()))?;
    let options = consistency_options(
        b.strict_consistency_check.unwrap_or(false),
        b.skip_consistency_check.unwrap_or(false),
    )?;
    concat(s, b.ids, options, &headers).await
}

/// The blob an ID names (a blob ID, or, with `0x`, a live blob object's ID) and its size.
async fn resolve(s: &Shared, id: &str) -> Result<(BlobId, u64), Failure> {
    if !id.starts_with("0x")
        && let Ok(blob_id) = id.parse::<BlobId>()
    {
        return Ok((blob_id, certified_size(s, &blob_id).await?));
    }
    let object_id: ObjectId = id.parse().map_err(|_| {
        Failure::bad_request(
            "INVALID_ID",
            format!("{id:?} is neither a blob ID nor a blob object ID"),
        )
    })?;
    match s
        .client
        .ledger()
        .object(&object_id)
        .await
        .map_err(ClientError::from)?
        .and_then(ObjectResponse::into_blob)
    {
        Some(b) if !b.deleted => {
            // The object must also be certified and live: the blob's status says so.
            certified_size(s, &b.blob_id).await?;
            Ok((b.blob_id, b.size))
        }
        _ => Err(Failure::not_found(
            "BLOB_NOT_FOUND",
            format!("no live blob object {object_id} exists"),
        )),
    }
}

async fn concat(
    s: AppState,
    ids: Vec<String>,
    options: ReadOptions,
    headers: &HeaderMap,
) -> Result<Response, Failure> {
    if ids.is_empty() || ids.iter().any(|i| i.is_empty()) {
        return Err(Failure::bad_request(
            "INVALID_ID",
            "give at least one ID, none empty",
        ));
    }
    if ids.len() > MAX_CONCAT_IDS {
        return Err(Failure::bad_request(
            "TOO_MANY_IDS",
            format!("at most {MAX_CONCAT_IDS} blobs per concatenation"),
        ));
    }
    let slot = s
        .reads
        .enter_within(crate::limit::QUEUE_WAIT)
        .await
        .map_err(|why| Failure::refused("read", why))?;
    let mut blobs = Vec::with_capacity(ids.len());
    let mut total = 0u64;
    for id in &ids {
        let (blob_id, size) = resolve(&s, id).await?;
        check_max_size(&s, size)?;
        blobs.push(blob_id);
        total += size;
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        let _slot = slot;
        for blob_id in blobs {
            let read = s.reads_in_flight.read(&s.client, blob_id, options).await;
            let parts = match read {
                Ok(blob) => blob.into_coalesced_parts(crate::aggregator::MIN_BODY_CHUNK),
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            for part in parts {
                if tx.send(Ok(part)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(streamed(total, headers, channel_body(rx)))
}
