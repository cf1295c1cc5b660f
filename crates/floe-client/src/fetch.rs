//! Fetching slivers from the nodes for a read: which candidate to ask next, how long to wait
//! on a request before asking elsewhere, and when to give up. A frozen node must cost a read
//! a share of its requests for one hedge delay, not every request it could attract.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_core::{
    BlobMetadataWithId, EncodingConfig, SliverData, SliverIndex, SliverType, VerifiedSliver,
};
use tokio::task::JoinSet;

use crate::committee::CommitteeView;
use crate::liveness::{Latencies, Liveness, TICK};
use crate::read::{Patience, Want};
use crate::{Client, NodeFailure, Progress};

impl Client {
    /// Fetch and verify slivers of `axis`, trying `order` front to back (slivers held by suspect
    /// nodes last), until `need` distinct valid ones are in hand or every candidate failed.
    ///
    /// At most `max_concurrent_sliver_reads` requests count as active. A request unanswered
    /// after the hedge delay stops counting (it may still complete and be used): a replacement
    /// goes to another candidate and its node becomes suspect for this read and, if it has not
    /// answered by the end, through [`NodeHealth`](crate::health::NodeHealth), for the
    /// client's next reads. So a node that
    /// vanished costs one hedge delay, not a request timeout, and only once. The hedge delay
    /// is `patience.first_hedge` until a few answers came, then follows their latencies (see
    /// [`Latencies`]); it is shorter for a holder that answered nothing while its peers
    /// answered later requests ([`Delays`]). With `patience.give_up_when_stuck`, the fetch
    /// ends as soon as a hedged request has no replacement left to try, if the client has
    /// requests to spare ([`Client::has_spare_requests`]).
    pub(crate) async fn fetch_slivers(
        &self,
        committee: &CommitteeView,
        metadata: &BlobMetadataWithId,
        want: Want,
        patience: Patience,
        progress: &Arc<dyn Progress>,
    ) -> (Vec<VerifiedSliver>, Vec<NodeFailure>) {
        let Want { axis, order, need } = want;
        let blob_id = metadata.blob_id;
        let config = committee.config;
        let metadata = Arc::new(metadata.clone());
        let limit = self.config.communication.max_concurrent_sliver_reads;
        let hedge_min = Duration::from_millis(self.config.communication.hedge_min_ms);
        let mut latencies = Latencies::default();
        // Every candidate's holder is looked up on each request and each answer.
        let placement = committee.placement(&blob_id, axis);
        let holder = |index: u16| placement.holder(index);
        // The first `need` candidates are the ones the caller prefers (a read's systematic
        // slivers: no decoding); the rest are taken only for those that cannot be had.
        let preferred: HashSet<u16> = order.iter().take(need).copied().collect();
        let address = |member: usize| committee.members[member].info.network_address.as_str();
        let mut suspects: HashSet<usize> = (0..committee.members.len())
            .filter(|&m| self.health.is_suspect(address(m), Instant::now()))
            .collect();
        let mut liveness = Liveness::new(&self.config.communication);
        // Until a node answered once in this read, it has at most an even share of the
        // requests in flight: a frozen node then holds a share, not most of them, until its
        // requests are hedged.
        let first: HashSet<usize> = order
            .iter()
            .take(limit.min(need))
            .map(|&i| holder(i))
            .collect();
        let share = limit.div_ceil(first.len().max(1));
        let mut answered: HashSet<usize> = HashSet::new();
        // The latest start of a request that has been answered: a holder whose requests are
        // older, and that has answered none of them, was overtaken by its peers.
        let mut overtaken_before: Option<Instant> = None;
        let mut hedged_requests = 0usize;
        let started_at = Instant::now();
        let mut pending: VecDeque<u16> = order.into();
        let mut set = JoinSet::new();
        let mut in_flight: HashMap<tokio::task::Id, InFlight> = HashMap::new();
        let mut good = Vec::with_capacity(need);
        let mut failures = Vec::new();
        let spawn_next = |set: &mut JoinSet<_>,
                          in_flight: &mut HashMap<_, InFlight>,
                          pending: &mut VecDeque<u16>,
                          suspects: &HashSet<usize>,
                          answered: &HashSet<usize>,
                          latencies: &Latencies,
                          permit: tokio::sync::OwnedSemaphorePermit| {
            // Per holder: requests in flight, and since when the oldest has waited.
            let mut busy: HashMap<usize, (usize, Instant)> = HashMap::new();
            for f in in_flight.values() {
                let b = busy.entry(f.holder).or_insert((0, f.started));
                b.0 += 1;
                b.1 = b.1.min(f.started);
            }
            // Waiting on a holder longer than twice the usual answer: its preferred
            // candidates no longer hold back the fallbacks.
            let usual = latencies.median().map(|m| m * 2);
            let now = Instant::now();
            let pick = next_candidate(
                pending,
                holder,
                |m| {
                    let (count, oldest) = busy.get(&m).copied().unwrap_or((0, now));
                    Holder {
                        suspect: suspects.contains(&m),
                        capped: !answered.contains(&m) && count >= share,
                        stalled: usual.is_some_and(|u| now.duration_since(oldest) > u),
                    }
                },
                |i| preferred.contains(&i),
            );
            let Some(index) = pick.and_then(|pos| pending.remove(pos)) else {
                return false;
            };
            let member = holder(index);
            let client = committee.members[member].client.clone();
            let metadata = metadata.clone();
            let task = set.spawn(async move {
                let pair = SliverIndex(index).to_pair_index(axis, config.n_shards());
                let answer = client.get_sliver(&blob_id, pair, axis).await;
                drop(permit);
                match answer {
                    Ok(s) => verify(config, metadata, axis, index, s).await,
                    Err(e) => Err(e.to_string()),
                }
            });
            in_flight.insert(
                task.id(),
                InFlight {
                    started: Instant::now(),
                    holder: member,
                    hedged: false,
                    index,
                },
            );
            true
        };
        let active =
            |in_flight: &HashMap<_, InFlight>| in_flight.values().filter(|f| !f.hedged).count();
        loop {
            // Requests beyond the client-wide cap wait for a permit, but only while this read
            // has nothing in flight: otherwise it goes on collecting answers meanwhile.
            while active(&in_flight) < limit
                && good.len() + active(&in_flight) < need
                && !pending.is_empty()
            {
                let permit = match self.node_requests.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) if !in_flight.is_empty() => break,
                    Err(_) => match self.node_requests.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                if !spawn_next(
                    &mut set,
                    &mut in_flight,
                    &mut pending,
                    &suspects,
                    &answered,
                    &latencies,
                    permit,
                ) {
                    break;
                }
            }
            if in_flight.is_empty() && pending.is_empty() {
                break;
            }
            // Slivers still obtainable: those in hand, plus candidates whose holder is not silent.
            let obtainable = pending
                .iter()
                .copied()
                .chain(in_flight.values().map(|f| f.index))
                .filter(|&i| !liveness.is_silent(holder(i)))
                .count();
            if good.len() + obtainable < need {
                tracing::warn!(%blob_id, have = good.len(), obtainable, need, "too many nodes are silent");
                set.abort_all();
                break;
            }
            // Stuck: a request was hedged, and without it the rest cannot make `need` (for the
            // data-row shortcut, which needs every row, that is any hedged request). Giving up
            // sends the caller to a fallback with many more requests: only while the client
            // has requests to spare; otherwise wait until the holder is found silent.
            let live = active(&in_flight);
            if patience.give_up_when_stuck
                && in_flight.values().any(|f| f.hedged)
                && self.has_spare_requests()
                && good.len() + live + pending.len() < need
            {
                set.abort_all();
                break;
            }
            let delays = Delays {
                hedge: latencies.hedge(hedge_min, patience.first_hedge),
                overtaken: latencies.median().map(|m| (m * 2).max(hedge_min / 2)),
                overtaken_before,
            };
            let due = |f: &InFlight| delays.due(f, answered.contains(&f.holder));
            let now = Instant::now();
            liveness.probe_stalled(
                committee,
                in_flight.values().map(|f| (f.holder, f.started)),
                now,
            );
            let wait = in_flight
                .values()
                .filter(|f| !f.hedged)
                .map(|f| due(f).saturating_duration_since(now))
                .min()
                .unwrap_or(delays.hedge)
                .min(TICK);
            let joined = tokio::select! {
                j = set.join_next_with_id() => match j {
                    Some(j) => j,
                    None => continue,
                },
                verdict = liveness.next(), if liveness.probing() => {
                    if liveness.record(verdict, Instant::now(), committee, &self.health) {
                        suspects.insert(verdict.0);
                    }
                    continue;
                }
                _ = tokio::time::sleep(wait) => {
                    // Requests past the hedge delay stop counting; their nodes are suspect for
                    // this read (and for the client's next ones if still silent at its end).
                    // All of a node's requests go together: they wait on the same node.
                    let now = Instant::now();
                    let late: HashSet<usize> = in_flight
                        .values()
                        .filter(|f| !f.hedged && now >= due(f))
                        .map(|f| f.holder)
                        .collect();
                    for f in in_flight.values_mut() {
                        if !f.hedged && late.contains(&f.holder) {
                            f.hedged = true;
                            hedged_requests += 1;
                        }
                    }
                    suspects.extend(late);
                    continue;
                }
            };
            let (id, result) = match joined {
                Ok((id, result)) => (id, result),
                Err(e) => {
                    in_flight.remove(&e.id());
                    continue;
                }
            };
            let Some(InFlight {
                started,
                holder: member,
                ..
            }) = in_flight.remove(&id)
            else {
                continue;
            };
            answered.insert(member);
            overtaken_before = overtaken_before.max(Some(started));
            match result {
                Ok(s) => {
                    liveness.answered(member);
                    latencies.add(started.elapsed());
                    self.health.clear(address(member));
                    progress.advance(s.sliver().symbols.len() as u64);
                    good.push(s);
                    if good.len() >= need {
                        set.abort_all();
                        break;
                    }
                }
                Err(reason) => {
                    suspects.insert(member);
                    self.health.suspect(address(member), Instant::now());
                    let m = &committee.members[member];
                    failures.push(NodeFailure {
                        node: m.label(),
                        shards: m.info.shards.len(),
                        reason,
                    });
                }
            }
        }
        let now = Instant::now();
        for f in in_flight.values().filter(|f| f.hedged) {
            self.health.suspect(address(f.holder), now);
        }
        tracing::debug!(
            %blob_id,
            %axis,
            need,
            got = good.len(),
            hedged_requests,
            suspects = suspects.len(),
            ms = started_at.elapsed().as_millis() as u64,
            "sliver fetch finished"
        );
        failures.extend(liveness.failures(committee));
        (good, failures)
    }
}

