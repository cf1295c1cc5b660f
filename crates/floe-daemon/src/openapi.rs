//! The OpenAPI 3.1 document of the daemon, served at `GET /v1/api`. It lists the routes of the
//! mode being served.

use serde_json::{Map, Value, json};

use crate::options::{DaemonOptions, Mode};

fn err(description: &str) -> Value {
    json!({"description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}})
}

fn bytes(description: &str) -> Value {
    json!({"description": description,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}})
}

fn blob_id_param() -> Value {
    json!({"name": "blob_id", "in": "path", "required": true,
        "description": "blob ID: base64url (43 characters), 0x hex or decimal",
        "schema": {"type": "string"}})
}

fn object_id_param() -> Value {
    json!({"name": "object_id", "in": "path", "required": true,
        "description": "blob object ID: 0x and 1 to 64 hex digits (short IDs are left-padded)",
        "schema": {"type": "string"}})
}

fn bool_query(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
        "schema": {"type": "boolean"}})
}

fn consistency_params() -> Vec<Value> {
    vec![
        bool_query(
            "strict_consistency_check",
            "re-encode the whole blob and compare blob IDs (whole reads only)",
        ),
        bool_query(
            "skip_consistency_check",
            "skip the consistency check beyond per-sliver verification; excludes strict_consistency_check",
        ),
    ]
}

fn read_responses(ranged: bool) -> Value {
    let mut r = json!({
        "200": bytes("the blob's bytes; ETag is the quoted blob ID, Cache-Control public for a day"),
        "400": err("bad blob or object ID, or both consistency flags"),
        "403": err("BLOB_TOO_LARGE: more bytes than this aggregator's --max-blob-size"),
        "404": err("BLOB_NOT_FOUND (never stored, deleted, expired: the message says which), BLOB_NOT_CERTIFIED (upload unfinished), BLOB_INVALID (inconsistently encoded; never any data)"),
        "429": err("too many reads running and waiting"),
        "503": err("BLOB_UNAVAILABLE: not enough storage nodes answered; retry"),
    });
    if ranged {
        r["206"] = bytes("the single range the Range header asks for, with Content-Range");
        r["416"] =
            err("INVALID_BYTE_RANGE: the range starts past the end; Content-Range: bytes */size");
    }
    r
}

fn range_header() -> Value {
    json!({"name": "Range", "in": "header", "required": false,
        "description": "one range: bytes=a-b, bytes=a- or bytes=-n. Several ranges, other units and malformed values are ignored (the whole blob is served)",
        "schema": {"type": "string"}})
}

