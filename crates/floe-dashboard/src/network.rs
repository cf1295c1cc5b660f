//! The network page, rendered on the server from a [`Snapshot`]. The page's script fetches
//! the live part again (`{prefix}/live`, the same renderer) every few seconds and swaps it in,
//! so there is one renderer and the page reads the same without JavaScript.

use std::fmt::Write;

use crate::chart;
use crate::html::{bytes, duration_ms, esc, time_el};
use crate::model::{EpochView, EventView, LedgerView, NodeView, Snapshot};

/// The whole `<main>` of the network page.
pub fn main(prefix: &str, s: &Snapshot, interval_ms: u64) -> String {
    format!(
        "<h1>Network</h1>\
         <p class=\"updated\">Snapshot of {} \
         <span class=\"js-only\">· updates every {} s</span></p>\
         <div id=\"live\" data-src=\"{}/live\" data-interval=\"{interval_ms}\">{}</div>",
        time_el(s.taken_ms),
        interval_ms / 1000,
        esc(prefix),
        live(prefix, s)
    )
}

/// The part that updates.
pub fn live(prefix: &str, s: &Snapshot) -> String {
    let mut out = String::with_capacity(16 << 10);
    if let Some(e) = &s.ledger_error {
        let _ = write!(
            out,
            "<p class=\"alert\" role=\"alert\">The ledger cannot be read: {}</p>",
            esc(e)
        );
    }
    out.push_str("<div class=\"cards\">");
    if let Some(e) = &s.epoch {
        out.push_str(&epoch_card(e, s.taken_ms));
    }
    out.push_str(&storage_card(s));
    out.push_str("</div>");
    out.push_str(&charts(s));
    out.push_str(&nodes_table(s));
    out.push_str(&ledgers_table(&s.ledgers));
    out.push_str(&events_table(prefix, &s.events));
    out
}

fn epoch_card(e: &EpochView, now_ms: u64) -> String {
    let left = e.end_ms.saturating_sub(now_ms);
    let mut out = format!(
        "<section class=\"card\" aria-labelledby=\"epoch-h\"><h2 id=\"epoch-h\">Epoch {}</h2><dl>\
         <dt>State</dt><dd data-state=\"{}\">{}</dd>\
         <dt>Started</dt><dd>{}</dd><dt>Ends</dt><dd>{}</dd>\
         <dt>Next epoch in</dt><dd><span class=\"countdown\" data-until=\"{}\">{}</span></dd>\
         <dt>Epoch length</dt><dd>{}</dd><dt>Shards</dt><dd>{}</dd></dl>",
        e.epoch,
        e.state,
        esc(e.state_text),
        time_el(e.start_ms),
        time_el(e.end_ms),
        e.end_ms,
        duration_ms(left),
        duration_ms(e.duration_ms),
        e.n_shards
    );
    if let Some(c) = &e.change {
        let _ = write!(
            out,
            "<p><label for=\"change-progress\">Epoch change: {} of {} shards reported synced \
             ({} nodes)</label> <progress id=\"change-progress\" max=\"{}\" value=\"{}\">{} of {}</progress></p>",
            c.reported_shards,
            c.needed_shards,
            c.reported_nodes,
            c.needed_shards,
            c.reported_shards.min(c.needed_shards),
            c.reported_shards,
            c.needed_shards
        );
    }
    out.push_str("</section>");
    out
}

fn storage_card(s: &Snapshot) -> String {
    let up = s.nodes.iter().filter(|n| n.up).count();
    let mut out = format!(
        "<section class=\"card\" aria-labelledby=\"storage-h\"><h2 id=\"storage-h\">Storage</h2><dl>\
         <dt>Nodes answering</dt><dd><span id=\"nodes-up\">{up}</span> of {}</dd>",
        s.nodes.len()
    );
    if let Some(st) = &s.storage {
        let pct = if st.total > 0 {
            st.used as f64 * 100.0 / st.total as f64
        } else {
            0.0
        };
        let _ = write!(
            out,
            "<dt>Used</dt><dd>{} of {} ({pct:.2} %) \
             <meter min=\"0\" max=\"{}\" value=\"{}\" aria-label=\"storage used\">{pct:.2} %</meter></dd>",
            bytes(st.used),
            bytes(st.total),
            st.total,
            st.used
        );
    }
    let _ = write!(
        out,
        "<dt>Uploads</dt><dd>{}</dd></dl></section>",
        if s.uploads {
            "accepted here (publisher)"
        } else {
            "not accepted here (read-only)"
        }
    );
    out
}

fn charts(s: &Snapshot) -> String {
    let x = &s.series;
    format!(
        "<section aria-labelledby=\"charts-h\"><h2 id=\"charts-h\">Load</h2><div class=\"charts\">{}{}{}{}</div></section>",
        chart::figure("daemonOps", "Daemon requests", "req/s", &x.daemon_ops),
        chart::figure("nodeOps", "Node requests", "req/s", &x.node_ops),
        chart::figure("storeMs", "Store latency (mean)", "ms", &x.store_ms),
        chart::figure("readMs", "Read latency (mean)", "ms", &x.read_ms),
    )
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("—".to_string(), |v| v.to_string())
}

