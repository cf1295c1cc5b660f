//! Every route answers in the success envelope: one ledger, a blob registered, certified and
//! looked up every way, storage, nodes, accounts, entries and the OpenAPI document.

use super::*;

/// Every success route on one server, as named steps: health, system, blobs through
/// registration and certification, objects, accounts, entries and the OpenAPI document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_with_the_success_envelope() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let alice = AccountKey::from_seed(&seed("alice", 0));

    health_reports_an_empty_ledger(&server, &net).await;
    let members = system_reports_the_parameters_and_the_committee(&server, &net).await;
    let blob = an_unregistered_blob_is_nonexistent(&server).await;
    let registered = registering_answers_with_the_entry_and_its_event(&server, &alice, &blob).await;
    the_registered_blob_is_found_by_every_id_form(&server, &blob, &registered).await;
    let certify_digest =
        a_quorum_certificate_certifies_the_blob(&server, &net, &alice, &blob, &registered).await;
    the_blob_object_is_served_by_its_id(&server, &alice, &blob, registered.object).await;
    let reserved = reserved_storage_is_an_object(&server, &alice).await;
    nodes_are_objects_and_a_missing_object_is_not_found(&server, &members[0]).await;
    accounts_list_their_blobs_storage_and_nodes(&server, &alice, registered.object, &reserved)
        .await;
    entries_carry_the_digests_the_submissions_returned(
        &server,
        &registered,
        &certify_digest,
        &reserved,
    )
    .await;
    health_counts_the_three_entries(&server, &reserved).await;
    the_openapi_document_names_every_route(&server).await;

    server.shutdown().await;
}

/// The blob the success steps register and certify.
struct ApiBlob {
    bytes: Vec<u8>,
    blob_id: BlobId,
    root: [u8; 32],
}

/// What registering the blob left for the steps after it.
struct Registered {
    object: ObjectId,
    /// The registration entry's digest.
    digest: String,
    /// Its one event, `blobRegistered`.
    event: Value,
}

/// What reserving storage left for the steps after it.
struct Reserved {
    storage_id: String,
    /// The reservation entry's digest.
    digest: Value,
}

