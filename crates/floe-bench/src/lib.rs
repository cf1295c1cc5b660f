//! Floe's benchmarks and load generator, as a library the `floe` binary calls into.
//!
//! `floe bench <name>` parses into [`BenchCommand`] and runs with [`run`]; `floe load` parses
//! into [`load::LoadArgs`] and runs with [`load::run`]. Each benchmark builds its own network
//! (in this process, or as separate `floe` processes for [`e2e`]), measures, prints a table
//! or JSON, and tears the network down again. The `run` functions are the command edge and
//! return `anyhow` errors; helpers other crates use ([`file_source`], [`units`]) have typed ones.

pub mod client;
pub mod e2e;
pub mod encode;
pub mod epoch;
pub mod file_source;
pub mod journal;
pub mod ledger;
pub mod load;
pub mod node;
pub mod quilt;
pub mod units;

use clap::Subcommand;

/// `floe bench …`.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Full encode (all slivers + metadata) and metadata-only (`blob-id`) of a random blob.
    Encode(encode::EncodeBench),
    /// Register + certify throughput of a ledger server over HTTP, and event delivery latency.
    Ledger(ledger::LedgerBench),
    /// Sliver PUT throughput, GET latency and recovery traffic of a local ledger + nodes.
    Node(node::NodeBench),
    /// Store/read throughput and small-store latency of the client against a local network.
    Client(client::ClientBench),
    /// Shard migration throughput and epoch-change duration as a function of the data stored.
    Epoch(epoch::EpochBench),
    /// The data plane through the daemon's HTTP API, on a network of separate `floe` processes:
    /// PUT/GET latency and throughput, CPU and memory per process, concurrent readers, and
    /// silent (SIGSTOPped) nodes.
    E2e(e2e::E2eBench),
    /// Many small files as one quilt against single blobs: store time, encoded bytes charged,
    /// bytes on disk, and the latency and bytes of one patch read.
    Quilt(quilt::QuiltBench),
}

/// Run one benchmark.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Encode(args) => encode::run(args),
        BenchCommand::Ledger(args) => ledger::run(args),
        BenchCommand::Node(args) => node::run(args),
        BenchCommand::Client(args) => client::run(args),
        BenchCommand::Epoch(args) => epoch::run(args),
        BenchCommand::E2e(args) => e2e::run(args),
        BenchCommand::Quilt(args) => quilt::run(args),
    }
}
