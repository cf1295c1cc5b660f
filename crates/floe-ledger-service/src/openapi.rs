//! The OpenAPI 3.1 document of the ledger API, served at `GET /v1/api`.

use serde_json::{Value, json};

fn envelope(data: Value) -> Value {
    json!({"type": "object", "required": ["success"], "properties": {"success": {
        "type": "object", "required": ["code", "data"],
        "properties": {"code": {"type": "integer"}, "data": data}}}})
}

fn ok(description: &str, data: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": envelope(data)}}})
}

fn err(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
}

/// The document.
pub fn spec() -> Value {
    let any = json!({"type": "object"});
    let mut doc = core_spec(&any);
    doc["paths"]
        .as_object_mut()
        .expect("paths is an object")
        .extend(challenge_paths(&any));
    doc
}

/// Everything but the challenge routes.
fn core_spec(any: &Value) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Floe ledger",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The control plane of Floe: a deterministic state machine over a durable log. Every answer reflects only durable entries."
        },
        "paths": {
            "/v1/transactions": {"post": {
                "summary": "Submit a signed transaction; answered once it is durable",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SignedTransaction"}}}},
                "responses": {
                    "200": ok("accepted and durable", json!({"type": "object", "required": ["entryIndex", "digest", "events"],
                        "properties": {"entryIndex": {"type": "integer"}, "digest": {"type": "string"}, "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}}})),
                    "400": err("malformed or rejected (reason says which rule)"),
                    "401": err("bad signature"), "403": err("not the owner"), "404": err("no such object"),
                    "409": err("wrong sequence number"), "413": err("body too large"), "429": err("busy, retry"),
                    "503": err("log failed")
                }}},
            "/v1/system": {"get": {"summary": "Epoch, committee with shard assignment, parameters, capacity",
                "responses": {"200": ok("system information", any.clone())}}},
            "/v1/blobs/{blob_id}": {"get": {"summary": "The verified status of a blob ID and the event that made it so",
                "parameters": [path_param("blob_id", "base64url, hex or decimal blob ID")],
                "responses": {"200": ok("status", any.clone()), "400": err("bad blob ID")}}},
            "/v1/blobs/{blob_id}/certificate": {"get": {"summary": "Floe: the certificate of the blob's first certification (epoch, event index, aggregate signature, signer bitmap, signed confirmation), as the ledger verified it",
                "parameters": [path_param("blob_id", "base64url, hex or decimal blob ID")],
                "responses": {"200": ok("certificate record", any.clone()), "400": err("bad blob ID"), "404": err("never certified")}}},
            "/v1/objects/{object_id}": {"get": {"summary": "A blob object, storage resource or storage node",
                "parameters": [path_param("object_id", "0x-prefixed hex object ID")],
                "responses": {"200": ok("the object", any.clone()), "400": err("bad object ID"), "404": err("no such object")}}},
            "/v1/accounts/{address}": {"get": {"summary": "An account's next sequence number, blobs, unused storage and the storage nodes it operates",
                "parameters": [path_param("address", "0x-prefixed hex address")],
                "responses": {"200": ok("the account", any.clone()), "400": err("bad address")}}},
            "/v1/events": {"get": {"summary": "Durable events from a cursor (long-poll with waitMs)",
                "parameters": [
                    {"name": "cursor", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    {"name": "waitMs", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 30000}}],
                "responses": {"200": ok("a page of events", json!({"type": "object", "required": ["events", "nextCursor"],
                    "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}, "nextCursor": {"type": "integer"}}})),
                    "400": err("bad query"),
                    "503": err("the history of the snapshot the ledger started from cannot be read: restart it")}}},
            "/v1/entries/{index}": {"get": {"summary": "The running digest after a durable log entry",
                "parameters": [{"name": "index", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}],
                "responses": {"200": ok("the digest", any.clone()), "404": err("no such durable entry")}}},
            "/v1/health": {"get": {"summary": "Liveness, progress, digest and state hash",
                "responses": {"200": ok("health", any.clone())}}},
            "/v1/api": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI document"}}}}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                "required": ["status", "code", "message", "details"],
                "properties": {"status": {"type": "string"}, "code": {"type": "integer"}, "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object", "properties": {
                        "@type": {"type": "string"}, "reason": {"type": "string"}, "domain": {"type": "string"}}}}}}}},
            "SignedTransaction": {"type": "object", "required": ["tx", "signature"], "additionalProperties": false,
                "properties": {
                    "tx": {"type": "object", "required": ["sender", "sequence", "kind"], "additionalProperties": false,
                        "properties": {"sender": {"type": "string", "description": "hex Ed25519 public key"},
                            "sequence": {"type": "integer", "minimum": 0},
                            "kind": {"type": "object", "description": "one of reserveSpace, registerBlob, reserveAndRegister, certifyBlob, invalidateBlob, deleteBlob, extendBlob, epochSyncDone, transferBlob, registerNode, deregisterNode, setNodeWeight, setBlobAttributes, removeBlobAttributes"}}},
                    "signature": {"type": "string", "description": "hex Ed25519 signature over \"floe-ledger-tx-v1\" ‖ BCS(tx)"}}},
            "Event": {"type": "object", "required": ["index", "entryIndex", "epoch", "kind", "txDigest"],
                "properties": {"index": {"type": "integer"}, "entryIndex": {"type": "integer"}, "epoch": {"type": "integer"}, "kind": {"type": "object"},
                    "txDigest": {"type": "string", "description": "base58 of the 32-byte digest of the entry that emitted the event"}}}
        }}
    })
}

/// The storage-challenge routes (Floe's own).
fn challenge_paths(any: &Value) -> serde_json::Map<String, Value> {
    let paths = json!({
            "/v1/challenges": {"get": {"summary": "Floe: storage-challenge tallies per node for the kept epochs (challenged, passed, failed, unanswered; duties, issued, not issued)",
                "responses": {"200": ok("challenge summary", any.clone())}}},
            "/v1/challenges/{epoch}": {"get": {"summary": "Floe: one epoch's storage challenges: seed, samples per shard, tallies, failures and the challengers' signed reports",
                "parameters": [{"name": "epoch", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}],
                "responses": {"200": ok("the epoch's challenges", any.clone()), "400": err("bad epoch"), "404": err("no challenges recorded for that epoch")}}},
    });
    match paths {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}
