//! Request handlers: parse, call the node, shape the answer.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use floe_core::{BlobId, ObjectId, SliverType};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState, bcs_body, success};
use crate::node::StoreOutcome;

fn blob_id(s: &str) -> Result<BlobId, ApiError> {
    s.parse().map_err(|e: floe_core::IdParseError| {
        ApiError::bad_request("INVALID_BLOB_ID", e.to_string())
    })
}

fn sliver_type(s: &str) -> Result<SliverType, ApiError> {
    s.parse().map_err(|e: floe_core::IdParseError| {
        ApiError::bad_request("INVALID_SLIVER_TYPE", e.to_string())
    })
}

fn pair_index(s: &str) -> Result<u16, ApiError> {
    s.parse().map_err(|_| {
        ApiError::bad_request(
            "INDEX_OUT_OF_RANGE",
            format!("{s:?} is not a sliver pair index (0..n_shards)"),
        )
    })
}

fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(ApiError::from_body_rejection)
}

/// Run blocking work (storage, hashing, coding) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::node::NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "INTERNAL",
                e.to_string(),
            )
        })?
        .map_err(ApiError::from)
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request("INVALID_QUERY", e.body_text()))
}

/// Routes without query parameters refuse any (Walrus rejects unknown fields); `allowed` are
/// parameters a route accepts and ignores.
fn no_query(q: &Option<String>, allowed: &[&str]) -> Result<(), ApiError> {
    let q = q.as_deref().unwrap_or("");
    match q
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').map_or(kv, |(k, _)| k))
        .find(|k| !allowed.contains(k))
    {
        Some(k) => Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!("unknown query parameter {k:?}"),
        )),
        None => Ok(()),
    }
}

