//! [`MemoryLog`]: a non-durable [`DurableLog`] for tests of code built on the trait.

use crate::DurableLog;
use crate::error::LogError;
use crate::format::DEFAULT_MAX_PAYLOAD_LEN;

/// An in-memory log. **Not durable**: it exists so that code written against [`DurableLog`]
/// (the ledger, the group committer) can be unit-tested without touching a disk.
#[derive(Debug, Clone)]
pub struct MemoryLog {
    records: Vec<Vec<u8>>,
    max_payload_len: usize,
}

impl MemoryLog {
    /// An empty log with the default 16 MiB payload limit.
    pub fn new() -> Self {
        Self::with_max_payload_len(DEFAULT_MAX_PAYLOAD_LEN)
    }

    /// An empty log accepting payloads up to `max` bytes.
    pub fn with_max_payload_len(max: usize) -> Self {
        MemoryLog {
            records: Vec::new(),
            max_payload_len: max,
        }
    }

    /// All records, in index order.
    pub fn records(&self) -> &[Vec<u8>] {
        &self.records
    }
}

impl Default for MemoryLog {
    fn default() -> Self {
        Self::new()
    }
}

impl DurableLog for MemoryLog {
    fn len(&self) -> u64 {
        self.records.len() as u64
    }

    fn max_payload_len(&self) -> usize {
        self.max_payload_len
    }

    fn append_durable(&mut self, payloads: &[&[u8]]) -> Result<u64, LogError> {
        if let Some(p) = payloads.iter().find(|p| p.len() > self.max_payload_len) {
            return Err(LogError::PayloadTooLarge {
                len: p.len(),
                max: self.max_payload_len,
            });
        }
        let first = self.len();
        self.records.extend(payloads.iter().map(|p| p.to_vec()));
        Ok(first)
    }

    fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, LogError> {
        let len = self.len();
        if from > to || to > len {
            return Err(LogError::RangeOutOfBounds { from, to, len });
        }
        Ok(self.records[from as usize..to as usize].to_vec())
    }
}
