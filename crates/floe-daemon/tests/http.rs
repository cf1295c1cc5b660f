//! The daemon over real HTTP against a local network: a ledger and seven storage nodes on
//! loopback sockets (n = 10 shards, f = 3).

mod support;

use floe_client::{Client, ClientConfig};
use floe_daemon::auth::{Claims, mint};
use floe_daemon::{DaemonOptions, JwtAlgorithm, Mode};
use floe_ledger::api_types::ObjectResponse;
use floe_ledger::{AccountKey, Address};
use floe_testbed::Testbed;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

use support::*;

// The two scenarios, a file each.
#[path = "http/reads.rs"]
mod reads;
#[path = "http/writes.rs"]
mod writes;
