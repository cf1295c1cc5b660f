//! The write path, ending at the point of availability.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use floe_core::Epoch;
use floe_core::{BlobId, EncodingType, ShardIndex, SliverPairIndex, SliverType};
use floe_crypto::{
    BlobPersistenceType, Certificate, Confirmation, SignedMessage, VerifiedPartials,
};
use floe_ledger::api_types::{ObjectResponse, SystemInfo};
use floe_ledger::{BlobObject, BlobStatus, EventKind, TxKind};
use floe_node_client::NodeClientError;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::committee::CommitteeView;
use crate::health::NodeHealth;
use crate::liveness::{Liveness, TICK};
use crate::slivers::Encoded;
use crate::types::{BlobObjectJson, BlobStoreResult, CertifiedBy, EventId, ResourceOperation};
use crate::{Client, ClientError, CommunicationConfig, NodeFailure, Progress};

/// How long a blob is to be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// For this many epochs from the current one (`end = current + n`).
    Epochs(u32),
    /// As long as the network allows (`max_epochs_ahead`).
    Max,
    /// Until this epoch (exclusive).
    EndEpoch(Epoch),
    /// Until the first epoch that starts at or after this time (Unix milliseconds): the blob
    /// expires no earlier than it, by the epoch schedule the ledger publishes.
    NotBefore(u64),
}

impl Lifetime {
    /// The end epoch this lifetime asks for, checked against the network's limits.
    pub fn end_epoch(self, system: &SystemInfo) -> Result<Epoch, ClientError> {
        let now = system.epoch;
        let max = system.max_epochs_ahead;
        let end = match self {
            Lifetime::Epochs(0) => {
                return Err(ClientError::BadLifetime(
                    "a blob must be stored for at least 1 epoch".into(),
                ));
            }
            Lifetime::Epochs(n) if n > max => {
                return Err(ClientError::BadLifetime(format!(
                    "{n} epochs is more than the network's maximum of {max}; use `--epochs max`"
                )));
            }
            Lifetime::Epochs(n) => now + n,
            Lifetime::Max => now + max,
            Lifetime::EndEpoch(e) if e <= now => {
                return Err(ClientError::BadLifetime(format!(
                    "end epoch {e} is not after the current epoch {now}"
                )));
            }
            Lifetime::EndEpoch(e) if e - now > max => {
                return Err(ClientError::BadLifetime(format!(
                    "end epoch {e} is more than {max} epochs after the current epoch {now}"
                )));
            }
            Lifetime::EndEpoch(e) => e,
            Lifetime::NotBefore(t) => {
                let start = system.current_epoch_start_ms;
                let duration = system.epoch_duration_ms.max(1);
                let epochs = t.saturating_sub(start).div_ceil(duration).max(1);
                if epochs > u64::from(max) {
                    return Err(ClientError::BadLifetime(format!(
                        "the earliest expiry time is {epochs} epochs ahead (epochs last {} s); the network stores at most {max} epochs ahead, until the start of epoch {}",
                        duration / 1000,
                        now + max
                    )));
                }
                now + epochs as Epoch
            }
        };
        Ok(end)
    }
}

/// What to store and how.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub lifetime: Lifetime,
    /// Deletable blobs (the default) can be deleted by their owner before they expire.
    pub deletable: bool,
    /// Store even if the blob is already certified long enough.
    pub force: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            lifetime: Lifetime::Epochs(1),
            deletable: true,
            force: false,
        }
    }
}

/// Where a store spent its time.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreTimings {
    pub encode: Duration,
    /// Status check and registration on the ledger.
    pub register: Duration,
    /// Metadata and sliver uploads until a quorum confirmed, plus the tail.
    pub upload: Duration,
    /// Aggregation and certification on the ledger.
    pub certify: Duration,
}

/// The result of a store, with the blob object when one was created.
#[derive(Clone, Debug)]
pub struct StoreOutcome {
    pub result: BlobStoreResult,
    pub object: Option<BlobObject>,
    pub timings: StoreTimings,
    /// Shard weight whose confirmations went into the certificate.
    pub confirmed_weight: u64,
}

