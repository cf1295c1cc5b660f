//! Hashes known in advance, for the small-blob shortcut.
//!
//! Most of a small blob's expanded matrix is the zero symbol: the padding of the source matrix,
//! and the expansion of every all-zero line, which is all zero too. A full aligned subtree whose
//! 2^h leaves are all the zero symbol has a root Z_h that depends only on h and the symbol
//! length: Z_0 = H(0x00 ‖ 0^len) and Z_{h+1} = H(0x01 ‖ Z_h ‖ Z_h).
//!
//! The tree builders use those roots as a memo. A zero symbol's leaf hash *is* Z_0, and a node
//! whose two children both equal Z_h *is* Z_{h+1} (that is the definition of Z_{h+1}), so such
//! nodes are copied from the table instead of hashed. A node with an `Empty` right sibling (the
//! padding of an odd level) is never a memo hit and is always hashed.
//!
//! Blobs of up to p · s · 2 bytes (≈ 445 kB at n = 1000) have 2-byte symbols, which take only
//! 65,536 values: the leaf hash of every one of them is computed once per process (2 MiB) and
//! looked up from then on.
//!
//! Every shortcut is a memo of the hash function on inputs it has already hashed: it produces
//! what hashing produces, for any data.

use std::sync::OnceLock;

use super::{Digest, EMPTY_NODE, Scratch, inner_hash, leaf_hash, leaf_hashes, tree_height};

/// The hashes known in advance for one symbol length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashMemo {
    symbol_len: usize,
    /// zero_roots[h] = Z_h.
    zero_roots: Vec<Digest>,
    /// For 2-byte symbols, the leaf hash of every symbol (see [`two_byte_leaves`]).
    two_byte_leaves: Option<&'static [Digest]>,
}

impl HashMemo {
    /// The memo for symbols of `symbol_len` bytes, with Z_0 ..= Z_`max_height` (`max_height` + 1
    /// hashes; for 2-byte symbols, the first memo made in the process also hashes every leaf).
    pub fn new(symbol_len: usize, max_height: u32) -> Self {
        let mut zero_roots = Vec::with_capacity(max_height as usize + 1);
        zero_roots.push(leaf_hash(&vec![0u8; symbol_len]));
        for h in 0..max_height as usize {
            let z = zero_roots[h];
            zero_roots.push(inner_hash(&z, &z));
        }
        Self {
            symbol_len,
            zero_roots,
            two_byte_leaves: (symbol_len == 2).then(two_byte_leaves),
        }
    }

    /// A memo tall enough for trees of up to `n_leaves` leaves.
    pub fn for_leaves(symbol_len: usize, n_leaves: usize) -> Self {
        Self::new(symbol_len, tree_height(n_leaves))
    }

    pub fn symbol_len(&self) -> usize {
        self.symbol_len
    }

    pub fn max_height(&self) -> u32 {
        (self.zero_roots.len() - 1) as u32
    }

    /// Z_h (the root of a full subtree of height h over zero symbols), h ≤ max_height.
    pub fn zero_subtree(&self, height: u32) -> &Digest {
        &self.zero_roots[height as usize]
    }

    /// Z_h for h = `from` ..= max: the zero roots for trees whose leaves are nodes of height
    /// `from` (entry i is the zero subtree `i` levels above them). Empty above the table.
    pub fn zero_roots(&self, from: u32) -> &[Digest] {
        self.zero_roots.get(from as usize..).unwrap_or(&[])
    }

    /// The leaf hash of `symbol` (of this memo's length), if known without hashing.
    #[inline]
    pub fn known_leaf(&self, symbol: &[u8]) -> Option<&Digest> {
        debug_assert_eq!(symbol.len(), self.symbol_len, "symbol of another length");
        match self.two_byte_leaves {
            Some(table) => Some(&table[usize::from(u16::from_le_bytes([symbol[0], symbol[1]]))]),
            None => is_zero(symbol).then(|| &self.zero_roots[0]),
        }
    }

