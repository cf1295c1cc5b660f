//! Quilts on the network: storing many files as one blob, and reading patches by fetching
//! only their columns.
//!
//! A patch occupies columns `[start, end)` of the quilt's matrix, and column c is systematic
//! secondary sliver c. A read fetches those secondary slivers (and column 0 … k−1 for the
//! index), each verified against the metadata, itself verified against the quilt ID. A column
//! no node serves is rebuilt from decoding symbols of other nodes' primary slivers, and the
//! result is accepted only if it matches the metadata. Only when that fails too is the whole
//! quilt read and decoded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use floe_core::quilt::{
    self, BuiltQuilt, PatchContents, QuiltIndex, QuiltPatch, QuiltPatchInput, QuiltPatchInternalId,
    QuiltReader,
};
use floe_core::{
    BlobId, BlobMetadataWithId, DecodingSymbol, EitherDecodingSymbol, SliverData, SliverIndex,
    SliverType,
};
use tokio::task::JoinSet;

use crate::committee::CommitteeView;
use crate::types::{QuiltStoreResult, StoredQuiltPatch};
use crate::{Client, ClientError, NoProgress, Progress, ReadOptions, StoreOptions, StoreOutcome};

/// The attribute naming a blob object's type, and its value for quilts (as Walrus).
pub const BLOB_TYPE_ATTRIBUTE: &str = "_walrusBlobType";
pub const QUILT_BLOB_TYPE: &str = "quilt";

/// What reading from a quilt cost: slivers and bytes fetched from nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuiltReadStats {
    /// Secondary slivers fetched and verified.
    pub slivers: usize,
    /// Bytes of those slivers.
    pub sliver_bytes: u64,
    /// Bytes of the verified metadata (fetched once).
    pub metadata_bytes: u64,
    /// Columns rebuilt from decoding symbols.
    pub recovered: usize,
    /// Bytes of decoding symbols fetched to rebuild them.
    pub symbol_bytes: u64,
    /// Whether the whole quilt had to be read (its size then counts in `whole_blob_bytes`).
    pub whole_blob: bool,
    pub whole_blob_bytes: u64,
}

impl QuiltReadStats {
    /// Everything fetched: metadata, slivers, symbols and a whole-blob read.
    pub fn total_bytes(&self) -> u64 {
        self.metadata_bytes + self.sliver_bytes + self.symbol_bytes + self.whole_blob_bytes
    }
}

/// The outcome of storing a quilt.
#[derive(Debug)]
pub struct QuiltStoreOutcome {
    pub outcome: StoreOutcome,
    pub quilt_id: BlobId,
    pub index: QuiltIndex,
}

impl QuiltStoreOutcome {
    /// Walrus's `QuiltStoreResult` JSON.
    pub fn result(&self) -> QuiltStoreResult {
        QuiltStoreResult {
            blob_store_result: self.outcome.result.clone(),
            stored_quilt_blobs: stored_patches(self.quilt_id, &self.index),
        }
    }
}

/// The `storedQuiltBlobs` list: identifier, patch ID and column range of every patch.
pub fn stored_patches(quilt_id: BlobId, index: &QuiltIndex) -> Vec<StoredQuiltPatch> {
    index
        .patches
        .iter()
        .map(|p| StoredQuiltPatch {
            identifier: p.identifier.clone(),
            quilt_patch_id: p.patch_id(quilt_id).to_string(),
            range: Some((p.start, p.end)),
        })
        .collect()
}

