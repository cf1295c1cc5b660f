//! The table `floe bench epoch` prints, and the fit of its durations against the data stored.

use super::{GIB, Row};

/// Least-squares line y = a + b·x; `None` with fewer than two distinct x.
pub(super) fn linear_fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= f64::EPSILON {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

pub(super) fn opt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}ms"))
}

pub(super) fn print_table(rows: &[Row]) {
    println!(
        "{:>10} {:>10} {:>6} {:>7} {:>9} {:>10} {:>10} {:>10} {:>8} {:>7} {:>9}",
        "stored",
        "encoded",
        "blobs",
        "moved",
        "change",
        "full sync",
        "node sync",
        "migrated",
        "MiB/s",
        "/ideal",
        "recovered"
    );
    for r in rows {
        println!(
            "{:>10} {:>10} {:>6} {:>3}/{:<3} {:>9} {:>10} {:>10} {:>10} {:>8} {:>6.3}x {:>9}",
            crate::units::format_size(r.stored_bytes),
            crate::units::format_size(r.encoded_bytes),
            r.blobs,
            r.shards_moved,
            r.n_shards,
            opt_ms(r.change_ms),
            opt_ms(r.full_sync_ms),
            opt_ms(r.new_node_sync_ms.map(|v| v as f64)),
            crate::units::format_size(r.bytes_migrated),
            r.migration_mib_s.map_or("-".into(), |v| format!("{v:.1}")),
            r.migrated_to_ideal,
            r.blobs_recovered,
        );
    }
    println!(
        "change = EpochChangeStart → quorum reported (EpochChangeDone); full sync = → every member that gained shards done; \
         node sync = the new node's own timing; MiB/s = migrated / full sync; /ideal = migrated / moved shards' share of the sliver data"
    );
    for r in rows {
        let mut notes = Vec::new();
        if r.settle_seconds.is_none() {
            notes.push("nodes still missed slivers before the change".to_string());
        }
        if r.new_node_missing_slivers > 0 {
            notes.push(format!(
                "the new node still missed {} slivers at the end",
                r.new_node_missing_slivers
            ));
        }
        if r.slivers_migrated != r.slivers_expected {
            let why = if r.owner_down {
                " (node 0 is down: its shards' slivers are rebuilt by recovery, hence /ideal < 1)"
            } else {
                ""
            };
            notes.push(format!(
                "{} slivers migrated, {} expected{why}",
                r.slivers_migrated, r.slivers_expected
            ));
        }
        let recovery: u64 = r
            .requests_during_change
            .iter()
            .filter(|(route, _)| route.ends_with("Symbols"))
            .map(|(_, n)| n)
            .sum();
        if recovery > 0 && !r.owner_down {
            notes.push(format!(
                "{recovery} recovery-symbol requests served during the migration \
                 (blob recovery racing shard sync; not counted as migrated)"
            ));
        }
        if !notes.is_empty() {
            println!(
                "{:>10}: {}",
                crate::units::format_size(r.stored_bytes),
                notes.join("; ")
            );
        }
    }
    for (name, pick) in [
        ("change", (|r: &Row| r.change_ms) as fn(&Row) -> Option<f64>),
        ("full sync", |r: &Row| r.full_sync_ms),
    ] {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| pick(r).map(|v| (r.stored_bytes as f64 / GIB, v)))
            .collect();
        let mut line = format!("{name}:");
        let per_gib: Vec<String> = points
            .iter()
            .map(|(gib, v)| format!("{:.0}", v / gib))
            .collect();
        line += &format!(" {} ms per GiB stored", per_gib.join(" / "));
        if let Some((a, b)) = linear_fit(&points) {
            line += &format!("; fit {a:.0} ms + {b:.0} ms/GiB");
        }
        if let (Some(lo), Some(hi)) = (
            points.iter().min_by(|x, y| x.0.total_cmp(&y.0)),
            points.iter().max_by(|x, y| x.0.total_cmp(&y.0)),
        ) && hi.0 > lo.0
            && lo.1 >= 1.0
        {
            line += &format!(
                "; largest vs smallest: x{:.1} data, x{:.2} duration",
                hi.0 / lo.0,
                hi.1 / lo.1
            );
        }
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_line() {
        let (a, b) = linear_fit(&[(1.0, 12.0), (2.0, 14.0), (4.0, 18.0)]).unwrap();
        assert!((a - 10.0).abs() < 1e-9 && (b - 2.0).abs() < 1e-9);
        assert!(linear_fit(&[(1.0, 1.0)]).is_none());
        assert!(linear_fit(&[(1.0, 1.0), (1.0, 2.0)]).is_none());
    }
}
