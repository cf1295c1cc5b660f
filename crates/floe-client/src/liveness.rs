//! Telling a silent node from a slow one, within one write or read.
//!
//! A node whose request has gone unanswered for `silent_after_ms` gets a probe: a request to
//! its health route, bounded by `probe_timeout_ms`. A node that does not answer the probe
//! either (a frozen or partitioned process: the kernel may still accept its connections) is
//! *silent* for the rest of the operation and suspect for the client's next ones. An operation
//! that cannot reach its quorum without the silent nodes fails at once, naming them, instead
//! of waiting out request timeouts and retries. A node that answers the probe is only slow and
//! is probed again after another `silent_after_ms`.
//!
//! A probe that times out is not enough on a loaded machine: when every process competes for
//! the CPU, a healthy node may take longer than `probe_timeout_ms` to answer (500 small PUTs at
//! n = 1000, eight at a time on two cores, found healthy nodes "silent" 4 times). So once a probe has timed out, a *witness* (the member that answered this operation
//! most recently) is probed too, and the first probe keeps waiting: the target is silent only
//! if the witness answers first, or neither answers within another `probe_timeout_ms`. A frozen
//! node is still found within one timeout and a round trip to the witness; a node that is
//! merely slow like everyone else answers before the witness's later probe does.
//!
//! Two shortcuts keep a node that froze from slowing the first operation that meets it:
//! once a write has its quorum, the nodes it still waits for are probed at once with a short
//! bound (`tail_probe`), and the tail does not wait for those that do not answer; and a read
//! hedges a request once it is well past the latency its other requests showed ([`Latencies`]),
//! not after the fixed `hedge_after_ms`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use floe_node_client::NodeClient;
use tokio::task::JoinSet;

use crate::committee::CommitteeView;
use crate::health::NodeHealth;
use crate::{CommunicationConfig, NodeFailure};

/// Probes in flight and their verdicts, by committee member index.
pub(crate) struct Liveness {
    silent_after: Duration,
    probe_timeout: Duration,
    probes: JoinSet<(usize, bool)>,
    probing: HashSet<usize>,
    /// When each member last answered a probe.
    alive_at: HashMap<usize, Instant>,
    /// The member that answered a request of this operation last: the witness of probes.
    last_answer: Option<usize>,
    silent: HashSet<usize>,
}

/// How often an operation waiting on nodes looks for stalled ones.
pub(crate) const TICK: Duration = Duration::from_millis(200);

impl Liveness {
    pub(crate) fn new(comm: &CommunicationConfig) -> Self {
        Self {
            silent_after: Duration::from_millis(comm.silent_after_ms),
            probe_timeout: Duration::from_millis(comm.probe_timeout_ms),
            probes: JoinSet::new(),
            probing: HashSet::new(),
            alive_at: HashMap::new(),
            last_answer: None,
            silent: HashSet::new(),
        }
    }

    /// Records that `member` answered a request: it may witness probes of others.
    pub(crate) fn answered(&mut self, member: usize) {
        self.last_answer = Some(member);
    }

    /// The witness for a probe of `member`: the last member to answer, if another one.
    fn witness(&self, committee: &CommitteeView, member: usize) -> Option<NodeClient> {
        self.last_answer
            .filter(|w| *w != member && !self.silent.contains(w))
            .map(|w| committee.members[w].client.clone())
    }

    /// Starts a probe of `member` (see the module docs).
    fn spawn_probe(&mut self, committee: &CommitteeView, member: usize, timeout: Duration) {
        let target = committee.members[member].client.clone();
        let witness = self.witness(committee, member);
        let cap = timeout * 2;
        self.probes.spawn(async move {
            let alive = verdict(
                target.probe(cap),
                witness.map(|w| async move { w.probe(cap).await }),
                timeout,
            )
            .await;
            (member, alive)
        });
    }

    pub(crate) fn is_silent(&self, member: usize) -> bool {
        self.silent.contains(&member)
    }

    /// Probe each member of `waiting` (member, waiting since) that has waited at least
    /// `silent_after` and is not silent, being probed, or recently found alive.
    pub(crate) fn probe_stalled(
        &mut self,
        committee: &CommitteeView,
        waiting: impl IntoIterator<Item = (usize, Instant)>,
        now: Instant,
    ) {
        for (member, since) in waiting {
            let stalled = now.saturating_duration_since(since) >= self.silent_after;
            let recently_alive = self
                .alive_at
                .get(&member)
                .is_some_and(|t| now.saturating_duration_since(*t) < self.silent_after);
            if !stalled
                || recently_alive
                || self.silent.contains(&member)
                || !self.probing.insert(member)
            {
                continue;
            }
            self.spawn_probe(committee, member, self.probe_timeout);
        }
    }

    /// Probe each of `members` now, bounded by `timeout`, unless already silent or being probed.
    pub(crate) fn probe_now(
        &mut self,
        committee: &CommitteeView,
        members: impl IntoIterator<Item = usize>,
        timeout: Duration,
    ) {
        for member in members {
            if self.silent.contains(&member) || !self.probing.insert(member) {
                continue;
            }
            self.spawn_probe(committee, member, timeout);
        }
    }

    /// Whether probes are in flight.
    pub(crate) fn probing(&self) -> bool {
        !self.probes.is_empty()
    }