impl Client {
    /// Walrus's ID of the ledger event at `index`: its entry's digest comes from the ledger.
    pub(crate) async fn event_id(&self, index: u64) -> Result<EventId, ClientError> {
        let page = self.ledger.events(index, 1, Duration::ZERO).await?;
        page.events
            .into_iter()
            .find(|e| e.index == index)
            .map(|e| EventId::new(index, e.tx_digest))
            .ok_or_else(|| {
                ClientError::Internal(format!("the ledger does not serve its event {index}"))
            })
    }

    /// Store `data` until the lifetime in `options` ends; returns once the blob is certified.
    pub async fn store(
        &self,
        data: Vec<u8>,
        options: &StoreOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<StoreOutcome, ClientError> {
        let wallet = self.wallet()?.clone();
        let (system, committee) = self.committee().await?;
        let end_epoch = options.lifetime.end_epoch(&system)?;
        let size = data.len() as u64;
        if size > system.max_blob_size {
            return Err(ClientError::BlobTooLarge {
                size,
                max: system.max_blob_size,
            });
        }
        let mut timings = StoreTimings::default();

        let t = Instant::now();
        progress.phase("encoding", size);
        let config = committee.config;
        // The blob's buffer becomes the primary slivers (in memory) or stays the only copy of the
        // blob (spilled): no second copy of the blob either way.
        // Called from outside the rayon pool: the encoder's parallel phases then run on both of
        // the pool's threads from their start (on a pool thread it took about 10% longer).
        let comm = self.config.communication.clone();
        let encoded =
            tokio::task::spawn_blocking(move || Encoded::encode(&config, data, size, &comm))
                .await
                .map_err(|e| ClientError::Internal(e.to_string()))??;
        progress.advance(size);
        timings.encode = t.elapsed();
        let blob_id = encoded.blob_id();
        let encoded_length = config
            .encoded_length(size)
            .map_err(|e| ClientError::Internal(e.to_string()))?;

        let t = Instant::now();
        let owner = wallet.address();
        let account = self.ledger.account(&owner).await?;
        let mine: Vec<&BlobObject> = account
            .blobs
            .iter()
            .filter(|b| b.blob_id == blob_id && b.is_live(system.epoch))
            .collect();
        if !options.force {
            let status = self.ledger.blob_status(&blob_id).await?;
            match status.status {
                BlobStatus::Invalid { event } => {
                    progress.finish();
                    return Ok(StoreOutcome {
                        result: BlobStoreResult::MarkedInvalid {
                            blob_id,
                            event: self.event_id(event).await?,
                        },
                        object: None,
                        timings,
                        confirmed_weight: 0,
                    });
                }
                BlobStatus::Certified {
                    end_epoch: e,
                    permanent: true,
                    event,
                    ..
                } if e >= end_epoch => {
                    progress.finish();
                    return Ok(already(
                        blob_id,
                        CertifiedBy::Event(self.event_id(event).await?),
                        e,
                        timings,
                    ));
                }
                _ => {}
            }
            if let Some(b) = mine
                .iter()
                .find(|b| b.certified_epoch.is_some() && b.end_epoch() >= end_epoch)
            {
                progress.finish();
                return Ok(already(
                    blob_id,
                    CertifiedBy::Object(b.id),
                    b.end_epoch(),
                    timings,
                ));
            }
        }
        let reusable = mine
            .iter()
            .find(|b| {
                b.certified_epoch.is_none()
                    && b.end_epoch() >= end_epoch
                    && b.deletable == options.deletable
            })
            .map(|b| b.id);
        let (object_id, operation) = match reusable {
            Some(id) => (id, ResourceOperation::ReuseRegistration { encoded_length }),
            None => {
                let r = wallet
                    .submit(TxKind::ReserveAndRegister {
                        end_epoch,
                        blob_id,
                        root_hash: encoded.metadata().metadata.root_hash(),
                        size,
                        encoding_type: EncodingType::RS2,
                        deletable: options.deletable,
                    })
                    .await?;
                let id = r
                    .events
                    .iter()
                    .find_map(|e| match &e.kind {
                        EventKind::BlobRegistered { object_id, .. } => Some(*object_id),
                        _ => None,
                    })
                    .ok_or_else(|| {
                        ClientError::Internal("registration emitted no BlobRegistered".into())
                    })?;
                (
                    id,
                    ResourceOperation::RegisterFromScratch {
                        encoded_length,
                        epochs_ahead: end_epoch - system.epoch,
                    },
                )
            }
        };
        timings.register = t.elapsed();

        let t = Instant::now();
        let persistence = if options.deletable {
            BlobPersistenceType::Deletable { object_id }
        } else {
            BlobPersistenceType::Permanent
        };
        let committee = Arc::new(committee);
        let encoded = Arc::new(encoded);
        let (partials, weight) = distribute(
            &self.config.communication,
            &committee,
            &encoded,
            persistence,
            &progress,
            &self.health,
        )
        .await?;
        timings.upload = t.elapsed();

        let t = Instant::now();
        progress.phase("certifying", 0);
        // Their signatures were checked as they were settled: no pairing again here.
        let certificate = Certificate::from_verified(&committee.weights, &partials)
            .map_err(|e| ClientError::Internal(format!("aggregating confirmations: {e}")))?;
        submit_with_retries(&self.config.communication, || {
            wallet.submit(TxKind::CertifyBlob {
                blob_object: object_id,
                certificate: certificate.clone(),
            })
        })
        .await?;
        let object = match self.ledger.object(&object_id).await? {
            Some(ObjectResponse::Blob(b)) => b,
            _ => {
                return Err(ClientError::Internal(format!(
                    "blob object {object_id} vanished after certification"
                )));
            }
        };
        timings.certify = t.elapsed();
        progress.finish();
        Ok(StoreOutcome {
            result: BlobStoreResult::NewlyCreated {
                blob_object: BlobObjectJson::from(&object),
                resource_operation: operation,
                cost: 0,
                shared_blob_object: None,
            },
            object: Some(object),
            timings,
            confirmed_weight: weight,
        })
    }
}

fn already(
    blob_id: BlobId,
    by: CertifiedBy,
    end_epoch: Epoch,
    timings: StoreTimings,
) -> StoreOutcome {
    StoreOutcome {
        result: BlobStoreResult::AlreadyCertified {
            blob_id,
            certified_by: by,
            end_epoch,
        },
        object: None,
        timings,
        confirmed_weight: 0,
    }
}

/// Retry a ledger submission on transient failures, with backoff.
async fn submit_with_retries<F, Fut, T>(
    comm: &CommunicationConfig,
    mut f: F,
) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, floe_ledger_client::LedgerClientError>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt + 1 < comm.max_attempts => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "ledger submission failed; retrying");
                tokio::time::sleep(comm.backoff(attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Bytes of one sliver pair (primary and secondary) of `encoded`.
fn pair_bytes(encoded: &Encoded) -> u64 {
    let (config, sym) = (encoded.config(), encoded.symbol_size());
    (config.sliver_len(SliverType::Primary, sym) + config.sliver_len(SliverType::Secondary, sym))
        as u64
}

/// Everything an upload task needs.
struct Upload {
    comm: CommunicationConfig,
    committee: Arc<CommitteeView>,
    encoded: Arc<Encoded>,
    persistence: BlobPersistenceType,
    in_flight: Arc<Semaphore>,
    in_flight_kib: u64,
    progress: Arc<dyn Progress>,
    /// Per member: when its current request started, in ms after `base` plus one (0: none).
    activity: Vec<AtomicU64>,
    base: Instant,
}

impl Upload {
    /// Member `idx` starts a request now.
    fn active(&self, idx: usize) {
        let ms = self.base.elapsed().as_millis() as u64 + 1;
        self.activity[idx].store(ms, Ordering::Relaxed);
    }

    /// Since when member `idx` has been waiting for its current request, if it has one.
    fn waiting_since(&self, idx: usize) -> Option<Instant> {
        match self.activity[idx].load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.base + Duration::from_millis(ms - 1)),
        }
    }
}

