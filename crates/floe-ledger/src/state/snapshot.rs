//! The state's canonical encoding for snapshots.

use super::LedgerState;

impl LedgerState {
    /// The state's canonical encoding (BCS; every map is a `BTreeMap`, so equal states give
    /// equal bytes). Caches are not part of it.
    pub fn to_snapshot_bytes(&self) -> Vec<u8> {
        bcs::to_bytes(self).expect("the state serialises")
    }

    /// Decode [`to_snapshot_bytes`](Self::to_snapshot_bytes) and rebuild the derived caches.
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<Self, bcs::Error> {
        let mut state: LedgerState = bcs::from_bytes(bytes)?;
        state.refresh_weights();
        Ok(state)
    }
}