/// A request of a fetch that has not been answered yet.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    started: Instant,
    /// The member asked.
    holder: usize,
    /// Past the hedge delay: no longer counted as active; a replacement was sent.
    hedged: bool,
    /// The sliver asked for.
    index: u16,
}

/// When a request of a read is hedged.
#[derive(Clone, Copy, Debug)]
struct Delays {
    /// After this long unanswered (from the read's latencies, within its bounds).
    hedge: Duration,
    /// After this long, sooner, when its holder has answered nothing in this read while a
    /// request sent later to another holder was answered: twice the usual answer time, at
    /// least half `hedge_min_ms`. A frozen node is then found as soon as its peers show what
    /// to expect, instead of after the hedge delay's floor (which a read of a small blob may
    /// not even take in all). `None` until there are enough answers to tell.
    overtaken: Option<Duration>,
    /// The latest start of an answered request.
    overtaken_before: Option<Instant>,
}

impl Delays {
    /// When `f` is hedged; `holder_answered`: its holder answered a request of this read.
    fn due(&self, f: &InFlight, holder_answered: bool) -> Instant {
        let overtaken = !holder_answered && self.overtaken_before.is_some_and(|t| f.started < t);
        match self.overtaken {
            Some(d) if overtaken => f.started + d.min(self.hedge),
            _ => f.started + self.hedge,
        }
    }
}

