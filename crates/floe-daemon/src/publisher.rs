//! The publisher's routes: `PUT /v1/blobs` stores the body as a blob (Walrus's query and
//! `BlobStoreResult` answer), and, when enabled, `DELETE` removes blob objects the publisher's
//! wallet owns.
//!
//! A store is checked in the order that costs the client least: query (400), token (401),
//! declared length (413), a slot (429), then the body is read (413 when it overruns the limit).
//! A refused body is read on and discarded (within bounds) before the answer, so that a client
//! still sending receives the error instead of a reset connection (otherwise a too-large upload
//! fails "silently", as users of Walrus's public publishers reported).
//! With `send_object_to`, a newly created blob object is transferred to that address once
//! certified; an already certified blob creates no object, so nothing is sent.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, HeaderMap};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use floe_client::{BlobStoreResult, ClientError, Lifetime, NoProgress, StoreOptions, StoreOutcome};
use floe_core::{BlobId, EncodingType, ObjectId};
use floe_http::body::ReadBodyError;
use floe_ledger::{Address, BlobStatus};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};

use crate::aggregator::{parse_blob_id, parse_object_id};
use crate::auth::{Claims, Upload};
use crate::error::Failure;
use crate::{AppState, Shared};

/// Longest time spent discarding a refused body.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Query of `PUT /v1/blobs`. Unknown parameters (say `epoch=5` for `epochs=5`) are refused
/// with 400 rather than silently ignored, as Walrus does.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreQuery {
    /// Epochs ahead to store for (default 1), or `max`.
    epochs: Option<String>,
    /// Store until this epoch (exclusive) instead.
    end_epoch: Option<u32>,
    permanent: Option<bool>,
    /// Deprecated: blobs are deletable unless `permanent=true`.
    deletable: Option<bool>,
    force: Option<bool>,
    send_object_to: Option<String>,
    share: Option<bool>,
    encoding_type: Option<String>,
    /// Accepted for compatibility; registrations are always reused when possible.
    #[allow(dead_code)]
    reuse_resources: Option<bool>,
    /// Walrus's specification lists it for blobs too; only `v1` (`V1`, `1`: quilts' only
    /// version) is accepted, and it has no effect on a blob.
    quilt_version: Option<String>,
}

const SHARE_OR_SEND: &str =
    "share and send_object_to exclude each other: a shared blob has no owner to send it to";

/// What a store request asks for.
#[derive(Debug)]
pub struct StorePlan {
    pub options: StoreOptions,
    pub send_object_to: Option<Address>,
    /// Wrap the new blob object into a shared blob (`share=true`).
    pub share: bool,
}

impl StorePlan {
    pub fn from_query(q: &StoreQuery) -> Result<Self, Failure> {
        let bad = |reason, message: String| Err(Failure::bad_request(reason, message));
        let share = q.share == Some(true);
        if share && q.send_object_to.is_some() {
            return bad("INVALID_ARGUMENT", SHARE_OR_SEND.into());
        }
        if let Some(t) = &q.encoding_type
            && t.parse::<EncodingType>().is_err()
        {
            return bad(
                "INVALID_ENCODING",
                format!("unknown encoding type {t:?}; only RS2 exists"),
            );
        }
        if let Some(v) = &q.quilt_version
            && !matches!(v.as_str(), "v1" | "V1" | "1")
        {
            return bad(
                "INVALID_QUILT_VERSION",
                format!("unknown quilt version {v:?}; only v1 (V1, 1) exists"),
            );
        }
        let permanent = q.permanent.unwrap_or(false);
        if permanent && q.deletable == Some(true) {
            return bad(
                "INVALID_ARGUMENT",
                "a blob cannot be both deletable and permanent".into(),
            );
        }
        let lifetime = match (q.epochs.as_deref(), q.end_epoch) {
            (Some(_), Some(_)) => {
                return bad(
                    "INVALID_LIFETIME",
                    "give epochs or end_epoch, not both".into(),
                );
            }
            (Some("max"), None) => Lifetime::Max,
            (Some(n), None) => match n.parse() {
                Ok(n) => Lifetime::Epochs(n),
                Err(_) => {
                    return bad(
                        "INVALID_LIFETIME",
                        format!("epochs must be a number of epochs or `max`, not {n:?}"),
                    );
                }
            },
            (None, Some(e)) => Lifetime::EndEpoch(e),
            (None, None) => Lifetime::Epochs(1),
        };
        let send_object_to = match &q.send_object_to {
            Some(a) => Some(
                a.parse::<Address>()
                    .map_err(|e| Failure::bad_request("INVALID_ADDRESS", e))?,
            ),
            None => None,
        };
        Ok(Self {
            options: StoreOptions {
                lifetime,
                deletable: !permanent,
                force: q.force.unwrap_or(false),
            },
            send_object_to,
            share,
        })
    }

