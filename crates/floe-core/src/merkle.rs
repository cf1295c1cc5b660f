//! Blake2b-256 Merkle trees as Walrus builds them.
//!
//! leaf = H(0x00 ‖ data), inner = H(0x01 ‖ left ‖ right). A level with an odd number of nodes
//! gets an `Empty` right sibling (32 zero bytes, not hashed). The root of one leaf is its leaf
//! hash; the root of no leaves is 32 zero bytes.
//!
//! Hashing dominates encoding, so the batch functions hash many equal-length inputs at once with
//! `blake2b_simd::many` (4 lanes on AVX2) through reusable [`Scratch`] buffers. They can also
//! take hashes known in advance ([`HashMemo`]: all-zero subtrees, 2-byte leaves), which they
//! copy instead of computing; that never changes a result.

use blake2b_simd::Params;
use blake2b_simd::many::{HashManyJob, hash_many};
use serde::{Deserialize, Serialize};

mod memo;
pub use memo::HashMemo;

/// A 32-byte Blake2b-256 digest.
pub type Digest = [u8; 32];

const LEAF_PREFIX: u8 = 0x00;
const INNER_PREFIX: u8 = 0x01;
/// The bytes an `Empty` node contributes to its parent's hash.
pub const EMPTY_NODE: Digest = [0u8; 32];

fn params() -> Params {
    let mut p = Params::new();
    p.hash_length(32);
    p
}

/// Blake2b-256 of the concatenation of `parts`.
pub fn blake2b256(parts: &[&[u8]]) -> Digest {
    let mut state = params().to_state();
    for part in parts {
        state.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}

/// Blake2b-256 over bytes given piece by piece (a file read in chunks): the same digest as
/// [`blake2b256`] of the pieces.
#[derive(Clone)]
pub struct Blake2b256(blake2b_simd::State);

impl Default for Blake2b256 {
    fn default() -> Self {
        Self(params().to_state())
    }
}

impl Blake2b256 {
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(bytes);
        self
    }
    pub fn finalize(&self) -> Digest {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finalize().as_bytes());
        out
    }
}

pub fn leaf_hash(data: &[u8]) -> Digest {
    blake2b256(&[&[LEAF_PREFIX], data])
}

pub fn inner_hash(left: &Digest, right: &Digest) -> Digest {
    blake2b256(&[&[INNER_PREFIX], left, right])
}

/// A Merkle tree node as serialised in metadata and proofs (BCS: `Empty` = 0, `Digest` = 1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Node {
    Empty,
    Digest(Digest),
}

impl Node {
    pub fn bytes(&self) -> &Digest {
        match self {
            Node::Empty => &EMPTY_NODE,
            Node::Digest(d) => d,
        }
    }
}

impl From<Digest> for Node {
    fn from(d: Digest) -> Self {
        Node::Digest(d)
    }
}

/// Reusable buffers for batched hashing (one per thread).
#[derive(Default)]
pub struct Scratch {
    batch: Batch,
    level_a: Vec<Digest>,
    level_b: Vec<Digest>,
}

impl Scratch {
    /// Bytes of buffer this scratch keeps allocated.
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.batch.staging.capacity()
            + self.batch.targets.capacity() * std::mem::size_of::<usize>()
            + (self.level_a.capacity() + self.level_b.capacity()) * std::mem::size_of::<Digest>()
    }
}

/// Records staged for one `hash_many` pass, each with the output slot its digest goes to.
#[derive(Default)]
struct Batch {
    staging: Vec<u8>,
    targets: Vec<usize>,
    hashed: Vec<Digest>,
}

impl Batch {
    fn start(&mut self, records: usize, record_len: usize) {
        self.staging.clear();
        self.staging.reserve(records * record_len);
        self.targets.clear();
        self.targets.reserve(records);
    }

    fn push_leaf(&mut self, target: usize, symbol: &[u8]) {
        self.staging.push(LEAF_PREFIX);
        self.staging.extend_from_slice(symbol);
        self.targets.push(target);
    }

