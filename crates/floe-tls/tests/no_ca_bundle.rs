//! On a machine without a CA bundle (a `FROM scratch` container), reqwest's own TLS set-up
//! refuses to build any client, even one that only speaks plain HTTP. `http_client` still
//! builds one. The machine is simulated with `SSL_CERT_FILE` naming an empty file, in a child
//! process (the CA bundle is looked up once per process).

use std::io::{Read, Write};
use std::process::Command;

const CHILD: &str = "FLOE_TLS_TEST_CHILD";

#[tokio::test]
async fn clients_build_and_speak_plain_http_without_a_ca_bundle() {
    if std::env::var_os(CHILD).is_some() {
        return child().await;
    }
    let empty = std::env::temp_dir().join(format!("floe-empty-ca-{}.pem", std::process::id()));
    std::fs::write(&empty, "").unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "clients_build_and_speak_plain_http_without_a_ca_bundle",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("SSL_CERT_FILE", &empty)
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&empty);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("child: ok"), "{stdout}\n{stderr}");
}

async fn child() {
    assert!(!floe_tls::system_roots_available());
    assert!(
        reqwest::Client::builder().build().is_err(),
        "reqwest builds without CA certificates now: http_client's fallback may be unneeded"
    );
    let client = floe_tls::http_client(reqwest::Client::builder()).unwrap();
    // A one-request plain HTTP server.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf);
        let _ =
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    });
    let body = client
        .get(format!("http://{address}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");
    println!("child: ok");
}
