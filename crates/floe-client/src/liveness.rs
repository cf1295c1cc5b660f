//! Telling a silent node from a slow one, within one write or read.
//!
//! A node whose request has gone unanswered for `silent_after_ms` gets a probe: a request to
//! its health route, bounded by `probe_timeout_ms`. A node that does not answer the probe
//! either (a frozen or partitioned process: the kernel may still accept its connections) is
//! *silent* for the rest of the operation and suspect for the client's next ones. An operation
//! that cannot reach its quorum without the silent nodes fails at once, naming them, instead
//! of waiting out request timeouts and retries. A node that answers the probe is only slow and
//! is probed again after another `silent_after_ms`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::committee::CommitteeView;
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

    /// Record a verdict; returns whether the member is now silent.
    pub(crate) fn record(&mut self, (member, alive): (usize, bool), now: Instant) -> bool {
        self.probing.remove(&member);
        if alive {
            self.alive_at.insert(member, now);
            false
        } else {
            self.silent.insert(member);
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