    /// Stage the parent of (`left`, `right`) for slot `target` of `out`, unless the zero
    /// roots `zeros` (see [`memo::known_parent`]) give it: then it is written to `out` at once.
    #[inline]
    fn push_parent(
        &mut self,
        target: usize,
        left: &Digest,
        right: Option<&Digest>,
        zeros: &[Digest],
        out: &mut [Digest],
    ) {
        if let Some(known) = memo::known_parent(zeros, left, right) {
            out[target] = *known;
            return;
        }
        self.staging.push(INNER_PREFIX);
        self.staging.extend_from_slice(left);
        self.staging.extend_from_slice(right.unwrap_or(&EMPTY_NODE));
        self.targets.push(target);
    }

    /// Hash the staged records (each `record_len` bytes) into their slots of `out`. Targets are
    /// increasing, so when every slot was staged the digests go straight into `out`.
    fn finish(&mut self, record_len: usize, out: &mut [Digest]) {
        if self.targets.len() == out.len() {
            hash_records(&self.staging, record_len, out);
            return;
        }
        self.hashed.clear();
        self.hashed.resize(self.targets.len(), [0; 32]);
        hash_records(&self.staging, record_len, &mut self.hashed);
        for (&t, d) in self.targets.iter().zip(&self.hashed) {
            out[t] = *d;
        }
    }
}

/// Records hashed per `hash_many` call: enough to fill the SIMD lanes many times over, few
/// enough that the jobs stay in L1.
const HASH_CHUNK: usize = 64;

/// Hash equal-length records laid out back to back in `staging` (each `record_len` bytes).
fn hash_records(staging: &[u8], record_len: usize, out: &mut [Digest]) {
    debug_assert_eq!(staging.len(), record_len * out.len());
    let params = params();
    let mut jobs: Vec<HashManyJob<'_>> = Vec::with_capacity(HASH_CHUNK.min(out.len()));
    for (records, outs) in staging
        .chunks(HASH_CHUNK * record_len)
        .zip(out.chunks_mut(HASH_CHUNK))
    {
        jobs.clear();
        jobs.extend(
            records
                .chunks_exact(record_len)
                .map(|rec| HashManyJob::new(&params, rec)),
        );
        hash_many(jobs.iter_mut());
        for (o, job) in outs.iter_mut().zip(&jobs) {
            o.copy_from_slice(job.to_hash().as_bytes());
        }
    }
}

/// Leaf hashes of the symbols yielded by `symbols` (all of length `symbol_len`), into `out`.
/// With `memo` (for `symbol_len`), the leaves it knows (zero symbols; every 2-byte symbol) are
/// copied from it instead of hashed.
/// Panics if the iterator does not yield exactly `out.len()` symbols of `symbol_len` bytes.
pub fn leaf_hashes<'a>(
    symbols: impl Iterator<Item = &'a [u8]>,
    symbol_len: usize,
    memo: Option<&HashMemo>,
    out: &mut [Digest],
    scratch: &mut Scratch,
) {
    if let Some(m) = memo {
        assert_eq!(m.symbol_len(), symbol_len, "memo for another symbol length");
    }
    let record = symbol_len + 1;
    let batch = &mut scratch.batch;
    batch.start(out.len(), record);
    let mut count = 0;
    for (i, sym) in symbols.enumerate() {
        assert_eq!(sym.len(), symbol_len, "equal-length symbols");
        assert!(i < out.len(), "one output per symbol");
        match memo.and_then(|m| m.known_leaf(sym)) {
            Some(known) => out[i] = *known,
            None => batch.push_leaf(i, sym),
        }
        count = i + 1;
    }
    assert_eq!(count, out.len(), "one output per symbol");
    batch.finish(record, out);
}

/// Hash one level of a tree into its parent level (padding an odd level with `Empty`), with the
/// zero roots `zeros` (entry 0 at this level's height; may be empty).
fn hash_level(nodes: &[Digest], zeros: &[Digest], parent: &mut Vec<Digest>, batch: &mut Batch) {
    let count = nodes.len().div_ceil(2);
    parent.clear();
    parent.resize(count, [0; 32]);
    batch.start(count, 65);
    for (j, pair) in nodes.chunks(2).enumerate() {
        batch.push_parent(j, &pair[0], pair.get(1), zeros, parent);
    }
    batch.finish(65, parent);
}