/// What the choice of the next request knows of a candidate's holder.
#[derive(Clone, Copy, Debug, Default)]
struct Holder {
    /// Failed or did not answer in time, in this read or recently.
    suspect: bool,
    /// Has not answered yet in this read and already has its share of requests in flight.
    capped: bool,
    /// Its oldest request has waited well past the usual answer time.
    stalled: bool,
}

/// The position in `pending` to request next: the first candidate whose holder is neither
/// suspect nor capped, unless it is not `preferred` while a capped holder (one still to answer,
/// neither suspect nor stalled) has preferred candidates waiting: then `None`, the read waits for answers
/// rather than trade a slow start for a decode. When only suspect holders are left, the first
/// of their candidates that is not capped. `None` also when nothing is pending or every
/// holder is capped.
fn next_candidate(
    pending: &VecDeque<u16>,
    holder: impl Fn(u16) -> usize,
    state: impl Fn(usize) -> Holder,
    preferred: impl Fn(u16) -> bool,
) -> Option<usize> {
    let mut fallback = None;
    let mut waiting_for_capped = false;
    for (pos, &i) in pending.iter().enumerate() {
        let h = state(holder(i));
        if h.capped {
            waiting_for_capped |= !h.suspect && !h.stalled && preferred(i);
            continue;
        }
        if !h.suspect {
            return (!waiting_for_capped || preferred(i)).then_some(pos);
        }
        fallback = fallback.or(Some(pos));
    }
    if waiting_for_capped { None } else { fallback }
}