/// Batches in flight at once (across all nodes) while a spilled blob uploads.
const SPILLED_IN_FLIGHT_BATCHES: u64 = 4;

/// Upload to every member (bounded), until members holding n − f shards confirmed and the tail
/// passed, or until the members not failed nor silent (see [`Liveness`]) can no longer make up
/// n − f. Returns the verified confirmations and their weight. Members that failed, or had not
/// confirmed by the end, are remembered in `health` as suspect: the operations that follow do
/// not wait for them after a quorum, and reads ask them last.
async fn distribute(
    comm: &CommunicationConfig,
    committee: &Arc<CommitteeView>,
    encoded: &Arc<Encoded>,
    persistence: BlobPersistenceType,
    progress: &Arc<dyn Progress>,
    health: &NodeHealth,
) -> Result<(Vec<VerifiedPartials>, u64), ClientError> {
    let blob_id = encoded.blob_id();
    let total = pair_bytes(encoded) * u64::from(encoded.config().n_shards());
    progress.phase("uploading", total);
    // A spilled blob's batches are copies read back from its file, so fewer are in flight: the
    // writer's memory stays near the blob itself.
    let in_flight_bytes = if encoded.is_spilled() {
        comm.max_data_in_flight_bytes
            .min(SPILLED_IN_FLIGHT_BATCHES * comm.batch_bytes)
    } else {
        comm.max_data_in_flight_bytes
    };
    let in_flight_kib = (in_flight_bytes / 1024).clamp(1, u64::from(u32::MAX >> 3));
    let members = committee.members.len();
    let ctx = Arc::new(Upload {
        comm: comm.clone(),
        committee: committee.clone(),
        encoded: encoded.clone(),
        persistence,
        in_flight: Arc::new(Semaphore::new(in_flight_kib as usize)),
        in_flight_kib,
        progress: progress.clone(),
        activity: (0..members).map(|_| AtomicU64::new(0)).collect(),
        base: Instant::now(),
    });
    let nodes = Arc::new(Semaphore::new(comm.max_concurrent_nodes));
    let mut set = JoinSet::new();
    for idx in 0..members {
        if committee.members[idx].weight() == 0 {
            continue;
        }
        let (ctx, nodes) = (ctx.clone(), nodes.clone());
        set.spawn(async move {
            let _permit = nodes.acquire_owned().await;
            ctx.active(idx);
            (idx, upload_to_member(&ctx, idx).await)
        });
    }
    let start = Instant::now();
    let quorum = committee.quorum();
    let silent_at_start: Vec<bool> = committee
        .members
        .iter()
        .map(|m| health.is_silent(&m.info.network_address, start))
        .collect();
    let mut liveness = Liveness::new(comm);
    // Confirmations with checked signatures (a set per check), and their weight.
    let mut weight = 0u64;
    let mut partials: Vec<VerifiedPartials> = Vec::new();
    let mut unchecked = Unchecked::default();
    let mut failures = Vec::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut answered = vec![false; members];
    let open = |answered: &[bool], i: usize| !answered[i] && committee.members[i].weight() > 0;
    loop {
        let waiting: Vec<usize> = (0..members)
            .filter(|&i| open(&answered, i) && !liveness.is_silent(i))
            .collect();
        // Weight that may still confirm: once short of a quorum, nothing more can help.
        let possible: u64 = weight
            + unchecked.weight
            + waiting
                .iter()
                .map(|&i| committee.members[i].weight())
                .sum::<u64>();
        if possible < quorum {
            tracing::warn!(%blob_id, weight, possible, quorum, "too many nodes failed or are silent");
            break;
        }
        // After a quorum, stop waiting once only nodes found silent (before, or by the probe
        // sent at the quorum) are left.
        if deadline.is_some() && waiting.iter().all(|&i| silent_at_start[i]) {
            break;
        }
        let now = Instant::now();
        liveness.probe_stalled(
            committee,
            waiting
                .iter()
                .filter_map(|&i| ctx.waiting_since(i).map(|t| (i, t))),
            now,
        );
        let sleep_until = deadline
            .map(|d| d.min(tokio::time::Instant::now() + TICK))
            .unwrap_or_else(|| tokio::time::Instant::now() + TICK);
        let joined = tokio::select! {
            j = set.join_next() => match j {
                Some(j) => j,
                None => break,
            },
            verdict = liveness.next(), if liveness.probing() => {
                if liveness.record(verdict, Instant::now(), committee, health) {
                    let node = committee.members[verdict.0].label();
                    tracing::warn!(%blob_id, %node, "node is silent");
                }
                continue;
            }
            _ = tokio::time::sleep_until(sleep_until) => {
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break;
                }
                continue;
            }
        };
        let (idx, result) = joined.map_err(|e| ClientError::Internal(e.to_string()))?;
        let member = &committee.members[idx];
        answered[idx] = true;
        match result {
            Ok(signed) => {
                liveness.answered(idx);
                unchecked.push(idx, member.weight(), signed);
                if weight + unchecked.weight < quorum || deadline.is_some() {
                    continue;
                }
                // These would complete a quorum: check their signatures first.
                weight += unchecked.settle(committee, health, &mut partials, &mut failures);
                if weight >= quorum {
                    let tail = comm.tail(start.elapsed());
                    tracing::debug!(%blob_id, ?tail, "quorum confirmed; finishing the tail");
                    deadline = Some(tokio::time::Instant::now() + tail);
                    // The tail waits only for nodes that still answer a probe.
                    let still = (0..members).filter(|&i| open(&answered, i));
                    liveness.probe_now(committee, still, comm.tail_probe(start.elapsed()));
                }
            }
            Err(reason) => {
                health.suspect(&member.info.network_address, Instant::now());
                tracing::warn!(%blob_id, node = %member.label(), %reason, "upload failed");
                failures.push(NodeFailure {
                    node: member.label(),
                    shards: member.info.shards.len(),
                    reason,
                });
            }
        }
    }
    set.abort_all();
    // Those that came after the quorum (or that could not make one).
    weight += unchecked.settle(committee, health, &mut partials, &mut failures);
    let now = Instant::now();
    for (member, _) in committee
        .members
        .iter()
        .zip(&answered)
        .filter(|(m, answered)| !**answered && m.weight() > 0)
    {
        health.suspect(&member.info.network_address, now);
    }
    if weight < quorum {
        failures.extend(liveness.failures(committee));
        return Err(ClientError::NotEnoughConfirmations {
            blob_id,
            weight,
            needed: quorum,
            failures,
        });
    }
    Ok((partials, weight))
}

