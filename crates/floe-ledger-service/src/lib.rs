//! Floe's ledger as a service: [`service::Ledger`] runs the pure state machine of `floe-ledger`
//! over the durable, group-committed log of `floe-log`; [`api`] serves it over HTTP/JSON.
#![forbid(unsafe_code)]

pub mod api;
pub mod certificates;
pub mod event_log;
mod guard;
mod history;
mod local_open;
pub mod openapi;
pub mod recent_txs;
pub mod replica;
pub mod service;
pub mod snapshot;

pub use local_open::LocalOptions;
pub use replica::{ReplicaOptions, ReplicaStatus};
pub use service::{Accepted, Clock, Ledger, OpenError, OpenStats, SubmitError, SystemClock};

/// Serve `ledger` on `listener` (HTTP/1.1 and HTTP/2, bounded connections and header reads:
/// [`floe_http::serve`]) until `shutdown` resolves; then, once the requests in flight
/// are answered, close it ([`Ledger::close`]: a final snapshot, so the next start replays
/// nothing).
pub async fn serve(
    ledger: std::sync::Arc<Ledger>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    floe_http::serve(
        listener,
        api::router(ledger.clone()),
        floe_http::ServeLimits::default(),
        shutdown,
    )
    .await?;
    if let Err(e) = ledger.close().await {
        tracing::warn!(error = %e, "no final snapshot at stop; the next start replays the log's tail");
    }
    Ok(())
}