    /// Epochs ahead the lifetime asks for (needs the current epoch unless given as a count).
    async fn epochs_ahead(&self, s: &Shared) -> Result<u32, Failure> {
        Ok(match self.options.lifetime {
            Lifetime::Epochs(n) => n,
            Lifetime::Max => s.client.system().await?.max_epochs_ahead,
            Lifetime::EndEpoch(e) => e.saturating_sub(s.client.system().await?.epoch),
            lifetime @ Lifetime::NotBefore(_) => {
                let system = s.client.system().await?;
                let end = lifetime
                    .end_epoch(&system)
                    .map_err(|e| Failure::bad_request("INVALID_LIFETIME", e.to_string()))?;
                end.saturating_sub(system.epoch)
            }
        })
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Check the request's token, if the publisher requires one.
fn authenticate(s: &Shared, headers: &HeaderMap, now: u64) -> Result<Option<Claims>, Failure> {
    let Some(auth) = &s.auth else {
        return Ok(None);
    };
    let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    auth.verify(header, now)
        .map(Some)
        .map_err(|e| Failure::unauthorized(e.to_string()))
}

/// Mark the token's `jti` used (once the request holds a slot, so a 429 does not burn it).
fn consume(s: &Shared, claims: &Option<Claims>, now: u64) -> Result<(), Failure> {
    match (&s.auth, claims) {
        (Some(auth), Some(c)) => auth
            .consume(c, now)
            .map_err(|e| Failure::unauthorized(e.to_string())),
        _ => Ok(()),
    }
}

pub(crate) fn body_too_large(limit: u64) -> Failure {
    Failure::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "SIZE_EXCEEDED",
        "BODY_TOO_LARGE",
        format!(
            "the body exceeds this publisher's limit of {limit} bytes ({} KiB); store larger \
             blobs with the CLI or a publisher with a larger --max-body-size",
            limit / 1024
        ),
    )
}

/// How much of a refused body is read and discarded, so that a client still sending gets the
/// error answer instead of a reset connection: four times the limit, at least 16 MiB.
pub(crate) fn drain_budget(limit: u64) -> u64 {
    limit.saturating_mul(4).max(16 << 20)
}

/// Read and discard up to `budget` bytes of `body`, for at most [`DRAIN_TIMEOUT`].
pub(crate) async fn drain(mut body: Body, budget: u64) {
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
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, discard).await;
}

/// The body, if it is at most `limit` bytes (413 otherwise, after draining the rest).
async fn read_body(mut body: Body, limit: u64, declared: Option<u64>) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    match floe_http::body::read_into(&mut body, &mut buf, cap).await {
        Ok(()) => Ok(buf),
        Err(ReadBodyError::TooLarge { .. }) => {
            drain(body, drain_budget(limit)).await;
            Err(body_too_large(limit))
        }
        Err(e) => Err(Failure::from(e.into_api())),
    }
}

/// `PUT /v1/blobs`. A request refused before its body was read has the body drained first.
pub async fn put_blob(State(s): State<AppState>, req: Request) -> Result<Response, Failure> {
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let result = store(&s, &parts, &mut body).await;
    let budget = drain_budget(s.options.max_body_bytes());
    // A body declared larger than the budget would be cut off anyway: close at once.
    if result.is_err()
        && declared_length(&parts.headers).is_none_or(|n| n <= budget)
        && let Some(body) = body
    {
        drain(body, budget).await;
    }
    result
}

