//! Progress reporting hooks for long operations (the CLI draws bars with them).

/// Receives progress of a long operation. All methods default to doing nothing.
pub trait Progress: Send + Sync {
    /// A new phase starts (`encoding`, `uploading`, `downloading`, …) with `total` units
    /// (bytes or items; 0 when unknown).
    fn phase(&self, _name: &str, _total: u64) {}
    /// `n` more units of the current phase are done.
    fn advance(&self, _n: u64) {}
    /// The operation ended (successfully or not).
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
