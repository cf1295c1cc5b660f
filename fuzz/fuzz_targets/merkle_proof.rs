//! BCS decoding of Merkle inclusion proofs (`MerkleProof`), and proof checking on arbitrary input.
#![no_main]

use floe_core::merkle::{MerkleProof, MerkleTree, leaf_hash};
use libfuzzer_sys::fuzz_target;

use floe_fuzz::bcs_round_trip;

fuzz_target!(|data: &[u8]| {
    if let Some(proof) = bcs_round_trip::<MerkleProof>(data) {
        // Checking a decoded proof against any index and tree size returns a verdict, never
        // panics; index ≥ n_leaves and wrong path lengths are rejected.
        let height = proof.path.len();
        let leaf = leaf_hash(data);
        for (index, n_leaves) in [
            (0, 0),
            (0, 1),
            (1, 1),
            (0, 1usize << height.min(40)),
            (usize::MAX, usize::MAX),
            (usize::MAX - 1, usize::MAX),
        ] {
            let ok = proof.verify_leaf_hash(&[0; 32], &leaf, index, n_leaves);
            assert!(!(ok && index >= n_leaves), "accepted an out-of-range index");
        }
    }

    // A tree built over the input's bytes (as 1-byte symbols, at most 16 of them) proves every
    // leaf, its proofs round-trip through BCS, and there is no proof past the last leaf.
    let leaves = &data[..data.len().min(16)];
    if leaves.is_empty() {
        return;
    }
    let tree = MerkleTree::from_symbols(leaves, 1);
    let root = tree.root();
    for (i, leaf) in leaves.chunks(1).enumerate() {
        let proof = tree.proof(i).expect("a leaf in range has a proof");
        assert!(
            proof.verify(&root, leaf, i, leaves.len()),
            "leaf {i} of {}",
            leaves.len()
        );
        let bytes = bcs::to_bytes(&proof).expect("proofs encode");
        assert_eq!(bcs_round_trip::<MerkleProof>(&bytes), Some(proof.clone()));
    }
    assert!(tree.proof(leaves.len()).is_none());
});
