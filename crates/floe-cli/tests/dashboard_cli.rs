//! `floe dashboard` on its own: it starts from the command line, redirects `/` to the
//! dashboard, is read-only (no upload form), and answers even when its ledger is down.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The child, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn floe_dashboard_serves_read_only_pages() {
    let home = tempfile::tempdir().unwrap();
    let (port, dead) = (free_port(), free_port());
    let _child = Child(
        Command::new(env!("CARGO_BIN_EXE_floe"))
            .args(["dashboard", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--ledger-url", &format!("http://127.0.0.1:{dead}")])
            .env("HOME", home.path())
            .env_remove("FLOE_CONFIG")
            .current_dir(home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("floe runs"),
    );
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
