//! The blob page, rendered from [`BlobFacts`]; and the search page.

use std::fmt::Write;

use floe_ledger::status::BlobStatus;
use serde_json::Value;

use crate::blob::{BlobFacts, MAX_SHARDS_CHECKED, ShardState};
use crate::html::{bytes, esc, time_el};

/// The blob page's `<main>`; `read_route` is the daemon's read route, if it serves reads.
pub fn main(prefix: &str, f: &BlobFacts, read_route: Option<&str>) -> String {
    let id = f.blob_id.to_string();
    let mut out = format!(
        "<h1>Blob <code class=\"id\" id=\"blob-id\">{}</code></h1>",
        esc(&id)
    );
    out.push_str(&status_section(prefix, f));
    out.push_str(&signers_section(f));
    out.push_str(&shards_section(f));
    out.push_str(&challenge_section(f));
    out.push_str(&audit_section(f));
    if let Some(patches) = &f.patches {
        out.push_str(&patches_section(patches));
    }
    if matches!(f.status.status, BlobStatus::Certified { .. }) {
        let _ = write!(
            out,
            "<section aria-labelledby=\"dl-h\"><h2 id=\"dl-h\">Download</h2><p>\
             <a class=\"button\" id=\"download\" href=\"{p}/blob/{id}/download\" download=\"{id}\">Download the blob</a>",
            p = esc(prefix),
            id = esc(&id)
        );
        if let Some(r) = read_route {
            let _ = write!(
                out,
                " or read it from the aggregator: <a href=\"{r}/{id}\"><code>GET {r}/{id}</code></a>",
                r = esc(r),
                id = esc(&id)
            );
        }
        out.push_str("</p></section>");
    }
    out
}

/// The page with only the search form (no ID given).
pub fn search_main(prefix: &str) -> String {
    format!(
        "<h1>Find a blob</h1><form method=\"get\" action=\"{}/blob\" class=\"stack\">\
         <label for=\"id\">Blob ID (base64url) or blob object ID (0x…)</label>\
         <input id=\"id\" name=\"id\" required autocomplete=\"off\" spellcheck=\"false\">\
         <button type=\"submit\">Show the blob</button></form>",
        esc(prefix)
    )
}

/// The date epoch `e` starts, from the system's current epoch and its length.
fn epoch_date(f: &BlobFacts, e: u32) -> String {
    match &f.system {
        Some(s) => {
            let delta = i64::from(e) - i64::from(s.epoch);
            let ms = s.current_epoch_start_ms as i64 + delta * s.epoch_duration_ms as i64;
            time_el(ms.max(0) as u64)
        }
        None => "—".into(),
    }
}

fn status_text(s: &BlobStatus) -> (&'static str, String) {
    match s {
        BlobStatus::Nonexistent => ("nonexistent", "never registered (or expired)".into()),
        BlobStatus::Registered { end_epoch, .. } => (
            "registered",
            format!("registered, not certified, until epoch {end_epoch}"),
        ),
        BlobStatus::Certified {
            end_epoch,
            initial_certified_epoch,
            permanent,
            ..
        } => (
            "certified",
            format!(
                "certified since epoch {initial_certified_epoch}, available until epoch {end_epoch} ({})",
                if *permanent { "permanent" } else { "deletable" }
            ),
        ),
        BlobStatus::Invalid { .. } => ("invalid", "proven inconsistently encoded".into()),
        BlobStatus::Deleted { .. } => ("deleted", "deleted by its owner".into()),
        BlobStatus::Expired { end_epoch, .. } => (
            "expired",
            format!("expired at the start of epoch {end_epoch}"),
        ),
    }
}