fn aggregator_paths(paths: &mut Map<String, Value>) {
    let mut get_params = vec![blob_id_param()];
    get_params.extend(consistency_params());
    get_params.push(range_header());
    paths.insert(
        "/v1/blobs/{blob_id}".into(),
        json!({"get": {
        "operationId": "get_blob",
        "summary": "Read a blob, or one byte range of it",
        "parameters": get_params,
        "responses": read_responses(true)}}),
    );
    paths.insert("/v1/blobs/{blob_id}/byte-range".into(), json!({"get": {
        "operationId": "get_blob_byte_range",
        "summary": "Read `length` bytes from `start` (only the slivers holding them are fetched)",
        "parameters": [blob_id_param(),
            {"name": "start", "in": "query", "required": true, "schema": {"type": "integer", "minimum": 0}},
            {"name": "length", "in": "query", "required": true, "schema": {"type": "integer", "minimum": 1}}],
        "responses": {
            "200": bytes("the bytes"),
            "400": err("INVALID_BYTE_RANGE: missing, unknown or zero parameters, start + length overflows, or the range is past the end of the blob"),
            "403": err("BLOB_TOO_LARGE: more bytes than --max-blob-size"),
            "404": err("as for GET /v1/blobs/{blob_id}"),
            "503": err("BLOB_UNAVAILABLE")}}}));
    paths.insert("/v1alpha/blobs/{blob_id}/stream".into(), json!({"get": {
        "operationId": "get_blob_stream",
        "summary": "Stream the blob in order, row by row as its systematic slivers arrive (each verified; the whole blob's consistency is not checked)",
        "parameters": [blob_id_param()],
        "responses": {
            "200": bytes("the bytes, with Content-Length"),
            "400": err("INVALID_BLOB_ID or INVALID_QUERY"),
            "403": err("BLOB_TOO_LARGE: more bytes than --max-blob-size"),
            "404": err("as for GET /v1/blobs/{blob_id}"),
            "503": err("BLOB_UNAVAILABLE")}}}));
    let concat_errors = json!({
        "400": err("INVALID_ID, INVALID_QUERY, INVALID_BODY, TOO_MANY_IDS or INVALID_CONSISTENCY_OPTIONS"),
        "403": err("BLOB_TOO_LARGE: one blob is larger than --max-blob-size"),
        "404": err("one blob or blob object does not exist or is not certified"),
        "503": err("BLOB_UNAVAILABLE")});
    let mut concat_get = concat_errors.clone();
    concat_get["200"] = bytes("the blobs concatenated in the order given");
    let mut concat_post = concat_errors;
    concat_post["200"] = bytes("the blobs concatenated in the order given");
    paths.insert("/v1alpha/blobs/concat".into(), json!({
        "get": {
            "operationId": "get_blobs_concat",
            "summary": "Concatenate blobs (blob IDs or 0x… blob object IDs, comma-separated in ids)",
            "parameters": [
                {"name": "ids", "in": "query", "required": true, "schema": {"type": "string"}},
                {"name": "strict_consistency_check", "in": "query", "schema": {"type": "boolean"}},
                {"name": "skip_consistency_check", "in": "query", "schema": {"type": "boolean"}}],
            "responses": concat_get},
        "post": {
            "operationId": "post_blobs_concat",
            "summary": "Concatenate blobs named in a JSON body",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["ids"], "additionalProperties": false,
                "properties": {"ids": {"type": "array", "items": {"type": "string"}},
                    "strict_consistency_check": {"type": ["boolean", "null"]},
                    "skip_consistency_check": {"type": ["boolean", "null"]}}}}}},
            "responses": concat_post}}));
    let mut object_params = vec![object_id_param()];
    object_params.extend(consistency_params());
    object_params.push(range_header());
    paths.insert(
        "/v1/blobs/by-object-id/{object_id}".into(),
        json!({"get": {
        "operationId": "get_blob_by_object_id",
        "summary": "Read the blob a blob object registers (404 once the object is deleted)",
        "parameters": object_params,
        "responses": read_responses(true)}}),
    );
}

fn merge(into: &mut Value, from: &Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
}