fn node_row(n: &NodeView) -> String {
    let health = if n.up {
        format!(
            "<span class=\"ok\">up</span> {}",
            esc(n.status.as_deref().unwrap_or(""))
        )
    } else {
        format!(
            "<span class=\"bad\">down</span> <small>{}</small>",
            esc(n.error.as_deref().unwrap_or("no answer yet"))
        )
    };
    let shard_states = match (n.shards_ready, n.shards_in_transfer, n.shards_in_recovery) {
        (Some(r), Some(t), Some(c)) => format!(
            "{r} ready{}{}{}",
            if t > 0 {
                format!(", {t} in transfer")
            } else {
                String::new()
            },
            if c > 0 {
                format!(", {c} in recovery")
            } else {
                String::new()
            },
            match n.shards_read_only {
                Some(ro) if ro > 0 => format!(", {ro} read-only"),
                _ => String::new(),
            }
        ),
        _ => "—".into(),
    };
    let lag = match n.event_lag {
        Some(l) if n.lag_reported => format!("{l}"),
        Some(l) => format!("{l} <small>(ledger − persisted)</small>"),
        None => "—".into(),
    };
    let drift = if n.drift.is_empty() {
        "<small>not reported</small>".to_string()
    } else {
        n.drift
            .iter()
            .map(|f| {
                format!(
                    "<span title=\"{0}\">{0}: <code>{1}</code></span>",
                    esc(&f.name),
                    esc(&f.value)
                )
            })
            .collect::<Vec<_>>()
            .join("<br>")
    };
    let challenges = challenge_cell(n.challenges.as_ref());
    format!(
        "<tr data-node=\"{addr}\" data-up=\"{up}\"><th scope=\"row\">{name}</th><td><code>{addr}</code></td>\
         <td class=\"health\">{health}</td><td>{now}</td><td>{next}</td><td>{shard_states}</td>\
         <td>{lag}</td><td>{drift}</td><td class=\"challenges\">{challenges}</td><td>{epoch}</td><td>{rtt}</td><td>{cap}</td></tr>",
        addr = esc(&n.address),
        up = n.up,
        name = esc(&n.name),
        now = n.shards_now,
        next = opt(n.shards_next),
        epoch = opt(n.epoch),
        rtt = n.rtt_ms.map_or("—".into(), |r| format!("{r} ms")),
        cap = bytes(n.capacity),
    )
}

/// "12 of 12 passed" (bad when any failed or went unanswered), and what it owed as a
/// challenger when it did not issue everything.
fn challenge_cell(c: Option<&crate::model::ChallengeCell>) -> String {
    let Some(c) = c else {
        return "<small>none yet</small>".into();
    };
    let lost = c.failed + c.no_answer;
    let rate = if c.challenged == 0 {
        "not challenged".to_string()
    } else if lost > 0 {
        format!(
            "<span class=\"bad\">{} of {} passed</span> <small>({} failed, {} unanswered)</small>",
            c.passed, c.challenged, c.failed, c.no_answer
        )
    } else {
        format!(
            "<span class=\"ok\">{} of {} passed</span>",
            c.passed, c.challenged
        )
    };
    let owed = if c.not_issued > 0 {
        format!(
            "<br><span class=\"bad\">issued {} of {} owed</span>{}",
            c.duties - c.not_issued,
            c.duties,
            if c.reported {
                ""
            } else {
                " <small>(no report)</small>"
            }
        )
    } else {
        String::new()
    };
    format!("{rate}{owed} <small>epoch {}</small>", c.epoch)
}

fn nodes_table(s: &Snapshot) -> String {
    let rows: String = s.nodes.iter().map(node_row).collect();
    format!(
        "<section aria-labelledby=\"nodes-h\"><h2 id=\"nodes-h\">Storage nodes</h2>\
         <div class=\"scroll\"><table id=\"nodes\"><caption>The committee now and next, with what \
         each node's health route says</caption><thead><tr><th scope=\"col\">Node</th>\
         <th scope=\"col\">Address</th><th scope=\"col\">Health</th><th scope=\"col\">Shards now</th>\
         <th scope=\"col\">Shards next</th><th scope=\"col\">Shard states</th>\
         <th scope=\"col\">Event lag</th><th scope=\"col\">Drift</th>\
         <th scope=\"col\">Storage challenges</th><th scope=\"col\">Epoch</th>\
         <th scope=\"col\">Latency</th><th scope=\"col\">Capacity</th></tr></thead>\
         <tbody>{rows}</tbody></table></div></section>"
    )
}

