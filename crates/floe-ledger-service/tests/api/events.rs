//! The event stream: paging by cursor and limit, and long polls.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_page_with_cursor_and_limit() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Server::start(dir.path(), &net.config).await;
    let bob = AccountKey::from_seed(&seed("bob", 0));

    // No events yet: an empty page, cursor unchanged, answered at once without waitMs.
    let page = server.get_ok("/v1/events").await;
    assert_eq!(page["events"], json!([]));
    assert_eq!(page["nextCursor"], 0);

    // Seven entries with one event each.
    let mut submitted = Vec::new();
    for i in 0..7u64 {
        let tx = bob.sign(
            i,
            register_kind(synthetic_blob(100 + i, 1000 + i), 2, false),
        );
        submitted.push(server.submit_ok(&tx).await);
    }
    // The stream can trail acknowledgements by a moment (see
    // `acknowledged_events_are_readable_at_once`): wait until the last event is served.
    let tail = server.get_ok("/v1/events?cursor=6&waitMs=5000").await;
    assert_eq!(tail["events"].as_array().unwrap().len(), 1, "{tail}");
    // Pages of 3: 0..3, 3..6, 6..7, then empty.
    let mut cursor = 0u64;
    let mut seen = Vec::new();
    for expected_len in [3usize, 3, 1, 0] {
        let page = server
            .get_ok(&format!("/v1/events?cursor={cursor}&limit=3"))
            .await;
        let events = page["events"].as_array().unwrap();
        assert_eq!(events.len(), expected_len, "{page}");
        for (j, e) in events.iter().enumerate() {
            assert_eq!(e["index"], cursor + j as u64);
        }
        let next = page["nextCursor"].as_u64().unwrap();
        assert_eq!(next, cursor + expected_len as u64);
        cursor = next;
        seen.extend(events.iter().cloned());
    }
    assert_eq!(seen.len(), 7);
    for (e, s) in seen.iter().zip(&submitted) {
        assert_eq!(
            *e, s["events"][0],
            "the stream carries the submitted events"
        );
    }
    // Without a limit: everything from the cursor.
    let page = server.get_ok("/v1/events?cursor=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 5);
    assert_eq!(page["nextCursor"], 7);
    // A cursor past the end, and limit=0 (clamped to 1).
    let page = server.get_ok("/v1/events?cursor=1000").await;
    assert_eq!(page["events"], json!([]));
    assert_eq!(page["nextCursor"], 1000);
    let page = server.get_ok("/v1/events?cursor=0&limit=0").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    // A cursor beyond u32/usize ranges does not panic.
    let page = server
        .get_ok(&format!("/v1/events?cursor={}&limit=1000", u64::MAX))
        .await;
    assert_eq!(page["events"], json!([]));

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_once_a_submission_is_acknowledged() {
    let net = TestNet::new(4, 10, 3_600_000);
    let dir = tempdir();
    let server = Arc::new(Server::start(dir.path(), &net.config).await);
    let carol = AccountKey::from_seed(&seed("carol", 0));
    server
        .submit_ok(&carol.sign(0, register_kind(synthetic_blob(200, 10), 2, false)))
        .await;
    let cursor = server.get_ok("/v1/health").await["events"]
        .as_u64()
        .unwrap();
    assert_eq!(cursor, 1);

    // Nothing new: a short wait returns empty after roughly the wait.
    let t = Instant::now();
    let page = server
        .get_ok(&format!("/v1/events?cursor={cursor}&waitMs=300"))
        .await;
    let waited = t.elapsed();
    assert_eq!(page["events"], json!([]));
    assert!(
        waited >= Duration::from_millis(250),
        "returned early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");

    // A 5 s long-poll started before the submission returns promptly after it.
    let poller = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let page = server
                .get_ok(&format!("/v1/events?cursor={cursor}&waitMs=5000"))
                .await;
            (page, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poller.is_finished(),
        "the long-poll returned before any event"
    );
    let accepted = server
        .submit_ok(&carol.sign(1, register_kind(synthetic_blob(201, 10), 2, false)))
        .await;
    let acked_at = Instant::now();
    let (page, returned_at) = tokio::time::timeout(Duration::from_secs(10), poller)
        .await
        .expect("the long-poll returns")
        .unwrap();
    let lag = returned_at.saturating_duration_since(acked_at);
    println!("long-poll returned {lag:?} after the acknowledgement");
    assert!(lag < Duration::from_secs(1), "long-poll lagged {lag:?}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(events[0], accepted["events"][0]);
    assert_eq!(page["nextCursor"], cursor + 1);

    Arc::try_unwrap(server).ok().unwrap().shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Errors: the right 4xx and an error envelope, never a panic or 5xx.
// ---------------------------------------------------------------------------------------------
