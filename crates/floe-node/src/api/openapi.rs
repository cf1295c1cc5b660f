//! The node's OpenAPI document (served at `GET /v1/api`).

use serde_json::{Value, json};

fn op(summary: &str, params: &[&str], responses: Value) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    json!({"summary": summary, "parameters": parameters, "responses": responses})
}

pub fn spec() -> Value {
    let bcs = |d: &str| json!({"description": d, "content": {"application/octet-stream": {}}});
    let js = |d: &str| json!({"description": d, "content": {"application/json": {}}});
    let err = json!({"description": "error envelope with status, code, message and details[0].reason", "content": {"application/json": {}}});
    let decoding_symbols = json!({
        "summary": "Decoding symbols without proofs, per target sliver (BCS BTreeMap<u16 SliverIndex, Vec<EitherDecodingSymbol>>): for each target, the symbol at its index of every orthogonal sliver this node stores. Verify what you rebuild against the metadata.",
        "parameters": [
            {"name": "blob_id", "in": "path", "required": true, "schema": {"type": "string"}},
            {"name": "targetSlivers", "in": "query", "required": true, "description": "target sliver index on the target axis; repeatable, at most 100",
                "schema": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 65535}, "maxItems": 100},
                "style": "form", "explode": true},
            {"name": "targetType", "in": "query", "required": true, "schema": {"type": "string", "enum": ["primary", "secondary"]}}
        ],
        "responses": {
            "200": bcs("symbols per target sliver"),
            "400": {"description": "NO_TARGET_SLIVERS_SPECIFIED, TOO_MANY_TARGET_SLIVERS, INDEX_OUT_OF_RANGE, INVALID_FILTER, NOT_REGISTERED or INVALID_BLOB", "content": {"application/json": {}}},
            "503": {"description": "UNAVAILABLE: too many concurrent symbol requests", "content": {"application/json": {}}}
        }
    });
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Floe storage node", "version": env!("CARGO_PKG_VERSION"),
            "description": "Walrus-compatible storage node API. Binary bodies are BCS; JSON answers use {success:{code,data}} / {error:{status,code,message,details:[{@type,reason,domain:storage.walrus.space,metadata}]}}. Unknown query parameters get 400; bodies declared over the limit 413 at once, bodies that stop arriving 408. CORS allows any origin, method and header."},
        "paths": {
            "/v1/blobs/{blob_id}/metadata": {
                "get": op("Blob metadata (BCS BlobMetadataWithId)", &["blob_id"], json!({"200": bcs("metadata"), "404": err})),
                "put": op("Store metadata (BCS BlobMetadata); ?pending=true buffers before registration", &["blob_id"], json!({"201": js("stored"), "202": js("buffered"), "200": js("already stored"), "400": err}))},
            "/v1/blobs/{blob_id}/metadata/status": {"get": op("nonexistent | buffered | stored", &["blob_id"], json!({"200": js("status")}))},
            "/v1/blobs/{blob_id}/slivers": {"put": op("Floe: every sliver pair this node holds in one request (BCS SliverBatch)", &["blob_id"], json!({"201": js("stored"), "400": err}))},
            "/v1/blobs/{blob_id}/slivers/{sliver_pair_index}/{sliver_type}": {
                "get": op("A sliver (BCS SliverData)", &["blob_id", "sliver_pair_index", "sliver_type"], json!({"200": bcs("sliver"), "404": err})),
                "put": op("Store a sliver (BCS SliverData)", &["blob_id", "sliver_pair_index", "sliver_type"], json!({"201": js("stored"), "202": js("buffered"), "200": js("already stored"), "400": err}))},
            "/v1/blobs/{blob_id}/slivers/{sliver_pair_index}/{sliver_type}/status": {"get": op("nonexistent | buffered | stored", &["blob_id", "sliver_pair_index", "sliver_type"], json!({"200": js("status")}))},
            "/v1/blobs/{blob_id}/confirmation/permanent": {"get": op("Signed storage confirmation (permanent); ?wait_for_registration=true[&wait_millis=N] waits (bounded by the node's confirmation_long_poll_max_millis) for the registration", &["blob_id"], json!({"200": js("{signed:{serializedMessage,signature}}"), "400": err, "503": err}))},
            "/v1/blobs/{blob_id}/confirmation/deletable/{object_id}": {"get": op("Signed storage confirmation bound to a deletable object; the same long poll", &["blob_id", "object_id"], json!({"200": js("signed confirmation"), "400": err, "503": err}))},
            "/v1/blobs/{blob_id}/recoverySymbols": {"get": op("Recovery symbols with proofs (BCS Vec<GeneralRecoverySymbol>); ?id=R-C (repeatable; optional proofAxis=primary|secondary picks the source sliver's axis) or ?targetSliver=&targetType=", &["blob_id"], json!({"200": bcs("symbols"), "400": err}))},
            "/v1/blobs/{blob_id}/decodingSymbols": {"get": decoding_symbols},
            "/v1/blobs/{blob_id}/inconsistencyProof/{sliver_type}": {"post": op("Verify an inconsistency proof (BCS) and attest the blob invalid", &["blob_id", "sliver_type"], json!({"200": js("signed InvalidBlobIdMsg"), "400": err}))},
            "/v1/blobs/{blob_id}/status": {"get": op("The blob's status as seen by this node", &["blob_id"], json!({"200": js("BlobStatus")}))},
            "/v1/blobs/{blob_id}/audit": {"post": op("Floe: possession audit of one shard. Body: BCS AuditRequest::V1 {blob ID (the path's), shard u16, nonce [u8; 32], samples u16 (1..=32 per axis)}. Answer: BCS SignedMessage over intent 4 (AuditAnswer::V1 {node key, blob ID, shard, nonce, samples, Samples{primary, secondary: Vec<GeneralRecoverySymbol>} | Refused(reason)})", &["blob_id"], json!({"200": bcs("SignedMessage"), "400": err, "503": err}))},
            "/v1/migrate/sync_shard": {"post": {
                "summary": "Floe: a batch of a shard's slivers for its new owner during an epoch change. The body is a JSON SignedMessage over a SyncShardRequest (intent 3, BCS: shard index u16, sliver type u8 (primary 0, secondary 1), starting blob ID, sliver count u64, epoch u32) for the current epoch, signed with the protocol key of the shard's owner in the ledger's current committee. The answer is BCS SyncShardResponse {version: 1, slivers: Vec<(BlobId, SliverData)> in blob-ID order from startingBlobId inclusive, at most 256 and 16 MiB, done: bool}.",
                "requestBody": {"required": true, "content": {"application/json": {}}},
                "responses": {
                    "200": bcs("SyncShardResponse"),
                    "400": {"description": "INVALID_BODY, or WRONG_EPOCH when the request is for another epoch than this node's", "content": {"application/json": {}}},
                    "403": {"description": "NOT_SHARD_OWNER: the signature is not by the shard's owner in the current committee", "content": {"application/json": {}}},
                    "404": {"description": "SHARD_NOT_HELD: this node neither owns the shard nor keeps it read-only", "content": {"application/json": {}}}
                }}},
            "/v1/health": {"get": op("ServiceHealthInfo (?detailed=true adds shardDetail {owned, other} with each shard's status: ready, inTransfer, inRecovery, readOnly or unknown)", &[], json!({"200": js("health"), "400": err}))},
            "/metrics": {"get": op("Prometheus metrics", &[], json!({"200": {"description": "text exposition"}}))},
            "/v1/api": {"get": op("This document", &[], json!({"200": js("OpenAPI")}))}
        }
    })
}