fn ledgers_table(ledgers: &[LedgerView]) -> String {
    let mut rows = String::new();
    for l in ledgers {
        let extra: Vec<String> = l
            .extra
            .iter()
            .map(|f| format!("{}: {}", esc(&f.name), esc(&f.value)))
            .collect();
        let _ = write!(
            rows,
            "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td><code>{}</code></td><td>{}</td></tr>",
            esc(&l.url),
            if l.up {
                format!(
                    "<span class=\"ok\">{}</span>",
                    esc(l.status.as_deref().unwrap_or("up"))
                )
            } else {
                format!(
                    "<span class=\"bad\">down</span> <small>{}</small>",
                    esc(l.error.as_deref().unwrap_or(""))
                )
            },
            opt(l.entries),
            opt(l.durable_entries),
            opt(l.events),
            esc(&l
                .digest
                .as_deref()
                .unwrap_or("—")
                .chars()
                .take(16)
                .collect::<String>()),
            if extra.is_empty() {
                "—".into()
            } else {
                extra.join("<br>")
            },
        );
    }
    let note = if ledgers.len() == 1 {
        "<p>One ledger server (not replicated).</p>"
    } else {
        ""
    };
    format!(
        "<section aria-labelledby=\"ledger-h\"><h2 id=\"ledger-h\">Ledger</h2>{note}<div class=\"scroll\">\
         <table><caption>Ledger servers and their applied positions</caption><thead><tr>\
         <th scope=\"col\">Server</th><th scope=\"col\">Status</th><th scope=\"col\">Entries applied</th>\
         <th scope=\"col\">Durable</th><th scope=\"col\">Events</th><th scope=\"col\">Digest</th>\
         <th scope=\"col\">Other</th></tr></thead><tbody>{rows}</tbody></table></div></section>"
    )
}

fn events_table(prefix: &str, events: &[EventView]) -> String {
    let mut rows = String::new();
    for e in events {
        let blob = match &e.blob_id {
            Some(b) => format!(
                " <a href=\"{}/blob/{}\"><code>{}</code></a>",
                esc(prefix),
                esc(b),
                esc(b)
            ),
            None => String::new(),
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{blob}</td><td><code>{}</code></td></tr>",
            e.index,
            e.epoch,
            esc(&e.kind),
            esc(&e.summary),
            esc(&e.tx_digest)
        );
    }
    if events.is_empty() {
        rows.push_str("<tr><td colspan=\"5\">No events yet.</td></tr>");
    }
    format!(
        "<section aria-labelledby=\"events-h\"><h2 id=\"events-h\">Recent ledger events</h2>\
         <div class=\"scroll\"><table id=\"events\"><caption>Newest first</caption><thead><tr>\
         <th scope=\"col\">#</th><th scope=\"col\">Epoch</th><th scope=\"col\">Event</th>\
         <th scope=\"col\">What</th><th scope=\"col\">Transaction</th></tr></thead>\
         <tbody>{rows}</tbody></table></div></section>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChangeProgress, Field};

    #[test]
    fn renders_nodes_lag_drift_and_progress_escaped() {
        let s = Snapshot {
            taken_ms: 1_000,
            epoch: Some(EpochView {
                epoch: 4,
                state: "syncing",
                state_text: "epoch change",
                start_ms: 0,
                end_ms: 61_000,
                duration_ms: 60_000,
                n_shards: 10,
                change: Some(ChangeProgress {
                    reported_shards: 3,
                    needed_shards: 7,
                    reported_nodes: 2,
                }),
            }),
            nodes: vec![
                NodeView {
                    name: "<n0>".into(),
                    address: "127.0.0.1:1".into(),
                    up: true,
                    event_lag: Some(2),
                    lag_reported: true,
                    drift: vec![Field {
                        name: "blobTableDigest".into(),
                        value: "ab".into(),
                    }],
                    ..NodeView::default()
                },
                NodeView {
                    name: "n1".into(),
                    address: "127.0.0.1:2".into(),
                    error: Some("connection refused".into()),
                    challenges: Some(crate::model::ChallengeCell {
                        epoch: 3,
                        challenged: 10,
                        passed: 4,
                        failed: 6,
                        duties: 8,
                        not_issued: 8,
                        ..Default::default()
                    }),
                    ..NodeView::default()
                },
            ],
            ..Snapshot::default()
        };
        let html = live("/dashboard", &s);
        assert!(html.contains("data-node=\"127.0.0.1:1\" data-up=\"true\""));
        assert!(html.contains("data-node=\"127.0.0.1:2\" data-up=\"false\""));
        assert!(html.contains("&lt;n0&gt;") && !html.contains("<n0>"));
        assert!(html.contains("blobTableDigest: <code>ab</code>"));
        assert!(html.contains("<progress id=\"change-progress\" max=\"7\" value=\"3\">"));
        assert!(html.contains("1 min 0 s"), "the countdown's first value");
        assert!(html.contains("No events yet."));
        assert!(html.contains("4 of 10 passed</span> <small>(6 failed, 0 unanswered)"));
        assert!(html.contains("issued 0 of 8 owed</span> <small>(no report)</small>"));
        assert!(html.contains("<small>none yet</small>"), "n0 has no tally");
    }
}
