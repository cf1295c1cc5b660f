//! Quilt routes.
//!
//! * `PUT /v1/quilts` (publisher): a `multipart/form-data` body; every field but `_metadata`
//!   is a file whose field name is its identifier; `_metadata` is a JSON array
//!   `[{"identifier": …, "tags": {…}}]` (tag values that are not strings are kept as their JSON
//!   text). Same query as `PUT /v1/blobs` (plus `quilt_version`, which only V1 answers), body
//!   limit `--max-quilt-body-size`. Answers Walrus's `QuiltStoreResult`.
//! * `GET /v1/blobs/by-quilt-patch-id/{id}` and `GET /v1/blobs/by-quilt-id/{quilt_id}/{identifier}`
//!   (aggregator): the patch's bytes, read from its columns only, with
//!   `X-Quilt-Patch-Identifier`, `ETag: "<quilt ID>"` and its tags as headers (all of them with
//!   `--allow-quilt-patch-tags-in-response`, else those named in `--allowed-headers`).
//! * `GET /v1/quilts/{quilt_id}/patches`: `[{"identifier", "patch_id", "tags"}]`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use floe_client::{ClientError, NoProgress, QuiltPatchListItem};
use floe_core::quilt::{PatchContents, QuiltError, QuiltPatchId, QuiltPatchInput, Tags};
use serde::Deserialize;

use crate::aggregator::{CACHE_CONTROL_OK, content_type, parse_blob_id, set_allowed_headers};
use crate::error::Failure;
use crate::multipart;
use crate::publisher::{declared_length, drain, drain_budget, finish, prepare};
use crate::{AppState, Shared};

/// The name of the metadata field of `PUT /v1/quilts`.
pub const METADATA_FIELD: &str = "_metadata";
/// The header naming a patch's identifier.
pub const PATCH_IDENTIFIER_HEADER: &str = "x-quilt-patch-identifier";

/// One entry of `_metadata`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchMetadata {
    identifier: String,
    #[serde(default)]
    tags: BTreeMap<String, serde_json::Value>,
}