fn outcome(what: &str, o: StoreOutcome) -> Response {
    match o {
        StoreOutcome::Created => {
            success(StatusCode::CREATED, format!("{what} successfully stored"))
        }
        StoreOutcome::Buffered => success(
            StatusCode::ACCEPTED,
            format!("{what} buffered pending registration"),
        ),
        StoreOutcome::AlreadyStored => success(StatusCode::OK, format!("{what} already stored")),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PendingQuery {
    #[serde(default)]
    pending: bool,
}

pub async fn get_metadata(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = blob_id(&id)?;
    // Walrus's document lists `pending` here too; it changes nothing on a read.
    no_query(&q, &["pending"])?;
    let node = s.node.clone();
    let m = blocking(move || node.get_metadata(&id)).await?;
    bcs_body(&m)
}

pub async fn put_metadata(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<PendingQuery>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = blob_id(&id)?;
    let b = body(b)?;
    let pending = query(q)?.pending;
    let node = s.node.clone();
    let o = blocking(move || node.put_metadata(&id, &b, pending)).await?;
    Ok(outcome("metadata", o))
}

pub async fn metadata_status(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = blob_id(&id)?;
    no_query(&q, &[])?;
    let node = s.node.clone();
    let st = blocking(move || node.metadata_status(&id)).await?;
    Ok(success(StatusCode::OK, st))
}

pub async fn put_sliver(
    State(s): State<AppState>,
    Path((id, pair, ty)): Path<(String, String, String)>,
    q: Result<Query<PendingQuery>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (id, pair, ty) = (blob_id(&id)?, pair_index(&pair)?, sliver_type(&ty)?);
    let b = body(b)?;
    let pending = query(q)?.pending;
    let node = s.node.clone();
    let o = blocking(move || node.put_sliver(&id, pair, ty, &b, pending)).await?;
    Ok(outcome("sliver", o))
}

pub async fn put_sliver_batch(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: axum::body::Body,
) -> Result<Response, ApiError> {
    let id = blob_id(&id)?;
    no_query(&q, &[])?;
    let declared = floe_http::body::declared_length_in(&headers);
    let limit = s.node.config.limits.max_body_bytes;
    let b = floe_http::pooled::read_pooled(b, limit, declared, &s.bodies).await?;
    let node = s.node.clone();
    let stored = blocking(move || node.put_sliver_batch(&id, &b)).await?;
    Ok(success(StatusCode::CREATED, json!({"stored": stored})))
}

pub async fn get_sliver(
    State(s): State<AppState>,
    Path((id, pair, ty)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (id, pair, ty) = (blob_id(&id)?, pair_index(&pair)?, sliver_type(&ty)?);
    no_query(&q, &[])?;
    let node = s.node.clone();
    let sliver = blocking(move || node.get_sliver(&id, pair, ty)).await?;
    bcs_body(&sliver)
}

pub async fn sliver_status(
    State(s): State<AppState>,
    Path((id, pair, ty)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (id, pair, ty) = (blob_id(&id)?, pair_index(&pair)?, sliver_type(&ty)?);
    no_query(&q, &[])?;
    let node = s.node.clone();
    let st = blocking(move || node.sliver_status(&id, pair, ty)).await?;
    Ok(success(StatusCode::OK, st))
}

/// The confirmation routes' long poll: `wait_for_registration=true` waits for the blob's
/// registration up to `wait_millis`, capped by the node's
/// `confirmation_long_poll_max_millis` (the cap when `wait_millis` is absent).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationQuery {
    #[serde(default)]
    wait_for_registration: bool,
    wait_millis: Option<u64>,
}

async fn confirm(
    s: AppState,
    id: BlobId,
    object: Option<ObjectId>,
    q: Result<Query<ConfirmationQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let max = s.node.config.limits.confirmation_long_poll_max_millis;
    let wait = q.wait_millis.unwrap_or(max).min(max);
    if q.wait_for_registration && wait > 0 {
        s.node
            .wait_for_registration(&id, object, std::time::Duration::from_millis(wait))
            .await?;
    }
    let node = s.node.clone();
    let signed = blocking(move || node.confirmation(&id, object)).await?;
    Ok(success(StatusCode::OK, json!({"signed": signed})))
}

pub async fn confirm_permanent(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<ConfirmationQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = blob_id(&id)?;
    confirm(s, id, None, q).await
}

pub async fn confirm_deletable(
    State(s): State<AppState>,
    Path((id, object)): Path<(String, String)>,
    q: Result<Query<ConfirmationQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = blob_id(&id)?;
    let object: ObjectId = object.parse().map_err(|e: floe_core::IdParseError| {
        ApiError::bad_request("INVALID_OBJECT_ID", e.to_string())
    })?;
    confirm(s, id, Some(object), q).await
}

/// `?id=r-c` (repeatable) or `?targetSliver=i&targetType=primary|secondary`.
pub async fn recovery_symbols(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = blob_id(&id)?;
    let mut ids = Vec::new();
    let (mut target, mut target_type, mut proof_axis) = (None, None, None);
    for kv in q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "id" => {
                let (r, c) = v.split_once('-').ok_or_else(|| {
                    ApiError::bad_request(
                        "INVALID_FILTER",
                        format!("symbol id {v:?} is not ROW-COLUMN"),
                    )
                })?;
                let parse = |x: &str| {
                    x.parse::<u16>().map_err(|_| {
                        ApiError::bad_request(
                            "INVALID_FILTER",
                            format!("symbol id {v:?} is not ROW-COLUMN"),
                        )
                    })
                };
                ids.push((parse(r)?, parse(c)?));
            }
            "targetSliver" => target = Some(pair_index(v)?),
            "targetType" => target_type = Some(sliver_type(v)?),
            "proofAxis" => proof_axis = Some(sliver_type(v)?),
            other => {
                return Err(ApiError::bad_request(
                    "INVALID_FILTER",
                    format!("unknown query parameter {other:?}"),
                ));
            }
        }
    }
    if ids.len() > crate::limits::MAX_SYMBOL_IDS {
        return Err(ApiError::bad_request(
            "INVALID_FILTER",
            format!(
                "at most {} symbol ids per request",
                crate::limits::MAX_SYMBOL_IDS
            ),
        ));
    }
    let permit = s
        .node
        .recovery_permits
        .try_acquire()
        .map_err(|_| ApiError::from(crate::node::NodeError::Busy))?;
    let node = s.node.clone();
    let symbols = match (ids.is_empty(), target, target_type) {
        (false, None, None) => {
            blocking(move || node.recovery_symbols_by_id(&id, &ids, proof_axis)).await?
        }
        (true, Some(t), Some(ty)) => {
            // The proof is always against the orthogonal (source) sliver.
            if proof_axis.is_some_and(|p| p != ty.orthogonal()) {
                return Err(ApiError::bad_request(
                    "INVALID_FILTER",
                    format!("symbols for a {ty} target are proven on the other axis"),
                ));
            }
            blocking(move || node.recovery_symbols_for_target(&id, ty, t)).await?
        }
        (true, None, None) => {
            return Err(ApiError::bad_request(
                "NO_SYMBOLS_SPECIFIED",
                "give id=ROW-COLUMN or targetSliver and targetType",
            ));
        }
        _ => {
            return Err(ApiError::bad_request(
                "INVALID_FILTER",
                "use either id=ROW-COLUMN or targetSliver with targetType, not both",
            ));
        }
    };
    drop(permit);
    bcs_body(&symbols)
}

/// `?targetSlivers=i` (repeatable) `&targetType=primary|secondary`.
pub async fn decoding_symbols(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    use crate::node::{MAX_DECODING_TARGETS, NodeError};
    let id = blob_id(&id)?;
    let mut targets = Vec::new();
    let mut target_type = None;
    for kv in q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "targetSlivers" => {
                // Bound the work before parsing further.
                if targets.len() == MAX_DECODING_TARGETS {
                    let got = q.as_deref().unwrap_or("").matches("targetSlivers=").count();
                    return Err(NodeError::TooManyTargets {
                        got,
                        max: MAX_DECODING_TARGETS,
                    }
                    .into());
                }
                targets.push(v.parse::<u16>().map_err(|_| {
                    ApiError::bad_request(
                        "INVALID_FILTER",
                        format!("{v:?} is not a sliver index (0..n_shards)"),
                    )
                })?);
            }
            "targetType" => target_type = Some(sliver_type(v)?),
            other => {
                return Err(ApiError::bad_request(
                    "INVALID_FILTER",
                    format!("unknown query parameter {other:?}"),
                ));
            }
        }
    }
    if targets.is_empty() {
        return Err(NodeError::NoTargetSlivers.into());
    }
    let Some(axis) = target_type else {
        return Err(ApiError::bad_request(
            "INVALID_FILTER",
            "targetType=primary|secondary is required",
        ));
    };
    let permit = s
        .node
        .recovery_permits
        .try_acquire()
        .map_err(|_| ApiError::from(NodeError::Busy))?;
    let node = s.node.clone();
    let symbols = blocking(move || node.decoding_symbols(&id, axis, &targets)).await?;
    drop(permit);
    bcs_body(&symbols)
}

