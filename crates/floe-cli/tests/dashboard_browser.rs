//! The dashboard in a real browser: headless Chromium over WebDriver against a network of real
//! `floe` processes (a ledger, seven nodes and `floe daemon`). The pages load with no console
//! errors and fit a phone's width; the network page lists every node; a file uploaded from the
//! browser gets its blob ID and a page, and reads back identical; a quilt found by its object
//! ID from the search box lists its patches; a SIGSTOPped node and a SIGKILLed one show as
//! down within 10 s (the first up again after SIGCONT); a bad blob ID gets a 400 page with the
//! reason. Screenshots of each page are saved under the target directory
//! (`dashboard-screenshots/`) and checked for content.
//!
//! Chromium and chromedriver are required: without them the test fails and says how to
//! install them (`apt-get install -y chromium chromium-driver`).

#[allow(dead_code)]
mod support;
mod webdriver;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use floe_node::config::Limits;
use rand::RngCore;
use serde_json::json;
use support::{NODES, Net, SERIAL, Stop};
use webdriver::{Browser, check_screenshot, find_browser};

/// Epoch length of the test's network.
const EPOCH_MS: u64 = 12_000;

fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")
}

async fn shoot(b: &Browser, name: &str, min_w: u32, min_h: u32) {
    let path = screenshots_dir().join(format!("{name}.png"));
    let png = b.screenshot(&path).await;
    check_screenshot(name, &png, min_w, min_h);
    println!(
        "[dashboard] screenshot {} ({} bytes)",
        path.display(),
        png.len()
    );
}