/// `GET /v1/health` on an empty ledger: no entries or events, epoch 0, the genesis state hash.
async fn health_reports_an_empty_ledger(server: &Server, net: &TestNet) {
    let health = server.get_ok("/v1/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["entries"], 0);
    assert_eq!(health["durableEntries"], 0);
    assert_eq!(health["events"], 0);
    assert_eq!(health["epoch"], 0);
    assert_eq!(health["digest"].as_str().unwrap().len(), 64);
    assert_eq!(
        health["stateHash"].as_str().unwrap(),
        hex::encode(net.genesis_state.state_hash())
    );
}

/// `GET /v1/system`: parameters and a committee whose shards partition 0..n_shards (returned).
async fn system_reports_the_parameters_and_the_committee(
    server: &Server,
    net: &TestNet,
) -> Vec<Value> {
    let system = server.get_ok("/v1/system").await;
    assert_eq!(system["epoch"], 0);
    assert_eq!(system["nShards"], 10);
    assert_eq!(system["epochDurationMs"], 3_600_000);
    assert_eq!(system["genesisTimeMs"], net.config.genesis_time_ms);
    assert_eq!(system["maxEpochsAhead"], 53);
    assert_eq!(system["totalCapacity"], 4u64 << 40);
    assert_eq!(system["usedCapacity"], 0);
    assert_eq!(
        system["maxBlobSize"],
        EncodingConfig::new(10).unwrap().max_blob_size()
    );
    assert_eq!(
        system["nextEpochStartMs"].as_u64().unwrap()
            - system["currentEpochStartMs"].as_u64().unwrap(),
        3_600_000
    );
    assert!(system["previousCommittee"].is_null(), "{system}");
    let committee = &system["committee"];
    assert_eq!(committee["epoch"], 0);
    assert_eq!(committee["nShards"], 10);
    let members = committee["members"].as_array().unwrap();
    assert_eq!(members.len(), 4);
    let mut shards: Vec<u64> = members
        .iter()
        .flat_map(|m| {
            m["shards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap())
        })
        .collect();
    shards.sort_unstable();
    assert_eq!(
        shards,
        (0..10).collect::<Vec<u64>>(),
        "every shard assigned exactly once"
    );
    for (m, key) in members.iter().zip(&net.keys) {
        assert!(m["name"].as_str().unwrap().starts_with("node-"));
        assert!(m["networkAddress"].is_string());
        assert!(m["owner"].as_str().unwrap().starts_with("0x"));
        assert_eq!(m["capacity"], 1u64 << 40);
        // Members are listed in signer-bitmap order: their keys match ours, in order.
        assert_eq!(
            m["protocolKey"],
            serde_json::to_value(key.public_key()).unwrap()
        );
    }
    members.clone()
}

/// `GET /v1/blobs/{id}` of a blob nobody registered (whose ID we derive ourselves): nonexistent.
async fn an_unregistered_blob_is_nonexistent(server: &Server) -> ApiBlob {
    let data_bytes = b"floe api test blob".repeat(100);
    let meta = compute_metadata(&EncodingConfig::new(10).unwrap(), &data_bytes).unwrap();
    let blob_id = meta.blob_id;
    let root = meta.metadata.root_hash();
    assert_eq!(
        derive_blob_id(EncodingType::RS2, data_bytes.len() as u64, &root),
        blob_id
    );
    let status = server.get_ok(&format!("/v1/blobs/{blob_id}")).await;
    assert_eq!(status["status"]["status"], "nonexistent", "{status}");
    assert_eq!(status["blobId"], blob_id.to_string());
    assert!(status["event"].is_null());
    ApiBlob {
        bytes: data_bytes,
        blob_id,
        root,
    }
}

/// `POST /v1/transactions` ReserveAndRegister answers with entry 0 and its `blobRegistered` event.
async fn registering_answers_with_the_entry_and_its_event(
    server: &Server,
    alice: &AccountKey,
    blob: &ApiBlob,
) -> Registered {
    let blob_id = blob.blob_id;
    let register = alice.sign(
        0,
        register_kind((blob_id, blob.root, blob.bytes.len() as u64), 5, true),
    );
    let registered = server.submit_ok(&register).await;
    assert_eq!(registered["entryIndex"], 0);
    let register_digest = registered["digest"].as_str().unwrap().to_string();
    assert_eq!(register_digest.len(), 64);
    let events = registered["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{registered}");
    assert_eq!(events[0]["index"], 0);
    assert_eq!(events[0]["entryIndex"], 0);
    assert_eq!(events[0]["epoch"], 0);
    let (kind, body) = event_kind(&events[0]);
    assert_eq!(kind, "blobRegistered");
    assert_eq!(body["blobId"], blob_id.to_string());
    assert_eq!(body["owner"], alice.address().to_string());
    assert_eq!(body["endEpoch"], 5);
    assert_eq!(body["deletable"], true);
    Registered {
        object: registered_object(&registered),
        digest: register_digest,
        event: events[0].clone(),
    }
}

/// The registered status comes with its event, under every accepted form of the blob ID.
async fn the_registered_blob_is_found_by_every_id_form(
    server: &Server,
    blob: &ApiBlob,
    registered: &Registered,
) {
    let blob_id = blob.blob_id;
    let status = server.get_ok(&format!("/v1/blobs/{blob_id}")).await;
    assert_eq!(status["status"]["status"], "registered", "{status}");
    assert_eq!(status["status"]["endEpoch"], 5);
    assert_eq!(status["status"]["objectId"], registered.object.to_string());
    assert_eq!(status["event"], registered.event);

    // The other accepted blob-ID forms name the same blob.
    for form in [
        blob_id.to_hex(),
        format!("0x{}", blob_id.to_hex()),
        blob_id.to_decimal(),
    ] {
        let s = server.get_ok(&format!("/v1/blobs/{form}")).await;
        assert_eq!(s["status"]["status"], "registered", "{form}: {s}");
    }
}

/// CertifyBlob with a quorum certificate: entry 1 (its digest returned), status certified.
async fn a_quorum_certificate_certifies_the_blob(
    server: &Server,
    net: &TestNet,
    alice: &AccountKey,
    blob: &ApiBlob,
    registered: &Registered,
) -> String {
    let (blob_id, object) = (blob.blob_id, registered.object);
    let certify = alice.sign(
        1,
        TxKind::CertifyBlob {
            blob_object: object,
            certificate: net.quorum_certificate(blob_id, object, true),
        },
    );
    let certified = server.submit_ok(&certify).await;
    assert_eq!(certified["entryIndex"], 1);
    let certify_digest = certified["digest"].as_str().unwrap().to_string();
    assert_ne!(certify_digest, registered.digest);
    let cert_event = certified["events"][0].clone();
    assert_eq!(event_kind(&cert_event).0, "blobCertified");
    assert_eq!(cert_event["index"], 1);

    let status = server.get_ok(&format!("/v1/blobs/{blob_id}")).await;
    let st = &status["status"];
    assert_eq!(st["status"], "certified", "{status}");
    assert_eq!(st["endEpoch"], 5);
    assert_eq!(st["initialCertifiedEpoch"], 0);
    assert_eq!(st["objectId"], object.to_string());
    assert_eq!(st["permanent"], false);
    assert_eq!(st["event"], 1);
    assert_eq!(
        status["event"], cert_event,
        "the certifying event is included"
    );
    assert_eq!(status["epoch"], 0);
    certify_digest
}

/// `GET /v1/objects/{id}` of the certified blob object, with and without the `0x` prefix.
async fn the_blob_object_is_served_by_its_id(
    server: &Server,
    alice: &AccountKey,
    blob: &ApiBlob,
    object: ObjectId,
) {
    let (blob_id, size) = (blob.blob_id, blob.bytes.len() as u64);
    let obj = server.get_ok(&format!("/v1/objects/{object}")).await;
    let blob = &obj["blob"];
    assert_eq!(blob["id"], object.to_string(), "{obj}");
    assert_eq!(blob["owner"], alice.address().to_string());
    assert_eq!(blob["blobId"], blob_id.to_string());
    assert_eq!(blob["size"], size);
    assert_eq!(blob["encodingType"], "RS2");
    assert_eq!(blob["certifiedEpoch"], 0);
    assert_eq!(blob["deletable"], true);
    assert_eq!(blob["deleted"], false);
    assert_eq!(blob["storage"]["endEpoch"], 5);
    // Object IDs parse without the 0x prefix too.
    let obj2 = server
        .get_ok(&format!("/v1/objects/{}", hex::encode(object.0)))
        .await;
    assert_eq!(obj2, obj);
}

/// A storage resource reserved with ReserveSpace is an object too.
async fn reserved_storage_is_an_object(server: &Server, alice: &AccountKey) -> Reserved {
    let reserve = alice.sign(
        2,
        TxKind::ReserveSpace {
            encoded_size: 1 << 20,
            end_epoch: 3,
        },
    );
    let reserved = server.submit_ok(&reserve).await;
    let (kind, body) = event_kind(&reserved["events"][0]);
    assert_eq!(kind, "storageReserved");
    let storage_id = body["objectId"].as_str().unwrap().to_string();
    let obj = server.get_ok(&format!("/v1/objects/{storage_id}")).await;
    assert_eq!(obj["storage"]["id"], storage_id, "{obj}");
    assert_eq!(obj["storage"]["storageSize"], 1 << 20);
    assert_eq!(obj["storage"]["startEpoch"], 0);
    assert_eq!(obj["storage"]["endEpoch"], 3);
    Reserved {
        storage_id,
        digest: reserved["digest"].clone(),
    }
}

/// A genesis storage node (`member`) is an object; a missing object is `OBJECT_NOT_FOUND`.
async fn nodes_are_objects_and_a_missing_object_is_not_found(server: &Server, member: &Value) {
    let node_id = member["nodeId"].as_str().unwrap();
    let obj = server.get_ok(&format!("/v1/objects/{node_id}")).await;
    assert_eq!(obj["node"]["id"], node_id, "{obj}");
    assert_eq!(obj["node"]["protocolKey"], member["protocolKey"]);

    // A missing object.
    assert_error(
        server
            .get(&format!("/v1/objects/{}", ObjectId([7; 32])))
            .await,
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
    );
}

/// `GET /v1/accounts/{address}`: alice's blob and storage, an unknown account, an operator's node.
async fn accounts_list_their_blobs_storage_and_nodes(
    server: &Server,
    alice: &AccountKey,
    object: ObjectId,
    reserved: &Reserved,
) {
    let acct = server
        .get_ok(&format!("/v1/accounts/{}", alice.address()))
        .await;
    assert_eq!(acct["address"], alice.address().to_string());
    assert_eq!(acct["nextSequence"], 3);
    assert_eq!(acct["blobs"].as_array().unwrap().len(), 1);
    assert_eq!(acct["blobs"][0]["id"], object.to_string());
    assert_eq!(acct["storage"].as_array().unwrap().len(), 1);
    assert_eq!(acct["storage"][0]["id"], reserved.storage_id);
    let nobody = AccountKey::from_seed(&seed("nobody", 0));
    let acct = server
        .get_ok(&format!("/v1/accounts/{}", nobody.address()))
        .await;
    assert_eq!(acct["nextSequence"], 0);
    assert_eq!(acct["blobs"], json!([]));
    assert_eq!(acct["nodes"], json!([]));
    // An operator's account lists the node it runs, so tools need not scan events to find it.
    let operator = AccountKey::from_seed(&seed("operator", 1));
    let acct = server
        .get_ok(&format!("/v1/accounts/{}", operator.address()))
        .await;
    assert_eq!(acct["nodes"].as_array().unwrap().len(), 1, "{acct}");
    assert_eq!(acct["nodes"][0]["name"], "node-1");
    assert_eq!(acct["nodes"][0]["owner"], operator.address().to_string());
}

/// `GET /v1/entries/{i}` gives the digests the three submissions returned; entry 3 is not found.
async fn entries_carry_the_digests_the_submissions_returned(
    server: &Server,
    registered: &Registered,
    certify_digest: &str,
    reserved: &Reserved,
) {
    for (i, digest) in [(0, registered.digest.as_str()), (1, certify_digest)] {
        let e = server.get_ok(&format!("/v1/entries/{i}")).await;
        assert_eq!(e["index"], i);
        assert_eq!(e["digest"].as_str().unwrap(), digest);
    }
    let e = server.get_ok("/v1/entries/2").await;
    assert_eq!(e["digest"], reserved.digest);
    assert_error(
        server.get("/v1/entries/3").await,
        StatusCode::NOT_FOUND,
        "ENTRY_NOT_FOUND",
    );
}

/// `GET /v1/health` after three entries: all durable, the last one's digest, no failure.
async fn health_counts_the_three_entries(server: &Server, reserved: &Reserved) {
    let health = server.get_ok("/v1/health").await;
    assert_eq!(health["entries"], 3);
    assert_eq!(health["durableEntries"], 3);
    assert_eq!(health["events"], 3);
    assert_eq!(health["digest"], reserved.digest);
    assert!(health["failure"].is_null());
}

/// `GET /v1/api`: an OpenAPI document naming every route.
async fn the_openapi_document_names_every_route(server: &Server) {
    let (status, api) = server.get("/v1/api").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        api["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{api}"
    );
    let paths = api["paths"].as_object().expect("paths");
    for route in [
        "/v1/transactions",
        "/v1/system",
        "/v1/blobs/{blob_id}",
        "/v1/objects/{object_id}",
        "/v1/accounts/{address}",
        "/v1/events",
        "/v1/entries/{index}",
        "/v1/health",
        "/v1/api",
    ] {
        assert!(paths.contains_key(route), "{route} missing from /v1/api");
    }
    assert!(paths["/v1/transactions"].get("post").is_some());
    assert!(paths["/v1/events"].get("get").is_some());
}
