//! Memory against data stored (`--fill`): PUT `fill` bytes in blobs of `fill_blob` bytes and
//! sample every node's resident set after each PUT. A node whose memory is bounded by its
//! configuration levels off; one that keeps what it stores in memory grows in step with it.
//! The figure to read is the slope over the second half of the data (RSS bytes per byte
//! stored, least squares, the steepest node): the first half warms caches and write buffers up
//! to their bounds, and a single pair of samples is at the mercy of when flushes happen.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::E2eError;
use super::cluster::Cluster;
use super::http::Daemon;
use super::report::ms;

/// One sample, after a PUT.
#[derive(Clone, Debug, Serialize)]
pub struct FillSample {
    /// Bytes stored by the fill so far (unencoded).
    pub stored_bytes: u64,
    /// `VmRSS` of each node, in node order.
    pub node_rss_bytes: Vec<u64>,
    pub daemon_rss_bytes: u64,
    pub elapsed_ms: f64,
}

/// The fill's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct FillRow {
    pub stored_bytes: u64,
    pub blob_bytes: u64,
    pub samples: Vec<FillSample>,
    /// Largest node RSS seen.
    pub node_rss_max_bytes: u64,
    /// The largest growth of one node's RSS from the sample at half the data to the last one
    /// (negative when it shrank).
    pub node_rss_growth_second_half_bytes: i64,
    /// Bytes stored over that second half.
    pub stored_second_half_bytes: u64,
    /// Over the second half, the steepest node's RSS growth per byte stored (least squares).
    /// About 1 when a node keeps what it stores in memory (n ≫ nodes spreads ~4.5× the blob's
    /// bytes over the nodes); near 0 when its memory is bounded.
    pub node_rss_slope_second_half: f64,
    /// Over the nodes, the largest rise of a node's peak RSS from the first half of the data to
    /// the second, per byte stored over the second half. Peaks mark a bound: a bounded node
    /// reaches its peak in the first half (0.0–0.2 here), one that keeps what it stores keeps
    /// setting new peaks (about 1). Dips after flushes, which swing the slope, do not count.
    pub node_rss_peak_rise_per_byte: f64,
}

/// RSS of each node and of the daemon, by process name (`node-<i>`, `daemon`).
pub(super) fn rss(cluster: &Cluster) -> (Vec<u64>, u64) {
    let mut nodes = Vec::new();
    let mut daemon = 0;
    for (name, s) in cluster.stats() {
        if name.starts_with("node") {
            nodes.push(s.rss_bytes);
        } else if name == "daemon" {
            daemon = s.rss_bytes;
        }
    }
    (nodes, daemon)
}

/// Store `total` bytes in blobs of `blob` bytes, one PUT at a time, sampling RSS after each.
pub async fn fill(
    cluster: &Cluster,
    daemon: &Daemon,
    total: u64,
    blob: u64,
    mut random: impl FnMut(usize) -> Vec<u8>,
    progress: impl Fn(&str),
) -> Result<FillRow, E2eError> {
    let started = Instant::now();
    let blobs = total.div_ceil(blob.max(1)).max(1);
    let mut samples = Vec::with_capacity(blobs as usize);
    let mut stored = 0u64;
    let mut last_report = Instant::now();
    for i in 0..blobs {
        let data = random(blob as usize);
        daemon.put(&data).await?;
        stored += blob;
        let (node_rss_bytes, daemon_rss_bytes) = rss(cluster);
        samples.push(FillSample {
            stored_bytes: stored,
            node_rss_bytes,
            daemon_rss_bytes,
            elapsed_ms: ms(started.elapsed()),
        });
        if last_report.elapsed() >= Duration::from_secs(10) || i + 1 == blobs {
            let max = samples
                .last()
                .map_or(0, |s| s.node_rss_bytes.iter().copied().max().unwrap_or(0));
            progress(&format!(
                "fill: {} of {} stored, largest node RSS {} MiB",
                crate::units::format_size(stored),
                crate::units::format_size(blobs * blob),
                max >> 20
            ));
            last_report = Instant::now();
        }
    }
    Ok(summarise(samples, blob))
}

