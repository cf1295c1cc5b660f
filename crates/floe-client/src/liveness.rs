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
//! Two shortcuts keep a node that froze from slowing the first operation that meets it:
//! once a write has its quorum, the nodes it still waits for are probed at once with a short
//! bound (`tail_probe`), and the tail does not wait for those that do not answer; and a read
//! hedges a request once it is well past the latency its other requests showed ([`Latencies`]),
//! not after the fixed `hedge_after_ms`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

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
            silent: HashSet::new(),
        }
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
            let client = committee.members[member].client.clone();
            let timeout = self.probe_timeout;
            self.probes
                .spawn(async move { (member, client.probe(timeout).await) });
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
            let client = committee.members[member].client.clone();
            self.probes
                .spawn(async move { (member, client.probe(timeout).await) });
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
