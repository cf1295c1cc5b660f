//! [`EtcdLog`]: appends by compare-and-swap on `log/<seq>`, linearizable range reads, and a
//! [`Follower`] that tails the log (watch from a revision, with catch-up reads) and checks the
//! sequence and the hash chain of every record.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, Txn, TxnOp,
    WatchOptions, WatchStream,
};

use crate::record::{Chain, ChainError, Record};

/// Most records in one append transaction (etcd's default `--max-txn-ops` is 128; each record
/// costs one compare and one put).
pub const MAX_BATCH: usize = 64;
/// Largest record value. etcd refuses requests over `--max-request-bytes` (1.5 MiB by default);
/// a batch of records must fit in one request, so the ledger keeps entries far smaller.
pub const MAX_RECORD_BYTES: usize = 512 * 1024;
/// Largest sum of record sizes in one append transaction.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Records fetched per catch-up read.
pub const READ_PAGE: i64 = 512;

/// Where and how to reach the cluster.
#[derive(Clone, Debug)]
pub struct EtcdLogConfig {
    /// `http://host:port` of the members (any subset works; the client balances and fails over).
    pub endpoints: Vec<String>,
    /// Key prefix of this network's log, e.g. `/floe/<network>/`.
    pub prefix: String,
    /// Bound on every request.
    pub request_timeout: Duration,
    /// Bound on connecting to a member.
    pub connect_timeout: Duration,
}

impl EtcdLogConfig {
    /// Defaults: 5 s per request, 2 s to connect.
    pub fn new(endpoints: Vec<String>, prefix: impl Into<String>) -> Self {
        EtcdLogConfig {
            endpoints,
            prefix: prefix.into(),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdLogError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the log is corrupt: {0}")]
    Chain(#[from] ChainError),
    #[error(
        "records before {oldest} were pruned and this follower needs {next}: load a snapshot at or after {oldest}"
    )]
    Pruned { next: u64, oldest: u64 },
    #[error("record of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("gave up after stepping over {0} records other writers took")]
    Contended(usize),
    #[error("the log changed during the append (pruned or extended); retry")]
    Raced,
    #[error("no etcd endpoints given")]
    NoEndpoints,
}

/// The outcome of [`EtcdLog::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// All records were written at `first..first + n`; `head` is the hash of the last one.
    Written { first: u64, head: [u8; 32] },
    /// Another writer holds `seq`: `existing` is the record there (already chain-checked by
    /// nobody; the caller decides what to do with it).
    Taken { existing: Record },
}

/// A handle on the log (cheap to clone).
#[derive(Clone)]
pub struct EtcdLog {
    client: Client,
    /// What the log was connected with: its key prefix, its bounds, and the members
    /// (maintenance reaches them one by one).
    pub(crate) config: std::sync::Arc<EtcdLogConfig>,
}

impl std::fmt::Debug for EtcdLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdLog")
            .field("prefix", &self.config.prefix)
            .finish()
    }
}

/// A client of `endpoints` with the log's options, bounded by the connect timeout.
pub(crate) async fn connect_client(
    config: &EtcdLogConfig,
    endpoints: Vec<String>,
) -> Result<Client, EtcdLogError> {
    let options = ConnectOptions::new()
        .with_connect_timeout(config.connect_timeout)
        .with_timeout(config.request_timeout)
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true);
    bounded(
        config.connect_timeout + config.request_timeout,
        Client::connect(endpoints, Some(options)),
    )
    .await
}

pub(crate) async fn bounded<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, EtcdLogError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(EtcdLogError::from),
        Err(_) => Err(EtcdLogError::Timeout(limit)),
    }
}

impl EtcdLog {
    /// Connect to the cluster. Bounded by the connect timeout.
    pub async fn connect(config: &EtcdLogConfig) -> Result<Self, EtcdLogError> {
        if config.endpoints.is_empty() {
            return Err(EtcdLogError::NoEndpoints);
        }
        let client = connect_client(config, config.endpoints.clone()).await?;
        Ok(EtcdLog {
            client,
            config: std::sync::Arc::new(config.clone()),
        })
    }

    /// The key of record `seq` (zero-padded so that key order is sequence order).
    pub fn key(&self, seq: u64) -> Vec<u8> {
        format!("{}log/{seq:020}", self.config.prefix).into_bytes()
    }

    fn log_prefix(&self) -> Vec<u8> {
        format!("{}log/", self.config.prefix).into_bytes()
    }

