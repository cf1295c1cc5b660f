//! The symbol-size rule. Two builders produce the same quilt ID only if they pick the same S.
//!
//! The sizes are the index region (5 + L) followed by each patch region (6 + length), in
//! identifier order. S is the smallest symbol size ≥ a lower bound such that every region,
//! rounded up to whole columns of p·S bytes, fits in the s columns; it is then rounded up to
//! RS2's alignment.

use super::QuiltError;
use crate::config::{MAX_SYMBOL_SIZE, SYMBOL_ALIGNMENT};

/// Columns the regions take with columns of `column_len` bytes.
fn columns_needed(sizes: &[u64], column_len: u64) -> u64 {
    sizes.iter().map(|s| s.div_ceil(column_len)).sum()
}

/// The symbol size for regions of `sizes` bytes (the first is the index) in a matrix of
/// `n_columns` × `n_rows`, with the index in at most `max_index_columns` columns.
pub fn compute_symbol_size(
    sizes: &[u64],
    n_columns: u64,
    n_rows: u64,
    max_index_columns: u64,
) -> Result<u16, QuiltError> {
    let Some(&index_size) = sizes.first() else {
        return Err(QuiltError::NoSizes);
    };
    if sizes.len() as u64 > n_columns {
        return Err(QuiltError::TooManyPatches {
            regions: sizes.len(),
            columns: n_columns,
        });
    }
    let total: u64 = sizes.iter().sum();
    let lower = total
        .div_ceil(n_columns * n_rows)
        .max(index_size.div_ceil(max_index_columns * n_rows))
        .max((super::INDEX_PREFIX_LEN as u64).div_ceil(n_rows));
    let fits = |symbol: u64| columns_needed(sizes, symbol * n_rows) <= n_columns;
    // With a symbol size that puts the largest region in one column, every region takes one
    // column, and there are at most n_columns of them: `upper` always fits.
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let mut upper = lower.max(largest.div_ceil(n_rows)).max(1);
    let mut low = lower.max(1);
    // Binary search for the smallest fitting size in [low, upper]; the predicate is monotone.
    while low < upper {
        let mid = low + (upper - low) / 2;
        if fits(mid) {
            upper = mid;
        } else {
            low = mid + 1;
        }
    }
    let aligned = low.div_ceil(SYMBOL_ALIGNMENT) * SYMBOL_ALIGNMENT;
    u16::try_from(aligned)
        .ok()
        .filter(|s| *s <= MAX_SYMBOL_SIZE)
        .ok_or(QuiltError::QuiltTooLarge { needed: aligned })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of Walrus's `test_quilt_find_min_length` (sizes, columns, rows, max index
    /// columns → S), RS2 alignment.
    #[test]
    fn upstream_cases() {
        let big = [
            416, 253, 258, 384, 492, 303, 276, 464, 143, 251, 388, 263, 515, 433, 505, 385, 346,
            69, 48, 495, 329, 450, 494, 104, 539, 245, 109, 317, 60,
        ];
        let cases: [(&[u64], u64, u64, u64, u16); 9] = [
            (&[1000, 1, 1], 4, 7, 2, 72),
            (&[1], 3, 2, 1, 4),
            (&[115, 80, 4], 17, 9, 3, 6),
            (&[20, 20, 20], 3, 5, 2, 4),
            (&[5, 5, 5], 5, 1, 1, 6),
            (&[25, 35, 45], 200, 1, 3, 10),
            (&[10, 0, 0, 0], 17, 9, 2, 2),
            (&[10, 0, 0, 0], 17, 9, 2, 2),
            (&big, 34, 16, 3, 32),
        ];
        for (sizes, cols, rows, max_index, want) in cases {
            let got = compute_symbol_size(sizes, cols, rows, max_index).unwrap();
            assert_eq!(got, want, "sizes {sizes:?} cols {cols} rows {rows}");
            assert!(columns_needed(sizes, u64::from(got) * rows) <= cols);
        }
    }

    #[test]
    fn upstream_error_cases() {
        assert_eq!(
            compute_symbol_size(&[2, 1, 2, 1], 3, 3, 3),
            Err(QuiltError::TooManyPatches {
                regions: 4,
                columns: 3
            })
        );
        assert_eq!(compute_symbol_size(&[], 3, 1, 1), Err(QuiltError::NoSizes));
    }

    #[test]
    fn too_large_for_rs2() {
        // One region of 2 GiB in 2 columns of 2 rows needs symbols far above 65,534 bytes.
        let err = compute_symbol_size(&[10, 1 << 31], 2, 2, 1).unwrap_err();
        assert!(matches!(err, QuiltError::QuiltTooLarge { .. }), "{err}");
    }

    /// The result is the smallest aligned size that fits: one alignment step less does not.
    #[test]
    fn minimal_against_linear_scan() {
        let seed: u64 = 0x5eed_0018;
        println!("seed {seed:#x}");
        let mut state = seed;
        let mut next = |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        for _ in 0..500 {
            let cols = 2 + next(40);
            let rows = 1 + next(20);
            let count = 1 + next(cols) as usize;
            let sizes: Vec<u64> = (0..count).map(|_| 1 + next(3000)).collect();
            let max_index = 1 + next(10);
            let got = u64::from(compute_symbol_size(&sizes, cols, rows, max_index).unwrap());
            let lower = sizes[0]
                .div_ceil(max_index * rows)
                .max(5u64.div_ceil(rows))
                .max(sizes.iter().sum::<u64>().div_ceil(cols * rows));
            let linear = (lower..)
                .find(|&s| columns_needed(&sizes, s * rows) <= cols)
                .unwrap();
            assert_eq!(got, linear.div_ceil(2) * 2, "{sizes:?} {cols} {rows}");
        }
    }
}
