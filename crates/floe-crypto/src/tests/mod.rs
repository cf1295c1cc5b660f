//! Unit tests of the crate (one test binary keeps build cost low).

mod certificate;
mod fuzz;
mod keys;
mod messages;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::ProtocolKeyPair;

/// A deterministic RNG for tests.
pub(crate) fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A deterministic key pair for tests.
pub(crate) fn keypair(seed: u8) -> ProtocolKeyPair {
    ProtocolKeyPair::from_seed(&[seed; 32])
}