impl Client {
    /// Builds a quilt for this network's shard count (no I/O besides reading the ledger's
    /// parameters). Used by `store_quilt` and by dry runs.
    pub async fn build_quilt(
        &self,
        patches: &[QuiltPatchInput<'_>],
    ) -> Result<BuiltQuilt, ClientError> {
        let system = self.system().await?;
        let config = floe_core::EncodingConfig::new(system.n_shards)
            .map_err(|e| ClientError::Committee(e.to_string()))?;
        Ok(quilt::build_quilt(&config, patches)?)
    }

    /// Stores `patches` as one quilt blob.
    pub async fn store_quilt(
        &self,
        patches: &[QuiltPatchInput<'_>],
        options: &StoreOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<QuiltStoreOutcome, ClientError> {
        let built = self.build_quilt(patches).await?;
        let outcome = self.store(built.bytes, options, progress).await?;
        let quilt_id = outcome
            .result
            .blob_id()
            .ok_or_else(|| ClientError::Internal("the store result names no blob ID".into()))?;
        // As Walrus, a new quilt object says what it is.
        if let crate::BlobStoreResult::NewlyCreated { blob_object, .. } = &outcome.result {
            self.set_blob_attributes(
                &blob_object.id,
                vec![(BLOB_TYPE_ATTRIBUTE.into(), QUILT_BLOB_TYPE.into())],
            )
            .await?;
        }
        Ok(QuiltStoreOutcome {
            outcome,
            quilt_id,
            index: built.index,
        })
    }

    /// Opens a certified quilt for reading: its status, committee and verified metadata.
    pub async fn open_quilt(&self, quilt_id: &BlobId) -> Result<OpenQuilt, ClientError> {
        let committee = self.read_committee(quilt_id).await?;
        let metadata = self.fetch_metadata(&committee, quilt_id).await?;
        let config = committee.config;
        let len = metadata.metadata.unencoded_length();
        let source_symbols = config.n_source_symbols();
        if len == 0 || !len.is_multiple_of(source_symbols) {
            return Err(quilt::QuiltError::BadBlobLength {
                len,
                source_symbols,
            }
            .into());
        }
        let stats = QuiltReadStats {
            metadata_bytes: metadata.to_bcs().len() as u64,
            ..Default::default()
        };
        Ok(OpenQuilt {
            client: self.clone(),
            committee,
            metadata,
            column_len: (len / u64::from(config.n_secondary_source())) as usize,
            whole: tokio::sync::OnceCell::new(),
            stats: Mutex::new(stats),
        })
    }
}

/// A quilt opened for reading. Columns are fetched on demand; after one failure to get them,
/// the whole quilt is read once and kept.
pub struct OpenQuilt {
    client: Client,
    committee: CommitteeView,
    metadata: BlobMetadataWithId,
    column_len: usize,
    whole: tokio::sync::OnceCell<Vec<u8>>,
    stats: Mutex<QuiltReadStats>,
}

impl OpenQuilt {
    pub fn quilt_id(&self) -> BlobId {
        self.metadata.blob_id
    }

    pub fn stats(&self) -> QuiltReadStats {
        *self.stats.lock().expect("stats lock")
    }

    fn n_columns(&self) -> u16 {
        self.committee.config.n_secondary_source()
    }

    /// The quilt's index, from columns 0 … k−1.
    pub async fn index(&self) -> Result<QuiltIndex, ClientError> {
        let column0 = self.columns(0, 1).await?;
        let (k, _) = quilt::index_columns_from_prefix(&column0, self.column_len)?;
        let stream = if k > 1 {
            let mut stream = column0;
            stream.extend(self.columns(1, k).await?);
            stream
        } else {
            column0
        };
        Ok(quilt::decode_index(
            &stream,
            self.column_len,
            self.n_columns(),
        )?)
    }

    /// The patch the index lists as `patch` (its header must name the same identifier).
    pub async fn patch(&self, patch: &QuiltPatch) -> Result<PatchContents, ClientError> {
        let range = patch.internal_id().check(self.n_columns())?;
        let stream = self.columns(range.start, range.end).await?;
        Ok(quilt::decode_patch(&stream, Some(&patch.identifier))?)
    }

    /// The patch in a patch ID's column range; no index is read.
    pub async fn patch_by_internal_id(
        &self,
        id: QuiltPatchInternalId,
    ) -> Result<PatchContents, ClientError> {
        let range = id.check(self.n_columns())?;
        let stream = self.columns(range.start, range.end).await?;
        Ok(quilt::decode_patch(&stream, None)?)
    }

    /// Columns `[start, end)` as one stream: their secondary slivers, verified; missing ones
    /// rebuilt from decoding symbols; failing that, cut from the whole quilt.
    async fn columns(&self, start: u16, end: u16) -> Result<Vec<u8>, ClientError> {
        if let Some(whole) = self.whole.get() {
            return self.cut(whole, start, end);
        }
        let want: Vec<u16> = (start..end).collect();
        let (slivers, _) = self
            .client
            .fetch_slivers(
                &self.committee,
                &self.metadata,
                crate::read::Want {
                    axis: SliverType::Secondary,
                    order: want.clone(),
                    need: want.len(),
                },
                self.client.patience(false),
                &(Arc::new(NoProgress) as Arc<dyn Progress>),
            )
            .await;
        let mut by_index: BTreeMap<u16, SliverData> = slivers
            .into_iter()
            .map(floe_core::VerifiedSliver::into_inner)
            .map(|s| (s.index.0, s))
            .collect();
        {
            let mut stats = self.stats.lock().expect("stats lock");
            stats.slivers += by_index.len();
            stats.sliver_bytes += by_index
                .values()
                .map(|s| s.symbols.len() as u64)
                .sum::<u64>();
        }
        let missing: Vec<u16> = want
            .iter()
            .copied()
            .filter(|c| !by_index.contains_key(c))
            .collect();
        if !missing.is_empty() {
            tracing::info!(quilt_id = %self.quilt_id(), missing = missing.len(), "rebuilding quilt columns from decoding symbols");
            for sliver in self.recover(&missing).await {
                by_index.insert(sliver.index.0, sliver);
            }
        }
        if by_index.len() < want.len() {
            tracing::info!(quilt_id = %self.quilt_id(), "quilt columns unavailable; reading the whole quilt");
            let whole = self
                .whole
                .get_or_try_init(|| async {
                    let bytes = self
                        .client
                        .read(
                            &self.quilt_id(),
                            ReadOptions::default(),
                            Arc::new(NoProgress),
                        )
                        .await?;
                    let mut stats = self.stats.lock().expect("stats lock");
                    stats.whole_blob = true;
                    stats.whole_blob_bytes += bytes.len() as u64;
                    Ok::<_, ClientError>(bytes)
                })
                .await?;
            return self.cut(whole, start, end);
        }
        let mut stream = Vec::with_capacity(want.len() * self.column_len);
        for sliver in by_index.values() {
            stream.extend_from_slice(&sliver.symbols);
        }
        Ok(stream)
    }

    fn cut(&self, whole: &[u8], start: u16, end: u16) -> Result<Vec<u8>, ClientError> {
        let reader = QuiltReader::new(&self.committee.config, whole)?;
        Ok(reader.columns(start, end))
    }

    /// Rebuilds secondary slivers `targets` from decoding symbols (symbol (r, c) comes from
    /// primary sliver r, so p distinct rows rebuild column c). Every member is asked,
    /// `quilt.recovery_concurrency` at a time; a rebuilt sliver is kept only if it matches the
    /// metadata. Nothing is rebuilt when more than `quilt.max_unavailable_slivers_to_recover`
    /// are missing: the caller then reads the whole quilt.
    async fn recover(&self, targets: &[u16]) -> Vec<SliverData> {
        let limits = &self.client.config().quilt;
        if targets.len() > limits.max_unavailable_slivers_to_recover {
            tracing::info!(quilt_id = %self.quilt_id(), missing = targets.len(), limit = limits.max_unavailable_slivers_to_recover, "too many quilt columns missing to rebuild");
            return Vec::new();
        }
        let concurrent = limits.recovery_concurrency;
        let targets: Vec<SliverIndex> = targets.iter().map(|&c| SliverIndex(c)).collect();
        let need = usize::from(self.committee.config.n_primary_source());
        let blob_id = self.quilt_id();
        let mut symbols: BTreeMap<SliverIndex, BTreeMap<u16, DecodingSymbol>> = BTreeMap::new();
        let mut members = (0..self.committee.members.len())
            .filter(|&m| self.committee.members[m].weight() > 0)
            .collect::<Vec<_>>()
            .into_iter();
        let mut set = JoinSet::new();
        let spawn = |set: &mut JoinSet<_>, m: usize| {
            let client = self.committee.members[m].client.clone();
            let targets = targets.clone();
            set.spawn(async move {
                client
                    .decoding_symbols(&blob_id, SliverType::Secondary, &targets)
                    .await
            });
        };
        for m in members.by_ref().take(concurrent) {
            spawn(&mut set, m);
        }
        let mut fetched = 0u64;
        while let Some(joined) = set.join_next().await {
            if let Ok(Ok(answer)) = joined {
                for (target, list) in answer {
                    if !targets.contains(&target) {
                        continue;
                    }
                    let entry = symbols.entry(target).or_default();
                    for symbol in list {
                        if let EitherDecodingSymbol::Secondary(s) = symbol {
                            fetched += s.data.len() as u64;
                            entry.entry(s.index).or_insert(s);
                        }
                    }
                }
            }
            if targets
                .iter()
                .all(|t| symbols.get(t).is_some_and(|s| s.len() >= need))
            {
                set.abort_all();
                break;
            }
            if let Some(m) = members.next() {
                spawn(&mut set, m);
            }
        }
        let rebuilt = rebuild(
            self.committee.config,
            self.metadata.metadata.clone(),
            symbols,
        )
        .await;
        let mut stats = self.stats.lock().expect("stats lock");
        stats.recovered += rebuilt.len();
        stats.symbol_bytes += fetched;
        rebuilt
    }
}

/// Decode each target column from its symbols (off the async threads); a column whose rebuild
/// does not match the metadata is dropped.
async fn rebuild(
    config: floe_core::EncodingConfig,
    metadata: floe_core::BlobMetadata,
    symbols: BTreeMap<SliverIndex, BTreeMap<u16, DecodingSymbol>>,
) -> Vec<SliverData> {
    crate::compute::compute(move || {
        symbols
            .into_iter()
            .filter_map(|(target, list)| {
                floe_core::decode_sliver_from_symbols(
                    &config,
                    &metadata,
                    SliverType::Secondary,
                    target,
                    list.values(),
                )
                .ok()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default()
}
