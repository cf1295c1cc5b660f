//! `floe`: the command-line entry point. Argument parsing and output only; the work is in the
//! library crates.

mod bench;
mod bench_ledger;
mod blob_cmds;
mod file_source;
mod ledger_cmds;
mod node_cmds;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "floe",
    version,
    about = "Floe: erasure-coded blob storage, compatible with Walrus"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compute the blob ID of a file exactly as `walrus blob-id` does, without storing anything.
    BlobId(blob_cmds::BlobIdArgs),
    /// Encode a file into its metadata and every sliver, one file per sliver, for inspection or
    /// byte-for-byte comparison with another implementation.
    Encode(blob_cmds::EncodeArgs),
    /// Convert a blob ID given as a decimal u256 (the ledger's little-endian form) to its text form.
    ConvertBlobId(blob_cmds::ConvertArgs),
    /// Measure encoding throughput and peak memory.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The ledger (control plane): create a genesis, run the server, replay a log.
    #[command(subcommand)]
    Ledger(ledger_cmds::LedgerCommand),
    /// A storage node: create its keys, run it.
    #[command(subcommand)]
    Node(node_cmds::NodeCommand),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::BlobId(a) => blob_cmds::blob_id(a),
        Command::Encode(a) => blob_cmds::encode(a),
        Command::ConvertBlobId(a) => blob_cmds::convert(a),
        Command::Bench(b) => bench::run(b),
        Command::Ledger(c) => ledger_cmds::run(c),
        Command::Node(c) => node_cmds::run(c),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