fn status_section(prefix: &str, f: &BlobFacts) -> String {
    let (word, text) = status_text(&f.status.status);
    let mut out = format!(
        "<section aria-labelledby=\"status-h\"><h2 id=\"status-h\">Status</h2><dl>\
         <dt>Status</dt><dd><strong id=\"blob-status\" data-status=\"{word}\">{word}</strong>: {}</dd>",
        esc(&text)
    );
    if let Some(e) = &f.status.event {
        let v = crate::sampler::event_view(e);
        let (kind, summary) = (v.kind, v.summary);
        let _ = write!(
            out,
            "<dt>Made so by</dt><dd>{kind} (event #{}, epoch {}): {} · transaction <code>{}</code></dd>",
            e.index,
            e.epoch,
            esc(&summary),
            esc(&e.tx_digest.to_string()),
            kind = esc(&kind)
        );
    }
    if let Some(o) = &f.object {
        let _ = write!(
            out,
            "<dt>Size</dt><dd>{} ({} bytes)</dd>\
             <dt>End epoch</dt><dd>{} (starts {})</dd>\
             <dt>Registered in epoch</dt><dd>{}</dd><dt>Certified in epoch</dt><dd>{}</dd>\
             <dt>Object</dt><dd><a href=\"{p}/blob?id={oid}\"><code>{oid}</code></a>{}</dd>\
             <dt>Owner</dt><dd><code>{}</code></dd>",
            bytes(o.size),
            o.size,
            o.end_epoch(),
            epoch_date(f, o.end_epoch()),
            o.registered_epoch,
            o.certified_epoch.map_or("—".into(), |e| e.to_string()),
            if o.deletable {
                " (deletable)"
            } else {
                " (permanent)"
            },
            esc(&o.owner.to_string()),
            p = esc(prefix),
            oid = esc(&o.id.to_string()),
        );
        for (k, v) in o.attributes.iter().take(64) {
            let _ = write!(
                out,
                "<dt>Attribute <code>{}</code></dt><dd>{}</dd>",
                esc(k),
                esc(v)
            );
        }
    }
    out.push_str("</dl></section>");
    out
}

/// `(text, certified)` from a node's blob status (Walrus's JSON).
fn node_status(v: &Value) -> (String, bool) {
    match v {
        Value::String(s) => (s.clone(), false),
        Value::Object(m) => match m.iter().next() {
            Some((kind, inner)) => {
                let certified = inner.get("isCertified").and_then(Value::as_bool) == Some(true)
                    || inner
                        .get("initialCertifiedEpoch")
                        .is_some_and(|e| !e.is_null());
                let text = if certified {
                    format!("{kind}, certified")
                } else {
                    kind.clone()
                };
                (text, certified)
            }
            None => ("—".into(), false),
        },
        _ => (v.to_string(), false),
    }
}

fn signers_section(f: &BlobFacts) -> String {
    let mut out =
        String::from("<section aria-labelledby=\"cert-h\"><h2 id=\"cert-h\">Certificate</h2>");
    if !matches!(f.status.status, BlobStatus::Certified { .. }) {
        out.push_str("<p>Not certified: there is no certificate.</p></section>");
        return out;
    }
    match certificate_signers(f) {
        Ok((epoch, check, signers)) => {
            let shards: usize = signers.iter().map(|s| s.1).sum();
            let _ = write!(
                out,
                "<p>First certified in epoch {epoch}, signed by {} nodes holding {shards} \
                 shards; checked here: {}.</p><ul id=\"signers\">{}</ul></section>",
                signers.len(),
                esc(&check),
                signers
                    .iter()
                    .map(|(n, s)| format!("<li>{} ({s} shards)</li>", esc(n)))
                    .collect::<String>()
            );
        }
        Err(why) => {
            let _ = write!(
                out,
                "<p>The ledger recorded the certificate only after checking its aggregate \
                 signature and that its signers hold at least n − f shards; its signers cannot \
                 be shown here: {}.</p></section>",
                esc(&why)
            );
        }
    }
    out
}

/// The certificate's epoch, the result of checking it, and its signers (name, shards), from
/// the ledger's certificate record and the committee of its epoch (current or previous).
/// A certificate's epoch, what checking it showed, and its signers (name, shards).
type Signers = (u32, String, Vec<(String, usize)>);

