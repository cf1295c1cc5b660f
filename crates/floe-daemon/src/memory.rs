//! Giving freed memory back to the system once the daemon is idle.
//!
//! A 64 MiB PUT holds its body and its slivers (about 5.5 times the blob) while it stores. When
//! it ends, the allocator may keep those pages for the next allocation: glibc raises its mmap
//! threshold after a large free, so later large buffers come from its heaps, and it keeps
//! several heaps. A daemon that had served a few large PUTs and concurrent GETs stayed at
//! 140–300 MiB with no request in flight (about 20 MiB at its start).
//!
//! How free pages are returned depends on the allocator, which is the binary's choice: the
//! binary registers a function for it with [`set_release`] (`floe` registers glibc's
//! `malloc_trim`). The daemon counts the requests in flight, each until its response body is
//! dropped (a streamed GET holds its blob until then), and calls that function once none has
//! been in flight for [`IDLE_BEFORE_RELEASE`], after dropping the state its coding threads keep
//! (coders and their work buffers, hashing scratch, sized by the largest job: about 25 MiB
//! after 64 MiB PUTs and GETs, by heaptrack). Small requests back to back reuse the pages of
//! the ones before; an idle daemon gives back what the allocator can.
//!
//! Large requests do not wait for the idle period: once the requests that ended have moved
//! [`RELEASE_AT_ONCE_BYTES`] or more (request and response bodies) and none is in flight, the
//! release runs at once. A 64 MiB GET leaves about 40 MiB of freed sliver buffers scattered in
//! the allocator's heaps, which a large PUT does not reuse (its own buffers are mapped on their
//! own), so a PUT starting a few milliseconds later held both: its peak was 40–55 MiB higher
//! than the same PUT's on a fresh daemon.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::Notify;

/// How long no request must be in flight before free memory is returned.
pub const IDLE_BEFORE_RELEASE: Duration = Duration::from_millis(500);
/// Body bytes moved since the last release beyond which it runs as soon as no request is in
/// flight.
pub const RELEASE_AT_ONCE_BYTES: u64 = 16 << 20;

/// A way to return the allocator's free pages to the system.
pub type Release = fn();

static RELEASE: OnceLock<Release> = OnceLock::new();

/// Register how this process returns free memory (once; later calls are ignored and return
/// `false`). Without one, the daemon never tries.
pub fn set_release(release: Release) -> bool {
    RELEASE.set(release).is_ok()
}

/// The registered [`Release`], if any.
pub(crate) fn release() -> Option<Release> {
    RELEASE.get().copied()
}

/// Requests in flight, and a signal when their number drops to zero.
#[derive(Debug, Default)]
pub(crate) struct Idle {
    in_flight: AtomicUsize,
    /// Requests started so far: a request that came and went during the wait shows here.
    started: AtomicU64,
    /// Body bytes (requests' and responses') moved since the last release.
    moved: AtomicU64,
    went_idle: Notify,
}

impl Idle {
    /// Count a request until the guard is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        self.started.fetch_add(1, Ordering::AcqRel);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Count `bytes` of a body as moved.
    pub(crate) fn moved(&self, bytes: usize) {
        self.moved.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// One request in flight (see [`Idle::start`]).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Idle>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            // A permit is stored if the releasing task is not waiting right now.
            self.0.went_idle.notify_one();
        }
    }
}