    /// The root of a whole tree of `n_leaves` zero symbols, with Walrus's padding (an `Empty`
    /// right sibling on odd levels): at most one hash per level. Panics if the tree is taller
    /// than the table.
    pub fn zero_root(&self, n_leaves: usize) -> Digest {
        if n_leaves == 0 {
            return EMPTY_NODE;
        }
        let height = tree_height(n_leaves);
        assert!(height <= self.max_height(), "zero table too short");
        self.left_aligned(height, n_leaves)
    }

    /// The node of height `height` over `count` (1 ..= 2^height) zero leaves at its left, the
    /// rest of its span lying past the end of the tree.
    fn left_aligned(&self, height: u32, count: usize) -> Digest {
        if count == 1 << height {
            return self.zero_roots[height as usize];
        }
        // Here 1 ≤ count < 2^height, so height ≥ 1.
        let half = 1usize << (height - 1);
        if count <= half {
            inner_hash(&self.left_aligned(height - 1, count), &EMPTY_NODE)
        } else {
            inner_hash(
                &self.zero_roots[height as usize - 1],
                &self.left_aligned(height - 1, count - half),
            )
        }
    }
}

/// The leaf hash of every 2-byte symbol, indexed by the symbol read as a little-endian u16:
/// 65,536 hashes (a few ms) and 2 MiB, once per process, on first use.
fn two_byte_leaves() -> &'static [Digest] {
    static TABLE: OnceLock<Box<[Digest]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let symbols: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
        let mut table = vec![[0u8; 32]; 1 << 16];
        let mut scratch = Scratch::default();
        leaf_hashes(symbols.chunks_exact(2), 2, None, &mut table, &mut scratch);
        table.into_boxed_slice()
    })
}

/// Whether `symbol` is the zero symbol.
#[inline]
pub(super) fn is_zero(symbol: &[u8]) -> bool {
    symbol.iter().all(|&b| b == 0)
}