/// Is this node error worth retrying?
fn transient(e: &NodeClientError) -> bool {
    match e {
        NodeClientError::Unreachable { .. } => true,
        NodeClientError::Api { status, .. } => *status == 429 || *status >= 500,
        NodeClientError::Decode { .. } => false,
    }
}

/// Run `op` with bounded retries on transient errors; `NOT_REGISTERED` is retried until the
/// registration wait is over (the node has not seen the registration event yet).
async fn with_retries<T, F, Fut>(
    comm: &CommunicationConfig,
    what: &str,
    mut op: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, NodeClientError>>,
{
    let registration_deadline = Instant::now() + Duration::from_millis(comm.registration_wait_ms);
    let mut attempt = 0u32;
    loop {
        let e = match op().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if e.reason() == Some("NOT_REGISTERED") && Instant::now() < registration_deadline {
            tokio::time::sleep(Duration::from_millis(comm.registration_poll_ms.max(1))).await;
            continue;
        }
        attempt += 1;
        if !transient(&e) || attempt >= comm.max_attempts {
            return Err(format!("{what}: {e}"));
        }
        tokio::time::sleep(comm.backoff(attempt)).await;
    }
}

/// Metadata, then this member's sliver pairs in batches, then its confirmation (verified).
async fn upload_to_member(ctx: &Upload, idx: usize) -> Result<SignedMessage, String> {
    let member = &ctx.committee.members[idx];
    let client = &member.client;
    let blob_id = ctx.encoded.blob_id();
    let n = ctx.committee.n_shards();
    let metadata = &ctx.encoded.metadata().metadata;
    with_retries(&ctx.comm, "storing metadata", || {
        client.put_metadata(&blob_id, metadata)
    })
    .await?;

    // Each batch is written once, straight from the encoded blob, and shared by its retries.
    let n_pairs = member.info.shards.len();
    let pair_bytes = pair_bytes(&ctx.encoded);
    let per_batch = (ctx.comm.batch_bytes / pair_bytes.max(1)).max(1) as usize;
    for shards in member.info.shards.chunks(per_batch.min(n_pairs.max(1))) {
        let batch_bytes = pair_bytes * shards.len() as u64;
        let kib = (batch_bytes / 1024).clamp(1, ctx.in_flight_kib);
        let permits = ctx
            .in_flight
            .acquire_many(kib as u32)
            .await
            .map_err(|e| e.to_string())?;
        let pairs: Vec<SliverPairIndex> = shards
            .iter()
            .map(|&shard| ShardIndex(shard).to_pair_index(n, &blob_id))
            .collect();
        let body = if ctx.encoded.is_spilled() {
            let encoded = ctx.encoded.clone();
            tokio::task::spawn_blocking(move || encoded.batch_body(&pairs))
                .await
                .map_err(|e| e.to_string())??
        } else {
            ctx.encoded.batch_body(&pairs)?
        };
        ctx.active(idx);
        with_retries(&ctx.comm, "storing slivers", || {
            client.put_sliver_batch_body(&blob_id, &body)
        })
        .await?;
        drop(permits);
        ctx.progress.advance(batch_bytes);
    }

    let object = match ctx.persistence {
        BlobPersistenceType::Deletable { object_id } => Some(object_id),
        BlobPersistenceType::Permanent => None,
    };
    ctx.active(idx);
    let signed = with_retries(&ctx.comm, "getting the confirmation", || {
        client.confirmation(&blob_id, object.as_ref())
    })
    .await?;
    check_confirmation(ctx, &signed)?;
    Ok(signed)
}

/// The confirmation's message is the one expected. Its signature is checked later, together
/// with the others' (see [`Unchecked`]).
fn check_confirmation(ctx: &Upload, signed: &SignedMessage) -> Result<(), String> {
    let expected = Confirmation::new(ctx.committee.epoch, ctx.encoded.blob_id(), ctx.persistence);
    let got = Confirmation::from_bytes(&signed.serialized_message)
        .map_err(|e| format!("unreadable confirmation: {e}"))?;
    if got != expected {
        return Err(format!(
            "confirmation for the wrong blob, epoch or persistence: {got:?}"
        ));
    }
    Ok(())
}

/// Confirmations whose signatures are not checked yet.
///
/// Checking each on arrival cost a pairing per node (ten per PUT on the testbed). They are
/// checked together instead, as one aggregate, when they would complete a quorum and once more
/// for those that came after it; only when an aggregate fails is each of its signatures checked
/// alone, to drop the bad ones.
#[derive(Default)]
struct Unchecked {
    partials: Vec<(usize, SignedMessage)>,
    weight: u64,
}

impl Unchecked {
    fn push(&mut self, idx: usize, weight: u64, signed: SignedMessage) {
        self.partials.push((idx, signed));
        self.weight += weight;
    }

    /// Check the signatures: the good ones move to `partials` (their nodes are healthy again),
    /// each bad one becomes a failure and leaves its node suspect. Returns the weight added.
    fn settle(
        &mut self,
        committee: &CommitteeView,
        health: &NodeHealth,
        partials: &mut Vec<VerifiedPartials>,
        failures: &mut Vec<NodeFailure>,
    ) -> u64 {
        let checked = std::mem::take(&mut self.partials);
        self.weight = 0;
        let Some((_, first)) = checked.first() else {
            return 0;
        };
        // All passed `check_confirmation`, so their messages are equal.
        let message = first.serialized_message.clone();
        let (good, bad) = committee.weights.split_valid(&message, checked);
        let mut added = 0;
        for idx in good.indices() {
            let member = &committee.members[idx];
            health.clear(&member.info.network_address);
            added += member.weight();
        }
        if !good.is_empty() {
            partials.push(good);
        }
        for (idx, _) in bad {
            let member = &committee.members[idx];
            health.suspect(&member.info.network_address, Instant::now());
            tracing::warn!(node = %member.label(), "confirmation signature does not verify");
            failures.push(NodeFailure {
                node: member.label(),
                shards: member.info.shards.len(),
                reason: "confirmation signature does not verify under the node's key".into(),
            });
        }
        added
    }
}