    /// The first key after every log key.
    fn log_end(&self) -> Vec<u8> {
        format!("{}log0", self.config.prefix).into_bytes() // '0' follows '/'
    }

    fn seq_of(&self, key: &[u8]) -> Option<u64> {
        let p = self.log_prefix();
        let rest = key.strip_prefix(p.as_slice())?;
        std::str::from_utf8(rest).ok()?.parse().ok()
    }

    /// Write `payloads` as records `seq, seq+1, …`, the first chained to `prev_hash`, in one
    /// transaction that succeeds only if none of those keys exists yet **and record `seq - 1`
    /// does** (for `seq = 0`: the log was never pruned). Idempotent: a retry of a write that did
    /// land finds the records taken and can compare them with its own.
    ///
    /// The predecessor check is what keeps a writer with a stale position out of a pruned
    /// prefix: "key absent" alone is also true of a deleted record, and a record written there
    /// would fork the log (only replicas as stale as the writer would ever apply it). Pruning
    /// deletes a prefix, so an existing predecessor proves `seq` lies above it.
    pub async fn append(
        &self,
        seq: u64,
        prev_hash: [u8; 32],
        payloads: &[Vec<u8>],
    ) -> Result<Appended, EtcdLogError> {
        assert!(!payloads.is_empty() && payloads.len() <= MAX_BATCH);
        let mut compares = Vec::with_capacity(payloads.len());
        let mut puts = Vec::with_capacity(payloads.len());
        let mut prev = prev_hash;
        let mut total = 0;
        for (i, payload) in payloads.iter().enumerate() {
            let record = Record::new(seq + i as u64, prev, payload.clone());
            let bytes = record.to_bytes();
            if bytes.len() > MAX_RECORD_BYTES {
                return Err(EtcdLogError::TooLarge {
                    len: bytes.len(),
                    max: MAX_RECORD_BYTES,
                });
            }
            total += bytes.len();
            prev = record.hash();
            let key = self.key(record.seq);
            compares.push(Compare::create_revision(key.clone(), CompareOp::Equal, 0));
            puts.push(TxnOp::put(key, bytes, None));
        }
        compares.push(match seq.checked_sub(1) {
            Some(before) => Compare::create_revision(self.key(before), CompareOp::Greater, 0),
            None => Compare::create_revision(self.pruned_key(), CompareOp::Equal, 0),
        });
        if total > MAX_BATCH_BYTES {
            return Err(EtcdLogError::TooLarge {
                len: total,
                max: MAX_BATCH_BYTES,
            });
        }
        let txn = Txn::new().when(compares).and_then(puts);
        let mut kv = self.client.kv_client();
        let resp = bounded(self.config.request_timeout, kv.txn(txn)).await?;
        if resp.succeeded() {
            return Ok(Appended::Written {
                first: seq,
                head: prev,
            });
        }
        if let Some(existing) = self.get(seq).await? {
            return Ok(Appended::Taken { existing });
        }
        // `seq` is free but its predecessor is not there: either `seq` is in the pruned prefix
        // or it is past the log's end (a hint from the future, which no writer makes).
        match self.bounds().await? {
            Some((oldest, _)) if seq < oldest => Err(EtcdLogError::Pruned { next: seq, oldest }),
            Some((_, end)) if seq > end => Err(EtcdLogError::Chain(ChainError::Gap {
                expected: end,
                got: seq,
            })),
            // The log changed between the transaction and this look (pruned to empty, or the
            // predecessor just appeared): the caller retries.
            _ => Err(EtcdLogError::Raced),
        }
    }

    /// The marker pruning leaves, so that nothing is ever written at 0 again.
    fn pruned_key(&self) -> Vec<u8> {
        format!("{}pruned", self.config.prefix).into_bytes()
    }

    /// Record `seq`, if present (linearizable read).
    pub async fn get(&self, seq: u64) -> Result<Option<Record>, EtcdLogError> {
        let mut kv = self.client.kv_client();
        let resp = bounded(self.config.request_timeout, kv.get(self.key(seq), None)).await?;
        match resp.kvs().first() {
            Some(kv) => Ok(Some(Record::decode(seq, kv.value())?)),
            None => Ok(None),
        }
    }