pub(crate) use floe_http::body::declared_length_in as declared_length;

/// A store request that passed its checks: what to store, for whom, and the write slot.
pub(crate) struct Prepared {
    pub plan: StorePlan,
    pub recipient: Option<Address>,
    pub body: Vec<u8>,
    pub _slot: crate::limit::Slot,
}

/// The checks every store request passes, in the order that costs the client least: query
/// (400), token (401), declared length (413), a slot (429), then the body (413 beyond `limit`)
/// and the token's upload claims.
pub(crate) async fn prepare(
    s: &Shared,
    parts: &Parts,
    body: &mut Option<Body>,
    limit: u64,
) -> Result<Prepared, Failure> {
    let Query(query) = Query::<StoreQuery>::try_from_uri(&parts.uri)
        .map_err(|e| Failure::bad_request("INVALID_QUERY", e.body_text()))?;
    let plan = StorePlan::from_query(&query)?;
    let now = now_secs();
    let claims = authenticate(s, &parts.headers, now)?;
    let declared = declared_length(&parts.headers);
    if declared.is_some_and(|n| n > limit) {
        return Err(body_too_large(limit));
    }
    let slot = s
        .writes
        .enter()
        .await
        .ok_or_else(|| Failure::busy("store"))?;
    consume(s, &claims, now)?;
    let body = match body.take() {
        Some(b) => read_body(b, limit, declared).await?,
        None => Vec::new(),
    };
    let recipient = match (&s.auth, &claims) {
        (Some(auth), Some(c)) => {
            let wants_epochs = c.epochs.is_some() || c.max_epochs.is_some();
            let epochs_ahead = if auth.verifies_upload() && wants_epochs {
                plan.epochs_ahead(s).await?
            } else {
                0
            };
            let upload = Upload {
                epochs_ahead,
                size: body.len() as u64,
                send_object_to: plan.send_object_to,
            };
            auth.check_upload(c, &upload)
                .map_err(|e| Failure::unauthorized(e.to_string()))?
        }
        _ => plan.send_object_to,
    };
    if plan.share && recipient.is_some() {
        return Err(Failure::bad_request(
            "INVALID_ARGUMENT",
            "this upload token sends the blob object to an address, so it cannot be shared",
        ));
    }
    Ok(Prepared {
        plan,
        recipient,
        body,
        _slot: slot,
    })
}

async fn store(s: &Shared, parts: &Parts, body: &mut Option<Body>) -> Result<Response, Failure> {
    let prepared = prepare(s, parts, body, s.options.max_body_bytes()).await?;
    let size = prepared.body.len() as u64;
    let after = AfterStore::of(&prepared);
    let started = Instant::now();
    let stored = s
        .client
        .store(prepared.body, &prepared.plan.options, Arc::new(NoProgress))
        .await;
    let mut outcome = match stored {
        Ok(o) => o,
        Err(e) => {
            s.metrics.store("error", size, started.elapsed());
            return Err(e.into());
        }
    };
    finish(s, &mut outcome, after, size, started).await?;
    Ok(axum::Json(outcome.result).into_response())
}

/// What becomes of a newly created blob object once certified.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AfterStore {
    /// The publisher's wallet keeps it.
    Keep,
    SendTo(Address),
    /// Wrapped into a shared blob that anyone may extend.
    Share,
}

impl AfterStore {
    pub(crate) fn of(p: &Prepared) -> Self {
        match (p.plan.share, p.recipient) {
            (true, _) => AfterStore::Share,
            (false, Some(to)) => AfterStore::SendTo(to),
            (false, None) => AfterStore::Keep,
        }
    }
}

