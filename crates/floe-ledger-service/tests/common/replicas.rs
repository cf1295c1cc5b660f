//! Replicas over a real etcd cluster, for the replica tests: the cluster, options, a replica
//! served over HTTP, and the checks that replicas converge and agree.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use floe_core::BlobId;
use floe_ledger::{AccountKey, GenesisConfig, TxKind};
use floe_ledger_etcd::{EtcdLogConfig, EtcdMembers};
use floe_ledger_service::{Ledger, ReplicaOptions, SystemClock};

/// A register transaction of account `account`'s `i`th blob.
pub fn register(account: u64, i: u64) -> (TxKind, BlobId) {
    super::register(account * 10_000 + i)
}

pub async fn etcd(dir: &Path) -> EtcdMembers {
    EtcdMembers::start(&dir.join("etcd"), 3)
        .await
        .unwrap_or_else(|e| panic!("cannot run the etcd cluster this test needs: {e}"))
}

pub fn options(members: &EtcdMembers, every: u64, peers: Vec<String>) -> ReplicaOptions {
    ReplicaOptions {
        etcd: EtcdLogConfig::new(members.endpoints(), "/test/"),
        snapshot_every: every,
        prune: true,
        peers,
    }
}

/// [`options`] for a replica that keeps every record (no pruning), so that a later replica can
/// replay the whole log.
pub fn keep_all(members: &EtcdMembers, every: u64, peers: Vec<String>) -> ReplicaOptions {
    ReplicaOptions {
        prune: false,
        ..options(members, every, peers)
    }
}

/// Wait (bounded) until `ledger` applied entry `last`, then half a second more for the
/// checkpoints of its snapshots to land in the log.
pub async fn settled(ledger: &Ledger, last: u64) {
    assert!(
        ledger.wait_applied(last + 1, Duration::from_secs(10)).await,
        "entry {last} was not applied: {:?}",
        ledger.progress()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Registrations `range` by the account of `tag` (its `i`th blob at nonce `i`), submitted one
/// after the other to `ledger`; returns the entry index of the last.
pub async fn submit_registrations(ledger: &Ledger, tag: u64, range: std::ops::Range<u64>) -> u64 {
    let account = AccountKey::from_seed(&super::seed("user", tag));
    let mut last = 0;
    for i in range {
        last = ledger
            .submit_tx(account.sign(i, register(tag, i).0))
            .await
            .unwrap()
            .entry_index;
    }
    last
}

/// A replica served over HTTP; dropping the handle stops the server.
pub struct Served {
    pub ledger: Arc<Ledger>,
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Served {
    pub async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = (&mut self.server).await;
    }
}

pub async fn serve_on(ledger: Arc<Ledger>, port: u16) -> Served {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let l = ledger.clone();
    let server = tokio::spawn(async move {
        let _ = floe_ledger_service::serve(l, listener, async {
            let _ = rx.await;
        })
        .await;
    });
    Served {
        ledger,
        url,
        stop: Some(stop),
        server,
    }
}

pub async fn open(dir: &Path, g: &GenesisConfig, o: ReplicaOptions) -> Arc<Ledger> {
    Ledger::open_replicated(dir, g.clone(), Arc::new(SystemClock), o)
        .await
        .expect("replica opens")
}

/// Wait until every ledger has applied `count` entries (bounded).
pub async fn converge(ledgers: &[&Arc<Ledger>], count: u64) {
    for l in ledgers {
        assert!(
            l.wait_applied(count, Duration::from_secs(30)).await,
            "a replica did not reach {count} entries: {:?}",
            l.progress()
        );
    }
}

/// Replicas agree on the digest after every entry both still hold, and on the state.
pub async fn assert_agree(a: &Ledger, b: &Ledger) {
    let (na, _) = a.progress();
    let (nb, _) = b.progress();
    let n = na.min(nb);
    let mut compared = 0;
    for i in 0..n {
        if let (Some(x), Some(y)) = (a.digest_after(i), b.digest_after(i)) {
            assert_eq!(x, y, "replicas differ after entry {i}");
            compared += 1;
        }
    }
    assert!(compared > 0, "no common entries to compare");
    if na == nb {
        let ha = a.read(|s, _| s.state_hash()).await.unwrap();
        let hb = b.read(|s, _| s.state_hash()).await.unwrap();
        assert_eq!(ha, hb, "equal positions, different states");
    }
}
