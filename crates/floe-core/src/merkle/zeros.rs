//! Roots of all-zero subtrees, for the small-blob shortcut.
//!
//! Most of a small blob's expanded matrix is the zero symbol: the padding of the source matrix,
//! and the expansion of every all-zero line, which is all zero too. A full aligned subtree whose
//! 2^h leaves are all the zero symbol has a root Z_h that depends only on h and the symbol
//! length: Z_0 = H(0x00 ‖ 0^len) and Z_{h+1} = H(0x01 ‖ Z_h ‖ Z_h).
//!
//! The tree builders use the table as a memo. A zero symbol's leaf hash *is* Z_0, and a node
//! whose two children both equal Z_h *is* Z_{h+1} (that is the definition of Z_{h+1}), so such
//! nodes are copied from the table instead of hashed. The shortcut is an exact memo of the hash
//! function on those inputs: it produces what hashing produces, for any data. A node with an
//! `Empty` right sibling (the padding of an odd level) is never a memo hit and is always hashed.

use super::{Digest, EMPTY_NODE, inner_hash, leaf_hash, tree_height};

/// Z_0 ..= Z_max for one symbol length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZeroTrees {
    symbol_len: usize,
    /// roots[h] = Z_h.
    roots: Vec<Digest>,
}

impl ZeroTrees {
    /// Z_0 ..= Z_`max_height` for symbols of `symbol_len` bytes (`max_height` + 1 hashes).
    pub fn new(symbol_len: usize, max_height: u32) -> Self {
        let mut roots = Vec::with_capacity(max_height as usize + 1);
        roots.push(leaf_hash(&vec![0u8; symbol_len]));
        for h in 0..max_height as usize {
            let z = roots[h];
            roots.push(inner_hash(&z, &z));
        }
        Self { symbol_len, roots }
    }

    /// A table tall enough for trees of up to `n_leaves` leaves.
    pub fn for_leaves(symbol_len: usize, n_leaves: usize) -> Self {
        Self::new(symbol_len, tree_height(n_leaves))
    }

    pub fn symbol_len(&self) -> usize {
        self.symbol_len
    }

    pub fn max_height(&self) -> u32 {
        (self.roots.len() - 1) as u32
    }

    /// Z_0: the leaf hash of the zero symbol.
    pub fn leaf(&self) -> &Digest {
        &self.roots[0]
    }

    /// Z_h, for h ≤ [`ZeroTrees::max_height`].
    pub fn subtree(&self, height: u32) -> &Digest {
        &self.roots[height as usize]
    }

    /// Z_h for h = `from` ..= max: the memo for trees whose leaves are nodes of height `from`
    /// (entry i is the zero subtree `i` levels above them). Empty if `from` is above the table.
    pub fn from_height(&self, from: u32) -> &[Digest] {
        self.roots.get(from as usize..).unwrap_or(&[])
    }

    /// The root of a whole tree of `n_leaves` zero symbols, with Walrus's padding (an `Empty`
    /// right sibling on odd levels): at most one hash per level. Panics if the tree is taller
    /// than the table.
    pub fn root(&self, n_leaves: usize) -> Digest {
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
            return self.roots[height as usize];
        }
        // Here 1 ≤ count < 2^height, so height ≥ 1.
        let half = 1usize << (height - 1);
        if count <= half {
            inner_hash(&self.left_aligned(height - 1, count), &EMPTY_NODE)
        } else {
            inner_hash(
                &self.roots[height as usize - 1],
                &self.left_aligned(height - 1, count - half),
            )
        }
    }
}

/// Whether `symbol` is the zero symbol.
#[inline]
pub(super) fn is_zero(symbol: &[u8]) -> bool {
    symbol.iter().all(|&b| b == 0)
}

/// With `zeros[0]` the zero subtree at the children's height and `zeros[1]` the one above: the
/// parent of (`left`, `right`) if the memo knows it, i.e. both children present and zero.
#[inline]
pub(super) fn memo_parent<'z>(
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
    use super::super::{Scratch, leaf_hashes, root_from_leaf_hashes, roots_of_many_by};
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
        let zeros = ZeroTrees::for_leaves(sym, n + 1);
        let mut scratch = Scratch::default();
        let mut memo_leaves = vec![[0u8; 32]; n];
        let mut plain_leaves = vec![[0u8; 32]; n];
        let iter = || syms.iter().map(|s| &s[..]);
        leaf_hashes(iter(), sym, Some(&zeros), &mut memo_leaves, &mut scratch);
        leaf_hashes(iter(), sym, None, &mut plain_leaves, &mut scratch);
        assert_eq!(memo_leaves, plain_leaves, "leaves n={n} sym={sym} {runs:?}");
        let memo = zeros.from_height(0);
        let root = root_from_leaf_hashes(&memo_leaves, memo, &mut scratch);
        assert_eq!(root, expected, "root n={n} sym={sym} {runs:?}");
        if n == 0 {
            return;
        }
        // Three copies of the tree side by side, and the same padded one level higher.
        let leaf = |_: usize, i: usize| &memo_leaves[i];
        let many = roots_of_many_by(3, n, None, memo, leaf, &mut scratch);
        assert_eq!(many, vec![expected; 3], "many n={n} sym={sym} {runs:?}");
        let padded = roots_of_many_by(3, n, Some(tree_height(n) + 1), memo, leaf, &mut scratch);
        let height = tree_height(n) + 1;
        let plain_padded = roots_of_many_by(3, n, Some(height), &[], leaf, &mut scratch);
        assert_eq!(padded, plain_padded, "padded n={n} sym={sym} {runs:?}");
        assert_eq!(padded[0], inner_hash(&expected, &EMPTY_NODE));
    }

    #[test]
    fn all_zero_trees_match_plain_trees() {
        for sym in [2usize, 6, 64] {
            let sizes = (0..=260).chain([333, 334, 511, 512, 513, 1000, 1023, 1024, 1025]);
            for n in sizes {
                let zeros = ZeroTrees::for_leaves(sym, n);
                let expected = plain_root(&vec![vec![0; sym]; n]);
                assert_eq!(zeros.root(n), expected, "n={n} sym={sym}");
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
