//! The aggregator's routes: blobs by blob ID (whole, or one `Range`), by byte range, and by
//! blob object ID.
//!
//! Successful reads carry `ETag: "<blob ID>"` (a blob's bytes never change),
//! `Cache-Control: public, max-age=86400, stale-while-revalidate=3600`, `Accept-Ranges: bytes`
//! and a `Content-Type` mirrored from the request: the first media type of `Accept` when it
//! holds no `*`, else the request's `Content-Type`, else `application/octet-stream`. Errors are
//! never cacheable (`Cache-Control: no-store`, set for every error in `lib.rs`): a blob missing
//! now may be certified a second later.
//!
//! On reads by object ID, the blob object's attributes named in `--allowed-headers` (by default
//! `content-type`, `content-disposition`, …) become headers, over the mirrored type.
//!
//! A byte range is read from the systematic slivers that hold it; each sliver is verified, but
//! (as with Walrus) the whole blob's consistency is not checked, so the consistency flags apply
//! to whole reads only. `--max-blob-size` bounds the bytes one answer carries: the whole blob,
//! or the range.

use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{
    ACCEPT, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    HeaderMap, HeaderValue, RANGE,
};
use axum::response::{IntoResponse, Response};
use floe_client::{BlobParts, ClientError, ReadOptions};
use floe_core::{BlobId, ConsistencyCheck, ObjectId};
use floe_ledger::BlobStatus;
use floe_ledger::api_types::ObjectResponse;
use serde::Deserialize;

use crate::error::Failure;
use crate::range::{ByteRange, content_range};
use crate::{AppState, Shared};

/// `Cache-Control` of successful reads.
pub const CACHE_CONTROL_OK: &str = "public, max-age=86400, stale-while-revalidate=3600";

/// Query of whole reads. Unknown parameters (typos) are refused with 400, as Walrus does.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    #[serde(default)]
    strict_consistency_check: bool,
    #[serde(default)]
    skip_consistency_check: bool,
}

/// Query of `/v1/blobs/{blob_id}/byte-range`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByteRangeQuery {
    start: u64,
    length: u64,
}

pub fn parse_blob_id(s: &str) -> Result<BlobId, Failure> {
    s.parse()
        .map_err(|e| Failure::bad_request("INVALID_BLOB_ID", format!("{e}")))
}

pub fn parse_object_id(s: &str) -> Result<ObjectId, Failure> {
    s.parse()
        .map_err(|e| Failure::bad_request("INVALID_OBJECT_ID", format!("{e}")))
}

fn read_options(query: Result<Query<ReadQuery>, QueryRejection>) -> Result<ReadOptions, Failure> {
    let Query(q) = query.map_err(|e| Failure::bad_request("INVALID_QUERY", e.body_text()))?;
    consistency_options(q.strict_consistency_check, q.skip_consistency_check)
}

/// The read options of Walrus's two consistency flags (every read route takes them; both at
/// once is a 400).
pub(crate) fn consistency_options(strict: bool, skip: bool) -> Result<ReadOptions, Failure> {
    let check = match (strict, skip) {
        (true, true) => {
            return Err(Failure::bad_request(
                "INVALID_CONSISTENCY_OPTIONS",
                "strict_consistency_check and skip_consistency_check exclude each other",
            ));
        }
        (true, false) => ConsistencyCheck::Strict,
        (false, true) => ConsistencyCheck::Skip,
        (false, false) => ConsistencyCheck::Default,
    };
    Ok(ReadOptions { check })
}

/// `GET /v1/blobs/{blob_id}`.
pub async fn get_blob(
    State(s): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ReadQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let blob_id = parse_blob_id(&id)?;
    let options = read_options(query)?;
    serve_blob(&s, blob_id, None, options, &headers).await
}

/// `GET /v1/blobs/by-object-id/{object_id}`: the blob a (not deleted) blob object registers.
pub async fn get_by_object_id(
    State(s): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ReadQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let object_id = parse_object_id(&id)?;
    let options = read_options(query)?;
    let object = s
        .client
        .ledger()
        .object(&object_id)
        .await
        .map_err(ClientError::from)?;
    // A shared blob reads as the blob object it wraps.
    let blob = match object.map(ObjectResponse::into_blob) {
        Some(Some(b)) => b,
        Some(None) => {
            return Err(Failure::not_found(
                "NOT_A_BLOB_OBJECT",
                format!("object {object_id} is not a blob object"),
            ));
        }
        None => {
            return Err(Failure::not_found(
                "BLOB_NOT_FOUND",
                format!("no blob object {object_id} exists"),
            ));
        }
    };
    if blob.deleted {
        return Err(Failure::not_found(
            "BLOB_NOT_FOUND",
            format!("blob object {object_id} was deleted by its owner"),
        ));
    }
    let mut response = serve_blob(&s, blob.blob_id, Some(blob.size), options, &headers).await?;
    allowed_headers(&s, &blob.attributes, response.headers_mut());
    Ok(response)
}

