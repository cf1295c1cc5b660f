//! `GET /v1/blobs/{id}/decodingSymbols`: four real nodes hold a certified blob; the decoding
//! symbols they serve (no proofs) are exactly the blob's expanded-matrix symbols, are the
//! recovery symbols minus their proofs, and rebuild a primary sliver that verifies against the
//! metadata. Recovery symbols requested by ID for several targets at once come out right too.
//! Also every documented rejection.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Cluster;
use floe_core::recovery::EitherDecodingSymbol;
use floe_core::{
    EncodingConfig, ShardIndex, SliverData, SliverIndex, SliverType, SymbolSource, encode,
};
use serde_json::Value;

const N: u16 = 10;

fn reason(v: &Value) -> &str {
    v["error"]["details"][0]["reason"].as_str().unwrap_or("")
}

/// The certified blob the test reads symbols of.
struct Stored {
    config: EncodingConfig,
    e: floe_core::EncodedBlob,
    blob_id: floe_core::BlobId,
}

impl Stored {
    fn meta(&self) -> &floe_core::BlobMetadata {
        &self.e.metadata().metadata
    }
}

/// Targets on both sides of the source/repair boundary of either axis.
const TARGETS: &[SliverIndex] = &[
    SliverIndex(0),
    SliverIndex(3),
    SliverIndex(6),
    SliverIndex(9),
];

/// What the encoding says symbol (target, source) is, for a target of `axis`.
fn expected(b: &Stored, axis: SliverType, target: u16, source: u16) -> EitherDecodingSymbol {
    SymbolSource::new(
        &b.config,
        axis.orthogonal(),
        &b.e.sliver(axis.orthogonal(), SliverIndex(source)),
    )
    .unwrap()
    .symbol_for(SliverIndex(target))
    .unwrap()
    .symbol
}

/// Symbols of a target from every node: `[target][source index]`.
type AllSymbols = BTreeMap<u16, BTreeMap<u16, EitherDecodingSymbol>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoding_symbols_are_the_blobs_symbols_without_proofs() {
    let mut cluster = Cluster::prepare(4, N).await;
    cluster.start_all().await;
    let config = EncodingConfig::new(N).unwrap();
    let data: Vec<u8> = (0..30_000u32)
        .map(|i| (i.wrapping_mul(2246822519) >> 11) as u8)
        .collect();
    let e = cluster.store_and_certify(&data).await;
    let b = Stored {
        blob_id: e.blob_id(),
        config,
        e,
    };
    for axis in [SliverType::Primary, SliverType::Secondary] {
        let all = each_member_serves_its_symbols_without_proofs(&cluster, &b, axis).await;
        recovery_symbols_by_id_are_served_in_order_and_proven(&cluster, &b, axis).await;
        a_targets_first_symbols_rebuild_its_sliver(&b, axis, &all);
    }
    rejections_name_their_reason(&cluster, &b).await;
    the_route_is_in_the_api_document(&cluster).await;
}

/// Each member serves, for every target, the symbols of exactly the orthogonal slivers of its
/// pairs, each the recovery symbol minus its proof; together the members supply them all.
async fn each_member_serves_its_symbols_without_proofs(
    c: &Cluster,
    b: &Stored,
    axis: SliverType,
) -> AllSymbols {
    let mut all = AllSymbols::new();
    for member in 0..c.system.committee.members.len() {
        let client = c.member_client(member);
        let got = client
            .decoding_symbols(&b.blob_id, axis, TARGETS)
            .await
            .unwrap();
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), TARGETS);
        // The sources are exactly the orthogonal slivers of the member's pairs.
        let mut sources: Vec<u16> = c.system.committee.members[member]
            .shards
            .iter()
            .map(|&s| {
                ShardIndex(s)
                    .to_pair_index(N, &b.blob_id)
                    .to_sliver_index(axis.orthogonal(), N)
                    .0
            })
            .collect();
        sources.sort();
        for (target, symbols) in got {
            let mut indices: Vec<u16> = symbols.iter().map(|s| s.symbol().index).collect();
            indices.sort();
            assert_eq!(indices, sources, "member {member}, {axis} target {target}");
            // Each is the recovery symbol for the same target, minus its proof.
            let recovery = client
                .recovery_symbols_for_target(&b.blob_id, axis, target)
                .await
                .unwrap();
            assert_eq!(recovery.len(), symbols.len());
            for s in symbols {
                assert_eq!(s.target_axis(), axis);
                assert_eq!(s, expected(b, axis, target.0, s.symbol().index));
                assert!(recovery.iter().any(|r| r.symbol == s));
                all.entry(target.0).or_default().insert(s.symbol().index, s);
            }
        }
    }
    // Together the nodes supply every symbol of every target.
    for t in TARGETS {
        assert_eq!(all[&t.0].len(), usize::from(N), "{axis} target {t}");
    }
    all
}

