//! Streaming reads: a blob's bytes in order, row by row. Each row is a systematic primary
//! sliver verified against the metadata, so the first bytes are out after one metadata fetch
//! and one sliver, long before the whole blob could be decoded. As with byte ranges (and
//! Walrus's streaming), the whole blob's consistency is not checked; every sliver is.

use std::sync::Arc;

use floe_core::{BlobId, SliverType};
use tokio::sync::mpsc;

use crate::{Client, ClientError, NoProgress, Progress, ReadOptions};

/// Rows fetched at once, and rows buffered ahead of the reader.
const WINDOW: u16 = 4;

/// A blob being read in order: its size, then its bytes in chunks (one per row). An error
/// ends the stream.
pub struct BlobStream {
    pub size: u64,
    pub chunks: mpsc::Receiver<Result<Vec<u8>, ClientError>>,
}

impl Client {
    /// Start reading `blob_id` in order. Errors found before the first byte (not found, not
    /// certified, no metadata, …) are returned here; later ones end the stream. Memory is
    /// bounded by a few rows: the reader's pace drives the fetching.
    pub async fn read_stream(&self, blob_id: &BlobId) -> Result<BlobStream, ClientError> {
        let committee = self.read_committee(blob_id).await?;
        let metadata = self.fetch_metadata(&committee, blob_id).await?;
        let size = metadata.metadata.unencoded_length();
        let config = committee.config;
        let symbol_size = metadata
            .metadata
            .symbol_size(&config)
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let row_bytes = config.sliver_len(SliverType::Primary, symbol_size) as u64;
        let rows = u16::try_from(size.div_ceil(row_bytes))
            .map_err(|_| ClientError::Internal("more rows than a matrix has".into()))?;
        let (tx, rx) = mpsc::channel(usize::from(WINDOW));
        let client = self.clone();
        let blob_id = *blob_id;
        tokio::spawn(async move {
            let progress: Arc<dyn Progress> = Arc::new(NoProgress);
            let mut next = 0u16;
            while next < rows {
                let batch: Vec<u16> = (next..rows.min(next.saturating_add(WINDOW))).collect();
                let want = batch.len();
                let (mut slivers, _) = client
                    .fetch_slivers(
                        &committee,
                        &metadata,
                        crate::read::Want {
                            axis: SliverType::Primary,
                            order: batch,
                            need: want,
                        },
                        client.patience(false),
                        &progress,
                    )
                    .await;
                if slivers.len() < want {
                    // A row is unavailable: decode the blob from any slivers, send the rest.
                    tracing::info!(%blob_id, row = next, "a row is unavailable; decoding the blob");
                    let rest = client
                        .read(&blob_id, ReadOptions::default(), progress.clone())
                        .await
                        .map(|all| all[(u64::from(next) * row_bytes) as usize..].to_vec());
                    let _ = tx.send(rest).await;
                    return;
                }
                slivers.sort_by_key(|s| s.sliver().index);
                for sliver in slivers
                    .into_iter()
                    .map(floe_core::VerifiedSliver::into_inner)
                {
                    let row_start = u64::from(sliver.index.0) * row_bytes;
                    let mut bytes = sliver.symbols;
                    bytes.truncate((size - row_start).min(row_bytes) as usize);
                    if tx.send(Ok(bytes)).await.is_err() {
                        return; // The reader went away.
                    }
                }
                next += want as u16;
            }
        });
        Ok(BlobStream { size, chunks: rx })
    }
}