/// After a store: log, send or share the new object, count it, and turn an outcome that stored
/// nothing into its error.
pub(crate) async fn finish(
    s: &Shared,
    outcome: &mut StoreOutcome,
    after: AfterStore,
    size: u64,
    started: Instant,
) -> Result<(), Failure> {
    let t = outcome.timings;
    tracing::info!(
        size,
        total_ms = started.elapsed().as_millis() as u64,
        encode_ms = t.encode.as_millis() as u64,
        register_ms = t.register.as_millis() as u64,
        upload_ms = t.upload.as_millis() as u64,
        certify_ms = t.certify.as_millis() as u64,
        "store finished"
    );
    let label = match &mut outcome.result {
        BlobStoreResult::NewlyCreated {
            blob_object,
            shared_blob_object,
            ..
        } => {
            match after {
                AfterStore::Keep => {}
                AfterStore::SendTo(to) => {
                    send_object(s, blob_object.blob_id, blob_object.id, to).await?;
                }
                AfterStore::Share => {
                    *shared_blob_object = Some(s.client.share_blob(&blob_object.id).await?);
                }
            }
            "newly_created"
        }
        BlobStoreResult::AlreadyCertified { .. } => "already_certified",
        BlobStoreResult::MarkedInvalid { blob_id, .. } => {
            s.metrics.store("error", size, started.elapsed());
            return Err(Failure::new(
                StatusCode::CONFLICT,
                "FAILED_PRECONDITION",
                "BLOB_INVALID",
                format!(
                    "blob {blob_id} was marked invalid (proven inconsistently encoded); it \
                     cannot be stored"
                ),
            ));
        }
        BlobStoreResult::Error {
            failure_phase,
            error_msg,
            ..
        } => {
            s.metrics.store("error", size, started.elapsed());
            return Err(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "INTERNAL",
                format!("storing failed while {failure_phase}: {error_msg}"),
            ));
        }
    };
    s.metrics.store(label, size, started.elapsed());
    Ok(())
}

async fn send_object(
    s: &Shared,
    blob_id: BlobId,
    object: ObjectId,
    to: Address,
) -> Result<(), Failure> {
    s.client.transfer_blob(&object, to).await.map_err(|e| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "TRANSFER_FAILED",
            format!(
                "blob {blob_id} is stored and certified as object {object}, but sending the \
                 object to {to} failed: {e}"
            ),
        )
    })?;
    Ok(())
}

/// The answer of a deletion.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResult {
    pub blob_id: BlobId,
    /// The blob objects deleted now.
    pub deleted_objects: Vec<ObjectId>,
    /// Permanent objects of the publisher that keep the blob alive until they expire.
    pub kept_permanent_objects: Vec<ObjectId>,
    /// The blob's status afterwards: `deleted` once no live registration is left.
    pub blob_status: BlobStatus,
}

fn deletion_allowed(s: &Shared) -> Result<(), Failure> {
    if s.options.enable_delete {
        return Ok(());
    }
    Err(Failure::new(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        "DELETE_DISABLED",
        "this publisher does not delete blobs (start it with --enable-delete)",
    ))
}

async fn delete_objects(
    s: &Shared,
    blob_id: BlobId,
    deletable: Vec<ObjectId>,
    permanent: Vec<ObjectId>,
) -> Result<Response, Failure> {
    for id in &deletable {
        s.client.delete(id).await?;
    }
    let status = s
        .client
        .ledger()
        .blob_status(&blob_id)
        .await
        .map_err(ClientError::from)?
        .status;
    Ok(axum::Json(DeleteResult {
        blob_id,
        deleted_objects: deletable,
        kept_permanent_objects: permanent,
        blob_status: status,
    })
    .into_response())
}

