//! Crash test of real `floe node run` processes: a `floe ledger run` and four nodes laid out by
//! `floe ledger init --generate`. A blob is uploaded and certified through HTTP; then one node
//! receives a stream of sliver uploads and is SIGKILLed while they are in flight. Restarted on
//! the same config, it must serve every sliver it acknowledged, byte for byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use floe_core::{
    BlobId, EncodedBlob, EncodingConfig, EncodingType, ObjectId, ShardIndex, SliverData,
    SliverPairIndex, SliverType, encode,
};
use floe_crypto::{Certificate, CommitteeMember, CommitteeWeights};
use floe_ledger::api_types::SystemInfo;
use floe_ledger::{AccountKey, EventKind, TxKind};
use floe_ledger_client::{AccountSession, LedgerClient};
use floe_node_client::{NodeClient, NodeHttp};
use floe_test_support::{Proc, free_base_port};

const NODES: usize = 4;
const N_SHARDS: u16 = 10;
/// Blobs streamed to the victim around the kill.
const STREAMED_BLOBS: u64 = 8;
/// Sliver PUTs in flight at once towards the victim.
const IN_FLIGHT: usize = 4;

fn floe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floe"))
}

fn checked(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn seed(run: u64, tag: &str, i: u64) -> [u8; 32] {
    floe_core::merkle::blake2b256(&[
        b"floe-node-process-test",
        &run.to_le_bytes(),
        tag.as_bytes(),
        &i.to_le_bytes(),
    ])
}

/// One sliver upload: blob, pair, axis, sliver.
type Upload = (BlobId, SliverPairIndex, SliverType, SliverData);

fn start_node(dir: &Path, i: usize) -> Proc {
    let mut cmd = floe();
    cmd.args(["node", "run", "--config"])
        .arg(dir.join(format!("node-{i}.toml")));
    Proc::spawn(cmd, &format!("node-{i}"), &dir.join("logs"))
}

async fn register(user: &AccountSession, e: &EncodedBlob) -> ObjectId {
    let reg = user
        .submit(TxKind::ReserveAndRegister {
            end_epoch: 10,
            blob_id: e.blob_id(),
            root_hash: e.metadata().metadata.root_hash(),
            size: e.metadata().metadata.unencoded_length(),
            encoding_type: EncodingType::RS2,
            deletable: false,
        })
        .await
        .unwrap();
    reg.events
        .iter()
        .find_map(|ev| match &ev.kind {
            EventKind::BlobRegistered { object_id, .. } => Some(*object_id),
            _ => None,
        })
        .unwrap()
}

/// PUT the metadata, retrying until the node has seen the registration.
async fn put_metadata(client: &NodeClient, e: &EncodedBlob) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(err) = client
        .put_metadata(&e.blob_id(), &e.metadata().metadata)
        .await
    {
        assert!(Instant::now() < deadline, "metadata never accepted: {err}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The (pair, axis, sliver) a member holds of `e`.
fn member_slivers(
    system: &SystemInfo,
    member: usize,
    e: &EncodedBlob,
) -> Vec<(SliverPairIndex, SliverType, SliverData)> {
    system.committee.members[member]
        .shards
        .iter()
        .flat_map(|&s| {
            let pair = ShardIndex(s).to_pair_index(N_SHARDS, &e.blob_id());
            let p = e.sliver_pair(pair);
            [
                (pair, SliverType::Primary, p.primary),
                (pair, SliverType::Secondary, p.secondary),
            ]
        })
        .collect()
}

/// The ledger and nodes of one run, and the clients that reach them.
struct Net {
    dir: PathBuf,
    base: u16,
    system: SystemInfo,
    pools: NodeHttp,
    config: EncodingConfig,
    clients: Vec<NodeClient>,
    user: AccountSession,
    /// Node processes by node index (`None` once killed).
    nodes: Vec<Option<Proc>>,
    ledger_proc: Proc,
}

/// Node `i`'s base URL and a client pinned to the network key the genesis registers for it.
fn endpoint(
    system: &SystemInfo,
    pools: &NodeHttp,
    base: u16,
    i: usize,
) -> (String, reqwest::Client) {
    let address = format!("127.0.0.1:{}", base + i as u16);
    let member = system
        .committee
        .members
        .iter()
        .find(|m| m.network_address == address)
        .expect("every node is a member");
    let key = member.network_public_key.expect("a registered network key");
    pools.route(&address, &[key]).unwrap()
}

/// The node that is killed: its committee member, its node index and a client of it.
struct Victim {
    member: usize,
    node: usize,
    client: NodeClient,
}

/// A node SIGKILLed during a stream of sliver uploads and restarted on its config, as named
/// steps on one network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_serves_every_sliver_it_acknowledged() {
    let started = Instant::now();
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("run seed {run}");
    let tmp = tempfile::tempdir().unwrap();
    let base = ledger_init_lays_out_four_nodes(tmp.path());
    let mut net = the_ledger_and_the_nodes_come_up(tmp.path(), base, run, started).await;
    let certified = a_blob_is_stored_on_every_node_and_certified(&net, run, started).await;
    let victim = the_victim_is_the_member_with_the_most_shards(&net);
    let streamed = more_blobs_are_registered_with_the_victim(&net, &victim, run).await;
    let acked = the_victim_is_killed_with_uploads_in_flight(&mut net, &victim, &streamed).await;
    let restarted = the_victim_restarts_on_the_same_config(&net, &victim).await;
    every_acknowledged_sliver_is_served_byte_for_byte(&victim, &acked, &streamed).await;
    the_certified_blob_is_still_served_and_confirmed(&net, &victim, &certified).await;
    restarted.kill();
    drop(net.nodes);
    drop(net.ledger_proc);
    println!("test took {:?}", started.elapsed());
}

/// `floe ledger init --generate` lays out four nodes on free ports; returns the base port.
fn ledger_init_lays_out_four_nodes(dir: &Path) -> u16 {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let base = free_base_port(NODES as u16 + 1);
    let ledger_port = base + NODES as u16;
    checked(
        floe()
            .args(["ledger", "init", "--generate", &NODES.to_string()])
            .arg("--keys-dir")
            .arg(dir.join("keys"))
            .args(["--base-port", &base.to_string()])
            .args(["--n-shards", &N_SHARDS.to_string()])
            .arg("--out")
            .arg(dir.join("genesis.json"))
            .output()
            .unwrap(),
        "floe ledger init",
    );
    let ledger_url = format!("http://127.0.0.1:{ledger_port}");
    for i in 0..NODES {
        // Recovery from peers stays out of the way (no periodic scan, long sync delay): what
        // the restarted node serves must come from its own disk.
        std::fs::write(
            dir.join(format!("node-{i}.toml")),
            format!(
                "storage_path = \"node-{i}-data\"\nkeys_path = \"keys/node-{i}.json\"\n\
                 listen_address = \"127.0.0.1:{}\"\nledger_url = \"{ledger_url}\"\n\n\
                 [limits]\nsync_delay_ms = 600000\nmaintenance_interval_secs = 3600\n",
                base + i as u16
            ),
        )
        .unwrap();
    }
    base
}

/// `floe ledger run` and the four `floe node run` processes start and answer their health routes.
async fn the_ledger_and_the_nodes_come_up(
    dir: &Path,
    base: u16,
    run: u64,
    started: Instant,
) -> Net {
    let ledger_port = base + NODES as u16;
    let ledger_url = format!("http://127.0.0.1:{ledger_port}");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut ledger_cmd = floe();
    ledger_cmd
        .args(["ledger", "run", "--genesis"])
        .arg(dir.join("genesis.json"))
        .arg("--data-dir")
        .arg(dir.join("ledger-data"))
        .args(["--listen", &format!("127.0.0.1:{ledger_port}")]);
    let mut ledger_proc = Proc::spawn(ledger_cmd, "ledger", &dir.join("logs"));
    ledger_proc
        .wait_healthy(&http, &format!("{ledger_url}/v1/health"))
        .await;
    let ledger = LedgerClient::new(ledger_url.clone());
    let system = ledger.system().await.unwrap();
    // Nodes serve HTTPS with the network keys the genesis registers: reach each through a
    // client pinned to its key.
    let pools = NodeHttp::new(|b| b.no_proxy()).unwrap();
    let mut nodes: Vec<Option<Proc>> = Vec::new();
    for i in 0..NODES {
        nodes.push(Some(start_node(dir, i)));
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        let (base_url, http) = endpoint(&system, &pools, base, i);
        let url = format!("{base_url}/v1/health");
        node.as_mut().unwrap().wait_healthy(&http, &url).await;
    }
    println!("ledger and {NODES} nodes up after {:?}", started.elapsed());

    let config = EncodingConfig::new(N_SHARDS).unwrap();
    let clients: Vec<NodeClient> = system
        .committee
        .members
        .iter()
        .map(|m| {
            NodeClient::for_node(
                &pools,
                &m.network_address,
                &m.pinned_keys(),
                Duration::from_secs(10),
            )
        })
        .collect();
    let user = AccountSession::new(AccountKey::from_seed(&seed(run, "user", 0)), ledger.clone());
    Net {
        dir: dir.to_path_buf(),
        base,
        system,
        pools,
        config,
        clients,
        user,
        nodes,
        ledger_proc,
    }
}

/// A blob stored on every node is certified through HTTP with the nodes' confirmations.
async fn a_blob_is_stored_on_every_node_and_certified(
    net: &Net,
    run: u64,
    started: Instant,
) -> EncodedBlob {
    let data: Vec<u8> = (0..60_000u64)
        .map(|i| seed(run, "certified", i / 32)[(i % 32) as usize])
        .collect();
    let certified = encode(&net.config, &data).unwrap();
    let object = register(&net.user, &certified).await;
    let mut partials = Vec::new();
    for (member, client) in net.clients.iter().enumerate() {
        put_metadata(client, &certified).await;
        for (pair, axis, sliver) in member_slivers(&net.system, member, &certified) {
            client
                .put_sliver(&certified.blob_id(), pair, axis, &sliver)
                .await
                .unwrap();
        }
        partials.push((
            member,
            client
                .confirmation(&certified.blob_id(), None)
                .await
                .unwrap(),
        ));
    }
    let weights = CommitteeWeights::new(
        net.system
            .committee
            .members
            .iter()
            .map(|m| CommitteeMember {
                public_key: m.protocol_key,
                weight: m.shards.len() as u16,
            })
            .collect(),
        N_SHARDS,
    )
    .unwrap();
    net.user
        .submit(TxKind::CertifyBlob {
            blob_object: object,
            certificate: Certificate::aggregate(&weights, &partials).unwrap(),
        })
        .await
        .unwrap();
    println!(
        "blob {} certified after {:?}",
        certified.blob_id(),
        started.elapsed()
    );
    certified
}

/// The victim is the member with the most shards, found by its port among the nodes.
fn the_victim_is_the_member_with_the_most_shards(net: &Net) -> Victim {
    let member = (0..NODES)
        .max_by_key(|&m| net.system.committee.members[m].shards.len())
        .unwrap();
    let node: usize = net.system.committee.members[member]
        .network_address
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .map(|port| usize::from(port - net.base))
        .unwrap();
    Victim {
        member,
        node,
        client: net.clients[member].clone(),
    }
}

/// More blobs are registered on the ledger and their metadata taken by the victim.
async fn more_blobs_are_registered_with_the_victim(
    net: &Net,
    victim: &Victim,
    run: u64,
) -> Vec<EncodedBlob> {
    let mut streamed = Vec::new();
    for b in 0..STREAMED_BLOBS {
        let data: Vec<u8> = (0..20_000u64)
            .map(|i| seed(run, "streamed", (b << 32) | (i / 32))[(i % 32) as usize])
            .collect();
        let e = encode(&net.config, &data).unwrap();
        register(&net.user, &e).await;
        put_metadata(&victim.client, &e).await;
        streamed.push(e);
    }
    streamed
}

/// The victim is SIGKILLed once half its streamed slivers are acknowledged; returns those.
async fn the_victim_is_killed_with_uploads_in_flight(
    net: &mut Net,
    victim: &Victim,
    streamed: &[EncodedBlob],
) -> Vec<Upload> {
    // Stream uploads of the registered blobs to the victim, several PUTs in flight.
    let work: Vec<Upload> = streamed
        .iter()
        .flat_map(|e| {
            member_slivers(&net.system, victim.member, e)
                .into_iter()
                .map(|(p, a, s)| (e.blob_id(), p, a, s))
        })
        .collect();
    let total = work.len();
    let queue = Arc::new(Mutex::new(work));
    let acked: Arc<Mutex<Vec<Upload>>> = Arc::default();
    let mut uploaders = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (queue, acked, client) = (queue.clone(), acked.clone(), victim.client.clone());
        uploaders.push(tokio::spawn(async move {
            loop {
                let Some((id, pair, axis, sliver)) = queue.lock().unwrap().pop() else {
                    return;
                };
                match client.put_sliver(&id, pair, axis, &sliver).await {
                    Ok(_) => acked.lock().unwrap().push((id, pair, axis, sliver)),
                    // The node is gone: stop.
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill once about half the stream is acknowledged, with uploads still in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked.lock().unwrap().len() < total / 2 {
        assert!(Instant::now() < deadline, "uploads to the victim stalled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    net.nodes[victim.node].take().unwrap().kill();
    for u in uploaders {
        u.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    println!(
        "node {} killed after {} of {total} streamed sliver uploads were acknowledged",
        victim.node,
        acked.len()
    );
    assert!(acked.len() >= total / 2);
    acked
}

/// The victim restarts on the same config and answers its health route.
async fn the_victim_restarts_on_the_same_config(net: &Net, victim: &Victim) -> Proc {
    let mut restarted = start_node(&net.dir, victim.node);
    let (victim_url, victim_http) = endpoint(&net.system, &net.pools, net.base, victim.node);
    restarted
        .wait_healthy(&victim_http, &format!("{victim_url}/v1/health"))
        .await;
    restarted
}

/// Every acknowledged sliver is served byte for byte, and the streamed blobs' metadata.
async fn every_acknowledged_sliver_is_served_byte_for_byte(
    victim: &Victim,
    acked: &[Upload],
    streamed: &[EncodedBlob],
) {
    for (id, pair, axis, sliver) in acked {
        let got = victim
            .client
            .get_sliver(id, *pair, *axis)
            .await
            .unwrap_or_else(|e| {
                panic!("acknowledged {axis} sliver of pair {pair} of {id} lost: {e}")
            });
        assert_eq!(&got, sliver, "{axis} sliver of pair {pair} of {id} changed");
    }
    for e in streamed {
        assert_eq!(
            victim.client.get_metadata(&e.blob_id()).await.unwrap(),
            *e.metadata()
        );
    }
}

/// The certified blob's slivers are served, and the victim still knows it is certified.
async fn the_certified_blob_is_still_served_and_confirmed(
    net: &Net,
    victim: &Victim,
    certified: &EncodedBlob,
) {
    let vclient = &victim.client;
    for (pair, axis, sliver) in member_slivers(&net.system, victim.member, certified) {
        let got = vclient
            .get_sliver(&certified.blob_id(), pair, axis)
            .await
            .unwrap();
        assert_eq!(got, sliver, "certified blob, {axis} sliver of pair {pair}");
    }
    // It still knows the blob is certified (its event cursor survived) and confirms it.
    let status = vclient.blob_status(&certified.blob_id()).await.unwrap();
    assert_eq!(status["permanent"]["isCertified"], true, "{status}");
    vclient
        .confirmation(&certified.blob_id(), None)
        .await
        .unwrap()
        .verify_confirmation(
            &net.system.committee.members[victim.member].protocol_key,
            0,
            &certified.blob_id(),
            &floe_crypto::BlobPersistenceType::Permanent,
        )
        .unwrap();
}
