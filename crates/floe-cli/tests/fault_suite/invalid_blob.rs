//! Scenario 5: an inconsistently encoded blob, certified by a malicious client, is marked
//! invalid and never read.

use super::*;

/// An inconsistently encoded blob: the metadata published for it, the pairs sent, where a
/// sliver was altered, and the node that gets nothing.
struct Inconsistent {
    blob_id: BlobId,
    bad: BlobMetadataWithId,
    size: u64,
    pairs: Vec<SliverPair>,
    row: usize,
    pos: usize,
    victim: usize,
}

/// What reads and nodes said of the inconsistent blob.
struct Verdict {
    /// The read right after certification.
    early: Vec<String>,
    invalid_after: Result<Duration, String>,
    /// Reads after the invalidation that did not answer `Invalid`.
    answers: Vec<String>,
    agreement: VerifiedStatus,
}

/// Scenario 5: an inconsistently encoded blob, certified by a malicious client that skipped
/// the node holding the altered sliver, is proven invalid by that node's recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inconsistent_blob_is_marked_invalid_and_never_read() {
    let _serial = SERIAL.lock().await;
    let seed = support::test_seed("invalid_blob");
    let started = Instant::now();
    let mut rng = rng(seed, "invalid_blob");
    let net = Net::start("invalid_blob", seed, limits()).await;
    let client = net.client(0);
    let mut s = Summary::new(seed, started);
    let honest = honest_blobs_are_stored_around_it(&client, &mut rng, &mut s.tally).await;
    let blob = an_altered_sliver_verifies_against_the_published_hashes(&net, &mut rng);
    let (user, object) = a_malicious_client_registers_it(&net, &mut rng, &blob).await;
    let certificate = every_node_but_the_victim_confirms_it(&net, &client, &blob).await;
    the_certificate_is_accepted(&user, object, certificate, &blob, &mut s.tally).await;
    let early = a_read_right_away_returns_no_data(&client, &blob, &mut s.tally).await;
    let (invalid_after, answers) =
        the_ledger_marks_it_invalid_and_reads_answer_invalid(&net, &client, &blob, &mut s.tally)
            .await;
    let agreement = every_node_learns_it_is_invalid(&client, &blob).await;
    let verdict = Verdict {
        early,
        invalid_after,
        answers,
        agreement,
    };
    nothing_of_it_was_read_and_every_node_reports_it_invalid(&client, &honest, &blob, verdict, s)
        .await;
}

/// Honest blobs around it are stored (and must stay readable).
async fn honest_blobs_are_stored_around_it(
    client: &Client,
    rng: &mut impl Rng,
    tally: &mut Tally,
) -> Vec<Acked> {
    let mut honest = Vec::new();
    for _ in 0..3 {
        let len = small_size(rng);
        let data = Arc::new(random_bytes(rng, len));
        tally.operations += 1;
        honest.push(store(client, &data, &options(rng)).await.unwrap());
        tally.successes += 1;
    }
    honest
}

/// A primary sliver with one byte altered still verifies against the hashes published for it.
fn an_altered_sliver_verifies_against_the_published_hashes(
    net: &Net,
    rng: &mut impl Rng,
) -> Inconsistent {
    // Alter one byte of a systematic primary sliver and publish the hashes of what is sent:
    // every sliver verifies against the metadata, the encoding is inconsistent.
    let config = net.config;
    let n = usize::from(N_SHARDS);
    let len = rng.random_range(10_000..40_000);
    let data = random_bytes(rng, len);
    let encoded = encode(&config, &data).unwrap();
    let mut primary: Vec<SliverData> = (0..N_SHARDS)
        .map(|i| encoded.sliver(SliverType::Primary, SliverIndex(i)))
        .collect();
    let secondary: Vec<SliverData> = (0..N_SHARDS)
        .map(|i| encoded.sliver(SliverType::Secondary, SliverIndex(i)))
        .collect();
    let row = rng.random_range(0..usize::from(config.n_primary_source()));
    let pos = rng.random_range(0..primary[row].symbols.len());
    primary[row].symbols[pos] ^= 1 << rng.random_range(0..8);
    let bad = metadata_from_slivers(&config, data.len() as u64, &primary, &secondary).unwrap();
    bad.verify(&config).unwrap();
    let blob_id = bad.blob_id;
    assert_ne!(blob_id, encoded.blob_id());
    let pairs: Vec<SliverPair> = (0..n)
        .map(|k| SliverPair {
            primary: primary[k].clone(),
            secondary: secondary[n - 1 - k].clone(),
        })
        .collect();
    let victim = net.node_of_shard(
        SliverPairIndex(row as u16)
            .to_shard_index(N_SHARDS, &blob_id)
            .0,
    );
    Inconsistent {
        blob_id,
        bad,
        size: data.len() as u64,
        pairs,
        row,
        pos,
        victim,
    }
}