fn publisher_paths(paths: &mut Map<String, Value>, options: &DaemonOptions) {
    let auth = options.jwt_decode_secret.is_some();
    let mut put = json!({
        "operationId": "put_blob",
        "summary": "Store the body as a blob until its point of availability",
        "description": format!(
            "The body is the blob (at most {} KiB). Stores run {} at a time with {} more waiting; beyond that, 429.",
            options.max_body_size, options.publisher_max_concurrent_requests, options.publisher_max_buffer_size),
        "parameters": store_parameters(),
        "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": {
            "200": {"description": "stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BlobStoreResult"}}}},
            "400": err("malformed or contradictory query, or a lifetime outside the network's limits"),
            "401": err("missing, invalid, expired or replayed token, or an upload its claims do not allow"),
            "409": err("BLOB_INVALID: the blob ID was marked invalid, or LEDGER_REJECTED"),
            "413": err("BODY_TOO_LARGE (this publisher's limit) or BLOB_TOO_LARGE (the network's)"),
            "429": err("too many stores running and waiting"),
            "504": err("INSUFFICIENT_CONFIRMATIONS: not enough storage nodes confirmed; the message lists their errors")
        }
    });
    if auth {
        put["security"] = json!([{"bearer": []}]);
    }
    paths.insert("/v1/blobs".into(), json!({"put": put}));
    let delete_responses = json!({
        "200": {"description": "deleted", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DeleteResult"}}}},
        "401": err("missing or invalid token"),
        "403": err("DELETE_DISABLED: started without --enable-delete"),
        "404": err("NOT_OWNED: the publisher owns no live object of it; BLOB_NOT_FOUND: deleted or expired"),
        "409": err("NOT_DELETABLE: only permanent objects")
    });
    let delete = |id: &str, params: Value, summary: &str| {
        let mut d = json!({"operationId": id, "summary": summary, "parameters": params,
            "responses": delete_responses.clone()});
        if auth {
            d["security"] = json!([{"bearer": []}]);
        }
        json!({"delete": d})
    };
    let by_id = delete(
        "delete_blob",
        json!([blob_id_param()]),
        "Delete every live deletable object of the blob that the publisher's wallet owns",
    );
    merge(
        paths
            .entry("/v1/blobs/{blob_id}")
            .or_insert_with(|| json!({})),
        &by_id,
    );
    let by_object = delete(
        "delete_blob_by_object_id",
        json!([object_id_param()]),
        "Delete one deletable blob object the publisher's wallet owns",
    );
    merge(
        paths
            .entry("/v1/blobs/by-object-id/{object_id}")
            .or_insert_with(|| json!({})),
        &by_object,
    );
}

fn quilt_read_paths(paths: &mut Map<String, Value>) {
    let patch_responses = json!({
        "200": bytes("the patch's bytes, read from its columns only; X-Quilt-Patch-Identifier names it, ETag is the quoted quilt ID, allowed tags are headers"),
        "400": err("INVALID_QUILT_PATCH_ID, INVALID_BLOB_ID, or NOT_A_QUILT"),
        "404": err("QUILT_PATCH_NOT_FOUND, or the quilt blob's BLOB_NOT_FOUND / BLOB_NOT_CERTIFIED"),
        "429": err("too many reads running and waiting"),
        "503": err("BLOB_UNAVAILABLE: not enough storage nodes answered; retry")
    });
    let string_param = |name: &str, description: &str| {
        json!({"name": name, "in": "path",
        "required": true, "description": description, "schema": {"type": "string"}})
    };
    paths.insert("/v1/blobs/by-quilt-patch-id/{quilt_patch_id}".into(), json!({"get": {
        "operationId": "get_patch_by_quilt_patch_id",
        "summary": "Read one quilt patch by its patch ID (no index is read)",
        "parameters": [string_param("quilt_patch_id", "quilt patch ID: 37 bytes in URL-safe base64 without padding")],
        "responses": patch_responses.clone()}}));
    paths.insert("/v1/blobs/by-quilt-id/{quilt_id}/{identifier}".into(), json!({"get": {
        "operationId": "get_patch_by_quilt_id_and_identifier",
        "summary": "Read one quilt patch by the quilt ID and its identifier",
        "parameters": [string_param("quilt_id", "the quilt's blob ID"), string_param("identifier", "the patch's identifier")],
        "responses": patch_responses}}));
    paths.insert("/v1/quilts/{quilt_id}/patches".into(), json!({"get": {
        "operationId": "list_patches_in_quilt",
        "summary": "The patches of a quilt: identifier, patch_id and tags",
        "parameters": [string_param("quilt_id", "the quilt's blob ID")],
        "responses": {
            "200": {"description": "the patch list", "content": {"application/json": {"schema": {"type": "array"}}}},
            "400": err("INVALID_BLOB_ID or NOT_A_QUILT"),
            "404": err("BLOB_NOT_FOUND or BLOB_NOT_CERTIFIED")}}}));
}