/// Verify a downloaded sliver (off the async threads): right index, right shape, right hash.
async fn verify(
    config: EncodingConfig,
    metadata: Arc<BlobMetadataWithId>,
    axis: SliverType,
    index: u16,
    sliver: SliverData,
) -> Result<VerifiedSliver, String> {
    if sliver.index.0 != index {
        return Err(format!(
            "asked for {axis} sliver {index}, got sliver {}",
            sliver.index.0
        ));
    }
    crate::compute::compute(move || {
        VerifiedSliver::verify(sliver, axis, &config, &metadata)
            .map_err(|e| format!("sliver {index} failed verification: {e}"))
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::{Duration, Instant};

    use super::{Delays, Holder, InFlight, next_candidate};

    #[test]
    fn a_holder_overtaken_by_its_peers_is_hedged_sooner() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let request = |started_ms: u64| InFlight {
            started: t0 + ms(started_ms),
            holder: 0,
            hedged: false,
            index: 0,
        };
        let delays = |overtaken: Option<u64>, before: Option<u64>| Delays {
            hedge: ms(60),
            overtaken: overtaken.map(ms),
            overtaken_before: before.map(|b| t0 + ms(b)),
        };
        let at = |d: Delays, f: InFlight, answered: bool| d.due(&f, answered) - t0;
        // No answers to go by yet, or none to a later request: the hedge delay.
        assert_eq!(at(delays(None, Some(5)), request(0), false), ms(60));
        assert_eq!(at(delays(Some(20), None), request(0), false), ms(60));
        assert_eq!(at(delays(Some(20), Some(5)), request(10), false), ms(70));
        // A request sent at 5 ms was answered while this one, sent at 0, was not: sooner.
        assert_eq!(at(delays(Some(20), Some(5)), request(0), false), ms(20));
        // Not when the holder has answered in this read (it is alive, merely behind)...
        assert_eq!(at(delays(Some(20), Some(5)), request(0), true), ms(60));
        // ...and never later than the hedge delay.
        assert_eq!(at(delays(Some(90), Some(5)), request(0), false), ms(60));
    }

    #[test]
    fn the_next_request_skips_capped_holders_and_prefers_ones_not_suspect() {
        // Indices 0..6 held by node index / 2: 0, 0, 1, 1, 2, 2.
        let holder = |i: u16| usize::from(i / 2);
        let pending: VecDeque<u16> = (0..6).collect();
        let of = |suspect: &'static [usize], capped: &'static [usize]| {
            move |m: usize| Holder {
                suspect: suspect.contains(&m),
                capped: capped.contains(&m),
                stalled: false,
            }
        };
        let all = |_: u16| true;
        assert_eq!(next_candidate(&pending, holder, of(&[], &[]), all), Some(0));
        // Node 0 has its share in flight and has not answered (maybe frozen): node 1 next.
        assert_eq!(
            next_candidate(&pending, holder, of(&[], &[0]), all),
            Some(2)
        );
        // A suspect node is skipped while another is left.
        assert_eq!(
            next_candidate(&pending, holder, of(&[0, 1], &[]), all),
            Some(4)
        );
        // Only suspect ones left: the first of them that is not capped.
        assert_eq!(
            next_candidate(&pending, holder, of(&[0, 1, 2], &[0]), all),
            Some(2)
        );
        // Every holder capped: wait for answers.
        assert_eq!(
            next_candidate(&pending, holder, of(&[], &[0, 1, 2]), all),
            None
        );
        // Indices 0..4 preferred (systematic), 4 and 5 a fallback (repair rows): while node 1
        // may still answer for its preferred ones, nothing goes to node 2's fallbacks...
        let systematic = |i: u16| i < 4;
        assert_eq!(
            next_candidate(&pending, holder, of(&[], &[0, 1]), systematic),
            None
        );
        // ...nor while one of them may...
        assert_eq!(
            next_candidate(&pending, holder, of(&[1], &[0, 1]), systematic),
            None
        );
        // ...unless it has kept them waiting well past the usual answer...
        let stalled_1 = |m: usize| Holder {
            suspect: false,
            capped: m < 2,
            stalled: m == 1,
        };
        assert_eq!(
            next_candidate(&pending, holder, stalled_1, systematic),
            None,
            "node 0 still counts"
        );
        let both_stalled = |m: usize| Holder {
            suspect: false,
            capped: m < 2,
            stalled: m < 2,
        };
        assert_eq!(
            next_candidate(&pending, holder, both_stalled, systematic),
            Some(4)
        );
        // ...and once both are suspect (hedged), the fallbacks replace their slivers.
        assert_eq!(
            next_candidate(&pending, holder, of(&[0, 1], &[0, 1]), systematic),
            Some(4)
        );
        assert_eq!(
            next_candidate(&pending, holder, of(&[0, 1], &[]), systematic),
            Some(4)
        );
        assert_eq!(
            next_candidate(&VecDeque::new(), holder, of(&[], &[]), all),
            None
        );
    }
}