/// A malicious client (a wallet of its own) registers the blob; returns it and the object.
async fn a_malicious_client_registers_it(
    net: &Net,
    rng: &mut impl Rng,
    blob: &Inconsistent,
) -> (AccountSession, ObjectId) {
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    let user = AccountSession::new(AccountKey::from_seed(&key), net.ledger.clone());
    let reg = user
        .submit(TxKind::ReserveAndRegister {
            end_epoch: net.system.epoch + 2,
            blob_id: blob.blob_id,
            root_hash: blob.bad.metadata.root_hash(),
            size: blob.size,
            encoding_type: floe_core::EncodingType::RS2,
            deletable: false,
        })
        .await
        .unwrap();
    let object = reg
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::BlobRegistered { object_id, .. } => Some(*object_id),
            _ => None,
        })
        .unwrap();
    (user, object)
}

/// Every node but the victim takes its slivers and confirms; returns their certificate.
async fn every_node_but_the_victim_confirms_it(
    net: &Net,
    client: &Client,
    blob: &Inconsistent,
) -> Certificate {
    let blob_id = blob.blob_id;
    let (_, committee) = client.committee().await.unwrap();
    let mut partials = Vec::new();
    for i in (0..NODES).filter(|&i| i != blob.victim) {
        let node = net.node_client(i);
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = node.put_metadata(&blob_id, &blob.bad.metadata).await {
            assert!(
                Instant::now() < deadline,
                "node {i} never took the metadata: {e}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let slivers: Vec<(SliverPairIndex, Sliver)> = net
            .pairs_of(i, &blob_id)
            .into_iter()
            .flat_map(|pair| {
                let p = blob.pairs[usize::from(pair.0)].clone();
                [
                    (pair, Sliver::Primary(p.primary)),
                    (pair, Sliver::Secondary(p.secondary)),
                ]
            })
            .collect();
        node.put_sliver_batch(&blob_id, slivers).await.unwrap();
        partials.push((
            net.member(i),
            node.confirmation(&blob_id, None).await.unwrap(),
        ));
    }
    Certificate::aggregate(&committee.weights, &partials).unwrap()
}

/// The ledger certifies the blob on the certificate of every node but the victim.
async fn the_certificate_is_accepted(
    user: &AccountSession,
    object: ObjectId,
    certificate: Certificate,
    blob: &Inconsistent,
    tally: &mut Tally,
) {
    user.submit(TxKind::CertifyBlob {
        blob_object: object,
        certificate,
    })
    .await
    .unwrap();
    tally.operations += 1;
    tally.successes += 1;
    println!(
        "[invalid_blob] certified {} (primary sliver {} altered at byte {}); node {} got nothing and must recover it",
        blob.blob_id, blob.row, blob.pos, blob.victim
    );
}

/// Read the blob with `check`.
async fn read(
    client: &Client,
    blob_id: BlobId,
    check: ConsistencyCheck,
) -> Result<Vec<u8>, ClientError> {
    client
        .read(&blob_id, ReadOptions { check }, Arc::new(NoProgress))
        .await
}

/// Right away (most likely before the invalidation), a read returns no data either way.
async fn a_read_right_away_returns_no_data(
    client: &Client,
    blob: &Inconsistent,
    tally: &mut Tally,
) -> Vec<String> {
    let mut early = Vec::new();
    tally.operations += 1;
    match read(client, blob.blob_id, ConsistencyCheck::Default).await {
        Ok(bytes) => {
            tally.wrong += 1;
            early.push(format!("returned {} bytes", bytes.len()));
        }
        Err(e @ (ClientError::Inconsistent(_) | ClientError::Invalid(_))) => {
            tally.expected_failures += 1;
            early.push(e.kind().to_string());
        }
        Err(e) => panic!("a read of the certified inconsistent blob failed oddly: {e}"),
    }
    early
}

/// The ledger marks it invalid, then every check reads `Invalid`; returns when, and misreads.
async fn the_ledger_marks_it_invalid_and_reads_answer_invalid(
    net: &Net,
    client: &Client,
    blob: &Inconsistent,
    tally: &mut Tally,
) -> (Result<Duration, String>, Vec<String>) {
    let blob_id = blob.blob_id;
    // The victim's sync proves the inconsistency; the ledger marks the blob invalid.
    let invalid_after = wait_invalid(net, &blob_id, Duration::from_secs(30)).await;
    let mut answers = Vec::new();
    if invalid_after.is_ok() {
        for check in [
            ConsistencyCheck::Default,
            ConsistencyCheck::Skip,
            ConsistencyCheck::Strict,
        ] {
            tally.operations += 1;
            match read(client, blob_id, check).await {
                Err(ClientError::Invalid(id)) if id == blob_id => tally.expected_failures += 1,
                Ok(bytes) => {
                    tally.wrong += 1;
                    answers.push(format!("{check:?}: {} bytes", bytes.len()));
                }
                Err(e) => {
                    tally.wrong += 1;
                    answers.push(format!("{check:?}: {e}"));
                }
            }
        }
    }
    (invalid_after, answers)
}

/// Every node learns it (and reports it through its status route); returns their answer.
async fn every_node_learns_it_is_invalid(client: &Client, blob: &Inconsistent) -> VerifiedStatus {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = client.verified_status(&blob.blob_id, None).await.unwrap();
        if s.nodes.agreeing_shards == u64::from(N_SHARDS) || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The honest blobs read back, nothing of this one was read, and every node reports it invalid.
async fn nothing_of_it_was_read_and_every_node_reports_it_invalid(
    client: &Client,
    honest: &[Acked],
    blob: &Inconsistent,
    verdict: Verdict,
    mut s: Summary,
) {
    let Verdict {
        early,
        invalid_after,
        answers,
        agreement,
    } = verdict;
    let problems = read_all(client, &contents(honest), &mut s.tally).await;
    s.tally.print(
        "5-inconsistent-blob",
        s.seed,
        s.started,
        &format!(
            "blob={} skipped=node-{} early_read={early:?} invalid_after={} nodes_agreeing={}/{N_SHARDS}",
            blob.blob_id,
            blob.victim,
            match &invalid_after {
                Ok(d) => format!("{:.1}s", d.as_secs_f64()),
                Err(_) => "never".into(),
            },
            agreement.nodes.agreeing_shards
        ),
    );
    invalid_after.unwrap_or_else(|e| panic!("the inconsistent blob was not invalidated: {e}"));
    assert!(answers.is_empty(), "reads of the invalid blob: {answers:?}");
    assert!(
        matches!(agreement.status, BlobStatus::Invalid { .. }),
        "{:?}",
        agreement.status
    );
    assert_eq!(
        agreement.nodes.agreeing_shards,
        u64::from(N_SHARDS),
        "every node reports the blob invalid"
    );
    assert!(problems.is_empty(), "honest blobs: {problems:?}");
    assert_eq!(
        (s.tally.lost, s.tally.wrong),
        (0, 0),
        "early read: {early:?}"
    );
}
