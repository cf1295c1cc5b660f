//! Nodes serve HTTPS with their network key, and clients pin the key the ledger registers:
//! a real testbed (ledger and nodes on loopback sockets), default options.

use std::sync::Arc;
use std::time::Duration;

use floe_client::{Client, ClientConfig, Lifetime, NoProgress, ReadOptions, StoreOptions};
use floe_ledger::AccountKey;
use floe_node_client::{NodeClient, NodeHttp};
use floe_testbed::{Testbed, TestbedOptions};

async fn testbed(dir: &std::path::Path, disable_tls: bool) -> Testbed {
    Testbed::start(
        dir,
        TestbedOptions {
            nodes: 4,
            n_shards: 10,
            disable_tls,
            ..TestbedOptions::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_serve_https_with_their_registered_key_over_http2() {
    let dir = tempfile::tempdir().unwrap();
    let bed = testbed(dir.path(), false).await;
    let system = floe_ledger_client::LedgerClient::new(bed.ledger_url())
        .system()
        .await
        .unwrap();
    let member = &system.committee.members[0];
    let key = member
        .network_public_key
        .expect("the genesis registers each node's network key");

    // Pinned to the registered key: HTTPS, and ALPN picks HTTP/2.
    let pools = NodeHttp::with_defaults();
    let (base, http) = pools.route(&member.network_address, &[key]).unwrap();
    assert!(base.starts_with("https://"), "{base}");
    let resp = http.get(format!("{base}/v1/health")).send().await.unwrap();
    assert!(resp.status().is_success());
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);

    // Plain HTTP gets no answer from a TLS port.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let plain_answer = plain
        .get(format!("http://{}/v1/health", member.network_address))
        .send()
        .await;
    assert!(
        plain_answer.is_err() || !plain_answer.unwrap().status().is_success(),
        "a TLS node answered plain HTTP"
    );

    // Pinned to another node's key: the handshake is refused, and the error says why.
    let other = system.committee.members[1].network_public_key.unwrap();
    let wrong = NodeClient::for_node(
        &pools,
        &member.network_address,
        &[other],
        Duration::from_secs(5),
    );
    let err = wrong
        .blob_status(&floe_core::BlobId([0; 32]))
        .await
        .unwrap_err();
    let err = format!("{err:?}");
    assert!(err.contains("Unreachable"), "{err}");
    bed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_round_trips_over_tls_and_over_plain_http() {
    for disable_tls in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let bed = testbed(dir.path(), disable_tls).await;
        let config = ClientConfig {
            ledger_url: bed.ledger_url(),
            ..ClientConfig::default()
        };
        let client = Client::new(config, Some(AccountKey::from_seed(&[3; 32]))).unwrap();
        let (_, committee) = client.committee().await.unwrap();
        assert_eq!(
            committee.members[0].info.network_public_key.is_some(),
            !disable_tls
        );
        let data = b"pinned or plain, the same bytes".repeat(100);
        let options = StoreOptions {
            lifetime: Lifetime::Epochs(1),
            deletable: false,
            force: false,
        };
        let stored = client
            .store(data.clone(), &options, Arc::new(NoProgress))
            .await
            .unwrap();
        let blob_id = stored.result.blob_id().expect("a stored blob has an ID");
        let read = client
            .read(&blob_id, ReadOptions::default(), Arc::new(NoProgress))
            .await
            .unwrap();
        assert_eq!(read, data, "disable_tls = {disable_tls}");
        bed.shutdown().await;
    }
}
