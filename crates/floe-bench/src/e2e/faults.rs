//! The silent-node scenarios: nodes paused with SIGSTOP (their sockets stay open, nothing
//! answers), the way a hung or overloaded machine looks to a client.
//!
//! * **≤ f shards silent**: a GET of a 1 MiB blob stored earlier, then a PUT of a new one, then
//!   a GET of the largest blob of the sizes phase (the client takes repair slivers in place of
//!   the systematic ones the paused nodes hold, and decodes), each timed and compared with the
//!   figures without faults, the last with the daemon's peak RSS. All should succeed.
//! * **> f shards silent**: the same GET and PUT at once; the PUT cannot reach a quorum of
//!   n − f shards. Reported: how long until each gives a definite answer (a success or an
//!   HTTP error), or that none came within the timeout.
//!
//! The paused nodes are continued (SIGCONT) afterwards, and each must answer again before the
//! scenario ends.

use std::time::Instant;

use floe_core::BlobId;

use super::E2eError;
use super::cluster::Cluster;
use super::http::Daemon;
use super::report::{LargeGetRow, SilentRow, ms};

/// The normal 1 MiB figures the scenarios are compared with.
#[derive(Clone, Copy, Debug)]
pub struct Baseline {
    pub put_ms: f64,
    pub get_ms: f64,
}

/// A stored blob to read during a scenario.
pub struct Stored<'a> {
    pub id: BlobId,
    pub data: &'a [u8],
}

/// A large stored blob and its GET p50 without faults.
pub struct LargeRead<'a> {
    pub blob: Stored<'a>,
    pub normal_ms: f64,
}

/// One scenario: which nodes are paused and what is done meanwhile.
pub struct Scenario<'a> {
    pub nodes: Vec<usize>,
    /// GET this (1 MiB) blob.
    pub read: &'a Stored<'a>,
    /// PUT this new one.
    pub new_blob: Vec<u8>,
    /// GET and PUT at once (else one after the other).
    pub concurrent: bool,
    pub baseline: Option<Baseline>,
    /// Then GET this one, watching the daemon's peak RSS.
    pub large: Option<&'a LargeRead<'a>>,
}

/// As many nodes as possible holding together at most `f` shards (lightest first; among
/// equals, the highest indices). Empty if even the lightest node holds more than `f`.
pub fn at_most_f(weights: &[u64], f: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| (weights[i], std::cmp::Reverse(i)));
    let mut chosen = Vec::new();
    let mut sum = 0;
    for i in order {
        if sum + weights[i] > f {
            break;
        }
        sum += weights[i];
        chosen.push(i);
    }
    chosen.sort_unstable();
    chosen
}

/// As few nodes as possible holding together more than `f` shards (heaviest first; among
/// equals, the highest indices). All nodes if together they hold no more than `f`.
pub fn more_than_f(weights: &[u64], f: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(weights[i]), std::cmp::Reverse(i)));
    let mut chosen = Vec::new();
    let mut sum = 0;
    for i in order {
        if sum > f {
            break;
        }
        sum += weights[i];
        chosen.push(i);
    }
    chosen.sort_unstable();
    chosen
}

/// Pause the scenario's nodes, run its GET and PUT (one after the other, or at once) and its
/// large GET, continue them.
pub async fn silent(
    cluster: &mut Cluster,
    daemon: &Daemon,
    scenario: Scenario<'_>,
) -> Result<SilentRow, E2eError> {
    let Scenario {
        nodes,
        read,
        new_blob,
        concurrent,
        baseline,
        large,
    } = scenario;
    for &i in &nodes {
        cluster.pause_node(i)?;
    }
    let (get, put) = if concurrent {
        let (get, put) = tokio::join!(
            daemon.try_get(&read.id, read.data),
            daemon.try_put(new_blob)
        );
        (get, put)
    } else {
        let get = daemon.try_get(&read.id, read.data).await;
        let put = daemon.try_put(new_blob).await;
        (get, put)
    };
    let large_get = match large {
        Some(l) => Some(read_large(cluster, daemon, l).await),
        None => None,
    };
    // Continue the nodes before looking at the results: a wrong read is an error, and the
    // nodes must not stay paused until the guard kills them.
    let resumed = Instant::now();
    for &i in &nodes {
        cluster.resume_node(i)?;
    }
    for &i in &nodes {
        cluster.wait_node(i).await?;
    }
    let resume_ms = ms(resumed.elapsed());
    let get = get?;
    let ratio = |took: f64, normal: Option<f64>| normal.filter(|n| *n > 0.0).map(|n| took / n);
    let large_get = large_get.transpose()?;
    Ok(SilentRow {
        paused_shards: nodes.iter().map(|&i| cluster.weight(i)).sum(),
        paused: nodes,
        get_ratio: ratio(get.ms, baseline.map(|b| b.get_ms)),
        put_ratio: ratio(put.ms, baseline.map(|b| b.put_ms)),
        get,
        put,
        resume_ms,
        large_get,
    })
}

/// GET a large blob, watching the daemon's peak RSS meanwhile.
async fn read_large(
    cluster: &mut Cluster,
    daemon: &Daemon,
    large: &LargeRead<'_>,
) -> Result<LargeGetRow, E2eError> {
    let read = daemon.try_get(&large.blob.id, large.blob.data);
    let (get, peak) = cluster.daemon_peak_during(read).await;
    let get = get?;
    Ok(LargeGetRow {
        size: large.blob.data.len() as u64,
        ratio: (large.normal_ms > 0.0).then(|| get.ms / large.normal_ms),
        get,
        daemon_peak_rss_bytes: peak.map(|p| p.peak_bytes),
        daemon_rise_bytes: peak.map(|p| p.rise()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_equal_nodes_give_three_and_four() {
        let w = [100; 10];
        assert_eq!(at_most_f(&w, 333), vec![7, 8, 9]);
        assert_eq!(more_than_f(&w, 333), vec![6, 7, 8, 9]);
    }

    #[test]
    fn quick_network_gives_one_and_two() {
        let w = [10; 4];
        assert_eq!(at_most_f(&w, 13), vec![3]);
        assert_eq!(more_than_f(&w, 13), vec![2, 3]);
    }

    #[test]
    fn unequal_weights() {
        // The lightest fit under f; the heaviest exceed it soonest.
        let w = [5, 1, 1, 6];
        assert_eq!(at_most_f(&w, 4), vec![1, 2]);
        assert_eq!(more_than_f(&w, 4), vec![3]);
        // A single node above f: nothing can be paused within f.
        assert_eq!(at_most_f(&[10], 3), Vec::<usize>::new());
        assert_eq!(more_than_f(&[1, 1], 5), vec![0, 1]);
    }
}