fn quilt_write_paths(paths: &mut Map<String, Value>, options: &DaemonOptions) {
    let mut put = paths["/v1/blobs"]["put"].clone();
    put["operationId"] = json!("put_quilt");
    put["summary"] = json!("Store many files as one quilt blob (Walrus QuiltV1)");
    put["description"] = json!(format!(
        "multipart/form-data: each field is a file whose field name is its identifier; the optional `_metadata` field is a JSON array [{{\"identifier\", \"tags\": {{…}}}}]. At most {} KiB.",
        options.max_quilt_body_size
    ));
    if let Some(params) = put["parameters"].as_array_mut() {
        params.push(json!({"name": "quilt_version", "in": "query", "required": false, "description": "V1 (the only version)", "schema": {"type": "string"}}));
    }
    put["requestBody"] = json!({"required": true, "content": {"multipart/form-data": {"schema": {"type": "object"}}}});
    put["responses"]["200"] = json!({"description": "stored: {blobStoreResult, storedQuiltBlobs: [{identifier, quiltPatchId, range}]}", "content": {"application/json": {"schema": {"type": "object"}}}});
    put["responses"]["400"] = err(
        "malformed query or body: INVALID_MULTIPART, INVALID_METADATA, NO_FILES, DUPLICATE_IDENTIFIER, UNKNOWN_IDENTIFIER, INVALID_IDENTIFIER, TOO_MANY_PATCHES, QUILT_TOO_LARGE",
    );
    paths.insert("/v1/quilts".into(), json!({"put": put}));
}

/// The document for `options.mode`.
pub fn spec(options: &DaemonOptions) -> Value {
    let mut paths = Map::new();
    paths.insert("/status".into(), json!({"get": {"summary": "Liveness", "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}}}}));
    paths.insert("/v1/api".into(), json!({"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI document"}}}}));
    paths.insert("/metrics".into(), json!({"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition", "content": {"text/plain": {}}}}}}));
    // Aggregator first: the publisher's DELETEs join the GETs of the same paths.
    if options.mode.reads() {
        aggregator_paths(&mut paths);
        quilt_read_paths(&mut paths);
    }
    if options.mode.writes() {
        publisher_paths(&mut paths, options);
        quilt_write_paths(&mut paths, options);
    }
    let title = match options.mode {
        Mode::Aggregator => "Floe aggregator",
        Mode::Publisher => "Floe publisher",
        Mode::Daemon => "Floe daemon (aggregator and publisher)",
    };
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": env!("CARGO_PKG_VERSION"),
            "description": "Walrus-compatible HTTP API over a Floe network. Errors are {\"error\":{\"status\",\"code\",\"message\",\"details\":[{\"@type\":\"ErrorInfo\",\"reason\",\"domain\":\"daemon.walrus.space\",\"metadata\"}]}} and never cacheable."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Status": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                    "required": ["status", "code", "message", "details"],
                    "properties": {"status": {"type": "string"}, "code": {"type": "integer"}, "message": {"type": "string"},
                        "details": {"type": "array", "items": {"type": "object", "properties": {
                            "@type": {"type": "string"}, "reason": {"type": "string"}, "domain": {"type": "string"},
                            "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}}},
                "BlobObject": {"type": "object", "required": ["id", "registeredEpoch", "blobId", "size", "encodingType", "storage", "deletable"],
                    "properties": {"id": {"type": "string"}, "registeredEpoch": {"type": "integer"}, "blobId": {"type": "string"},
                        "size": {"type": "integer"}, "encodingType": {"type": "string", "enum": ["RS2"]},
                        "certifiedEpoch": {"type": ["integer", "null"]}, "deletable": {"type": "boolean"},
                        "storage": {"type": "object", "properties": {"id": {"type": "string"}, "startEpoch": {"type": "integer"},
                            "endEpoch": {"type": "integer"}, "storageSize": {"type": "integer"}}}}},
                "BlobStoreResult": {"oneOf": [
                    {"type": "object", "required": ["newlyCreated"], "properties": {"newlyCreated": {"type": "object",
                        "required": ["blobObject", "resourceOperation", "cost"],
                        "properties": {"blobObject": {"$ref": "#/components/schemas/BlobObject"},
                            "resourceOperation": {"type": "object", "description": "{registerFromScratch:{encodedLength,epochsAhead}} or {reuseRegistration:{encodedLength}}"},
                            "cost": {"type": "integer", "description": "always 0: Floe has no storage token"},
                            "sharedBlobObject": {"type": "string", "description": "the shared blob wrapping the new object (with share=true)"}}}}},
                    {"type": "object", "required": ["alreadyCertified"], "properties": {"alreadyCertified": {"type": "object",
                        "required": ["blobId", "endEpoch"],
                        "description": "with either event {txDigest, eventSeq} or object (an owned blob object ID)",
                        "properties": {"blobId": {"type": "string"}, "endEpoch": {"type": "integer"},
                            "event": {"type": "object", "properties": {"txDigest": {"type": "string"}, "eventSeq": {"type": "string"}}},
                            "object": {"type": "string"}}}}}
                ]},
                "DeleteResult": {"type": "object", "required": ["blobId", "deletedObjects", "keptPermanentObjects", "blobStatus"],
                    "properties": {"blobId": {"type": "string"},
                        "deletedObjects": {"type": "array", "items": {"type": "string"}},
                        "keptPermanentObjects": {"type": "array", "items": {"type": "string"}},
                        "blobStatus": {"type": "object", "description": "the ledger's status of the blob afterwards, e.g. {\"status\":\"deleted\",\"event\":12}"}}}
            }
        }
    })
}