async fn no_console_errors(b: &Browser, page: &str) {
    let errors = b.console_errors().await;
    assert!(
        errors.is_empty(),
        "console errors on the {page} page: {errors:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_in_a_real_browser() {
    let (chromium, chromedriver) = find_browser();
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let seed = support::test_seed("dashboard");
    // 12 s epochs, so the test sees an epoch change and the storage challenges after it.
    let limits = Limits {
        challenge_poll_ms: 1_000,
        ..Limits::default()
    };
    let mut net = Net::start_with_epochs("dashboard", seed, limits, EPOCH_MS).await;
    let (_daemon, base) = net.start_daemon().await;
    let profile = net.dir().join("chromium-profile");
    let b = Browser::start(&chromium, &chromedriver, &profile).await;

    network_page_lists_every_node(&b, &net, &base).await;
    let blob_id = upload_reads_back(&b, &net, &base, seed).await;
    blob_page_shows_the_blob(&b, &blob_id).await;
    quilt_page_lists_its_patches(&b, &net, &base).await;
    challenges_after_an_epoch_change(&b, &net, &base, &blob_id).await;
    bad_ids_get_a_reason(&b, &net, &base).await;
    stopped_node_shows_down(&b, &mut net, &base, &blob_id).await;

    b.quit().await;
    println!("[dashboard] passed in {:.1?}", started.elapsed());
}

async fn network_page_lists_every_node(b: &Browser, net: &Net, base: &str) {
    b.goto(&format!("{base}/dashboard")).await;
    let script = format!(
        "const up = document.querySelectorAll('#nodes tbody tr[data-up=\"true\"]').length;
         return up === {NODES} ? up : 0;"
    );
    let up = b
        .wait_for("every node listed and up", &script, Duration::from_secs(20))
        .await;
    assert_eq!(up, json!(NODES), "nodes shown up");
    let listed = b
        .exec(
            "return [...document.querySelectorAll('#nodes tbody tr[data-node]')].map(r => r.dataset.node);",
            vec![],
        )
        .await;
    for address in &net.state.node_addresses {
        assert!(
            listed.as_array().unwrap().contains(&json!(address)),
            "{address} missing from {listed}"
        );
    }
    // The static parts are there without the script's help, and the live part refreshes.
    let html = net
        .http
        .get(format!("{base}/dashboard"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "<h2 id=\"epoch-h\">Epoch",
        "Storage nodes",
        "Recent ledger events",
        "<svg",
    ] {
        assert!(
            html.contains(needle),
            "the server-rendered page lacks {needle:?}"
        );
    }
    b.wait_for(
        "the live part refreshed",
        "return document.getElementById('live').dataset.refreshed;",
        Duration::from_secs(10),
    )
    .await;
    no_console_errors(b, "network").await;
    shoot(b, "network", 1000, 600).await;
    // Phone width: nothing wider than the screen but the tables' own scroll boxes.
    b.set_window(390, 844).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let overflow = b
        .exec(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 1,
        "wider than a phone by {overflow} px"
    );
    shoot(b, "network-phone", 300, 500).await;
    b.set_window(1280, 1000).await;
}

async fn upload_reads_back(b: &Browser, net: &Net, base: &str, seed: u64) -> String {
    let mut data = vec![0u8; 300 << 10];
    support::rng(seed, "dashboard-upload").fill_bytes(&mut data);
    let file = net.dir().join("upload.bin");
    std::fs::write(&file, &data).unwrap();
    b.goto(&format!("{base}/dashboard/upload")).await;
    let input = b.find("#file").await;
    b.send_keys(&input, file.to_str().unwrap()).await;
    // Kept for 40 epochs of 12 s: past the rest of the test.
    b.exec("document.getElementById('epochs').value = '40';", vec![])
        .await;
    let button = b.find("#upload-button").await;
    b.click(&button).await;
    let blob_id = b
        .wait_for(
            "the upload's blob ID",
            "const e = document.getElementById('uploaded-blob-id'); return e && e.textContent;",
            Duration::from_secs(60),
        )
        .await;
    let blob_id = blob_id.as_str().unwrap().to_string();
    let progress = b
        .exec(
            "return document.getElementById('upload-progress').value;",
            vec![],
        )
        .await;
    assert_eq!(progress, json!(100), "the progress bar ends full");
    no_console_errors(b, "upload").await;
    shoot(b, "upload", 1000, 600).await;
    for url in [
        format!("{base}/v1/blobs/{blob_id}"),
        format!("{base}/dashboard/blob/{blob_id}/download"),
    ] {
        let r = net.http.get(&url).send().await.unwrap();
        assert!(r.status().is_success(), "GET {url}: {}", r.status());
        let back = r.bytes().await.unwrap();
        assert!(back[..] == data[..], "GET {url} returned other bytes");
    }
    println!("[dashboard] uploaded {} bytes as {blob_id}", data.len());
    blob_id
}

async fn blob_page_shows_the_blob(b: &Browser, blob_id: &str) {
    // The link in the upload's answer leads to the blob's page.
    let link = b.find("#uploaded-blob").await;
    b.click(&link).await;
    let status = b
        .wait_for(
            "the blob page",
            "const e = document.getElementById('blob-status'); return e && e.dataset.status;",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(status, json!("certified"));
    let shown = b
        .exec(
            "return document.getElementById('blob-id').textContent;",
            vec![],
        )
        .await;
    assert_eq!(shown, json!(blob_id));
    let url = b.exec("return location.pathname;", vec![]).await;
    assert_eq!(url, json!(format!("/dashboard/blob/{blob_id}")));
    let cells = b
        .exec(
            "return [document.querySelectorAll('.shardmap li').length, document.querySelectorAll('.shardmap li.s-ok').length];",
            vec![],
        )
        .await;
    let n = support::N_SHARDS;
    assert_eq!(cells[0], json!(n), "one cell per shard");
    // The certificate's signers, from the ledger's record and checked in the page's server.
    let signers = b
        .exec(
            "const s = document.getElementById('signers'); return s ? [s.children.length, document.getElementById('cert-h').parentElement.textContent] : null;",
            vec![],
        )
        .await;
    assert!(
        signers[0].as_u64().is_some_and(|k| k >= 1)
            && signers[1]
                .as_str()
                .is_some_and(|t| t.contains("the aggregate signature verifies")),
        "certificate signers: {signers}"
    );
    assert!(
        cells[1].as_u64().unwrap() >= u64::from(n - 3),
        "slivers stored: {cells}"
    );
    assert!(
        b.exec("return !!document.getElementById('download');", vec![])
            .await
            == json!(true)
    );
    no_console_errors(b, "blob").await;
    shoot(b, "blob", 1000, 600).await;
}

/// A quilt stored through the daemon, found by its object ID from the search box, lists its
/// patches.
async fn quilt_page_lists_its_patches(b: &Browser, net: &Net, base: &str) {
    let boundary = "floe-dashboard-test-boundary";
    let mut body = Vec::new();
    for (name, data) in [("hello.txt", "hello, quilt"), ("notes.md", "# notes")] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n{data}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let r = net
        .http
        .put(format!("{base}/v1/quilts?epochs=40"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "PUT /v1/quilts: {}", r.status());
    let stored: serde_json::Value = r.json().await.unwrap();
    let object = stored["blobStoreResult"]["newlyCreated"]["blobObject"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no object ID in {stored}"))
        .to_string();
    let search = b.find("#q").await;
    b.send_keys(&search, &object).await;
    let find = b.find("form.search button").await;
    b.click(&find).await;
    let ids = b
        .wait_for(
            "the quilt's patches",
            "const rows = document.querySelectorAll('#patches tbody th');
             return rows.length ? [...rows].map(r => r.textContent) : null;",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(ids, json!(["hello.txt", "notes.md"]));
    no_console_errors(b, "quilt").await;
    shoot(b, "quilt", 1000, 600).await;
}

/// After the next epoch change the nodes challenge each other; the network page shows every
/// node's tally for that epoch, and the blob page says where the upload was sampled, as the
/// ledger's raw record of the epoch's samples gives it.
async fn challenges_after_an_epoch_change(b: &Browser, net: &Net, base: &str, blob_id: &str) {
    let ledger = floe_ledger_client::LedgerClient::with_urls(vec![net.ledger_url()]);
    let before = u64::from(ledger.system().await.unwrap().epoch);
    b.goto(&format!("{base}/dashboard")).await;
    let script = format!(
        "const h = document.getElementById('epoch-h');
         const epoch = h ? parseInt(h.textContent.replace(/[^0-9]/g, '')) : 0;
         const cells = [...document.querySelectorAll('#nodes tbody tr[data-node] td.challenges')];
         const m = cells.map(c => /(\\d+) of (\\d+) passed.*epoch (\\d+)/.exec(c.textContent));
         if (epoch <= {before} || cells.length !== {NODES} || m.some(x => !x)) return null;
         const e = parseInt(m[0][3]);
         if (e <= {before} || m.some(x => parseInt(x[3]) !== e || x[1] !== x[2] || x[2] === '0')) return null;
         return e;"
    );
    let waited = Instant::now();
    let epoch = b
        .wait_for(
            "an epoch change, then every node's challenges passed",
            &script,
            Duration::from_millis(4 * EPOCH_MS),
        )
        .await
        .as_u64()
        .unwrap();
    println!(
        "[dashboard] epoch {before} -> {epoch}: every node's challenges shown passed after {:.1?}",
        waited.elapsed()
    );
    no_console_errors(b, "network (challenges)").await;
    shoot(b, "network-challenges", 1000, 600).await;
    // Where the ledger sampled the upload in that epoch, from its raw record.
    let set = ledger
        .challenges(epoch as u32)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("the ledger keeps no challenges of epoch {epoch}"));
    let per = floe_ledger::challenge::SAMPLES_PER_SHARD;
    let sampled: Vec<String> = (0..support::N_SHARDS)
        .filter(|s| !set.skipped_shards.contains(s))
        .filter(|&s| {
            let at = usize::from(s) * per;
            set.samples
                .get(at..at + per)
                .is_some_and(|pair| pair.iter().any(|b| b.to_string() == blob_id))
        })
        .map(|s| s.to_string())
        .collect();
    b.goto(&format!("{base}/dashboard/blob/{blob_id}")).await;
    let shown = b
        .exec(
            "const p = document.getElementById('challenge-result');
             return p ? [p.dataset.epoch, p.dataset.shards || '', p.dataset.failed || '0', p.textContent] : null;",
            vec![],
        )
        .await;
    println!("[dashboard] blob page: {}", shown[3]);
    assert!(
        shown[0].as_str().unwrap().parse::<u64>().unwrap() >= epoch,
        "{shown}"
    );
    if shown[0] == json!(epoch.to_string()) {
        assert_eq!(
            shown[1],
            json!(sampled.join(",")),
            "sampled shards: {shown}"
        );
    }
    assert_eq!(shown[2], json!("0"), "no failures: {shown}");
    if !sampled.is_empty() {
        assert!(
            shown[3].as_str().unwrap().contains("passed"),
            "the blob's challenges: {shown}"
        );
    }
    no_console_errors(b, "blob (challenges)").await;
}

async fn bad_ids_get_a_reason(b: &Browser, net: &Net, base: &str) {
    let r = net
        .http
        .get(format!("{base}/dashboard/blob/not-a-blob-id"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("neither a blob ID"), "{text}");
    b.goto(&format!("{base}/dashboard/blob?id=0x1")).await;
    let reason = b
        .exec(
            "return document.getElementById('error-reason').textContent;",
            vec![],
        )
        .await;
    assert!(reason.as_str().unwrap().contains("no object"), "{reason}");
    // The error page's own 404 is a navigation status, which Chromium logs; drain it.
    let _ = b.console_errors().await;
}

async fn stopped_node_shows_down(b: &Browser, net: &mut Net, base: &str, blob_id: &str) {
    b.goto(&format!("{base}/dashboard")).await;
    let all_up = format!(
        "return document.querySelectorAll('#nodes tbody tr[data-up=\"true\"]').length === {NODES};"
    );
    b.wait_for("the network page", &all_up, Duration::from_secs(20))
        .await;
    // The upload is among the recent ledger events, linked to its page.
    let linked = format!(
        "return !!document.querySelector('#events a[href=\"/dashboard/blob/{blob_id}\"]');"
    );
    b.wait_for(
        "the upload in the recent events",
        &linked,
        Duration::from_secs(10),
    )
    .await;
    // A frozen node (SIGSTOP: its port still accepts connections) is shown down too, and up
    // again once it is thawed.
    let frozen = 5;
    let frozen_at = net.state.node_addresses[frozen].clone();
    let shown = |up: bool| {
        format!(
            "const r = document.querySelector('#nodes tr[data-node=\"{frozen_at}\"]'); return r && r.dataset.up === '{up}';"
        )
    };
    let stopped = Instant::now();
    net.signal_node(frozen, "-STOP");
    b.wait_for(
        "the frozen node shown down",
        &shown(false),
        Duration::from_secs(10),
    )
    .await;
    println!(
        "[dashboard] node {frozen} shown down {:.1?} after SIGSTOP",
        stopped.elapsed()
    );
    net.signal_node(frozen, "-CONT");
    b.wait_for(
        "the thawed node shown up",
        &shown(true),
        Duration::from_secs(15),
    )
    .await;
    let victim = 3;
    let address = net.state.node_addresses[victim].clone();
    let stopped = Instant::now();
    net.stop_node(victim, Stop::Kill).await;
    let script = format!(
        "const r = document.querySelector('#nodes tr[data-node=\"{address}\"]'); return r && r.dataset.up === 'false';"
    );
    b.wait_for(
        "the stopped node shown down",
        &script,
        Duration::from_secs(10),
    )
    .await;
    let took = stopped.elapsed();
    println!("[dashboard] node {victim} ({address}) shown down {took:.1?} after SIGKILL");
    assert!(took < Duration::from_secs(10));
    no_console_errors(b, "network (node down)").await;
    shoot(b, "network-node-down", 1000, 600).await;
}
