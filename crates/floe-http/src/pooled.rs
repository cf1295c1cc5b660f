//! Request bodies read into reused buffers.
//!
//! A body collected the usual way lands in a new buffer of its size. Under the allocator's
//! settings (blocks of 4 MiB and more are mapped on their own) every multi-MiB upload then
//! costs fresh pages that the kernel must fault in and clear: profiling a node during 64 MiB
//! PUTs put page clearing at a tenth of its CPU. [`BufferPool`] keeps a few emptied buffers
//! instead, bounded in number and in size, and [`read_pooled`] fills one. Kept buffers are freed
//! once none was taken for a while ([`BufferPool::free_when_idle`]), so an idle server does not
//! hold them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::body::Body;

use crate::{ApiError, Domain, body};

/// Emptied buffers kept for the next bodies: at most `max_buffers`, each of at most
/// `max_capacity` bytes (larger ones are freed), so the pool holds at most their product.
#[derive(Debug)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    max_buffers: usize,
    max_capacity: usize,
    /// Buffers taken so far.
    taken: AtomicU64,
}

impl BufferPool {
    pub fn new(max_buffers: usize, max_capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            free: Mutex::new(Vec::with_capacity(max_buffers)),
            max_buffers,
            max_capacity,
            taken: AtomicU64::new(0),
        })
    }

    /// Free the kept buffers each time none was taken during `after`; ends when the pool is
    /// dropped. Spawn it next to the server that uses the pool.
    pub async fn free_when_idle(pool: Weak<Self>, after: Duration) {
        let mut seen = None;
        loop {
            tokio::time::sleep(after).await;
            let Some(pool) = pool.upgrade() else {
                return;
            };
            let taken = pool.taken.load(Ordering::Relaxed);
            if seen == Some(taken) {
                let freed = std::mem::take(&mut *pool.lock());
                if !freed.is_empty() {
                    tracing::debug!(buffers = freed.len(), "idle: kept body buffers freed");
                }
            }
            seen = Some(taken);
        }
    }

    /// An empty buffer: a kept one when there is one, or a new one of `capacity` bytes.
    fn take(&self, capacity: usize) -> Vec<u8> {
        self.taken.fetch_add(1, Ordering::Relaxed);
        let kept = self.lock().pop();
        let mut buf = kept.unwrap_or_default();
        buf.clear();
        buf.reserve(capacity);
        buf
    }

    fn give(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > self.max_capacity {
            return;
        }
        let mut free = self.lock();
        if free.len() < self.max_buffers {
            free.push(buf);
        }
    }

    /// Bytes held by the kept buffers.
    pub fn retained_bytes(&self) -> usize {
        self.lock().iter().map(Vec::capacity).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A body's bytes in a pooled buffer, which goes back to its pool when dropped.
#[derive(Debug)]
pub struct PooledBody {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl std::ops::Deref for PooledBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

/// Read `body` (at most `limit` bytes; `declared` is its `Content-Length`, if any) into a buffer
/// from `pool`. The errors are those of a collected body: 413 `BODY_TOO_LARGE`, 408
/// `BODY_TIMEOUT` (see [`body`]) or 400 `INVALID_BODY`.
pub async fn read_pooled<D: Domain>(
    mut body: Body,
    limit: usize,
    declared: Option<u64>,
    pool: &Arc<BufferPool>,
) -> Result<PooledBody, ApiError<D>> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(body::ReadBodyError::TooLarge { limit }.into_api());
    }
    let capacity = declared.map_or(0, |n| n as usize);
    let mut out = PooledBody {
        buf: pool.take(capacity),
        pool: Arc::clone(pool),
    };
    body::read_into(&mut body, &mut out.buf, limit)
        .await
        .map_err(body::ReadBodyError::into_api)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::TestDomain as Test;
    use axum::http::StatusCode;

    use super::*;

    async fn read(
        bytes: &[u8],
        limit: usize,
        declared: Option<u64>,
        pool: &Arc<BufferPool>,
    ) -> Result<PooledBody, ApiError<Test>> {
        read_pooled::<Test>(Body::from(bytes.to_vec()), limit, declared, pool).await
    }

    #[tokio::test]
    async fn a_body_is_read_into_a_buffer_that_the_next_body_reuses() {
        let pool = BufferPool::new(2, 1 << 20);
        let first = read(&[7u8; 5000], 1 << 20, Some(5000), &pool)
            .await
            .unwrap();
        assert_eq!(&first[..], &[7u8; 5000][..]);
        let address = first.as_ptr();
        assert_eq!(pool.retained_bytes(), 0);
        drop(first);
        let kept = pool.retained_bytes();
        assert!(kept >= 5000, "{kept}");
        let second = read(&[9u8; 3000], 1 << 20, None, &pool).await.unwrap();
        assert_eq!(&second[..], &[9u8; 3000][..]);
        assert_eq!(second.as_ptr(), address, "the kept buffer is reused");
        assert_eq!(pool.retained_bytes(), 0);
    }

    #[tokio::test]
    async fn the_pool_keeps_few_and_small_buffers_only() {
        let pool = BufferPool::new(1, 10_000);
        let a = read(&[1u8; 4000], 1 << 20, Some(4000), &pool)
            .await
            .unwrap();
        let b = read(&[2u8; 4000], 1 << 20, Some(4000), &pool)
            .await
            .unwrap();
        let large = read(&[3u8; 20_000], 1 << 20, Some(20_000), &pool)
            .await
            .unwrap();
        drop(large);
        assert_eq!(pool.retained_bytes(), 0, "larger than the pool's buffers");
        drop(a);
        drop(b);
        let kept = pool.retained_bytes();
        assert!((4000..=10_000).contains(&kept), "one buffer kept: {kept}");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_with_413() {
        let pool = BufferPool::new(2, 1 << 20);
        for declared in [Some(101), None] {
            let e = read(&[0u8; 101], 100, declared, &pool).await.unwrap_err();
            assert_eq!(
                e.http,
                StatusCode::PAYLOAD_TOO_LARGE,
                "declared {declared:?}"
            );
            assert_eq!(e.reason, "BODY_TOO_LARGE");
        }
        assert_eq!(
            read(&[0u8; 100], 100, None, &pool).await.unwrap().len(),
            100
        );
    }

    #[tokio::test(start_paused = true)]
    async fn kept_buffers_are_freed_once_none_was_taken_for_a_while() {
        let pool = BufferPool::new(2, 1 << 20);
        let idle = Duration::from_secs(5);
        let task = tokio::spawn(BufferPool::free_when_idle(Arc::downgrade(&pool), idle));
        drop(read(&[1u8; 4000], 1 << 20, None, &pool).await.unwrap());
        assert!(pool.retained_bytes() >= 4000);
        // Taken again within every period: kept.
        for _ in 0..4 {
            tokio::time::sleep(idle / 2).await;
            drop(read(&[2u8; 4000], 1 << 20, None, &pool).await.unwrap());
            tokio::time::sleep(idle / 2).await;
            assert!(pool.retained_bytes() >= 4000, "freed while in use");
        }
        // Then a whole period and more without a take: freed.
        tokio::time::sleep(idle * 2 + Duration::from_millis(1)).await;
        assert_eq!(pool.retained_bytes(), 0);
        // And the pool still works; the task ends with it.
        drop(read(&[3u8; 10], 1 << 20, None, &pool).await.unwrap());
        drop(pool);
        tokio::time::sleep(idle + Duration::from_millis(1)).await;
        assert!(task.is_finished());
    }
}
