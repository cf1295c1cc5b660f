//! `floe`: the command-line entry point. Argument parsing and output only; the work is in the
//! library crates.

mod allocator;
mod argv;
mod attribute_cmds;
mod audit_cmd;
mod blob_cmds;
mod challenge_cmd;
mod cli_config;
mod client_cmds;
mod client_json;
mod daemon_cmd;
mod dashboard_cmd;
mod health_cmd;
mod ledger_cmds;
mod load_cmd;
mod node_cmds;
mod node_membership;
mod output;
mod quilt_cmds;
mod shared_cmds;
mod store_how;
mod testbed_cmd;
mod testbed_remote;
mod testbed_replicas;

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
    /// Store files: encode, register, upload to the storage nodes, certify.
    #[command(visible_alias = "write")]
    Store(client_cmds::StoreArgs),
    /// Read a blob and write it to standard output or --out FILE.
    Read(client_cmds::ReadArgs),
    /// Store many small files as one quilt blob (Walrus QuiltV1), each readable on its own.
    #[command(visible_alias = "write-quilt")]
    StoreQuilt(quilt_cmds::StoreQuiltArgs),
    /// Read patches of a quilt by identifier, by tag or by patch ID, fetching only their columns.
    ReadQuilt(quilt_cmds::ReadQuiltArgs),
    /// List a quilt's patches: identifiers, patch IDs and tags.
    #[command(visible_alias = "resolve-quilt")]
    ListPatchesInQuilt(quilt_cmds::ListPatchesArgs),
    /// A blob's status on the ledger, and how many nodes agree.
    BlobStatus(client_cmds::StatusArgs),
    /// Is my blob really there? Every shard's node proves possession of sampled symbols
    /// (signed, with Merkle proofs); exit 0 available, 1 at risk, 2 unreadable, 3 not certified.
    Audit(audit_cmd::AuditArgs),
    /// The network: epoch, shards, committee, limits, your wallet.
    Info(client_cmds::InfoArgs),
    /// The storage challenges recorded on the ledger: per node and epoch, passed, failed,
    /// unanswered and not issued, with the failures and the challengers' signatures checked.
    Challenges(challenge_cmd::ChallengesArgs),
    /// The blobs your wallet owns.
    ListBlobs(client_cmds::ListArgs),
    /// Delete deletable blobs you own.
    Delete(client_cmds::DeleteArgs),
    /// Extend the lifetime of a blob you own, or (--shared) of any shared blob.
    Extend(client_cmds::ExtendArgs),
    /// Wrap a certified blob object you own into a shared blob that anyone may extend and
    /// nobody may delete or transfer.
    Share(shared_cmds::ShareArgs),
    /// Walrus funds shared blobs with WAL; Floe charges nothing for storage (explains this).
    FundSharedBlob(shared_cmds::FundArgs),
    /// The attributes (key–value pairs) of a blob object.
    GetBlobAttribute(attribute_cmds::GetArgs),
    /// Set attributes of a blob object you own (e.g. --attr content-type image/png).
    SetBlobAttribute(attribute_cmds::SetArgs),
    /// Remove some attributes of a blob object you own.
    RemoveBlobAttributeFields(attribute_cmds::RemoveFieldsArgs),
    /// Remove every attribute of a blob object you own.
    RemoveBlobAttribute(attribute_cmds::RemoveArgs),
    /// The health of every storage node of the committee.
    Health(client_cmds::HealthArgs),
    /// Serve Walrus's aggregator and publisher HTTP API (reads and writes).
    Daemon(daemon_cmd::DaemonArgs),
    /// Serve the aggregator HTTP API (reads only).
    Aggregator(daemon_cmd::DaemonArgs),
    /// Serve the publisher HTTP API (writes only).
    Publisher(daemon_cmd::DaemonArgs),
    /// Serve the web dashboard of the network (read-only; the daemon also serves it).
    Dashboard(dashboard_cmd::DashboardArgs),
    /// Start (or resume) a local network: a ledger and storage nodes, with a client config.
    Testbed(testbed_cmd::TestbedArgs),
    /// Compute the blob ID of a file exactly as `walrus blob-id` does, without storing anything.
    BlobId(blob_cmds::BlobIdArgs),
    /// Encode a file into its metadata and every sliver, one file per sliver, for inspection or
    /// byte-for-byte comparison with another implementation.
    Encode(blob_cmds::EncodeArgs),
    /// Convert a blob ID given as a decimal u256 (the ledger's little-endian form) to its text form.
    ConvertBlobId(blob_cmds::ConvertArgs),
    /// Benchmarks: encoding, the ledger, storage nodes, the client, epoch changes, and the whole
    /// network of processes through the daemon (e2e).
    #[command(subcommand)]
    Bench(floe_bench::BenchCommand),
    /// The ledger (control plane): create a genesis, run the server, replay a log.
    #[command(subcommand)]
    Ledger(ledger_cmds::LedgerCommand),
    /// A bounded store/read load with a journal, or --verify of journals (for chaos tests).
    Load(load_cmd::LoadCmd),
    /// A storage node: create its keys, run it, register it, deregister it, set its weight.
    #[command(subcommand)]
    Node(node_cmds::NodeCommand),
}