/// Sets the `pairs` (blob attributes or quilt patch tags) named in `--allowed-headers` as
/// headers (all of them with `all`), over any mirrored `Content-Type`. Pairs that are not
/// valid header names or values are skipped.
pub fn set_allowed_headers<'a>(
    allowed: &[String],
    all: bool,
    pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
    headers: &mut HeaderMap,
) {
    for (key, value) in pairs {
        if !all && !allowed.iter().any(|a| a.eq_ignore_ascii_case(key)) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
}

fn allowed_headers(
    s: &Shared,
    attributes: &std::collections::BTreeMap<String, String>,
    headers: &mut HeaderMap,
) {
    set_allowed_headers(&s.options.allowed_headers, false, attributes, headers);
}

/// `GET /v1/blobs/{blob_id}/byte-range?start=&length=`: `length` bytes from `start`.
pub async fn get_byte_range(
    State(s): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ByteRangeQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let blob_id = parse_blob_id(&id)?;
    let Query(q) = query.map_err(|e| Failure::bad_request("INVALID_BYTE_RANGE", e.body_text()))?;
    if q.length == 0 || q.start.checked_add(q.length).is_none() {
        return Err(Failure::bad_request(
            "INVALID_BYTE_RANGE",
            "length must be positive and start + length must not overflow",
        ));
    }
    check_max_size(&s, q.length)?;
    let _slot = s
        .reads
        .enter_within(crate::limit::QUEUE_WAIT)
        .await
        .map_err(|why| Failure::refused("read", why))?;
    let started = Instant::now();
    let result = s.client.read_range(&blob_id, q.start, q.length).await;
    record(&s, "range", &result, started);
    let bytes = match result {
        Ok(bytes) => bytes,
        // A range past the end is a bad argument here (Walrus's spec declares 400); 416 is
        // for the `Range` header.
        Err(e @ ClientError::RangeNotSatisfiable { .. }) => {
            return Err(Failure::bad_request("INVALID_BYTE_RANGE", e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(blob_response(
        StatusCode::OK,
        &blob_id,
        &headers,
        None,
        bytes,
    ))
}

pub(crate) fn check_max_size(s: &Shared, bytes: u64) -> Result<(), Failure> {
    match s.options.max_blob_size {
        Some(max) if bytes > max => Err(Failure::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "BLOB_TOO_LARGE",
            format!(
                "{bytes} bytes exceed this aggregator's limit of {max} bytes; the blob is still \
                 stored and readable with a byte range, another aggregator or the CLI"
            ),
        )),
        _ => Ok(()),
    }
}

fn record(s: &Shared, kind: &'static str, result: &Result<Vec<u8>, ClientError>, started: Instant) {
    let (outcome, bytes) = match result {
        Ok(b) => ("ok", b.len() as u64),
        Err(_) => ("error", 0),
    };
    s.metrics.read(kind, outcome, bytes, started.elapsed());
}

/// The size of a certified, live blob, or the error a read of it gets.
pub(crate) async fn certified_size(s: &Shared, blob_id: &BlobId) -> Result<u64, ClientError> {
    let status = s.client.ledger().blob_status(blob_id).await?.status;
    let object_id = match status {
        BlobStatus::Certified { object_id, .. } => object_id,
        BlobStatus::Nonexistent => return Err(ClientError::BlobNotFound(*blob_id)),
        BlobStatus::Registered { .. } => return Err(ClientError::NotCertified(*blob_id)),
        BlobStatus::Invalid { .. } => return Err(ClientError::Invalid(*blob_id)),
        BlobStatus::Deleted { .. } => return Err(ClientError::Deleted(*blob_id)),
        BlobStatus::Expired { end_epoch, .. } => {
            return Err(ClientError::Expired {
                blob_id: *blob_id,
                end_epoch,
            });
        }
    };
    match s.client.ledger().object(&object_id).await? {
        Some(ObjectResponse::Blob(b)) => Ok(b.size),
        _ => Err(ClientError::Internal(format!(
            "the ledger names object {object_id} for blob {blob_id} but does not hold it"
        ))),
    }
}

/// A whole blob, or the single range the `Range` header asks for.
async fn serve_blob(
    s: &Shared,
    blob_id: BlobId,
    known_size: Option<u64>,
    options: ReadOptions,
    headers: &HeaderMap,
) -> Result<Response, Failure> {
    let _slot = s
        .reads
        .enter_within(crate::limit::QUEUE_WAIT)
        .await
        .map_err(|why| Failure::refused("read", why))?;
    let range = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(ByteRange::parse);
    let size = match (known_size, range, s.options.max_blob_size) {
        (Some(size), _, _) => Some(size),
        (None, None, None) => None,
        (None, _, _) => Some(certified_size(s, &blob_id).await?),
    };
    let started = Instant::now();
    match (range, size) {
        (Some(range), Some(size)) => {
            let Some((start, length)) = range.resolve(size) else {
                return Err(Failure::unsatisfiable(
                    format!("the requested range is outside the blob ({size} bytes)"),
                    size,
                ));
            };
            check_max_size(s, length)?;
            let result = s.client.read_range(&blob_id, start, length).await;
            record(s, "range", &result, started);
            Ok(blob_response(
                StatusCode::PARTIAL_CONTENT,
                &blob_id,
                headers,
                Some(content_range(start, length, size)),
                result?,
            ))
        }
        _ => {
            if let Some(size) = size {
                check_max_size(s, size)?;
            }
            let result = s.reads_in_flight.read(&s.client, blob_id, options).await;
            let (outcome, bytes) = match &result {
                Ok(b) => ("ok", b.len()),
                Err(_) => ("error", 0),
            };
            s.metrics.read("full", outcome, bytes, started.elapsed());
            let bytes = result.map_err(|e| Failure::from(e.as_ref()))?;
            Ok(blob_response(
                StatusCode::OK,
                &blob_id,
                headers,
                None,
                bytes,
            ))
        }
    }
}

/// The `Content-Type` of a read: mirrored from the request, else `application/octet-stream`.
pub fn content_type(request: &HeaderMap) -> HeaderValue {
    let accept = request
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|a| !a.contains('*'))
        .and_then(|a| a.split(',').next())
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .filter(|t| t.contains('/'))
        .and_then(|t| HeaderValue::from_str(t).ok());
    accept
        .or_else(|| request.get(CONTENT_TYPE).cloned())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

/// Pieces of a blob's body shorter than this are joined before they are sent
/// ([`BlobParts::into_coalesced_parts`]): the threshold of the sliver batches' chunks.
pub const MIN_BODY_CHUNK: usize = floe_node_client::batch::ZERO_COPY_MIN;

fn blob_response(
    status: StatusCode,
    blob_id: &BlobId,
    request: &HeaderMap,
    range: Option<String>,
    blob: impl Into<BlobParts>,
) -> Response {
    let blob: BlobParts = blob.into();
    let len = blob.len();
    // The pieces go out as they are (a read's systematic slivers), never joined into a copy,
    // except short ones (a small blob's rows), which would be tiny HTTP/2 frames.
    let body = match <[bytes::Bytes; 1]>::try_from(blob.into_coalesced_parts(MIN_BODY_CHUNK)) {
        Ok([one]) => axum::body::Body::from(one),
        Err(parts) => axum::body::Body::from_stream(futures_util::stream::iter(
            parts.into_iter().map(Ok::<_, std::convert::Infallible>),
        )),
    };
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(CONTENT_TYPE, content_type(request));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{blob_id}\"")) {
        h.insert(ETAG, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_OK));
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(r) = range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        h.insert(CONTENT_RANGE, r);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn content_type_mirrors_a_concrete_accept_then_the_content_type() {
        assert_eq!(content_type(&headers(&[])), "application/octet-stream");
        assert_eq!(
            content_type(&headers(&[("accept", "image/png")])),
            "image/png"
        );
        assert_eq!(
            content_type(&headers(&[("accept", "text/html;q=0.9, image/png")])),
            "text/html"
        );
        assert_eq!(
            content_type(&headers(&[("accept", "image/*")])),
            "application/octet-stream"
        );
        assert_eq!(
            content_type(&headers(&[
                ("accept", "*/*"),
                ("content-type", "video/mp4")
            ])),
            "video/mp4"
        );
        assert_eq!(
            content_type(&headers(&[("accept", "nonsense")])),
            "application/octet-stream"
        );
    }

    #[test]
    fn consistency_flags_exclude_each_other() {
        let q = |strict, skip| {
            read_options(Ok(Query(ReadQuery {
                strict_consistency_check: strict,
                skip_consistency_check: skip,
            })))
        };
        assert_eq!(q(false, false).unwrap().check, ConsistencyCheck::Default);
        assert_eq!(q(true, false).unwrap().check, ConsistencyCheck::Strict);
        assert_eq!(q(false, true).unwrap().check, ConsistencyCheck::Skip);
        assert_eq!(q(true, true).unwrap_err().status(), 400);
    }
}
