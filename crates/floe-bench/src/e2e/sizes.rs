//! The sizes phase of `floe bench e2e`: each size PUT and read back `runs` times, with the
//! daemon's peak memory during each request and its idle memory after the first and the last
//! run, and the CPU of every process during the largest size's PUTs.

use super::cluster::{Cluster, CpuSample, Peak};
use super::http::Daemon;
use super::report::{CpuRow, SizeRow, ms, percentile};
use super::{CPU_SETTLE, DAEMON_IDLE_WAIT, E2eError, MIB_BLOB, Plan, fill, progress};

/// The highest peak and the highest rise of the runs (`None` if any run has none).
fn highest(peaks: &[Option<Peak>]) -> (Option<u64>, Option<u64>) {
    let known: Option<Vec<Peak>> = peaks.iter().copied().collect();
    let Some(known) = known else {
        return (None, None);
    };
    (
        known.iter().map(|p| p.peak_bytes).max(),
        known.iter().map(Peak::rise).max(),
    )
}

/// What the sizes phase measured.
pub(super) struct Sizes {
    pub(super) sizes: Vec<SizeRow>,
    /// The largest size's PUTs and their CPU.
    pub(super) cpu: Option<(usize, CpuSample)>,
    /// The largest size's last blob (when larger than 1 MiB), read again with nodes paused.
    pub(super) large: Option<(floe_core::BlobId, Vec<u8>)>,
}

/// PUT and GET each size `plan.runs(size)` times, with the CPU of the largest size's PUTs,
/// the daemon's peak during each request, and its idle RSS after the first and the last run
/// of each size (see [`idle_daemon_rss`]).
pub(super) async fn sizes_phase(
    plan: &Plan,
    cluster: &mut Cluster,
    daemon: &Daemon,
    random: &mut impl FnMut(usize) -> Vec<u8>,
) -> Result<Sizes, E2eError> {
    let largest = plan.largest();
    let (mut sizes, mut cpu, mut large) = (Vec::new(), None, None);
    for &size in &plan.sizes {
        let runs = plan.runs(size);
        let measure_cpu = size == largest && cpu.is_none();
        let mut total = CpuSample::default();
        let (mut puts, mut gets) = (Vec::new(), Vec::new());
        let (mut put_peaks, mut get_peaks) = (Vec::new(), Vec::new());
        let mut idle = Vec::new();
        for run in 0..runs {
            let data = random(size as usize);
            let before = cluster.cpu();
            let (put, peak) = cluster.daemon_peak_during(daemon.put(&data)).await;
            let (took, id) = put?;
            put_peaks.push(peak);
            if measure_cpu {
                tokio::time::sleep(CPU_SETTLE).await;
                total = add(&total, &delta(&before, &cluster.cpu()));
            }
            puts.push(ms(took));
            let (get, peak) = cluster.daemon_peak_during(daemon.get(&id, &data)).await;
            gets.push(ms(get?));
            get_peaks.push(peak);
            if size == largest && size > MIB_BLOB as u64 {
                large = Some((id, data));
            }
            if run == 0 || run + 1 == runs {
                idle.push(idle_daemon_rss(cluster).await);
            }
        }
        if measure_cpu {
            cpu = Some((runs, total));
        }
        let idle = (idle.first().copied(), idle.last().copied());
        sizes.push(size_row(size, puts, gets, (&put_peaks, &get_peaks), idle));
        progress(plan, &format!("{} done", crate::units::format_size(size)));
    }
    Ok(Sizes { sizes, cpu, large })
}

/// The daemon's RSS once it has had `DAEMON_IDLE_WAIT` with no request (it gives free memory
/// back when idle). Sampled after the first and the last run of a size: if each request gave
/// back what it took, the two are about equal, and what separates the first from the
/// daemon's start is what it keeps once warm (coding tables, code pages, pools).
pub(super) async fn idle_daemon_rss(cluster: &Cluster) -> u64 {
    tokio::time::sleep(DAEMON_IDLE_WAIT).await;
    fill::rss(cluster).1
}

