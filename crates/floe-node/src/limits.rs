//! The node's fixed limits, in one place, with the relations between them checked when the
//! crate compiles. Limits an operator may tune are in [`crate::config::Limits`] instead.

use std::time::Duration;

// --- Requests served -------------------------------------------------------------------------

/// Most target slivers one decoding-symbols request may name.
pub const MAX_DECODING_TARGETS: usize = 100;
/// Most symbol IDs one recovery-symbols request may name.
pub const MAX_SYMBOL_IDS: usize = 1024;
/// Largest audit request body (a BCS `AuditRequest` is a few dozen bytes).
pub const MAX_AUDIT_REQUEST_BYTES: usize = 1024;
/// Sliver-batch bodies are read into buffers kept for the next ones (no fresh pages to fault
/// in and clear per upload): at most this many are kept...
pub const UPLOAD_BUFFERS_KEPT: usize = 2;
/// ...each of at most this many bytes (a client's batch is 8 MiB by default), so they hold at
/// most 32 MiB; they are freed once no upload took one for between one and two periods of
/// `Limits::upload_buffers_idle_ms`.
pub const UPLOAD_BUFFER_MAX_BYTES: usize = 16 << 20;

// --- Shard sync (epoch change) -----------------------------------------------------------------

/// Most slivers served per sync-shard request.
pub const MAX_SLIVERS_PER_BATCH: u64 = 256;
/// Sliver bytes per sync-shard response beyond which the batch is cut short.
pub const MAX_BATCH_BYTES: usize = 16 << 20;
/// Slivers asked for per sync-shard request by the new owner.
pub const REQUEST_BATCH: u64 = 128;
/// Metadata requests to the previous owner at once, for the blobs of a batch not known here.
pub const METADATA_FETCHES: usize = 16;
/// Per-request timeout of a sync-shard batch.
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(60);

// --- Blob recovery -----------------------------------------------------------------------------

/// Per-request timeout of metadata fetches from peers.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one decoding-symbols request.
pub const SYMBOLS_TIMEOUT: Duration = Duration::from_secs(30);
/// Decoding-symbols requests in flight at once, per batch of targets.
pub const SYMBOL_REQUESTS_IN_FLIGHT: usize = 8;
/// Aim for decoding-symbols answers of at most this many bytes: a request names fewer targets
/// when the peer holds many slivers or the symbols are large.
pub const SYMBOLS_RESPONSE_BUDGET: usize = 8 << 20;
/// Rounds of requests and decoding before the open targets go to the proven path.
pub const OPTIMISTIC_ROUNDS: usize = 4;

// --- Workers -----------------------------------------------------------------------------------

/// Ledger events fetched per page by the follower.
pub const EVENT_PAGE: usize = 500;
/// The follower's long-poll wait per request.
pub const EVENT_WAIT: Duration = Duration::from_secs(5);
/// The follower's backoff after a failed page: first and longest.
pub const FOLLOWER_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(10));
/// Blob syncs that may wait in the queue for the blob-sync worker; a request that finds it
/// full is dropped, and the next maintenance scan asks again.
pub const SYNC_QUEUE: usize = 16 * 1024;
/// Sync tasks the blob-sync worker keeps per sync permit (`max_concurrent_syncs`): each task
/// waits out its delay, then for a permit. Requests beyond that wait in the queue, so the tasks
/// and the set of blobs being synced stay bounded (by this times the permits, plus
/// [`SYNC_QUEUE`]) however many blobs need syncing.
pub const SYNC_TASKS_PER_PERMIT: usize = 64;
/// Attempts of one blob sync before it is left to the next maintenance scan.
pub const SYNC_ATTEMPTS: u32 = 6;
/// Backoff between attempts of a blob sync: first and longest.
pub const SYNC_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(500), Duration::from_secs(30));
/// Pause between rounds of a migration that has not finished.
pub const MIGRATION_ROUND_PAUSE: Duration = Duration::from_secs(1);
/// Attempts of a blob's recovery per migration round.
pub const MIGRATION_RECOVERY_ATTEMPTS: u32 = 3;
/// The challenger's longest wait between rounds after failures.
pub const CHALLENGER_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long the workers get to stop after the API server is down.
pub const WORKER_STOP_DEADLINE: Duration = Duration::from_secs(5);

const fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// The relations the code relies on.
const _: () = {
    // The new owner asks for no more slivers than the previous owner serves.
    assert!(REQUEST_BATCH <= MAX_SLIVERS_PER_BATCH);
    // Recovery batches use the decoding-symbols route, so they name no more targets than it
    // serves; the proven path asks for symbol IDs, one per source sliver of a target.
    assert!(MAX_DECODING_TARGETS <= MAX_SYMBOL_IDS);
    // A symbols request may wait longer than a metadata fetch, never shorter.
    assert!(ms(PEER_TIMEOUT) <= ms(SYMBOLS_TIMEOUT));
    // The follower's long poll ends well before the ledger client gives up on it.
    assert!(ms(EVENT_WAIT) < ms(floe_ledger_client::REQUEST_TIMEOUT));
    // Backoffs grow.
    assert!(ms(FOLLOWER_BACKOFF.0) < ms(FOLLOWER_BACKOFF.1));
    assert!(ms(SYNC_BACKOFF.0) < ms(SYNC_BACKOFF.1));
    // Every retry loop is bounded, and so is the queue.
    assert!(SYNC_ATTEMPTS >= 1 && MIGRATION_RECOVERY_ATTEMPTS >= 1);
    assert!(SYNC_QUEUE >= 1);
    assert!(SYNC_TASKS_PER_PERMIT >= 1);
    // A stop waits at least for one migration round's pause to end.
    assert!(ms(WORKER_STOP_DEADLINE) > ms(MIGRATION_ROUND_PAUSE));
};
