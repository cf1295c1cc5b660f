//! Storage challenges on a network of real processes (the fault suite's harness, 7 nodes,
//! 10 shards, 10-second epochs, recovery paused so nothing repairs the faults): in the first
//! epoch after the faults are in place,
//! * a node whose slivers of one shard were deleted on disk fails exactly the challenges of
//!   that shard, and the failures are on the ledger in reports whose signatures verify;
//! * a node behind a proxy that answers audits with data for the other blob fails them all;
//! * a node configured not to challenge is recorded as not issuing what it owed;
//! * every other node passes 100 %;
//!
//! and `floe challenges`, `floe health`, `floe info` and the nodes' `/metrics` show it.

#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use floe_core::BlobId;
use floe_ledger::NodeId;
use floe_ledger::challenge::{ChallengeOutcome, EpochChallenges};
use floe_node::config::Limits;
use serde_json::Value;
use support::faults::{
    LyingNode, delete_shard_on_disk, floe, restart_behind_lying_proxy, restart_with_config_edit,
    store_random, write_cli_config,
};
use support::{NODES, Net, SERIAL};

const EPOCH_MS: u64 = 10_000;

fn limits() -> Limits {
    Limits {
        recovery_paused: true,
        challenge_poll_ms: 500,
        challenge_timeout_ms: 3_000,
        ..Limits::default()
    }
}

async fn store(net: &Net, seed: u64, tag: &str) -> BlobId {
    store_random(net, (seed, tag), 30_000, 40, false).await.0
}