/// The root over already-hashed leaves. `zeros` are the zero-subtree roots from the leaves'
/// height up (e.g. [`HashMemo::zero_roots`]`(0)`, or `&[]` for none); they never change the
/// result, they only spare hashes.
pub fn root_from_leaf_hashes(leaves: &[Digest], zeros: &[Digest], scratch: &mut Scratch) -> Digest {
    match leaves.len() {
        0 => return EMPTY_NODE,
        1 => return leaves[0],
        _ => {}
    }
    let Scratch {
        batch,
        level_a,
        level_b,
    } = scratch;
    hash_level(leaves, zeros, level_a, batch);
    let mut height = 1;
    while level_a.len() > 1 {
        hash_level(level_a, zeros_at(zeros, height), level_b, batch);
        std::mem::swap(level_a, level_b);
        height += 1;
    }
    level_a[0]
}

/// The zero roots for children `level` levels above the base of `zeros`.
fn zeros_at(zeros: &[Digest], level: usize) -> &[Digest] {
    zeros.get(level..).unwrap_or(&[])
}

/// Fold the roots of consecutive aligned subtrees (all of height `height`, the last one possibly
/// padded up to that height) into the root of the whole tree.
/// Subtree roots combine exactly like leaf hashes do from their level upwards.
pub fn root_from_subtree_roots(subtrees: &[Digest], scratch: &mut Scratch) -> Digest {
    root_from_leaf_hashes(subtrees, &[], scratch)
}

/// The node at height `height` covering `leaves` (an aligned run at the end of a larger tree):
/// the run's own tree, padded with `Empty` siblings up to that height.
pub fn padded_subtree_root(leaves: &[Digest], height: u32, scratch: &mut Scratch) -> Digest {
    assert!(!leaves.is_empty() && leaves.len() <= 1 << height);
    let Scratch {
        batch,
        level_a,
        level_b,
    } = scratch;
    level_a.clear();
    level_a.extend_from_slice(leaves);
    for _ in 0..height {
        hash_level(level_a, &[], level_b, batch);
        std::mem::swap(level_a, level_b);
    }
    debug_assert_eq!(level_a.len(), 1);
    level_a[0]
}

/// Roots of many trees of `per_tree` leaves each, stored back to back in `leaves`, hashed level
/// by level across all trees at once (so every `hash_many` call has plenty of lanes to fill).
/// With `pad_height = Some(h)`, every tree is padded with `Empty` siblings up to height `h`.
/// `zeros` are the zero-subtree roots from the leaves' height up (`&[]` for none).
pub fn roots_of_many(
    leaves: &[Digest],
    per_tree: usize,
    pad_height: Option<u32>,
    zeros: &[Digest],
    scratch: &mut Scratch,
) -> Vec<Digest> {
    assert!(per_tree > 0 && leaves.len().is_multiple_of(per_tree));
    let trees = leaves.len() / per_tree;
    roots_of_many_by(
        trees,
        per_tree,
        pad_height,
        zeros,
        |t, i| &leaves[t * per_tree + i],
        scratch,
    )
}

/// [`roots_of_many`] with leaf `i` of tree `t` given by `leaf(t, i)`, so callers with another
/// layout (e.g. a transposed block) need not copy their leaves.
pub fn roots_of_many_by<'a>(
    trees: usize,
    per_tree: usize,
    pad_height: Option<u32>,
    zeros: &[Digest],
    leaf: impl Fn(usize, usize) -> &'a Digest,
    scratch: &mut Scratch,
) -> Vec<Digest> {
    assert!(per_tree > 0);
    let height = pad_height.unwrap_or_else(|| tree_height(per_tree));
    assert!(per_tree <= 1 << height, "tree does not fit the height");
    if height == 0 {
        return (0..trees).map(|t| *leaf(t, 0)).collect();
    }
    let Scratch {
        batch,
        level_a,
        level_b,
    } = scratch;
    let mut count = per_tree;
    for level in 0..height as usize {
        let parents = count.div_ceil(2);
        let level_zeros = zeros_at(zeros, level);
        level_b.clear();
        level_b.resize(trees * parents, [0; 32]);
        batch.start(trees * parents, 65);
        for t in 0..trees {
            for j in 0..parents {
                let target = t * parents + j;
                let right = 2 * j + 1 < count;
                if level == 0 {
                    let r = right.then(|| leaf(t, 2 * j + 1));
                    batch.push_parent(target, leaf(t, 2 * j), r, level_zeros, level_b);
                } else {
                    let base = t * count;
                    let r = right.then(|| &level_a[base + 2 * j + 1]);
                    batch.push_parent(target, &level_a[base + 2 * j], r, level_zeros, level_b);
                }
            }
        }
        batch.finish(65, level_b);
        std::mem::swap(level_a, level_b);
        count = parents;
    }
    debug_assert_eq!(count, 1);
    level_a.clone()
}

