//! `floe dashboard` on its own: it starts from the command line, redirects `/` to the
//! dashboard, is read-only (no upload form), and answers even when its ledger is down.

use std::time::{Duration, Instant};

use floe_test_support::proc::free_port;
use floe_test_support::{Floe, Proc};

#[tokio::test]
async fn floe_dashboard_serves_read_only_pages() {
    let home = tempfile::tempdir().unwrap();
    let (port, dead) = (free_port(), free_port());
    let mut dashboard = Floe::new(env!("CARGO_BIN_EXE_floe"), home.path()).command();
    dashboard
        .args(["dashboard", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--ledger-url", &format!("http://127.0.0.1:{dead}")]);
    let _child = Proc::spawn(dashboard, "dashboard", &home.path().join("logs"));
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let root = loop {
        match http.get(format!("{base}/")).send().await {
            Ok(r) => break r,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "floe dashboard did not answer: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/dashboard");
    let page = http.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("The ledger cannot be read")
    );
    let upload = http
        .get(format!("{base}/dashboard/upload"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(upload.contains("read-only") && !upload.contains("id=\"upload\""));
}
