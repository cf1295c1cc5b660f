//! Ledger replicas over a real 3-member etcd cluster (child processes), served over HTTP:
//! every acknowledged transaction is applied exactly once, replicas agree entry by entry, a
//! killed etcd leader costs no acknowledged write, a restarted replica resumes from its
//! snapshot (bootstraps from a peer's: `replica_bootstrap.rs`), replicas step
//! their rules up once and stop at rules they lack, a replica whose snapshot root differs from
//! a committed checkpoint stops (also one restarted from a file other than the committed one),
//! a replica stopped cleanly replays no transaction, and one catching up prunes once per batch
//! it applies, not once per checkpoint.
//!
//! Needs the `etcd` binary (`apt-get install etcd-server`); fails with that message otherwise.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use floe_ledger::{AccountKey, GenesisConfig};
use floe_ledger_etcd::{EtcdLogConfig, EtcdMembers};
use floe_ledger_service::{Ledger, SubmitError};

mod common;
use common::replicas::{
    assert_agree, converge, etcd, keep_all, open, options, register, serve_on, submit_registrations,
};
use common::{genesis, seed, snapshot_file};

/// Append a record to the log directly, as a replica's appender would: `entry(end)` at
/// position `end`, after (and chained to) the last record; returns `end`. The log must not be
/// empty.
async fn append_raw(
    members: &EtcdMembers,
    entry: impl FnOnce(u64) -> floe_ledger::LogEntry,
) -> u64 {
    let log =
        floe_ledger_etcd::EtcdLog::connect(&EtcdLogConfig::new(members.endpoints(), "/test/"))
            .await
            .unwrap();
    let (_, end) = log.bounds().await.unwrap().unwrap();
    let head = log.get(end - 1).await.unwrap().unwrap().hash();
    log.append(end, head, &[entry(end).to_bytes()])
        .await
        .unwrap();
    end
}

/// A replica in `dir` over `members` (a snapshot every `every` entries) after `n`
/// registrations by the account of `tag`; returns the replica and the account.
async fn replica_with_registrations(
    dir: &Path,
    g: &GenesisConfig,
    members: &EtcdMembers,
    every: u64,
    tag: u64,
    n: u64,
) -> (Arc<Ledger>, AccountKey) {
    let replica = open(dir, g, options(members, every, vec![])).await;
    submit_registrations(&replica, tag, 0..n).await;
    (replica, AccountKey::from_seed(&seed("user", tag)))
}

/// The status of a reopened replica once it shows the root of the file it opened (hashed in
/// the background), or after 10 s without it.
async fn root_shown(l: &Ledger) -> floe_ledger_service::ReplicaStatus {
    let mut status = l.replica_status().unwrap();
    for _ in 0..100 {
        if status.snapshot_root.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = l.replica_status().unwrap();
    }
    status
}

