//! Coalescing of identical whole-blob reads: while one read of a blob (with a given consistency
//! check) is under way, further requests for it wait for that read instead of starting their
//! own, and all answer from the one result. A popular blob then costs the storage nodes one
//! read, not one per request, and its bytes are held once, not once per request.
//!
//! The entry is removed when the read finishes, so nothing is cached beyond the requests that
//! overlapped it. If the request running the read goes away (its client disconnected), one of
//! the waiting requests takes the read over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use floe_client::{Client, ClientError, NoProgress, ReadOptions};
use floe_core::{BlobId, ConsistencyCheck};
use tokio::sync::OnceCell;

/// The shared outcome of one read.
pub type Shared = Result<Bytes, Arc<ClientError>>;

type Key = (BlobId, u8);

/// Reads in flight by (blob ID, consistency check).
#[derive(Default)]
pub struct Coalescer {
    in_flight: Mutex<HashMap<Key, Arc<OnceCell<Shared>>>>,
}

fn check_tag(check: ConsistencyCheck) -> u8 {
    match check {
        ConsistencyCheck::Skip => 0,
        ConsistencyCheck::Default => 1,
        ConsistencyCheck::Strict => 2,
    }
}

impl Coalescer {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<OnceCell<Shared>>>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The blob's bytes, from a read shared with every overlapping request for the same blob.
    pub async fn read(&self, client: &Client, blob_id: BlobId, options: ReadOptions) -> Shared {
        let key = (blob_id, check_tag(options.check));
        let cell = self.lock().entry(key).or_default().clone();
        let result = cell
            .get_or_init(|| async {
                client
                    .read(&blob_id, options, Arc::new(NoProgress))
                    .await
                    .map(Bytes::from)
                    .map_err(Arc::new)
            })
            .await
            .clone();
        // The first to finish removes the entry (if it is still this read's).
        let mut map = self.lock();
        if map.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            map.remove(&key);
        }
        result
    }
}