fn tag_value(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// `PUT /v1/quilts`. A request refused before its body was read has the body drained first.
pub async fn put_quilt(State(s): State<AppState>, req: Request) -> Result<Response, Failure> {
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let result = store(&s, &parts, &mut body).await;
    let budget = drain_budget(s.options.max_quilt_body_bytes());
    if result.is_err()
        && declared_length(&parts.headers).is_none_or(|n| n <= budget)
        && let Some(body) = body
    {
        drain(body, budget).await;
    }
    result
}

/// A file of a quilt request: identifier, tags, and its byte range in the body.
type File = (String, Tags, std::ops::Range<usize>);

/// The files of a quilt request.
fn files_of(body: &[u8], content_type: &str) -> Result<Vec<File>, Failure> {
    let bad = |reason: &'static str, m: String| Failure::bad_request(reason, m);
    let boundary =
        multipart::boundary(content_type).map_err(|e| bad("INVALID_MULTIPART", e.to_string()))?;
    let parts =
        multipart::parse(body, &boundary).map_err(|e| bad("INVALID_MULTIPART", e.to_string()))?;
    let mut tags: BTreeMap<String, Tags> = BTreeMap::new();
    let mut files = Vec::new();
    let mut names = HashSet::new();
    for part in parts {
        if part.name == METADATA_FIELD {
            let entries: Vec<PatchMetadata> = serde_json::from_slice(&body[part.data.clone()])
                .map_err(|e| {
                    bad(
                        "INVALID_METADATA",
                        format!(
                            "_metadata must be a JSON array of {{\"identifier\", \"tags\"}}: {e}"
                        ),
                    )
                })?;
            for entry in entries {
                let t = entry
                    .tags
                    .into_iter()
                    .map(|(k, v)| (k, tag_value(v)))
                    .collect();
                if tags.insert(entry.identifier.clone(), t).is_some() {
                    return Err(bad(
                        "DUPLICATE_IDENTIFIER",
                        format!("_metadata names {:?} twice", entry.identifier),
                    ));
                }
            }
            continue;
        }
        if !names.insert(part.name.clone()) {
            return Err(bad(
                "DUPLICATE_IDENTIFIER",
                format!(
                    "two files are named {:?}; identifiers must be unique",
                    part.name
                ),
            ));
        }
        files.push((part.name, Tags::new(), part.data));
    }
    if files.is_empty() {
        return Err(bad(
            "NO_FILES",
            "the body holds no file: send each file as a form field named by its identifier".into(),
        ));
    }
    for (identifier, t) in tags {
        let Some(file) = files.iter_mut().find(|f| f.0 == identifier) else {
            return Err(bad(
                "UNKNOWN_IDENTIFIER",
                format!("_metadata names {identifier:?}, but no file has that name"),
            ));
        };
        file.1 = t;
    }
    Ok(files)
}

async fn store(
    s: &Shared,
    parts: &axum::http::request::Parts,
    body: &mut Option<axum::body::Body>,
) -> Result<Response, Failure> {
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    multipart::boundary(&content_type)
        .map_err(|e| Failure::bad_request("INVALID_MULTIPART", e.to_string()))?;
    let prepared = prepare(s, parts, body, s.options.max_quilt_body_bytes()).await?;
    let files = files_of(&prepared.body, &content_type)?;
    let inputs: Vec<QuiltPatchInput<'_>> = files
        .iter()
        .map(|(identifier, tags, range)| QuiltPatchInput {
            identifier: identifier.clone(),
            tags: tags.clone(),
            data: &prepared.body[range.clone()],
        })
        .collect();
    let size = prepared.body.len() as u64;
    let started = Instant::now();
    let stored = s
        .client
        .store_quilt(&inputs, &prepared.plan.options, Arc::new(NoProgress))
        .await;
    let mut stored = match stored {
        Ok(o) => o,
        Err(e) => {
            s.metrics.store("error", size, started.elapsed());
            return Err(e.into());
        }
    };
    let after = crate::publisher::AfterStore::of(&prepared);
    finish(s, &mut stored.outcome, after, size, started).await?;
    Ok(axum::Json(stored.result()).into_response())
}

/// `GET /v1/blobs/by-quilt-patch-id/{quilt_patch_id}`: no index is read.
pub async fn get_by_patch_id(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let patch_id: QuiltPatchId = id
        .parse()
        .map_err(|e: QuiltError| Failure::bad_request("INVALID_QUILT_PATCH_ID", e.to_string()))?;
    let internal = patch_id
        .internal_id()
        .map_err(|e| Failure::bad_request("INVALID_QUILT_PATCH_ID", e.to_string()))?;
    let _slot = s
        .reads
        .enter_within(crate::limit::QUEUE_WAIT)
        .await
        .map_err(|why| Failure::refused("read", why))?;
    let started = Instant::now();
    let result = async {
        let quilt = s.client.open_quilt(&patch_id.quilt_id).await?;
        quilt.patch_by_internal_id(internal).await
    }
    .await;
    record(&s, &result, started);
    Ok(patch_response(&s, &patch_id.quilt_id, &headers, result?))
}

/// `GET /v1/blobs/by-quilt-id/{quilt_id}/{identifier}`.
pub async fn get_by_identifier(
    State(s): State<AppState>,
    Path((quilt_id, identifier)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let quilt_id = parse_blob_id(&quilt_id)?;
    let _slot = s
        .reads
        .enter_within(crate::limit::QUEUE_WAIT)
        .await
        .map_err(|why| Failure::refused("read", why))?;
    let started = Instant::now();
    let result = async {
        let quilt = s.client.open_quilt(&quilt_id).await?;
        let index = quilt.index().await?;
        let patch = index
            .get(&identifier)
            .ok_or_else(|| QuiltError::PatchNotFound(identifier.clone()))?;
        quilt.patch(patch).await
    }
    .await;
    record(&s, &result, started);
    Ok(patch_response(&s, &quilt_id, &headers, result?))
}

/// `GET /v1/quilts/{quilt_id}/patches`.
pub async fn list_patches(
    State(s): State<AppState>,
    Path(quilt_id): Path<String>,
) -> Result<Response, Failure> {
    let quilt_id = parse_blob_id(&quilt_id)?;
    let _slot = s
        .reads
        .enter_within(crate::limit::QUEUE_WAIT)
        .await
        .map_err(|why| Failure::refused("read", why))?;
    let quilt = s.client.open_quilt(&quilt_id).await?;
    let index = quilt.index().await?;
    Ok(axum::Json(QuiltPatchListItem::list(quilt_id, &index)).into_response())
}

fn record(s: &Shared, result: &Result<PatchContents, ClientError>, started: Instant) {
    let (outcome, bytes) = match result {
        Ok(p) => ("ok", p.data.len() as u64),
        Err(_) => ("error", 0),
    };
    s.metrics
        .read("quilt_patch", outcome, bytes, started.elapsed());
}

fn patch_response(
    s: &Shared,
    quilt_id: &floe_core::BlobId,
    request: &HeaderMap,
    patch: PatchContents,
) -> Response {
    let mut response = (StatusCode::OK, patch.data).into_response();
    let h = response.headers_mut();
    // Tags first, so that the headers below always win over a tag of the same name.
    set_allowed_headers(
        &s.options.allowed_headers,
        s.options.allow_quilt_patch_tags_in_response,
        &patch.tags,
        h,
    );
    if !h.contains_key(CONTENT_TYPE) {
        h.insert(CONTENT_TYPE, content_type(request));
    }
    if let Ok(v) = HeaderValue::from_str(&patch.identifier) {
        h.insert(PATCH_IDENTIFIER_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{quilt_id}\"")) {
        h.insert(ETAG, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_OK));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multipart_body(fields: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (name, data) in fields {
            b.extend_from_slice(
                format!("--B\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                    .as_bytes(),
            );
            b.extend_from_slice(data);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"--B--\r\n");
        b
    }

    const CT: &str = "multipart/form-data; boundary=B";

    #[test]
    fn files_and_metadata() {
        let body = multipart_body(&[
            ("a.txt", b"AAA"),
            ("b.txt", b""),
            (
                METADATA_FIELD,
                br#"[{"identifier":"a.txt","tags":{"k":"v","n":1}}]"#,
            ),
        ]);
        let files = files_of(&body, CT).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].0, "a.txt");
        assert_eq!(&body[files[0].2.clone()], b"AAA");
        assert_eq!(files[0].1.get("n").map(String::as_str), Some("1"));
        assert!(files[1].1.is_empty());
    }

    #[test]
    fn refusals() {
        let reason =
            |fields: &[(&str, &[u8])]| files_of(&multipart_body(fields), CT).unwrap_err().reason();
        assert_eq!(reason(&[("a", b"1"), ("a", b"2")]), "DUPLICATE_IDENTIFIER");
        assert_eq!(
            reason(&[
                ("a", b"1"),
                (
                    METADATA_FIELD,
                    br#"[{"identifier":"a"},{"identifier":"a"}]"#
                )
            ]),
            "DUPLICATE_IDENTIFIER"
        );
        assert_eq!(reason(&[(METADATA_FIELD, b"[]")]), "NO_FILES");
        assert_eq!(
            reason(&[("a", b"1"), (METADATA_FIELD, b"{")]),
            "INVALID_METADATA"
        );
        assert_eq!(
            reason(&[("a", b"1"), (METADATA_FIELD, br#"[{"identifier":"b"}]"#)]),
            "UNKNOWN_IDENTIFIER"
        );
        assert_eq!(
            files_of(b"x", "text/plain").unwrap_err().reason(),
            "INVALID_MULTIPART"
        );
    }
}
