//! The client against a real ledger server on a loopback socket.

use floe_test_support::established_connections_to;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_core::{EncodingConfig, EncodingType, ObjectId, compute_metadata};
use floe_crypto::ProtocolKeyPair;
use floe_ledger::{AccountKey, BlobStatus, EventKind, GenesisConfig, GenesisNode, TxKind};
use floe_ledger_client::{AccountSession, LedgerClient};
use floe_ledger_service::{Ledger, SystemClock};

fn seed(tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[tag.as_bytes(), &i.to_le_bytes()])
}

async fn start() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let nodes = (0..4)
        .map(|i| {
            let k = ProtocolKeyPair::from_seed(&seed("bls", i));
            let op = AccountKey::from_seed(&seed("op", i));
            GenesisNode::new(
                format!("n{i}"),
                format!("127.0.0.1:{}", 40000 + i),
                &k,
                &op,
                1 << 40,
            )
        })
        .collect();
    let genesis = GenesisConfig::new(
        10,
        3_600_000,
        floe_ledger_service::Clock::now_ms(&SystemClock),
        nodes,
    );
    let ledger = Ledger::open(dir.path(), genesis, Arc::new(SystemClock)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(floe_ledger_service::serve(
        ledger,
        listener,
        std::future::pending(),
    ));
    (url, dir)
}

fn register_kind(data: &[u8]) -> (floe_core::BlobId, TxKind) {
    let meta = compute_metadata(&EncodingConfig::new(10).unwrap(), data).unwrap();
    let kind = TxKind::ReserveAndRegister {
        end_epoch: 3,
        blob_id: meta.blob_id,
        root_hash: meta.metadata.root_hash(),
        size: data.len() as u64,
        encoding_type: EncodingType::RS2,
        deletable: true,
    };
    (meta.blob_id, kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_submit_in_order_and_resynchronise() {
    let (url, _dir) = start().await;
    let client = LedgerClient::new(url);
    let system = client.system().await.unwrap();
    assert_eq!(system.n_shards, 10);
    let covered: usize = system
        .committee
        .members
        .iter()
        .map(|m| m.shards.len())
        .sum();
    assert_eq!(covered, 10);

    let key = AccountKey::from_seed(&seed("user", 1));
    let a = AccountSession::new(key.clone(), client.clone());
    let b = AccountSession::new(key, client.clone());
    let (id1, k1) = register_kind(b"one");
    a.submit(k1).await.unwrap();
    // `b` has never seen the account: it learns the sequence number from the ledger.
    let (id2, k2) = register_kind(b"two");
    b.submit(k2).await.unwrap();
    // `a` now holds a stale sequence number; it resynchronises once and succeeds.
    let (_, k3) = register_kind(b"three");
    a.submit(k3).await.unwrap();
    let account = client.account(&a.address()).await.unwrap();
    assert_eq!(account.next_sequence, 3);
    assert_eq!(account.blobs.len(), 3);
    for id in [id1, id2] {
        let st = client.blob_status(&id).await.unwrap();
        assert!(matches!(
            st.status,
            BlobStatus::Registered { end_epoch: 3, .. }
        ));
        assert!(matches!(
            st.event.unwrap().kind,
            EventKind::BlobRegistered { .. }
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed_and_events_long_poll() {
    let (url, _dir) = start().await;
    let client = LedgerClient::new(url);
    assert!(client.object(&ObjectId([7; 32])).await.unwrap().is_none());
    let session = AccountSession::new(AccountKey::from_seed(&seed("user", 2)), client.clone());
    let err = session
        .submit(TxKind::ReserveSpace {
            encoded_size: 0,
            end_epoch: 2,
        })
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Some("ZERO_SIZE"), "{err}");
    assert!(!err.is_transient());
    // A long poll started before the write returns once it is durable.
    let poller = {
        let client = client.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let page = client.events(0, 10, Duration::from_secs(10)).await.unwrap();
            (page, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, kind) = register_kind(b"polled");
    session.submit(kind).await.unwrap();
    let (page, waited) = poller.await.unwrap();
    assert!(waited < Duration::from_secs(5), "long poll took {waited:?}");
    // reserveAndRegister emits exactly one event, BlobRegistered.
    assert_eq!(page.events.len(), 1, "{:?}", page.events);
    assert!(matches!(
        page.events[0].kind,
        EventKind::BlobRegistered { .. }
    ));
    assert_eq!(page.next_cursor, 1);
    // An unreachable ledger is a transient error naming the URL.
    let dead = LedgerClient::new("http://127.0.0.1:1");
    let err = dead.health().await.unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("127.0.0.1:1"),
        "{err}"
    );
}

/// A long poll whose server went silent (the connection is up, nothing comes back, as when a
/// partition drops the packets) gives up soon after the wait it asked for, instead of holding
/// the follower for the full request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_long_poll_gives_up_after_its_wait_and_a_short_margin() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // Accept and hold connections without ever answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = LedgerClient::new(format!("http://{address}"));
    let wait = Duration::from_millis(500);
    let t = Instant::now();
    let result = client.events(0, 10, wait).await;
    let took = t.elapsed();
    assert!(result.is_err(), "a silent server cannot produce a page");
    assert!(
        took >= wait + floe_ledger_client::LONG_POLL_MARGIN,
        "gave up before the wait and margin: {took:?}"
    );
    assert!(
        took < wait + floe_ledger_client::LONG_POLL_MARGIN + Duration::from_secs(5),
        "held for {took:?}"
    );
    holder.abort();
}

/// A burst of 100 requests in flight at once opens 100 connections; once they are answered,
/// the client keeps at most `MAX_IDLE_CONNECTIONS` of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_leaves_no_more_idle_connections_than_the_bound() {
    let (url, _dir) = start().await;
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let client = LedgerClient::new(url);
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let c = client.clone();
        // Long polls past the last event: each holds its connection for 1.5 s.
        burst.spawn(async move { c.events(1_000_000, 10, Duration::from_millis(1500)).await });
    }
    // Counted well inside the polls, so that a slow machine has connected them all.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let during = established_connections_to(port);
    while let Some(r) = burst.join_next().await {
        r.unwrap().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = established_connections_to(port);
    println!("connections: {during} during the burst, {after} after it");
    assert!(
        during >= 50,
        "the burst never had many connections ({during})"
    );
    assert!(
        after <= floe_ledger_client::MAX_IDLE_CONNECTIONS,
        "{after} connections stay open after the burst (bound {})",
        floe_ledger_client::MAX_IDLE_CONNECTIONS
    );
}
