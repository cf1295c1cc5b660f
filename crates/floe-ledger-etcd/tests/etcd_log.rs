//! The etcd log against a real 3-member cluster of `etcd` child processes.
//!
//! These tests need the `etcd` binary (`apt-get install etcd-server`); without it they fail
//! with that message rather than skip.

use std::collections::BTreeMap;
use std::time::Duration;

use floe_ledger_etcd::{
    Chain, EtcdLog, EtcdLogConfig, EtcdLogError, EtcdMembers, Record, Writer, hash_parts,
};

fn seed() -> [u8; 32] {
    hash_parts(&[b"test-chain"])
}

async fn cluster(dir: &std::path::Path) -> EtcdMembers {
    EtcdMembers::start(dir, 3)
        .await
        .unwrap_or_else(|e| panic!("cannot run the etcd cluster these tests need: {e}"))
}

async fn connect(members: &EtcdMembers, prefix: &str) -> EtcdLog {
    EtcdLog::connect(&EtcdLogConfig::new(members.endpoints(), prefix))
        .await
        .expect("connect")
}

/// Append `payload` through `writer`, retrying transient failures (bounded).
async fn append_retrying(writer: &mut Writer, payload: Vec<u8>) -> u64 {
    for attempt in 0..100 {
        match writer.append(std::slice::from_ref(&payload)).await {
            Ok(seqs) => return seqs[0],
            Err(e) if !e.done.is_empty() => return e.done[0],
            Err(e) => {
                eprintln!("attempt {attempt}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    panic!("append did not succeed in 100 attempts");
}

/// Read the whole log through a follower, checking the chain.
async fn read_all(log: &EtcdLog, expected: usize) -> Vec<Record> {
    let mut follower = log.follow(Chain::new(0, seed()));
    let mut out = Vec::new();
    for _ in 0..200 {
        if out.len() >= expected {
            break;
        }
        // A member that was just restarted may refuse connections for a moment; like the
        // replica's follower, retry (a pruned prefix or a broken chain is not transient).
        match follower.next(Duration::from_millis(200)).await {
            Ok(records) => out.extend(records),
            Err(e @ (EtcdLogError::Pruned { .. } | EtcdLogError::Chain(_))) => {
                panic!("follow: {e}")
            }
            Err(e) => {
                eprintln!("follow (retrying): {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_get_each_payload_exactly_once_in_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let members = cluster(dir.path()).await;
    let log = connect(&members, "/t1/").await;
    let writers = 3;
    let per_writer = 40;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut writer = Writer::new(log, Chain::new(0, seed()));
            let mut landed = Vec::new();
            for i in 0..per_writer {
                let payload = format!("writer {w} entry {i}").into_bytes();
                landed.push((append_retrying(&mut writer, payload.clone()).await, payload));
            }
            landed
        }));
    }
    let mut acknowledged = BTreeMap::new();
    for t in tasks {
        for (seq, payload) in t.await.unwrap() {
            assert!(
                acknowledged.insert(seq, payload).is_none(),
                "two writers were told they own {seq}"
            );
        }
    }
    let records = read_all(&log, writers * per_writer).await;
    assert_eq!(records.len(), writers * per_writer);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
        assert_eq!(acknowledged.get(&r.seq), Some(&r.payload));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_continue_when_the_leader_is_killed_and_a_retry_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let mut members = cluster(dir.path()).await;
    let log = connect(&members, "/t2/").await;
    let mut writer = Writer::new(log.clone(), Chain::new(0, seed()));
    for i in 0..10 {
        append_retrying(&mut writer, format!("before {i}").into_bytes()).await;
    }
    let leader = members.leader().await.expect("a leader");
    eprintln!("killing etcd leader m{leader}");
    members.kill(leader);
    for i in 0..10 {
        append_retrying(&mut writer, format!("after {i}").into_bytes()).await;
    }
    // A writer that retries a write that landed (its hint behind) learns where it landed.
    let mut stale = Writer::new(log.clone(), Chain::new(0, seed()));
    let seq = append_retrying(&mut stale, b"after 3".to_vec()).await;
    assert_eq!(seq, 13);
    members.restart(leader).unwrap();
    let records = read_all(&log, 20).await;
    assert_eq!(records.len(), 20);
    assert_eq!(records[19].payload, b"after 9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sees_new_records_by_watch_and_a_pruned_prefix_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let members = cluster(dir.path()).await;
    let log = connect(&members, "/t3/").await;
    let mut writer = Writer::new(log.clone(), Chain::new(0, seed()));
    append_retrying(&mut writer, b"zero".to_vec()).await;
    let mut follower = log.follow(Chain::new(0, seed()));
    assert_eq!(
        follower
            .next(Duration::from_millis(100))
            .await
            .unwrap()
            .len(),
        1
    );
    // Caught up: this call starts the watch and times out empty.
    assert!(
        follower
            .next(Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty()
    );
    for i in 1..5 {
        append_retrying(&mut writer, format!("r{i}").into_bytes()).await;
    }
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen.extend(follower.next(Duration::from_millis(200)).await.unwrap());
        if seen.len() == 4 {
            break;
        }
    }
    assert_eq!(
        seen.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(log.bounds().await.unwrap(), Some((0, 5)));

    log.prune_below(3).await.unwrap();
    assert_eq!(log.bounds().await.unwrap(), Some((3, 5)));
    let mut late = log.follow(Chain::new(1, seed()));
    match late.next(Duration::from_millis(100)).await {
        Err(EtcdLogError::Pruned { next: 1, oldest: 3 }) => {}
        other => panic!("expected Pruned, got {other:?}"),
    }
    // The follower that had caught up keeps going after the compaction.
    append_retrying(&mut writer, b"r5".to_vec()).await;
    let mut more = Vec::new();
    for _ in 0..50 {
        more.extend(follower.next(Duration::from_millis(200)).await.unwrap());
        if !more.is_empty() {
            break;
        }
    }
    assert_eq!(more[0].seq, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_record_stops_the_follower() {
    let dir = tempfile::tempdir().unwrap();
    let members = cluster(dir.path()).await;
    let log = connect(&members, "/t4/").await;
    let mut writer = Writer::new(log.clone(), Chain::new(0, seed()));
    append_retrying(&mut writer, b"zero".to_vec()).await;
    // Record 1 names the wrong predecessor.
    log.append(1, [9u8; 32], &[b"forged".to_vec()])
        .await
        .unwrap();
    let mut follower = log.follow(Chain::new(0, seed()));
    let first = follower.next(Duration::from_millis(100)).await.unwrap();
    assert_eq!(first.len(), 1, "record 0 is handed on before the refusal");
    let err = follower.next(Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(err, EtcdLogError::Chain(_)), "{err}");
    assert_eq!(follower.chain().next_seq, 1);
}

/// A replica that was paused or restarted from an old snapshot still has a position inside
/// the pruned prefix. Its writes must land at the log's end: a record written into the hole
/// would be applied only by replicas as stale as the writer (a fork, and acknowledged
/// transactions the others never see).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_behind_a_pruned_prefix_appends_at_the_end_never_into_the_hole() {
    let dir = tempfile::tempdir().unwrap();
    let members = cluster(dir.path()).await;
    let log = connect(&members, "/t5/").await;
    let mut writer = Writer::new(log.clone(), Chain::new(0, seed()));
    let mut first_hash = None;
    for i in 0..5 {
        append_retrying(&mut writer, format!("r{i}").into_bytes()).await;
        if i == 0 {
            first_hash = Some(log.get(0).await.unwrap().unwrap().hash());
        }
    }
    log.prune_below(3).await.unwrap();

    // Straight into the hole: refused, and the error says where the log now starts.
    let err = log
        .append(1, first_hash.unwrap(), &[b"into the hole".to_vec()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, EtcdLogError::Pruned { next: 1, oldest: 3 }),
        "{err}"
    );
    let err = log
        .append(0, seed(), &[b"at zero".to_vec()])
        .await
        .unwrap_err();
    assert!(matches!(err, EtcdLogError::Pruned { .. }), "{err}");

    // Writers with stale hints move to the end.
    let mut stale = Writer::new(log.clone(), Chain::new(1, first_hash.unwrap()));
    assert_eq!(append_retrying(&mut stale, b"stale".to_vec()).await, 5);
    let mut fresh_start = Writer::new(log.clone(), Chain::new(0, seed()));
    assert_eq!(
        append_retrying(&mut fresh_start, b"from zero".to_vec()).await,
        6
    );
    assert_eq!(log.bounds().await.unwrap(), Some((3, 7)));
    for seq in 0..3 {
        assert!(
            log.get(seq).await.unwrap().is_none(),
            "record {seq} was rewritten"
        );
    }
    // And the chain from the pruning point on is one chain.
    let three = log.get(3).await.unwrap().unwrap();
    let mut follower = log.follow(Chain::new(3, three.prev_hash));
    let mut seen = Vec::new();
    for _ in 0..20 {
        seen.extend(follower.next(Duration::from_millis(100)).await.unwrap());
        if seen.len() >= 4 {
            break;
        }
    }
    let payloads: Vec<_> = seen.iter().map(|r| r.payload.clone()).collect();
    assert_eq!(
        payloads,
        vec![
            b"r3".to_vec(),
            b"r4".to_vec(),
            b"stale".to_vec(),
            b"from zero".to_vec()
        ]
    );
}

/// Compaction frees pages inside each member's database file; only a defragmentation gives
/// them back to the filesystem, and only members with enough free space get one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_space_returns_to_the_filesystem_member_by_member() {
    let dir = tempfile::tempdir().unwrap();
    let members = cluster(dir.path()).await;
    let log = connect(&members, "/t6/").await;
    let mut writer = Writer::new(log.clone(), Chain::new(0, seed()));
    for i in 0..100u32 {
        append_retrying(&mut writer, vec![i as u8; 256 * 1024]).await;
    }
    // Nothing pruned yet: nothing worth defragmenting.
    for m in log.defragment_members(1 << 20).await.unwrap() {
        assert_eq!(m.defragmented_to, None, "{m:?}");
    }
    log.prune_below(99).await.unwrap();
    // A member counts the compacted pages as free only after later writes commit (the ledger
    // keeps writing): until then a pass finds nothing to do, and a later one does it.
    let mut done: BTreeMap<String, floe_ledger_etcd::MemberSpace> = BTreeMap::new();
    for i in 0..40 {
        append_retrying(&mut writer, format!("after {i}").into_bytes()).await;
        let pass = log.defragment_members(1 << 20).await.unwrap();
        assert_eq!(pass.len(), 3, "every member looked at: {pass:?}");
        done.extend(
            pass.into_iter()
                .filter(|m| m.defragmented_to.is_some())
                .map(|m| (m.endpoint.clone(), m)),
        );
        if done.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(done.len(), 3, "not every member was defragmented: {done:?}");
    for m in done.values() {
        assert!(m.db_size > 20 << 20, "25 MiB written, db {m:?}");
        let after = m
            .defragmented_to
            .unwrap_or_else(|| panic!("not defragmented: {m:?}"));
        assert!(after < m.db_size / 4, "{m:?}");
    }
    // The log still reads and grows after the defragmentation.
    let (lo, hi) = log.bounds().await.unwrap().unwrap();
    assert_eq!(lo, 99);
    append_retrying(&mut writer, b"last".to_vec()).await;
    assert_eq!(log.bounds().await.unwrap(), Some((99, hi + 1)));
    for m in log.defragment_members(1 << 20).await.unwrap() {
        assert_eq!(m.defragmented_to, None, "nothing left to reclaim: {m:?}");
    }
}
