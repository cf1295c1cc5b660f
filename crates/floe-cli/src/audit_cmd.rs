//! `floe audit`: is my blob really there? Every shard's node proves possession of sampled
//! symbols with Merkle proofs, signed; `--evidence FILE` keeps what a third party needs to
//! check the verdict offline with `floe audit --verify FILE`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use floe_client::Client;
use floe_client::audit::{
    AuditOptions, AuditReport, CertificateCheck, Evidence, EvidenceCheck, Verdict, verify_evidence,
};
use floe_core::BlobId;
use floe_ledger::BlobStatus;
use serde::{Deserialize, Serialize};

use crate::cli_config::{self, CommonArgs};
use crate::client_cmds::{client, parse_blob_id, print_json, runtime};

/// Exit code when the audit itself could not run (ledger unreachable, no metadata, bad input).
pub const EXIT_AUDIT_FAILED: i32 = 4;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// Blob IDs to audit.
    pub blob_ids: Vec<String>,
    /// Audit the blob of this file (its blob ID is computed locally); repeatable.
    #[arg(long)]
    pub file: Vec<PathBuf>,
    /// Symbols sampled per sliver (1 to 32).
    #[arg(long, default_value_t = floe_core::audit::DEFAULT_AUDIT_SAMPLES)]
    pub samples: u16,
    /// Time each shard's node has to answer.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Write the evidence (signed answers, proofs, committee, metadata) to this JSON file.
    #[arg(long)]
    pub evidence: Option<PathBuf>,
    /// Check an evidence file offline instead of auditing: exit 0 if every verdict in it is
    /// supported by its signatures and proofs, 1 if not.
    #[arg(long, conflicts_with_all = ["blob_ids", "file", "evidence"])]
    pub verify: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The last audit of a blob, kept beside the wallet for `floe blob-status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastAudit {
    pub blob_id: BlobId,
    /// Seconds since the Unix epoch.
    pub at_unix_secs: u64,
    pub verdict: Verdict,
    pub proved: u64,
    pub failed: u64,
    pub no_answer: u64,
    pub n_shards: u64,
    pub failed_nodes: Vec<String>,
}

/// `floe audit`; never returns on success: exits with the verdict's code.
pub fn audit(a: AuditArgs) -> Result<()> {
    let code = match run(a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_AUDIT_FAILED
        }
    };
    std::process::exit(code)
}

fn run(a: AuditArgs) -> Result<i32> {
    if let Some(path) = &a.verify {
        return verify_file(path, a.common.json);
    }
    if a.blob_ids.is_empty() && a.file.is_empty() {
        bail!("give one or more blob IDs, or --file FILE");
    }
    let client = client(&a.common, false)?;
    let audits_dir = audits_dir(&a.common);
    runtime()?.block_on(async move {
        let ids = blob_ids(&client, &a).await?;
        let options = AuditOptions {
            samples: a.samples,
            timeout: a.timeout,
        };
        let (mut reports, mut evidence) = (Vec::new(), Vec::new());
        for id in ids {
            let (report, ev) = client.audit(&id, options).await?;
            if let Some(dir) = &audits_dir {
                remember(dir, &report);
            }
            if !a.common.json {
                print_report(&report);
            }
            evidence.extend(ev);
            reports.push(report);
        }
        if a.common.json {
            print_json(&reports)?;
        }
        if let Some(path) = &a.evidence {
            let text = serde_json::to_string_pretty(&evidence)?;
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if !a.common.json {
                println!(
                    "Evidence for {} blob(s) written to {}.",
                    evidence.len(),
                    path.display()
                );
            }
        }
        Ok(reports
            .iter()
            .map(|r| r.verdict.exit_code())
            .max()
            .unwrap_or(0))
    })
}

async fn blob_ids(client: &Client, a: &AuditArgs) -> Result<Vec<BlobId>> {
    let mut ids = a
        .blob_ids
        .iter()
        .map(|s| parse_blob_id(s))
        .collect::<Result<Vec<_>>>()?;
    if !a.file.is_empty() {
        let (_, committee) = client.committee().await?;
        for file in &a.file {
            let data =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            ids.push(floe_core::compute_metadata(&committee.config, &data)?.blob_id);
        }
    }
    Ok(ids)
}

/// `floe audit --verify FILE --json`: one per piece of evidence in the file.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EvidenceVerdict {
    blob_id: BlobId,
    verified: bool,
    /// What the evidence supports, when it verifies.
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<EvidenceCheck>,
    /// Why it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn verify_file(path: &Path, json: bool) -> Result<i32> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let evidence: Vec<Evidence> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an audit evidence file", path.display()))?;
    let mut results = Vec::new();
    let mut ok = true;
    for e in &evidence {
        match verify_evidence(e) {
            Ok(check) => {
                if !json {
                    println!(
                        "Blob {}: the evidence supports {} ({} shards proved; {} failures signed by their nodes; {} unsigned); certificate {}.",
                        check.blob_id,
                        verdict_word(check.verdict),
                        check.proved,
                        check.signed_failures,
                        check.unsigned,
                        certificate_line(&check.certificate)
                    );
                }
                results.push(EvidenceVerdict {
                    blob_id: e.blob_id,
                    verified: true,
                    check: Some(check),
                    error: None,
                });
            }
            Err(err) => {
                ok = false;
                if !json {
                    println!("Blob {}: the evidence does NOT verify: {err}.", e.blob_id);
                }
                results.push(EvidenceVerdict {
                    blob_id: e.blob_id,
                    verified: false,
                    check: None,
                    error: Some(err.to_string()),
                });
            }
        }
    }
    if evidence.is_empty() {
        ok = false;
        if !json {
            println!("The file holds no evidence.");
        }
    }
    if json {
        print_json(&results)?;
    }
    Ok(if ok { 0 } else { 1 })
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Available => "AVAILABLE",
        Verdict::AtRisk => "AT RISK (readable, below quorum)",
        Verdict::Unreadable => "UNREADABLE",
        Verdict::NotCertified => "NOT CERTIFIED",
    }
}

fn ledger_line(r: &AuditReport) -> String {
    let event = r
        .ledger
        .event
        .as_ref()
        .map(|e| format!(" (event {}, tx {})", e.index, e.tx_digest))
        .unwrap_or_default();
    let state = match &r.ledger.status {
        BlobStatus::Nonexistent => "does not exist".to_string(),
        BlobStatus::Registered { .. } => "registered, not certified".into(),
        BlobStatus::Certified {
            end_epoch,
            initial_certified_epoch,
            ..
        } => format!(
            "certified in epoch {initial_certified_epoch} by a quorum certificate the ledger verified, until epoch {end_epoch}"
        ),
        BlobStatus::Invalid { .. } => "invalid (proven inconsistently encoded)".into(),
        BlobStatus::Deleted { .. } => "deleted".into(),
        BlobStatus::Expired { end_epoch, .. } => format!("expired at epoch {end_epoch}"),
    };
    format!("ledger: {state}{event}")
}

fn certificate_line(check: &CertificateCheck) -> String {
    match check {
        CertificateCheck::Verified {
            epoch,
            signer_shards,
        } => format!(
            "verified here: its signers hold {signer_shards} shards of the committee of epoch {epoch}"
        ),
        CertificateCheck::NotChecked { reason } => format!("not checked ({reason})"),
        CertificateCheck::Invalid { reason } => format!("INVALID: {reason}"),
    }
}

fn print_report(r: &AuditReport) {
    println!(
        "Blob {}: {} (exit {})",
        r.blob_id,
        verdict_word(r.verdict),
        r.verdict.exit_code()
    );
    println!("  {}", ledger_line(r));
    if let Some(check) = &r.certificate_check {
        println!("  certificate: {}", certificate_line(check));
    }
    let Some(m) = &r.margins else { return };
    println!(
        "  shards: {} proved possession, {} failed, {} did not answer (of {}, committee of epoch {})",
        r.proved,
        r.failed,
        r.no_answer,
        m.n_shards,
        r.committee_epoch.unwrap_or_default()
    );
    println!(
        "  margin: {:+} above the read threshold (n − 2f = {}), {:+} above the quorum (n − f = {})",
        m.above_read_threshold, m.read_threshold, m.above_quorum, m.quorum
    );
    for f in &r.failed_nodes {
        let mut parts = Vec::new();
        if !f.failed_shards.is_empty() {
            parts.push(format!("failed shards {:?}", f.failed_shards));
        }
        if !f.silent_shards.is_empty() {
            parts.push(format!("no answer for shards {:?}", f.silent_shards));
        }
        println!(
            "  node {} ({}): {}: {}",
            f.node,
            f.address,
            parts.join(", "),
            f.reasons.join("; ")
        );
    }
    if !r.recovering_nodes.is_empty() {
        println!("  recovering: {}", r.recovering_nodes.join(", "));
    }
}

/// Where audit results are kept: `audits/` beside the wallet.
fn audits_dir(common: &CommonArgs) -> Option<PathBuf> {
    let loaded = cli_config::load(common).ok()?;
    Some(loaded.wallet_path.parent()?.join("audits"))
}

fn remember(dir: &Path, r: &AuditReport) {
    let last = LastAudit {
        blob_id: r.blob_id,
        at_unix_secs: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        verdict: r.verdict,
        proved: r.proved,
        failed: r.failed,
        no_answer: r.no_answer,
        n_shards: r.margins.map_or(0, |m| m.n_shards),
        failed_nodes: r.failed_nodes.iter().map(|f| f.node.clone()).collect(),
    };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(&last).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(format!("{}.json", r.blob_id)), text)
    };
    if let Err(e) = write() {
        eprintln!(
            "warning: cannot keep the audit result in {}: {e}",
            dir.display()
        );
    }
}

/// The last audit of `blob_id` kept by `floe audit`, if any.
pub fn last_audit(common: &CommonArgs, blob_id: &BlobId) -> Option<LastAudit> {
    let path = audits_dir(common)?.join(format!("{blob_id}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}
