//! The daemon mounts the web dashboard at `/dashboard`: with the upload form only where it
//! stores blobs without a JWT, charting its own metrics, and not at all with `--no-dashboard`.

mod support;
use floe_daemon::{DaemonOptions, Mode};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_the_daemon_mode() {
    let (_dir, bed, client) = network().await;
    let http = reqwest::Client::new();
    let cases = [
        (Mode::Daemon, None, true),
        (Mode::Aggregator, None, false),
        (Mode::Publisher, Some("secret".to_string()), false),
    ];
    for (mode, jwt, uploads) in cases {
        let daemon = Daemon::start(
            &client,
            DaemonOptions {
                mode,
                jwt_decode_secret: jwt.clone(),
                ..DaemonOptions::default()
            },
        )
        .await;
        let page = text_of(&http, daemon.at("/dashboard/upload")).await;
        assert_eq!(
            page.contains("id=\"upload\""),
            uploads,
            "{mode:?} (JWT {jwt:?}): {page}"
        );
        let network = text_of(&http, daemon.at("/dashboard")).await;
        for i in 0..bed.node_count() {
            assert!(network.contains(&format!("data-node=\"{}\"", bed.node_address(i))));
        }
        // The snapshot as JSON: what the page shows, uploads included.
        let v: serde_json::Value = http
            .get(daemon.at("/dashboard/api/network"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["uploads"], uploads, "{v}");
        assert!(v["series"]["daemonOps"].is_array(), "{v}");
        daemon.shutdown().await;
    }
    let daemon = Daemon::start(
        &client,
        DaemonOptions {
            no_dashboard: true,
            ..DaemonOptions::default()
        },
    )
    .await;
    let r = http.get(daemon.at("/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    daemon.shutdown().await;
}
