//! A real crash: a child process writes slivers with `Durability::Sync` (about half of them to
//! segment files) and prints each acknowledged write; the parent SIGKILLs it mid-stream and checks every acknowledged write
//! on reopening.
//!
//! The child is this test binary itself, re-executed with [`CHILD_DIR_ENV`] set so that only
//! [`crash_writer_child`] acts (it does nothing in a normal test run).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use floe_core::{ShardIndex, SliverData, SliverType};
use floe_node_storage::{FjallStore, NodeStore, StoreOptions};

/// Store directory for the child writer; unset in normal runs.
const CHILD_DIR_ENV: &str = "FLOE_NODE_STORAGE_CRASH_DIR";
/// First write index of the child writer.
const CHILD_START_ENV: &str = "FLOE_NODE_STORAGE_CRASH_START";
const SHARDS: u16 = 4;

fn placement(i: u32) -> (ShardIndex, SliverType) {
    let axis = if i.is_multiple_of(3) { S } else { P };
    (ShardIndex((i % u32::from(SHARDS)) as u16), axis)
}

/// 512 B to 64 KiB, content determined by `i`.
fn crash_sliver(i: u32) -> SliverData {
    sliver(
        u64::from(i) + 1,
        512 + (i as usize * 7919) % (64 * 1024 - 512),
    )
}

/// The child: writes until killed, acknowledging each write on stdout.
#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let start: u32 = std::env::var(CHILD_START_ENV).unwrap().parse().unwrap();
    // Slivers of 32 KiB and more go to segment files, smaller ones through the engine.
    let options = StoreOptions {
        segment_min_bytes: 32 * 1024,
        ..StoreOptions::default()
    };
    let store = FjallStore::open(Path::new(&dir), options).unwrap();
    for s in 0..SHARDS {
        store.create_shard(ShardIndex(s)).unwrap();
    }
    let mut out = std::io::stdout().lock();
    // The test harness has printed "test crash_writer_child ... " without a line end: end that
    // line so the first acknowledgement starts a line of its own.
    writeln!(out).unwrap();
    for i in start..start + 100_000 {
        let (shard, axis) = placement(i);
        store
            .put_sliver(shard, axis, &blob(i), &crash_sliver(i))
            .unwrap();
        writeln!(out, "ACK {i}").unwrap();
        out.flush().unwrap();
        if i.is_multiple_of(10) {
            store
                .apply_events(&[(blob(i), info(&[i], None))], u64::from(i))
                .unwrap();
            writeln!(out, "CURSOR {i}").unwrap();
            out.flush().unwrap();
        }
    }
    panic!("the crash-test child was not killed");
}

/// Runs a child writer from `start`, kills it after `kill_after` acknowledgements, and returns
/// the acknowledged write indices and the last acknowledged cursor.
fn run_and_kill(dir: &Path, start: u32, kill_after: usize) -> (Vec<u32>, Option<u32>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_START_ENV, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut acked, mut cursor, mut killed) = (Vec::new(), None, false);
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(i) = line.strip_prefix("ACK ") {
            acked.push(i.parse().unwrap());
        } else if let Some(c) = line.strip_prefix("CURSOR ") {
            cursor = Some(c.parse().unwrap());
        }
        if !killed && (acked.len() >= kill_after || Instant::now() > deadline) {
            child.kill().unwrap(); // SIGKILL
            killed = true;
        }
        // Lines already printed before the kill are still read: they were acknowledged.
    }
    let status = child.wait().unwrap();
    println!(
        "child from {start}: {} writes acknowledged before {status}, last cursor {cursor:?}",
        acked.len()
    );
    assert!(
        killed,
        "child ended by itself ({status}) after {} acks",
        acked.len()
    );
    assert!(
        acked.len() >= kill_after,
        "child too slow: {} acks",
        acked.len()
    );
    // The child writes in order, so its acknowledgements are start, start + 1, ...: a line the
    // parser missed would show here rather than as an unexplained extra sliver later.
    let expected: Vec<u32> = (start..).take(acked.len()).collect();
    assert!(
        acked == expected,
        "acknowledgements out of sequence: {acked:?}"
    );
    (acked, cursor)
}

/// Every acknowledged sliver is present and intact; the cursor and blob infos agree.
/// `acked` are all acknowledged writes so far, `round` those of the last child, `crashes` the
/// number of kills so far (each may have left one unacknowledged write).
fn check_after_crash(
    dir: &Path,
    acked: &[u32],
    round: &[u32],
    cursor: Option<u32>,
    crashes: usize,
) {
    let store = FjallStore::open(dir, StoreOptions::default()).unwrap();
    for &i in acked {
        let (shard, axis) = placement(i);
        let got = store.get_sliver(shard, axis, &blob(i)).unwrap();
        assert!(
            got.as_ref() == Some(&crash_sliver(i)),
            "acked sliver {i} lost or damaged"
        );
    }
    // Writes are sequential, so at most one unacknowledged write per crash may have landed.
    let stored: usize = (0..SHARDS)
        .flat_map(|s| [P, S].map(|axis| (ShardIndex(s), axis)))
        .map(|(s, axis)| store.sliver_ids(s, axis, None, usize::MAX).unwrap().len())
        .sum();
    assert!(
        (acked.len()..=acked.len() + crashes).contains(&stored),
        "{stored} stored, {} acked",
        acked.len()
    );
    // apply_events is atomic: in the last round, a blob info is stored iff the cursor reached
    // its event (the cursor only grows).
    let stored_cursor = store.event_cursor().unwrap();
    if let Some(c) = cursor {
        assert!(stored_cursor >= u64::from(c), "acked cursor {c} lost");
    }
    let infos = store.blob_infos(None, usize::MAX).unwrap();
    let with_info = |i: u32| infos.iter().any(|(id, _)| *id == blob(i));
    let candidates = round.iter().map(|i| i + 1).chain(round.iter().copied());
    for i in candidates.filter(|i| i.is_multiple_of(10)) {
        assert_eq!(
            with_info(i),
            u64::from(i) <= stored_cursor,
            "blob info {i} vs cursor {stored_cursor}"
        );
    }
}

#[test]
fn acknowledged_slivers_survive_sigkill() {
    if std::env::var(CHILD_DIR_ENV).is_ok() {
        return; // we are the child
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut acked, cursor) = run_and_kill(dir, 0, 300);
    check_after_crash(dir, &acked, &acked, cursor, 1);
    // Crash again on top of a recovered store.
    let (more, cursor) = run_and_kill(dir, 100_000, 400);
    acked.extend(&more);
    check_after_crash(dir, &acked, &more, cursor, 2);
}