    /// Up to [`READ_PAGE`] records from `from` on, in order (linearizable), and the cluster
    /// revision the read saw.
    pub async fn read_from(&self, from: u64) -> Result<(Vec<Record>, i64), EtcdLogError> {
        let mut kv = self.client.kv_client();
        let options = GetOptions::new()
            .with_range(self.log_end())
            .with_limit(READ_PAGE);
        let resp = bounded(
            self.config.request_timeout,
            kv.get(self.key(from), Some(options)),
        )
        .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut records = Vec::with_capacity(resp.kvs().len());
        for kv in resp.kvs() {
            let Some(seq) = self.seq_of(kv.key()) else {
                continue;
            };
            match Record::decode(seq, kv.value()) {
                Ok(r) => records.push(r),
                Err(e) if records.is_empty() => return Err(e.into()),
                Err(_) => break, // reported by the next read, after these are applied
            }
        }
        Ok((records, revision))
    }

    /// The lowest and the next sequence number present (`None` when the log is empty).
    pub async fn bounds(&self) -> Result<Option<(u64, u64)>, EtcdLogError> {
        let mut kv = self.client.kv_client();
        let first = bounded(
            self.config.request_timeout,
            kv.get(
                self.log_prefix(),
                Some(
                    GetOptions::new()
                        .with_range(self.log_end())
                        .with_limit(1)
                        .with_keys_only(),
                ),
            ),
        )
        .await?;
        let Some(lo) = first.kvs().first().and_then(|k| self.seq_of(k.key())) else {
            return Ok(None);
        };
        let last = bounded(
            self.config.request_timeout,
            kv.get(
                self.log_prefix(),
                Some(
                    GetOptions::new()
                        .with_range(self.log_end())
                        .with_limit(1)
                        .with_keys_only()
                        .with_sort(
                            etcd_client::SortTarget::Key,
                            etcd_client::SortOrder::Descend,
                        ),
                ),
            ),
        )
        .await?;
        let hi = last
            .kvs()
            .first()
            .and_then(|k| self.seq_of(k.key()))
            .unwrap_or(lo);
        Ok(Some((lo, hi + 1)))
    }

    /// Delete records below `seq` and compact etcd's history up to that deletion, so that the
    /// space can be reclaimed (a `defragment` of each member returns it to the filesystem: see
    /// [`Self::defragment_members`]).
    /// Returns the revision compacted to.
    pub async fn prune_below(&self, seq: u64) -> Result<i64, EtcdLogError> {
        let mut kv = self.client.kv_client();
        let txn = Txn::new().and_then(vec![
            TxnOp::delete(
                self.log_prefix(),
                Some(DeleteOptions::new().with_range(self.key(seq))),
            ),
            TxnOp::put(self.pruned_key(), seq.to_be_bytes().to_vec(), None),
        ]);
        let resp = bounded(self.config.request_timeout, kv.txn(txn)).await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        if revision > 0 {
            let mut kv = self.client.kv_client();
            bounded(
                self.config.request_timeout,
                kv.compact(
                    revision,
                    Some(etcd_client::CompactionOptions::new().with_physical()),
                ),
            )
            .await?;
        }
        Ok(revision)
    }

    /// Put an arbitrary small value under `<prefix><name>` (used for snapshot pointers).
    pub async fn put_meta(&self, name: &str, value: Vec<u8>) -> Result<(), EtcdLogError> {
        let mut kv = self.client.kv_client();
        let key = format!("{}{name}", self.config.prefix);
        bounded(self.config.request_timeout, kv.put(key, value, None)).await?;
        Ok(())
    }

    /// The value under `<prefix><name>`, if any.
    pub async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, EtcdLogError> {
        let mut kv = self.client.kv_client();
        let key = format!("{}{name}", self.config.prefix);
        let resp = bounded(self.config.request_timeout, kv.get(key, None)).await?;
        Ok(resp.kvs().first().map(|kv| kv.value().to_vec()))
    }

    /// The status of every member reachable through this client: (endpoint, member id,
    /// leader id, raft index).
    pub async fn member_status(&self, endpoint: &str) -> Result<MemberStatus, EtcdLogError> {
        member_status(endpoint).await
    }

    /// Start following the log at `chain` (the next record expected and the hash it must
    /// name).
    pub fn follow(&self, chain: Chain) -> Follower {
        Follower {
            log: self.clone(),
            chain,
            watch: None,
        }
    }
}