/// Drop the coding pool's per-thread state and call `release` (on a blocking thread) each time
/// no request has been in flight for `after`, or at once when no request is in flight and
/// [`RELEASE_AT_ONCE_BYTES`] have moved since the last release.
/// Runs until the runtime stops.
pub(crate) async fn release_when_idle(idle: Arc<Idle>, release: Release, after: Duration) {
    loop {
        idle.went_idle.notified().await;
        let started = idle.started.load(Ordering::Acquire);
        if idle.moved.load(Ordering::Relaxed) < RELEASE_AT_ONCE_BYTES {
            tokio::time::sleep(after).await;
        }
        // A request started meanwhile: its end notifies again, and the wait starts over.
        if idle.in_flight() == 0 && idle.started.load(Ordering::Acquire) == started {
            idle.moved.store(0, Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(move || {
                // The coding threads' state first, so that its pages are free to return.
                floe_core::release_pool_buffers();
                release();
            })
            .await;
            tracing::debug!("idle: coding state dropped, free memory returned to the system");
        }
    }
}

/// Middleware counting every request in flight until its response body is dropped.
/// Both bodies' bytes count as moved.
pub(crate) async fn track(State(idle): State<Arc<Idle>>, req: Request, next: Next) -> Response {
    let guard = idle.start();
    let req = req.map(|body| {
        Body::new(Tracked {
            inner: body,
            idle: idle.clone(),
            _guard: None,
        })
    });
    let response = next.run(req).await;
    response.map(|body| {
        Body::new(Tracked {
            inner: body,
            idle,
            _guard: Some(guard),
        })
    })
}

/// A body whose bytes count as moved; a response's keeps its request counted in flight until
/// it is dropped.
struct Tracked {
    inner: Body,
    idle: Arc<Idle>,
    _guard: Option<InFlight>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.idle.moved(data.len());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use http_body::Body as _;
    use http_body_util::BodyExt;

    use super::*;

    static RELEASED: AtomicUsize = AtomicUsize::new(0);
    /// Releases that found the coding pool still keeping state (it must be dropped first).
    static POOL_KEPT: AtomicUsize = AtomicUsize::new(0);

    fn count_release() {
        if floe_core::pool_keeps_coding_state() {
            POOL_KEPT.fetch_add(1, Ordering::SeqCst);
        }
        RELEASED.fetch_add(1, Ordering::SeqCst);
    }

    /// Leave coding state on the rayon pool's threads, as a read's verification does.
    fn code_on_the_pool() {
        // The encoder's parallel phases run on the pool's threads.
        let config = floe_core::EncodingConfig::new(10).expect("config");
        let blob: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
        floe_core::encode(&config, &blob).expect("encode");
        assert!(floe_core::pool_keeps_coding_state(), "the pool coded");
    }

    /// Wait (in real time: the release runs on a blocking thread) until `count_release` has
    /// run `expected` times, or a while; the count then.
    fn released(expected: usize) -> usize {
        for _ in 0..200 {
            let n = RELEASED.load(Ordering::SeqCst);
            if n == expected {
                // Long enough for an extra, unexpected release to show too.
                std::thread::sleep(Duration::from_millis(20));
                return RELEASED.load(Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        RELEASED.load(Ordering::SeqCst)
    }

    /// Let the paused clock move by `d`, and the releasing task run.
    async fn pass(d: Duration) {
        tokio::time::sleep(d).await;
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_released_once_no_request_has_been_in_flight_for_a_while() {
        let idle = Arc::new(Idle::default());
        let after = Duration::from_millis(500);
        tokio::spawn(release_when_idle(idle.clone(), count_release, after));
        code_on_the_pool();
        let (a, b) = (idle.start(), idle.start());
        drop(a);
        pass(after * 2).await;
        assert_eq!(released(0), 0, "one request is still in flight");
        drop(b);
        pass(after / 2).await;
        assert_eq!(released(0), 0, "not idle long enough yet");
        // A request comes and goes during the wait: the wait starts over when it ends.
        let c = idle.start();
        pass(after / 4).await;
        drop(c);
        pass(after / 2).await;
        assert_eq!(
            released(0),
            0,
            "idle for less than {after:?} since the last request"
        );
        pass(after).await;
        assert_eq!(released(1), 1, "idle for {after:?}: released");
        assert_eq!(
            POOL_KEPT.load(Ordering::SeqCst),
            0,
            "the pool's coding state was dropped before the release"
        );
        // No release while a request is in flight, however long it takes.
        let d = idle.start();
        pass(after * 4).await;
        assert_eq!(released(1), 1);
        code_on_the_pool();
        drop(d);
        pass(after * 2).await;
        assert_eq!(released(2), 2);
        assert_eq!(POOL_KEPT.load(Ordering::SeqCst), 0);
        // Large bodies moved: released as soon as no request is in flight, no idle wait.
        let (e, f) = (idle.start(), idle.start());
        idle.moved(RELEASE_AT_ONCE_BYTES as usize - 1);
        drop(e);
        idle.moved(1);
        code_on_the_pool();
        pass(after * 2).await;
        assert_eq!(released(2), 2, "a large request is still in flight");
        drop(f);
        pass(Duration::from_millis(1)).await;
        assert_eq!(
            released(3),
            3,
            "{RELEASE_AT_ONCE_BYTES} bytes moved: released without the idle wait"
        );
        assert_eq!(POOL_KEPT.load(Ordering::SeqCst), 0);
        // The count started over: a small request waits for the idle period again.
        let g = idle.start();
        idle.moved(1);
        drop(g);
        pass(after / 2).await;
        assert_eq!(released(3), 3, "a small request: not idle long enough yet");
        pass(after).await;
        assert_eq!(released(4), 4);
    }

    #[tokio::test]
    async fn a_response_counts_until_its_body_is_dropped_and_keeps_its_length() {
        let idle = Arc::new(Idle::default());
        let tracked = Tracked {
            inner: Body::from("four"),
            idle: idle.clone(),
            _guard: Some(idle.start()),
        };
        assert_eq!(tracked.size_hint().exact(), Some(4), "Content-Length kept");
        assert_eq!(idle.in_flight(), 1);
        let body = Body::new(tracked);
        let bytes = body.collect().await.expect("collect").to_bytes();
        assert_eq!(&bytes[..], b"four");
        assert_eq!(idle.in_flight(), 0, "the body was consumed and dropped");
        assert_eq!(
            idle.moved.load(Ordering::Relaxed),
            4,
            "its bytes counted as moved"
        );
    }
}