fn size_row(
    size: u64,
    mut puts: Vec<f64>,
    mut gets: Vec<f64>,
    (put, get): (&[Option<Peak>], &[Option<Peak>]),
    (idle_first, idle_last): (Option<u64>, Option<u64>),
) -> SizeRow {
    let ((put_peak, put_rise), (get_peak, get_rise)) = (highest(put), highest(get));
    puts.sort_by(f64::total_cmp);
    gets.sort_by(f64::total_cmp);
    let p = |v: &[f64], q| percentile(v, q).unwrap_or(0.0);
    let mib_s = |ms: f64| size as f64 / (1u64 << 20) as f64 / (ms / 1000.0).max(1e-9);
    SizeRow {
        size,
        runs: puts.len(),
        put_p50_ms: p(&puts, 0.5),
        put_p99_ms: p(&puts, 0.99),
        put_mib_s: mib_s(p(&puts, 0.5)),
        get_p50_ms: p(&gets, 0.5),
        get_p99_ms: p(&gets, 0.99),
        get_mib_s: mib_s(p(&gets, 0.5)),
        gets_matched: gets.len(),
        daemon_put_peak_rss_bytes: put_peak,
        daemon_get_peak_rss_bytes: get_peak,
        daemon_put_rise_bytes: put_rise,
        daemon_get_rise_bytes: get_rise,
        daemon_idle_after_first_bytes: idle_first.unwrap_or(0),
        daemon_idle_after_last_bytes: idle_last.unwrap_or(0),
    }
}

fn delta(before: &CpuSample, after: &CpuSample) -> CpuSample {
    CpuSample {
        ledger: after.ledger - before.ledger,
        nodes: after
            .nodes
            .iter()
            .zip(&before.nodes)
            .map(|(a, b)| a - b)
            .collect(),
        daemon: after.daemon - before.daemon,
    }
}

fn add(a: &CpuSample, b: &CpuSample) -> CpuSample {
    let n = a.nodes.len().max(b.nodes.len());
    let at = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(0.0);
    CpuSample {
        ledger: a.ledger + b.ledger,
        nodes: (0..n).map(|i| at(&a.nodes, i) + at(&b.nodes, i)).collect(),
        daemon: a.daemon + b.daemon,
    }
}

pub(super) fn cpu_row(size: u64, puts: usize, total: &CpuSample) -> CpuRow {
    let per = |v: f64| v / puts.max(1) as f64;
    CpuRow {
        size,
        puts,
        ledger_s: per(total.ledger),
        nodes_sum_s: per(total.nodes.iter().sum()),
        nodes_max_s: per(total.nodes.iter().copied().fold(0.0, f64::max)),
        daemon_s: per(total.daemon),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peak_is_the_highest_known_or_none_if_one_is_unknown() {
        let p = |peak_bytes, before_bytes| {
            Some(Peak {
                peak_bytes,
                before_bytes,
            })
        };
        // The highest rise need not be the highest peak's.
        assert_eq!(
            highest(&[p(30, 20), p(70, 65), p(50, 10)]),
            (Some(70), Some(40))
        );
        assert_eq!(highest(&[p(3, 1), None]), (None, None));
        assert_eq!(highest(&[]), (None, None));
    }

    #[test]
    fn cpu_is_averaged_per_put() {
        let total = CpuSample {
            ledger: 0.2,
            nodes: vec![1.0, 3.0],
            daemon: 4.0,
        };
        let row = cpu_row(64 << 20, 2, &total);
        assert_eq!(
            (row.ledger_s, row.nodes_sum_s, row.nodes_max_s, row.daemon_s),
            (0.1, 2.0, 1.5, 2.0)
        );
        let d = delta(
            &CpuSample {
                ledger: 1.0,
                nodes: vec![1.0],
                daemon: 1.0,
            },
            &total,
        );
        assert_eq!(d.nodes, vec![0.0]);
    }
}