fn certificate_signers(f: &BlobFacts) -> Result<Signers, String> {
    let record = match &f.certificate {
        Ok(Some(r)) => r,
        Ok(None) => return Err("the ledger keeps no certificate for it (certified before its last restart from a snapshot)".into()),
        Err(e) => return Err(format!("the ledger did not answer: {e}")),
    };
    let system = f
        .system
        .as_ref()
        .ok_or("the ledger's system info is missing")?;
    let committee = [Some(&system.committee), system.previous_committee.as_ref()]
        .into_iter()
        .flatten()
        .find(|c| c.epoch == record.epoch)
        .ok_or_else(|| {
            format!(
                "the committee of epoch {} is no longer shown by the ledger",
                record.epoch
            )
        })?;
    let check =
        match floe_client::audit::check_certificate(Some(record), Some(committee), &f.blob_id) {
            floe_client::audit::CertificateCheck::Verified { .. } => {
                "the aggregate signature verifies".to_string()
            }
            floe_client::audit::CertificateCheck::NotChecked { reason } => {
                format!("not checked ({reason})")
            }
            floe_client::audit::CertificateCheck::Invalid { reason } => {
                format!("INVALID ({reason})")
            }
        };
    let signers = floe_client::audit::signing_members(record, committee)?
        .into_iter()
        .map(|m| (m.name.clone(), m.shards.len()))
        .collect();
    Ok((record.epoch, check, signers))
}

fn shard_class(s: &ShardState) -> (&'static str, &'static str) {
    match s {
        ShardState::Stored => ("s-ok", "both slivers stored"),
        ShardState::Partial => ("s-part", "one sliver stored"),
        ShardState::Missing => ("s-miss", "missing"),
        ShardState::MetadataOnly => ("s-meta", "node holds the metadata"),
        ShardState::Unreachable => ("s-down", "node not answering"),
    }
}

fn shards_section(f: &BlobFacts) -> String {
    if f.nodes.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<section aria-labelledby=\"shards-h\"><h2 id=\"shards-h\">Where the slivers are</h2>",
    );
    if f.system
        .as_ref()
        .is_some_and(|s| s.n_shards > MAX_SHARDS_CHECKED)
    {
        let _ = write!(
            out,
            "<p>Above {MAX_SHARDS_CHECKED} shards the map shows each node's metadata, not every sliver.</p>"
        );
    }
    out.push_str("<ol class=\"shardmap\" aria-label=\"Shards, with the state of this blob's sliver pair on each\">");
    for c in &f.shards {
        let (class, text) = shard_class(&c.state);
        let node = f.nodes.get(c.node).map_or("", |n| n.name.as_str());
        let _ = write!(
            out,
            "<li class=\"{class}\" title=\"shard {s}: pair {p} on {n}: {text}\">\
             <span class=\"sr\">shard {s}, pair {p}, {n}: {text}</span></li>",
            s = c.shard,
            p = c.pair,
            n = esc(node),
        );
    }
    out.push_str(
        "</ol><p class=\"legend\"><span class=\"s-ok\"></span> stored <span class=\"s-part\"></span> \
         one of two <span class=\"s-miss\"></span> missing <span class=\"s-meta\"></span> metadata \
         held <span class=\"s-down\"></span> node down</p>",
    );
    out.push_str(
        "<div class=\"scroll\"><table><caption>What each node says about this blob</caption><thead><tr>\
         <th scope=\"col\">Node</th><th scope=\"col\">Shards</th><th scope=\"col\">Blob status</th>\
         <th scope=\"col\">Metadata</th></tr></thead><tbody>",
    );
    for n in &f.nodes {
        let status = match &n.status {
            Ok(v) => esc(&node_status(v).0),
            Err(e) => format!("<span class=\"bad\">{}</span>", esc(e)),
        };
        let meta = match &n.metadata {
            Ok(m) => esc(m),
            Err(e) => format!("<span class=\"bad\">{}</span>", esc(e)),
        };
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{} <small><code>{}</code></small></th><td>{}</td><td>{status}</td><td>{meta}</td></tr>",
            esc(&n.name),
            esc(&n.address),
            n.shards
        );
    }
    out.push_str("</tbody></table></div></section>");
    out
}