/// A full tree kept level by level, for proofs.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    /// levels[0] = leaf hashes, last = [root].
    levels: Vec<Vec<Digest>>,
}

impl MerkleTree {
    pub fn from_leaf_hashes(leaves: Vec<Digest>) -> Self {
        let mut scratch = Scratch::default();
        let mut levels = vec![leaves];
        while levels.last().map_or(0, Vec::len) > 1 {
            let mut parent = Vec::new();
            hash_level(
                levels.last().expect("non-empty"),
                &[],
                &mut parent,
                &mut scratch.batch,
            );
            levels.push(parent);
        }
        Self { levels }
    }

    /// A tree over the symbols of `data` (chunks of `symbol_len` bytes).
    pub fn from_symbols(data: &[u8], symbol_len: usize) -> Self {
        let count = data.len() / symbol_len;
        let mut leaves = vec![[0u8; 32]; count];
        let mut scratch = Scratch::default();
        leaf_hashes(
            data.chunks_exact(symbol_len),
            symbol_len,
            None,
            &mut leaves,
            &mut scratch,
        );
        Self::from_leaf_hashes(leaves)
    }

    pub fn root(&self) -> Digest {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(EMPTY_NODE)
    }

    pub fn n_leaves(&self) -> usize {
        self.levels[0].len()
    }

    /// The proof for leaf `index`: siblings from the leaf level up.
    pub fn proof(&self, index: usize) -> Option<MerkleProof> {
        if index >= self.n_leaves() {
            return None;
        }
        let mut path = Vec::with_capacity(self.levels.len());
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            path.push(level.get(sibling).map_or(Node::Empty, |d| Node::Digest(*d)));
            i >>= 1;
        }
        Some(MerkleProof { path })
    }
}

/// ⌈log2(n)⌉: the height of a tree with `n` leaves (0 for n ≤ 1).
pub fn tree_height(n_leaves: usize) -> u32 {
    if n_leaves <= 1 {
        0
    } else {
        usize::BITS - (n_leaves - 1).leading_zeros()
    }
}

/// A Merkle inclusion proof (BCS: a vector of [`Node`]s).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MerkleProof {
    pub path: Vec<Node>,
}

impl MerkleProof {
    /// Checks that `leaf_data` is leaf `index` of a tree with `n_leaves` leaves and root `root`.
    pub fn verify(&self, root: &Digest, leaf_data: &[u8], index: usize, n_leaves: usize) -> bool {
        self.verify_leaf_hash(root, &leaf_hash(leaf_data), index, n_leaves)
    }

    pub fn verify_leaf_hash(
        &self,
        root: &Digest,
        leaf: &Digest,
        index: usize,
        n_leaves: usize,
    ) -> bool {
        if index >= n_leaves || self.path.len() != tree_height(n_leaves) as usize {
            return false;
        }
        let mut acc = *leaf;
        let mut i = index;
        for sibling in &self.path {
            acc = if i & 1 == 0 {
                inner_hash(&acc, sibling.bytes())
            } else {
                inner_hash(sibling.bytes(), &acc)
            };
            i >>= 1;
        }
        i == 0 && &acc == root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_piece_by_piece_gives_the_digest_of_the_whole() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole = blake2b256(&[b"domain", &data]);
        // Pieces that cross Blake2b's 128-byte blocks unevenly.
        let mut h = Blake2b256::default();
        h.update(b"domain");
        for piece in data.chunks(333) {
            h.update(piece);
        }
        assert_eq!(h.finalize(), whole);
        assert_ne!(Blake2b256::default().finalize(), whole);
    }