/// The status of the member at `endpoint` (bounded to about 2 s).
pub async fn member_status(endpoint: &str) -> Result<MemberStatus, EtcdLogError> {
    {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(1))
            .with_timeout(Duration::from_secs(1));
        let mut one = bounded(
            Duration::from_secs(2),
            Client::connect([endpoint], Some(options)),
        )
        .await?;
        let status = bounded(Duration::from_secs(2), one.status()).await?;
        let header = status.header();
        Ok(MemberStatus {
            endpoint: endpoint.to_string(),
            member_id: header.map_or(0, |h| h.member_id()),
            leader_id: status.leader(),
            raft_index: status.raft_index(),
            version: status.version().to_string(),
        })
    }
}

/// One etcd member's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    pub endpoint: String,
    pub member_id: u64,
    pub leader_id: u64,
    pub raft_index: u64,
    pub version: String,
}

/// Tails the log from a position, handing on only records that extend the chain.
///
/// Catch-up is by linearizable range reads; once a read comes back short, a watch from the
/// read's revision + 1 delivers new records. Watch events are only a fast path: an event out of
/// order (etcd 3.4 can replay a watch after a partition), a cancelled watch (compaction) or a
/// broken stream drops the watch and falls back to range reads, and every record passes
/// [`Chain::accept`] whichever way it came.
pub struct Follower {
    log: EtcdLog,
    chain: Chain,
    watch: Option<WatchStream>,
}

impl Follower {
    /// The position reached.
    pub fn chain(&self) -> Chain {
        self.chain
    }

    /// The next records in order (possibly none if nothing arrived within `wait`).
    pub async fn next(&mut self, wait: Duration) -> Result<Vec<Record>, EtcdLogError> {
        if self.watch.is_none() {
            let (records, revision) = self.log.read_from(self.chain.next_seq).await?;
            if let Some(first) = records.first()
                && first.seq != self.chain.next_seq
            {
                return Err(EtcdLogError::Pruned {
                    next: self.chain.next_seq,
                    oldest: first.seq,
                });
            }
            if records.is_empty()
                && let Some((lo, _)) = self.log.bounds().await?
                && lo > self.chain.next_seq
            {
                return Err(EtcdLogError::Pruned {
                    next: self.chain.next_seq,
                    oldest: lo,
                });
            }
            if !records.is_empty() {
                return self.accept_all(records);
            }
            // Caught up: watch from just after what the read saw.
            let options = WatchOptions::new()
                .with_range(self.log.log_end())
                .with_start_revision(revision + 1);
            let mut client = self.log.client.clone();
            let stream = bounded(
                self.log.config.request_timeout,
                client.watch(self.log.key(self.chain.next_seq), Some(options)),
            )
            .await?;
            self.watch = Some(stream);
        }
        let stream = self.watch.as_mut().expect("set above");
        let message = match tokio::time::timeout(wait, stream.message()).await {
            Err(_) => return Ok(Vec::new()),
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) | Ok(Err(_)) => {
                self.watch = None;
                return Ok(Vec::new());
            }
        };
        if message.canceled() {
            tracing::info!(
                compact_revision = message.compact_revision(),
                reason = message.cancel_reason(),
                "log watch cancelled; catching up by reads"
            );
            self.watch = None;
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for event in message.events() {
            if event.event_type() != EventType::Put {
                continue;
            }
            let Some(kv) = event.kv() else { continue };
            let Some(seq) = self.log.seq_of(kv.key()) else {
                continue;
            };
            if seq < self.chain.next_seq {
                continue; // already applied (a replayed event)
            }
            if seq > self.chain.next_seq {
                // Out of order: drop the watch, the next call reads the gap.
                self.watch = None;
                break;
            }
            match Record::decode(seq, kv.value()) {
                Ok(record) => out.push(record),
                Err(e) if out.is_empty() => return Err(e.into()),
                Err(_) => break, // reported on the next call, after these are applied
            }
        }
        self.accept_all(out)
    }

    /// Accept `records` in order; return the accepted prefix, or the first refusal if nothing
    /// was accepted (so that what passed is applied before an error stops the caller).
    fn accept_all(&mut self, records: Vec<Record>) -> Result<Vec<Record>, EtcdLogError> {
        let mut ok = Vec::with_capacity(records.len());
        for r in records {
            match self.chain.accept(&r) {
                Ok(()) => ok.push(r),
                Err(e) if ok.is_empty() => {
                    self.watch = None;
                    return Err(e.into());
                }
                Err(_) => {
                    self.watch = None;
                    break;
                }
            }
        }
        Ok(ok)
    }
}