    /// The next probe verdict (member, alive); pending forever when none is in flight, so it
    /// can sit in a `select!` beside other work.
    pub(crate) async fn next(&mut self) -> (usize, bool) {
        loop {
            match self.probes.join_next().await {
                Some(Ok(verdict)) => return verdict,
                Some(Err(_)) => continue,
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// Record a verdict; returns whether the member is now silent, in which case the client's
    /// `health` remembers it as silent too (for its next operations).
    pub(crate) fn record(
        &mut self,
        (member, alive): (usize, bool),
        now: Instant,
        committee: &CommitteeView,
        health: &NodeHealth,
    ) -> bool {
        self.probing.remove(&member);
        if alive {
            self.alive_at.insert(member, now);
            false
        } else {
            self.silent.insert(member);
            health.silent(&committee.members[member].info.network_address, now);
            true
        }
    }

    /// One failure line per silent member.
    pub(crate) fn failures(&self, committee: &CommitteeView) -> Vec<NodeFailure> {
        let mut silent: Vec<usize> = self.silent.iter().copied().collect();
        silent.sort_unstable();
        silent
            .into_iter()
            .map(|m| {
                let member = &committee.members[m];
                NodeFailure {
                    node: member.label(),
                    shards: member.info.shards.len(),
                    reason: format!(
                        "silent: no answer for {} ms, nor to a health probe within {} ms",
                        self.silent_after.as_millis(),
                        self.probe_timeout.as_millis()
                    ),
                }
            })
            .collect()
    }
}

/// Whether the member probed by `target` is alive: it answers within `timeout`, or after that
/// but before `witness` (probed only then) answers, and within twice `timeout` in all.
pub(crate) async fn verdict(
    target: impl Future<Output = bool>,
    witness: Option<impl Future<Output = bool>>,
    timeout: Duration,
) -> bool {
    tokio::pin!(target);
    if let Ok(alive) = tokio::time::timeout(timeout, &mut target).await {
        return alive;
    }
    let Some(witness) = witness else {
        return false;
    };
    tokio::pin!(witness);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut witness_pending = true;
    loop {
        tokio::select! {
            biased;
            alive = &mut target => return alive,
            answered = &mut witness, if witness_pending => {
                if answered {
                    return false; // the network answers, the target does not
                }
                witness_pending = false; // no evidence either way: wait out the deadline
            }
            _ = &mut deadline => return false,
        }
    }
}

/// Latencies of the answers one read has had, for its hedge delay.
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    /// Sorted, at most one per request of the read (so at most a few thousand).
    sorted: Vec<Duration>,
}

/// Answers needed before the hedge delay follows them.
const MIN_SAMPLES: usize = 8;

impl Latencies {
    pub(crate) fn add(&mut self, latency: Duration) {
        let at = self.sorted.partition_point(|l| *l <= latency);
        self.sorted.insert(at, latency);
    }

    /// The median answer time, once there are enough answers to tell.
    pub(crate) fn median(&self) -> Option<Duration> {
        (self.sorted.len() >= MIN_SAMPLES).then(|| self.sorted[self.sorted.len() / 2])
    }

    /// How long a request may go unanswered before it is hedged: `max` until a few answers
    /// arrived, then one and a half times their 90th percentile, within `[min, max]`.
    pub(crate) fn hedge(&self, min: Duration, max: Duration) -> Duration {
        if self.sorted.len() < MIN_SAMPLES {
            return max;
        }
        let p90 = self.sorted[(self.sorted.len() * 9 / 10).min(self.sorted.len() - 1)];
        (p90 * 3 / 2).clamp(min, max.max(min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A probe answering `after` it is first polled (`None`: never), alive or not.
    async fn answer(after: Option<u64>, alive: bool) -> bool {
        match after {
            Some(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                alive
            }
            None => std::future::pending().await,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_past_its_timeout_is_judged_against_a_witness() {
        let timeout = 1500 * MS;
        // (target answers after, witness: (answers after it is probed, alive), verdict, when)
        type Witness = Option<(Option<u64>, bool)>;
        let cases: [(Option<u64>, Witness, bool, u64); 7] = [
            (Some(1000), Some((Some(10), true)), true, 1000),
            (Some(1000), None, true, 1000),
            // Frozen: the witness answers at once, so the verdict follows it.
            (None, Some((Some(10), true)), false, 1510),
            // Everyone slow: the target's answer comes before the witness's later probe's.
            (Some(2000), Some((Some(800), true)), true, 2000),
            (Some(2000), Some((Some(400), true)), false, 1900),
            // No witness, or one that does not answer either: the timeout, or twice it.
            (None, None, false, 1500),
            (None, Some((Some(5), false)), false, 3000),
        ];
        for (i, (target, witness, alive, at)) in cases.into_iter().enumerate() {
            let start = tokio::time::Instant::now();
            let got = verdict(
                answer(target, true),
                witness.map(|(after, ok)| answer(after, ok)),
                timeout,
            )
            .await;
            assert_eq!(got, alive, "case {i}");
            assert_eq!(start.elapsed(), Duration::from_millis(at), "case {i}");
        }
    }

    #[test]
    fn the_hedge_waits_for_samples_then_follows_the_slow_answers_within_bounds() {
        let mut l = Latencies::default();
        let (min, max) = (50 * MS, 1000 * MS);
        for _ in 0..MIN_SAMPLES - 1 {
            l.add(10 * MS);
        }
        assert_eq!(l.hedge(min, max), max, "too few answers: the fixed delay");
        assert_eq!(l.median(), None);
        l.add(10 * MS);
        assert_eq!(l.median(), Some(10 * MS));
        assert_eq!(
            l.hedge(min, max),
            min,
            "fast answers: never below the floor"
        );
        for i in 0..20 {
            l.add((40 + i) * MS);
        }
        // 28 answers: the 90th percentile is the 26th smallest, 57 ms.
        assert_eq!(l.hedge(min, max), Duration::from_micros(85_500));
        for i in 0..5 {
            l.add((900 + i) * MS);
        }
        assert_eq!(
            l.hedge(min, max),
            max,
            "slow answers: never above the fixed delay"
        );
    }
}