/// With `zeros[0]` the zero subtree at the children's height and `zeros[1]` the one above: the
/// parent of (`left`, `right`) if it is known, i.e. both children present and zero.
#[inline]
pub(super) fn known_parent<'z>(
    zeros: &'z [Digest],
    left: &Digest,
    right: Option<&Digest>,
) -> Option<&'z Digest> {
    match (zeros, right) {
        ([child, parent, ..], Some(right)) if left == child && right == child => Some(parent),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::root_from_leaf_hashes;
    use super::super::roots_of_many_by;
    use super::*;
    use proptest::prelude::*;

    /// The definition, with nothing shared with the batched code: hash every leaf, then pair
    /// level by level with an `Empty` right sibling on odd levels.
    fn plain_root(symbols: &[Vec<u8>]) -> Digest {
        if symbols.is_empty() {
            return EMPTY_NODE;
        }
        let mut level: Vec<Digest> = symbols.iter().map(|s| leaf_hash(s)).collect();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|c| inner_hash(&c[0], c.get(1).unwrap_or(&EMPTY_NODE)))
                .collect();
        }
        level[0]
    }

    /// `n` non-zero symbols of `sym` bytes with the symbols in each of `runs` zeroed.
    fn symbols(n: usize, sym: usize, runs: &[(usize, usize)]) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                if runs.iter().any(|&(a, b)| (a..b).contains(&i)) {
                    vec![0; sym]
                } else {
                    (0..sym).map(|j| (i * 7 + j * 13 + 1) as u8 | 1).collect()
                }
            })
            .collect()
    }

    /// Every memoised path against [`plain_root`]: leaf hashes, one tree, and many trees at once
    /// (unpadded and padded one level higher).
    fn check(n: usize, sym: usize, runs: &[(usize, usize)]) {
        let syms = symbols(n, sym, runs);
        let expected = plain_root(&syms);
        let memo = HashMemo::for_leaves(sym, n + 1);
        let mut scratch = Scratch::default();
        let mut memo_leaves = vec![[0u8; 32]; n];
        let mut plain_leaves = vec![[0u8; 32]; n];
        let iter = || syms.iter().map(|s| &s[..]);
        leaf_hashes(iter(), sym, Some(&memo), &mut memo_leaves, &mut scratch);
        leaf_hashes(iter(), sym, None, &mut plain_leaves, &mut scratch);
        assert_eq!(memo_leaves, plain_leaves, "leaves n={n} sym={sym} {runs:?}");
        let zeros = memo.zero_roots(0);
        let root = root_from_leaf_hashes(&memo_leaves, zeros, &mut scratch);
        assert_eq!(root, expected, "root n={n} sym={sym} {runs:?}");
        if n == 0 {
            return;
        }
        // Three copies of the tree side by side, and the same padded one level higher.
        let leaf = |_: usize, i: usize| &memo_leaves[i];
        let many = roots_of_many_by(3, n, None, zeros, leaf, &mut scratch);
        assert_eq!(many, vec![expected; 3], "many n={n} sym={sym} {runs:?}");
        let padded = roots_of_many_by(3, n, Some(tree_height(n) + 1), zeros, leaf, &mut scratch);
        let height = tree_height(n) + 1;
        let plain_padded = roots_of_many_by(3, n, Some(height), &[], leaf, &mut scratch);
        assert_eq!(padded, plain_padded, "padded n={n} sym={sym} {runs:?}");
        assert_eq!(padded[0], inner_hash(&expected, &EMPTY_NODE));
    }

    #[test]
    fn known_leaves_are_the_leaf_hashes() {
        let memo = HashMemo::new(2, 0);
        for v in 0..=u16::MAX {
            let symbol = v.to_le_bytes();
            assert_eq!(memo.known_leaf(&symbol), Some(&leaf_hash(&symbol)), "{v}");
        }
        assert_eq!(memo.known_leaf(&[0, 0]), Some(memo.zero_subtree(0)));
        // Longer symbols: only the zero symbol is known.
        let memo = HashMemo::new(4, 0);
        assert_eq!(memo.known_leaf(&[0; 4]), Some(&leaf_hash(&[0; 4])));
        assert_eq!(memo.known_leaf(&[0, 0, 0, 1]), None);
    }

    #[test]
    fn all_zero_trees_match_plain_trees() {
        for sym in [2usize, 6, 64] {
            let sizes = (0..=260).chain([333, 334, 511, 512, 513, 1000, 1023, 1024, 1025]);
            for n in sizes {
                let memo = HashMemo::for_leaves(sym, n);
                let expected = plain_root(&vec![vec![0; sym]; n]);
                assert_eq!(memo.zero_root(n), expected, "n={n} sym={sym}");
                check(n, sym, &[(0, n)]);
            }
        }
    }

    #[test]
    fn every_zero_run_in_small_trees() {
        for n in 1..=40 {
            for a in 0..=n {
                for b in a..=n {
                    check(n, 2, &[(a, b)]);
                }
            }
        }
    }

    #[test]
    fn zero_runs_in_larger_trees() {
        for n in [63usize, 64, 65, 100, 127, 333, 334, 667, 1000] {
            let cuts = [0, 1, 2, 3, 5, 8, 31, 32, 33, n / 3, n / 2, n - 2, n - 1, n];
            for &a in &cuts {
                for &b in cuts.iter().filter(|&&b| b >= a) {
                    check(n, 4, &[(a, b)]);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        #[test]
        fn random_zero_runs(
            n in 1usize..1100,
            sym in prop::sample::select(vec![2usize, 4, 6, 62]),
            runs in prop::collection::vec((0.0f64..1.0, 0.0f64..0.5), 0..4),
        ) {
            let runs: Vec<(usize, usize)> = runs
                .iter()
                .map(|&(start, len)| {
                    let a = (start * n as f64) as usize;
                    (a, (a + (len * n as f64) as usize).min(n))
                })
                .collect();
            check(n, sym, &runs);
        }
    }
}
