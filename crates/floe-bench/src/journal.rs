//! The load journal: what `floe load` writes, one JSON object per line, and what
//! `floe load --verify` and `docker/chaos.py` read back. `op` tells which kind a line is.
//!
//! * `start` (first): `journalVersion` ([`JOURNAL_VERSION`]), the run's seed and settings;
//! * `store`, `read`: one per operation ([`OpLine`]);
//! * `summary`: totals, at the end of a run;
//! * `verify` (one per certified blob) and `verifySummary`, in verify mode.
//!
//! A journal is read line by line; a line this version cannot read is an error naming the file
//! and line, never skipped.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The journal format this build writes and reads (on the `start` line).
pub const JOURNAL_VERSION: u32 = 1;

/// One journal line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Line {
    Start {
        journal_version: u32,
        ms: u64,
        /// The run's seed, 16 hex digits.
        seed: String,
        workers: usize,
        daemon_workers: usize,
        duration_ms: u64,
        op_timeout_ms: u64,
    },
    Store(OpLine),
    Read(OpLine),
    Summary {
        ms: u64,
        stores: u64,
        stores_ok: u64,
        reads: u64,
        reads_ok: u64,
        wrong: u64,
    },
    Verify {
        ms: u64,
        blob_id: String,
        size: u64,
        attempts: u32,
        ok: bool,
        lost: bool,
        wrong: bool,
        error_kind: Option<String>,
        error: Option<String>,
    },
    VerifySummary {
        ms: u64,
        certified: usize,
        read_back: u64,
        lost: u64,
        wrong: u64,
    },
}

/// A store or a read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpLine {
    pub worker: usize,
    /// `client` or `daemon`.
    pub via: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub ok: bool,
    /// A read returned bytes that differ from what was stored.
    pub wrong: bool,
    pub blob_id: Option<String>,
    pub size: u64,
    /// The blob's content seed, 16 hex digits: the bytes are `blob_bytes(seed, size)`.
    pub data_seed: String,
    pub error_kind: Option<String>,
    pub error: Option<String>,
}

/// Why a journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read the journal {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a journal line this floe reads: {reason}")]
    Line {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{path}:{line}: journal version {found}; this floe reads version {JOURNAL_VERSION}")]
    Version {
        path: String,
        line: usize,
        found: u32,
    },
}

/// Every line of the journal at `path`, with its line number (from 1); blank lines skipped.
pub fn read(path: &Path) -> Result<Vec<(usize, Line)>, JournalError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| JournalError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&shown, &text)
}

/// The lines of a journal's text (`path` only names it in errors).
pub fn parse(path: &str, text: &str) -> Result<Vec<(usize, Line)>, JournalError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw).map_err(|e| JournalError::Line {
            path: path.to_string(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        if let Line::Start {
            journal_version, ..
        } = &line
            && *journal_version != JOURNAL_VERSION
        {
            return Err(JournalError::Version {
                path: path.to_string(),
                line: i + 1,
                found: *journal_version,
            });
        }
        out.push((i + 1, line));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> OpLine {
        OpLine {
            worker: 1,
            via: "client".into(),
            start_ms: 2,
            end_ms: 3,
            ok: true,
            wrong: false,
            blob_id: None,
            size: 5,
            data_seed: "00000000000000ff".into(),
            error_kind: None,
            error: None,
        }
    }

    /// The keys `docker/chaos.py` and older tooling read stay where they were.
    #[test]
    fn lines_are_flat_camel_case_objects_tagged_by_op() {
        let v = serde_json::to_value(Line::Store(op())).unwrap();
        assert_eq!(v["op"], "store");
        assert_eq!(v["dataSeed"], "00000000000000ff");
        assert_eq!(v["startMs"], 2);
        assert!(v["blobId"].is_null());
        let v = serde_json::to_value(Line::VerifySummary {
            ms: 1,
            certified: 2,
            read_back: 2,
            lost: 0,
            wrong: 0,
        })
        .unwrap();
        assert_eq!(v["op"], "verifySummary");
        assert_eq!(v["readBack"], 2);
    }

    #[test]
    fn a_journal_round_trips_and_bad_lines_are_named() {
        let lines = [
            Line::Start {
                journal_version: JOURNAL_VERSION,
                ms: 0,
                seed: "0000000000000007".into(),
                workers: 2,
                daemon_workers: 0,
                duration_ms: 1000,
                op_timeout_ms: 500,
            },
            Line::Store(op()),
            Line::Read(op()),
        ];
        let text: String = lines
            .iter()
            .map(|l| format!("{}\n\n", serde_json::to_string(l).unwrap()))
            .collect();
        let back: Vec<Line> = parse("j", &text)
            .unwrap()
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        assert_eq!(back, lines);
        let err = parse("j", "{\"op\":\"store\"}\n").unwrap_err().to_string();
        assert!(err.starts_with("j:1: not a journal line"), "{err}");
        let newer = text.replacen("\"journalVersion\":1", "\"journalVersion\":2", 1);
        let err = parse("j", &newer).unwrap_err().to_string();
        assert!(err.contains("journal version 2"), "{err}");
    }
}
