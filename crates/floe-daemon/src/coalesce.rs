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

use floe_client::{BlobParts, Client, ClientError, NoProgress, ReadOptions};
use floe_core::{BlobId, ConsistencyCheck};
use tokio::sync::OnceCell;

/// The shared outcome of one read.
pub type Shared = Result<BlobParts, Arc<ClientError>>;

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
        // Holds this request's only handle on the read; dropping it (finished or gone away)
        // removes the entry once no other request waits for it.
        let guard = Leave {
            coalescer: self,
            key,
            cell: self.lock().entry(key).or_default().clone(),
        };
        guard
            .cell
            .get_or_init(|| async {
                client
                    .read_parts(&blob_id, options, Arc::new(NoProgress))
                    .await
                    .map_err(Arc::new)
            })
            .await
            .clone()
    }
}

/// One request's interest in a read in flight.
struct Leave<'a> {
    coalescer: &'a Coalescer,
    key: Key,
    cell: Arc<OnceCell<Shared>>,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut map = self.coalescer.lock();
        let ours = map
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cell));
        // A finished read is dropped at once (later requests read anew); an unfinished one
        // when no other request waits for it (the map's handle and ours are all there is).
        if ours && (self.cell.initialized() || Arc::strong_count(&self.cell) <= 2) {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_that_go_away_leave_no_entry_behind() {
        // A "ledger" that accepts connections and never answers: reads hang until dropped.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = floe_client::ClientConfig {
            ledger_url: format!("http://{}", silent.local_addr().unwrap()),
            ..Default::default()
        };
        let client = Client::new(config, None).unwrap();
        let coalescer = Coalescer::default();
        let wait = std::time::Duration::from_millis(100);
        let (a, b) = tokio::join!(
            tokio::time::timeout(
                wait,
                coalescer.read(&client, BlobId([3; 32]), ReadOptions::default())
            ),
            tokio::time::timeout(
                wait,
                coalescer.read(&client, BlobId([3; 32]), ReadOptions::default())
            ),
        );
        assert!(
            a.is_err() && b.is_err(),
            "the reads should still be waiting"
        );
        assert!(
            coalescer.lock().is_empty(),
            "cancelled reads left their entry"
        );
    }
}
