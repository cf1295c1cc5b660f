//! A read's coding work (sliver verification, decoding) runs on the rayon pool, whose threads
//! are as many as the cores, not on the async runtime's blocking threads. (A store's encoding
//! is started from a blocking thread, but its work runs on the pool too: every coding step of
//! the encoder is inside its parallel phases.)
//!
//! Each thread that codes keeps coding state sized by its largest job (coders and their work
//! buffers, hashing scratch, expansion buffers). On blocking threads, of which tokio may start
//! hundreds under concurrent reads, that state multiplied and stayed until each thread
//! expired. On the pool it is bounded by the core count, and an idle process can drop it
//! ([`floe_core::release_pool_buffers`]).

use crate::ClientError;

/// Run `f` on the rayon pool and wait for it without blocking the async runtime. A panic in
/// `f` becomes an internal error.
pub(crate) async fn compute<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ClientError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(result);
    });
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(ClientError::Internal("a coding task panicked".into())),
        Err(_) => Err(ClientError::Internal("a coding task was dropped".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::compute;

    #[tokio::test]
    async fn runs_on_the_pool_and_turns_a_panic_into_an_error() {
        let on_pool = compute(|| rayon::current_thread_index().is_some()).await;
        assert!(on_pool.unwrap(), "the closure ran on a rayon thread");
        let panicked = compute(|| -> u8 { panic!("boom") }).await;
        assert!(panicked.is_err());
        assert_eq!(
            compute(|| 2 + 2).await.unwrap(),
            4,
            "the pool survives a panic"
        );
    }
}