/// Large blocks on transparent huge pages (see `allocator`).
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

fn main() {
    // Servers and clients here hold one socket per node connection: take every file
    // descriptor the hard limit allows (soft limits are often 1024).
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    // Large buffers go back to the system when freed, and a daemon returns the rest of its
    // free pages once idle (see `allocator`).
    allocator::configure();
    floe_daemon::memory::set_release(allocator::release_free_memory);
    let args = argv::attach_hyphen_ids(std::env::args_os());
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            if e.kind() == clap::error::ErrorKind::UnknownArgument
                && let Some(hint) = argv::hyphen_id_hint(&args)
            {
                let _ = e.print();
                eprintln!("{hint}");
                std::process::exit(2);
            }
            e.exit()
        }
    };
    let result: Result<()> = match cli.command {
        Command::Store(a) => client_cmds::store(a),
        Command::Read(a) => client_cmds::read(a),
        Command::StoreQuilt(a) => quilt_cmds::store_quilt(a),
        Command::ReadQuilt(a) => quilt_cmds::read_quilt(a),
        Command::ListPatchesInQuilt(a) => quilt_cmds::list_patches(a),
        Command::BlobStatus(a) => client_cmds::blob_status(a),
        Command::Audit(a) => audit_cmd::audit(a),
        Command::Info(a) => client_cmds::info(a),
        Command::Challenges(a) => challenge_cmd::run(a),
        Command::ListBlobs(a) => client_cmds::list_blobs(a),
        Command::Delete(a) => client_cmds::delete(a),
        Command::Extend(a) => client_cmds::extend(a),
        Command::Share(a) => shared_cmds::share(a),
        Command::FundSharedBlob(a) => shared_cmds::fund(a),
        Command::GetBlobAttribute(a) => attribute_cmds::get(a),
        Command::SetBlobAttribute(a) => attribute_cmds::set(a),
        Command::RemoveBlobAttributeFields(a) => attribute_cmds::remove_fields(a),
        Command::RemoveBlobAttribute(a) => attribute_cmds::remove(a),
        Command::Health(a) => health_cmd::health(a),
        Command::Testbed(a) => testbed_cmd::run(a),
        Command::Daemon(a) => daemon_cmd::run(a, None),
        Command::Aggregator(a) => daemon_cmd::run(a, Some(floe_daemon::Mode::Aggregator)),
        Command::Publisher(a) => daemon_cmd::run(a, Some(floe_daemon::Mode::Publisher)),
        Command::Dashboard(a) => dashboard_cmd::run(a),
        Command::BlobId(a) => blob_cmds::blob_id(a),
        Command::Encode(a) => blob_cmds::encode(a),
        Command::ConvertBlobId(a) => blob_cmds::convert(a),
        Command::Bench(b) => floe_bench::run(b),
        Command::Ledger(c) => ledger_cmds::run(c),
        Command::Node(c) => node_cmds::run(c),
        Command::Load(a) => load_cmd::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