/// Wait until epoch `epoch`'s challenges have a report from every node in `reporters`.
async fn wait_reports(net: &Net, epoch: u32, reporters: &[NodeId]) -> EpochChallenges {
    let deadline = Instant::now() + Duration::from_millis(3 * EPOCH_MS);
    loop {
        if let Ok(Some(set)) = net.ledger.challenges(epoch).await
            && reporters.iter().all(|id| set.reports.contains_key(id))
        {
            return set;
        }
        assert!(
            Instant::now() < deadline,
            "epoch {epoch}: not every challenger reported in time: {:?}",
            net.ledger.challenges(epoch).await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The three faulty nodes, the stored blobs, and the epoch whose challenges are checked.
#[derive(Clone, Copy)]
struct Roles {
    victim: usize,
    liar: usize,
    idle: usize,
    lost_shard: u16,
    blobs: [BlobId; 2],
    epoch: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_catch_missing_and_lying_nodes_and_record_idle_challengers() {
    let _serial = SERIAL.lock().await;
    let seed = support::test_seed("challenges");
    let mut net = Net::start_with_epochs("challenges", seed, limits(), EPOCH_MS).await;
    write_cli_config(&net);
    let (a, b) = (store(&net, seed, "a").await, store(&net, seed, "b").await);
    net.wait_replicated(&[a, b], Duration::from_secs(30))
        .await
        .unwrap();
    let (mut r, lying) = three_faults_are_put_in_place(&mut net, [a, b]).await;
    let (issuers, set) = every_issuer_reports_the_next_epoch(&net, &mut r).await;
    the_tallies_name_each_fault(&net, &r, &issuers, &set);
    floe_challenges_verifies_every_reports_signature(&net, &r, &issuers, &set);
    blob_status_gives_each_blobs_outcomes(&net, &r, &set);
    pass_rates_show_in_health_info_and_metrics(&net, &r).await;
    lying.restore();
}

/// Three faulty nodes, distinct: the heaviest loses a shard on disk, the lightest lies,
/// another one does not challenge.
async fn three_faults_are_put_in_place(net: &mut Net, blobs: [BlobId; 2]) -> (Roles, LyingNode) {
    let [a, b] = blobs;
    let victim = (0..NODES).max_by_key(|&i| net.weight(i)).unwrap();
    let liar = (0..NODES)
        .filter(|&i| i != victim)
        .min_by_key(|&i| net.weight(i))
        .unwrap();
    let idle = (0..NODES).find(|&i| i != victim && i != liar).unwrap();
    let lost_shard = net.shards(victim)[0];
    delete_shard_on_disk(net, victim, lost_shard).await;
    restart_with_config_edit(
        net,
        idle,
        "challenges_enabled = true",
        "challenges_enabled = false",
    )
    .await;
    let lying = restart_behind_lying_proxy(net, liar, a, b).await;
    let roles = Roles {
        victim,
        liar,
        idle,
        lost_shard,
        blobs,
        epoch: 0,
    };
    (roles, lying)
}

/// The first epoch whose challenges start after every fault is in place: wait until every
/// node but the idle one reported it.
async fn every_issuer_reports_the_next_epoch(
    net: &Net,
    r: &mut Roles,
) -> (Vec<NodeId>, EpochChallenges) {
    let idle = r.idle;
    let epoch = net.ledger.system().await.unwrap().epoch + 1;
    let id = |i: usize| net.system.committee.members[net.member(i)].node_id;
    let issuers: Vec<NodeId> = (0..NODES).filter(|&i| i != idle).map(id).collect();
    let set = wait_reports(net, epoch, &issuers).await;
    let current = net.ledger.system().await.unwrap().epoch;
    println!(
        "epoch {epoch}: {} reports, {} failures (ledger now in epoch {current})",
        set.reports.len(),
        set.failures.len()
    );
    assert_eq!(set.eligible_blobs, 2);
    r.epoch = epoch;
    (issuers, set)
}

/// The victim fails exactly its lost shard's challenges, the liar every one, the idle node
/// issued nothing but passed, and every other node passed everything and issued what it owed.
fn the_tallies_name_each_fault(net: &Net, r: &Roles, issuers: &[NodeId], set: &EpochChallenges) {
    let Roles {
        victim,
        liar,
        idle,
        lost_shard,
        ..
    } = *r;
    let id = |i: usize| net.system.committee.members[net.member(i)].node_id;
    let t = |i: usize| set.tallies[&id(i)].clone();
    let others_issuing = |i: usize| issuers.iter().filter(|&&x| x != id(i)).count() as u32;
    // The victim fails exactly its lost shard's challenges, from every issuing challenger.
    let v = t(victim);
    assert_eq!(v.failed, 2 * others_issuing(victim), "{v:?}");
    assert_eq!(v.no_answer, 0, "{v:?}");
    assert_eq!(v.passed + v.failed, v.challenged);
    let victim_failures: Vec<_> = set
        .failures
        .iter()
        .filter(|f| f.challenged == id(victim))
        .collect();
    assert!(victim_failures.iter().all(|f| f.shard == lost_shard));
    assert!(
        victim_failures
            .iter()
            .all(|f| f.reason.as_deref().unwrap_or("").contains("refused")),
        "{victim_failures:?}"
    );

    // The liar fails every challenge: each answer is signed, for the other blob.
    let l = t(liar);
    assert_eq!(l.passed, 0, "{l:?}");
    assert_eq!(
        l.failed,
        2 * others_issuing(liar) * net.weight(liar) as u32,
        "{l:?}"
    );
    assert!(
        set.failures
            .iter()
            .filter(|f| f.challenged == id(liar))
            .all(|f| {
                f.outcome == ChallengeOutcome::Failed
                    && f.reason.as_deref().unwrap_or("").contains("another blob")
            })
    );

    // The idle node issued nothing of what it owed; it was still challenged, and passed.
    let i = t(idle);
    assert!(!i.reported && i.issued == 0 && i.duties > 0, "{i:?}");
    assert_eq!(i.not_issued(), i.duties);
    assert_eq!((i.passed, i.failed), (i.challenged, 0), "{i:?}");

    // Everyone else: 100 %, and each reporter issued everything it owed.
    for n in (0..NODES).filter(|&n| ![victim, liar, idle].contains(&n)) {
        let h = t(n);
        assert!(
            h.challenged > 0 && h.passed == h.challenged,
            "node {n}: {h:?}"
        );
    }
    for n in (0..NODES).filter(|&n| n != idle) {
        let h = t(n);
        assert!(h.reported && h.issued == h.duties, "node {n}: {h:?}");
    }
}

/// Every failure comes from a report whose signature the CLI verifies with the committee's
/// keys; the failures name the challenger and the challenged node.
fn floe_challenges_verifies_every_reports_signature(
    net: &Net,
    r: &Roles,
    issuers: &[NodeId],
    set: &EpochChallenges,
) {
    let (epoch, victim, lost_shard) = (r.epoch, r.victim, r.lost_shard);
    let (code, out, err) = floe(net.dir(), &["challenges", "--epoch", &epoch.to_string()]);
    println!("{out}");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "signatures verified here: {} of {}",
            issuers.len(),
            issuers.len()
        )),
        "{out}"
    );
    let name = |i: usize| net.system.committee.members[net.member(i)].name.clone();
    assert!(out.contains(&format!(
        "challenged {} on shard {lost_shard}",
        name(victim)
    )));
    let (code, out, _) = floe(
        net.dir(),
        &["challenges", "--epoch", &epoch.to_string(), "--json"],
    );
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["failures"].as_array().unwrap().len(), set.failures.len());
}

