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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoding_symbols_are_the_blobs_symbols_without_proofs() {
    let mut cluster = Cluster::prepare(4, N).await;
    cluster.start_all().await;
    let config = EncodingConfig::new(N).unwrap();
    let data: Vec<u8> = (0..30_000u32)
        .map(|i| (i.wrapping_mul(2246822519) >> 11) as u8)
        .collect();
    let e = cluster.store_and_certify(&data).await;
    let blob_id = e.blob_id();
    let meta = &e.metadata().metadata;
    // What the encoding says symbol (target, source) is, for a target of `axis`.
    let expected = |axis: SliverType, target: u16, source: u16| -> EitherDecodingSymbol {
        SymbolSource::new(
            &config,
            axis.orthogonal(),
            &e.sliver(axis.orthogonal(), SliverIndex(source)),
        )
        .unwrap()
        .symbol_for(SliverIndex(target))
        .unwrap()
        .symbol
    };

    // Targets on both sides of the source/repair boundary of either axis.
    let targets: Vec<SliverIndex> = [0u16, 3, 6, 9].map(SliverIndex).to_vec();
    for axis in [SliverType::Primary, SliverType::Secondary] {
        // symbols[target][source index] from every node.
        let mut all: BTreeMap<u16, BTreeMap<u16, EitherDecodingSymbol>> = BTreeMap::new();
        for member in 0..cluster.system.committee.members.len() {
            let client = cluster.member_client(member);
            let got = client
                .decoding_symbols(&blob_id, axis, &targets)
                .await
                .unwrap();
            assert_eq!(got.keys().copied().collect::<Vec<_>>(), targets);
            // The sources are exactly the orthogonal slivers of the member's pairs.
            let mut sources: Vec<u16> = cluster.system.committee.members[member]
                .shards
                .iter()
                .map(|&s| {
                    ShardIndex(s)
                        .to_pair_index(N, &blob_id)
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
                    .recovery_symbols_for_target(&blob_id, axis, target)
                    .await
                    .unwrap();
                assert_eq!(recovery.len(), symbols.len());
                for s in symbols {
                    assert_eq!(s.target_axis(), axis);
                    assert_eq!(s, expected(axis, target.0, s.symbol().index));
                    assert!(recovery.iter().any(|r| r.symbol == s));
                    all.entry(target.0).or_default().insert(s.symbol().index, s);
                }
            }
        }
        // Together the nodes supply every symbol of every target.
        for t in &targets {
            assert_eq!(all[&t.0].len(), usize::from(N), "{axis} target {t}");
        }
        // Recovery symbols by ID for several targets from the same source slivers, in one
        // request (each source is expanded and hashed once): every one is served, in order,
        // and proven against the metadata.
        for member in 0..cluster.system.committee.members.len() {
            let mut ids = Vec::new();
            for &s in &cluster.system.committee.members[member].shards {
                let source = ShardIndex(s)
                    .to_pair_index(N, &blob_id)
                    .to_sliver_index(axis.orthogonal(), N)
                    .0;
                for t in &targets {
                    ids.push(match axis {
                        SliverType::Primary => (t.0, source),
                        SliverType::Secondary => (source, t.0),
                    });
                }
            }
            let got = cluster
                .member_client(member)
                .recovery_symbols_proven_on(&blob_id, &ids, axis.orthogonal())
                .await
                .unwrap();
            assert_eq!(got.len(), ids.len(), "member {member}, {axis}");
            for (r, &(row, col)) in got.iter().zip(&ids) {
                r.verify(&config, meta).unwrap();
                let (target, source) = match axis {
                    SliverType::Primary => (row, col),
                    SliverType::Secondary => (col, row),
                };
                assert_eq!(r.target_index, SliverIndex(target));
                assert_eq!(r.symbol, expected(axis, target, source));
            }
        }
        // A target's first symbols are its sliver: rebuild it and check it against the
        // metadata, as a client doing a partial read would.
        let k = usize::from(config.n_source_for(axis));
        for t in &targets {
            let symbols: Vec<u8> = all[&t.0]
                .values()
                .take(k)
                .flat_map(|s| s.symbol().data.clone())
                .collect();
            let rebuilt = SliverData {
                symbols,
                symbol_size: e.symbol_size(),
                index: *t,
            };
            rebuilt.verify(axis, &config, meta).unwrap();
            assert_eq!(rebuilt, e.sliver(axis, *t));
        }
    }

    // Rejections.
    let http = reqwest::Client::new();
    let base = format!(
        "http://{}/v1/blobs/{blob_id}/decodingSymbols",
        cluster.addresses[0]
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
    let unknown = encode(&config, b"never registered").unwrap().blob_id();
    let r = cluster
        .client(0)
        .decoding_symbols(&unknown, SliverType::Primary, &[SliverIndex(1)])
        .await
        .unwrap_err();
    assert_eq!(r.reason(), Some("NOT_REGISTERED"), "{r}");
    // Exactly 100 targets (with repeats) are fine.
    let hundred: Vec<SliverIndex> = (0..100).map(|i| SliverIndex(i % N)).collect();
    let got = cluster
        .client(0)
        .decoding_symbols(&blob_id, SliverType::Secondary, &hundred)
        .await
        .unwrap();
    assert_eq!(got.len(), usize::from(N));

    // The route is in the API document.
    let doc: Value = http
        .get(format!("http://{}/v1/api", cluster.addresses[0]))
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