/// `DELETE /v1/blobs/{blob_id}`: every live deletable object of the blob the wallet owns.
pub async fn delete_blob(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let blob_id = parse_blob_id(&id)?;
    let now = now_secs();
    let claims = authenticate(&s, &headers, now)?;
    deletion_allowed(&s)?;
    let _slot = s
        .writes
        .enter()
        .await
        .ok_or_else(|| Failure::busy("delete"))?;
    consume(&s, &claims, now)?;
    let owned = s.client.owned_objects_of(&blob_id).await?;
    if owned.is_empty() {
        return Err(Failure::not_found(
            "NOT_OWNED",
            format!(
                "this publisher owns no live blob object of {blob_id} (it was never stored \
                 here, was sent to another address, or was already deleted or expired)"
            ),
        ));
    }
    let (deletable, permanent): (Vec<_>, Vec<_>) = owned.iter().partition(|b| b.deletable);
    let permanent: Vec<ObjectId> = permanent.iter().map(|b| b.id).collect();
    if deletable.is_empty() {
        return Err(Failure::new(
            StatusCode::CONFLICT,
            "FAILED_PRECONDITION",
            "NOT_DELETABLE",
            format!(
                "every blob object of {blob_id} this publisher owns is permanent and cannot be \
                 deleted before it expires: {}",
                permanent
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let deletable = deletable.iter().map(|b| b.id).collect();
    delete_objects(&s, blob_id, deletable, permanent).await
}

/// `DELETE /v1/blobs/by-object-id/{object_id}`: one deletable object the wallet owns.
pub async fn delete_by_object_id(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let object_id = parse_object_id(&id)?;
    let now = now_secs();
    let claims = authenticate(&s, &headers, now)?;
    deletion_allowed(&s)?;
    let _slot = s
        .writes
        .enter()
        .await
        .ok_or_else(|| Failure::busy("delete"))?;
    consume(&s, &claims, now)?;
    let blob = s.client.owned_blob(&object_id).await?;
    let epoch = s.client.system().await?.epoch;
    if !blob.is_live(epoch) {
        let why = if blob.deleted {
            "was already deleted"
        } else {
            "has expired"
        };
        return Err(Failure::not_found(
            "BLOB_NOT_FOUND",
            format!("blob object {object_id} {why}"),
        ));
    }
    if !blob.deletable {
        return Err(Failure::new(
            StatusCode::CONFLICT,
            "FAILED_PRECONDITION",
            "NOT_DELETABLE",
            format!(
                "blob object {object_id} is permanent and cannot be deleted before it expires \
                 at epoch {}",
                blob.end_epoch()
            ),
        ));
    }
    delete_objects(&s, blob.blob_id, vec![object_id], Vec::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(q: StoreQuery) -> Result<StorePlan, Failure> {
        StorePlan::from_query(&q)
    }

    #[test]
    fn store_queries_map_to_options() {
        let p = plan(StoreQuery::default()).unwrap();
        assert_eq!(p.options.lifetime, Lifetime::Epochs(1));
        assert!(p.options.deletable && !p.options.force);
        let p = plan(StoreQuery {
            epochs: Some("max".into()),
            permanent: Some(true),
            force: Some(true),
            ..StoreQuery::default()
        })
        .unwrap();
        assert_eq!(p.options.lifetime, Lifetime::Max);
        assert!(!p.options.deletable && p.options.force);
        let p = plan(StoreQuery {
            end_epoch: Some(9),
            deletable: Some(true),
            send_object_to: Some(format!("0x{}", "ab".repeat(32))),
            ..StoreQuery::default()
        })
        .unwrap();
        assert_eq!(p.options.lifetime, Lifetime::EndEpoch(9));
        assert!(p.send_object_to.is_some());
    }

    #[test]
    fn contradictory_or_unsupported_queries_are_refused() {
        for q in [
            StoreQuery {
                epochs: Some("2".into()),
                end_epoch: Some(4),
                ..StoreQuery::default()
            },
            StoreQuery {
                epochs: Some("forever".into()),
                ..StoreQuery::default()
            },
            StoreQuery {
                permanent: Some(true),
                deletable: Some(true),
                ..StoreQuery::default()
            },
            StoreQuery {
                share: Some(true),
                send_object_to: Some(format!("0x{}", "ab".repeat(32))),
                ..StoreQuery::default()
            },
            StoreQuery {
                send_object_to: Some("0x12".into()),
                ..StoreQuery::default()
            },
            StoreQuery {
                encoding_type: Some("RaptorQ".into()),
                ..StoreQuery::default()
            },
        ] {
            let text = format!("{q:?}");
            assert_eq!(plan(q).unwrap_err().status(), 400, "{text}");
        }
    }
}
