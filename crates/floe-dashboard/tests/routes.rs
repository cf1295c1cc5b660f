//! The dashboard's routes over HTTP with no network behind them (the ledger's address refuses
//! connections): every page still answers, with a reason where it cannot show what was asked,
//! and never a panic. The browser test (`floe-cli/tests/dashboard_browser.rs`) covers a live
//! network.

use std::time::Duration;

use floe_client::{Client, ClientConfig};
use floe_dashboard::{DashboardOptions, UploadTarget};

/// Serve the dashboard on a free port; returns its base URL.
async fn serve(options: DashboardOptions) -> String {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ledger_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let client = Client::new(
        ClientConfig {
            ledger_url,
            ..ClientConfig::default()
        },
        None,
    )
    .unwrap();
    let app = floe_dashboard::router(client, options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn pages_answer_with_reasons_when_the_network_is_down() {
    let base = serve(DashboardOptions::default()).await;
    let h = http();

    let r = h.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let page = r.text().await.unwrap();
    assert!(page.contains("The ledger cannot be read"), "{page}");
    assert!(page.contains("<meta name=\"viewport\""));
    for outside in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!page.contains(outside), "the page loads {outside}…");
    }

    let r = h
        .get(format!("{base}/dashboard/blob/%3Cscript%3E"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("neither a blob ID"), "{page}");
    assert!(!page.contains("<script>"), "the bad ID is escaped");

    let blob = "M4hsZGQ1oCktdzegB6HnI6Mi28S2nqOPHxK-W7_4BUk";
    let r = h
        .get(format!("{base}/dashboard/blob?id={blob}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("the ledger did not answer")
    );

    let r = h
        .get(format!("{base}/dashboard/blob"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Find a blob"));

    let r = h
        .get(format!("{base}/dashboard/upload"))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("read-only"));

    for (path, kind) in [
        ("assets/dashboard.js", "text/javascript"),
        ("assets/dashboard.css", "text/css"),
    ] {
        let r = h
            .get(format!("{base}/dashboard/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }

    let r = h
        .get(format!("{base}/dashboard/api/network"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["ledgerError"].is_string(), "{v}");
    assert_eq!(v["ledgers"][0]["up"], false, "{v}");
}

#[tokio::test]
async fn the_upload_form_appears_only_with_a_target() {
    let base = serve(DashboardOptions {
        upload: Some(UploadTarget {
            path: "/v1/blobs".into(),
            max_bytes: 1 << 20,
        }),
        ..DashboardOptions::default()
    })
    .await;
    let page = http()
        .get(format!("{base}/dashboard/upload"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"upload\""), "{page}");
    assert!(page.contains("action=\"/v1/blobs\""));
    assert!(page.contains("<progress id=\"upload-progress\""));
}