fn summarise(samples: Vec<FillSample>, blob: u64) -> FillRow {
    let last = samples.last();
    let mid = samples.get(samples.len().saturating_sub(1) / 2);
    let growth = match (mid, last) {
        (Some(m), Some(l)) => m
            .node_rss_bytes
            .iter()
            .zip(&l.node_rss_bytes)
            .map(|(a, b)| *b as i64 - *a as i64)
            .max()
            .unwrap_or(0),
        _ => 0,
    };
    let half = &samples[samples.len().saturating_sub(1) / 2..];
    let nodes = half.first().map_or(0, |s| s.node_rss_bytes.len());
    let slope =
        (0..nodes)
            .map(|i| {
                slope(half.iter().filter_map(|s| {
                    Some((s.stored_bytes as f64, *s.node_rss_bytes.get(i)? as f64))
                }))
            })
            .fold(0.0, f64::max);
    let peak = |part: &[FillSample], i: usize| {
        part.iter()
            .filter_map(|s| s.node_rss_bytes.get(i).copied())
            .max()
            .unwrap_or(0)
    };
    let split = samples.len().saturating_sub(1) / 2 + 1;
    let (first, second) = samples.split_at(split.min(samples.len()));
    let rise = (0..nodes)
        .map(|i| peak(second, i).saturating_sub(peak(first, i)))
        .max()
        .unwrap_or(0);
    let stored_second = match (mid, last) {
        (Some(m), Some(l)) => l.stored_bytes - m.stored_bytes,
        _ => 0,
    };
    FillRow {
        node_rss_slope_second_half: slope,
        node_rss_peak_rise_per_byte: if stored_second == 0 {
            0.0
        } else {
            rise as f64 / stored_second as f64
        },
        stored_bytes: last.map_or(0, |l| l.stored_bytes),
        blob_bytes: blob,
        node_rss_max_bytes: samples
            .iter()
            .flat_map(|s| s.node_rss_bytes.iter().copied())
            .max()
            .unwrap_or(0),
        node_rss_growth_second_half_bytes: growth,
        stored_second_half_bytes: stored_second,
        samples,
    }
}

/// The least-squares slope of `points` (0 for fewer than two distinct x).
fn slope(points: impl Iterator<Item = (f64, f64)> + Clone) -> f64 {
    let n = points.clone().count() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = points
        .clone()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (sxy, sxx) = points.fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(stored: u64, nodes: &[u64]) -> FillSample {
        FillSample {
            stored_bytes: stored,
            node_rss_bytes: nodes.to_vec(),
            daemon_rss_bytes: 0,
            elapsed_ms: 0.0,
        }
    }

    #[test]
    fn growth_is_measured_from_the_middle_sample() {
        let row = summarise(
            vec![
                sample(1, &[10, 20]),
                sample(2, &[50, 25]),
                sample(3, &[55, 90]),
                sample(4, &[52, 95]),
            ],
            1,
        );
        // Middle = second sample; node 1 grew 25 → 95.
        assert_eq!(row.node_rss_growth_second_half_bytes, 70);
        assert_eq!(row.stored_second_half_bytes, 2);
        assert_eq!(row.node_rss_max_bytes, 95);
        // Second half (samples 2..4): node 0 is flat-ish, node 1 climbs 70 per 2 stored.
        assert!(
            (row.node_rss_slope_second_half - 35.0).abs() < 1e-9,
            "{}",
            row.node_rss_slope_second_half
        );
        // Peaks: first half (samples 1, 2) [50, 25], second half (3, 4) [55, 95]: node 1's
        // peak rose 70 over 2 stored.
        assert!((row.node_rss_peak_rise_per_byte - 35.0).abs() < 1e-9);
        // A node that dips after a flush but never passes its first peak has not grown.
        let dip = summarise(
            vec![
                sample(1, &[100]),
                sample(2, &[200]),
                sample(3, &[120]),
                sample(4, &[190]),
                sample(5, &[130]),
            ],
            1,
        );
        assert_eq!(dip.node_rss_peak_rise_per_byte, 0.0);
        assert!(dip.node_rss_slope_second_half != 0.0);
        assert_eq!(slope([(1.0, 5.0)].into_iter()), 0.0);
        assert!((slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)].into_iter()) - 2.0).abs() < 1e-12);
        assert_eq!(summarise(vec![], 1).node_rss_growth_second_half_bytes, 0);
    }
}