pub async fn inconsistency_proof(
    State(s): State<AppState>,
    Path((id, ty)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (id, ty) = (blob_id(&id)?, sliver_type(&ty)?);
    no_query(&q, &[])?;
    let b = body(b)?;
    let node = s.node.clone();
    let signed = blocking(move || node.attest_inconsistency(&id, ty, &b)).await?;
    Ok(success(StatusCode::OK, signed))
}

/// `POST /v1/blobs/{blob_id}/audit`: a BCS `AuditRequest` (whose blob ID must be the path's)
/// → a BCS `SignedMessage` of an `AuditAnswer`. Requests share the recovery permits.
pub async fn audit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = blob_id(&id)?;
    no_query(&q, &[])?;
    let b = body(b)?;
    if b.len() > crate::limits::MAX_AUDIT_REQUEST_BYTES {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            "an audit request is a few dozen bytes",
        ));
    }
    match bcs::from_bytes::<floe_core::audit::AuditRequest>(&b) {
        Ok(r) if r.v1().blob_id != id => {
            return Err(ApiError::bad_request(
                "BLOB_ID_MISMATCH",
                "the request's blob ID is not the path's",
            ));
        }
        _ => {}
    }
    let permit = s
        .node
        .recovery_permits
        .try_acquire()
        .map_err(|_| ApiError::from(crate::node::NodeError::Busy))?;
    let node = s.node.clone();
    let signed = blocking(move || node.audit(&b)).await?;
    drop(permit);
    bcs_body(&signed)
}

pub async fn blob_status(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = blob_id(&id)?;
    no_query(&q, &[])?;
    let node = s.node.clone();
    let st = blocking(move || node.blob_status(&id)).await?;
    Ok(success(StatusCode::OK, st))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HealthQuery {
    #[serde(default)]
    detailed: bool,
}

pub async fn health(
    State(s): State<AppState>,
    q: Result<Query<HealthQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let detailed = query(q)?.detailed;
    Ok(success(StatusCode::OK, s.node.health(detailed, None)))
}

pub async fn metrics(State(s): State<AppState>) -> Response {
    let text = s.metrics.render(&s.node, &s.bodies);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}