/// Recovery symbols by ID for several targets from the same source slivers, in one request
/// (each source is expanded and hashed once): every one is served, in order, and proven
/// against the metadata.
async fn recovery_symbols_by_id_are_served_in_order_and_proven(
    c: &Cluster,
    b: &Stored,
    axis: SliverType,
) {
    for member in 0..c.system.committee.members.len() {
        let mut ids = Vec::new();
        for &s in &c.system.committee.members[member].shards {
            let source = ShardIndex(s)
                .to_pair_index(N, &b.blob_id)
                .to_sliver_index(axis.orthogonal(), N)
                .0;
            for t in TARGETS {
                ids.push(match axis {
                    SliverType::Primary => (t.0, source),
                    SliverType::Secondary => (source, t.0),
                });
            }
        }
        let got = c
            .member_client(member)
            .recovery_symbols_proven_on(&b.blob_id, &ids, axis.orthogonal())
            .await
            .unwrap();
        assert_eq!(got.len(), ids.len(), "member {member}, {axis}");
        for (r, &(row, col)) in got.iter().zip(&ids) {
            r.verify(&b.config, b.meta()).unwrap();
            let (target, source) = match axis {
                SliverType::Primary => (row, col),
                SliverType::Secondary => (col, row),
            };
            assert_eq!(r.target_index, SliverIndex(target));
            assert_eq!(r.symbol, expected(b, axis, target, source));
        }
    }
}

/// A target's first symbols are its sliver: rebuilt, it verifies against the metadata, as in a
/// client's partial read.
fn a_targets_first_symbols_rebuild_its_sliver(b: &Stored, axis: SliverType, all: &AllSymbols) {
    let k = usize::from(b.config.n_source_for(axis));
    for t in TARGETS {
        let symbols: Vec<u8> = all[&t.0]
            .values()
            .take(k)
            .flat_map(|s| s.symbol().data.clone())
            .collect();
        let rebuilt = SliverData {
            symbols,
            symbol_size: b.e.symbol_size(),
            index: *t,
        };
        rebuilt.verify(axis, &b.config, b.meta()).unwrap();
        assert_eq!(rebuilt, b.e.sliver(axis, *t));
    }
}

/// Every documented rejection of the route, and the 100-target bound.
async fn rejections_name_their_reason(c: &Cluster, b: &Stored) {
    let blob_id = b.blob_id;
    let http = reqwest::Client::new();
    let base = format!(
        "http://{}/v1/blobs/{blob_id}/decodingSymbols",
        c.addresses[0]
    );
    let get = |query: String| {
        let http = http.clone();
        let url = format!("{base}{query}");
        async move {
            let r = http
                .get(&url)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = get("?targetType=primary".into()).await;
    assert_eq!((s, reason(&v)), (400, "NO_TARGET_SLIVERS_SPECIFIED"), "{v}");
    let (s, v) = get(String::new()).await;
    assert_eq!((s, reason(&v)), (400, "NO_TARGET_SLIVERS_SPECIFIED"), "{v}");
    let many: String = (0..101)
        .map(|i| format!("&targetSlivers={}", i % 10))
        .collect();
    let (s, v) = get(format!("?targetType=primary{many}")).await;
    assert_eq!((s, reason(&v)), (400, "TOO_MANY_TARGET_SLIVERS"), "{v}");
    let (s, v) = get(format!("?targetType=primary&targetSlivers={N}")).await;
    assert_eq!((s, reason(&v)), (400, "INDEX_OUT_OF_RANGE"), "{v}");
    let (s, v) = get("?targetSlivers=1".into()).await;
    assert_eq!((s, reason(&v)), (400, "INVALID_FILTER"), "{v}");
    let (s, v) = get("?targetSlivers=x&targetType=primary".into()).await;
    assert_eq!((s, reason(&v)), (400, "INVALID_FILTER"), "{v}");
    let (s, v) = get("?targetSlivers=1&targetType=diagonal".into()).await;
    assert_eq!((s, reason(&v)), (400, "INVALID_SLIVER_TYPE"), "{v}");
    let unknown = encode(&b.config, b"never registered").unwrap().blob_id();
    let r = c
        .client(0)
        .decoding_symbols(&unknown, SliverType::Primary, &[SliverIndex(1)])
        .await
        .unwrap_err();
    assert_eq!(r.reason(), Some("NOT_REGISTERED"), "{r}");
    // Exactly 100 targets (with repeats) are fine.
    let hundred: Vec<SliverIndex> = (0..100).map(|i| SliverIndex(i % N)).collect();
    let got = c
        .client(0)
        .decoding_symbols(&blob_id, SliverType::Secondary, &hundred)
        .await
        .unwrap();
    assert_eq!(got.len(), usize::from(N));
}

/// The route is in the API document.
async fn the_route_is_in_the_api_document(c: &Cluster) {
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("http://{}/v1/api", c.addresses[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["paths"]["/v1/blobs/{blob_id}/decodingSymbols"]["get"].is_object(),
        "{doc}"
    );
    assert!(
        doc["paths"]["/v1/migrate/sync_shard"]["post"].is_object(),
        "{doc}"
    );
}
