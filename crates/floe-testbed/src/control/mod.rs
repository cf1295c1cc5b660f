//! The control API of a running testbed: other processes add, remove and re-weight its nodes.
//!
//! [`serve`] listens on a loopback port and writes `<data-dir>/control.json` (mode 0600) with
//! its URL and a random bearer token; every request must carry `Authorization: Bearer <token>`.
//! The file is removed when the testbed stops. [`ControlClient`] finds a testbed by that file
//! and speaks the API with the typed bodies below.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /v1/nodes` | | `[NodeRow]` |
//! | `POST /v1/nodes` | `{"weight":W}` (default 1) | [`Added`]: register and start a node |
//! | `DELETE /v1/nodes/{i}` | | [`Removed`]: deregister node i now; stop it once it is in no committee |
//! | `POST /v1/nodes/{i}/weight` | `{"weight":W}` | [`WeightChanged`] |
//!
//! Errors are [`ErrorBody`] (`{"error": reason}`) with a 4xx or 5xx status.

mod client;
mod server;

use std::path::{Path, PathBuf};

use floe_ledger::NodeId;
use floe_ledger::membership::Effect;
use serde::{Deserialize, Serialize};

pub use client::ControlClient;
pub use server::{Control, Report, SharedTestbed, serve};

/// The format version of `control.json`.
pub const CONTROL_VERSION: u32 = 1;

/// `<data-dir>/control.json`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlFile {
    pub version: u32,
    pub url: String,
    pub token: String,
}

/// Where a testbed in `data_dir` writes its control file.
pub fn control_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.json")
}

/// One node of the testbed, as `GET /v1/nodes` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRow {
    pub index: usize,
    pub address: String,
    pub running: bool,
    /// Deregistered through this API (a removed node that still runs is leaving).
    pub removed: bool,
    /// `None` when the node is in none of the current, next and previous committees.
    pub node_id: Option<NodeId>,
    pub weight: Option<u64>,
    /// Shards in the current committee.
    pub shards: usize,
    /// Shards in the next committee; `None` when the ledger did not say which comes next.
    pub next_shards: Option<usize>,
}

impl NodeRow {
    /// `running`, `leaving` (removed, still handing over), `removed` or `stopped`.
    pub fn state(&self) -> &'static str {
        match (self.running, self.removed) {
            (true, false) => "running",
            (true, true) => "leaving",
            (false, true) => "removed",
            (false, false) => "stopped",
        }
    }
}

/// The answer to `POST /v1/nodes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Added {
    pub index: usize,
    pub address: String,
    pub node_id: Option<NodeId>,
    pub weight: u64,
    /// When it joins the committee.
    #[serde(flatten)]
    pub effect: Effect,
}

/// The answer to `DELETE /v1/nodes/{i}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    pub index: usize,
    pub node_id: Option<NodeId>,
    pub in_committee: bool,
    pub next_shards: Option<usize>,
    /// When it leaves the committee.
    #[serde(flatten)]
    pub effect: Effect,
}

impl Removed {
    /// Whether the node still holds shards, now or in the next committee, that must move
    /// before the testbed stops it.
    pub fn holds_shards(&self) -> bool {
        self.in_committee || self.next_shards != Some(0)
    }
}

/// The answer to `POST /v1/nodes/{i}/weight`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightChanged {
    pub index: usize,
    pub node_id: Option<NodeId>,
    pub weight: u64,
    pub next_shards: Option<usize>,
    /// When the weight applies.
    #[serde(flatten)]
    pub effect: Effect,
}

/// The body of `POST /v1/nodes` and `POST /v1/nodes/{i}/weight`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightBody {
    pub weight: Option<u64>,
}

/// Every error answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Why the control API could not be served or asked.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the testbed is not running")]
    NotRunning,
    #[error("cannot listen on a loopback port for the testbed control API: {0}")]
    Listen(std::io::Error),
    #[error("cannot read random bytes for the control token: {0}")]
    Random(std::io::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no testbed is running in {dir} (start one with `floe testbed --data-dir {dir}`)")]
    NoTestbed { dir: String },
    #[error(
        "no testbed is running in {dir} (start one with `floe testbed --data-dir {dir}`): \
         {file} is left over and {url} does not answer"
    )]
    LeftOver {
        dir: String,
        file: String,
        url: String,
    },
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file} is not a testbed control file: {reason}")]
    BadFile { file: String, reason: String },
    #[error("{file} has format version {found}; this floe reads version {CONTROL_VERSION}")]
    Version { file: String, found: u32 },
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
    #[error("the testbed in {dir} did not answer: {reason}")]
    NoAnswer { dir: String, reason: String },
    #[error("the testbed in {dir} refused the token of {file}: {reason}")]
    Unauthorized {
        dir: String,
        file: String,
        reason: String,
    },
    /// The testbed answered with an error status; the reason is its own words.
    #[error("{reason}")]
    Refused { status: u16, reason: String },
    #[error("the testbed in {dir} answered {what} with something unreadable: {reason}")]
    BadAnswer {
        dir: String,
        what: &'static str,
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON keys scripts read, at the top level with the effect's flattened in.
    #[test]
    fn answers_print_flat_camel_case_json() {
        let effect = Effect {
            epoch: 4,
            effective_epoch: 5,
            effective_at_ms: 6,
            next_committee_fixed: false,
        };
        let removed = Removed {
            index: 2,
            node_id: None,
            in_committee: true,
            next_shards: Some(0),
            effect,
        };
        let v = serde_json::to_value(&removed).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "effectiveAtMs",
                "effectiveEpoch",
                "epoch",
                "inCommittee",
                "index",
                "nextCommitteeFixed",
                "nextShards",
                "nodeId"
            ]
        );
        assert_eq!(serde_json::from_value::<Removed>(v).unwrap(), removed);
        assert!(removed.holds_shards());
        let row = NodeRow {
            index: 0,
            address: "127.0.0.1:1".into(),
            running: true,
            removed: true,
            node_id: None,
            weight: None,
            shards: 0,
            next_shards: None,
        };
        assert_eq!(row.state(), "leaving");
    }
}