async fn registered_blob_counts(l: &Ledger) -> BTreeMap<floe_core::BlobId, usize> {
    let mut counts = BTreeMap::new();
    let mut cursor = 0;
    loop {
        let page = l.events(cursor, 1000, Duration::ZERO).await;
        if page.is_empty() {
            return counts;
        }
        cursor += page.len() as u64;
        for e in page {
            if let floe_ledger::EventKind::BlobRegistered { blob_id, .. } = e.kind {
                *counts.entry(blob_id).or_default() += 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_apply_every_acknowledged_transaction_once_through_a_leader_kill() {
    let seed_value: u64 = std::env::var("FLOE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    eprintln!("seed {seed_value}");
    let dir = tempfile::tempdir().unwrap();
    let mut members = etcd(dir.path()).await;
    let g = genesis();
    let mut replicas = Vec::new();
    for i in 0..3 {
        let l = open(
            &dir.path().join(format!("r{i}")),
            &g,
            options(&members, 40, vec![]),
        )
        .await;
        replicas.push(serve_on(l, 0).await);
    }
    let client_urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();

    const ACCOUNTS: u64 = 6;
    const PER: u64 = 30;
    let mut tasks = Vec::new();
    for a in 0..ACCOUNTS {
        let urls = client_urls.clone();
        tasks.push(tokio::spawn(async move {
            let account = AccountKey::from_seed(&seed("user", a));
            let mut acked = Vec::new();
            for i in 0..PER {
                // Each transaction through another replica than the previous one.
                let start = ((a + i + seed_value) % 3) as usize;
                let mut rotated = urls.clone();
                rotated.rotate_left(start);
                let client = floe_ledger_client::LedgerClient::with_urls(rotated);
                let (kind, blob) = register(a, i);
                let tx = account.sign(i, kind);
                let mut ok = None;
                for _attempt in 0..20 {
                    match client.submit(&tx).await {
                        Ok(r) => {
                            ok = Some(r);
                            break;
                        }
                        Err(e) if e.is_transient() => {
                            eprintln!("account {a} tx {i}: {e}; retrying");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => panic!("account {a} tx {i} rejected: {e}"),
                    }
                }
                let r = ok.unwrap_or_else(|| panic!("account {a} tx {i} never acknowledged"));
                acked.push((r.entry_index, blob));
            }
            acked
        }));
    }
    // Kill the etcd leader while the submitters run, and bring it back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let leader = members.leader().await.expect("an etcd leader");
    eprintln!("killing the etcd leader m{leader}");
    members.kill(leader);
    tokio::time::sleep(Duration::from_secs(2)).await;
    members.restart(leader).unwrap();

    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert_eq!(acked.len() as u64, ACCOUNTS * PER);
    let top = acked.iter().map(|(i, _)| *i).max().unwrap() + 1;
    let ledgers: Vec<&Arc<Ledger>> = replicas.iter().map(|r| &r.ledger).collect();
    converge(&ledgers, top).await;
    // Let every replica finish the same log (checkpoints may follow the last ack).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let target = ledgers.iter().map(|l| l.progress().0).max().unwrap();
    converge(&ledgers, target).await;

    let mut positions = std::collections::BTreeSet::new();
    for (index, _) in &acked {
        assert!(positions.insert(*index), "two acks name entry {index}");
    }
    for l in &ledgers {
        let counts = registered_blob_counts(l).await;
        for (_, blob) in &acked {
            assert_eq!(
                counts.get(blob),
                Some(&1),
                "blob {blob} not registered exactly once"
            );
        }
        for a in 0..ACCOUNTS {
            let addr = AccountKey::from_seed(&seed("user", a)).address();
            assert_eq!(l.read(|s, _| s.next_sequence(&addr)).await.unwrap(), PER);
        }
    }
    assert_agree(ledgers[0], ledgers[1]).await;
    assert_agree(ledgers[1], ledgers[2]).await;
    for r in &replicas {
        let status = r.ledger.replica_status().unwrap();
        assert!(status.snapshot_seq.is_some(), "no snapshot was written");
    }

    // Restart replica 2 from its snapshot: it resumes, then follows new writes.
    let r2 = replicas.pop().unwrap();
    r2.stop().await;
    let reopened = open(&dir.path().join("r2"), &g, options(&members, 40, vec![])).await;
    assert!(reopened.replica_status().unwrap().snapshot_seq.is_some());
    // The opened file's root (a hash of every byte) is computed in the background, then shown
    // (or a newer snapshot's, if one was written meanwhile): the root of that file.
    let status = root_shown(&reopened).await;
    let seq = status.snapshot_seq.unwrap();
    let (_, bytes) =
        floe_ledger_service::snapshot::load_newest_where(&dir.path().join("r2"), |s| s.seq == seq)
            .unwrap()
            .expect("the snapshot the status names");
    assert_eq!(
        status.snapshot_root,
        Some(floe_ledger_service::snapshot::root_of(&bytes)),
        "the status shows its snapshot's root"
    );
    let account = AccountKey::from_seed(&seed("user", 0));
    let (kind, _) = register(0, PER);
    let r = replicas[0]
        .ledger
        .submit_tx(account.sign(PER, kind))
        .await
        .unwrap();
    converge(&[&reopened], r.entry_index + 1).await;
    assert_agree(&replicas[0].ledger, &reopened).await;
}

/// Two replicas of a ledger whose genesis predates versioned rules both step the rules up at
/// once: one entry does it, and the replicas agree. A record from a newer build (rules this
/// build lacks) then stops both with a reason, where skipping it would leave them judging
/// later entries by older rules than their peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_step_the_rules_up_once_and_stop_at_rules_they_lack() {
    let dir = tempfile::tempdir().unwrap();
    let members = etcd(dir.path()).await;
    let g = GenesisConfig {
        rules: 1,
        ..genesis()
    };
    let a = open(&dir.path().join("a"), &g, options(&members, 0, vec![])).await;
    let b = open(&dir.path().join("b"), &g, options(&members, 0, vec![])).await;
    let (sa, sb) = tokio::join!(a.step_rules(), b.step_rules());
    println!("rules steps: {sa:?}, {sb:?}");
    // Both may write the same bytes at the same position (the log takes them once, and each
    // replica recognises its own entry), or the later one finds the step done or refused.
    let mut stepped_at = std::collections::BTreeSet::new();
    for r in [sa, sb] {
        match r {
            Ok(Some(index)) => {
                stepped_at.insert(index);
            }
            Ok(None) | Err(SubmitError::Rejected(floe_ledger::TxError::RulesNotNewer { .. })) => {}
            Err(e) => panic!("a rules step failed: {e}"),
        }
    }
    assert_eq!(
        stepped_at.len(),
        1,
        "one rules entry takes effect: {stepped_at:?}"
    );
    let end = a.progress().0.max(b.progress().0);
    converge(&[&a, &b], end).await;
    assert_agree(&a, &b).await;
    for l in [&a, &b] {
        let rules = l.read(|s, _| s.rules()).await.unwrap();
        assert_eq!(rules, floe_ledger::RULES_VERSION);
    }

    let end = append_raw(&members, |_| floe_ledger::LogEntry::Rules {
        version: floe_ledger::RULES_VERSION + 1,
    })
    .await;
    for l in [&a, &b] {
        let t = std::time::Instant::now();
        let reason = loop {
            if let Some(reason) = l.poisoned() {
                break reason;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "a replica went on past rules it lacks: {:?}",
                l.progress()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(reason.contains("upgrade this build"), "{reason}");
        assert_eq!(l.progress().0, end, "nothing past the newer record applied");
    }
}

/// A committed checkpoint that disagrees with this replica's own snapshot root stops the
/// replica. The wrong checkpoint is in the log before the replica reaches its position, so the
/// replica compares when it has hashed its snapshot (outside its state lock), and again when
/// its own checkpoint for that position is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_stops_when_its_snapshot_root_differs_from_a_committed_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let members = etcd(dir.path()).await;
    let g = genesis();
    let every = 10;
    let a = open(&dir.path().join("a"), &g, options(&members, every, vec![])).await;
    let account = AccountKey::from_seed(&seed("user", 3));
    // One entry first: the log's last record gives the hash the next one chains to.
    a.submit_tx(account.sign(0, register(3, 0).0))
        .await
        .unwrap();
    // A position past the checkpoint record itself where the replica will snapshot.
    let at_after = |end: u64| ((end + 1) / every + 1) * every;
    let end = append_raw(&members, |end| floe_ledger::LogEntry::Checkpoint {
        seq: at_after(end),
        state_root: [7; 32],
    })
    .await;
    let at = at_after(end);
    converge(&[&a], end + 1).await;
    assert!(a.poisoned().is_none(), "nothing to compare yet");

    let t = std::time::Instant::now();
    let mut i = 1;
    let reason = loop {
        if let Some(reason) = a.poisoned() {
            break reason;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the replica went on past a divergent checkpoint at {at}: {:?}",
            a.progress()
        );
        if a.progress().0 <= at {
            // Refused once the replica has stopped; the loop then sees why.
            let _ = a.submit_tx(account.sign(i, register(3, i).0)).await;
            i += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert!(
        reason.contains("divergence") && reason.contains(&format!("at {at} ")),
        "{reason}"
    );
    let refused = a.submit_tx(account.sign(i, register(3, i).0)).await;
    assert!(refused.is_err(), "a stopped replica accepted a write");
}

/// A clean stop (what `floe ledger run` does on SIGTERM) writes a snapshot at the replica's
/// position and lands its checkpoint in the log, so the restart applies no transaction again
/// (each would have its certificates verified again: up to `snapshot_every` of them). With
/// nothing applied since, a second stop writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_stopped_cleanly_restarts_without_replaying_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let members = etcd(dir.path()).await;
    let g = genesis();
    // Far apart: no periodic snapshot is taken before the stop.
    let every = 1_000;
    let a_dir = dir.path().join("a");
    let (a, account) = replica_with_registrations(&a_dir, &g, &members, every, 4, 15).await;
    let at = a.progress().0;
    assert_eq!(
        floe_ledger_service::snapshot::newest_seq(&a_dir).unwrap(),
        None
    );
    let written = a.close().await.unwrap();
    assert_eq!(
        written,
        Some(at),
        "the clean stop wrote no snapshot at {at}"
    );
    let (_, bytes) = floe_ledger_service::snapshot::load_newest_where(&a_dir, |s| s.seq == at)
        .unwrap()
        .expect("the final snapshot");
    let root = floe_ledger_service::snapshot::root_of(&bytes);
    // Its checkpoint is in the log once `close` returns.
    let log =
        floe_ledger_etcd::EtcdLog::connect(&EtcdLogConfig::new(members.endpoints(), "/test/"))
            .await
            .unwrap();
    let (records, _) = log.read_from(at).await.unwrap();
    let entries: Vec<floe_ledger::LogEntry> = records
        .iter()
        .map(|r| floe_ledger::LogEntry::from_bytes(&r.payload).unwrap())
        .collect();
    assert_eq!(
        entries,
        vec![floe_ledger::LogEntry::Checkpoint {
            seq: at,
            state_root: root
        }],
        "the log after the final snapshot holds its checkpoint alone"
    );
    let end = at + 1;
    converge(&[&a], end).await;
    assert_eq!(a.close().await.unwrap(), None, "nothing new to snapshot");
    drop(a);

    let reopened = open(&a_dir, &g, options(&members, every, vec![])).await;
    assert_eq!(reopened.progress().0, end);
    let stats = reopened.open_stats();
    assert_eq!(
        stats.replayed, 1,
        "replayed more than the checkpoint: {stats:?}"
    );
    // The reopened file's root is checked against that committed checkpoint in the
    // background; the status shows it once it agrees.
    let status = root_shown(&reopened).await;
    assert_eq!(status.snapshot_root, Some(root));
    assert_eq!(reopened.poisoned(), None);
    let r = reopened
        .submit_tx(account.sign(15, register(4, 15).0))
        .await
        .unwrap();
    assert_eq!(
        r.entry_index, end,
        "the reopened replica goes on from the log's end"
    );
}

/// A replica restarted from a snapshot file that is not the one whose root the log committed
/// (here the state in it replaced by the genesis state, same position and chain head, so the
/// file opens and the log continues it) stops once it has hashed the file in the background:
/// it takes no more writes and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_restarted_from_a_snapshot_file_other_than_the_committed_one_stops() {
    let dir = tempfile::tempdir().unwrap();
    let members = etcd(dir.path()).await;
    let g = genesis();
    let every = 1_000;
    let a_dir = dir.path().join("a");
    let (a, account) = replica_with_registrations(&a_dir, &g, &members, every, 5, 6).await;
    let at = a.progress().0;
    assert_eq!(a.close().await.unwrap(), Some(at), "no final snapshot");
    drop(a);

    let path = snapshot_file(&a_dir, at);
    let bytes = std::fs::read(&path).expect("the final snapshot's file");
    let committed = floe_ledger_service::snapshot::root_of(&bytes);
    let snap = floe_ledger_service::snapshot::decode(&bytes).unwrap();
    let other_state = floe_ledger::LedgerState::genesis(&g).unwrap();
    let forged = floe_ledger_service::snapshot::encode(
        snap.seq,
        snap.chain_head,
        &other_state,
        (&snap.events, &snap.digests, &snap.certificates),
        &snap.recent,
    );
    let forged_root = floe_ledger_service::snapshot::root_of(&forged);
    assert_ne!(forged_root, committed);
    std::fs::write(&path, &forged).unwrap();

    let reopened = open(&a_dir, &g, options(&members, every, vec![])).await;
    assert_eq!(
        reopened.progress().0,
        at + 1,
        "opened the file and caught up"
    );
    let t = std::time::Instant::now();
    let reason = loop {
        if let Some(reason) = reopened.poisoned() {
            break reason;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the replica took the forged snapshot at {at}: {:?}",
            reopened.replica_status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        reason.contains("divergence") && reason.contains(&format!("at {at} ")),
        "{reason}"
    );
    let refused = reopened.submit_tx(account.sign(6, register(5, 6).0)).await;
    assert!(
        matches!(&refused, Err(SubmitError::LogFailed(r)) if r.contains("divergence")),
        "{refused:?}"
    );
}

/// The checkpoint entries in the log from `from` on.
async fn checkpoints_in_log(members: &EtcdMembers, from: u64) -> usize {
    let log =
        floe_ledger_etcd::EtcdLog::connect(&EtcdLogConfig::new(members.endpoints(), "/test/"))
            .await
            .unwrap();
    let (records, _) = log.read_from(from).await.unwrap();
    records
        .iter()
        .filter(|r| {
            matches!(
                floe_ledger::LogEntry::from_bytes(&r.payload),
                Ok(floe_ledger::LogEntry::Checkpoint { .. })
            )
        })
        .count()
}

/// A replica catching up applies the records it missed in a few large batches, dozens of
/// checkpoints among them. It prunes once per batch, below the batch's newest checkpoint, not
/// once per checkpoint (each pass deletes records and compacts etcd).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_catching_up_prunes_once_per_batch_not_per_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let members = etcd(dir.path()).await;
    let g = genesis();
    // Replica a checkpoints every 2 entries and keeps every record.
    let a = open(&dir.path().join("a"), &g, keep_all(&members, 2, vec![])).await;
    submit_registrations(&a, 7, 0..60).await;
    // Let a's last checkpoints land, then count what the catch-up will apply.
    let mut end = a.progress().0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = a.progress().0;
        if now == end {
            break;
        }
        end = now;
    }
    let checkpoints = checkpoints_in_log(&members, 0).await;
    assert!(
        checkpoints >= 30,
        "only {checkpoints} checkpoints were written"
    );

    // Replica c (a snapshot every 20 entries, pruning) starts from nothing.
    let c = open(&dir.path().join("c"), &g, options(&members, 20, vec![])).await;
    converge(&[&c], end).await;
    // c's own checkpoints (about one per 20 entries) land after the catch-up, each possibly in
    // a batch of its own: wait until nothing more arrives.
    let mut last = c.progress().0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = c.progress().0;
        if now == last {
            break;
        }
        last = now;
    }
    let passes = c.replica_status().unwrap().prune_passes;
    let own = last - end;
    eprintln!(
        "{checkpoints} checkpoints caught up, {own} entries of c's own after them, {passes} prune passes"
    );
    assert!(passes >= 1, "the catch-up pruned nothing");
    assert!(
        passes <= own + 5,
        "{passes} prune passes for {checkpoints} checkpoints caught up in batches (and {own} \
         entries after): one per checkpoint, not one per batch"
    );
    assert_agree(&a, &c).await;
}
