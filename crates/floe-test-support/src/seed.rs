//! Seeds that tests print, and the random streams drawn from them.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The environment variable that repeats a run's random choices.
pub const SEED_VAR: &str = "FLOE_TEST_SEED";

/// `FLOE_TEST_SEED` or a fresh random seed, printed either way as
/// `[scenario] seed N (rerun with FLOE_TEST_SEED=N)`.
pub fn test_seed(scenario: &str) -> u64 {
    let seed = std::env::var(SEED_VAR)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("[{scenario}] seed {seed} (rerun with {SEED_VAR}={seed})");
    seed
}

/// A deterministic generator for one purpose (`tag`) of a scenario: adding draws for one
/// purpose does not shift another's.
pub fn rng(seed: u64, tag: &str) -> ChaCha8Rng {
    let h =
        floe_core::merkle::blake2b256(&[b"floe-fault-suite", tag.as_bytes(), &seed.to_le_bytes()]);
    ChaCha8Rng::from_seed(h)
}

/// `len` bytes from `rng`.
pub fn random_bytes(rng: &mut impl RngCore, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// `len` bytes determined by `seed` alone (a blob's contents).
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    random_bytes(&mut ChaCha8Rng::seed_from_u64(seed), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_fixed_by_seed_and_tag() {
        assert_eq!(data(7, 64), data(7, 64));
        assert_ne!(data(7, 64), data(8, 64));
        assert_eq!(&data(7, 100)[..64], &data(7, 64)[..]);
        let draw = |seed, tag| random_bytes(&mut rng(seed, tag), 16);
        assert_eq!(draw(1, "kills"), draw(1, "kills"));
        assert_ne!(draw(1, "kills"), draw(1, "sizes"));
        assert_ne!(draw(1, "kills"), draw(2, "kills"));
    }
}