/// The ledger's record of the latest storage challenges, as they touched this blob.
fn challenge_section(f: &BlobFacts) -> String {
    let body = match &f.challenges {
        Err(e) => format!(
            "<p class=\"bad\">The ledger's challenges could not be read: {}</p>",
            esc(e)
        ),
        Ok(None) => {
            "<p id=\"challenge-result\" data-epoch=\"\">No storage challenges are recorded yet.</p>"
                .into()
        }
        Ok(Some(c)) if c.outcomes.sampled_shards.is_empty() => format!(
            "<p id=\"challenge-result\" data-epoch=\"{e}\">Epoch {e}: this blob was not among the sampled blobs.</p>",
            e = c.outcomes.epoch
        ),
        Ok(Some(c)) => {
            let (o, failing) = (&c.outcomes, &c.failing_names);
            let verdict = if o.failed + o.no_answer == 0 {
                format!("<strong class=\"ok\">{} passed</strong>", o.passed)
            } else {
                format!(
                    "<strong class=\"bad\">{} failed, {} unanswered</strong>, {} passed; failing: {}",
                    o.failed,
                    o.no_answer,
                    o.passed,
                    esc(&failing.join(", "))
                )
            };
            let shards: Vec<String> = o.sampled_shards.iter().map(u16::to_string).collect();
            format!(
                "<p id=\"challenge-result\" data-epoch=\"{e}\" data-passed=\"{p}\" data-failed=\"{fl}\" data-shards=\"{list}\">\
                 Epoch {e}: sampled on shard{s} {shards}; challenges {verdict}.</p>",
                e = o.epoch,
                p = o.passed,
                fl = o.failed + o.no_answer,
                s = if shards.len() == 1 { "" } else { "s" },
                list = shards.join(","),
                shards = shards.join(", ")
            )
        }
    };
    format!(
        "<section aria-labelledby=\"challenge-h\"><h2 id=\"challenge-h\">Last storage challenge</h2>{body}</section>"
    )
}

fn audit_section(f: &BlobFacts) -> String {
    // Any field a node reports about challenges or audits is shown as it is.
    let mut found = String::new();
    for n in &f.nodes {
        let Ok(Value::Object(m)) = &n.status else {
            continue;
        };
        for inner in m.values() {
            let fields = crate::sampler::scalar_fields(inner, |k| {
                let k = k.to_ascii_lowercase();
                k.contains("challenge") || k.contains("audit")
            });
            for fl in fields {
                let _ = write!(
                    found,
                    "<li>{}: {} = <code>{}</code></li>",
                    esc(&n.name),
                    esc(&fl.name),
                    esc(&fl.value)
                );
            }
        }
    }
    let body = if found.is_empty() {
        "<p>No audit or storage-challenge result is reported for this blob.</p>".to_string()
    } else {
        format!("<ul>{found}</ul>")
    };
    format!(
        "<section aria-labelledby=\"audit-h\"><h2 id=\"audit-h\">Last audit</h2>{body}</section>"
    )
}

fn patches_section(patches: &Result<Vec<floe_client::QuiltPatchListItem>, String>) -> String {
    let body = match patches {
        Err(e) => format!(
            "<p class=\"bad\">The quilt's index could not be read: {}</p>",
            esc(e)
        ),
        Ok(list) => {
            let rows: String = list
                .iter()
                .map(|p| {
                    let tags: Vec<String> = p
                        .tags
                        .iter()
                        .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
                        .collect();
                    format!(
                        "<tr><th scope=\"row\">{}</th><td><code>{}</code></td><td>{}</td></tr>",
                        esc(&p.identifier),
                        esc(&p.patch_id),
                        tags.join(", ")
                    )
                })
                .collect();
            format!(
                "<div class=\"scroll\"><table id=\"patches\"><caption>{} patches</caption><thead><tr>\
                 <th scope=\"col\">Identifier</th><th scope=\"col\">Patch ID</th><th scope=\"col\">Tags</th>\
                 </tr></thead><tbody>{rows}</tbody></table></div>",
                list.len()
            )
        }
    };
    format!(
        "<section aria-labelledby=\"quilt-h\"><h2 id=\"quilt-h\">Quilt patches</h2>{body}</section>"
    )
}