/// `floe blob-status` gives each blob's outcomes in that epoch: together they are every
/// challenge issued, and they name the failing nodes.
fn blob_status_gives_each_blobs_outcomes(net: &Net, r: &Roles, set: &EpochChallenges) {
    let (epoch, victim, liar, [a, b]) = (r.epoch, r.victim, r.liar, r.blobs);
    let name = |i: usize| net.system.committee.members[net.member(i)].name.clone();
    let (mut outcomes, mut failing) = (0, Vec::new());
    for blob in [a, b] {
        let (code, out, err) = floe(
            net.dir(),
            &["blob-status", "--blob-id", &blob.to_string(), "--json"],
        );
        assert_eq!(code, 0, "{err}");
        let c = &serde_json::from_str::<Value>(&out).unwrap()["lastChallenges"];
        assert_eq!(c["epoch"], epoch, "{c}");
        outcomes += ["passed", "failed", "noAnswer"]
            .iter()
            .map(|k| c[k].as_u64().unwrap())
            .sum::<u64>();
        failing.extend(c["failingNodes"].as_array().unwrap().iter().cloned());
    }
    let issued: u64 = set.tallies.values().map(|t| u64::from(t.issued)).sum();
    assert_eq!(outcomes, issued);
    assert!(failing.contains(&Value::from(name(victim))), "{failing:?}");
    assert!(failing.contains(&Value::from(name(liar))), "{failing:?}");
    let (_, out, _) = floe(net.dir(), &["blob-status", "--blob-id", &a.to_string()]);
    assert!(
        out.contains(&format!("Storage challenges (epoch {epoch})")),
        "{out}"
    );
}

/// Pass rates in `floe health --json` (per node) and `floe info`, and in a node's /metrics.
async fn pass_rates_show_in_health_info_and_metrics(net: &Net, r: &Roles) {
    let (epoch, victim, liar, idle) = (r.epoch, r.victim, r.liar, r.idle);
    let name = |i: usize| net.system.committee.members[net.member(i)].name.clone();
    let (code, out, err) = floe(net.dir(), &["health", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows: Value = serde_json::from_str(&out).unwrap();
    let rate: BTreeMap<String, f64> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            Some((
                r["name"].as_str()?.to_string(),
                r["challenges"]["passRate"].as_f64()?,
            ))
        })
        .collect();
    println!("pass rates: {rate:?}");
    assert_eq!(rate.get(&name(liar)), Some(&0.0));
    assert!(rate[&name(victim)] < 1.0);
    let (code, out, _) = floe(net.dir(), &["info"]);
    assert_eq!(code, 0);
    assert!(out.contains("Storage challenges, epoch"), "{out}");
    let honest = (0..NODES)
        .find(|n| ![victim, liar, idle].contains(n))
        .unwrap();
    // The node refreshes the ledger's tallies every poll (500 ms here): wait for this epoch's.
    let want = format!("floe_node_challenge_pass_rate{{epoch=\"{epoch}\"}} 1\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (base, http) = net.node_endpoint(honest);
    loop {
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains(&want) {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