    fn naive_root(leaves: &[Digest]) -> Digest {
        if leaves.is_empty() {
            return EMPTY_NODE;
        }
        let mut level = leaves.to_vec();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|c| inner_hash(&c[0], c.get(1).unwrap_or(&EMPTY_NODE)))
                .collect();
        }
        level[0]
    }

    fn leaves(n: usize) -> Vec<Digest> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_le_bytes()))
            .collect()
    }

    #[test]
    fn small_roots() {
        let mut s = Scratch::default();
        assert_eq!(root_from_leaf_hashes(&[], &[], &mut s), EMPTY_NODE);
        let one = leaf_hash(b"x");
        assert_eq!(root_from_leaf_hashes(&[one], &[], &mut s), one);
        // The single-leaf root is H(0x00 ‖ data).
        assert_eq!(one, blake2b256(&[&[0], b"x"]));
        for n in 2..70 {
            let l = leaves(n);
            assert_eq!(
                root_from_leaf_hashes(&l, &[], &mut s),
                naive_root(&l),
                "n = {n}"
            );
            assert_eq!(
                MerkleTree::from_leaf_hashes(l.clone()).root(),
                naive_root(&l)
            );
        }
    }

    #[test]
    fn subtree_folding_matches_whole_tree() {
        let mut s = Scratch::default();
        for (n, height) in [(1000usize, 6u32), (130, 6), (65, 6), (200, 3), (17, 2)] {
            let l = leaves(n);
            let block = 1usize << height;
            let roots: Vec<Digest> = l
                .chunks(block)
                .map(|c| {
                    if c.len() == block {
                        root_from_leaf_hashes(c, &[], &mut Scratch::default())
                    } else {
                        padded_subtree_root(c, height, &mut Scratch::default())
                    }
                })
                .collect();
            assert_eq!(
                root_from_subtree_roots(&roots, &mut s),
                naive_root(&l),
                "n = {n}"
            );
        }
    }

    #[test]
    fn proofs_verify_and_reject() {
        for n in [1usize, 2, 3, 7, 8, 9, 100] {
            let data: Vec<u8> = (0..n * 4).map(|i| i as u8).collect();
            let tree = MerkleTree::from_symbols(&data, 4);
            for i in 0..n {
                let proof = tree.proof(i).unwrap();
                let leaf = &data[i * 4..i * 4 + 4];
                assert!(proof.verify(&tree.root(), leaf, i, n));
                assert!(!proof.verify(&tree.root(), b"nope", i, n));
                if n > 1 {
                    assert!(!proof.verify(&tree.root(), leaf, (i + 1) % n, n));
                }
                // Over-long path and out-of-range index are rejected.
                let mut long = proof.clone();
                long.path.push(Node::Empty);
                assert!(!long.verify(&tree.root(), leaf, i, n));
                assert!(!proof.verify(&tree.root(), leaf, n, n));
            }
            assert!(tree.proof(n).is_none());
        }
    }

    #[test]
    fn many_trees_match_single_trees() {
        let mut s = Scratch::default();
        for per in [1usize, 2, 5, 32, 33, 1000] {
            let l = leaves(per * 3);
            let roots = roots_of_many(&l, per, None, &[], &mut s);
            for (t, chunk) in l.chunks(per).enumerate() {
                assert_eq!(roots[t], naive_root(chunk), "per = {per}");
            }
        }
        let l = leaves(3 * 5);
        let padded = roots_of_many(&l, 5, Some(6), &[], &mut s);
        assert_eq!(padded[1], padded_subtree_root(&l[5..10], 6, &mut s));
    }

    #[test]
    fn heights() {
        for (n, h) in [
            (0, 0),
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 3),
            (1000, 10),
            (1024, 10),
        ] {
            assert_eq!(tree_height(n), h, "n = {n}");
        }
    }

    #[test]
    fn node_bcs() {
        assert_eq!(bcs::to_bytes(&Node::Empty).unwrap(), vec![0]);
        let d = bcs::to_bytes(&Node::Digest([7; 32])).unwrap();
        assert_eq!(d[0], 1);
        assert_eq!(d.len(), 33);
    }
}
