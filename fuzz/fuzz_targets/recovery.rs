//! BCS decoding of recovery data: `GeneralRecoverySymbol` and `InconsistencyProof`, and their
//! verification against real metadata.
#![no_main]

use floe_core::{GeneralRecoverySymbol, InconsistencyProof, SliverType};
use floe_fuzz::{bcs_round_trip, small_metadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (config, metadata) = small_metadata();
    if let Some(symbol) = bcs_round_trip::<GeneralRecoverySymbol>(data) {
        // An arbitrary symbol and proof get a verdict, never a panic.
        let _ = symbol.verify(config, &metadata.metadata);
    }
    if let Some(proof) = bcs_round_trip::<InconsistencyProof>(data) {
        for axis in [SliverType::Primary, SliverType::Secondary] {
            // The metadata is consistent, so no proof against it can succeed.
            assert!(
                proof.verify(axis, config, &metadata.metadata).is_err(),
                "an inconsistency proof verified against consistent metadata"
            );
        }
    }
});