/// The query parameters of `PUT /v1/blobs`.
fn store_parameters() -> Value {
    json!([
        {"name": "epochs", "in": "query", "required": false, "description": "epochs ahead to store for (default 1), or `max`", "schema": {"type": "string"}},
        {"name": "end_epoch", "in": "query", "required": false, "description": "store until this epoch (exclusive); excludes epochs", "schema": {"type": "integer", "minimum": 1}},
        bool_query("permanent", "create a permanent blob (blobs are deletable by default)"),
        {"name": "deletable", "in": "query", "required": false, "deprecated": true, "description": "no effect: deletable is the default", "schema": {"type": "boolean"}},
        bool_query("force", "store even if the blob is already certified long enough"),
        {"name": "send_object_to", "in": "query", "required": false, "description": "transfer the new blob object to this address (0x and 64 hex digits)", "schema": {"type": "string"}},
        bool_query("share", "wrap the new blob object into a shared blob (named in `sharedBlobObject`) that anyone may extend and nobody may delete; excludes send_object_to"),
        {"name": "encoding_type", "in": "query", "required": false, "schema": {"type": "string", "enum": ["RS2"]}}
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_documents_its_routes_only() {
        let spec_of = |mode| {
            spec(&DaemonOptions {
                mode,
                ..DaemonOptions::default()
            })
        };
        let daemon = spec_of(Mode::Daemon);
        let paths = daemon["paths"].as_object().unwrap();
        assert!(paths["/v1/blobs"]["put"].is_object());
        assert!(paths["/v1/blobs/{blob_id}"]["get"].is_object());
        assert!(paths["/v1/blobs/{blob_id}"]["delete"].is_object());
        assert!(paths["/v1/blobs/by-object-id/{object_id}"]["get"].is_object());
        assert!(paths["/v1/blobs/by-object-id/{object_id}"]["delete"].is_object());
        let agg = spec_of(Mode::Aggregator);
        assert!(agg["paths"].get("/v1/blobs").is_none());
        assert!(agg["paths"]["/v1/blobs/{blob_id}"].get("delete").is_none());
        let publisher = spec_of(Mode::Publisher);
        assert!(
            publisher["paths"]["/v1/blobs/{blob_id}"]
                .get("get")
                .is_none()
        );
        assert_eq!(daemon["openapi"], "3.1.0");
    }
}
